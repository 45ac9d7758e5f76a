"""How much 2×2 and 4×4 checkerboard a generator paints into its holes, against the photo's own at those places.

    python experiments/checkerboard.py DATA MODEL [MODEL ...] [--n 100] [--size 128]

MODEL: a weights file, a training checkpoint or a shipped name. For each photo (short side resized to the model's size,
centre crop) a seeded free-form mask of 30–40 %; the fill is composited, then, over the 2×2 blocks inside the hole,
the diagonal detail |a − b − c + d| of Haar's 2×2 transform (a b / c d a block) is divided by its horizontal and
vertical detail: on the image itself (period 2, the last transposed convolution's grid) and on its 2×2 mean (period 4,
the one before). A checkerboard raises the ratio above the photo's own; a smooth fill (biharmonic) lowers it.
"""
import argparse
import numpy as np, torch, torch.nn.functional as F
from ra_inpaint.core import load_image
from ra_inpaint.data import list_images, eval_transform
from ra_inpaint.masks import free_form_mask
from ra_inpaint.infer import load_generator
from ra_inpaint.metrics import biharmonic_fill

def checker(x, m):
    "Over the 2×2 blocks (a b / c d) of (B,C,H,W) `x` wholly inside the hole of `m`: mean |a − b − c + d| over mean (|a + b − c − d| + |a − b + c − d|) / 2."
    a, b, c, d = x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    inside = (F.avg_pool2d(m, 2) > 0.999).expand_as(a)
    hh, edges = (a - b - c + d).abs()[inside].mean(), ((a + b - c - d).abs() + (a - b + c - d).abs())[inside].mean() / 2
    return float(hh / edges)  # Haar's diagonal detail against its horizontal and vertical: a checkerboard raises it

def main(argv=None):
    ap = argparse.ArgumentParser(); ap.add_argument('data'); ap.add_argument('models', nargs='+')
    ap.add_argument('--n', type=int, default=100); ap.add_argument('--size', type=int, default=128); a = ap.parse_args(argv)
    torch.set_num_threads(1); S = a.size
    xs = [eval_transform(load_image(p), S) for p in list_images(a.data, 'test')[:a.n]]  # as `evaluate` prepares them
    x = torch.stack(xs)
    m = torch.stack([torch.from_numpy(free_form_mask(S, (0.3, 0.4), rng=np.random.default_rng([7, i])))[None] for i in range(len(xs))]).float()
    fills = {'biharmonic': torch.stack([biharmonic_fill(xi, mi) for xi, mi in zip(x, m)])}
    for name in a.models:
        g = load_generator(name, 'cpu')
        with torch.no_grad(): fills[name] = torch.cat([g(x[i:i + 16] * (1 - m[i:i + 16]), m[i:i + 16]) for i in range(0, len(x), 16)])
    gt2, gt4 = checker(x, m), checker(F.avg_pool2d(x, 2), F.avg_pool2d(m, 2))
    print(f'{len(xs)} photos of {a.data}, {S}², 30-40 % holes; diagonal / (horizontal, vertical) detail inside the hole (period 2 / period 4):')
    print(f'  {"photo (ground truth)":40s} {gt2:.3f} / {gt4:.3f}  (diagonal / edge detail of the real texture)')
    for name, y in fills.items():
        y = y * m + x * (1 - m)
        print(f'  {name:40s} {checker(y, m):.3f} / {checker(F.avg_pool2d(y, 2), F.avg_pool2d(m, 2)):.3f}')

if __name__ == '__main__': main()
