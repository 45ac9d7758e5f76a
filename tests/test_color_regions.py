"Colour path (push-pull fill + residual), region usage (perplexity, balance term), EMA of G, the normalised VGG-19 extractor."
import math, warnings

import numpy as np
import pytest
import torch
from PIL import Image

from ra_inpaint.core import preset, ConfigError
from ra_inpaint.generator import InpaintGenerator, coarse_fill
from ra_inpaint.attention import region_perplexity, effective_regions
from ra_inpaint.data import InpaintDataset
from ra_inpaint.losses import VGG19Features, vgg19_normalised, WeightsNotFoundError
from ra_inpaint.checkpoint import load_checkpoint, export_generator, MODEL_FIELDS, config_mismatch
from ra_inpaint.train import Trainer, ema_decay_at
from ra_inpaint.logs import read_log
from ra_inpaint.infer import load_generator
from test_train import tiny, one_thread  # the training tests' 32² config, and one torch thread per module


@pytest.fixture(scope='module')
def img_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp('imgs')
    rng = np.random.default_rng(1)
    for k in range(6):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(d/f'{k}.png')
    return d


def _hole(S=64, B=1):
    m = torch.zeros(B, 1, S, S); m[..., S // 5:S - S // 4, S // 6:S - S // 5] = 1  # a large hole (about 45 %)
    return m


# ---------------------------------------------------------------- the push-pull fill
def test_coarse_fill_keeps_known_pixels_and_constants():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 48, 80, generator=g)  # not square, not a power of two
    m = (torch.rand(2, 1, 48, 80, generator=g) > 0.6).float()
    c = coarse_fill(x, m)
    known = m.expand_as(x) == 0
    assert torch.equal(c[known], x[known])
    assert torch.isfinite(c).all() and c.min() >= 0 and c.max() <= 1
    k = torch.tensor([.08, .12, .31]).view(1, 3, 1, 1).expand(1, 3, 64, 64)
    torch.testing.assert_close(coarse_fill(k, _hole()), k.expand(1, 3, 64, 64), rtol=0, atol=1e-6)


def test_coarse_fill_is_linear_and_ignores_the_hole():
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(1, 3, 64, 64, generator=g), torch.rand(1, 3, 64, 64, generator=g)
    m = _hole()
    torch.testing.assert_close(coarse_fill(x + .1, m), coarse_fill(x, m) + .1, rtol=0, atol=1e-6)
    torch.testing.assert_close(coarse_fill(2 * x - y, m), 2 * coarse_fill(x, m) - coarse_fill(y, m), rtol=0, atol=1e-5)
    x2 = torch.where(m > 0, y, x)  # other contents under the hole
    torch.testing.assert_close(coarse_fill(x2, m), coarse_fill(x, m), rtol=0, atol=0)
    assert torch.isfinite(coarse_fill(x, torch.ones_like(m))).all()  # nothing known: no NaN


# ---------------------------------------------------------------- the generator's colour path
def _random_residual(G):
    "A coarse-path generator whose residual is not zero (its last layer starts at zero)."
    torch.manual_seed(3)
    with torch.no_grad(): G.dec3[1].weight.normal_(0, .003)  # |r| well below 0.5: no clipping at mid gray
    return G.eval()


def test_coarse_generator_starts_at_the_push_pull_fill():
    cfg = preset('demo', color_path='coarse')
    G = InpaintGenerator(cfg).eval()
    x, m = torch.rand(2, 3, 64, 64), _hole(B=2)
    with torch.no_grad(): torch.testing.assert_close(G(x, m), coarse_fill(x, m).clamp(0, 1), rtol=0, atol=0.03)  # a few levels at most


@pytest.mark.parametrize('colour', [(0, 0, 0), (1, 1, 1), (20 / 255, 30 / 255, 80 / 255), (.5, .5, .5), (.9, .1, .2)])
def test_coarse_generator_flat_colours_are_flat(colour):
    "Any weights: a constant image has σ = 0 in every channel, so the output is its push-pull fill: the colour itself."
    G = _random_residual(InpaintGenerator(preset('demo', color_path='coarse')))
    k = torch.tensor(colour, dtype=torch.float32).view(1, 3, 1, 1).expand(1, 3, 64, 64).contiguous()
    with torch.no_grad(): torch.testing.assert_close(G(k, _hole()), k, rtol=0, atol=1e-6)


