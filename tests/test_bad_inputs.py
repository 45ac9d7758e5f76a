"""Bad inputs and faults, one row per case: each ends in a one-line error naming the file or argument, or in a
handled (and counted) skip, and nothing already on disk is lost.

Sections: images | masks | data sets | config | checkpoints | weights offline | CLI | faults during training.
Several rows repeat a check that also lives in the module's own test file: this file is the single overview.
"""
import errno, json, os, signal, warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ra_inpaint import cli, infer
import ra_inpaint.train as train_mod
from ra_inpaint.logs import read_log
from ra_inpaint.core import (RAConfig, ConfigError, ImageLoadError, load_image, load_config, config_from_dict, preset,
                             atomic_path)
from ra_inpaint.masks import load_mask
from ra_inpaint.data import list_images, InpaintDataset
from ra_inpaint.generator import InpaintGenerator
from ra_inpaint.losses import load_vgg16, WeightsNotFoundError, VGG16_FILE, VGG16_ENV
from ra_inpaint.metrics import load_inception, INCEPTION_FILE, INCEPTION_ENV
from ra_inpaint.checkpoint import load_checkpoint, save_checkpoint, CheckpointError
from ra_inpaint.train import Trainer, TrainingDiverged
from test_train import NaNAt, tiny as train_tiny  # the training tests' NaN-injecting loss wrapper and tiny config

@pytest.fixture(autouse=True, scope='module')
def one_thread():
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

def tiny(**kw):
    "The training tests' 32² model, logging every step and checkpointing every 2."
    return train_tiny(**{**dict(log_every=1, ckpt_every=2), **kw})

def rgb(h, w, seed=0): return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)

def png_bytes(h=20, w=30):
    import io
    b = io.BytesIO(); Image.fromarray(rgb(h, w)).save(b, format='PNG'); return b.getvalue()

def jpg_bytes(h=20, w=30):
    import io
    b = io.BytesIO(); Image.fromarray(rgb(h, w)).save(b, format='JPEG', quality=90); return b.getvalue()

@pytest.fixture(scope='module')
def img_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp('imgs')
    for k in range(6): Image.fromarray(rgb(40, 40, k)).save(d/f'{k}.png')
    return d

def quiet(): warnings.simplefilter('ignore')

@pytest.fixture(scope='module')
def ckpt(tmp_path_factory, img_dir):
    "A real (untrained) checkpoint of the tiny model."
    out = tmp_path_factory.mktemp('ck')
    tr = Trainer(tiny(), InpaintDataset(str(img_dir), 32), out, vgg=None, progress=False)
    tr.save()
    return out/'last.pt'

# ---------------------------------------------------------------------------------------------------------- images
# (name, how to write the file, expected: an exception type | a check on the loaded (3,H,W) tensor)
def _write(data): return lambda p: p.write_bytes(data)
def _pil(a, **kw): return lambda p: Image.fromarray(a).save(p, **kw)
def _pil_im(make, **kw): return lambda p: make().save(p, **kw)

