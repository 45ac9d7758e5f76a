"ra_inpaint.data: listing sources (folder, flist, CelebA/Places2/Paris layouts), the dataset, bad files, demo images."
import warnings
import numpy as np
import pytest
import torch
from PIL import Image

from ra_inpaint.core import load_image
from ra_inpaint.data import list_images, InpaintDataset, demo_images, DEMO_IMAGES, train_transform, eval_transform
from ra_inpaint.masks import MaskGenerator, MaskFolder, BUCKETS


def img(p, w=24, h=20, seed=0, mode='RGB'):
    p.parent.mkdir(parents=True, exist_ok=True)
    a = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(a).convert(mode).save(p)
    return p


def pil_resize(x, w, h):
    "Reference resize: PIL bilinear (antialiased when shrinking) on float data."
    a = x.permute(1, 2, 0).numpy()
    return np.stack([np.asarray(Image.fromarray(a[..., c], mode='F').resize((w, h), Image.BILINEAR)) for c in range(3)])


# --- listing ------------------------------------------------------------------------------------

def test_folder_listing(tmp_path):
    for rel in ['z.png', 'a/b.JPG', 'a/c.jpeg', 'd.webp', 'e.bmp']: img(tmp_path / rel)
    (tmp_path / 'notes.txt').write_text('x'); (tmp_path / 'a' / 'Thumbs.db').write_bytes(b'\0\0')
    (tmp_path / 'f.png.json').write_text('{}')
    got = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert got == ['a/b.JPG', 'a/c.jpeg', 'd.webp', 'e.bmp', 'z.png']
    assert list_images(str(tmp_path), split='test') == list_images(tmp_path)   # split is ignored for a folder


def test_empty_and_missing_sources(tmp_path):
    (tmp_path / 'empty').mkdir(); (tmp_path / 'empty' / 'readme.md').write_text('no images')
    with pytest.raises(FileNotFoundError, match='empty'): list_images(tmp_path / 'empty')
    with pytest.raises(FileNotFoundError, match='nowhere'): list_images(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError, match='empty'): InpaintDataset(tmp_path / 'empty', 16)
    with pytest.raises(ValueError, match='split'): list_images(tmp_path, split='valid')
    with pytest.raises(ValueError, match='empty list'): InpaintDataset([], 16)


def test_flist(tmp_path):
    a, b = img(tmp_path / 'data' / 'a.png'), img(tmp_path / 'data' / 'sub' / 'b.jpg')
    lists = tmp_path / 'lists'; lists.mkdir()
    (lists / 'train.flist').write_text(f"../data/sub/b.jpg\n\n{a}\n")
    assert list_images(lists / 'train.flist') == [lists / '../data/sub/b.jpg', a]
    assert [p.resolve() for p in list_images(lists / 'train.flist')] == [b.resolve(), a.resolve()]
    (lists / 'bad.flist').write_text('../data/a.png\n../data/miss1.png\n../data/miss2.png\n../data/miss3.png\n../data/miss4.png\n')
    with pytest.raises(FileNotFoundError, match=r'4 of 5 images listed in .*bad\.flist') as e:
        list_images(lists / 'bad.flist')
    assert 'miss1.png' in str(e.value) and 'miss4.png' not in str(e.value)   # the first few, not all
    (lists / 'blank.flist').write_text('\n\n')
    with pytest.raises(FileNotFoundError, match='no images listed'): list_images(lists / 'blank.flist')


def _celeba(root, parts=(0, 0, 0, 1, 2, 2, 0)):
    for i in range(1, len(parts) + 1): img(root / 'img_align_celeba' / f'{i:06d}.jpg', 178, 218, i)
    (root / 'list_eval_partition.txt').write_text(''.join(f'{i:06d}.jpg {s}\n' for i, s in enumerate(parts, 1)))
    return root


def test_celeba(tmp_path):
    root = _celeba(tmp_path / 'CelebA')
    names = lambda split: [p.name for p in list_images(f'celeba:{root}', split)]
    assert names('train') == ['000001.jpg', '000002.jpg', '000003.jpg', '000007.jpg']
    assert names('val') == ['000004.jpg'] and names('test') == ['000005.jpg', '000006.jpg']
    # CelebA is cut to its centered 178x178 square, then resized
    ds = InpaintDataset(f'celeba:{root}', 32, train=False, split='test')
    x = load_image(root / 'img_align_celeba' / '000005.jpg')
    assert x.shape == (3, 218, 178)
    ref = pil_resize(x[:, 20:198, :], 32, 32)
    assert np.abs(ds[0]['image'].numpy() - ref).max() < 2e-3
    tr = InpaintDataset(f'celeba:{root}', 32, train=True)
    assert tr[0]['image'].shape == (3, 32, 32)


