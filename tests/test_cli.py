"The `ra-inpaint` command: demo, train, fill, and its one-line errors."
import json, subprocess, sys, warnings
from pathlib import Path
import numpy as np, pytest, torch
from PIL import Image
from ra_inpaint import cli, demo, infer, checkpoint
from ra_inpaint.core import load_image, to_uint8

def _img(path, w, h, seed=0, mode='RGB'):
    a = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(a).convert(mode).save(path); return path

@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    "A real checkpoint: 3 steps of `ra-inpaint train` on a tiny folder at 32²."
    d = tmp_path_factory.mktemp('cli')
    (d/'imgs').mkdir()
    for i in range(4): _img(d/'imgs'/f'{i}.png', 48, 40, seed=i)
    cfgf = d/'cfg.json'
    cfgf.write_text(json.dumps(dict(preset='demo', size=32, base_ch=8, disc_ch=8, disc_layers=2, batch_size=2,
                                    log_every=1, sample_every=100, ckpt_every=100)))
    assert cli.main(['train', '--data', str(d/'imgs'), '--config', str(cfgf), '--out', str(d/'run'), '--steps', '3',
                     '--no-perceptual', '--device', 'cpu']) == 0
    return d/'run'/'last.pt'

def test_fill_keeps_known_pixels_bit_exact(ckpt, tmp_path):
    img = _img(tmp_path/'photo.png', 500, 333, seed=7)
    m = np.zeros((333, 500), np.uint8); m[100:180, 200:330] = 255; m[20, :] = 255
    Image.fromarray(m).save(tmp_path/'mask.png')
    assert cli.main(['fill', '--checkpoint', str(ckpt), '--image', str(img), '--mask', str(tmp_path/'mask.png'),
                     '--out', str(tmp_path/'out'), '--device', 'cpu']) == 0
    a, b = np.asarray(Image.open(img)), np.asarray(Image.open(tmp_path/'out'/'photo.png'))
    assert b.shape == a.shape
    known = m == 0
    assert np.array_equal(a[known], b[known])          # to the last bit
    assert not np.array_equal(a[~known], b[~known])    # and the hole was filled

def test_fill_folder_batches_and_resizes_mismatched_mask(ckpt, tmp_path):
    (tmp_path/'in').mkdir()
    for i, (w, h) in enumerate([(64, 48), (40, 40), (90, 30)]): _img(tmp_path/'in'/f'{i}.jpg', w, h, seed=i)
    (tmp_path/'in'/'notes.txt').write_text('not an image')
    Image.fromarray(np.pad(np.full((8, 8), 255, np.uint8), 8)).save(tmp_path/'m.png')  # 24x24: resized per image
    with pytest.warns(UserWarning, match='resized'):
        outs = infer.fill_files(ckpt, tmp_path/'in', tmp_path/'m.png', tmp_path/'out', device='cpu', batch_size=2, progress=False)
    assert [p.name for p in outs] == ['0.png', '1.png', '2.png']
    assert [Image.open(p).size for p in outs] == [(64, 48), (40, 40), (90, 30)]

def test_fill_refuses_overwriting_input(ckpt, tmp_path):
    img = _img(tmp_path/'a.png', 40, 40)
    Image.fromarray(np.full((40, 40), 255, np.uint8)).save(tmp_path/'m.png')
    with pytest.raises(FileExistsError, match='--overwrite'):
        infer.fill_files(ckpt, img, tmp_path/'m.png', tmp_path, device='cpu', progress=False)

def test_empty_mask_returns_input(ckpt, tmp_path):
    img = _img(tmp_path/'a.png', 50, 37)
    Image.fromarray(np.zeros((37, 50), np.uint8)).save(tmp_path/'m.png')
    with pytest.warns(UserWarning, match='no hole'):
        (out,) = infer.fill_files(ckpt, img, tmp_path/'m.png', tmp_path/'o', device='cpu', progress=False)
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(img)))