def _exif6(p):
    ex = Image.Exif(); ex[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    Image.fromarray(rgb(20, 30)).save(p, exif=ex.tobytes())

IMAGE_CASES = {
    'corrupt_bytes':   ('x.png', _write(png_bytes()[:40] + bytes(range(256)) * 4), ImageLoadError),
    'truncated_jpeg':  ('x.jpg', _write(jpg_bytes(64, 64)[:300]), ImageLoadError),
    'truncated_png':   ('x.png', _write(png_bytes(64, 64)[:len(png_bytes(64, 64)) // 2]), ImageLoadError),
    'zero_byte':       ('x.png', _write(b''), ImageLoadError),
    'not_an_image':    ('x.jpg', _write(b'hello, I am a text file\n' * 20), ImageLoadError),
    'missing_file':    ('x.png', None, ImageLoadError),
    'grayscale':       ('x.png', _pil(rgb(20, 30)[..., 0]), lambda t: t.shape == (3, 20, 30) and torch.equal(t[0], t[1])),
    'rgba_alpha_dropped': ('x.png', _pil(np.dstack([rgb(20, 30), np.zeros((20, 30), np.uint8)])),  # fully transparent
                       lambda t: torch.equal((t * 255).round().byte().permute(1, 2, 0), torch.from_numpy(rgb(20, 30)))),
    'palette':         ('x.png', _pil_im(lambda: Image.fromarray(rgb(20, 30)).convert('P')),
                       lambda t: t.shape == (3, 20, 30) and t.max() <= 1),
    '16bit_png':       ('x.png', _pil_im(lambda: Image.fromarray(np.full((8, 9), 65535 // 3, np.uint16))),
                       lambda t: t.shape == (3, 8, 9) and abs(t[0, 0, 0].item() - 1 / 3) < 1e-4),
    '1x1':             ('x.png', _pil(rgb(1, 1)), lambda t: t.shape == (3, 1, 1)),
    'exif_rotated_jpeg': ('x.jpg', _exif6, lambda t: t.shape == (3, 30, 20)),  # stored 30 wide x 20 high, shown 20 x 30
}

@pytest.mark.parametrize('name', IMAGE_CASES)
def test_image(name, tmp_path):
    fname, write, expect = IMAGE_CASES[name]
    p = tmp_path/fname
    if write: write(p)
    if isinstance(expect, type):
        with pytest.raises(expect) as e: load_image(p)
        assert str(p) in str(e.value) and '\n' not in str(e.value)
    else: assert expect(load_image(p))

def test_image_decompression_bomb_is_a_clear_error(tmp_path, monkeypatch):
    "PIL refuses images over 2x MAX_IMAGE_PIXELS with its own exception type: still an ImageLoadError naming the file."
    Image.fromarray(rgb(40, 40)).save(tmp_path/'big.png')
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 100)
    with pytest.raises(ImageLoadError, match='big.png.*MAX_IMAGE_PIXELS'): load_image(tmp_path/'big.png')

def test_image_huge_fill_runs_at_model_size():
    "A 4000x3000 photo: the network runs at cfg.size (bounded memory), the output has the photo's size, known pixels kept."
    torch.manual_seed(0)
    g = InpaintGenerator(tiny()).eval()
    seen = []
    g.register_forward_pre_hook(lambda m, a: seen.append(tuple(a[0].shape)))
    x = torch.rand(3, 3000, 4000)
    m = torch.zeros(1, 3000, 4000); m[:, 1000:1600, 2000:2900] = 1
    (y,) = infer.fill(g, [x], [m])
    assert seen == [(1, 3, 32, 32)] and y.shape == x.shape
    assert torch.equal(y[:, :1000], x[:, :1000]) and not torch.equal(y[:, 1000:1600, 2000:2900], x[:, 1000:1600, 2000:2900])

def test_image_tiny_1x1_fill():
    g = InpaintGenerator(tiny()).eval()
    (y,) = infer.fill(g, [torch.rand(3, 1, 1)], [torch.ones(1, 1, 1)])
    assert y.shape == (3, 1, 1) and torch.isfinite(y).all()

# ----------------------------------------------------------------------------------------------------------- masks
def _mask_png(p, a): Image.fromarray(a.astype(np.uint8)).save(p); return p

@pytest.mark.parametrize('exc', ['bomb', 'struct', 'index', 'type', 'syntax'])
def test_mask_damaged_any_decoder_error_names_file(tmp_path, monkeypatch, exc):
    "Whatever a PIL decoder throws on a damaged mask, load_mask raises ImageLoadError naming it (a worker survives)."
    import struct
    from PIL import ImageFile
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path/'m.png')
    errs = dict(bomb=Image.DecompressionBombError('too big'), struct=struct.error('unpack requires a buffer'),
                index=IndexError('index out of range'), type=TypeError('bad tile'), syntax=SyntaxError('bad chunk'))
    def load(self): raise errs[exc]
    monkeypatch.setattr(ImageFile.ImageFile, 'load', load)
    with pytest.raises(ImageLoadError, match=r'm\.png'): load_mask(tmp_path/'m.png')

def test_mask_wrong_size_resized_with_warning(tmp_path):
    p = _mask_png(tmp_path/'m.png', np.pad(np.full((4, 4), 255), 4))
    with pytest.warns(UserWarning, match='resized'): m = infer.read_mask(p, (24, 36))
    assert m.shape == (1, 1, 24, 36)
    with pytest.warns(UserWarning, match='resized'): assert load_mask(p, 24).shape == (1, 24, 24)

def test_mask_non_binary_thresholded_at_half(tmp_path):
    a = np.tile(np.arange(256), (4, 1))
    p = _mask_png(tmp_path/'m.png', a)
    ref = torch.from_numpy(a / 255. > 0.5).float()
    assert torch.equal(infer.read_mask(p, (4, 256))[0, 0], ref)
    assert torch.equal(load_mask(p)[0], ref)

@pytest.mark.parametrize('value,msg', [(255, 'all hole'), (0, 'no hole')], ids=['all_white_inverted?', 'all_black_empty'])
def test_mask_inverted_or_empty_polarity_warns(tmp_path, value, msg):
    p = _mask_png(tmp_path/'m.png', np.full((8, 8), value))
    with pytest.warns(UserWarning, match=msg): infer.read_mask(p, (8, 8))
    with pytest.warns(UserWarning, match='inverted polarity'): load_mask(p)

@pytest.mark.parametrize('mode', ['L', 'RGB'])
def test_mask_zero_one_png_reads_as_its_0_255_twin(tmp_path, mode):
    "A 0/1 mask (numpy's bool array saved as 8-bit PNG) is 1 = hole in every reader, exactly like the 0/255 file."
    from ra_inpaint.masks import MaskFolder
    hole = np.zeros((24, 20), np.uint8); hole[4:15, 3:12] = 1
    a01, a255 = (np.dstack([hole] * 3), np.dstack([hole * 255] * 3)) if mode == 'RGB' else (hole, hole * 255)
    (tmp_path/'01').mkdir(); (tmp_path/'0255').mkdir()
    p01, p255 = _mask_png(tmp_path/'01'/'m.png', a01), _mask_png(tmp_path/'0255'/'m.png', a255)
    want = torch.from_numpy(hole).float()
    with warnings.catch_warnings():
        warnings.simplefilter('error')                   # no "no hole pixel" / "inverted polarity" warning either
        assert torch.equal(infer.read_mask(p01, (24, 20)), infer.read_mask(p255, (24, 20)))
        assert torch.equal(infer.read_mask(p01, (24, 20))[0, 0], want)
        assert torch.equal(load_mask(p01), load_mask(p255)) and torch.equal(load_mask(p01)[0], want)
        assert torch.equal(load_mask(p01, polarity='black_hole'), load_mask(p255, polarity='black_hole'))
        assert torch.equal(MaskFolder(tmp_path/'01', 16)[0], MaskFolder(tmp_path/'0255', 16)[0])
        assert MaskFolder(tmp_path/'01', 24, ratio=(0.1, 0.3)).files == [p01]  # 99/480 = 0.21: bucketed as a real hole
    # only a largest value of exactly 1 means 0/1: a dark mask with values 0/2 still has no hole pixel
    p2 = _mask_png(tmp_path/'dark.png', np.pad(np.full((4, 4), 2), 2))
    with pytest.warns(UserWarning, match='no hole'): assert infer.read_mask(p2, (8, 8)).sum() == 0
    with pytest.warns(UserWarning, match='inverted polarity'): assert load_mask(p2).sum() == 0

def test_mask_empty_output_equals_input():
    g = InpaintGenerator(tiny()).eval()
    x = torch.rand(3, 45, 37)
    (y,) = infer.fill(g, [x], [torch.zeros(1, 45, 37)])
    assert torch.equal(y, x)

def test_mask_full_still_returns_an_image(tmp_path):
    p = _mask_png(tmp_path/'m.png', np.full((45, 37), 255))
    with pytest.warns(UserWarning, match='all hole'): m = infer.read_mask(p, (45, 37))
    (y,) = infer.fill(InpaintGenerator(tiny()).eval(), [torch.rand(3, 45, 37)], [m[0]])
    assert y.shape == (3, 45, 37) and torch.isfinite(y).all() and 0 <= y.min() and y.max() <= 1

# ------------------------------------------------------------------------------------------------------- data sets
def _celeba(root, part_text):
    (root/'img_align_celeba').mkdir(parents=True)
    for n in ('000001.jpg', '000002.jpg'): Image.fromarray(rgb(20, 16)).save(root/'img_align_celeba'/n)
    if part_text is not None: (root/'list_eval_partition.txt').write_text(part_text)
    return f'celeba:{root}'

def _flist(root):
    Image.fromarray(rgb(8, 8)).save(root/'a.png')
    (root/'l.flist').write_text('a.png\ngone.png\n')
    return str(root/'l.flist')

DATA_CASES = {  # name: (make source, expected error type, words the message must contain)
    'empty_folder':             (lambda r: str(r), FileNotFoundError, 'no image files'),
    'missing_folder':           (lambda r: str(r/'nope'), FileNotFoundError, 'nope'),
    'flist_missing_entries':    (_flist, FileNotFoundError, 'gone.png'),
    'celeba_partition_missing': (lambda r: _celeba(r, None), FileNotFoundError, 'list_eval_partition.txt'),
    'celeba_partition_malformed': (lambda r: _celeba(r, '000001.jpg 0\n000002.jpg train\n'), ValueError, 'line 2'),
}

@pytest.mark.parametrize('name', DATA_CASES)
def test_data_source(name, tmp_path):
    make, err, words = DATA_CASES[name]
    with pytest.raises(err, match=words): list_images(make(tmp_path))

def test_data_mixed_extensions_and_non_image_files(tmp_path):
    for n in ('a.png', 'b.JPG', 'c.jpeg', 'd.bmp', 'e.webp', 'sub/f.tif'):
        (tmp_path/n).parent.mkdir(exist_ok=True); Image.fromarray(rgb(8, 8)).save(tmp_path/n)
    (tmp_path/'notes.txt').write_text('x'); (tmp_path/'.DS_Store').write_bytes(b'\0'); (tmp_path/'meta.json').write_text('{}')
    assert [p.name for p in list_images(str(tmp_path))] == ['a.png', 'b.JPG', 'c.jpeg', 'd.bmp', 'e.webp', 'f.tif']

def test_data_corrupt_file_skipped_and_counted(tmp_path):
    for k in range(3): Image.fromarray(rgb(20, 20, k)).save(tmp_path/f'{k}.png')
    (tmp_path/'1.png').write_bytes(b'')
    ds = InpaintDataset(str(tmp_path), 16)
    with pytest.warns(UserWarning, match='1.png'): item = ds[1]
    assert ds.n_skipped == 1 and item['skipped'] == str(tmp_path/'1.png') and item['image'].shape == (3, 16, 16)

# ---------------------------------------------------------------------------------------------------------- config
CONFIG_CASES = {  # name: (dict given to config_from_dict, words the ConfigError must contain)
    'unknown_key':          (dict(n_region=8), 'n_region'),
    'wrong_type_str':       (dict(size='256'), "'size' must be int"),
    'wrong_type_bool':      (dict(amp='yes'), "'amp' must be bool"),
    'wrong_type_float_int': (dict(batch_size=8.0), "'batch_size' must be int"),
    'n_regions_zero':       (dict(n_regions=0), 'n_regions must be >= 1'),
    'size_not_multiple':    (dict(size=250), 'multiple of 16'),
    'size_too_small_for_D': (dict(size=16, reduction=1), 'too small'),
    'negative_lr':          (dict(lr=-1e-4), 'learning rates'),
    'unknown_attention':    (dict(attention='self'), 'attention must be one of'),
}

@pytest.mark.parametrize('name', CONFIG_CASES)
def test_config(name):
    d, words = CONFIG_CASES[name]
    with pytest.raises(ConfigError, match=words): config_from_dict(d)

@pytest.mark.parametrize('text,words', [('{"size": 64,', 'cfg.json'), ('[1, 2]', 'mapping'), ('{"preset": "nope"}', 'unknown preset')],
                         ids=['malformed_json', 'not_a_mapping', 'unknown_preset'])
def test_config_file(tmp_path, text, words):
    (tmp_path/'cfg.json').write_text(text)
    with pytest.raises(ConfigError, match=words): load_config(tmp_path/'cfg.json')

# ------------------------------------------------------------------------------------------------------ checkpoints
@pytest.mark.parametrize('other,words', [
    (dict(size=64), 'size=32; this config has size=64'),
    (dict(n_regions=8), 'n_regions=4; this config has n_regions=8'),
    (dict(lga_where='decoder'), "lga_where='encoder'; this config has lga_where='decoder'"),
    (dict(upsample='resize'), "upsample='deconv'; this config has upsample='resize'"),
], ids=['other_size', 'other_n', 'other_variant', 'other_upsampling'])
def test_checkpoint_of_another_model(ckpt, other, words):
    with pytest.raises(CheckpointError, match=words): load_checkpoint(ckpt, tiny(**other))

def test_checkpoint_truncated_previous_still_usable(ckpt, tmp_path):
    good = ckpt.read_bytes()
    (tmp_path/'cut.pt').write_bytes(good[:len(good) // 2])
    with pytest.raises(CheckpointError, match='cut.pt.*truncated'): load_checkpoint(tmp_path/'cut.pt')
    assert load_checkpoint(ckpt)['step'] == 0

class Evil:
    "Unpickling this would create a marker file."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (Path.touch, (Path(self.marker),))

def test_checkpoint_needing_pickle_code_is_refused(tmp_path):
    marker = tmp_path/'PWNED'
    torch.save(dict(generator=Evil(str(marker)), step=0), tmp_path/'evil.pt')
    with pytest.raises(CheckpointError, match='evil.pt.*weights_only'): load_checkpoint(tmp_path/'evil.pt')
    assert not marker.exists()

@pytest.mark.parametrize('write,err,words', [
    (lambda p: torch.save(dict(weights=torch.zeros(2)), p), CheckpointError, 'missing generator'),
    (lambda p: p.write_bytes(b'\0' * 100), CheckpointError, 'not a PyTorch checkpoint'),
    (None, FileNotFoundError, 'checkpoint not found'),
], ids=['not_a_training_checkpoint', 'garbage_bytes', 'missing_file'])
def test_checkpoint_not_one(tmp_path, write, err, words):
    if write: write(tmp_path/'x.pt')
    with pytest.raises(err, match=words): load_checkpoint(tmp_path/'x.pt')

# -------------------------------------------------------------------------------------------------- weights offline
def test_weights_vgg16_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path/'hub')); monkeypatch.delenv(VGG16_ENV, raising=False)
    with pytest.raises(WeightsNotFoundError) as e: load_vgg16(allow_download=False)
    for s in (VGG16_FILE, VGG16_ENV, str(tmp_path/'hub'/'checkpoints')): assert s in str(e.value)

def test_weights_inception_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path/'hub')); monkeypatch.delenv(INCEPTION_ENV, raising=False)
    with pytest.raises(WeightsNotFoundError) as e: load_inception(allow_download=False)
    for s in (INCEPTION_FILE, INCEPTION_ENV, str(tmp_path/'hub'/'checkpoints')): assert s in str(e.value)

# ------------------------------------------------------------------------------------------------------------- CLI
def _one_line_error(capsys, *words):
    # progress-bar lines may come first; the error itself must be one line of its own
    err = [l for l in capsys.readouterr().err.strip().splitlines() if not l.startswith(('fill:', 'train:'))]
    assert len(err) == 1 and err[0].startswith('ra-inpaint: error:'), err
    for w in words: assert str(w) in err[0], (w, err)

@pytest.fixture
def photo(tmp_path):
    Image.fromarray(rgb(40, 40)).save(tmp_path/'a.png')
    _mask_png(tmp_path/'m.png', np.pad(np.full((10, 10), 255), 15))
    return tmp_path

CLI_CASES = {  # name: (argv given the folder of photo a.png and mask m.png, words of the one-line error; None: works)
    'missing_checkpoint': (lambda d, ck: ['--checkpoint', d/'no.pt', '--image', d/'a.png', '--mask', d/'m.png', '--out', d/'o'], 'no.pt'),
    'missing_image':      (lambda d, ck: ['--checkpoint', ck, '--image', d/'no.png', '--mask', d/'m.png', '--out', d/'o'], 'no.png'),
    'missing_mask':       (lambda d, ck: ['--checkpoint', ck, '--image', d/'a.png', '--mask', d/'nom.png', '--out', d/'o'], 'nom.png'),
    'corrupt_image':      (lambda d, ck: (d/'b.png').write_bytes(b'xx') and
                           ['--checkpoint', ck, '--image', d/'b.png', '--mask', d/'m.png', '--out', d/'o'], 'b.png'),
    'out_under_a_file':   (lambda d, ck: (d/'f.txt').write_text('x') and
                           ['--checkpoint', ck, '--image', d/'a.png', '--mask', d/'m.png', '--out', d/'f.txt'/'sub'], 'f.txt'),
    'out_equals_input':   (lambda d, ck: ['--checkpoint', ck, '--image', d/'a.png', '--mask', d/'m.png', '--out', d], '--overwrite'),
    'out_equals_input_overwrite': (lambda d, ck: ['--checkpoint', ck, '--image', d/'a.png', '--mask', d/'m.png', '--out', d,
                                                  '--overwrite'], None),
}

@pytest.mark.parametrize('name', list(CLI_CASES))
def test_cli_fill(name, photo, ckpt, capsys):
    argv, words = CLI_CASES[name]
    with warnings.catch_warnings():
        quiet()
        rc = cli.main(['fill', *map(str, argv(photo, ckpt)), '--device', 'cpu'])
    if words is None: assert rc == 0; return
    assert rc == 2
    _one_line_error(capsys, words)
    assert Image.open(photo/'a.png').size == (40, 40)

@pytest.mark.skipif(hasattr(os, 'geteuid') and os.geteuid() == 0, reason='root ignores file permissions: see out_under_a_file')
def test_cli_fill_out_not_writable_chmod(photo, ckpt, capsys):
    (photo/'ro').mkdir(); os.chmod(photo/'ro', 0o500)
    try:
        assert cli.main(['fill', '--checkpoint', str(ckpt), '--image', str(photo/'a.png'), '--mask', str(photo/'m.png'),
                         '--out', str(photo/'ro'), '--device', 'cpu']) == 2
        _one_line_error(capsys, 'ro')
    finally: os.chmod(photo/'ro', 0o700)

def test_cli_fill_two_inputs_same_output_name(photo, ckpt, capsys):
    Image.fromarray(rgb(40, 40, 1)).save(photo/'in_a.jpg'); (photo/'in').mkdir()
    os.replace(photo/'in_a.jpg', photo/'in'/'a.jpg'); Image.fromarray(rgb(40, 40, 2)).save(photo/'in'/'a.png')
    with warnings.catch_warnings():
        quiet()
        rc = cli.main(['fill', '--checkpoint', str(ckpt), '--image', str(photo/'in'), '--mask', str(photo/'m.png'),
                       '--out', str(photo/'o'), '--device', 'cpu'])
    assert rc == 2
    _one_line_error(capsys, 'a.jpg', 'a.png')

def test_cli_train_bad_config_one_line(tmp_path, img_dir, capsys):
    (tmp_path/'c.json').write_text(json.dumps(dict(preset='demo', n_regions=0)))
    assert cli.main(['train', '--data', str(img_dir), '--config', str(tmp_path/'c.json'), '--out', str(tmp_path/'r'),
                     '--steps', '1', '--no-perceptual', '--device', 'cpu']) == 2
    _one_line_error(capsys, 'n_regions')

# ------------------------------------------------------------------------------------------ faults during training
def ds_of(img_dir, cfg, **kw): return InpaintDataset(str(img_dir), cfg.size, seed=cfg.seed, **kw)

class SignalAt(torch.nn.Module):
    "Wraps the generator loss; sends `sig` to this process during the n-th call (mid-step, like a user or a scheduler)."
    def __init__(self, inner, n, sig):
        super().__init__(); self.inner, self.n, self.sig, self.calls, self.vgg = inner, n, sig, 0, inner.vgg
    def forward(self, *a, **k):
        self.calls += 1
        if self.calls == self.n: os.kill(os.getpid(), self.sig)
        return self.inner(*a, **k)

@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT], ids=['SIGTERM', 'ctrl_c'])
def test_fault_signal_mid_step_saves_and_resume_is_exact(img_dir, tmp_path, sig):
    "A signal during step 3: the step finishes, last.pt (step 3) is written; resumed, the losses equal an uninterrupted run's."
    cfg = tiny(ckpt_every=100)
    ref = Trainer(cfg, ds_of(img_dir, cfg), tmp_path/'ref', vgg=None, progress=False).fit(max_steps=5)['history']
    tr = Trainer(cfg, ds_of(img_dir, cfg), tmp_path/'run', vgg=None, progress=False)
    tr.loss_fn = SignalAt(tr.loss_fn, 3, sig)
    h1 = tr.fit(max_steps=5)
    assert h1['stopped_by'] == sig.name and h1['step'] == 3 and load_checkpoint(tmp_path/'run'/'last.pt')['step'] == 3
    h2 = Trainer(cfg, ds_of(img_dir, cfg), tmp_path/'run', vgg=None, progress=False, resume=True).fit(max_steps=5)['history']
    for k in ('total', 'l1', 'adv', 'd'): assert h1['history'][k] + h2[k] == ref[k], k

def test_fault_second_ctrl_c_interrupts_previous_checkpoint_intact(img_dir, tmp_path):
    "Ctrl-C twice: the second one raises KeyboardInterrupt at once; last.pt is the previous good one."
    cfg = tiny(ckpt_every=2)
    tr = Trainer(cfg, ds_of(img_dir, cfg), tmp_path, vgg=None, progress=False)
    class TwoSigints(SignalAt):
        def forward(self, *a, **k):
            self.calls += 1
            if self.calls == 3: os.kill(os.getpid(), signal.SIGINT); os.kill(os.getpid(), signal.SIGINT)
            return self.inner(*a, **k)
    tr.loss_fn = TwoSigints(tr.loss_fn, 3, signal.SIGINT)
    # the handler before fit is whatever started the suite (SIG_IGN in a background job, Python's default in a
    # terminal): install a known one, so that "restored" is checked the same way however pytest was started
    def mine(sig, frame): raise KeyboardInterrupt
    start = signal.signal(signal.SIGINT, mine)
    try:
        with pytest.raises(KeyboardInterrupt): tr.fit(max_steps=10)
        assert signal.getsignal(signal.SIGINT) is mine  # fit put back the handler it found
    finally: signal.signal(signal.SIGINT, start)
    assert load_checkpoint(tmp_path/'last.pt')['step'] == 2
    assert not list(tmp_path.glob('.*.tmp'))

def _failing_save(exc, nbytes=1000):
    "A torch.save that writes `nbytes` of garbage to the target, then raises `exc` (a kill or a full disk mid-write)."
    def save(obj, f, *a, **k):
        Path(f).write_bytes(b'\x50\x4b' + b'\0' * nbytes); raise exc
    return save

@pytest.mark.parametrize('exc', [KeyboardInterrupt(), OSError(errno.ENOSPC, 'No space left on device')],
                         ids=['ctrl_c_during_write', 'disk_full_during_write'])
def test_fault_during_checkpoint_write(img_dir, tmp_path, monkeypatch, exc):
    cfg = tiny(ckpt_every=2)
    tr = Trainer(cfg, ds_of(img_dir, cfg), tmp_path, vgg=None, progress=False)
    tr.fit(max_steps=2)
    before = (tmp_path/'last.pt').read_bytes()
    monkeypatch.setattr(train_mod.torch, 'save', _failing_save(exc))
    with pytest.raises(type(exc)) as e: tr.fit(max_steps=4)
    if isinstance(exc, OSError): assert 'last.pt' in str(e.value) and 'No space left' in str(e.value)
    monkeypatch.undo()
    assert (tmp_path/'last.pt').read_bytes() == before and load_checkpoint(tmp_path/'last.pt')['step'] == 2
    assert not list(tmp_path.glob('.*.tmp'))
    Trainer(cfg, ds_of(img_dir, cfg), tmp_path, vgg=None, progress=False, resume=True).fit(max_steps=3)  # still resumable
    assert load_checkpoint(tmp_path/'last.pt')['step'] == 3

def test_fault_disk_full_at_rename(tmp_path, monkeypatch):
    save_checkpoint(dict(a=torch.ones(2)), tmp_path/'last.pt')
    def full(*a): raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(os, 'replace', full)
    with pytest.raises(OSError, match='last.pt'): save_checkpoint(dict(a=torch.zeros(2)), tmp_path/'last.pt')
    monkeypatch.undo()
    assert torch.equal(torch.load(tmp_path/'last.pt', weights_only=True)['a'], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ['last.pt']

def test_fault_nan_loss_skipped_counted_logged(img_dir, tmp_path):
    cfg = tiny()
    tr = Trainer(cfg, ds_of(img_dir, cfg), tmp_path, vgg=None, progress=False)
    tr.loss_fn = NaNAt(tr.loss_fn, {2})
    h = tr.fit(max_steps=3)
    assert h['bad_steps'] == 1 and h['history']['bad'] == [False, True, False]
    assert read_log(tmp_path/'log.csv')['bad'].tolist() == [0, 1, 0]
    assert all(torch.isfinite(p).all() for p in tr.G.parameters())

def test_fault_nan_streak_stops_with_last_good_checkpoint(img_dir, tmp_path):
    cfg = tiny(ckpt_every=2, max_bad_steps=3)
    tr = Trainer(cfg, ds_of(img_dir, cfg), tmp_path, vgg=None, progress=False)
    tr.loss_fn = NaNAt(tr.loss_fn, range(3, 100))
    with pytest.raises(TrainingDiverged, match=r'last.pt \(step 2\)'): tr.fit(max_steps=20)
    ck = load_checkpoint(tmp_path/'last.pt', cfg)
    assert ck['step'] == 2
    for k, v in tr.G.state_dict().items(): assert torch.equal(v, ck['generator'][k]), k

def test_fault_corrupt_file_in_worker_does_not_kill_epoch(tmp_path):
    """num_workers=2, corrupt files among good ones: every step of two epochs runs; each bad file is skipped and counted once,
    whether the main process met it first (2.png, in the fixed sample batch) or a loader worker did (5.png)."""
    for k in range(6): Image.fromarray(rgb(40, 40, k)).save(tmp_path/f'{k}.png')
    for k in (2, 5): (tmp_path/f'{k}.png').write_bytes(png_bytes()[:50])
    cfg = tiny(num_workers=2, ckpt_every=100)
    with warnings.catch_warnings():
        quiet()
        tr = Trainer(cfg, ds_of(tmp_path, cfg), tmp_path/'run', vgg=None, progress=False)
        h = tr.fit(max_steps=6)  # 6 images, batches of 2: two epochs
    assert h['step'] == 6 and h['bad_steps'] == 0
    bad = {str(tmp_path/'2.png'), str(tmp_path/'5.png')}
    assert len(h['skipped_files']) == 2 and set(h['skipped_files']) == bad
    assert set(load_checkpoint(tmp_path/'run'/'last.pt')['skipped_files']) == bad
