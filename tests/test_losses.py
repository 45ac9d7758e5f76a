"Losses (eq. 5-8) checked against slow, obvious references; weights loading and the offline error path."
import os
import pytest
import torch
import torchvision

from ra_inpaint.core import RAConfig
from ra_inpaint.losses import (WeightsNotFoundError, VGG16_FILE, VGG16_ENV, VGGFeatures, load_vgg16, l1_loss,
                               perceptual_loss, gram, style_loss, ralsgan_d_loss, ralsgan_g_loss, GeneratorLoss)

VGG_URL = 'https://download.pytorch.org/models/vgg16-397923af.pth'


@pytest.fixture(scope='module')
def vgg():
    torch.manual_seed(0)
    return load_vgg16(pretrained=False)


@pytest.fixture(scope='module')
def feats(vgg):
    return VGGFeatures(vgg)


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    "torch.hub's cache pointed at an empty folder, no env override."
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path / 'hub'))
    monkeypatch.delenv(VGG16_ENV, raising=False)
    return tmp_path / 'hub' / 'checkpoints'


def _manual_maps(vgg, x):
    "Run torchvision's Sequential layer by layer and keep modules 1, 6, 11, 18, 25 (relu1_1..relu5_1)."
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    h, out = (x - mean) / std, []
    for i, m in enumerate(vgg.features):
        h = m(h.clone())
        if i in (1, 6, 11, 18, 25): out.append(h)
        if i == 25: break
    return out


def test_l1():
    a, b = torch.rand(2, 3, 5, 5), torch.rand(2, 3, 5, 5)
    ref = sum(abs(float(x) - float(y)) for x, y in zip(a.flatten(), b.flatten())) / a.numel()
    assert abs(l1_loss(a, b).item() - ref) < 1e-6


def test_gram_loops():
    f = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    for b in range(2):
        for j in range(3):
            for k in range(3):
                ref = sum(float(f[b, j, y, x] * f[b, k, y, x]) for y in range(4) for x in range(5)) / (3 * 4 * 5)
                assert abs(gram(f)[b, j, k].item() - ref) < 1e-6


def test_gram_float32_under_autocast():
    "The trainer's bf16 autocast must not make the Gram bf16 (bmm is on autocast's lower-precision list)."
    f = torch.randn(2, 8, 16, 16)
    ref = torch.einsum('bchw,bdhw->bcd', f.double(), f.double()) / (8 * 16 * 16)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        g = gram(f)
        g16 = gram(f.bfloat16())  # bf16 features, as VGG produces under autocast: still a float32 Gram of those values
    assert g.dtype == torch.float32 and g16.dtype == torch.float32
    assert ((g.double() - ref).abs().max() / ref.abs().max()).item() < 1e-6
    ref16 = torch.einsum('bchw,bdhw->bcd', f.bfloat16().double(), f.bfloat16().double()) / (8 * 16 * 16)
    assert ((g16.double() - ref16).abs().max() / ref16.abs().max()).item() < 1e-6


def test_features_and_perceptual_style(vgg, feats):
    torch.manual_seed(1)
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    fx, fy = feats(x), feats(y)
    mx, my = _manual_maps(vgg, x), _manual_maps(vgg, y)
    assert [tuple(f.shape[1:]) for f in fx] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 2, 2)]
    for a, b in zip(fx, mx): torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    per = sum(float((a - b).abs().sum()) / a.numel() for a, b in zip(mx, my))
    assert abs(perceptual_loss(fx, fy).item() - per) < 1e-4 * max(1, per)
    sty = 0.
    for a, b in zip(mx, my):
        B, C, H, W = a.shape
        fa, fb = a.reshape(B, C, H * W).double(), b.reshape(B, C, H * W).double()
        ga, gb = fa @ fa.transpose(1, 2) / (C * H * W), fb @ fb.transpose(1, 2) / (C * H * W)
        sty += float((ga - gb).abs().sum()) / ga.numel()
    assert abs(style_loss(fx, fy).item() - sty) < 1e-4 * max(1, sty)


