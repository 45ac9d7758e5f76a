"""Issue 20's measurement: fill photos at their own resolution through each strategy, score at full resolution.

    python experiments/full_res_strategies.py DATA [--n 40] [--buckets 10-20 20-30 30-40 40-50] [--baselines biharmonic telea]

For each photo (short side as it is) and bucket, a free-form mask is drawn at 128² (chapter 01, seeded by photo and
bucket) and scaled to the photo (nearest), so the hole ratio is kept. Every fill is pasted into the 8-bit photo and
scored there (L1 %, PSNR, SSIM as chapter 10): `squash` is the fill path before this change (the photo resized to
128² ignoring its aspect), `resize`, `crop` and `auto` are infer.fill's strategies. Prints a table and paired
bootstrap intervals of auto − each other column.
"""
import argparse, warnings
import numpy as np, torch
import torch.nn.functional as F
from ra_inpaint.core import load_image
from ra_inpaint.data import list_images
from ra_inpaint.masks import free_form_mask, BUCKETS
from ra_inpaint.infer import load_generator, fill
from ra_inpaint.lga import mask_to
from ra_inpaint.metrics import score_images, quantize, biharmonic_fill, BucketTable, paired_intervals, intervals_markdown
from ra_inpaint.evaluate import baselines_available

@torch.no_grad()
def squash(g, x, m):
    "The fill path before issue 20: the whole photo resized to S×S whatever its aspect."
    S = g.cfg.size
    xs = F.interpolate(x[None], size=(S, S), mode='bilinear', antialias=True, align_corners=False).clamp(0, 1)
    ms = mask_to(m[None], S)
    p = g(xs * (1 - ms), ms)[0]
    p = F.interpolate(p[None], size=x.shape[-2:], mode='bilinear', align_corners=False)[0].clamp(0, 1)
    return torch.where(m > .5, p, x)

def main(argv=None):
    ap = argparse.ArgumentParser(); ap.add_argument('data'); ap.add_argument('--n', type=int, default=40)
    ap.add_argument('--buckets', nargs='+', default=['10-20', '20-30', '30-40', '40-50'])
    ap.add_argument('--baselines', nargs='*', default=['biharmonic', 'telea']); a = ap.parse_args(argv)
    torch.set_num_threads(1); warnings.simplefilter('ignore')
    g = load_generator()
    fills = baselines_available(tuple(a.baselines))
    methods = {'squash': lambda x, m: squash(g, x, m), **{s: (lambda s: lambda x, m: fill(g, [x], [m], strategy=s)[0])(s) for s in ('resize', 'crop', 'auto')},
               **fills}
    per = {}
    paths = list_images(a.data)[:a.n]
    for i, p in enumerate(paths):
        x = quantize(load_image(p)[None])[0]
        H, W = x.shape[-2:]
        for b in a.buckets:
            m0 = torch.from_numpy(free_form_mask(128, BUCKETS[b], rng=np.random.default_rng([0, i, list(BUCKETS).index(b)])))
            m = F.interpolate(m0[None, None], size=(H, W), mode='nearest')[0]
            for k, f in methods.items():
                y = quantize(f(x, m)[None])
                for key, v in score_images(y, x[None]).items(): per.setdefault((k, b, key), []).append(float(v))
        print(f'{i + 1}/{len(paths)} {p.name} {W}x{H}', flush=True)
    t = BucketTable(f'{len(paths)} photos of {a.data} at full resolution')
    for (k, b, key), v in per.items(): t.add_mean(k, b, key, torch.tensor(v))
    print(t.to_markdown())
    for o in [k for k in methods if k != 'auto']: print(intervals_markdown(paired_intervals(t, 'auto', o), 'auto', o))

if __name__ == '__main__': main()
