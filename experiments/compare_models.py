"""Two generators on the same images and the same seeded masks, paired: is the candidate better than what ships?

    python experiments/compare_models.py CANDIDATE BASE DATA [--max-images 300] [--baselines biharmonic telea] [--model-names new old]

CANDIDATE and BASE: a weights file, a training checkpoint or a shipped name (scene, face). Prints one table with every
column, then paired bootstrap 95 % intervals of candidate − base and candidate − each baseline (chapter 10).
"""
import argparse, warnings
import torch
from ra_inpaint.data import list_images
from ra_inpaint.infer import load_generator
from ra_inpaint.evaluate import evaluate
from ra_inpaint.metrics import paired_intervals, intervals_markdown

def main(argv=None):
    ap = argparse.ArgumentParser(); ap.add_argument('candidate'); ap.add_argument('base'); ap.add_argument('data')
    ap.add_argument('--max-images', type=int, default=300); ap.add_argument('--baselines', nargs='*', default=['biharmonic'])
    ap.add_argument('--names', nargs=2, default=['new', 'old']); ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads); warnings.simplefilter('ignore')
    paths = list_images(a.data, 'test')[:a.max_images]
    kw = dict(device='cpu', progress=False, grid_k=0, seed=0)
    t = evaluate(load_generator(a.candidate, 'cpu'), paths, name=a.names[0], baselines=tuple(a.baselines), **kw)
    u = evaluate(load_generator(a.base, 'cpu'), paths, name=a.names[1], baselines=(), **kw)
    t.values.update(u.values); t.counts.update(u.counts); t.per_image.update(u.per_image)  # same images, same masks: paired
    t.title = f'{len(paths)} images of {a.data}: {a.names[0]} = {a.candidate}, {a.names[1]} = {a.base}'
    print(t.to_markdown())
    for other in [a.names[1], *a.baselines]:
        print(); print(intervals_markdown(paired_intervals(t, a.names[0], other), a.names[0], other))

if __name__ == '__main__': main()
