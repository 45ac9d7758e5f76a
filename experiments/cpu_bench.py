"""CPU training speed of a small preset, before and after this project's CPU switches, side by side in one process.

    python experiments/cpu_bench.py DATA_FOLDER OUT.jsonl [--preset small128] [--threads 1] [--rounds 2]

Each variant is `ra-inpaint bench --parts train` with config overrides; the variants run in turn, `--rounds` times
(ABC ABC ...), so a load that drifts during the run hits them alike. Every result is appended as one JSON line
(the bench's own object plus `variant` and `round`); chapter 16 reads the file and prints the table.
"""
import argparse, json, sys, warnings
import torch
from ra_inpaint.bench import bench

VARIANTS = {  # name: overrides of the preset (the preset itself is the last row)
    'before: JPEG decoded every step, fp32': dict(cache_images=False, cpu_amp=False),
    '+ decoded images cached as uint8': dict(cache_images=True, cpu_amp=False),
    '+ bf16 autocast (cpu_amp)': dict(cache_images=True, cpu_amp=True),
}

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('data'); ap.add_argument('out')
    ap.add_argument('--preset', default="small128"); ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--rounds', type=int, default=2); ap.add_argument('--steps', type=int, default=20)
    ap.add_argument('--windows', type=int, default=3)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    warnings.simplefilter('ignore')
    for r in range(a.rounds):
        for name, ov in VARIANTS.items():
            res = bench('cpu', preset_name=a.preset, data=a.data, perceptual=False, parts=('train',), steps=a.steps,
                        windows=a.windows, **ov)
            res |= dict(variant=name, round=r)
            with open(a.out, 'a') as f: f.write(json.dumps(res) + '\n')
            print(f"{r} {name:<42} {res['train_best']['images_per_s']:6.2f} img/s", flush=True)

if __name__ == '__main__': sys.exit(main())
