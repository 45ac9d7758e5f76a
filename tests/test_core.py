"core: file modes of atomic writes, the shared image opener."
import os, stat
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ra_inpaint.core import (atomic_path, save_config, save_image, preset, open_image, load_image, ImageLoadError)

def _mode(p): return stat.S_IMODE(os.stat(p).st_mode)

def _umask():
    m = os.umask(0o022); os.umask(m); return m

posix = pytest.mark.skipif(os.name != 'posix', reason='POSIX permission bits')

@posix
@pytest.mark.parametrize('umask', [0o022, 0o027, 0o002])
def test_atomic_new_file_gets_open_mode(tmp_path, umask, monkeypatch):
    "A new file is created as `open` would create it (0o666 & ~umask), not with mkstemp's 0600."
    import ra_inpaint.core as core
    old = os.umask(umask)
    try:
        monkeypatch.setattr(core, '_UMASK', umask)  # the module reads the umask once, at import
        with open(tmp_path/'plain', 'w'): pass
        with atomic_path(tmp_path/'new.txt') as t: Path(t).write_text('x')
        save_config(preset('demo'), tmp_path/'cfg.json')
        save_image(torch.rand(3, 4, 5), tmp_path/'img.png')
    finally: os.umask(old)
    for name in ('new.txt', 'cfg.json', 'img.png'):
        assert _mode(tmp_path/name) == 0o666 & ~umask == _mode(tmp_path/'plain'), name

@posix
def test_atomic_default_umask_read_at_import(tmp_path):
    import ra_inpaint.core as core
    assert core._UMASK == _umask()
    with atomic_path(tmp_path/'a') as t: Path(t).write_text('x')
    assert _mode(tmp_path/'a') == 0o666 & ~_umask()

@posix
@pytest.mark.parametrize('mode', [0o640, 0o600, 0o644, 0o444])
def test_atomic_existing_file_keeps_its_mode(tmp_path, mode):
    p = tmp_path/'cfg.json'
    save_config(preset('demo'), p); os.chmod(p, mode)
    save_config(preset('demo', n_regions=8), p)
    assert _mode(p) == mode and '"n_regions": 8' in p.read_text()
    assert not [q for q in tmp_path.iterdir() if q.name.endswith('.tmp')]

def test_open_image_exif_and_errors(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    ex = Image.Exif(); ex[0x0112] = 6  # rotate 90°
    Image.fromarray(a).save(tmp_path/'rot.jpg', exif=ex.tobytes())
    im = open_image(tmp_path/'rot.jpg')
    assert im.size == (5, 7) and load_image(tmp_path/'rot.jpg').shape == (3, 7, 5)
    (tmp_path/'junk.png').write_bytes(b'junk')
    with pytest.raises(ImageLoadError, match=r'cannot read mask .*junk\.png'): open_image(tmp_path/'junk.png', what='mask')
    with pytest.raises(ImageLoadError, match=r'cannot read image .*junk\.png'): load_image(tmp_path/'junk.png')
    with pytest.raises(ImageLoadError, match='image not found'): load_image(tmp_path/'nope.png')


def test_cuda_device_is_always_indexed(monkeypatch):
    "torch.cuda.set_device refuses a bare 'cuda' (torch 2.11, seen on an H200): get_device always names the index."
    import ra_inpaint.core as core
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'current_device', lambda: 0)
    assert core.get_device('cuda') == torch.device('cuda', 0)
    assert core.get_device() == torch.device('cuda', 0)
    assert core.get_device('cuda:1') == torch.device('cuda', 1)
