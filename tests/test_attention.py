"ra_inpaint.attention: eq. 4 against loops; one-hot region masks return dictionary rows; residual; maps kept."
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ra_inpaint.attention import RegionAwareAttention, RA, region_reconstruct


def test_region_reconstruct_matches_loops():
    torch.manual_seed(0)
    rm = torch.randn(2, 4, 3, 5).softmax(1); D = torch.randn(4, 7)
    ref = torch.zeros(2, 7, 3, 5)
    for b in range(2):
        for y in range(3):
            for x in range(5):
                for j in range(4): ref[b, :, y, x] += rm[b, j, y, x] * D[j]
    torch.testing.assert_close(region_reconstruct(rm, D), ref, atol=1e-6, rtol=1e-6)


class _Fixed(nn.Module):
    def __init__(self, rm): super().__init__(); self.rm = rm
    def forward(self, x): return self.rm, self.rm


def test_one_hot_region_mask_returns_dictionary_rows_plus_input():
    torch.manual_seed(0)
    n, c, hw = 5, 6, 8
    lab = torch.randint(0, n, (2, hw, hw))
    ra = RA(ch=c, hw=hw, n_regions=n, reduction=4)
    ra.rmg = _Fixed(F.one_hot(lab, n).permute(0, 3, 1, 2).float())
    with torch.no_grad(): ra.D.normal_()
    x = torch.randn(2, c, hw, hw)
    with torch.no_grad(): y = ra(x)
    for b in range(2):
        for i in range(hw):
            for j in range(hw):
                torch.testing.assert_close(y[b, :, i, j] - x[b, :, i, j], ra.D[lab[b, i, j]].detach(), atol=1e-6, rtol=0)


def test_shapes_maps_kept_detached_and_mask_ignored():
    torch.manual_seed(0)
    ra = RA(ch=8, hw=16, n_regions=4, reduction=4).eval()
    x = torch.randn(2, 8, 16, 16)
    y = ra(x)
    assert y.shape == x.shape
    assert ra.last_rm.shape == ra.last_rm_coarse.shape == (2, 4, 16, 16)
    assert not ra.last_rm.requires_grad and not ra.last_rm_coarse.requires_grad
    torch.testing.assert_close(ra.last_rm.sum(1), torch.ones(2, 16, 16), atol=1e-5, rtol=0)
    with torch.no_grad(): torch.testing.assert_close(ra(x, torch.ones(2, 1, 16, 16)), y.detach())
    ra.keep_maps = False; ra.last_rm = None; ra(x)
    assert ra.last_rm is None


def test_output_is_residual_plus_eq4():
    torch.manual_seed(0)
    ra = RA(ch=8, hw=16, n_regions=4, reduction=4).eval()
    x = torch.randn(1, 8, 16, 16)
    with torch.no_grad():
        y = ra(x); _, rm = ra.rmg(x)
        torch.testing.assert_close(y, x + torch.einsum('bnhw,nc->bchw', rm, ra.D))


def test_gradients_reach_dictionary_and_shared_linear():
    ra = RA(ch=8, hw=16, n_regions=4, reduction=4)
    ra(torch.randn(2, 8, 16, 16)).pow(2).mean().backward()
    for k in ('D', 'rmg.linear.weight', 'rmg.linear.bias', 'rmg.proj.weight', 'rmg.refine.weight', 'rmg.bn.weight'):
        g = ra.get_parameter(k).grad
        assert g is not None and g.abs().sum() > 0, k


def test_wrong_resolution():
    ra = RegionAwareAttention(8, 16)
    with pytest.raises(ValueError, match='built for 16x16'): ra(torch.randn(1, 8, 32, 32))
