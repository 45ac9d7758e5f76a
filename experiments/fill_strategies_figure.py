"""The figure of chapter 11b: one photo and one hole through `fill --strategy resize` and `crop`, beside biharmonic.

    python experiments/fill_strategies_figure.py [--out docs/fill_strategies.png]

The photo is scikit-image's `coffee` (600×400), the hole a brush stroke across the cup and a blob on the table,
drawn with the painter's rasteriser; the model is the shipped scene model. Prints the fill time of each strategy and
the PSNR of each fill inside the hole against the original.
"""
import argparse, time
import numpy as np, torch
import matplotlib; matplotlib.use('Agg')
import matplotlib.pyplot as plt
from skimage import data
from ra_inpaint.infer import load_generator, fill
from ra_inpaint.metrics import biharmonic_fill
from ra_inpaint.painter import Stroke, rasterize

def main(argv=None):
    ap = argparse.ArgumentParser(); ap.add_argument('--out', default='docs/fill_strategies.png'); a = ap.parse_args(argv)
    torch.set_num_threads(1)
    x = torch.from_numpy(data.coffee().astype(np.float32) / 255).permute(2, 0, 1)
    H, W = x.shape[-2:]
    m = rasterize([Stroke([(150, 120), (260, 170), (380, 150)], 14, False), Stroke([(470, 330), (500, 345)], 36, False)], (H, W))
    g = load_generator()
    outs, secs = {}, {}
    for s in ('resize', 'crop'):
        t = time.perf_counter(); outs[s] = fill(g, [x], [m], strategy=s)[0]; secs[s] = time.perf_counter() - t
    outs['biharmonic'] = biharmonic_fill(x, m)
    hole = m.expand_as(x) > 0
    psnr = {k: float(10 * torch.log10(1 / ((v - x)[hole] ** 2).mean())) for k, v in outs.items()}
    fig, axs = plt.subplots(2, 4, figsize=(12, 5), dpi=90)
    crop = (slice(80, 230), slice(110, 420))
    for r, sl in enumerate([(slice(None), slice(None)), crop]):
        for c, (t, im) in enumerate([('hole', x * (1 - m) + m), (f"resize ({psnr['resize']:.1f} dB in the hole)", outs['resize']),
                                      (f"crop ({psnr['crop']:.1f} dB)", outs['crop']), (f"biharmonic ({psnr['biharmonic']:.1f} dB)", outs['biharmonic'])]):
            axs[r, c].imshow(im[:, sl[0], sl[1]].permute(1, 2, 0).clamp(0, 1).numpy()); axs[r, c].axis('off')
            if r == 0: axs[r, c].set_title(t, fontsize=9)
    fig.suptitle(f'{W}×{H} photo, {m.mean():.1%} hole, shipped scene model at {g.cfg.size}²; bottom: detail', fontsize=9)
    fig.tight_layout(); fig.savefig(a.out)
    print({'seconds': {k: round(v, 2) for k, v in secs.items()}, 'psnr_in_hole': {k: round(v, 2) for k, v in psnr.items()}, 'hole': round(float(m.mean()), 4)})

if __name__ == '__main__': main()
