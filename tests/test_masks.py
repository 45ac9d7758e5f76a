"ra_inpaint.masks: free-form masks land in their bucket, are deterministic; NVIDIA mask folders load with polarity."
import time, warnings
import numpy as np
import pytest
import torch
from PIL import Image

from ra_inpaint.masks import (BUCKETS, EVAL_BUCKETS, free_form_mask, MaskGenerator, MaskFolder, load_mask,
                              hole_ratio, bucket_of)


def test_buckets_constants():
    assert EVAL_BUCKETS == ('10-20', '20-30', '30-40', '40-50')
    assert list(BUCKETS) == ['0-10', '10-20', '20-30', '30-40', '40-50', '50-60']
    edges = [b for lo_hi in BUCKETS.values() for b in lo_hi]
    assert edges == pytest.approx([0, .1, .1, .2, .2, .3, .3, .4, .4, .5, .5, .6])


def test_hole_ratio_and_bucket_of():
    m = np.zeros((10, 10), np.float32); m[:3, :5] = 1             # 15 of 100 pixels
    assert hole_ratio(m) == 0.15 and hole_ratio(torch.from_numpy(m)[None, None]) == 0.15
    assert bucket_of(0.15) == '10-20' and bucket_of(m) == '10-20'
    assert bucket_of(0.1) == '10-20' and bucket_of(0.0999999) == '0-10'  # half-open [lo, hi)
    assert bucket_of(0.6) is None and bucket_of(0.75) is None


@pytest.mark.parametrize('name', list(BUCKETS))
def test_every_bucket_200_masks_64(name):
    lo, hi = BUCKETS[name]
    ratios = []
    for i in range(200):
        m = free_form_mask(64, name, np.random.default_rng([123, i]))
        assert m.shape == (64, 64) and m.dtype == np.float32
        assert set(np.unique(m).tolist()) <= {0.0, 1.0}
        r = float(m.sum()) / m.size                                   # independent of hole_ratio
        assert lo <= r < hi, (name, i, r)
        ratios.append(r)
    # the target is uniform over the bucket: both halves of it are used
    mid = (lo + hi) / 2
    assert sum(r < mid for r in ratios) > 40 and sum(r >= mid for r in ratios) > 40


@pytest.mark.parametrize('name', EVAL_BUCKETS)
def test_buckets_256(name):
    lo, hi = BUCKETS[name]
    for i in range(5):
        m = free_form_mask(256, name, i)
        assert lo <= m.mean(dtype=np.float64) < hi


def test_tuple_ratio_and_bad_ranges():
    for i in range(50):
        r = free_form_mask(48, (0.25, 0.27), i).mean(dtype=np.float64)
        assert 0.25 <= r < 0.27
    with pytest.raises(ValueError, match='lo < hi'): free_form_mask(64, (0.4, 0.3))
    with pytest.raises(ValueError, match='unknown bucket'): free_form_mask(64, '60-70')
    with pytest.raises(ValueError, match='no hole count'): free_form_mask(3, (0.5, 0.52))


def test_fallback_growth_exact():
    # a one-pixel-wide range and a single allowed rejection force the border-growing path
    for i in range(30):
        m = free_form_mask(32, (100 / 1024, 101 / 1024), i, max_rejects=1)
        assert int(m.sum()) == 100


def test_masks_are_stroke_like():
    "Holes are a few large connected blobs, not salt-and-pepper noise."
    from scipy import ndimage
    for i in range(20):
        m = free_form_mask(128, '30-40', i) > 0
        lab, n = ndimage.label(m)
        sizes = np.bincount(lab.ravel())[1:]
        assert sizes.max() > 0.2 * m.sum()          # a dominant component
        assert n < 60


def test_determinism():
    a = free_form_mask(64, '20-30', 5); b = free_form_mask(64, '20-30', 5)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, free_form_mask(64, '20-30', 6))
    g1, g2 = MaskGenerator(64, '30-40', seed=3), MaskGenerator(64, '30-40', seed=3)
    assert all(torch.equal(g1[i], g2[i]) for i in (0, 7, 1000))
    assert torch.equal(g1[7], g1[7])                             # no hidden state advanced by indexing
    assert torch.equal(g1[7], torch.from_numpy(free_form_mask(64, '30-40', np.random.default_rng([3, 7])))[None])
    assert not torch.equal(g1[7], MaskGenerator(64, '30-40', seed=4)[7])
    assert g1[0].shape == (1, 64, 64) and g1[0].dtype == torch.float32


