import matplotlib; matplotlib.use('Agg')
import matplotlib.pyplot as plt
import pytest, torch
from matplotlib.figure import Figure

from ra_inpaint.core import preset
from ra_inpaint.generator import InpaintGenerator
from ra_inpaint.masks import free_form_mask
from ra_inpaint.visualize import (region_maps, region_colormap, region_palette, plot_region_overview, plot_regions,
                                  plot_sk_weights, explorer_figure, explorer)

S = 32

@pytest.fixture(scope='module')
def case():
    torch.manual_seed(0)
    g = InpaintGenerator(preset('demo', size=S, base_ch=8, n_regions=8))
    img = torch.rand(3, S, S)
    m = torch.from_numpy(free_form_mask(S, '20-30', rng=0))[None]
    return g, img, m

def test_region_maps_shapes_and_softmax(case):
    g, img, m = case
    maps = region_maps(g, img, m)
    assert list(maps) == ['enc1', 'enc2']
    for name, hw, ch in [('enc1', S, 8), ('enc2', S // 2, 16)]:
        rmc, rm, sk = maps[name]
        assert rmc.shape == rm.shape == (8, hw, hw)
        assert sk.shape == (2, ch)
        assert torch.allclose(rm.sum(0), torch.ones(hw, hw), atol=1e-5)
        assert torch.allclose(sk.sum(0), torch.ones(ch), atol=1e-5)
        assert (rm >= 0).all()
    # the maps are the softmax of the refined scores: not the coarse map itself
    assert not torch.allclose(maps['enc1'][0], maps['enc1'][1])
    assert g.training  # region_maps restores the mode

def test_colormap(case):
    g, img, m = case
    rm = region_maps(g, img, m)['enc2'][1]
    cm = region_colormap(rm, S)
    assert cm.shape == (S, S, 3)
    lab = rm.argmax(0)                       # reference: nearest upsampling by 2 with a loop
    pal = region_palette(8)
    for y in range(0, S, 5):
        for x in range(0, S, 7):
            assert (cm[y, x] == pal[lab[y // 2, x // 2]]).all()
    assert len({tuple(c) for c in pal}) == 8

def test_figures(case):
    g, img, m = case
    maps = region_maps(g, img, m)
    for f in [plot_region_overview(g, img, m, maps), plot_regions(maps, 'enc1'), plot_regions(maps, 'enc2', 'rm_coarse'),
              plot_sk_weights(maps), explorer_figure(g, img, '40-50', seed=1)]:
        assert isinstance(f, Figure)
        plt.close(f)
    assert type(explorer(g, [img, img])).__name__ == 'VBox'

def test_cam_and_basicnet():
    g = InpaintGenerator(preset('exp2_cam_encoder', size=S, base_ch=8))
    img, m = torch.rand(3, S, S), torch.from_numpy(free_form_mask(S, '20-30', rng=0))[None]
    maps = region_maps(g, img, m)
    assert all(v[0] is None and v[1] is None and v[2].shape[0] == 2 for v in maps.values())
    plt.close(plot_region_overview(g, img, m, maps))
    assert region_maps(InpaintGenerator(preset('exp1_basicnet', size=S, base_ch=8)), img, m) == {}

def _bn_state(g):
    return {k: v.clone() for k, v in g.state_dict().items() if 'running' in k or 'num_batches' in k}

def test_train_mode_generator_untouched():
    # a generator in train mode: figures must not overwrite the RMG BatchNorm running stats with batch-of-1 statistics
    from ra_inpaint.visualize import fill_one
    torch.manual_seed(1)
    g = InpaintGenerator(preset('demo', size=S, base_ch=8, n_regions=8)).train()
    img, m = torch.rand(3, S, S), torch.from_numpy(free_form_mask(S, '30-40', rng=2))[None]
    before = _bn_state(g)
    assert before and any('running_mean' in k for k in before)
    ref = g.eval()(img[None] * (1 - m[None]), m[None])[0].detach(); g.train()
    pred, comp = fill_one(g, img, m)
    assert g.training
    assert torch.allclose(pred, ref, atol=1e-6)       # eval-mode prediction, not batch statistics
    assert torch.allclose(comp, pred * m + img * (1 - m), atol=1e-6)
    plt.close(plot_region_overview(g, img, m))
    plt.close(plot_region_overview(g, img, m, region_maps(g, img, m)))
    plt.close(explorer_figure(g, img, '20-30', seed=0))
    assert g.training
    after = _bn_state(g)
    for k in before: assert torch.equal(before[k], after[k]), k

def test_one_forward_pass_per_figure(case):
    g, img, m = case
    calls = []
    h = g.register_forward_hook(lambda *a: calls.append(1))
    try:
        maps, pred, comp = region_maps(g, img, m, with_fill=True)
        assert len(calls) == 1 and pred.shape == comp.shape == img.shape
        assert torch.allclose(comp, pred * m + img * (1 - m), atol=1e-6)
        assert list(maps) == ['enc1', 'enc2']
        calls.clear(); plt.close(plot_region_overview(g, img, m)); assert len(calls) == 1
        calls.clear(); plt.close(explorer_figure(g, img, '40-50', seed=1)); assert len(calls) == 1
    finally: h.remove()
