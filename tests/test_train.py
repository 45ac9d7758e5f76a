"Training loop: learning, exact resume, checkpoints that survive kills, NaN guard, DDP (gloo, 2 processes)."
import json, os, signal, subprocess, sys, time, warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ra_inpaint.core import preset, config_to_dict
from ra_inpaint.data import InpaintDataset
from ra_inpaint.losses import VGGFeatures, load_vgg16, WeightsNotFoundError
from ra_inpaint.checkpoint import load_checkpoint, save_checkpoint, CheckpointError
from ra_inpaint.train import Trainer, TrainingDiverged, ResumableBatchSampler
from ra_inpaint.logs import read_log
import ra_inpaint, ra_inpaint.train as train_mod

ROOT = Path(__file__).resolve().parents[1]
# one intra-op thread: on a shared 2-core machine OpenMP's spin-waiting makes 2 threads ~10x slower, not faster
ENV = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', ''), OMP_NUM_THREADS='1')

@pytest.fixture(autouse=True, scope='module')
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

def tiny(**kw):
    "A 32² model small enough for a test step to take tens of milliseconds."
    return preset('demo', **{**dict(size=32, base_ch=8, disc_ch=8, disc_layers=2, batch_size=2, n_regions=4,
                                    log_every=2, sample_every=1000, ckpt_every=3, max_bad_steps=3, num_workers=0), **kw})

@pytest.fixture(scope='module')
def img_dir(tmp_path_factory):
    "Eight smooth synthetic photos (gradients + blobs): easy to learn, fast to read."
    d = tmp_path_factory.mktemp('imgs')
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:72, 0:72] / 71.
    for k in range(8):
        a, b, c = rng.uniform(0, 1, 3)
        im = np.stack([a * xx + (1 - a) * yy, b * (1 - xx), c * np.sin(3 * xx + 2 * yy) * .5 + .5], -1)
        Image.fromarray((im * 255).astype(np.uint8)).save(d/f'{k}.png')
    return d

@pytest.fixture(scope='module')
def vgg():
    "A randomly initialised VGG16 feature extractor: exercises the perceptual and style terms without weights."
    torch.manual_seed(0)
    return VGGFeatures(load_vgg16(pretrained=False))

def ds_of(img_dir, cfg, train=True): return InpaintDataset(str(img_dir), cfg.size, train=train, seed=cfg.seed)

def quiet(): warnings.simplefilter('ignore')

def test_generator_l1_decreases(img_dir, tmp_path):
    "30 steps at 64² lower the generator's L1 on a fixed held-out batch (eval mode, deterministic masks)."
    # EdgeConnect's colour path starts from noise, so 30 steps show the loop learning (the push-pull path starts near its fill)
    cfg = tiny(size=64, batch_size=4, lr=1e-3, d_lr=1e-3, log_every=10, ckpt_every=100, sample_every=15, color_path='none')
    val = ds_of(img_dir, cfg, train=False)
    tr = Trainer(cfg, ds_of(img_dir, cfg), tmp_path, vgg=None, progress=False, val_ds=val)
    before = tr.evaluate_l1()
    h = tr.fit(max_steps=30)
    after = tr.evaluate_l1()
    assert h['step'] == 30 and h['bad_steps'] == 0
    assert after < 0.7 * before, (before, after)
    # slow reference for the validation L1: a plain loop over the items, one image at a time
    g = tr.generator.eval()
    with torch.no_grad():
        ref = np.mean([(g(it['image'][None], it['mask'][None]) - it['image'][None]).abs().mean().item() for it in (val[i] for i in range(len(val)))])
    assert abs(ref - after) < 1e-5
    assert h['best'] == dict(metric='val_l1', value=pytest.approx(after, abs=1e-6), step=30)  # picked best.pt
    assert torch.load(tmp_path/'best.pt', weights_only=True)['step'] == 30
    l1 = h['history']['l1']
    assert np.mean(l1[-5:]) < np.mean(l1[:5])
    assert (tmp_path/'samples'/'step_000015.png').is_file() and (tmp_path/'loss_curves.png').is_file()
    log = read_log(tmp_path/'log.csv')
    assert list(log['step']) == list(range(1, 31)) and np.isfinite(log['adv']).all() and np.isfinite(log['d']).all()