def test_coarse_generator_follows_a_colour_shift_exactly():
    "Shifting one channel of the known pixels by delta shifts the fill by delta (away from clipping): by construction."
    G = _random_residual(InpaintGenerator(preset('demo', color_path='coarse')))
    g = torch.Generator().manual_seed(2)
    x, m = torch.rand(1, 3, 64, 64, generator=g) * .5 + .25, _hole()
    d = torch.zeros(1, 3, 1, 1); d[0, 2] = 0.1
    with torch.no_grad(): a, b = G(x, m), G(x + d * (1 - m), m)
    inside = (m > 0).expand_as(x) & (a > .02) & (a < .88)
    torch.testing.assert_close((b - a)[inside], (d.expand_as(x))[inside], rtol=0, atol=1e-4)


def test_plain_generator_does_not_follow_a_colour_shift():
    "The EdgeConnect path (color_path='none') is why the coarse path exists: its fill moves by much less than delta."
    torch.manual_seed(0)
    G = InpaintGenerator(preset('demo', color_path='none')).eval()
    x, m = torch.rand(1, 3, 64, 64) * .5 + .25, _hole()
    d = torch.zeros(1, 3, 1, 1); d[0, 2] = 0.1
    with torch.no_grad(): a, b = G(x, m), G(x + d * (1 - m), m)
    moved = (b - a)[:, 2][m[:, 0] > 0].mean().item()
    assert abs(moved - .1) > .03


def test_color_path_is_validated_and_a_model_field():
    with pytest.raises(ConfigError, match='color_path'): preset('demo', color_path='rgb')
    assert 'color_path' in MODEL_FIELDS


# ---------------------------------------------------------------- regions: perplexity and the balance term
def test_region_perplexity_bounds():
    assert region_perplexity(torch.full((8,), 1 / 8)) == pytest.approx(8, rel=1e-4)
    assert region_perplexity(torch.tensor([1., 0, 0])) == pytest.approx(1, rel=1e-4)


def test_trainer_logs_regions_and_the_balance_term_reaches_rmg(img_dir, tmp_path):
    cfg = tiny(w_region=1.0)
    ds = InpaintDataset(str(img_dir), cfg.size, train=True, seed=0)
    tr = Trainer(cfg, ds, tmp_path, vgg=None, progress=False)
    assert tr.terms[-2:] == ['regions_enc1', 'regions_enc2'] and 'region' in tr.terms and 'w_region' in tr.terms
    h = tr.fit(max_steps=2)
    log = read_log(tmp_path/'log.csv')
    for k in ('regions_enc1', 'regions_enc2'):
        assert np.all((1 - 1e-4 <= log[k]) & (log[k] <= cfg.n_regions + 1e-4)), k  # I >= 0 up to float rounding
    for ra, k in zip(tr.ra_layers.values(), ('regions_enc1', 'regions_enc2')):
        assert math.isclose(effective_regions(ra), h['history'][k][-1], rel_tol=1e-4)
    # the term itself: log n - I summed over layers, and with w_region its gradient reaches the region mask generator
    np.testing.assert_allclose(log['region'], sum(np.log(cfg.n_regions) - np.log(log[k]) for k in ('regions_enc1', 'regions_enc2')), rtol=1e-4, atol=1e-6)
    tr.G.zero_grad()
    x, m = torch.rand(2, 3, 32, 32), (torch.rand(2, 1, 32, 32) > .7).float()
    tr.G(x, m)
    out = tr._region_terms(dict(total=torch.zeros(())))
    out['total'].backward()
    assert tr.G.lga['enc1'].ra.rmg.proj.weight.grad.abs().sum() > 0


# ---------------------------------------------------------------- EMA of the generator
def test_ema_decay_warms_up():
    assert ema_decay_at(.999, 0) == pytest.approx(.1) and ema_decay_at(.999, 10**6) == .999


def test_ema_is_kept_saved_resumed_and_exported(img_dir, tmp_path):
    cfg = tiny(ema_decay=.9, ckpt_every=100)
    ds = InpaintDataset(str(img_dir), cfg.size, train=True, seed=0)
    tr = Trainer(cfg, ds, tmp_path, vgg=None, progress=False)
    tr.fit(max_steps=4)
    assert tr.generator is tr.G_ema
    diffs = [(a - b).abs().max().item() for a, b in zip(tr.G_ema.parameters(), tr.G.parameters())]
    assert max(diffs) > 0                      # an average, not a copy
    ck = load_checkpoint(tmp_path/'last.pt')
    for k, v in tr.G_ema.state_dict().items(): assert torch.equal(v, ck['generator_ema'][k]), k
    tr2 = Trainer(cfg, ds, tmp_path, vgg=None, progress=False, resume=True)
    for k, v in tr.G_ema.state_dict().items(): assert torch.equal(v, tr2.G_ema.state_dict()[k]), k
    w = export_generator(tmp_path/'last.pt', tmp_path/'g.pt')
    g = load_generator(w)
    assert g.meta['ema'] is True
    ref = tr.G_ema.state_dict()
    for k, v in g.state_dict().items():
        torch.testing.assert_close(v, ref[k].half().float() if v.is_floating_point() else ref[k], rtol=0, atol=0)


