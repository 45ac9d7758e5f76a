"Metrics cross-checked against scikit-image and scipy; FID streaming and the offline weights error."
import csv, json
import numpy as np
import pytest
import torch
from scipy import linalg
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.transform import resize

from ra_inpaint.losses import WeightsNotFoundError
from ra_inpaint.metrics import (l1_percent, psnr, ssim, INCEPTION_FILE, INCEPTION_ENV, FIDAccumulator, GaussianStats,
                                frechet_distance, frechet_distance_reference, _frechet_plain, load_inception, BucketTable, biharmonic_fill,
                                quantize, QUANTIZE, CONVENTIONS, score_images, quantize_mode)
import peer_metrics


def _img(name, size=64):
    return torch.from_numpy(resize(getattr(data, name)(), (size, size), anti_aliasing=True)).permute(2, 0, 1).float()


@pytest.fixture(scope='module')
def photos():
    return torch.stack([_img(n) for n in ('astronaut', 'chelsea', 'coffee', 'rocket')])


def _np(t): return t.double().permute(1, 2, 0).numpy()


def _sk_ssim(p, t):
    return structural_similarity(_np(t), _np(p), channel_axis=-1, data_range=1, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False)


def _distortions(photos):
    g = torch.Generator().manual_seed(0)
    noisy = (photos + 0.05 * torch.randn(photos.shape, generator=g)).clamp(0, 1)
    worse = (0.8 * torch.roll(photos, 3, -1) + 0.1 * torch.randn(photos.shape, generator=g)).clamp(0, 1)
    m = torch.zeros(1, 64, 64); m[:, 10:40, 20:45] = 1; m[:, 50:60, 5:60] = 1
    filled = torch.stack([biharmonic_fill(p, m) for p in photos])
    return [noisy, worse, filled]


def test_l1_psnr_vs_skimage(photos):
    for P in _distortions(photos):
        ours_p, ours_l = psnr(P, photos), l1_percent(P, photos)
        assert ours_p.shape == (4,) and ours_l.shape == (4,)
        for k in range(4):
            assert abs(ours_p[k].item() - peak_signal_noise_ratio(_np(photos[k]), _np(P[k]), data_range=1)) < 1e-3
            assert abs(ours_l[k].item() - 100 * np.abs(_np(P[k]) - _np(photos[k])).mean()) < 1e-9
    assert psnr(photos[:1], photos[:1]).item() == float('inf')


def test_ssim_vs_skimage(photos):
    pairs = [(P, photos) for P in _distortions(photos)]
    pairs += [(P[..., 3:60, :49], photos[..., 3:60, :49]) for P in _distortions(photos)]  # odd, non-square
    for P, T in pairs:
        ref = torch.tensor([_sk_ssim(p, t) for p, t in zip(P, T)], dtype=torch.float64)
        assert (ssim(P, T) - ref).abs().max() < 1e-4
        assert (ssim(P, T, dtype=torch.float32).double() - ref).abs().max() < 1e-4
    assert torch.allclose(ssim(photos, photos), torch.ones(4, dtype=torch.float64))
    with pytest.raises(ValueError, match='11x11'):
        ssim(photos[..., :10, :10], photos[..., :10, :10])


def test_biharmonic_fill_keeps_known(photos):
    m = torch.zeros(1, 64, 64); m[:, 20:30, 20:40] = 1
    f = biharmonic_fill(photos[0], m)
    assert torch.equal(f[:, m[0] == 0], photos[0][:, m[0] == 0])
    assert f.shape == photos[0].shape and f.min() >= 0 and f.max() <= 1
    assert (f - photos[0]).abs()[:, m[0] == 1].mean() < 0.2


def test_frechet_closed_form_and_scipy():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    v1, v2 = rng.uniform(.1, 3, 5), rng.uniform(.1, 3, 5)
    exp = ((mu1 - mu2) ** 2).sum() + (v1 + v2 - 2 * np.sqrt(v1 * v2)).sum()
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(exp, rel=1e-10)
    A, B = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    S1, S2 = A @ A.T + np.eye(5), B @ B.T + np.eye(5)
    assert frechet_distance(mu1, S1, mu1, S1) == pytest.approx(0., abs=1e-8)
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(S1 + S2 - 2 * linalg.sqrtm(S1 @ S2).real)
    assert frechet_distance(mu1, S1, mu2, S2) == pytest.approx(ref, rel=1e-9)
    assert _frechet_plain(mu1, S1, mu2, S2) == pytest.approx(ref, rel=1e-9)


