"infer.fill's resolution strategies (resize keeping the aspect, crop at the photo's resolution, auto) and `fill --strategy`."
import numpy as np
import pytest
import torch
from PIL import Image

from ra_inpaint.core import preset
from ra_inpaint.generator import InpaintGenerator
from ra_inpaint.infer import fill, hole_groups, STRATEGIES
from ra_inpaint import cli


@pytest.fixture(scope='module')
def G():
    torch.manual_seed(0)
    return InpaintGenerator(preset('demo', color_path='coarse')).eval()


@pytest.mark.parametrize('strategy', STRATEGIES)
@pytest.mark.parametrize('hw', [(1, 50), (50, 1), (7, 300), (300, 100), (64, 64), (33, 47)])
def test_known_pixels_bit_exact_any_shape(G, strategy, hw):
    g = torch.Generator().manual_seed(sum(hw))
    x = torch.rand(3, *hw, generator=g)
    m = (torch.rand(1, *hw, generator=g) > 0.7).float()
    out = fill(G, [x], [m], strategy=strategy)[0]
    assert out.shape == x.shape and torch.isfinite(out).all()
    known = m.expand_as(x) == 0
    assert torch.equal(out[known], x[known])


@pytest.mark.parametrize('strategy', STRATEGIES)
def test_all_hole_and_no_hole(G, strategy):
    x = torch.rand(3, 80, 120)
    assert torch.equal(fill(G, [x], [torch.zeros(1, 80, 120)], strategy=strategy)[0], x)
    out = fill(G, [x], [torch.ones(1, 80, 120)], strategy=strategy)[0]
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_twelve_megapixel_photo_with_small_holes(G):
    x = torch.rand(3, 3000, 4000)
    m = torch.zeros(1, 3000, 4000)
    for k in range(6): m[:, 300 + 400 * k:300 + 400 * k + 40, 500 + 500 * k:500 + 500 * k + 60] = 1
    wins = hole_groups(m, G.cfg.size)
    assert len(wins) == 6 and all(len(g) == 1 and (g[0][2] - g[0][0], g[0][3] - g[0][1]) == (180, 180) for g in wins)
    out = fill(G, [x], [m], strategy='auto')[0]
    assert torch.equal(out[:, m[0] == 0], x[:, m[0] == 0]) and not torch.equal(out, x)


def test_unknown_strategy(G):
    with pytest.raises(ValueError, match='strategy'): fill(G, [torch.rand(3, 8, 8)], [torch.zeros(1, 8, 8)], strategy='zoom')


def test_cli_fill_strategy(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (90, 270, 3), dtype=np.uint8)).save(tmp_path/'wide.png')
    mk = np.zeros((90, 270), np.uint8); mk[40:50, 100:120] = 255
    Image.fromarray(mk).save(tmp_path/'mask.png')
    outs = {}
    for s in ('resize', 'crop'):
        assert cli.main(['fill', '--image', str(tmp_path/'wide.png'), '--mask', str(tmp_path/'mask.png'),
                         '--out', str(tmp_path/s), '--strategy', s, '--device', 'cpu']) == 0
        outs[s] = np.asarray(Image.open(tmp_path/s/'wide.png'))
        assert outs[s].shape == (90, 270, 3)
        np.testing.assert_array_equal(outs[s][mk == 0], np.asarray(Image.open(tmp_path/'wide.png'))[mk == 0])
    assert not np.array_equal(outs['resize'], outs['crop'])
    with pytest.raises(SystemExit): cli.main(['fill', '--image', 'a', '--mask', 'b', '--out', 'c', '--strategy', 'zoom'])


def test_eval_full_res_and_pair_masks(tmp_path, capsys):
    "`eval --full-res` scores photos at their own size; `--pair-masks` pairs each photo with its own mask, in that mask's bucket."
    rng = np.random.default_rng(1)
    (tmp_path/'imgs').mkdir(); (tmp_path/'masks').mkdir()
    for j, (h, w, r) in enumerate([(90, 270, .25), (120, 80, .45)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path/'imgs'/f'p{j}.png')
        mk = np.zeros((h, w), np.uint8); mk[:int(h * r)] = 255
        Image.fromarray(mk).save(tmp_path/'masks'/f'p{j}.png')
    base = ['eval', '--data', str(tmp_path/'imgs'), '--device', 'cpu', '--baselines', 'biharmonic']
    assert cli.main(base + ['--full-res', '--strategy', 'crop', '--out', str(tmp_path/'a'), '--ci']) == 0
    out = capsys.readouterr().out
    assert 'own resolution' in out and 'ours − biharmonic' in out and (tmp_path/'a'/'intervals.md').is_file()
    assert cli.main(base + ['--full-res', '--pair-masks', '--masks', str(tmp_path/'masks'), '--out', str(tmp_path/'b')]) == 0
    md = (tmp_path/'b'/'table.md').read_text()
    assert '20-30%' in md and '40-50%' in md and '10-20%' not in md and "the file of each photo's name" in md
    assert cli.main(base + ['--pair-masks', '--masks', str(tmp_path/'masks'), '--out', str(tmp_path/'c')]) == 2
    assert '--pair-masks needs --full-res' in capsys.readouterr().err


def test_fill_polarity(tmp_path):
    "`fill --polarity black_hole` reads black = hole through the masks chapter's reader."
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(tmp_path/'p.png')
    mk = np.full((40, 60), 255, np.uint8); mk[10:20, 20:40] = 0   # black = hole
    Image.fromarray(mk).save(tmp_path/'m.png')
    assert cli.main(['fill', '--image', str(tmp_path/'p.png'), '--mask', str(tmp_path/'m.png'), '--out', str(tmp_path/'o'),
                     '--polarity', 'black_hole', '--device', 'cpu']) == 0
    a, b = np.asarray(Image.open(tmp_path/'p.png')), np.asarray(Image.open(tmp_path/'o'/'p.png'))
    assert np.array_equal(a[mk == 255], b[mk == 255]) and not np.array_equal(a[mk == 0], b[mk == 0])