def test_celeba_partition_errors(tmp_path):
    root = _celeba(tmp_path / 'c1')
    (root / 'list_eval_partition.txt').unlink()
    with pytest.raises(FileNotFoundError, match='list_eval_partition.txt'): list_images(f'celeba:{root}')
    (root / 'list_eval_partition.txt').write_text('000001.jpg 0\n000002.jpg 7\n')
    with pytest.raises(ValueError, match=r'list_eval_partition\.txt, line 2'): list_images(f'celeba:{root}')
    (root / 'list_eval_partition.txt').write_text('000001.jpg 0\n000002.jpg\n')
    with pytest.raises(ValueError, match='line 2'): list_images(f'celeba:{root}')
    (root / 'list_eval_partition.txt').write_text('000001.jpg 0\n000099.jpg 0\n')
    with pytest.raises(FileNotFoundError, match='000099.jpg'): list_images(f'celeba:{root}')
    with pytest.raises(FileNotFoundError, match='img_align_celeba'): list_images(f'celeba:{tmp_path}')
    with pytest.raises(FileNotFoundError, match='missing_dir'): list_images(f'celeba:{tmp_path / "missing_dir"}')


def test_celeba_kaggle_layout(tmp_path):
    root = tmp_path / 'kaggle'
    for i in (1, 2, 3): img(root / 'img_align_celeba' / 'img_align_celeba' / f'{i:06d}.jpg', 178, 218, i)
    (root / 'list_eval_partition.csv').write_text('image_id,partition\n000001.jpg,0\n000002.jpg,1\n000003.jpg,0\n')
    assert [p.name for p in list_images(f'celeba:{root}')] == ['000001.jpg', '000003.jpg']


def test_places2(tmp_path):
    root = tmp_path / 'places365'
    train = ['a/airfield/00000001.jpg', 'a/airfield/00000002.jpg', 'b/bakery/shop/00000001.jpg', 'y/yard/00000003.jpg']
    for i, r in enumerate(train): img(root / 'data_256' / r, 32, 32, i)
    for i in (1, 2, 3): img(root / 'val_256' / f'Places365_val_{i:08d}.jpg', 32, 32, i)
    rel = lambda split: [p.relative_to(root).as_posix() for p in list_images(f'places2:{root}', split)]
    assert rel('train') == ['data_256/' + r for r in train]                 # no list: recursive walk
    assert rel('val') == rel('test') == [f'val_256/Places365_val_{i:08d}.jpg' for i in (1, 2, 3)]
    (root / 'places365_train_standard.txt').write_text('/y/yard/00000003.jpg 363\n/a/airfield/00000001.jpg 0\n')
    assert rel('train') == ['data_256/y/yard/00000003.jpg', 'data_256/a/airfield/00000001.jpg']  # the list's order
    (root / 'places365_val.txt').write_text('Places365_val_00000002.jpg 165\n')
    assert rel('val') == ['val_256/Places365_val_00000002.jpg']
    (root / 'places365_val.txt').write_text('Places365_val_00000009.jpg 1\n')
    with pytest.raises(FileNotFoundError, match='Places365_val_00000009.jpg'): list_images(f'places2:{root}', 'test')
    ds = InpaintDataset(f'places2:{root}', 32, train=True)
    assert len(ds) == 2 and ds[1]['image'].shape == (3, 32, 32)