def test_export_continued_extends_the_shipped_meta(img_dir, tmp_path, experiment):
    "experiments/export_continued.py: a continued run's generator ships with the base meta grown by the run's steps, crops, hours and rates."
    ec = experiment('export_continued')
    cfg = tiny(ema_decay=.9, lr=3e-5, d_lr=7e-6)
    ds = InpaintDataset(str(img_dir), cfg.size, train=True, seed=0)
    Trainer(cfg, ds, tmp_path/'run', vgg=None, progress=False).fit(max_steps=3)
    base = dict(step=100, images_seen=800, wall_hours=1.5, hardware='a Xeon', lr_schedule='1e-3 to step 100', data='fake')
    meta = ec.continued_meta(tmp_path/'run', base, cfg, 'an EPYC (fp32)')
    assert (meta['step'], meta['images_seen'], meta['data']) == (103, 800 + 3 * cfg.batch_size, 'fake')
    assert 1.5 <= meta['wall_hours'] < 1.6
    assert meta['hardware'] == 'a Xeon; then 3 steps on an EPYC (fp32)'
    assert meta['lr_schedule'].endswith('at 3e-5 / 7e-6 for 3 steps') and ec.rate(2.5e-5) == '2.5e-5' and ec.rate(1e-4) == '1e-4'
    with pytest.raises(ValueError, match='base_ch'): ec.continued_meta(tmp_path/'run', base, tiny(base_ch=16), 'x')
    w = export_generator(tmp_path/'run'/'last.pt', tmp_path/'w.pt', **base)  # the command: BASE and DST the same file
    ec.main([str(tmp_path/'run'), str(w), str(w), '--hardware', 'an EPYC'])
    m = load_generator(w).meta
    assert (m['step'], m['hardware'], m['data'], m['ema']) == (103, 'a Xeon; then 3 steps on an EPYC', 'fake', True)


# ---------------------------------------------------------------- the normalised VGG-19 as the perceptual network
def test_vgg19_features_from_a_weights_file(tmp_path, img_dir, monkeypatch):
    torch.manual_seed(0)
    net = vgg19_normalised()
    torch.save(net.state_dict(), tmp_path/'vgg19n.pth')
    f = VGG19Features(tmp_path/'vgg19n.pth')
    x = torch.rand(1, 3, 32, 32)
    ref = net[:18](x) / (255 * .226)
    torch.testing.assert_close(f(x)[-1], ref, rtol=1e-5, atol=1e-6)
    monkeypatch.setenv('RA_INPAINT_VGG19', str(tmp_path/'missing.pth'))
    with pytest.raises(WeightsNotFoundError, match='missing.pth'): VGG19Features()
    cfg = tiny(perceptual_net='vgg19_relu3_1', vgg_weights=str(tmp_path/'vgg19n.pth'))
    ds = InpaintDataset(str(img_dir), cfg.size, train=True, seed=0)
    tr = Trainer(cfg, ds, tmp_path/'run', vgg='local', require_vgg=True, progress=False)
    assert tr.info['perceptual_enabled'] and isinstance(tr.loss_fn.vgg, VGG19Features)
    h = tr.fit(max_steps=2)
    assert all(np.isfinite(h['history']['style'])) and h['history']['perceptual'][0] > 0


def test_a_config_saved_before_color_path_means_none(tmp_path):
    "Checkpoints and weights written before the field existed were EdgeConnect's path: they load as color_path='none'."
    from ra_inpaint.core import config_from_dict, config_to_dict
    old = config_to_dict(preset('demo')); old.pop('color_path')
    assert config_from_dict(old, saved=True).color_path == 'none' and config_from_dict(old).color_path == 'coarse'
    assert config_mismatch(old, preset('demo')) == ['color_path'] and config_mismatch(old, preset('demo', color_path='none')) == []
