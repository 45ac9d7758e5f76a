"Contextual attention (ra_inpaint.cam) against slow, explicit references."
import pytest
import torch
import torch.nn.functional as F

from ra_inpaint.core import RAConfig
from ra_inpaint.cam import ContextualAttention, contextual_attention, valid_patches


def _patch(t, i, j, k, off):
    "k×k window of t (C,H,W) with top-left corner (i-off, j-off); zeros outside the map."
    P = torch.zeros(t.shape[0], k, k, dtype=t.dtype)
    for a in range(k):
        for c in range(k):
            ii, jj = i - off + a, j - off + c
            if 0 <= ii < t.shape[1] and 0 <= jj < t.shape[2]:
                P[:, a, c] = t[:, ii, jj]
    return P


def cam_loops(x, mask, ksize=3, rate=1, scale=10., eps=1e-4):
    """Explicit loops, float64: average-pool by `rate`, every valid background patch (no hole pixel in the
    k×k low-res window nor in the raw 2r×2r full-res window), cosine similarity, softmax, weighted sum of
    raw patches, paste with a per-pixel overlap counter; y = x (1-m) + att m."""
    B, C, H, W = x.shape
    y = x.clone().double()
    off_k = ksize // 2
    K, off_K = (2 * rate, rate // 2) if rate > 1 else (ksize, ksize // 2)
    unit = lambda p: p / p.norm().clamp_min(eps)
    for b in range(B):
        xb, mb = x[b].double(), (mask[b] > 0).double()
        h, w = H // rate, W // rate
        xd, md = torch.zeros(C, h, w, dtype=torch.double), torch.zeros(1, h, w, dtype=torch.double)
        for i in range(h):
            for j in range(w):
                xd[:, i, j] = xb[:, i * rate:(i + 1) * rate, j * rate:(j + 1) * rate].mean((1, 2))
                md[0, i, j] = mb[0, i * rate:(i + 1) * rate, j * rate:(j + 1) * rate].max()
        bg = [(i, j) for i in range(h) for j in range(w)
              if _patch(md, i, j, ksize, off_k).max() == 0 and _patch(mb, i * rate, j * rate, K, off_K).max() == 0]
        if not bg:
            continue
        acc, cnt = torch.zeros(C, H, W, dtype=torch.double), torch.zeros(H, W, dtype=torch.double)
        for i in range(h):
            for j in range(w):
                f = unit(_patch(xd, i, j, ksize, off_k))
                s = torch.stack([(f * unit(_patch(xd, a, c, ksize, off_k))).sum() for a, c in bg])
                wt = torch.softmax(scale * s, 0)
                P = sum(wt[n] * _patch(xb, a * rate, c * rate, K, off_K) for n, (a, c) in enumerate(bg))
                for a in range(K):
                    for c in range(K):
                        ii, jj = i * rate - off_K + a, j * rate - off_K + c
                        if 0 <= ii < H and 0 <= jj < W:
                            acc[:, ii, jj] += P[:, a, c]
                            cnt[ii, jj] += 1
        m = mask[b].double()
        y[b] = xb * (1 - m) + (acc / cnt) * m
    return y.to(x.dtype)


def cam_yu_style(x, mask, scale=10., eps=1e-4):
    """Yu et al.'s structure for rate=2, ksize=3: per-sample conv2d with normalised 3×3 background kernels,
    conv_transpose2d with raw 4×4 patches at stride 2; exact overlap counts instead of Yu's /4; softmax over
    valid patches only; foreground normalised per 3×3 window (cosine)."""
    out = []
    for xb, mb in zip(x, mask):
        xb, mb = xb[None], (mb[None] > 0).float()
        xd, md = F.avg_pool2d(xb, 2), F.max_pool2d(mb, 2)
        C, h, w = xd.shape[1:]
        kern = F.unfold(xd, 3, padding=1).transpose(1, 2).reshape(h * w, C, 3, 3)
        kn = kern / kern.flatten(1).norm(dim=1).clamp_min(eps)[:, None, None, None]
        fnorm = F.conv2d(xd.square().sum(1, keepdim=True), torch.ones(1, 1, 3, 3), padding=1).sqrt().clamp_min(eps)
        s = F.conv2d(xd, kn, padding=1) / fnorm                       # (1, h*w, h, w)
        ok = (F.conv2d(md, torch.ones(1, 1, 3, 3), padding=1) == 0).flatten()
        ok &= (F.conv2d(F.pad(mb, (1, 1, 1, 1)), torch.ones(1, 1, 4, 4), stride=2) == 0).flatten()
        if not ok.any():
            out.append(xb[0]); continue
        s = (scale * s).masked_fill(~ok[None, :, None, None], float('-inf')).softmax(1)
        raw = F.unfold(F.pad(xb, (1, 1, 1, 1)), 4, stride=2).transpose(1, 2).reshape(h * w, C, 4, 4)
        att = F.conv_transpose2d(s, raw, stride=2, padding=1)
        cnt = F.conv_transpose2d(torch.ones(1, 1, h, w), torch.ones(1, 1, 4, 4), stride=2, padding=1)
        out.append((xb * (1 - mb) + att / cnt * mb)[0])
    return torch.stack(out)


def _masks(S):
    m = torch.zeros(2, 1, S, S)
    m[0, :, 2:6, 3:7] = 1
    m[1, :, 1:4, 0:3] = 1
    return m


@pytest.mark.parametrize('rate,ksize', [(1, 3), (2, 3), (1, 1), (2, 1), (2, 5)])
def test_matches_loop_reference(rate, ksize):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8)
    m = _masks(8)
    torch.testing.assert_close(contextual_attention(x, m, ksize, rate), cam_loops(x, m, ksize, rate), atol=1e-5, rtol=1e-5)


