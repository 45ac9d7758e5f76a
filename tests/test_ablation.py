import pytest
import torch
from pathlib import Path
from ra_inpaint.data import demo_images
from ra_inpaint import ablation
from ra_inpaint.ablation import (shrink_images, run_ablation, run_tables, split_data, TABLE2_VARIANTS, TABLE3_VARIANTS,
                                 PAPER_TABLE2, PAPER_TABLE3, COLUMNS)

TINY = dict(steps=2, eval_images=2, device='cpu', progress=False,
            base_overrides=dict(size=32, base_ch=8, disc_ch=8, batch_size=2))

@pytest.fixture(scope='module')
def small(tmp_path_factory):
    return shrink_images(demo_images(), 48, tmp_path_factory.mktemp('img'))

def test_split(small):
    tr, te = split_data(small, 2)
    assert len(te) == 2 and not set(tr) & set(te) and len(tr) + 2 == len(small)
    with pytest.raises(ValueError): split_data(small[:2], 2)

def test_tables_shape_and_determinism(small):
    tabs = run_tables(small, **TINY)
    t2, t3 = tabs['table2'], tabs['table3']
    assert list(t2.rows) == list(TABLE2_VARIANTS) and list(t3.rows) == list(TABLE3_VARIANTS)
    for t in (t2, t3):
        for r in t.rows.values():
            assert r['steps'] == 2
            assert all(isinstance(r[k], float) for k in ('l1', 'ssim', 'psnr'))
            assert isinstance(r['fid'], (float, str))
        md = t.to_markdown().splitlines()
        head = md[2]
        assert head.count('(ours)') == 4 and head.count('(paper)') == 4
        assert len([l for l in md if l.startswith('| ') and not l.startswith('| Exp')]) == len(t.rows)
    assert '3.22' in t2.to_markdown() and '14.99' in t3.to_markdown()
    # different variants are different models
    assert t2.rows['exp1_basicnet']['psnr'] != t2.rows['exp4_ours']['psnr']
    again = run_ablation({k: TABLE3_VARIANTS[k] for k in ('n=8', 'n=32')}, small, **TINY)
    for k in ('n=8', 'n=32'):
        for c in COLUMNS: assert again.rows[k][c] == t3.rows[k][c]

def test_budget_required(small):
    with pytest.raises(ValueError): run_ablation(TABLE3_VARIANTS, small, eval_images=2)


def _fake_celeba(root):
    "A tiny CelebA layout: 178x218 frames, red only outside the centred 178x178 square (rows 20-197)."
    import numpy as np
    from PIL import Image
    (root/'img_align_celeba').mkdir(parents=True)
    for i in range(1, 7):
        a = np.random.default_rng(i).integers(0, 256, (218, 178, 3), dtype=np.uint8)
        a[..., 0] = 0; a[:20, :, 0] = a[198:, :, 0] = 255
        Image.fromarray(a).save(root/'img_align_celeba'/f'{i:06d}.png')
    (root/'list_eval_partition.txt').write_text(''.join(f'{i:06d}.png {0 if i <= 4 else 2}\n' for i in range(1, 7)))
    return f'celeba:{root}'


def _spy_trainer(monkeypatch):
    "Let Trainer run as usual but keep every training set handed to it."
    seen = []
    class Spy(ablation.Trainer):
        def __init__(self, cfg, ds, *a, **k):
            seen.append(ds); super().__init__(cfg, ds, *a, **k)
    monkeypatch.setattr(ablation, 'Trainer', Spy)
    return seen


def test_celeba_keeps_its_square_crop(tmp_path, monkeypatch):
    "Paths from split_data lose the celeba: source; run_ablation must still cut the centre square before cropping."
    src = _fake_celeba(tmp_path/'celeba')
    seen = _spy_trainer(monkeypatch)
    tab = run_ablation({'n=8': TABLE3_VARIANTS['n=8']}, src, **(TINY | dict(steps=1)))
    ds, = seen
    assert ds.square_crop is True and len(ds) == 4        # the 4 train-split faces
    red = []
    for e in range(3):
        ds.set_epoch(e)
        red += [ds[i]['image'][0].max().item() for i in range(len(ds))]
    assert max(red) == 0, red                             # no crop reaches the frame outside the square
    assert 'centre square first' in tab.budget
    # a folder is not CelebA: no square crop, unless asked for
    run_ablation({'n=8': TABLE3_VARIANTS['n=8']}, tmp_path/'celeba'/'img_align_celeba', **(TINY | dict(steps=1)))
    run_ablation({'n=8': TABLE3_VARIANTS['n=8']}, tmp_path/'celeba'/'img_align_celeba', square_crop=True, **(TINY | dict(steps=1)))
    assert [d.square_crop for d in seen[1:]] == [False, True]