def test_features_frozen_eval(feats):
    assert not any(p.requires_grad for p in feats.parameters())
    feats.train()
    assert not feats.training


def test_ralsgan_hand_numbers():
    r, f = torch.tensor([1., 3.]), torch.tensor([0., -2.])
    # D: mean((r - mean f - 1)^2) + mean((f - mean r + 1)^2) = (1+9)/2 + (1+9)/2
    assert ralsgan_d_loss(r, f).item() == pytest.approx(10.)
    # G: mean((f - mean r - 1)^2) + mean((r - mean f + 1)^2) = (9+25)/2 + (9+25)/2
    assert ralsgan_g_loss(r, f).item() == pytest.approx(34.)
    pr, pf = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    rr, ff = pr.flatten().tolist(), pf.flatten().tolist()
    mr, mf = sum(rr) / len(rr), sum(ff) / len(ff)
    d = sum((x - mf - 1) ** 2 for x in rr) / len(rr) + sum((x - mr + 1) ** 2 for x in ff) / len(ff)
    g = sum((x - mr - 1) ** 2 for x in ff) / len(ff) + sum((x - mf + 1) ** 2 for x in rr) / len(rr)
    assert ralsgan_d_loss(pr, pf).item() == pytest.approx(d, rel=1e-5)
    assert ralsgan_g_loss(pr, pf).item() == pytest.approx(g, rel=1e-5)


def test_generator_loss(feats):
    cfg = RAConfig(size=32)
    torch.manual_seed(2)
    pred = torch.rand(2, 3, 32, 32, requires_grad=True)
    gt, m = torch.rand(2, 3, 32, 32), torch.zeros(2, 1, 32, 32)
    dr, df = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    calls = []
    h = feats.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape[0]))
    o = GeneratorLoss(cfg, feats)(pred, gt, m, dr, df)
    h.remove()
    assert calls == [2, 2]  # the default: pred, then gt in its own no-grad pass (measured faster on CPU and H200)
    fp, fg = feats(pred), feats(gt)
    torch.testing.assert_close(o['perceptual'], perceptual_loss(fp, fg))
    torch.testing.assert_close(o['style'], style_loss(fp, fg))
    exp = o['l1'] * 1 + o['perceptual'] * .1 + o['style'] * 250 + o['adv'] * .1
    torch.testing.assert_close(o['total'], exp)
    o['total'].backward()
    assert pred.grad.abs().sum() > 0
    o2 = GeneratorLoss(cfg)(pred, gt, m)
    assert sorted(o2) == ['l1', 'total', 'w_l1'] and o2['total'].item() == pytest.approx(o2['l1'].item())


def test_generator_loss_weighted_terms(feats):
    "Every term also comes multiplied by its weight (w_*), and those are what the total sums."
    cfg = RAConfig(size=32, w_l1=2., w_perceptual=.3, w_style=40., w_adv=.05, l1_hole_weight=6.)
    torch.manual_seed(3)
    pred, gt = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    m = (torch.rand(2, 1, 32, 32) > .5).float()
    o = GeneratorLoss(cfg, feats)(pred, gt, m, torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4))
    assert sorted(o) == ['adv', 'l1', 'perceptual', 'style', 'total', 'w_adv', 'w_l1', 'w_perceptual', 'w_style']
    for k, w in (('l1', 2.), ('perceptual', .3), ('style', 40.), ('adv', .05)):
        torch.testing.assert_close(o[f'w_{k}'], w * o[k])
    torch.testing.assert_close(o['total'], o['w_l1'] + o['w_perceptual'] + o['w_style'] + o['w_adv'])
    torch.testing.assert_close(o['l1'], l1_loss(pred, gt, m, 6.))