def _run(img_dir, out, cfg, vgg, steps, resume=False):
    tr = Trainer(cfg, ds_of(img_dir, cfg), out, vgg=vgg, progress=False, resume=resume)
    return tr, tr.fit(max_steps=steps)

@pytest.mark.parametrize('workers', [0, 2])
def test_resume_is_bit_identical(img_dir, tmp_path, vgg, workers):
    "6 steps straight == 3 steps, a new Trainer resumed from last.pt, 3 more steps: every loss term, exactly."
    cfg = tiny(batch_size=3, ckpt_every=100, num_workers=workers)  # 8 images, batches of 3: the epoch turns inside a batch
    ta, a = _run(img_dir, tmp_path/'a', cfg, vgg, 6)
    _, b1 = _run(img_dir, tmp_path/'b', cfg, vgg, 3)
    tb, b2 = _run(img_dir, tmp_path/'b', cfg, vgg, 6, resume=True)
    assert set(a['history']) >= {'total', 'l1', 'perceptual', 'style', 'adv', 'd'}
    assert b2['history']['step'] == [4, 5, 6]
    for k in ('total', 'l1', 'perceptual', 'style', 'adv', 'd'):
        assert a['history'][k] == b1['history'][k] + b2['history'][k], k
    for k, v in ta.G.state_dict().items(): assert torch.equal(v, tb.G.state_dict()[k]), k
    for k, v in ta.D.state_dict().items(): assert torch.equal(v, tb.D.state_dict()[k]), k
    assert list(read_log(tmp_path/'b'/'log.csv')['step']) == list(range(1, 7))

def test_resume_takes_the_configs_learning_rates(img_dir, tmp_path):
    "Resuming with a lower lr (a decay by hand) uses it; Adam's moments come from the checkpoint."
    cfg = tiny(ckpt_every=100)
    ta, _ = _run(img_dir, tmp_path, cfg, None, 3)
    low = tiny(ckpt_every=100, lr=cfg.lr / 10, d_lr=cfg.d_lr / 4)
    tb = Trainer(low, ds_of(img_dir, low), tmp_path, vgg=None, progress=False, resume=True)
    assert {g['lr'] for g in tb.opt_g.param_groups} == {cfg.lr / 10} and {g['lr'] for g in tb.opt_d.param_groups} == {cfg.d_lr / 4}
    sa, sb = ta.opt_g.state_dict()['state'], tb.opt_g.state_dict()['state']
    assert all(torch.equal(sa[k]['exp_avg'], sb[k]['exp_avg']) for k in sa)

def test_checkpoint_contents_weights_only(img_dir, tmp_path, vgg):
    cfg = tiny()
    tr, h = _run(img_dir, tmp_path, cfg, vgg, 4)
    ck = torch.load(tmp_path/'last.pt', weights_only=True)  # only tensors, numbers, strings, lists, dicts
    for k in ('generator', 'discriminator', 'opt_g', 'opt_d', 'scaler', 'step', 'epoch', 'rng', 'config', 'version', 'counters', 'best'):
        assert k in ck, k
    assert ck['step'] == 4 and ck['version'] == ra_inpaint.__version__ and ck['config'] == config_to_dict(cfg)
    assert ck['counters']['bad_steps'] == 0 and ck['perceptual_enabled'] is True
    assert torch.load(tmp_path/'best.pt', weights_only=True)['step'] in (3, 4)
    for k, v in tr.generator.state_dict().items(): assert torch.equal(v, ck['generator'][k])
    assert load_checkpoint(tmp_path/'last.pt', cfg)['cfg'] == cfg