def test_gaussian_stats_streaming():
    x = torch.randn(37, 6, dtype=torch.float64) * 3 + 1
    s = GaussianStats()
    for i in range(0, 37, 10): s.update(x[i:i + 10])
    mu, cov = s.mean_cov()
    np.testing.assert_allclose(mu, x.numpy().mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cov, np.cov(x.numpy(), rowvar=False), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match='at least 2'):
        g = GaussianStats(); g.update(x[:1]); g.mean_cov()


def test_fid_pipeline_random_inception(photos):
    "End to end through pytorch-fid's InceptionV3 with random weights (nothing downloaded): streamed == at once."
    r = np.random.default_rng(0)
    def crops(imgs, n):
        out = []
        for k in range(n):
            y, x = r.integers(0, 64 - 40 + 1, 2)
            out.append(imgs[k % 4][:, y:y + 40, x:x + 40])
        return torch.nn.functional.interpolate(torch.stack(out), size=80, mode='bilinear')
    real, fake = crops(photos, 30), crops(photos.flip(-1) * 0.7, 30)
    acc = FIDAccumulator(inception=load_inception(pretrained=False, dims=64, resize_input=False))
    for i, bs in zip((0, 7, 19), (7, 12, 11)): acc.update(real[i:i + bs], fake[i:i + bs])
    assert acc.real.n == acc.fake.n == 30
    with torch.no_grad():
        ar = acc.features(real).double().numpy(); af = acc.features(fake).double().numpy()
    assert ar.shape == (30, 64)
    from pytorch_fid.fid_score import calculate_frechet_distance
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        try: ref = calculate_frechet_distance(ar.mean(0), np.cov(ar, rowvar=False), af.mean(0), np.cov(af, rowvar=False))
        except TypeError: ref = _frechet_plain(ar.mean(0), np.cov(ar, rowvar=False), af.mean(0), np.cov(af, rowvar=False))
    # 30 images in 64 dims: singular covariances, where pytorch-fid's sqrtm of the product is ill-conditioned (~1e-8)
    assert acc.compute() == pytest.approx(ref, rel=1e-6)
    assert acc.compute() == pytest.approx(frechet_distance(ar.mean(0), np.cov(ar, rowvar=False), af.mean(0), np.cov(af, rowvar=False)), rel=1e-6)  # near-zero eigenvalues: sqrt turns 1e-16 rounding into ~1e-8
    assert acc.compute() > 0


@pytest.mark.slow
def test_fid_2048_pool3_shapes(photos):
    net = load_inception(pretrained=False, resize_input=False)
    with torch.no_grad(): out = net(torch.rand(2, 3, 80, 80))
    assert out[0].shape == (2, 2048, 1, 1)


def test_inception_missing_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path / 'hub'))
    monkeypatch.delenv(INCEPTION_ENV, raising=False)
    with pytest.raises(WeightsNotFoundError) as e:
        load_inception(allow_download=False)
    for s in (INCEPTION_FILE, str(tmp_path / 'hub' / 'checkpoints'), INCEPTION_ENV): assert s in str(e.value)
    import pytorch_fid.inception as pfi
    def boom(*a, **k): raise OSError('no route to host')
    monkeypatch.setattr(pfi, 'load_state_dict_from_url', boom)
    with pytest.raises(WeightsNotFoundError, match='no route to host'):
        load_inception(allow_download=True)
    with pytest.raises(WeightsNotFoundError, match='missing.pth'):
        FIDAccumulator(weights=tmp_path / 'missing.pth')


def test_inception_local_file(tmp_path, monkeypatch):
    "A local weights file (here a random FID-Inception state dict) is what the network ends up holding."
    import torchvision
    torch.manual_seed(3)
    sd = torchvision.models.inception_v3(weights=None, num_classes=1008, aux_logits=False, init_weights=False).state_dict()
    p = tmp_path / INCEPTION_FILE
    torch.save(sd, p)
    monkeypatch.setenv(INCEPTION_ENV, str(p))
    net = load_inception(dims=64)
    assert torch.equal(net.blocks[0][0].conv.weight, sd['Conv2d_1a_3x3.conv.weight'])


