"CPU smoke tests of ra_inpaint.bench: structure and sanity of the result, never timings."
import json, time
import pytest
import torch

from ra_inpaint.bench import (bench, bench_train, bench_fill, bench_eval, bench_vgg, bench_inception, timed_windows,
                              device_name, peak_memory_mb, SyntheticPairs, profile_train_step, RANDOM_INIT)
from ra_inpaint.core import preset
from ra_inpaint.generator import InpaintGenerator
from ra_inpaint.losses import hub_checkpoint_dir, VGG16_FILE
from ra_inpaint.metrics import INCEPTION_FILE

TINY = dict(size=32, base_ch=8, disc_ch=8, n_regions=4)


def test_timed_windows_counts_and_excludes_warmup():
    calls = []
    def fn():
        calls.append(time.perf_counter())
        if len(calls) == 1: time.sleep(0.2)  # a slow first call (warm-up) must not show in any window
    r = timed_windows(fn, items=5, windows=4, reps=3, warmup=1)
    assert len(calls) == 1 + 4 * 3 and len(r) == 4
    assert min(r) > 5 * 3 / 0.2  # every window is far faster than the warm-up call


def test_bench_structure_and_json_lines(tmp_path):
    p = tmp_path/'sub'/'bench.jsonl'
    kw = dict(device='cpu', batches=[2], steps=1, windows=2, json_path=p, **TINY)
    r = bench(**kw, perceptual=False)
    for k in ('device', 'device_name', 'torch', 'dtype', 'compile', 'size', 'batches', 'data', 'train', 'train_best',
              'fill', 'fill_single_ms', 'eval', 'eval_12000_seconds_estimate', 'peak_memory_mb', 'peak_memory_kind',
              'vgg_weights', 'inception_weights', 'timing'):
        assert k in r, k
    assert r['device'] == 'cpu' and r['torch'] == torch.__version__ and r['dtype'] == 'float32'
    assert r['size'] == 32 and r['batches'] == [2] and r['compile'] is False and r['preset'] == 'demo'
    assert r['data'].startswith('synthetic') and r['vgg_weights'].startswith('off')
    t = r['train']['2']
    assert len(t['windows']) == 2 and t['batch_size'] == 2 and t['perceptual'] is False
    assert sorted(t['windows'])[0] <= t['images_per_s'] <= sorted(t['windows'])[-1]  # the median lies between
    assert r['train_best'] == dict(batch_size=2, images_per_s=t['images_per_s'])
    assert r['fill']['2']['images_per_s'] > 0 and r['fill_single_ms'] > 0
    assert r['eval']['images_per_s'] > 0 and r['eval']['fid_features']
    assert 'ru_maxrss' in r['peak_memory_kind'] and r['peak_memory_mb'] > 50
    # a second call appends a second complete line
    r2 = bench(**kw, parts=('fill',), photo=40)
    lines = p.read_text().splitlines()
    assert len(lines) == 2
    a, b = map(json.loads, lines)
    assert a['train']['2']['batch_size'] == 2 and 'train' not in b and b['fill_photo_40_ms'] > 0
    assert r2['fill']['2']['photo_40_ms'] == b['fill_photo_40_ms']


def test_bench_real_folder_and_vgg_flag(tmp_path):
    from ra_inpaint.core import save_image
    for i in range(3): save_image(torch.rand(3, 40, 48), tmp_path/f'im{i}.png')
    r = bench('cpu', batches=2, steps=1, windows=1, data=tmp_path, parts=('train',), **TINY)
    assert r['data'].startswith(f'folder {tmp_path}') and '3 images' in r['data']
    assert r['train']['2']['perceptual'] is True  # VGG16 ran: real weights if on disk, else random of the same cost
    have_vgg = (hub_checkpoint_dir()/VGG16_FILE).is_file()
    assert r['vgg_weights'] == ('imagenet' if have_vgg else RANDOM_INIT)


def test_feature_nets_never_download():
    _, vflag = bench_vgg()
    _, iflag = bench_inception()
    if not (hub_checkpoint_dir()/VGG16_FILE).is_file(): assert vflag == RANDOM_INIT
    if not (hub_checkpoint_dir()/INCEPTION_FILE).is_file(): assert iflag == RANDOM_INIT


def test_bench_train_runs_the_real_trainer(tmp_path):
    cfg = preset('demo', batch_size=2, **TINY)
    r = bench_train(cfg, SyntheticPairs(32, n=4), 'cpu', vgg=None, steps=2, windows=2, warmup=1, out_dir=tmp_path)
    assert len(r['windows']) == 2 and r['steps_per_window'] == 2
    # the trainer really ran 2*(2+1) steps and wrote its log and final checkpoint
    from ra_inpaint.logs import read_log
    from ra_inpaint.checkpoint import load_checkpoint
    assert list(read_log(tmp_path/'train'/'log.csv')['step']) == list(range(1, 7))
    assert load_checkpoint(tmp_path/'train'/'last.pt')['step'] == 6


def test_fill_photo_and_profile():
    g = InpaintGenerator(preset('demo', **TINY)).eval()
    f = bench_fill(g, 'cpu', batch=2, windows=1, reps=1, photo=64)
    assert set(f) == {'batch_size', 'images_per_s', 'single_ms', 'photo_64_ms'}
    table, prof = profile_train_step(preset('demo', batch_size=2, **TINY), 'cpu', vgg=None)
    assert 'Self CPU' in table and ('conv' in table or 'mkldnn' in table)


def test_helpers():
    assert 'torch threads' in device_name('cpu')
    mb, kind = peak_memory_mb('cpu')
    assert mb > 10 and 'ru_maxrss' in kind
    ds = SyntheticPairs(16, n=3)
    assert len(ds) == 3 and ds[2]['index'] == 2 and ds[0]['mask'].shape == (1, 16, 16)


def test_copy_probe_runs_and_backward_rebuilds_no_activation(tmp_path):
    "experiments/copyprobe logs one training step op by op; no activation is rebuilt by autograd (the old in-place ReLU did)."
    import subprocess, sys
    from pathlib import Path
    probe = Path(__file__).resolve().parents[1]/'experiments'/'copyprobe'/'probe.py'
    out = tmp_path/'p.json'
    r = subprocess.run([sys.executable, str(probe), '--size', '64', '--batch', '1', '--out', str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert '=== ALL ops by bytes written' in r.stdout
    rows = json.loads(out.read_text())
    assert {row['phase'] for row in rows} >= {'fwd', 'bwd'}
    rebuilt = [row for row in rows if row['where'] in ('torch::autograd::CopySlices', 'AsStridedBackward0')]
    assert not rebuilt, rebuilt[:3]