@pytest.mark.parametrize('args,msg', [
    (['fill', '--checkpoint', 'nope.pt', '--image', 'x.png', '--mask', 'm.png', '--out', 'o'], 'no such file'),
    (['train', '--data', 'no/such/folder', '--steps', '1', '--no-perceptual'], 'no/such/folder'),
])
def test_errors_are_one_line(args, msg, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('ra-inpaint: error:') and msg in err[0], err

def test_checkpoint_that_is_not_one(tmp_path, capsys):
    (tmp_path/'bad.pt').write_bytes(b'\x00' * 100)
    _img(tmp_path/'a.png', 32, 32); Image.fromarray(np.full((32, 32), 255, np.uint8)).save(tmp_path/'m.png')
    assert cli.main(['fill', '--checkpoint', str(tmp_path/'bad.pt'), '--image', str(tmp_path/'a.png'),
                     '--mask', str(tmp_path/'m.png'), '--out', str(tmp_path/'o')]) == 2
    assert 'bad.pt' in capsys.readouterr().err

def test_help_shows_defaults():
    r = subprocess.run([sys.executable, '-c', 'from ra_inpaint.cli import main; main()', 'demo', '--help'],
                       capture_output=True, text=True)
    assert r.returncode == 0 and 'default: 2.0' in r.stdout

def test_demo_shipped_model_then_short_run(tmp_path, capsys):
    r = demo.demo(out=tmp_path/'demo', minutes=0.03, device='cpu', progress=False)
    j = json.loads((tmp_path/'demo'/'demo.json').read_text())
    # the file format: the same keys, in the same order, as before the demo left the CLI
    assert list(j) == ['command', 'device', 'torch', 'shipped', 'grid_columns', 'short_run', 'seconds_total']
    assert list(j['shipped']) == ['model', 'images', 'grid', 'summary', 'cases']
    assert list(j['short_run']) == ['config', 'train_images', 'held_out_images', 'grid', 'train', 'summary', 'cases']
    assert list(j['shipped']['cases'][0]) == ['image', 'bucket', 'hole_ratio', 'scores']
    assert list(j['shipped']['cases'][0]['scores']) == ['biharmonic', 'ra_inpaint']
    assert all(list(s) == ['l1_percent', 'psnr', 'ssim'] for c in j['short_run']['cases'] for s in c['scores'].values())
    assert {'steps', 'seconds', 'images_per_s'} <= set(j['short_run']['train'])
    assert all((tmp_path/'demo'/f).exists() for f in ('demo_grid.png', 'demo_short_run_grid.png'))
    sh, sr = j['shipped'], j['short_run']
    assert set(sh['summary']) == {'biharmonic', 'ra_inpaint'} and sh['model']['source'] == 'scene_small128.pt'
    assert set(sh['summary']['ra_inpaint']) == {'10-20', '20-30', '30-40', '40-50', 'all'}
    assert sr['train']['steps'] >= 1 and not set(sr['train_images']) & set(sr['held_out_images'])  # nothing trained on is scored
    # the baseline column is what scikit-image gives on the same image and mask, at the shipped model's size
    from skimage.restoration import inpaint_biharmonic
    from skimage.metrics import peak_signal_noise_ratio
    from ra_inpaint.data import demo_images
    c = demo._demo_cases(demo_images(), sh['model']['size'])[0]
    x, m = c['image'].permute(1, 2, 0).double().numpy(), c['mask'][0].bool().numpy()
    ref = np.where(m[..., None], inpaint_biharmonic(x, m, channel_axis=-1), x)
    assert abs(peak_signal_noise_ratio(x, ref, data_range=1) - sh['cases'][0]['scores']['biharmonic']['psnr']) < 1e-3
    # the printout: the VGG16 fallback in one short line, at most once
    demo.print_demo(r | dict(out=str(tmp_path/'demo')))
    out = capsys.readouterr().out
    assert 'shipped model scene_small128.pt' in out and out.count('VGG16') <= 1

def test_demo_without_training(tmp_path):
    r = demo.demo(out=tmp_path/'d', minutes=0, device='cpu', progress=False)
    assert 'short_run' not in r and not (tmp_path/'d'/'demo_short_run_grid.png').exists()

def test_eval_prints_table_and_writes_files(ckpt, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path/'torch'))  # no Inception weights: FID must read n/a, not a number
    (tmp_path/'imgs').mkdir()
    for i in range(3): _img(tmp_path/'imgs'/f'{i}.png', 40, 36, seed=10 + i)
    assert cli.main(['eval', '--checkpoint', str(ckpt), '--data', str(tmp_path/'imgs'), '--out', str(tmp_path/'ev'),
                     '--max-images', '2', '--device', 'cpu']) == 0
    out = capsys.readouterr().out
    for b in ('10-20', '20-30', '30-40', '40-50'): assert b in out
    assert 'biharmonic' in out and 'n/a' in out
    assert all((tmp_path/'ev'/f).exists() for f in ('table.md', 'table.csv', 'table.json'))
    # --baselines alone: the model's column only (a 12,000-image GPU evaluation would otherwise wait hours on biharmonic)
    assert cli.main(['eval', '--checkpoint', str(ckpt), '--data', str(tmp_path/'imgs'), '--out', str(tmp_path/'ev2'),
                     '--max-images', '2', '--device', 'cpu', '--baselines']) == 0
    head = (tmp_path/'ev2'/'table.md').read_text().splitlines()[0]
    assert 'ours' in head and 'biharmonic' not in head
    capsys.readouterr()
    # --ci: paired bootstrap intervals of ours − biharmonic per bucket and metric, printed and saved
    assert cli.main(['eval', '--checkpoint', str(ckpt), '--data', str(tmp_path/'imgs'), '--out', str(tmp_path/'ev3'),
                     '--max-images', '3', '--device', 'cpu', '--baselines', 'biharmonic', '--ci']) == 0
    out, md = capsys.readouterr().out, (tmp_path/'ev3'/'intervals.md').read_text()
    assert 'ours − biharmonic, paired bootstrap 95 % intervals' in out and md in out
    assert md.count('| PSNR+ |') == 5 and md.count('| SSIM+ |') == 5  # four buckets and the pooled row

