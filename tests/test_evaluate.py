import numpy as np, pytest, torch
from pathlib import Path
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.restoration import inpaint_biharmonic

from ra_inpaint.core import preset, save_image
from ra_inpaint.data import demo_images, InpaintDataset
from ra_inpaint.generator import InpaintGenerator
from ra_inpaint.masks import BUCKETS, EVAL_BUCKETS, free_form_mask
from ra_inpaint.metrics import load_inception, INCEPTION_FILE, CONVENTIONS
from ra_inpaint.evaluate import evaluate, EvalMasks, baselines_available
import peer_metrics

S = 32

@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    torch.manual_seed(0)
    g = InpaintGenerator(preset('demo', size=S, base_ch=8)).eval()
    d = tmp_path_factory.mktemp('imgs')
    paths = [save_image(InpaintDataset([p], 48, train=False)[0]['image'], d/f'{p.stem}.png') for p in demo_images()[:3]]
    return g, paths

def test_buckets_and_table_shape(setup, tmp_path):
    g, paths = setup
    t = evaluate(g, paths, out=tmp_path, device='cpu', progress=False)
    for c in t.cases:
        lo, hi = BUCKETS[c['bucket']]
        assert lo <= c['hole_ratio'] < hi
    assert len(t.cases) == len(paths) * len(EVAL_BUCKETS)
    head, body = t.rows()
    assert head == ['Metric', 'Mask'] + list(baselines_available()) + ['ours']  # 'telea' only where cv2 is installed
    rows = [(r[0], r[1]) for r in body]
    assert len(rows) == 4 * (len(EVAL_BUCKETS) + 1)          # metric x (bucket + pooled '10-50')
    assert [r[1] for r in body[:5]] == [f'{b}%' for b in EVAL_BUCKETS] + ['10-50%']
    assert [r[0] for r in body[::len(EVAL_BUCKETS) + 1]] == ['L1 (%)-', 'FID-', 'SSIM+', 'PSNR+']
    for f in ['table.md', 'table.csv', 'table.json', 'pairs.json'] + [f'grid_{b}.png' for b in EVAL_BUCKETS]:
        assert (tmp_path/f).is_file()
    note = next(n for n in t.notes if n.startswith('Effective regions'))
    vals = [float(v) for v in note.split(': ')[1].split(' of n')[0].replace('enc1 ', '').replace('enc2 ', '').split(', ')]
    assert len(vals) == 2 and all(1 <= v <= g.cfg.n_regions for v in vals)

def test_pairing_deterministic(setup):
    g, paths = setup
    a = evaluate(g, paths, device='cpu', progress=False, buckets=('10-20', '40-50'))
    b = evaluate(g, paths, device='cpu', progress=False, buckets=('10-20', '40-50'))
    assert [c['mask'] for c in a.cases] == [c['mask'] for c in b.cases]
    assert a.values == b.values
    c = evaluate(g, paths, device='cpu', progress=False, buckets=('10-20', '40-50'), seed=1)
    assert [x['hole_ratio'] for x in a.cases] != [x['hole_ratio'] for x in c.cases]

def _biharmonic_ref(paths, size, bucket, quant):
    "The biharmonic column, from scratch: 8-bit test image (round), fill, composite quantised `quant` (None: float)."
    em, ds = EvalMasks(size, seed=0), InpaintDataset(paths, size, train=False)
    k = list(BUCKETS).index(bucket)
    out = []
    for i in range(len(paths)):
        x = ds[i]['image'].permute(1, 2, 0).numpy()                                     # float32, as evaluate reads it
        if quant: x = (np.round(x * np.float32(255)) / np.float32(255)).astype(np.float32)  # the 8-bit test image
        m = free_form_mask(size, BUCKETS[bucket], rng=np.random.default_rng([0, i, k])) > 0.5  # the documented pairing
        assert np.array_equal(m, em(i, bucket)[0].numpy() > 0.5)
        f = np.clip(inpaint_biharmonic(x.astype(np.float64), m, channel_axis=-1), 0, 1)
        f = np.where(m[..., None], f, x).astype(np.float32)                             # the composite, float32
        if quant: f = (np.round(f * np.float32(255)) if quant == 'round' else (f * np.float32(255)).astype(np.int32)) / np.float32(255)
        out.append((f.astype(np.float64), x.astype(np.float64)))
    return out