def test_generator_length_and_workers():
    g = MaskGenerator(32, seed=9, length=6)
    assert len(g) == 6 and len(list(g)) == 6
    with pytest.raises(IndexError): g[6]
    assert len(MaskGenerator(32)) >= 2**31 - 1
    from torch.utils.data import DataLoader
    a = torch.cat(list(DataLoader(g, batch_size=2, num_workers=0)))
    b = torch.cat(list(DataLoader(g, batch_size=3, num_workers=2)))
    assert torch.equal(a, b)


def test_speed_256():
    free_form_mask(256, (0.1, 0.6), 0)
    t = time.perf_counter()
    for i in range(40): free_form_mask(256, (0.1, 0.6), i)
    assert (time.perf_counter() - t) / 40 < 0.05   # ~2 ms measured; generous bound for a loaded CI box


# --- loading masks from files -------------------------------------------------------------------

def _hole():
    h = np.zeros((12, 12), bool); h[2:7, 3:10] = True; h[9, :] = True
    return h


def test_load_mask_polarity_threshold(tmp_path):
    h = _hole()
    Image.fromarray(h.astype(np.uint8) * 255).save(tmp_path / 'w.png')
    m = load_mask(tmp_path / 'w.png')
    assert m.shape == (1, 12, 12) and m.dtype == torch.float32
    assert np.array_equal(m[0].numpy(), h.astype(np.float32))
    assert np.array_equal(load_mask(tmp_path / 'w.png', polarity='black_hole')[0].numpy(), (~h).astype(np.float32))
    # non-binary values are thresholded at 0.5: 128/255 > 0.5 is white, 127/255 < 0.5 is black
    g = np.where(h, 128, 127).astype(np.uint8)
    Image.fromarray(g).save(tmp_path / 'g.png')
    assert np.array_equal(load_mask(tmp_path / 'g.png')[0].numpy(), h.astype(np.float32))
    # JPEG artefacts do not leak into the mask
    Image.fromarray(h.astype(np.uint8) * 255).save(tmp_path / 'j.jpg', quality=70)
    mj = load_mask(tmp_path / 'j.jpg')[0].numpy()
    assert set(np.unique(mj).tolist()) <= {0.0, 1.0} and (mj != h).mean() < 0.05
    # RGB and 16-bit masks
    Image.fromarray(np.dstack([h.astype(np.uint8) * 255] * 3)).save(tmp_path / 'rgb.png')
    assert np.array_equal(load_mask(tmp_path / 'rgb.png')[0].numpy(), h.astype(np.float32))
    Image.fromarray(h.astype(np.uint16) * 65535).save(tmp_path / 'g16.png')
    assert np.array_equal(load_mask(tmp_path / 'g16.png')[0].numpy(), h.astype(np.float32))
    with pytest.raises(ValueError, match='polarity'): load_mask(tmp_path / 'w.png', polarity='white')


