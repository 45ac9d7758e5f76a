"ra_inpaint.rmg: eq. 1-3 against a NumPy/SciPy/scikit-image reference; the share-weight linear is one shared matrix."
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.signal import correlate
from skimage.transform import resize

from ra_inpaint.rmg import RegionMaskGenerator, RMG, SharedLinear


def _conv_ref(x, w, b):
    "x (C,H,W), w (O,C,k,k) 'same' zero-padded cross-correlation, in float64."
    k = w.shape[-1]; p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p)))
    return np.stack([sum(correlate(xp[c], w[o, c], mode='valid') for c in range(x.shape[0])) + b[o]
                     for o in range(w.shape[0])])


def _rmg_ref(m, x):
    "Eq. 1-3 written step by step with NumPy, SciPy and scikit-image, for one image x (C,H,W)."
    P = {k: v.detach().double().numpy() for k, v in m.state_dict().items()}
    r, hw = m.r, m.hw
    xp = _conv_ref(x, P['proj.weight'], P['proj.bias'])                      # 5x5 conv c -> n
    n = xp.shape[0]
    low = xp.reshape(n, hw // r, r, hw // r, r).mean((2, 4))                  # r x r average pooling
    rmc = np.stack([(P['linear.weight'] @ low[i].ravel() + P['linear.bias']).reshape(hw // r, hw // r)
                    for i in range(n)])                                       # the same linear for every channel
    up = np.stack([resize(c, (hw, hw), order=1, mode='edge', anti_aliasing=False) for c in rmc])  # bilinear
    ref = _conv_ref(up, P['refine.weight'], P['refine.bias'])
    bn = (ref - P['bn.running_mean'][:, None, None]) / np.sqrt(P['bn.running_var'][:, None, None] + m.bn.eps)
    bn = bn * P['bn.weight'][:, None, None] + P['bn.bias'][:, None, None]
    e = np.exp(bn - bn.max(0))
    return up, e / e.sum(0)


@pytest.mark.parametrize('init', ['identity', 'default'])
def test_rmg_matches_reference(init):
    torch.manual_seed(0)
    m = RMG(ch=3, hw=8, n_regions=4, reduction=2, init=init)
    with torch.no_grad():  # non-trivial BN statistics, so the eval-mode BN is really tested
        m.bn.running_mean.uniform_(-.5, .5); m.bn.running_var.uniform_(.5, 2); m.bn.weight.uniform_(.5, 1.5); m.bn.bias.uniform_(-.2, .2)
    m.eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad(): rmc, rm = m(x)
    for b in range(2):
        up, rm_ref = _rmg_ref(m, x[b].double().numpy())
        np.testing.assert_allclose(rmc[b].numpy(), up, atol=1e-5)
        np.testing.assert_allclose(rm[b].numpy(), rm_ref, atol=1e-5)


def test_softmax_over_regions_sums_to_one_train_mode():
    m = RMG(ch=8, hw=16, n_regions=5, reduction=4).train()
    _, rm = m(torch.randn(3, 8, 16, 16) * 5)
    assert rm.shape == (3, 5, 16, 16)
    torch.testing.assert_close(rm.sum(1), torch.ones(3, 16, 16), atol=1e-5, rtol=0)
    assert (rm >= 0).all()


def test_share_weight_linear_is_shared_and_independent_of_n():
    shapes = set()
    for n in (1, 8, 16, 32):
        m = RMG(ch=8, hw=32, n_regions=n, reduction=4)
        lin_params = [(k, p.shape) for k, p in m.named_parameters() if k.startswith('linear.')]
        assert lin_params == [('linear.weight', (64, 64)), ('linear.bias', (64,))]
        shapes.add(m.linear.weight.shape)
        # no per-channel copies anywhere: the only 64x64 matrix is the shared one
        assert sum(p.shape == (64, 64) for p in m.parameters()) == 1
    assert shapes == {(64, 64)}


def test_shared_linear_equals_per_channel_loop():
    torch.manual_seed(1)
    sl = SharedLinear(9, init='default')
    lin = nn.Linear(9, 9); lin.load_state_dict(dict(weight=sl.weight, bias=sl.bias))
    x = torch.randn(2, 6, 3, 3)
    with torch.no_grad():
        ref = torch.stack([torch.stack([lin(x[b, i].reshape(9)).reshape(3, 3) for i in range(6)]) for b in range(2)])
        torch.testing.assert_close(sl(x), ref, atol=1e-6, rtol=1e-6)


def test_identity_init_passes_values():
    x = torch.randn(2, 3, 4, 4)
    with torch.no_grad(): assert torch.equal(SharedLinear(16)(x), x)
    with pytest.raises(ValueError, match='identity'): SharedLinear(4, init='zeros')


def test_wrong_resolution_names_built_size():
    m = RMG(ch=4, hw=32, n_regions=4, reduction=4)
    with pytest.raises(ValueError, match=r'built for 32x32'): m(torch.randn(1, 4, 64, 64))
    with pytest.raises(ValueError, match=r'built for 32x32'): m(torch.randn(1, 4, 32, 16))
    with pytest.raises(ValueError, match='channels'): m(torch.randn(1, 5, 32, 32))
    with pytest.raises(ValueError, match='multiple of the reduction'): RMG(4, 30, reduction=4)


def test_paper_size_parameter_count():
    with torch.device('meta'):
        m = RMG(64, 256, n_regions=16, reduction=4)
    assert m.linear.weight.shape == (4096, 4096)
    assert m.linear.weight.numel() == 16_777_216


def test_gradients_reach_every_parameter():
    m = RMG(ch=4, hw=16, n_regions=3, reduction=4)
    rmc, rm = m(torch.randn(2, 4, 16, 16))
    (rm * torch.randn_like(rm)).sum().backward()
    for k, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, k


def _pair(init='default'):
    "The same RMG twice, eq. 1 as printed and the holes-only variant, with a linear far from the identity."
    torch.manual_seed(4)
    a = RMG(ch=6, hw=16, n_regions=3, reduction=4, init=init)
    b = RMG(ch=6, hw=16, n_regions=3, reduction=4, init=init, holes_only=True)
    b.load_state_dict(a.state_dict())
    return a.eval(), b.eval()


def test_holes_only_off_is_eq1_whatever_the_mask():
    a, _ = _pair()
    x = torch.randn(2, 6, 16, 16)
    hole = (torch.rand(2, 1, 16, 16) > .6).float()
    with torch.no_grad():
        ref = a(x)
        for r, o in zip(ref, a(x, hole)): assert torch.equal(r, o)
    for b in range(2):  # and still the NumPy reference of eq. 1-3
        up, rm_ref = _rmg_ref(a, x[b].double().numpy())
        np.testing.assert_allclose(ref[0][b].numpy(), up, atol=1e-5)
        np.testing.assert_allclose(ref[1][b].numpy(), rm_ref, atol=1e-5)


def test_holes_only_known_cells_are_the_projection():
    "RMc = M * linear(X') + (1 - M) * X' at the linear's resolution, M = 1 where a 4x4 cell holds any hole pixel."
    a, b = _pair()
    x = torch.randn(2, 6, 16, 16)
    hole = torch.zeros(2, 1, 16, 16); hole[0, :, 5, 6] = 1; hole[1, :, 8:16, 0:3] = 1   # one pixel; a block
    M = torch.zeros(2, 1, 4, 4); M[0, :, 1, 1] = 1; M[1, :, 2:4, 0] = 1
    with torch.no_grad():
        P = {k: v.double().numpy() for k, v in a.state_dict().items()}
        for i in range(2):
            xp = _conv_ref(x[i].double().numpy(), P['proj.weight'], P['proj.bias'])
            low = xp.reshape(3, 4, 4, 4, 4).mean((2, 4))                                  # X' in 4x4 cells
            lin = np.stack([(P['linear.weight'] @ c.ravel() + P['linear.bias']).reshape(4, 4) for c in low])
            m = M[i, 0].double().numpy()
            got = b.coarse(x[i:i + 1], hole[i:i + 1])[0].double().numpy()
            np.testing.assert_allclose(got[:, m == 0], low[:, m == 0], atol=1e-5)     # known cells: X' itself
            np.testing.assert_allclose(got[:, m == 1], lin[:, m == 1], atol=1e-5)     # hole cells: the linear's
            assert np.abs(lin - low).max() > .1                                        # which is not X'
        up = F.interpolate(b.coarse(x, hole), size=(16, 16), mode='bilinear', align_corners=False)
        torch.testing.assert_close(b(x, hole)[0], up)
        torch.testing.assert_close(b(x, torch.zeros_like(hole))[0],                     # no hole: X', upsampled
                                   F.interpolate(F.avg_pool2d(a.proj(x), 4), size=(16, 16), mode='bilinear', align_corners=False))
    with pytest.raises(ValueError, match='pass the hole mask'): b(x)


def test_holes_only_from_the_config_reaches_every_rmg():
    "RAConfig.rmg_holes_only: the generator's RMGs predict only the holes; without holes the linears do not matter."
    from ra_inpaint.core import preset
    from ra_inpaint.generator import InpaintGenerator
    cfg = dict(size=32, base_ch=8, n_regions=4)
    torch.manual_seed(0); g_off = InpaintGenerator(preset('demo', **cfg)).eval()
    torch.manual_seed(0); g_on = InpaintGenerator(preset('demo', rmg_holes_only=True, **cfg)).eval()
    rmgs = [l.ra.rmg for l in g_on.lga_layers]
    assert len(rmgs) == 2 and all(r.holes_only for r in rmgs) and not any(l.ra.rmg.holes_only for l in g_off.lga_layers)
    img = torch.rand(1, 3, 32, 32)
    none = torch.zeros(1, 1, 32, 32)                             # no hole at all
    with torch.no_grad():
        for r in rmgs: r.linear.weight.add_(torch.randn_like(r.linear.weight) * .3)   # away from the identity
        g_off.load_state_dict(g_on.state_dict())                 # the same weights: only the option differs
        ref = g_on(img, none)
        assert not torch.allclose(ref, g_off(img, none))         # off: the linear rewrites every cell
        for r in rmgs: r.linear.weight.add_(torch.randn_like(r.linear.weight))   # on: only hole cells read it
        torch.testing.assert_close(g_on(img, none), ref)