def test_bucket_table(tmp_path):
    t = BucketTable('x')
    t.add('LBAM', '40-50', 'psnr', 22.95); t.add('Ours', '40-50', 'psnr', 24.17)
    t.add('LBAM', '10-20', 'l1', 0.79); t.add_mean('Ours', '10-20', 'l1', torch.tensor([0.7, 0.78]))
    t.add('Ours', '10-20', 'fid', 'n/a (InceptionV3 weights not found)')
    head, body = t.rows()
    assert head == ['Metric', 'Mask', 'LBAM', 'Ours']
    assert body == [['L1 (%)-', '10-20%', '0.79', '0.74'], ['FID-', '10-20%', '', 'n/a¹'], ['PSNR+', '40-50%', '22.95', '24.17']]
    md = t.to_markdown()
    assert '| PSNR+ | 40-50% | 22.95 | 24.17 |' in md and md.endswith('\n\n¹ InceptionV3 weights not found')
    t.save_json(tmp_path / 'a.json'); t.save_csv(tmp_path / 'a.csv')
    assert BucketTable.load_json(tmp_path / 'a.json').rows() == t.rows()
    assert BucketTable.load_json(tmp_path / 'a.json').get('Ours', '10-20', 'fid') == 'n/a (InceptionV3 weights not found)'
    rows = list(csv.reader(open(tmp_path / 'a.csv')))
    assert rows[0] == ['method', 'bucket', 'metric', 'value', 'n'] and len(rows) == 6
    ours_l1 = [r for r in rows[1:] if r[:3] == ['Ours', '10-20', 'l1']]
    assert len(ours_l1) == 1 and abs(float(ours_l1[0][3]) - 0.74) < 1e-6 and ours_l1[0][4] == '2'
    assert not [p for p in tmp_path.iterdir() if p.name.endswith('.tmp')]


def test_na_cells_marker_and_one_footnote(tmp_path):
    "Each n/a cell shows a short marker; each distinct reason is written once, under the table and in the JSON."
    t = BucketTable()
    long = 'InceptionV3 weights not found at /some/where/pt_inception-2015-12-05-6726825d.pth'
    for me in ('biharmonic', 'ours'):
        for b in ('10-20', '20-30', '10-50'): t.add(me, b, 'fid', f'n/a ({long})')
    t.add('telea', '20-30', 'fid', 'n/a (FID needs >= 2 images, got 1)'); t.add('telea', '10-20', 'fid', 12.5)
    t.add('ours', '10-20', 'ssim', 'n/a')                                   # no reason, no marker
    md = t.to_markdown()
    assert md.count(long) == 1 and md.count('n/a¹') == 6 and md.count('n/a²') == 1
    assert '| FID- | 20-30% | n/a¹ | n/a¹ | n/a² |' in md and '| SSIM+ | 10-20% |  | n/a |  |' in md
    assert md.splitlines()[-2:] == [f'¹ {long}', '² FID needs >= 2 images, got 1']
    assert t.footnotes() == {'¹': long, '²': 'FID needs >= 2 images, got 1'}
    t.save_json(tmp_path / 't.json')
    j = json.loads((tmp_path / 't.json').read_text())
    assert (tmp_path / 't.json').read_text().count(long) == 1 and j['footnotes']['¹'] == long
    assert {r['value'] for r in j['rows'] if r['metric'] == 'fid' and r['method'] != 'telea'} == {'n/a'}
    assert BucketTable.load_json(tmp_path / 't.json').values == t.values
    assert BucketTable().to_markdown().endswith('|---|---|')            # no cell, no footnote