def test_bench_prints_one_json_object(tmp_path, capsys):
    assert cli.main(['bench', '--device', 'cpu', '--size', '32', '--batch', '2', '--steps', '1', '--windows', '1',
                     '--warmup', '0', '--parts', 'fill', '--json', str(tmp_path/'b.jsonl')]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r['device'] == 'cpu' and r['size'] == 32 and r['fill_single_ms'] > 0
    assert json.loads((tmp_path/'b.jsonl').read_text().splitlines()[-1]) == r

def test_demo_config_on_gpu_is_larger_and_valid():
    "The GPU demo preset cannot be run here, but it must be a config that validates, larger than the CPU one."
    g, c = demo.demo_config('cuda'), demo.demo_config('cpu')
    assert g.size > c.size and g.base_ch > c.base_ch and g.amp and g.size % g.size_multiple == 0

def test_fill_never_writes_over_a_mask(ckpt, tmp_path):
    "photo.jpg + photo.png (its mask) with --out beside them: the output photo.png would replace the mask."
    _img(tmp_path/'photo.jpg', 40, 40)
    Image.fromarray(np.pad(np.full((10, 10), 255, np.uint8), 15)).save(tmp_path/'photo.png')
    before = (tmp_path/'photo.png').read_bytes()
    with pytest.raises(FileExistsError, match='input images or masks'):
        infer.fill_files(ckpt, tmp_path/'photo.jpg', tmp_path/'photo.png', tmp_path, device='cpu', progress=False)
    assert (tmp_path/'photo.png').read_bytes() == before

def test_demo_rerun_after_a_kill_before_the_first_checkpoint(tmp_path):
    "A demo killed before its first checkpoint left only log.csv: a rerun in the same folder goes on, and keeps that log."
    (tmp_path/'d'/'train').mkdir(parents=True)
    (tmp_path/'d'/'train'/'log.csv').write_text('step,epoch\n1,0\n')
    with pytest.warns(UserWarning):
        r = demo.demo(out=tmp_path/'d', minutes=0.02, device='cpu', progress=False)
    assert r['short_run']['train']['steps'] >= 1
    kept = [p for p in (tmp_path/'d'/'train').glob('log.*.csv')]
    assert len(kept) == 1 and kept[0].read_text() == 'step,epoch\n1,0\n'


def test_train_compile_flag_reaches_the_config(ckpt, monkeypatch):
    "--compile / --no-compile override the config; absent, the config's own value stays (the fixture's run: off)."
    assert torch.load(ckpt, weights_only=True)['config']['compile'] is False
    p = cli.parser()
    assert p.parse_args(['train', '--data', 'x', '--compile']).compile is True
    assert p.parse_args(['train', '--data', 'x', '--no-compile']).compile is False
    assert p.parse_args(['train', '--data', 'x']).compile is None
    seen = {}
    monkeypatch.setattr(cli, 'train', lambda *a, **k: (seen.update(k), dict(steps=0, out='o'))[1])
    assert cli.main(['train', '--data', 'x', '--compile']) == 0
    assert seen['compile'] is True

def test_warm_start_from_exported_weights(ckpt, tmp_path):
    "A new run starts G from exported fp16 weights (D, optimisers and step fresh); a G of another shape is refused."
    w = checkpoint.export_generator(ckpt, tmp_path/'g.pt')
    cfg = checkpoint.read_generator(ckpt)['cfg']
    from ra_inpaint.train import Trainer
    from ra_inpaint.data import InpaintDataset
    ds = InpaintDataset(ckpt.parent.parent/'imgs', cfg.size)
    tr = Trainer(cfg, ds, tmp_path/'run', device='cpu', vgg=None, progress=False)
    assert 'g.pt' in cli.warm_start(tr, w) and tr.step == 0
    ref = checkpoint.read_generator(ckpt)['generator']
    assert all(torch.allclose(v.float(), ref[k].float(), atol=1e-3) for k, v in tr.G.state_dict().items())
    assert all(s['step'] == 0 for s in tr.opt_g.state.values()) if tr.opt_g.state else True
    from ra_inpaint.core import RAConfig, config_to_dict
    other = Trainer(RAConfig(**(config_to_dict(cfg) | dict(base_ch=16))), ds, tmp_path/'run2', device='cpu', vgg=None, progress=False)
    with pytest.raises(checkpoint.CheckpointError, match='base_ch=8'): cli.warm_start(other, w)

def test_train_init_generator_flag(ckpt, tmp_path):
    d = ckpt.parent.parent
    assert cli.main(['train', '--data', str(d/'imgs'), '--config', str(d/'cfg.json'), '--out', str(tmp_path/'run'), '--steps', '1',
                     '--no-perceptual', '--device', 'cpu', '--init-generator', str(ckpt)]) == 0
    from ra_inpaint.checkpoint import load_checkpoint
    assert load_checkpoint(tmp_path/'run'/'last.pt')['step'] == 1

def test_no_library_module_imports_cli():
    "Inference lives in `infer`: only `cli` itself and nbdev's index may name the command module (`launch` imports it by name, lazily)."
    import re
    root = Path(__file__).resolve().parents[1]/'ra_inpaint'
    bad = [p.name for p in root.glob('*.py') if p.name not in ('cli.py', 'launch.py', '_modidx.py')
           and re.search(r'^\s*(from\s+(ra_inpaint)?\.?cli\s+import|import\s+ra_inpaint\.cli)', p.read_text(), re.M)]
    assert bad == []

def test_fill_without_checkpoint_uses_the_shipped_model(tmp_path):
    "`ra-inpaint fill` with no --checkpoint: the scene model inside the package fills, known pixels untouched."
    assert checkpoint.shipped_path('scene').is_file(), 'the shipped weights are package data: reinstall with pip install -e .'
    g = infer.load_generator(device='cpu')
    assert g.meta['step'] > 0 and not g.training and next(g.parameters()).dtype == torch.float32
    img = _img(tmp_path/'photo.png', 300, 200, seed=3)
    m = np.zeros((200, 300), np.uint8); m[60:140, 100:220] = 255
    Image.fromarray(m).save(tmp_path/'mask.png')
    assert cli.main(['fill', '--image', str(img), '--mask', str(tmp_path/'mask.png'), '--out', str(tmp_path/'out'), '--device', 'cpu']) == 0
    a, b = np.asarray(Image.open(img)), np.asarray(Image.open(tmp_path/'out'/'photo.png'))
    assert np.array_equal(a[m == 0], b[m == 0]) and not np.array_equal(a[m > 0], b[m > 0])

def test_shipped_weights_are_small_fp16_and_installed_as_package_data():
    import tomllib
    root = Path(__file__).resolve().parents[1]
    assert 'weights/*.pt' in tomllib.loads((root/'pyproject.toml').read_text())['tool']['setuptools']['package-data']['ra_inpaint']
    for name in checkpoint.SHIPPED:
        p = checkpoint.shipped_path(name)
        if name == 'scene': assert p.is_file()
        if not p.is_file(): continue
        assert p.stat().st_size < 16 * 2**20
        d = torch.load(p, weights_only=True)
        assert d['format'] == checkpoint.WEIGHTS_FORMAT and set(d) >= {'config', 'generator', 'meta'}
        assert {v.dtype for v in d['generator'].values() if v.is_floating_point()} == {torch.float16}

def test_eval_convention_flag(ckpt, tmp_path, monkeypatch):
    "--convention edgeconnect needs a model of at least 51 px (its 51×51 SSIM window): the 32² fixture model is refused in one line."
    monkeypatch.setenv('TORCH_HOME', str(tmp_path/'torch'))
    (tmp_path/'imgs').mkdir(); _img(tmp_path/'imgs'/'0.png', 40, 36)
    args = ['eval', '--checkpoint', str(ckpt), '--data', str(tmp_path/'imgs'), '--max-images', '1', '--device', 'cpu', '--baselines']
    assert cli.main(args + ['--out', str(tmp_path/'a'), '--convention', 'ctsdg', '--quantize', 'none']) == 0
    assert cli.main(args + ['--out', str(tmp_path/'b'), '--convention', 'edgeconnect']) == 2

def test_train_polarity_flag_reaches_the_mask_folder(tmp_path, monkeypatch):
    "--polarity black_hole: a QD-IMD-style folder (black = hole) trains with its holes, not their complement."
    (tmp_path/'imgs').mkdir(); (tmp_path/'masks').mkdir()
    for i in range(2): _img(tmp_path/'imgs'/f'{i}.png', 80, 70, seed=i)
    m = np.full((64, 64), 255, np.uint8); m[16:40, 8:56] = 0                 # black hole: 24 x 48 of 64 x 64
    Image.fromarray(m).save(tmp_path/'masks'/'0.png')
    seen = []
    class Stub:  # the Trainer, reduced to what cli.train needs: the dataset it was given is all this test reads
        def __init__(self, cfg, ds, out, **k): seen.append(ds); self.resumed_from, self.info = None, {}
        def fit(self, **k): return dict(step=0)
    monkeypatch.setattr(cli, 'Trainer', Stub)
    base = ['train', '--data', str(tmp_path/'imgs'), '--masks', str(tmp_path/'masks'), '--preset', 'demo', '--out', str(tmp_path/'r')]
    assert cli.main(base + ['--polarity', 'black_hole']) == 0
    assert cli.main(base[:-1] + [str(tmp_path/'r2')]) == 0                      # default: white = hole
    black, white = seen
    assert black.masks.polarity == 'black_hole' and white.masks.polarity == 'white_hole'
    assert black.masks[0].mean().item() == pytest.approx(24 * 48 / 64**2)
    assert torch.equal(black.masks[0], 1 - white.masks[0])
    with pytest.raises(SystemExit): cli.parser().parse_args(['train', '--data', 'x', '--polarity', 'white'])

def test_help_and_fill_do_not_import_torchvision(tmp_path):
    "The entry point parses without torch; `fill` (here on a bad path) never imports torchvision."
    import subprocess, sys
    code = ("import sys; from ra_inpaint import launch; launch.parser(); assert 'torch' not in sys.modules; "
            "rc = launch.main(['fill', '--image', 'nope.png', '--mask', 'nope.png', '--out', %r]); "
            "assert rc == 2 and 'torch' in sys.modules and 'torchvision' not in sys.modules, sorted(sys.modules)" % str(tmp_path/'o'))
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]

