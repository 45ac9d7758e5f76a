"""Fig. 4 of the paper with the shipped models: argmax RMᶜ and RM of each LGA layer on test photos, faces and scenes.

    python tools/fig4.py FACES_DIR SCENES_DIR [--n 4] [--out docs]

FACES_DIR / SCENES_DIR are test folders the models never saw (here: ../shared/data/lfw_gray/test and
../shared/data/bsds500/test). Writes OUT/fig4_faces.png and OUT/fig4_scenes.png (rows: masked input | composite |
enc1 RMᶜ | enc1 RM | enc2 RMᶜ | enc2 RM) and prints, per layer, how many regions the argmax uses and how alike the
region layouts of different photos are (the share of pixels whose argmax region agrees between two photos; aligned
faces that are divided by facial parts agree far more than chance = 1/regions used).
"""
import argparse, itertools, json
from pathlib import Path
import numpy as np, torch
import matplotlib; matplotlib.use('Agg')
import matplotlib.pyplot as plt
from ra_inpaint.data import list_images, InpaintDataset
from ra_inpaint.masks import free_form_mask
from ra_inpaint.infer import load_generator
from ra_inpaint.visualize import region_maps, region_colormap, _show

def figure(g, paths, out, title, seed=0):
    ds = InpaintDataset(paths, g.cfg.size, train=False)
    S, rows, labels = g.cfg.size, [], {}
    fig, axs = plt.subplots(len(ds), 6, figsize=(7.2, 1.25 * len(ds)), dpi=100, squeeze=False)
    for i in range(len(ds)):
        x = ds[i]['image']
        m = torch.from_numpy(free_form_mask(S, '20-30', rng=seed + i))[None]
        maps, _, comp = region_maps(g, x, m, with_fill=True)
        _show(axs[i, 0], x * (1 - m) + m, 'masked' if i == 0 else None); _show(axs[i, 1], comp, 'composite' if i == 0 else None)
        for j, name in enumerate(maps):
            rmc, rm, _ = maps[name]
            _show(axs[i, 2 + 2 * j], region_colormap(rmc, S), f'{name} RMᶜ' if i == 0 else None)
            _show(axs[i, 3 + 2 * j], region_colormap(rm, S), f'{name} RM' if i == 0 else None)
            labels.setdefault(name, []).append(rm.argmax(0).numpy())
    fig.suptitle(title, fontsize=8); fig.tight_layout()
    fig.savefig(out); plt.close(fig)
    stats = {}
    for name, ls in labels.items():
        used = [len(np.unique(l)) for l in ls]
        agree = [float((a == b).mean()) for a, b in itertools.combinations(ls, 2)]
        stats[name] = dict(regions_used=round(float(np.mean(used)), 1), layout_agreement=round(float(np.mean(agree)), 3),
                           chance=round(float(np.mean([1 / u for u in used])), 3))
    return stats

def main(argv=None):
    ap = argparse.ArgumentParser(); ap.add_argument('faces'); ap.add_argument('scenes')
    ap.add_argument('--n', type=int, default=4); ap.add_argument('--stats-n', type=int, default=32); ap.add_argument('--out', default='docs')
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    res = {}
    for kind, src in (('faces', a.faces), ('scenes', a.scenes)):
        g = load_generator(name='face' if kind == 'faces' else 'scene', device='cpu')
        paths = list_images(src)
        step = max(1, len(paths) // a.stats_n)
        res[kind] = figure(g, paths[::step][:a.n], Path(a.out)/f'fig4_{kind}.png',
                           f"shipped {kind[:-1]} model ({g.meta['step']:,} steps): argmax of the {g.cfg.n_regions} regions")
        # the statistics over more photos than the figure shows (same model, same seeds)
        res[kind] |= dict(over=figure(g, paths[::step][:a.stats_n], '/tmp/fig4_stats.png', '')) if a.stats_n > a.n else {}
    print(json.dumps(res, indent=1))

if __name__ == '__main__': main()
