"ra_inpaint.generator: every ablation variant runs forward/backward; size errors; LGA placement; it can learn."
import numpy as np
import pytest
import torch
from skimage import data, transform
from skimage.restoration import inpaint_biharmonic

from ra_inpaint.core import preset, seed_everything
from ra_inpaint.generator import InpaintGenerator, generator_summary, overfit_one, hole_l1
from ra_inpaint.lga import LGA

VARIANTS = [('exp1_basicnet', {}), ('exp2_cam_encoder', {}), ('exp3_cam_decoder', {}), ('exp4_ours', {}),
            ('exp5_lga_decoder', {}), ('exp4_ours', dict(n_regions=8)), ('exp4_ours', dict(n_regions=16)),
            ('exp4_ours', dict(n_regions=32))]


def _batch(S, B=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, 3, S, S, generator=g), (torch.rand(B, 1, S, S, generator=g) > 0.75).float()


@pytest.mark.parametrize('name,kw', VARIANTS, ids=[f"{n}{kw.get('n_regions', '')}" for n, kw in VARIANTS])
def test_variant_forward_backward_64(name, kw):
    cfg = preset(name, size=64, **kw)                     # paper widths (base_ch 64), 64x64
    if cfg.attention == 'cam': pytest.importorskip('ra_inpaint.cam')
    torch.manual_seed(0)
    G = InpaintGenerator(cfg)
    img, mask = _batch(64)
    out = G(img, mask)
    assert out.shape == (2, 3, 64, 64) and torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1
    out.mean().backward()
    assert all(p.grad is not None for p in G.parameters())
    expect = {'none': [], 'encoder': [(64, 64), (128, 32)], 'decoder': [(128, 32), (64, 64)]}[cfg.lga_where]
    assert [(l.ch, l.hw) for l in G.lga_layers] == expect
    assert all(isinstance(l, LGA) for l in G.lga_layers)
    for l in G.lga_layers:
        assert l.kind == cfg.attention
        if cfg.attention == 'ra':
            assert l.ra.rmg.n == cfg.n_regions and l.ra.D.shape == (cfg.n_regions, l.ch)
            assert l.ra.last_rm.shape == (2, cfg.n_regions, l.hw, l.hw)
            assert l.ra.rmg.linear.weight.grad.abs().sum() > 0 and l.ra.D.grad.abs().sum() > 0
        assert l.last_sk_weights.shape == (2, 2, l.ch)


def test_lga_after_the_right_layers():
    "Hooks record the feature each LGA receives: encoder layers 1-2 or the two ConvTranspose layers."
    for name, where in [('exp4_ours', ('enc1', 'enc2')), ('exp5_lga_decoder', ('dec1', 'dec2'))]:
        G = InpaintGenerator(preset(name, size=32, base_ch=8))
        seen = {}
        for k in where: getattr(G, k).register_forward_hook(lambda m, i, o, k=k: seen.__setitem__(k, o))
        got = {}
        for k, l in G.lga.items(): l.register_forward_pre_hook(lambda m, a, k=k: got.__setitem__(k, a))
        img, mask = _batch(32, B=1)
        with torch.no_grad(): G(img, mask)
        assert list(G.lga) == list(where)
        for k in where:
            assert torch.equal(got[k][0], seen[k])           # LGA input is that layer's output
            m = got[k][1]; h = seen[k].shape[-1]
            ref = mask.reshape(1, 1, h, 32 // h, h, 32 // h).amax((3, 5))   # max-pooled mask
            assert torch.equal(m, ref)


def test_hole_content_never_used():
    torch.manual_seed(0)
    G = InpaintGenerator(preset('demo')).eval()
    img, mask = _batch(64)
    img2 = torch.where(mask.bool().expand_as(img), torch.rand_like(img), img)
    with torch.no_grad(): torch.testing.assert_close(G(img2, mask), G(img, mask))


def test_wrong_size_is_a_clear_error():
    G = InpaintGenerator(preset('demo'))                   # built for 64
    with pytest.raises(ValueError, match=r'model built for 64x64, got 32x32; resize'):
        G(torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match='mask must be'): G(torch.rand(1, 3, 64, 64), torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r'image must be \(B,3,H,W\)'): G(torch.rand(1, 4, 64, 64), torch.zeros(1, 1, 64, 64))


def test_parameter_counts_at_256():
    s4 = generator_summary(preset('exp4_ours'))
    s1 = generator_summary(preset('exp1_basicnet'))
    # the shared linears: 4096x4096 (+bias) at 256^2 and 1024x1024 (+bias) at 128^2, whatever n is
    assert s4['shared_linear_params'] == 4096 * 4097 + 1024 * 1025
    for n in (8, 32):
        assert generator_summary(preset('exp4_ours', n_regions=n))['shared_linear_params'] == s4['shared_linear_params']
    assert s1['lga_params'] == 0 and s1['params'] + s4['lga_params'] == s4['params']
    # EdgeConnect backbone with 4 res blocks, base 64, counted by hand
    conv = lambda i, o, k: i * o * k * k + o
    backbone = (conv(4, 64, 7) + conv(64, 128, 4) + conv(128, 256, 4) + 4 * 2 * conv(256, 256, 3)
                + conv(256, 128, 4) + conv(128, 64, 4) + conv(64, 3, 7))
    assert s1['params'] == backbone


def test_ours_256_forward_backward_batch1():
    "The paper-size model (16.8M-weight share-weight linear) at 256^2, batch 1: ~5 s on one CPU core."
    torch.manual_seed(0)
    G = InpaintGenerator(preset('exp4_ours'))
    img, mask = _batch(256, B=1)
    out = G(img, mask); out.mean().backward()
    assert out.shape == (1, 3, 256, 256)
    assert G.lga_layers[0].ra.rmg.linear.weight.shape == (4096, 4096)
    assert G.lga_layers[0].ra.rmg.linear.weight.grad.abs().sum() > 0


# the push-pull path starts near its fill (less to drop) and scales its residual by σ (slower to memorise in 120 steps)
@pytest.mark.parametrize('color_path,drop,vs_bh', [('none', 3, .5), ('coarse', 1.5, .7)])
def test_overfits_one_image_below_biharmonic(color_path, drop, vs_bh):
    S = 64
    img = torch.from_numpy(transform.resize(data.astronaut(), (S, S), anti_aliasing=True).astype(np.float32)).permute(2, 0, 1)[None]
    mask = torch.zeros(1, 1, S, S); mask[..., 16:32, 21:37] = 1; mask[..., 40:48, 8:56] = 1
    bh = inpaint_biharmonic(img[0].permute(1, 2, 0).numpy(), mask[0, 0].numpy().astype(bool), channel_axis=-1)
    bh = torch.from_numpy(bh.astype(np.float32)).permute(2, 0, 1)[None]
    l1_bh = hole_l1(bh, img, mask)
    seed_everything(0)
    nt = torch.get_num_threads()
    torch.set_num_threads(1)   # small convolutions: one thread is faster than two fighting for shared cores
    try:
        g, losses = overfit_one(preset('demo', color_path=color_path), img, mask, steps=120, lr=2e-3)
        with torch.no_grad(): l1_g = hole_l1(g(img, mask), img, mask)
    finally: torch.set_num_threads(nt)
    assert losses[-1] < losses[0] / drop
    assert l1_g < vs_bh * l1_bh, (l1_g, l1_bh)