def test_train_set_overrides_any_config_field(tmp_path):
    "`train --set KEY=VALUE` reaches the config without a CLI option per field; an unknown key is one clear error."
    from ra_inpaint.checkpoint import load_checkpoint
    (tmp_path/'imgs').mkdir()
    for i in range(3): _img(tmp_path/'imgs'/f'{i}.png', 40, 36, seed=i)
    base = ['train', '--data', str(tmp_path/'imgs'), '--preset', 'demo', '--steps', '1', '--no-perceptual', '--device', 'cpu']
    assert cli.main(base + ['--out', str(tmp_path/'r'), '--set', 'size=32', '--set', 'lr=3e-4', '--set', 'color_path=none', '--set', 'w_region=0.5']) == 0
    cfg = load_checkpoint(tmp_path/'r'/'last.pt')['cfg']
    assert (cfg.size, cfg.lr, cfg.color_path, cfg.w_region) == (32, 3e-4, 'none', 0.5)
    assert cli.main(base + ['--out', str(tmp_path/'s'), '--set', 'no_such_field=1']) == 2
    assert cli.main(base + ['--out', str(tmp_path/'t'), '--set', 'lr']) == 2


def test_help_imports_no_torch():
    "`ra-inpaint --help` answers at once: the parser is built, and --help printed, without torch."
    code = "import sys; from ra_inpaint.launch import parser; parser(); assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, '-c', code], capture_output=True, text=True).returncode == 0
    code = ("import sys; from ra_inpaint.launch import main\ntry: main(['--help'])\nexcept SystemExit as e: assert e.code == 0\n"
            "assert 'torch' not in sys.modules")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0 and 'fill' in r.stdout, r.stderr[-2000:]