def test_matches_loop_reference_rate3():
    torch.manual_seed(1)
    x = torch.randn(1, 4, 12, 12)
    m = torch.zeros(1, 1, 12, 12); m[..., 4:8, 5:9] = 1
    torch.testing.assert_close(contextual_attention(x, m, 3, 3), cam_loops(x, m, 3, 3), atol=1e-5, rtol=1e-5)


def test_matches_yu_conv_formulation():
    torch.manual_seed(2)
    x = torch.randn(3, 8, 16, 16)
    m = torch.zeros(3, 1, 16, 16); m[0, :, 4:10, 5:12] = 1; m[1, :, 0:5, 0:16] = 1; m[2] = 1
    torch.testing.assert_close(contextual_attention(x, m, 3, 2), cam_yu_style(x, m), atol=1e-5, rtol=1e-5)


def test_valid_patches_small():
    m = torch.zeros(1, 1, 6, 6); m[..., 2, 3] = 1
    ok = valid_patches(m, 3).view(6, 6)
    expect = torch.ones(6, 6, dtype=torch.bool); expect[1:4, 2:5] = False
    assert torch.equal(ok, expect)


def test_no_hole_and_full_hole_return_input():
    x = torch.randn(2, 4, 8, 8)
    for m in (torch.zeros(2, 1, 8, 8), torch.ones(2, 1, 8, 8)):
        y = contextual_attention(x, m)
        assert torch.isfinite(y).all()
        assert torch.equal(y, x)


def test_mixed_batch_full_hole_no_nan_and_grads():
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    m = torch.stack([torch.ones(1, 8, 8), _masks(8)[0]])
    y = contextual_attention(x, m)
    assert torch.equal(y[0].detach(), x[0].detach())
    y.square().sum().backward()
    assert torch.isfinite(x.grad).all()
    # the hole of sample 1 is filled from known patches: gradient reaches known pixels through them
    assert x.grad[1][:, m[1, 0] == 0].abs().sum() > 0


def test_known_positions_unchanged_and_soft_mask_blend():
    torch.manual_seed(3)
    x = torch.randn(2, 4, 8, 8)
    m = _masks(8)
    y = contextual_attention(x, m)
    keep = m.expand_as(x) == 0
    assert torch.equal(y[keep], x[keep])
    assert not torch.allclose(y[~keep], x[~keep])


def test_module_shape_params_and_errors():
    cfg = RAConfig(size=64)
    cam = ContextualAttention(8, cfg)
    x = torch.randn(3, 8, 16, 16)
    m = torch.zeros(3, 1, 16, 16); m[..., 4:10, 6:12] = 1
    assert cam(x, m).shape == x.shape
    assert sum(p.numel() for p in cam.parameters()) == 0
    assert (cam.ksize, cam.rate, cam.softmax_scale) == (cfg.cam_ksize, cfg.cam_rate, cfg.cam_softmax_scale)
    with pytest.raises(ValueError, match='mask must have shape'):
        cam(x, torch.zeros(3, 1, 8, 8))
    with pytest.raises(ValueError, match='channels'):
        cam(torch.randn(3, 4, 16, 16), m)
    with pytest.raises(ValueError, match='cam_rate'):
        contextual_attention(torch.randn(1, 2, 6, 6), torch.zeros(1, 1, 6, 6), rate=4)