@pytest.mark.parametrize('conv', ['imagenet', 'minus1_1', 'zero1'])
def test_vgg_input_conventions(vgg, conv):
    "cfg.vgg_input: ImageNet mean/std (default), MEDFE/CTSDG's 2x-1, EdgeConnect's x; torchvision's maps of that input."
    x = torch.rand(2, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    fed = dict(imagenet=(x - mean) / std, minus1_1=x * 2 - 1, zero1=x)[conv]
    f = VGGFeatures(vgg, input=conv)
    assert f.input == conv
    with torch.no_grad():
        for i, ref in zip((1, 6, 11, 18, 25), f(x)): torch.testing.assert_close(ref, vgg.features[:i + 1](fed), rtol=1e-5, atol=1e-5)
    assert VGGFeatures(vgg).input == 'imagenet' == RAConfig().vgg_input
    GeneratorLoss(RAConfig(size=32, vgg_input=conv), f)           # matching: fine
    other = 'zero1' if conv != 'zero1' else 'imagenet'
    with pytest.raises(ValueError, match=f"vgg_input='{other}'"): GeneratorLoss(RAConfig(size=32, vgg_input=other), f)


def test_vgg_input_is_checked():
    from ra_inpaint.core import ConfigError
    with pytest.raises(ConfigError, match='vgg_input'): RAConfig(vgg_input='caffe')
    with pytest.raises(ValueError, match='imagenet'): VGGFeatures(load_vgg16(pretrained=False), input='0-255')


def test_missing_weights_error(empty_hub):
    with pytest.raises(WeightsNotFoundError) as e:
        load_vgg16(allow_download=False)
    msg = str(e.value)
    for s in (VGG16_FILE, str(empty_hub), VGG16_ENV, VGG_URL): assert s in msg
    assert isinstance(e.value, FileNotFoundError)


def test_download_failure_becomes_clear_error(empty_hub, monkeypatch):
    def boom(*a, **k): raise OSError('network unreachable')
    monkeypatch.setattr(torch.hub, 'download_url_to_file', boom)
    with pytest.raises(WeightsNotFoundError) as e:
        load_vgg16(allow_download=True)
    assert VGG16_FILE in str(e.value) and 'network unreachable' in str(e.value)


def test_local_file_cache_and_env(vgg, tmp_path, empty_hub, monkeypatch):
    sd = vgg.state_dict()
    p = tmp_path / 'v.pth'
    torch.save(sd, p)
    w = load_vgg16(p).features[28].weight.detach()
    assert torch.equal(w, sd['features.28.weight'])
    monkeypatch.setenv(VGG16_ENV, str(p))
    assert torch.equal(load_vgg16().features[0].bias.detach(), sd['features.0.bias'])
    monkeypatch.delenv(VGG16_ENV)
    empty_hub.mkdir(parents=True)
    torch.save(sd, empty_hub / VGG16_FILE)  # as if torchvision had downloaded it earlier
    assert torch.equal(load_vgg16(allow_download=False).features[2].weight.detach(), sd['features.2.weight'])
    with pytest.raises(WeightsNotFoundError, match='nope.pth'):
        load_vgg16(tmp_path / 'nope.pth')

def test_vgg_one_pass_or_two_give_the_same_losses_and_gradients():
    "cfg.vgg_one_pass only changes how VGG16 is run, not what the losses are."
    import torch
    from ra_inpaint.core import preset
    from ra_inpaint.losses import GeneratorLoss, VGGFeatures, load_vgg16
    torch.manual_seed(0)
    feats = VGGFeatures(load_vgg16(pretrained=False))
    gt = torch.rand(2, 3, 32, 32)
    outs = []
    for one in (True, False):
        pred = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)).requires_grad_()
        l = GeneratorLoss(preset('demo', vgg_one_pass=one), feats)(pred, gt)
        l['total'].backward()
        outs.append((l['perceptual'].detach(), l['style'].detach(), pred.grad.clone()))
    for a, b in zip(*outs): torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