def test_mask_folder_and_polarity(small, tmp_path, monkeypatch):
    "masks= trains and evaluates on a MaskFolder, with its polarity (a black-hole set such as QD-IMD)."
    import numpy as np
    from PIL import Image
    (tmp_path/'m').mkdir()
    for i, h in enumerate((10, 16, 22, 29)):               # black = hole: 16, 25, 34, 45 % (44 % at 32²), one per Table-1 bucket
        m = np.full((64, 64), 255, np.uint8); m[8:8 + h] = 0
        Image.fromarray(m).save(tmp_path/'m'/f'{i}.png')
    seen = _spy_trainer(monkeypatch)
    tab = run_ablation({'n=8': TABLE3_VARIANTS['n=8']}, small, masks=tmp_path/'m', polarity='black_hole', **(TINY | dict(steps=1)))
    mk = seen[0].masks
    assert mk.polarity == 'black_hole' and len(mk) == 4
    assert [round(mk[i].mean().item(), 2) for i in range(4)] == [0.16, 0.25, 0.34, 0.44]  # at 32²: the black rows are the hole
    assert 'black_hole' in tab.budget


def test_study_records_no_row_for_an_interrupted_run(small, tmp_path, monkeypatch):
    "A run stopped by a signal before its steps (the trainer returns early) writes no row, and the study stops there."
    class Stopped:
        def __init__(self, *a, **k): self.counters = {}
        def fit(self, max_steps): return dict(step=max_steps // 2)   # what a SIGTERM'd trainer returns
        def close(self): pass
    monkeypatch.setattr(ablation, 'Trainer', Stopped)
    with pytest.warns(UserWarning, match='exp4_ours seed 0 stopped at step 1 of 2'):
        rows = ablation.run_study({'exp4_ours': TABLE2_VARIANTS['exp4_ours']}, small[:4], small[4:], seeds=(0, 1), steps=2,
                                  base_overrides=TINY['base_overrides'], out=tmp_path, device='cpu', progress=False)
    assert rows == [] and not (tmp_path/'runs.jsonl').exists()


def test_study_script_stops_at_an_interrupted_variant(monkeypatch, experiment):
    "experiments/ablation_study.py: when a run is stopped by a signal, it exits 1 instead of starting the next variant."
    mod = experiment('ablation_study')
    calls = []
    def fake(variants, *a, seeds, **k):
        (v,) = variants; calls.append(v)
        return [dict(variant=v, seed=s) for s in seeds][:1 if v == 'n=32' else None]  # n = 32 stops after its first seed
    monkeypatch.setattr(mod, 'run_study', fake)
    assert mod.main(['t', 'e', 'o', '--variants', 'n=8', 'n=32', 'exp2_cam_encoder']) == 1
    assert calls == ['n=8', 'n=32']
    calls.clear()
    threads = torch.get_num_threads()
    try:
        assert mod.main(['t', 'e', 'o', '--variants', 'n=8', 'exp4_width24', '--threads', '2']) is None
        assert calls == ['n=8', 'exp4_width24'] and torch.get_num_threads() == 2  # --threads: a last run on both cores
    finally: torch.set_num_threads(threads)


def test_report_script_table3_checks_only_table3(tmp_path, experiment):
    "experiments/ablation_report.py --table3 (faces): the claims table has n = 16 against n = 8 and n = 32, and no Table 2 claim."
    import json
    rows = [r for r in ablation.read_runs(Path(__file__).resolve().parents[1]/'docs'/'ablation'/'runs.jsonl')
            if r['variant'] in ('exp4_ours', 'n=8')]
    (tmp_path/'runs.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    mod = experiment('ablation_report')
    mod.main([str(tmp_path), '--table3'])
    md = (tmp_path/'results.md').read_text()
    assert '| n=16 > n=8 | +' in md and '| n=16 > n=32 | not run |' in md and 'exp4_ours > exp1_basicnet' not in md and 'Implied' not in md
    assert (tmp_path/'study.png').stat().st_size > 0
    mod.main([str(tmp_path)])  # without the flag: every claim of the paper, the unrun ones said so
    md = (tmp_path/'results.md').read_text()
    assert '| exp4_ours > exp1_basicnet | not run |' in md and '| exp3_cam_decoder > exp1_basicnet | not run |' in md  # and the chain's implied pairs