def test_baseline_matches_skimage(setup):
    "Default: the saved 8-bit images are scored (scikit-image on uint8 files); quantize=False: the float composites."
    g, paths = setup
    t = evaluate(g, paths, device='cpu', progress=False, buckets=('30-40',))
    tf = evaluate(g, paths, device='cpu', progress=False, buckets=('30-40',), quantize=False)
    for tab, quant, tol in ((t, 'round', 1e-9), (tf, None, 1e-4)):
        refs = []
        for f, x in _biharmonic_ref(paths, S, '30-40', quant):
            if quant:                                                                 # the two 8-bit files
                refs.append(peer_metrics.ra(np.round(f * 255).astype(np.uint8), np.round(x * 255).astype(np.uint8)))
            else: refs.append(dict(l1=100 * np.abs(f - x).mean(), psnr=peak_signal_noise_ratio(x, f, data_range=1),
                                   ssim=structural_similarity(x, f, channel_axis=-1, data_range=1, gaussian_weights=True,
                                                              sigma=1.5, use_sample_covariance=False)))
        for k in ('l1', 'psnr', 'ssim'):
            assert abs(tab.get('biharmonic', '30-40', k) - np.mean([r[k] for r in refs])) < (1e-3 if k == 'psnr' and not quant else tol), k
    assert t.get('biharmonic', '30-40', 'psnr') != tf.get('biharmonic', '30-40', 'psnr')
    assert 'saved as 8-bit (round)' in ' '.join(t.notes) and 'in float' in ' '.join(tf.notes)

@pytest.mark.parametrize('convention', ['edgeconnect', 'ctsdg'])
def test_convention_columns_match_peer_scripts(convention):
    "evaluate(convention=...) on a 64² model: the biharmonic column is the peer's script run on the peer's saved 8-bit composites."
    torch.manual_seed(0)
    g = InpaintGenerator(preset('demo', size=64, base_ch=8)).eval()
    paths = demo_images()[:2]
    t = evaluate(g, paths, device='cpu', progress=False, buckets=('20-30',), baselines=('biharmonic',), convention=convention)
    quant = CONVENTIONS[convention].quantize
    assert quant == {'edgeconnect': 'floor', 'ctsdg': 'round'}[convention]
    refs = [peer_metrics.PEERS[convention](np.round(f * 255).astype(np.uint8), np.round(x * 255).astype(np.uint8))
            for f, x in _biharmonic_ref(paths, 64, '20-30', quant)]
    tol = 1e-6 if convention == 'edgeconnect' else 1e-9                 # its gray image is float32 in metrics.py
    for k in ('l1', 'psnr', 'ssim'):
        assert abs(t.get('biharmonic', '20-30', k) - np.mean([r[k] for r in refs])) < tol, k
    assert f"{convention!r} convention" in ' '.join(t.notes) and t.title.endswith(f'{convention} convention')
    with pytest.raises(ValueError, match='51x51'):                     # EdgeConnect's window on a 32² model: said at once
        evaluate(InpaintGenerator(preset('demo', size=32, base_ch=8)), paths, device='cpu', progress=False, convention='edgeconnect')
    with pytest.raises(ValueError, match='known: ra, edgeconnect, ctsdg'):
        evaluate(g, paths, device='cpu', progress=False, convention='medfe')