def test_copies_the_best_match_raw():
    "Cosine is scale-free and the pasted patch is raw: a hole pixel pointing like x[:,0,0] gets x[:,0,0] itself."
    torch.manual_seed(4)
    x = torch.randn(1, 16, 8, 8)
    m = torch.zeros(1, 1, 8, 8); m[..., 4, 4] = 1
    x[..., 4, 4] = 3 * x[..., 0, 0]
    y = contextual_attention(x, m, ksize=1, rate=1, softmax_scale=1000.)
    torch.testing.assert_close(y[..., 4, 4], x[..., 0, 0])


def cam_dense(x, mask, ksize=3, rate=2, scale=10., eps=1e-4):
    "The first, dense formulation (all B·N² scores at once): the reference the blocked version must match."
    from ra_inpaint.cam import patch_cols, same_pad, raw_pad
    B, C, H, W = x.shape
    hole = (mask > 0).to(x.dtype)
    valid = valid_patches(hole, ksize, rate)
    has_bg = valid.any(1)
    valid = valid | ~has_bg[:, None]
    xd = F.avg_pool2d(x, rate) if rate > 1 else x
    cols = patch_cols(xd, ksize, pad=same_pad(ksize))
    unit = cols / cols.norm(dim=1, keepdim=True).clamp_min(eps)
    attn = (unit.transpose(1, 2) @ unit * scale).masked_fill(~valid[:, :, None], float('-inf')).softmax(1)
    K, S, pad = (2 * rate, rate, raw_pad(rate)) if rate > 1 else (ksize, 1, same_pad(ksize))
    raw = patch_cols(x, K, S, pad)
    size = (H + sum(pad), W + sum(pad))
    pasted = F.fold(raw @ attn, size, K, stride=S)
    count = F.fold(torch.ones_like(raw[:1, :K * K]), size, K, stride=S)
    att = (pasted / count)[..., pad[0]:pad[0] + H, pad[0]:pad[0] + W]
    return torch.where(has_bg[:, None, None, None], x * (1 - mask) + att * mask, x)


@pytest.mark.parametrize('rate,ksize', [(1, 3), (2, 3), (2, 1), (3, 3), (2, 5)])
@pytest.mark.parametrize('max_scores', [None, 1, 16, 2**24])
def test_blocked_matches_dense_forward_and_gradients(rate, ksize, max_scores):
    g = torch.Generator().manual_seed(10 * rate + ksize)
    S = 6 * rate
    x = torch.randn(4, 5, S, S, generator=g, requires_grad=True)
    m = (torch.rand(4, 1, S, S, generator=g) < 0.3).float()
    m[1] = 1                                   # 100 % hole
    m[2] = 0; m[2, :, -2:, -2:] = 1            # a small hole in a corner
    m[3] = 0                                   # no hole
    w = torch.randn(4, 5, S, S, generator=g)
    ref = cam_dense(x, m, ksize, rate)
    g_ref, = torch.autograd.grad((ref * w).sum(), x)
    y = contextual_attention(x, m, ksize, rate, max_scores=max_scores)
    g_y, = torch.autograd.grad((y * w).sum(), x)
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g_y, g_ref, atol=1e-5, rtol=1e-5)


class _LargestTensor(torch.utils._python_dispatch.TorchDispatchMode):
    "Records the largest tensor any op produces (forward and backward)."
    largest = 0
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(t, torch.Tensor): self.largest = max(self.largest, t.numel())
        return out


def test_memory_bounded_no_n_squared_tensor():
    "rate 1 on a 64² map: N = 4096, N² = 16.8 M scores; no tensor of forward or backward may come near that."
    torch.manual_seed(5)
    x = torch.randn(1, 4, 64, 64, requires_grad=True)
    m = torch.zeros(1, 1, 64, 64); m[..., 16:48, 16:48] = 1
    N = 64 * 64
    with _LargestTensor() as rec:
        contextual_attention(x, m, 3, 1, max_scores=2**14).square().sum().backward()
    assert rec.largest <= 4 * 9 * N, rec.largest          # the unfolded patches (C·k²·N) are the largest tensors
    assert x.grad.abs().sum() > 0


def test_module_passes_max_scores():
    cam = ContextualAttention(4, RAConfig(size=64), max_scores=32)
    assert cam.max_scores == 32 and 'max_scores=32' in repr(cam)
    torch.manual_seed(6)
    x = torch.randn(2, 4, 16, 16)
    m = torch.zeros(2, 1, 16, 16); m[..., 4:10, 6:12] = 1
    torch.testing.assert_close(cam(x, m), cam_dense(x, m), atol=1e-5, rtol=1e-5)