def _u8(t): return (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def test_quantize_is_what_is_saved(photos, tmp_path):
    "round: a PNG written by save_image and read back; floor: EdgeConnect's (x*255).int(); values on the grid stay put."
    from ra_inpaint.core import save_image, load_image
    g = torch.Generator().manual_seed(1)
    x = (photos + 0.3 * torch.randn(photos.shape, generator=g)).clamp(0, 1)
    for k, im in enumerate(x):
        assert torch.equal(quantize(im), load_image(save_image(im, tmp_path / f'{k}.png')))
    assert torch.equal(quantize(x, 'floor'), (x * 255.0).int().float() / 255)
    assert not torch.equal(quantize(x, 'floor'), quantize(x))
    grid = torch.arange(256, dtype=torch.float32) / 255
    for mode in QUANTIZE: assert torch.equal(quantize(grid, mode), grid)
    assert quantize(torch.tensor([-0.2, 1.3])).tolist() == [0., 1.]
    with pytest.raises(ValueError, match='round'): quantize(x, 'nearest')


@pytest.mark.parametrize('convention', ['ra', 'edgeconnect', 'ctsdg'])
def test_convention_matches_peer_transcription(photos, convention):
    "score_images(convention) equals the peer's formula (tests/peer_metrics.py) on fixed 8-bit images: fills, noise, a shift."
    m = torch.zeros(1, 64, 64); m[:, 10:40, 20:45] = 1; m[:, 50:60, 5:60] = 1
    T = quantize(photos)
    g = torch.Generator().manual_seed(0)
    cases = [quantize(torch.stack([biharmonic_fill(t, m) for t in T]), CONVENTIONS[convention].quantize),
             quantize((T + 0.05 * torch.randn(T.shape, generator=g)).clamp(0, 1)), quantize(0.8 * torch.roll(T, 3, -1))]
    # EdgeConnect's script makes its gray image in float32, ours is float64: ~1e-7 apart. Population instead of
    # sample covariances would be 4e-6 off on its SSIM, a zero-padded border 0.07 off on LBAM's.
    tol = dict(l1=1e-6, psnr=1e-6, ssim=1e-7) if convention == 'edgeconnect' else dict(l1=1e-9, psnr=1e-9, ssim=1e-9)
    for P in cases:
        ours = score_images(P, T, convention)
        assert set(ours) == {'l1', 'psnr', 'ssim'} and all(v.shape == (4,) for v in ours.values())
        for j in range(4):
            ref = peer_metrics.PEERS[convention](_u8(P[j]), _u8(T[j]))
            for k in ('l1', 'psnr', 'ssim'):
                assert abs(ours[k][j].item() - ref[k]) < tol[k], (convention, k, ours[k][j].item(), ref[k])


def test_conventions_differ_and_are_checked(photos):
    P = quantize((photos + 0.05 * torch.randn(photos.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1))
    T = quantize(photos)
    s = {c: score_images(P, T, c) for c in CONVENTIONS}
    assert torch.equal(s['ctsdg']['l1'], s['ra']['l1']) and torch.equal(s['ctsdg']['psnr'], s['ra']['psnr'])
    for a, b in (('ra', 'edgeconnect'), ('ra', 'ctsdg'), ('edgeconnect', 'ctsdg')):
        assert (s[a]['ssim'] - s[b]['ssim']).abs().min() > 1e-3
    assert (s['ra']['l1'] - s['edgeconnect']['l1']).abs().min() > 0.1
    with pytest.raises(ValueError, match='known: ra, edgeconnect, ctsdg'): score_images(P, T, 'medfe')
    with pytest.raises(ValueError, match='51x51'): score_images(P[..., :50, :50], T[..., :50, :50], 'edgeconnect')
    assert [quantize_mode(c) for c in CONVENTIONS] == ['round', 'floor', 'round']
    assert quantize_mode('edgeconnect', False) is None and quantize_mode('ra', 'floor') == 'floor'
    with pytest.raises(ValueError, match='quantize'): quantize_mode('ra', 'up')


def test_frechet_eigh_form_equals_pytorch_fid_and_survives_singular():
    "The eigh form of Tr sqrt(S1 S2) agrees with pytorch-fid's sqrtm; with N < dims it stays real and >= 0."
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(400, 96)), rng.normal(size=(400, 96)) * 1.3 + 0.2
    args = (a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert frechet_distance(*args) == pytest.approx(frechet_distance_reference(*args), rel=1e-9)
    a, b = rng.normal(size=(10, 96)), rng.normal(size=(10, 96)) + 1.0   # rank 9 covariances in 96 dims
    s = (a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    f = frechet_distance(*s)
    assert np.isfinite(f) and f > 0
    try: ref = frechet_distance_reference(*s)
    except ValueError: ref = None                                       # pytorch-fid: 'Imaginary component'
    if ref is not None: assert f == pytest.approx(ref, rel=1e-6)