def test_truncated_checkpoint_clear_error_and_previous_survives(img_dir, tmp_path, monkeypatch):
    cfg = tiny()
    tr, _ = _run(img_dir, tmp_path, cfg, None, 3)
    good = (tmp_path/'last.pt').read_bytes()
    (tmp_path/'cut.pt').write_bytes(good[:len(good) // 3])
    with pytest.raises(CheckpointError, match='cut.pt'): load_checkpoint(tmp_path/'cut.pt')
    # a kill in the middle of writing the next checkpoint: torch.save dies half-way
    real_save = torch.save
    def dying_save(obj, f, *a, **k):
        Path(f).write_bytes(good[:1000]); raise KeyboardInterrupt
    monkeypatch.setattr(train_mod.torch, 'save', dying_save)
    with pytest.raises(KeyboardInterrupt): tr.save()
    monkeypatch.setattr(train_mod.torch, 'save', real_save)
    assert load_checkpoint(tmp_path/'last.pt')['step'] == 3
    assert not [p for p in tmp_path.iterdir() if p.name.endswith('.tmp')]
    (tmp_path/'last.pt').write_bytes(good[:len(good) // 2])  # a truncated last.pt refuses to resume, naming the file
    with pytest.raises(CheckpointError, match='last.pt'): Trainer(cfg, ds_of(img_dir, cfg), tmp_path, vgg=None, resume=True, progress=False)

def test_config_mismatch_names_both_values(img_dir, tmp_path):
    cfg = tiny()
    _run(img_dir, tmp_path, cfg, None, 1)
    other = tiny(size=64, n_regions=8)
    with pytest.raises(CheckpointError, match=r'trained with size=32, n_regions=4; this config has size=64, n_regions=8'):
        Trainer(other, ds_of(img_dir, other), tmp_path, vgg=None, resume=True, progress=False)
    with pytest.raises(FileExistsError, match='resume=True'):  # a new run never overwrites an old one silently
        Trainer(cfg, ds_of(img_dir, cfg), tmp_path, vgg=None, progress=False)
    Trainer(tiny(lr=3e-4), ds_of(img_dir, cfg), tmp_path, vgg=None, resume=True, progress=False)  # optimiser settings may change

class NaNAt(torch.nn.Module):
    "Wraps the generator loss; the n-th call (1-based) returns a NaN total for n in `calls`."
    def __init__(self, inner, calls):
        super().__init__(); self.inner, self.calls, self.n, self.vgg = inner, set(calls), 0, inner.vgg
    def forward(self, *a, **k):
        self.n += 1
        out = self.inner(*a, **k)
        if self.n in self.calls: out = dict(out, total=out['total'] * float('nan'))
        return out

@pytest.mark.parametrize('sync_free', [True, False])  # fused Adam's device-side skip | the host-side path (fp16/GradScaler)
def test_nan_step_is_skipped(img_dir, tmp_path, sync_free):
    cfg = tiny(log_every=1)
    tr = Trainer(cfg, ds_of(img_dir, cfg), tmp_path, vgg=None, progress=False)
    assert tr.sync_free  # CPU: fused Adam
    tr.sync_free = sync_free
    tr.loss_fn = NaNAt(tr.loss_fn, {2})
    h = tr.fit(max_steps=4)
    assert h['bad_steps'] == 1 and h['history']['bad'] == [False, True, False, False]
    # Adam counts its updates: 3 of 4 steps updated G and D
    for opt in (tr.opt_g, tr.opt_d):
        assert {int(s['step']) for s in opt.state.values()} == {3}
    assert read_log(tmp_path/'log.csv')['bad'].tolist() == [0, 1, 0, 0]
    assert all(np.isfinite(p.detach().numpy()).all() for p in tr.G.parameters())

@pytest.mark.parametrize('sync_free', [True, False])
def test_nan_streak_raises_and_keeps_last_good_checkpoint(img_dir, tmp_path, sync_free):
    cfg = tiny(ckpt_every=3, max_bad_steps=3)
    tr = Trainer(cfg, ds_of(img_dir, cfg), tmp_path, vgg=None, progress=False)
    tr.sync_free = sync_free
    tr.loss_fn = NaNAt(tr.loss_fn, range(4, 100))
    with pytest.raises(TrainingDiverged, match=r'3 consecutive steps.*last.pt \(step 3\)'):
        tr.fit(max_steps=20)
    ck = load_checkpoint(tmp_path/'last.pt', cfg)
    assert ck['step'] == 3 and tr.step == 6
    for k, v in tr.G.state_dict().items(): assert torch.equal(v, ck['generator'][k]), k  # no update since step 3

def test_missing_vgg_weights(img_dir, tmp_path, monkeypatch):
    "require_vgg=True: the WeightsNotFoundError; False: L1 + adversarial only, with the reason recorded."
    cfg = tiny(vgg_weights=str(tmp_path/'nope'/'vgg16-397923af.pth'))
    with pytest.raises(WeightsNotFoundError, match='vgg16'):
        Trainer(cfg, ds_of(img_dir, cfg), tmp_path/'a', vgg='auto', require_vgg=True, progress=False)
    with warnings.catch_warnings():
        quiet()
        tr = Trainer(cfg, ds_of(img_dir, cfg), tmp_path/'b', vgg='auto', require_vgg=False, progress=False)
    assert tr.info['perceptual_enabled'] is False and 'nope' in tr.info['perceptual_reason']
    assert tr.terms == ['total', 'l1', 'adv', 'region', 'd', 'w_l1', 'w_adv', 'w_region', 'regions_enc1', 'regions_enc2']

def test_sampler_shards_ranks_without_overlap():
    s = [ResumableBatchSampler(10, 5, seed=3, rank=r, world_size=2) for r in range(2)]
    assert sorted(s[0].batch(0) + s[1].batch(0)) == list(range(10))
    assert s[0].batch(1) != s[0].batch(0)

SIGTERM_SCRIPT = r'''
import json, sys, warnings
warnings.simplefilter('ignore')
from ra_inpaint.core import preset
from ra_inpaint.data import InpaintDataset
from ra_inpaint.train import Trainer
cfg = preset('demo', size=32, base_ch=8, disc_ch=8, disc_layers=2, batch_size=2, n_regions=4, log_every=1, ckpt_every=2, sample_every=1000)
tr = Trainer(cfg, InpaintDataset(sys.argv[1], 32, seed=0), sys.argv[2], vgg=None, progress=False)
h = tr.fit(max_steps=100000)
print(json.dumps(dict(step=h['step'], stopped_by=h['stopped_by'])))
'''

@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_and_resumes(img_dir, tmp_path, sig):
    "SIGTERM (scheduler, torchrun) or Ctrl-C mid-run: the step finishes, last.pt is written, the process exits 0; resume goes on."
    (tmp_path/'train.py').write_text(SIGTERM_SCRIPT)
    out = tmp_path/'run'
    p = subprocess.Popen([sys.executable, str(tmp_path/'train.py'), str(img_dir), str(out)], env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not (out/'last.pt').exists():
        assert p.poll() is None, p.communicate()
        assert time.time() - t0 < 90, 'no checkpoint after 90 s'
        time.sleep(0.2)
    p.send_signal(sig)
    so, se = p.communicate(timeout=60)
    assert p.returncode == 0, se
    r = json.loads(so.strip().splitlines()[-1])
    assert r['stopped_by'] == sig.name and r['step'] >= 2
    ck = torch.load(out/'last.pt', weights_only=True)
    assert ck['step'] == r['step'] > 0
    cfg = load_checkpoint(out/'last.pt')['cfg']
    tr = Trainer(cfg, ds_of(img_dir, cfg), out, vgg=None, resume=True, progress=False)
    h = tr.fit(max_steps=r['step'] + 2)
    assert h['history']['step'] == [r['step'] + 1, r['step'] + 2]
    h = tr.fit(max_steps=10**6, max_seconds=0)  # a time budget that is already spent: one step, then a clean stop
    assert h['steps_run'] == 1 and load_checkpoint(out/'last.pt')['step'] == r['step'] + 3

def test_fit_restores_signal_handlers(img_dir, tmp_path):
    mine = lambda s, f: None
    old = signal.signal(signal.SIGTERM, mine)
    try:
        _run(img_dir, tmp_path, tiny(), None, 1)
        assert signal.getsignal(signal.SIGTERM) is mine
    finally: signal.signal(signal.SIGTERM, old)

def test_ddp_gloo_two_ranks_identical_weights(img_dir, tmp_path):
    "torchrun, 2 CPU processes, gloo: both ranks end with the same generator, rank 0 alone writes files."
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                        str(ROOT/'tests'/'ddp_worker.py'), str(img_dir), str(tmp_path)],
                       env=ENV, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    w0, w1 = (torch.load(tmp_path/f'rank{k}.pt', weights_only=True) for k in range(2))
    assert w0['first_batch'] != w1['first_batch']  # each rank read its own shard
    for k, v in w0['generator'].items(): assert torch.equal(v, w1['generator'][k]), k
    for k, v in w0['discriminator'].items(): assert torch.equal(v, w1['discriminator'][k]), k
    init = w0['initial']
    assert any(not torch.equal(v, w0['generator'][k]) for k, v in init.items())  # it did train
    ck = load_checkpoint(tmp_path/'out'/'last.pt')
    assert ck['step'] == 3 and ck['world_size'] == 2 and len(ck['rng']) == 2
    for k, v in w0['generator'].items(): assert torch.equal(v, ck['generator'][k])
    assert list(read_log(tmp_path/'out'/'log.csv')['step']) == [1, 2, 3]
    assert (tmp_path/'out'/'samples'/'step_000002.png').is_file()


def test_new_run_refuses_an_orphan_log(img_dir, tmp_path):
    "A run killed before its first checkpoint leaves log.csv alone: a new run must not replace it with a header."
    cfg = tiny()
    (tmp_path/'log.csv').write_text('step,total\n1,0.5\n')
    with pytest.raises(FileExistsError, match=r'log\.csv exists: pass resume=True'):
        Trainer(cfg, ds_of(img_dir, cfg), tmp_path, vgg=None, progress=False)
    assert (tmp_path/'log.csv').read_text() == 'step,total\n1,0.5\n'

def test_resume_without_checkpoint_keeps_old_log_aside(img_dir, tmp_path):
    cfg = tiny(ckpt_every=100)
    (tmp_path/'log.csv').write_text('step,total\n1,0.5\n2,0.4\n')
    with pytest.warns(UserWarning) as w:
        tr = Trainer(cfg, ds_of(img_dir, cfg), tmp_path, vgg=None, resume=True, progress=False)
    msgs = ' | '.join(str(x.message) for x in w)
    assert 'does not exist: starting a new run' in msgs and 'kept as log.' in msgs
    tr.fit(max_steps=2)
    kept = [p for p in tmp_path.iterdir() if p.name.startswith('log.') and p.name != 'log.csv']
    assert len(kept) == 1 and kept[0].suffix == '.csv' and kept[0].read_text() == 'step,total\n1,0.5\n2,0.4\n'
    assert list(read_log(tmp_path/'log.csv')['step']) == [1, 2]
    # a second orphan in the same second gets its own name, nothing is overwritten
    (tmp_path/'last.pt').unlink(missing_ok=True); os.utime(tmp_path/'log.csv', (kept[0].stat().st_mtime,) * 2)
    with pytest.warns(UserWarning, match='kept as'): Trainer(cfg, ds_of(img_dir, cfg), tmp_path, vgg=None, resume=True, progress=False)
    assert len([p for p in tmp_path.iterdir() if p.name.startswith('log.') and p.name != 'log.csv']) == 2


def test_rank_device_under_torchrun(monkeypatch):
    "Under torchrun a bare 'cuda' (or no device) is this rank's GPU, not cuda:0 for every rank."
    from ra_inpaint.train import rank_device, DistEnv
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'current_device', lambda: 0)
    env = DistEnv(rank=1, world_size=2, local_rank=1)
    assert rank_device(None, env) == torch.device('cuda', 1)
    assert rank_device('cuda', env) == torch.device('cuda', 1)
    assert rank_device('cuda:0', env) == torch.device('cuda', 0)   # an explicit index wins
    assert rank_device('cpu', env) == torch.device('cpu')
    assert rank_device(None, DistEnv()) == torch.device('cuda', 0)  # one process: the current GPU


def test_compiled_loss_follows_a_swapped_loss_fn(img_dir, tmp_path, monkeypatch):
    "With cfg.compile, replacing tr.loss_fn (as the fault tests do) must not leave a stale compiled copy in use."
    compiled = []
    monkeypatch.setattr(torch, 'compile', lambda m, **k: (compiled.append(m), m)[1])  # pass-through: records what is compiled
    cfg = tiny(log_every=1, compile=True)
    tr = Trainer(cfg, ds_of(img_dir, cfg), tmp_path, vgg=None, progress=False)
    tr.loss_fn = NaNAt(tr.loss_fn, {2})
    h = tr.fit(max_steps=3)
    assert h['bad_steps'] == 1 and tr.loss_fn.n == 3
    assert compiled[-1] is tr.loss_fn


class _FailsLater(torch.utils.data.Dataset):
    "8 items; items 0-3 (the trainer's fixed sample batch, read in the main process) are fine, the others raise."
    def __len__(self): return 8
    def __getitem__(self, i):
        if i >= 4: raise ValueError(f"mask source gives (1, 8, 8) masks, expected (1, 32, 32) (item {i})")
        g = torch.Generator().manual_seed(i)
        return dict(image=torch.rand(3, 32, 32, generator=g), mask=(torch.rand(1, 32, 32, generator=g) > .7).float(), index=i)

def test_worker_error_reaches_the_caller_as_one_line(tmp_path):
    "An error raised in a loader worker comes out as its own message, not wrapped in the worker's traceback."
    cfg = tiny(num_workers=2, ckpt_every=100)
    tr = Trainer(cfg, _FailsLater(), tmp_path, vgg=None, progress=False)
    with pytest.raises(ValueError) as e: tr.fit(max_steps=8)
    assert str(e.value).startswith('mask source gives (1, 8, 8) masks') and '\n' not in str(e.value)


def test_log_has_every_weighted_term(img_dir, tmp_path, vgg):
    "log.csv, TensorBoard's numbers and the history carry weight x term beside each term; the weighted terms sum to total."
    from ra_inpaint.logs import WEIGHTED_TERMS, loss_shares, plot_loss_shares
    cfg = tiny(w_style=40., w_adv=.3, l1_hole_weight=2.)
    tr, h = _run(img_dir, tmp_path, cfg, vgg, 4)
    assert tr.terms == ['total', 'l1', 'perceptual', 'style', 'adv', 'region', 'd', 'w_l1', 'w_perceptual', 'w_style', 'w_adv', 'w_region',
                        'regions_enc1', 'regions_enc2']
    log = read_log(tmp_path/'log.csv')
    for src in (log, {k: np.array(v) for k, v in h['history'].items()}):
        for k in ('l1', 'perceptual', 'style', 'adv', 'region'):
            np.testing.assert_allclose(src[f'w_{k}'], getattr(cfg, f'w_{k}') * src[k], rtol=1e-6)
        np.testing.assert_allclose(sum(src[k] for k in WEIGHTED_TERMS), src['total'], rtol=1e-5)
    steps, shares = loss_shares(log, window=2)
    assert list(steps) == [2, 3, 4] and set(shares) == set(WEIGHTED_TERMS)
    np.testing.assert_allclose(sum(shares.values()), 1, rtol=1e-6)
    np.testing.assert_allclose(shares['w_style'][-1], log['w_style'][2:].sum() / log['total'][2:].sum(), rtol=1e-5)
    assert plot_loss_shares(tmp_path/'log.csv', tmp_path/'shares.png').stat().st_size > 0

def test_resume_on_a_log_without_weighted_columns(img_dir, tmp_path):
    "A run logged before the w_* columns existed resumes: old rows read as NaN there, rows past the checkpoint go."
    import csv
    cfg = tiny(ckpt_every=3)
    _run(img_dir, tmp_path, cfg, None, 4)                       # last.pt at step 4; rewrite the log the old way, plus a row
    old_cols = ['step', 'epoch', 'total', 'l1', 'perceptual', 'style', 'adv', 'd', 'bad', 'images_per_s', 'time']
    with open(tmp_path/'log.csv', newline='') as f: rows = list(csv.DictReader(f))
    rows.append(dict(rows[-1], step='5'))                        # written after the last save by a run that was killed
    with open(tmp_path/'log.csv', 'w', newline='') as f:
        w = csv.DictWriter(f, old_cols, extrasaction='ignore'); w.writeheader(); w.writerows(rows)
    old = read_log(tmp_path/'log.csv')
    assert list(old['step']) == [1, 2, 3, 4, 5] and np.isnan(old['w_l1']).all() and np.isfinite(old['l1']).all()
    _run(img_dir, tmp_path, cfg, None, 6, resume=True)
    log = read_log(tmp_path/'log.csv')
    assert list(log['step']) == [1, 2, 3, 4, 5, 6]
    assert np.isnan(log['w_l1'][:4]).all() and np.isfinite(log['w_l1'][4:]).all()
    np.testing.assert_allclose(log['l1'][:4], old['l1'][:4])

@pytest.mark.parametrize('sync_free', [True, False])
def test_rmg_weight_decay_pulls_the_shared_linear_toward_identity(img_dir, tmp_path, sync_free):
    "One step with rmg_weight_decay = the step without it, then W <- (1 - lr*wd) W + lr*wd I; a skipped step leaves W alone."
    from ra_inpaint.rmg import SharedLinear
    outs = []
    for wd in (0., 200.):
        cfg = tiny(lr=1e-3, log_every=1, rmg_weight_decay=wd)
        tr = Trainer(cfg, ds_of(img_dir, cfg), tmp_path/str(wd), vgg=None, progress=False)
        tr.sync_free = sync_free
        lins = [m.weight for m in tr.G.modules() if isinstance(m, SharedLinear)]
        assert len(lins) == 2 and [w.data_ptr() for w in tr.shared_linears] == [w.data_ptr() for w in lins]
        with torch.no_grad():
            for w in lins: w.add_(torch.randn_like(w) * .1)     # away from the identity, so that the pull shows
        tr.fit(max_steps=1)
        outs.append([w.detach().clone() for w in lins])
        if wd:
            tr.loss_fn = NaNAt(tr.loss_fn, {1})
            h = tr.fit(max_steps=2)
            assert h['history']['bad'] == [False, True]  # step 1, then the skipped step 2
            for a, b in zip(lins, outs[-1]): assert torch.equal(a, b)
    a = 1e-3 * 200.
    for w0, w in zip(*outs):
        torch.testing.assert_close(w, (1 - a) * w0 + a * torch.eye(len(w0)), rtol=0, atol=1e-6)
        assert (w - torch.eye(len(w))).norm() < (w0 - torch.eye(len(w0))).norm()

def test_fp16_with_gradient_scaler_trains_and_resumes(img_dir, tmp_path, monkeypatch):
    "The T4 path (fp16 autocast + GradScaler), run on the CPU: steps apply, the scaler's state is saved and restored on resume."
    monkeypatch.setattr(train_mod, 'amp_dtype', lambda *a, **k: torch.float16)
    cfg = tiny(ckpt_every=100)
    tr, h = _run(img_dir, tmp_path, cfg, None, 3)
    assert tr.amp == torch.float16 and tr.scaler.is_enabled() and not tr.sync_free
    assert all(np.isfinite(h['history']['l1'])) and h['step'] == 3
    ck = torch.load(tmp_path/'last.pt', weights_only=True)
    assert ck['scaler']['scale'] == tr.scaler.get_scale() > 0
    tr.scaler.update(new_scale=123.)  # a different scale in memory: resuming must bring back the saved one
    tb = Trainer(cfg, ds_of(img_dir, cfg), tmp_path, vgg=None, progress=False, resume=True)
    assert tb.scaler.get_scale() == ck['scaler']['scale']
    assert tb.fit(max_steps=5)['step'] == 5
