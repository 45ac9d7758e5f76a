"ra_inpaint.lga: SE and SK against NumPy; LGA shapes, SK weights, gradients; CAM variant."
import numpy as np
import pytest
import torch

from ra_inpaint.core import preset
from ra_inpaint.lga import LGA, SEBlock, SKFusion, mask_to


def _np(t): return t.detach().double().numpy()


def test_se_matches_numpy():
    torch.manual_seed(0)
    se = SEBlock(32, 8); x = torch.randn(2, 32, 5, 6)
    s = _np(x).mean((2, 3))
    h = np.maximum(s @ _np(se.fc1.weight).T + _np(se.fc1.bias), 0)
    e = 1 / (1 + np.exp(-(h @ _np(se.fc2.weight).T + _np(se.fc2.bias))))
    with torch.no_grad(): np.testing.assert_allclose(se(x).numpy(), _np(x) * e[:, :, None, None], atol=1e-5)
    assert se.fc1.out_features == 4 and SEBlock(16, 16).fc1.out_features == 4 and SEBlock(128, 16).fc1.out_features == 8
    assert SEBlock(2, 16).fc1.out_features == 2   # floor of 4 units, never wider than c


def test_sk_matches_numpy_and_dim():
    torch.manual_seed(0)
    sk = SKFusion(64, 2, reduction=16, min_dim=32)
    assert sk.d == 32 and SKFusion(1024, 2, 16, 32).d == 64
    f = [torch.randn(3, 64, 4, 4) for _ in range(2)]
    with torch.no_grad(): out, a = sk(f)
    s = _np(f[0] + f[1]).mean((2, 3))
    z = np.maximum(s @ _np(sk.fc.weight).T + _np(sk.fc.bias), 0)
    lg = np.stack([z @ _np(l.weight).T + _np(l.bias) for l in sk.fcs], 1)
    ar = np.exp(lg) / np.exp(lg).sum(1, keepdims=True)
    np.testing.assert_allclose(a.numpy(), ar, atol=1e-6)
    np.testing.assert_allclose(out.numpy(), ar[:, 0, :, None, None] * _np(f[0]) + ar[:, 1, :, None, None] * _np(f[1]), atol=1e-5)


def test_sk_with_batchnorm_option():
    sk = SKFusion(16, 2, 16, 8, bn=True).train()
    out, a = sk([torch.randn(4, 16, 3, 3), torch.randn(4, 16, 3, 3)])
    torch.testing.assert_close(a.sum(1), torch.ones(4, 16))


def test_mask_to():
    m = torch.zeros(1, 1, 8, 8); m[..., 3, 5] = 1
    small = mask_to(m, (4, 4))
    assert small.sum() == 1 and small[0, 0, 1, 2] == 1          # any hole pixel makes the cell a hole
    assert torch.equal(mask_to(m, 8), m)
    assert mask_to(small, 8).sum() == 4


@pytest.mark.parametrize('attention', ['ra', 'cam'])
def test_lga_shape_sk_weights_gradients(attention):
    if attention == 'cam': pytest.importorskip('ra_inpaint.cam')
    torch.manual_seed(0)
    cfg = preset('demo', attention=attention)
    lga = LGA(16, 32, cfg)
    x = torch.randn(2, 16, 32, 32); mask = (torch.rand(2, 1, 64, 64) > 0.7).float()
    y = lga(x, mask)
    assert y.shape == x.shape
    w = lga.last_sk_weights
    assert w.shape == (2, 2, 16) and not w.requires_grad
    torch.testing.assert_close(w.sum(1), torch.ones(2, 16), atol=1e-6, rtol=0)
    y.pow(2).mean().backward()
    names = ['local_branch.fc1.weight', 'local_branch.fc2.weight', 'sk.fc.weight', 'sk.fcs.0.weight', 'sk.fcs.1.weight']
    if attention == 'ra': names += ['global_branch.D', 'global_branch.rmg.linear.weight', 'global_branch.rmg.proj.weight']
    else: assert lga.ra is None and type(lga.global_branch).__name__ == 'ContextualAttention'
    for k in names:
        g = lga.get_parameter(k).grad
        assert g is not None and g.abs().sum() > 0, k


def test_lga_batch_one_train_mode_and_wrong_size():
    lga = LGA(16, 32, preset('demo')).train()
    y = lga(torch.randn(1, 16, 32, 32), torch.zeros(1, 1, 32, 32))
    y.mean().backward()
    with pytest.raises(ValueError, match='built for 32x32'): lga(torch.randn(1, 16, 16, 16), torch.zeros(1, 1, 16, 16))


def test_lga_is_the_sk_mix_of_its_branches():
    torch.manual_seed(0)
    lga = LGA(16, 32, preset('demo')).eval()
    x, m = torch.randn(2, 16, 32, 32), torch.zeros(2, 1, 32, 32)
    with torch.no_grad():
        y = lga(x, m); g = lga.global_branch(x, m); l = lga.local_branch(x); a = lga.last_sk_weights
        torch.testing.assert_close(y, a[:, 0, :, None, None] * g + a[:, 1, :, None, None] * l)
