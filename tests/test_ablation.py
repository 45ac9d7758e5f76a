import pytest
from pathlib import Path
from ra_inpaint.data import demo_images
from ra_inpaint import cli
from ra_inpaint.ablation import (run_ablation, run_tables, split_data, TABLE2_VARIANTS, TABLE3_VARIANTS,
                                 PAPER_TABLE2, PAPER_TABLE3, COLUMNS)

TINY = dict(steps=2, eval_images=2, device='cpu', progress=False,
            base_overrides=dict(size=32, base_ch=8, disc_ch=8, batch_size=2))

@pytest.fixture(scope='module')
def small(tmp_path_factory):
    return cli.shrink_images(demo_images(), 48, tmp_path_factory.mktemp('img'))

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