def test_fid_na_without_weights(setup, tmp_path, monkeypatch):
    g, paths = setup
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    monkeypatch.delenv('RA_INPAINT_INCEPTION', raising=False)
    t = evaluate(g, paths, device='cpu', progress=False, buckets=('10-20',), out=tmp_path/'o')
    cell = t.get('ours', '10-20', 'fid')
    assert cell.startswith('n/a (InceptionV3 weights not found at') and INCEPTION_FILE in cell and str(tmp_path) in cell
    assert isinstance(t.get('ours', '10-20', 'psnr'), float)
    md = (tmp_path/'o'/'table.md').read_text()
    assert md.count('n/a¹') == len(t.rows()[0]) - 2 and 'n/a (' not in md   # a marker in each method's cell
    reason = cell[len('n/a ('):-1]
    assert md.count(reason) == 1 and f'¹ {reason}' in md.splitlines()    # the path once, as the footnote
    assert (tmp_path/'o'/'table.json').read_text().count(reason) == 1

def test_fid_with_random_inception(setup):
    g, paths = setup
    torch.manual_seed(0)
    net = load_inception(pretrained=False, dims=64)
    with pytest.warns(UserWarning, match='2048'):
        t = evaluate(g, paths, device='cpu', progress=False, buckets=('20-30',), baselines=(), inception=net)
    v = t.get('ours', '20-30', 'fid')
    assert isinstance(v, float) and np.isfinite(v) and v >= 0
    assert any('not comparable to the paper' in n for n in t.notes)

def test_each_image_decoded_and_scored_once(setup, monkeypatch):
    import ra_inpaint.evaluate as ev
    g, paths = setup
    loads, scores = [], []
    orig_get, orig_score = ev.InpaintDataset.__getitem__, ev._score
    monkeypatch.setattr(ev.InpaintDataset, '__getitem__', lambda self, i: (loads.append(i), orig_get(self, i))[1])
    monkeypatch.setattr(ev, '_score', lambda p, q, *a: (scores.append(len(p)), orig_score(p, q, *a))[1])
    t = evaluate(g, paths, device='cpu', progress=False, batch_size=2)
    assert sorted(loads) == list(range(len(paths)))          # once per image, not once per bucket
    n_batches, methods = 2, len(baselines_available()) + 1   # 3 images in batches of 2; baselines + ours
    assert len(scores) == n_batches * len(EVAL_BUCKETS) * methods
    for c in t.cases:                                         # the kept per-image PSNR is the one in the table's mean
        assert np.isfinite(c['psnr_ours']) and np.isfinite(c['psnr_biharmonic'])
    for b in EVAL_BUCKETS:
        ps = [c['psnr_ours'] for c in t.cases if c['bucket'] == b]
        assert abs(np.mean(ps) - t.get('ours', b, 'psnr')) < 1e-4

def test_mask_folder_read_once(tmp_path, monkeypatch):
    import ra_inpaint.evaluate as ev
    from ra_inpaint.masks import MaskFolder
    for j in range(16):
        save_image(torch.from_numpy(free_form_mask(S, (0.1, 0.5), rng=j))[None].expand(3, -1, -1), tmp_path/f'm{j:02d}.png')
    calls = []
    orig = ev.load_mask
    monkeypatch.setattr(ev, 'load_mask', lambda *a, **k: (calls.append(a[0]), orig(*a, **k))[1])
    em = EvalMasks(S, masks=tmp_path, seed=3)
    for b in EVAL_BUCKETS:
        try: ref = MaskFolder(tmp_path, S, ratio=b)          # the per-bucket filter it replaces: same files, same order
        except ValueError: continue
        files, perm = em._folder(b)
        assert files == ref.files
        assert [em.index(i, b) for i in range(3)] == [str(ref.files[perm[i % len(ref)]].relative_to(tmp_path)) for i in range(3)]
        assert torch.equal(em(1, b), ref[int(perm[1 % len(ref)])])
    assert len(calls) == 16 + len([b for b in EVAL_BUCKETS if b in em._folders])  # one decode per file, then one per lookup