def test_fill_command_module_imports_no_torchvision():
    "The module `fill` runs in, and the function it calls, come without torchvision; each command's function exists."
    code = ("import sys; from ra_inpaint.launch import command, COMMANDS; f = command('fill'); "
            "assert 'torch' in sys.modules and 'torchvision' not in sys.modules, 'torchvision'; "
            "assert all(callable(command(c)) for c in COMMANDS)")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


def test_console_script_fill_exits_fast_with_its_file_written(tmp_path):
    "The console script leaves without Python's teardown after `fill`: the PNG is complete, the message printed, the status kept."
    from PIL import Image
    from ra_inpaint.core import load_image
    _img(tmp_path/'p.png', 150, 50, seed=3)                        # a 3:1 photo
    m = np.zeros((50, 150), np.uint8); m[10:30, 40:90] = 255; Image.fromarray(m).save(tmp_path/'m.png')
    r = subprocess.run([sys.executable, '-c', 'from ra_inpaint.launch import cli; cli()', 'fill', '--image', str(tmp_path/'p.png'),
                        '--mask', str(tmp_path/'m.png'), '--out', str(tmp_path/'o'), '--device', 'cpu'], capture_output=True, text=True)
    assert r.returncode == 0 and 'fill: wrote 1 image(s)' in r.stdout, r.stderr[-2000:]
    x, y = load_image(tmp_path/'p.png'), load_image(tmp_path/'o'/'p.png')
    assert y.shape == x.shape and torch.equal(y[:, m == 0], x[:, m == 0])   # the whole file, its known pixels the photo's
    assert list((tmp_path/'o').iterdir()) == [tmp_path/'o'/'p.png']          # no temporary file left behind