def test_paris(tmp_path):
    root = tmp_path / 'paris'
    for i in range(3): img(root / 'paris_train_original' / f'48.84{i}_2.33_90_-00{i}.JPG', 936 // 4, 537 // 4, i)
    for i in range(2): img(root / 'paris_eval_gt' / f'{i + 1:03d}_im.png', 227, 227, i)
    assert len(list_images(f'paris:{root}')) == 3
    assert [p.name for p in list_images(f'paris:{root}', 'test')] == ['001_im.png', '002_im.png']
    assert list_images(f'paris:{root}', 'val') == list_images(f'paris:{root}', 'test')
    ds = InpaintDataset(f'paris:{root}', 64, train=False, split='test')
    assert ds[1]['image'].shape == (3, 64, 64)
    (root / 'paris_eval_gt' / '001_im.png').unlink(); (root / 'paris_eval_gt' / '002_im.png').unlink()
    with pytest.raises(FileNotFoundError, match='paris_eval_gt'): list_images(f'paris:{root}', 'test')


# --- transforms ---------------------------------------------------------------------------------

def test_eval_transform_matches_pil(tmp_path):
    x = load_image(img(tmp_path / 'a.png', 90, 60, 3))
    y = eval_transform(x, 32)                 # 90x60 -> 48x32 -> center 32 columns 8..40
    ref = pil_resize(x, 48, 32)[:, :, 8:40]
    assert y.shape == (3, 32, 32) and np.abs(y.numpy() - ref).max() < 2e-3


def test_train_transform_is_a_crop_of_the_image():
    "Every output equals some square crop with side in [0.8, 1] x short side, resized, maybe flipped."
    x = torch.rand(3, 20, 30)
    for seed in range(10):
        rng = np.random.default_rng(seed)
        y = train_transform(x, 20, rng)
        # the crop side is drawn in [16, 20]; search for the crop that reproduces y
        found = False
        for s in range(16, 21):
            for t in range(0, 21 - s):
                for l in range(0, 31 - s):
                    c = x[:, t:t + s, l:l + s]
                    c = torch.nn.functional.interpolate(c[None], size=(20, 20), mode='bilinear', antialias=True)[0] if s != 20 else c
                    if torch.allclose(y, c, atol=1e-5) or torch.allclose(y, c.flip(-1), atol=1e-5): found = True; break
                if found: break
            if found: break
        assert found, seed


def test_flip_rate_and_determinism(tmp_path):
    for i in range(4): img(tmp_path / f'{i}.png', 40, 40, i)
    ds = InpaintDataset(tmp_path, 16, seed=2)
    assert torch.equal(ds[1]['image'], InpaintDataset(tmp_path, 16, seed=2)[1]['image'])
    assert torch.equal(ds[1]['mask'], InpaintDataset(tmp_path, 16, seed=2)[1]['mask'])
    ds.set_epoch(3)
    assert not torch.equal(ds[1]['image'], InpaintDataset(tmp_path, 16, seed=2)[1]['image'])
    ramp = torch.linspace(0, 1, 40).expand(3, 40, 40)      # brighter to the right; a flip reverses it
    flipped = sum(bool(train_transform(ramp, 16, np.random.default_rng(i))[..., 0].mean() > 0.5) for i in range(400))
    assert 160 < flipped < 240                              # p = 1/2: 200 +- 2.5 sigma


# --- the dataset --------------------------------------------------------------------------------

def test_dataset_sample_and_pairing(tmp_path):
    for i in range(5): img(tmp_path / f'{i}.png', 40, 30, i)
    masks = MaskGenerator(16, '30-40', seed=7, length=3)
    ev = InpaintDataset(tmp_path, 16, masks=masks, train=False)
    for i in range(5):
        s = ev[i]
        assert s['index'] == i and s['image'].shape == (3, 16, 16) and s['mask'].shape == (1, 16, 16)
        assert s['image'].dtype == torch.float32 and 0 <= s['image'].min() and s['image'].max() <= 1
        assert torch.equal(s['mask'], masks[i % 3])                        # eval: fixed pairing
    tr = InpaintDataset(tmp_path, 16, train=True)                          # default masks: 10-60 %
    rs = [tr[i]['mask'].mean().item() for i in range(5)]
    assert all(0.1 <= r < 0.6 for r in rs)
    with pytest.raises(IndexError): ev[5]


def test_dataset_with_mask_folder(tmp_path):
    for i in range(3): img(tmp_path / 'img' / f'{i}.png', 40, 30, i)
    md = tmp_path / 'masks'; md.mkdir()
    for i in range(4):
        m = np.zeros((32, 32), np.uint8); m[i * 4:i * 4 + 10, 3:20] = 255
        Image.fromarray(m).save(md / f'{i}.png')
    mf = MaskFolder(md, 16)
    ds = InpaintDataset(tmp_path / 'img', 16, masks=mf, train=False)
    assert torch.equal(ds[2]['mask'], mf[2])
    with pytest.raises(ValueError, match=r'expected \(1, 24, 24\)'):
        InpaintDataset(tmp_path / 'img', 24, masks=mf)[0]


def test_bad_files_skipped(tmp_path):
    img(tmp_path / '0_ok.png', 40, 30, 0)
    (tmp_path / '1_corrupt.jpg').write_bytes(b'\xff\xd8\xff\xe0 garbage')
    img(tmp_path / 'full.jpg', 64, 64, 1)
    (tmp_path / '2_truncated.jpg').write_bytes((tmp_path / 'full.jpg').read_bytes()[:300]); (tmp_path / 'full.jpg').unlink()
    (tmp_path / '3_zero.png').write_bytes(b'')
    img(tmp_path / '4_ok.png', 40, 30, 4)
    (tmp_path / 'notes.txt').write_text('ignored')
    ds = InpaintDataset(tmp_path, 16, train=False)
    assert len(ds) == 5                                                    # .txt not listed
    with pytest.warns(UserWarning) as rec:
        out = [ds[i] for i in range(5)]
    msgs = [str(r.message) for r in rec if 'skipping' in str(r.message)]
    assert len(msgs) == 3 and any('1_corrupt.jpg' in m for m in msgs) and any('2_truncated.jpg' in m for m in msgs) \
        and any('3_zero.png' in m for m in msgs)
    assert ds.n_skipped == 3
    assert torch.equal(out[1]['image'], out[4]['image']) and out[1]['index'] == 1   # next readable image
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        ds[2]; ds[1]                                                       # no second warning per file
    assert ds.n_skipped == 3


def test_all_files_unreadable(tmp_path):
    for n in ('a.png', 'b.jpg'): (tmp_path / n).write_bytes(b'')
    ds = InpaintDataset(tmp_path, 16)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(RuntimeError, match=str(tmp_path)): ds[0]


def test_tiny_gray_rgba(tmp_path):
    img(tmp_path / 'a_gray.png', 40, 30, 0, mode='L'); img(tmp_path / 'b_rgba.png', 40, 30, 1, mode='RGBA')
    img(tmp_path / 'c_tiny.png', 10, 8, 2); img(tmp_path / 'd_pal.png', 40, 30, 3, mode='P')
    for train in (True, False):
        ds = InpaintDataset(tmp_path, 16, train=train)
        with pytest.warns(UserWarning, match='c_tiny.png.*upscaled'):
            out = [ds[i] for i in range(4)]
        assert all(o['image'].shape == (3, 16, 16) for o in out)
        g = out[0]['image']; assert torch.equal(g[0], g[1]) and torch.equal(g[1], g[2])   # gray stays gray
        with warnings.catch_warnings():
            warnings.simplefilter('error'); ds[2]                          # warned once per file
        assert ds.n_skipped == 0


def test_dataloader_workers_identical(tmp_path):
    from torch.utils.data import DataLoader
    for i in range(6): img(tmp_path / f'{i}.png', 30, 30, i)
    ds = InpaintDataset(tmp_path, 16, seed=5)
    a = list(DataLoader(ds, batch_size=3, num_workers=0))
    b = list(DataLoader(ds, batch_size=3, num_workers=2))
    for x, y in zip(a, b):
        assert torch.equal(x['image'], y['image']) and torch.equal(x['mask'], y['mask'])
        assert torch.equal(x['index'], y['index'])


def test_demo_images():
    paths = demo_images()
    assert [p.name for p in paths] == list(DEMO_IMAGES) and len(paths) >= 6
    for p in paths:
        x = load_image(p)
        assert x.shape[0] == 3 and min(x.shape[1:]) >= 256
        assert (x[0] - x[2]).abs().mean() > 0.01, p                           # really colour
    ds = InpaintDataset(paths, 64, train=False)
    assert ds[0]['image'].shape == (3, 64, 64)


def test_demo_images_missing(monkeypatch):
    import ra_inpaint.data as data
    monkeypatch.setattr(data, 'DEMO_IMAGES', data.DEMO_IMAGES + ('not_shipped.png',))
    with pytest.raises(FileNotFoundError, match='not_shipped.png'): data.demo_images()


def _crop_side(y, x, size):
    "The side of the square crop of `x` that, resized to `size` and maybe flipped, gives `y` (None if none does)."
    for s in range(min(x.shape[-2:]), 0, -1):
        for t in range(0, x.shape[-2] - s + 1):
            for l in range(0, x.shape[-1] - s + 1):
                c = x[:, t:t + s, l:l + s]
                if s != size: c = torch.nn.functional.interpolate(c[None], size=(size, size), mode='bilinear', antialias=True)[0]
                if torch.allclose(y, c, atol=1e-5) or torch.allclose(y, c.flip(-1), atol=1e-5): return s
        if s < size * 0.7: return None


def test_train_transform_never_upscales_a_large_enough_image():
    "Short side >= size: the crop side is at least `size` (0.8 x short side would be below it); smaller images keep 0.8-1."
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 22, 26, generator=g)                  # 0.8 x 22 = 17.6: crops of 18 or 19 would be upscaled to 20
    sides = [_crop_side(train_transform(x, 20, np.random.default_rng(i)), x, 20) for i in range(12)]
    assert all(s is not None and 20 <= s <= 22 for s in sides), sides
    small = torch.rand(3, 15, 18, generator=g)              # smaller than size: upscaled anyway, the 0.8-1 rule stays
    sides = [_crop_side(train_transform(small, 20, np.random.default_rng(i)), small, 20) for i in range(8)]
    assert all(s is not None and 12 <= s <= 15 for s in sides) and min(sides) < 15, sides


def test_train_transform_source_of_model_size_used_whole():
    "A 256² source (Places2) at size 256: the image itself or its mirror, never a resized crop."
    x = torch.rand(3, 256, 256, generator=torch.Generator().manual_seed(1))
    outs = [train_transform(x, 256, np.random.default_rng(i)) for i in range(16)]
    assert all(torch.equal(o, x) or torch.equal(o, x.flip(-1)) for o in outs)
    assert any(torch.equal(o, x) for o in outs) and any(torch.equal(o, x.flip(-1)) for o in outs)
