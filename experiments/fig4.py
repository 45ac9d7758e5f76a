"""Fig. 4 of the paper with the shipped models: argmax RMᶜ and RM of each LGA layer on test photos, faces and scenes.

    python experiments/fig4.py FACES_DIR SCENES_DIR [--n 4] [--stats-n 32] [--out docs]

FACES_DIR / SCENES_DIR are test folders the models never saw (here: ../shared/data/celeba/test and
../shared/data/bsds500/test). Writes OUT/fig4_faces.png and OUT/fig4_scenes.png (rows: masked input | composite |
enc1 RMᶜ | enc1 RM | enc2 RMᶜ | enc2 RM) and prints, per layer, over `--stats-n` photos:
- regions: the effective number of regions exp(I) (chapter 04), the perplexity of the mean assignment exp(H(p̄)),
  and how many regions the argmax uses;
- agreement: the share of pixels whose argmax region agrees between two photos, against chance = Σ_r p_A(r)·p_B(r)
  over the two maps' observed region frequencies (not 1/regions used);
- two controls: `flat` is the agreement of each photo's map with the map of a flat gray image under the same mask
  (how much of the layout is a template of the mask and the position, not of the content); `shift` rolls photo and
  mask by 1/4 of the size and reports how much of the new map equals the old one shifted with the content (`moves`)
  and unshifted (`stays`).
"""
import argparse, itertools, json
from pathlib import Path
import numpy as np, torch
import matplotlib; matplotlib.use('Agg')
import matplotlib.pyplot as plt
from ra_inpaint.data import list_images, InpaintDataset
from ra_inpaint.masks import free_form_mask
from ra_inpaint.infer import load_generator
from ra_inpaint.attention import region_perplexity, effective_regions
from ra_inpaint.visualize import region_maps, region_colormap

def _show(ax, im, title=None):
    ax.imshow(im.permute(1, 2, 0).clamp(0, 1).numpy() if isinstance(im, torch.Tensor) else im, interpolation='nearest')
    ax.set_axis_off()
    if title: ax.set_title(title, fontsize=7)

def _chance(a, b, n):
    pa, pb = np.bincount(a.ravel(), minlength=n) / a.size, np.bincount(b.ravel(), minlength=n) / b.size
    return float((pa * pb).sum())

def _labels(g, x, m):
    maps = region_maps(g, x, m)
    return {k: v[1].argmax(0).numpy() for k, v in maps.items() if v[1] is not None}, \
           {k: (effective_regions(l.ra), region_perplexity(l.ra.usage)) for k, l in g.lga.items() if l.ra is not None}

def figure(g, paths, out, title, seed=0, draw=True):
    ds = InpaintDataset(paths, g.cfg.size, train=False)
    S, n = g.cfg.size, g.cfg.n_regions
    labels, flat, moves, stays, ppl = {}, {}, {}, {}, {}
    fig, axs = plt.subplots(len(ds), 6, figsize=(7.2, 1.25 * len(ds)), dpi=100, squeeze=False) if draw else (None, None)
    for i in range(len(ds)):
        x = ds[i]['image']
        m = torch.from_numpy(free_form_mask(S, '20-30', rng=seed + i))[None]
        maps, _, comp = region_maps(g, x, m, with_fill=True)
        if draw:
            _show(axs[i, 0], x * (1 - m) + m, 'masked' if i == 0 else None); _show(axs[i, 1], comp, 'composite' if i == 0 else None)
            for j, name in enumerate(maps):
                rmc, rm, _ = maps[name]
                side = rm.shape[-1]
                _show(axs[i, 2 + 2 * j], region_colormap(rmc, S), f'{name} RMᶜ ({side}²)' if i == 0 else None)
                _show(axs[i, 3 + 2 * j], region_colormap(rm, S), f'{name} RM ({side}²)' if i == 0 else None)
        lab, p = _labels(g, x, m)
        lab_flat, _ = _labels(g, torch.full_like(x, .5), m)
        d = S // 4
        lab_shift, _ = _labels(g, torch.roll(x, (d, d), (1, 2)), torch.roll(m, (d, d), (1, 2)))
        for k, l in lab.items():
            labels.setdefault(k, []).append(l); ppl.setdefault(k, []).append(p[k])
            flat.setdefault(k, []).append(float((l == lab_flat[k]).mean()))
            s = d * l.shape[0] // S
            moves.setdefault(k, []).append(float((lab_shift[k] == np.roll(l, (s, s), (0, 1))).mean()))
            stays.setdefault(k, []).append(float((lab_shift[k] == l).mean()))
    if draw:
        fig.suptitle(title, fontsize=8); fig.tight_layout(); fig.savefig(out); plt.close(fig)
    stats = {}
    for k, ls in labels.items():
        pairs = list(itertools.combinations(ls, 2))
        r = lambda v: round(float(np.mean(v)), 3)
        stats[k] = dict(map_side=int(ls[0].shape[0]), effective_regions=round(float(np.mean([e for e, _ in ppl[k]])), 1),
                        mean_assignment_perplexity=round(float(np.mean([q for _, q in ppl[k]])), 1),
                        argmax_regions_used=round(float(np.mean([len(np.unique(l)) for l in ls])), 1),
                        agreement=r([(a == b).mean() for a, b in pairs]), chance=r([_chance(a, b, n) for a, b in pairs]),
                        flat_control=r(flat[k]), shift_moves_with_content=r(moves[k]), shift_stays=r(stays[k]))
    return stats

def main(argv=None):
    ap = argparse.ArgumentParser(); ap.add_argument('faces'); ap.add_argument('scenes')
    ap.add_argument('--n', type=int, default=4); ap.add_argument('--stats-n', type=int, default=32); ap.add_argument('--out', default='docs')
    a = ap.parse_args(argv); Path(a.out).mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    res = {}
    for kind, src in (('faces', a.faces), ('scenes', a.scenes)):
        g = load_generator(name='face' if kind == 'faces' else 'scene', device='cpu')
        paths = list_images(src)
        step = max(1, len(paths) // a.stats_n)
        figure(g, paths[::step][:a.n], Path(a.out)/f'fig4_{kind}.png',
               f"shipped {kind[:-1]} model ({g.meta['step']:,} steps): argmax of the {g.cfg.n_regions} regions")
        res[kind] = figure(g, paths[::step][:a.stats_n], None, '', draw=False)  # statistics over more photos than the figure shows
    print(json.dumps(res, indent=1))

if __name__ == '__main__': main()