def test_load_mask_resize_and_warnings(tmp_path):
    h = _hole()
    Image.fromarray(h.astype(np.uint8) * 255).save(tmp_path / 'w.png')
    with pytest.warns(UserWarning, match='resized'):
        m = load_mask(tmp_path / 'w.png', size=6)
    assert np.array_equal(m[0].numpy(), h[1::2, 1::2].astype(np.float32))  # nearest: pixel centres 2x+1
    with pytest.warns(UserWarning, match='resized'):
        m = load_mask(tmp_path / 'w.png', size=24)
    assert np.array_equal(m[0].numpy(), np.repeat(np.repeat(h, 2, 0), 2, 1).astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        load_mask(tmp_path / 'w.png', size=12)                          # right size: no warning
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(tmp_path / 'all.png')
    with pytest.warns(UserWarning, match='all hole'): load_mask(tmp_path / 'all.png')
    with pytest.warns(UserWarning, match='all known'): load_mask(tmp_path / 'all.png', polarity='black_hole')
    (tmp_path / 'bad.png').write_bytes(b'')
    with pytest.raises(OSError, match='bad.png'): load_mask(tmp_path / 'bad.png')
    with pytest.raises(OSError, match='nope.png'): load_mask(tmp_path / 'nope.png')


def _fake_nvidia(root, n=24, size=128, invert=False):
    d = root / 'mask' / 'testing_mask_dataset'; d.mkdir(parents=True)
    for i in range(n):
        m = free_form_mask(size, (0.02, 0.6), i) > 0
        if invert: m = ~m
        Image.fromarray(m.astype(np.uint8) * 255).save(d / f'{i:05d}.png')
    (d / 'LICENSE.txt').write_text('cc-by-nc')
    return root / 'mask'


def test_mask_folder(tmp_path):
    root = _fake_nvidia(tmp_path)
    mf = MaskFolder(root, 64)
    assert len(mf) == 24 and mf[0].shape == (1, 64, 64)
    src = np.asarray(Image.open(root / 'testing_mask_dataset' / '00005.png')) > 127
    assert np.array_equal(mf[5][0].numpy(), src[1::2, 1::2].astype(np.float32))
    # bucketing by the ratio measured after resizing, checked with a hand resize
    expect = {}
    for i in range(24):
        s = np.asarray(Image.open(root / 'testing_mask_dataset' / f'{i:05d}.png')) > 127
        r = s[1::2, 1::2].mean()
        for name, (lo, hi) in BUCKETS.items():
            if lo <= r < hi: expect.setdefault(name, []).append(f'{i:05d}.png')
    for name, files in expect.items():
        sub = MaskFolder(root, 64, ratio=name)
        assert [f.name for f in sub.files] == files
        assert all(bucket_of(sub[k]) == name for k in range(len(sub)))
    sub = MaskFolder(root, 64, ratio=(0.2, 0.4))
    assert all(0.2 <= hole_ratio(sub[k]) < 0.4 for k in range(len(sub)))
    with pytest.raises(ValueError, match='no mask in'): MaskFolder(root, 64, ratio=(0.9, 1.0))


def test_mask_folder_black_hole(tmp_path):
    a = MaskFolder(_fake_nvidia(tmp_path / 'a'), 64)
    b = MaskFolder(_fake_nvidia(tmp_path / 'b', invert=True), 64, polarity='black_hole')
    assert all(torch.equal(a[i], b[i]) for i in range(len(a)))


def test_mask_folder_errors(tmp_path):
    (tmp_path / 'empty').mkdir(); (tmp_path / 'empty' / 'x.txt').write_text('no masks')
    with pytest.raises(FileNotFoundError, match='empty'): MaskFolder(tmp_path / 'empty', 64)
    with pytest.raises(FileNotFoundError, match='missing'): MaskFolder(tmp_path / 'missing', 64)
    with pytest.raises(ValueError, match='polarity'): MaskFolder(tmp_path / 'empty', 64, polarity='inverted')
    root = _fake_nvidia(tmp_path / 'c', n=4)
    (root / 'testing_mask_dataset' / '00009.png').write_bytes(b'\x89PNG broken')
    with pytest.warns(UserWarning, match='00009.png'):
        mf = MaskFolder(root, 64, ratio=(0.0, 1.0))
    assert mf.n_skipped == 1 and len(mf) == 4


def test_load_mask_decoder_failures_name_the_file(tmp_path, monkeypatch):
    "A decompression bomb or a damaged file raises ImageLoadError naming the mask, never a bare PIL/struct error."
    from ra_inpaint.core import ImageLoadError
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path/'m.png')
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 10)  # 64 px > 2x10: PIL's DecompressionBombError (not an OSError)
    with pytest.raises(ImageLoadError, match=r'mask .*m\.png is too large'): load_mask(tmp_path/'m.png')
    monkeypatch.undo()
    good = (tmp_path/'m.png').read_bytes()
    (tmp_path/'trunc.png').write_bytes(good[:len(good) // 2])
    with pytest.raises(ImageLoadError, match=r'trunc\.png'): load_mask(tmp_path/'trunc.png')

def test_load_mask_follows_exif_orientation(tmp_path):
    ex = Image.Exif(); ex[0x0112] = 6
    Image.fromarray(np.zeros((8, 6), np.uint8)).save(tmp_path/'rot.jpg', exif=ex.tobytes())
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        assert load_mask(tmp_path/'rot.jpg', polarity='black_hole').shape == (1, 6, 8)
