"SN-PatchGAN discriminator (ra_inpaint.discriminator)."
import pytest
import torch
import torch.nn as nn
from scipy.linalg import svd
from torch.nn.utils import parametrize

from ra_inpaint.core import RAConfig, preset
from ra_inpaint.discriminator import (PatchDiscriminator, SNPatchGAN, disc_widths, receptive_field,
                                      disc_receptive_field)


def _convs(d):
    return [m for m in d.modules() if isinstance(m, nn.Conv2d)]


def test_alias():
    assert SNPatchGAN is PatchDiscriminator


def test_output_shape_demo_64():
    cfg = preset('demo')
    assert cfg.disc_layers == 3
    d = PatchDiscriminator(cfg)
    assert d(torch.rand(2, 3, 64, 64)).shape == (2, 1, 64 >> 3, 64 >> 3)


def test_output_shape_paper_256():
    cfg = preset('paper')
    d = PatchDiscriminator(cfg)
    with torch.no_grad():
        out = d(torch.rand(1, 3, 256, 256))
    assert out.shape == (1, 1, 256 >> cfg.disc_layers, 256 >> cfg.disc_layers) == (1, 1, 8, 8)


def test_structure_widths_kernels():
    cfg = RAConfig(disc_ch=8, disc_layers=4)
    d = PatchDiscriminator(cfg)
    convs = _convs(d)
    assert [c.out_channels for c in convs] == [8, 16, 32, 32, 1]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 2, 1]
    assert all(c.kernel_size == (5, 5) for c in convs)
    assert isinstance(d.net[-1], nn.Conv2d)  # logits: no activation after the head
    acts = [m for m in d.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 4 and all(a.negative_slope == 0.2 for a in acts)
    assert disc_widths(64, 6) == [64, 128, 256, 256, 256, 256]


def test_in_ch_and_error():
    d = PatchDiscriminator(preset('demo'), in_ch=4)
    assert d(torch.rand(1, 4, 64, 64)).shape == (1, 1, 8, 8)
    with pytest.raises(ValueError, match='B,4,S,S'):
        d(torch.rand(1, 3, 64, 64))


def test_every_conv_spectral_normalised():
    d = PatchDiscriminator(preset('demo'))
    convs = _convs(d)
    assert len(convs) == 4
    for c in convs:
        assert parametrize.is_parametrized(c, 'weight')
        assert type(c.parametrizations.weight[0]).__name__ == '_SpectralNorm'


def test_largest_singular_value_is_one_after_power_iterations():
    torch.manual_seed(0)
    d = PatchDiscriminator(RAConfig(size=64, disc_ch=16, disc_layers=3)).train()
    for _ in range(30):  # the power iteration does not depend on the input: keep it tiny
        d(torch.rand(1, 3, 16, 16))
    d.eval()  # reading .weight in eval mode uses the current estimate without another iteration
    for c in _convs(d):
        w = c.weight.detach().reshape(c.out_channels, -1).double().numpy()
        raw = c.parametrizations.weight.original.detach().reshape(c.out_channels, -1).double().numpy()
        s = svd(w, compute_uv=False)[0]
        assert abs(s - 1) < 0.02, s
        assert abs(svd(raw, compute_uv=False)[0] - 1) > 0.05  # the check is not vacuous


def test_receptive_field_formula_and_empirical():
    assert receptive_field([(3, 1), (3, 1)]) == 5
    assert receptive_field([(5, 2)] * 3 + [(5, 1)]) == 1 + 4 * (1 + 2 + 4) + 4 * 8
    d = PatchDiscriminator(preset('demo'))
    rf = disc_receptive_field(d)
    assert rf == 61
    x = torch.rand(1, 3, 128, 128, requires_grad=True)
    d(x)[0, 0, 8, 8].backward()
    g = x.grad[0].abs().sum(0)
    rows, cols = g.sum(1).nonzero().flatten(), g.sum(0).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == rf and cols.max() - cols.min() + 1 == rf
    assert disc_receptive_field(PatchDiscriminator(preset('paper'))) == 253


def test_gradients_flow():
    d = PatchDiscriminator(preset('demo'))
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    d(x).mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for c in _convs(d):
        assert c.parametrizations.weight.original.grad.abs().sum() > 0
        assert c.bias.grad is not None