def test_loader_workers_same_table(setup, tmp_path):
    "Decoding and mask drawing in 2 worker processes (the GPU default is 8) give the same pairing and numbers as in-process."
    g, paths = setup
    for j in range(8):
        save_image(torch.from_numpy(free_form_mask(S, BUCKETS[('10-20', '20-30')[j % 2]], rng=j))[None].expand(3, -1, -1), tmp_path/f'm{j:02d}.png')
    for masks in (None, tmp_path):
        kw = dict(device='cpu', progress=False, buckets=('10-20', '20-30'), masks=masks, batch_size=2)
        a, b = evaluate(g, paths, num_workers=0, **kw), evaluate(g, paths, num_workers=2, **kw)
        assert [c['mask'] for c in a.cases] == [c['mask'] for c in b.cases]
        assert a.values == b.values

def test_fid_cell_failure_is_a_cell_not_a_crash(monkeypatch):
    "A failing Fréchet distance (numpy's LinAlgError, e.g. NaN features of a diverged model) gives an n/a cell."
    import ra_inpaint.evaluate as ev
    from ra_inpaint.metrics import GaussianStats
    a, b = GaussianStats(), GaussianStats()
    a.update(torch.randn(6, 8)); b.update(torch.randn(6, 8))
    assert isinstance(ev.fid_cell(a, b), float)
    def boom(*args): raise np.linalg.LinAlgError('Eigenvalues did not converge')
    monkeypatch.setattr(ev, 'frechet_distance', boom)
    cell = ev.fid_cell(a, b)
    assert cell.startswith('n/a (Fréchet distance failed on 6 images') and 'converge' in cell


def test_unreadable_image_with_loader_workers(setup, tmp_path):
    "In worker processes too: a skipped file is warned about in the caller, and 'nothing readable' is one plain line."
    g, paths = setup
    bad, bad2 = tmp_path/'bad.png', tmp_path/'bad2.png'
    bad.write_bytes(b'not an image'); bad2.write_bytes(b'nor this')
    kw = dict(device='cpu', progress=False, buckets=('10-20',), batch_size=2, baselines=(), num_workers=2)
    with pytest.warns(UserWarning, match='bad.png'):
        t = evaluate(g, [paths[0], bad, paths[1]], **kw)
    assert len(t.cases) == 3
    with pytest.raises(RuntimeError) as ei:
        evaluate(g, [bad, bad2], **kw)
    assert 'none of the 2 images' in str(ei.value) and '\n' not in str(ei.value)

def test_inverted_mask_folder_is_named_and_masks_counted(setup, tmp_path):
    "A folder of mostly-hole masks (black = hole read as white = hole) warns, naming files; the notes count distinct masks."
    g, paths = setup
    for j in range(4):
        m = free_form_mask(S, '20-30', rng=j)
        save_image(torch.from_numpy(m)[None].expand(3, -1, -1), tmp_path/f'ok{j}.png')
        save_image(torch.from_numpy(1 - m)[None].expand(3, -1, -1), tmp_path/f'inv{j}.png')  # 70-80 % hole
    with pytest.warns(UserWarning, match=r'4 of 8 masks .* more than half hole .*inv0.png'):
        t = evaluate(g, paths, masks=tmp_path, device='cpu', progress=False, buckets=('20-30',), baselines=())
    n = len({c['mask'] for c in t.cases})
    assert 1 <= n <= 3 and f'Distinct masks per bucket: 20-30 %: {n} for 3 images.' in t.notes
    inv = tmp_path/'inv'; inv.mkdir()
    for j in range(3): save_image(torch.from_numpy(1 - free_form_mask(S, '20-30', rng=j))[None].expand(3, -1, -1), inv/f'm{j}.png')
    with pytest.warns(UserWarning, match='median hole ratio .* look inverted'):
        with pytest.raises(ValueError, match='no mask'):
            evaluate(g, paths, masks=inv, device='cpu', progress=False, buckets=('20-30',), baselines=())
