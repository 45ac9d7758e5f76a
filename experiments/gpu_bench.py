#!/usr/bin/env python3
"""One GPU session for the performance issue, as one script: CUDA sanity checks, the `bench` sweep (paper preset, 256²,
batch 8/16/32), the profile of one training step, the before/after table of each switchable optimisation, real data
loading, `evaluate` end to end on 3,000 JPEGs × 4 buckets, `torch.compile`, and the peers' training steps if their
harness is present (`.peers/peer_bench.py`, not part of the repository).

    python experiments/gpu_bench.py OUT_DIR [--budget SECONDS] [--quick]

Every part runs on its own (a failure is recorded and the next part runs), appends JSON lines to OUT_DIR/gpu_bench.jsonl,
and is skipped when the remaining budget is below its expected cost. `--quick` runs the same parts with tiny sizes on
the CPU, to check the script itself before a GPU is spent on it. The table printed last summarises the run; the run of
2026-11-26 (with the defaults of that day) is kept in docs/bench/ and reported in docs/benchmarks.md.
"""
import argparse, json, os, subprocess, sys, tempfile, time, traceback, warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch

from ra_inpaint.core import preset, config_to_dict, RAConfig
from ra_inpaint.bench import (bench, bench_vgg, bench_inception, profile_train_step, write_jpeg_folder, sync)
from ra_inpaint.generator import InpaintGenerator
from ra_inpaint.masks import MaskGenerator
from ra_inpaint.metrics import load_inception

ap = argparse.ArgumentParser()
ap.add_argument('out')
ap.add_argument('--budget', type=float, default=480, help='seconds for the whole script')
ap.add_argument('--skip', nargs='*', default=[], help='parts to skip (name prefixes)')
ap.add_argument('--quick', action='store_true', help='tiny CPU run of every part (checks the script)')
args = ap.parse_args()
OUT = Path(args.out); OUT.mkdir(parents=True, exist_ok=True)
T0, LOG = time.time(), OUT/'gpu_bench.jsonl'
Q = args.quick
DEV = 'cpu' if Q else 'cuda'
TINY = dict(size=32, base_ch=8, disc_ch=8, n_regions=4) if Q else {}
BATCHES = [2] if Q else [8, 16, 32]
STEPS = 1 if Q else 10
RESULTS = {}

def left(): return args.budget - (time.time() - T0)

def record(name, obj):
    obj = dict(part=name, t=round(time.time() - T0, 1), **obj)
    with open(LOG, 'a') as f: f.write(json.dumps(obj) + '\n')
    RESULTS[name] = obj
    print(f'[{obj["t"]:6.1f}s] {name}: {json.dumps(obj)[:1500]}', flush=True)

def part(name, cost):
    "Run the decorated function now if `cost` seconds remain; record its dict or its error."
    def run(fn):
        if any(name.startswith(p) for p in args.skip): return fn
        if left() < cost:
            record(name, dict(skipped=f'{left():.0f} s left < {cost} s expected')); return fn
        t = time.time()
        try: r = fn()
        except Exception as e:
            r = dict(error=f'{type(e).__name__}: {e}', trace=traceback.format_exc()[-2000:])
            if DEV == 'cuda': torch.cuda.empty_cache()
        r['part_seconds'] = round(time.time() - t, 1)
        record(name, r)
        return fn
    return run

@part('env', 0)
def _():
    smi = subprocess.run(['nvidia-smi', '--query-gpu=name,memory.total,driver_version,clocks.max.sm', '--format=csv,noheader'],
                         capture_output=True, text=True).stdout.strip() if not Q else 'cpu'
    return dict(torch=torch.__version__, cuda=torch.version.cuda, device=torch.cuda.get_device_name() if not Q else 'cpu',
                nvidia_smi=smi, cpus=os.cpu_count(), python=sys.version.split()[0])

@part('sanity', 60)
def _():
    "A few real training steps on the device (bf16, channels-last), a checkpoint that loads, fill keeps known pixels."
    from ra_inpaint.bench import SyntheticPairs
    from ra_inpaint.train import Trainer
    from ra_inpaint.checkpoint import load_checkpoint
    from ra_inpaint.infer import fill
    cfg = preset('paper', batch_size=4, log_every=1, ckpt_every=3, sample_every=1000, **TINY)
    d = tempfile.mkdtemp()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        tr = Trainer(cfg, SyntheticPairs(cfg.size, n=8), Path(d)/'run', device=DEV, vgg=bench_vgg()[0], progress=False)
        tr.fit(max_steps=3)
    hist = {k: v for k, v in tr.history.items() if k != 'step'}
    finite = all(torch.isfinite(torch.tensor(v, dtype=torch.float64)).all().item() for v in hist.values() if v)
    ck = load_checkpoint(Path(d)/'run'/'last.pt')
    G = tr.generator.eval()
    gen = MaskGenerator(cfg.size, seed=3)
    x, m = torch.rand(3, cfg.size + 37, cfg.size + 11), None
    m = torch.nn.functional.interpolate(gen[0][None], size=x.shape[1:], mode='nearest')[0]
    with torch.autocast(DEV, dtype=torch.bfloat16, enabled=not Q):
        y = fill(G, [x], [m])[0]
    known_exact = bool(torch.equal(y[:, m[0] < 0.5], x[:, m[0] < 0.5]))
    xs, ms = torch.rand(4, 3, cfg.size, cfg.size, device=DEV), torch.stack([gen[i] for i in range(4)]).to(DEV)
    with torch.no_grad():
        ref = G(xs * (1 - ms), ms).double()
        with torch.autocast(DEV, dtype=torch.bfloat16, enabled=not Q): low = G(xs * (1 - ms), ms).double()
    rel = ((low - ref).norm() / ref.norm()).item()
    ok = finite and ck['step'] == 3 and known_exact and rel < 5e-2
    return dict(ok=ok, losses_finite=finite, ckpt_step=ck['step'], fill_known_pixels_exact=known_exact,
                bf16_vs_fp32_rel_err=rel, amp=tr.info['amp'], last_losses={k: v[-1] for k, v in hist.items() if v})

@part('sweep', 90)
def _():
    return bench(DEV, batches=BATCHES, steps=STEPS, photo=512, **TINY)

def best_batch():
    s = RESULTS.get('sweep', {})
    return s.get('train_best', {}).get('batch_size', BATCHES[-1])

@part('profile', 30)
def _():
    cfg = preset('paper', batch_size=best_batch(), **TINY)
    torch.manual_seed(0)
    table, prof = profile_train_step(cfg, DEV, vgg=bench_vgg()[0], steps=2, row_limit=20)
    (OUT/'profile.txt').write_text(table)
    print(table, flush=True)
    key = 'self_cpu_time_total' if Q else 'self_device_time_total'
    ev = sorted(prof.key_averages(), key=lambda e: getattr(e, key, 0), reverse=True)
    # the total as the profiler's table counts it: CPU ops carry their kernels' time too, so only kernels are summed
    kernels = [e for e in prof.key_averages() if Q or e.device_type == torch.autograd.DeviceType.CUDA]
    tot = sum(getattr(e, key, 0) for e in kernels)
    return dict(batch_size=cfg.batch_size, top=[(e.key, round(100 * getattr(e, key, 0) / max(tot, 1), 1)) for e in ev[:15]])

# each flips one switch of the defaults (bf16, NCHW, VGG16 on the target in its own no-grad pass, cuDNN autotuning, eager);
# the 2026-11-26 H200 run (docs/bench/h200_run2.jsonl) predates the current defaults and flipped channels_last and vgg_one_pass off
VARIANTS = {'fp32 (amp off)': dict(amp=False), 'channels-last on': dict(channels_last=True),
            'VGG16 one pass on cat([pred, gt])': dict(vgg_one_pass=True), 'cudnn_benchmark off': dict(cudnn_benchmark=False),
            'no perceptual/style (L1 + adv only)': dict(perceptual=False)}
for name, kw in VARIANTS.items():
    @part(f'variant: {name}', 25)
    def _():
        b = best_batch()
        r = bench(DEV, batches=[b], steps=STEPS, parts=('train', 'fill'), **(TINY | kw))
        return dict(override=kw, train_images_per_s=r['train_best']['images_per_s'],
                    fill_images_per_s=r['fill'][str(b)]['images_per_s'], batch_size=b, peak_memory_mb=r['peak_memory_mb'])

@part('eval end to end', 90)
def _():
    from ra_inpaint.bench import bench_evaluate
    if Q:  # 64-d features: the 2048-d Fréchet square roots take minutes on 2 CPU cores
        G = InpaintGenerator(preset('paper', **TINY)).eval()
        return dict(eval_run=bench_evaluate(G, DEV, 6, batch_size=4, inception=load_inception(pretrained=False, dims=64)))
    r = bench(DEV, batches=[64], parts=('eval',), eval_images=3000)
    out = dict(eval_per_batch=r['eval'], eval_run=r['eval_run'], inception_weights=r['inception_weights'])
    if left() > 90:  # the same run with the generator under bf16 autocast (`evaluate(amp=True)`)
        G = InpaintGenerator(preset('paper')).to(DEV).eval()
        out['eval_run_bf16_generator'] = bench_evaluate(G, DEV, 3000, amp=True)
    return out

@part('real data loading', 40)
def _():
    d = write_jpeg_folder(Path(tempfile.mkdtemp())/'imgs', 16 if Q else 512, 40 if Q else 288)
    r = bench(DEV, batches=[best_batch()], steps=STEPS, data=d, parts=('train',), **TINY)
    return dict(data=r['data'], train=r['train_best'])

@part('batch 1 (MEDFE trains at batch 1 only)', 20)
def _():
    r = bench(DEV, batches=[1], steps=STEPS, parts=('train',), **TINY)
    return dict(train=r['train']['1'])

@part('peers', 120)
def _():
    h = Path('.peers/peer_bench.py')
    if not h.is_file(): return dict(skipped='no .peers/peer_bench.py here')
    cmd = [sys.executable, str(h), '--device', DEV, '--json', str(OUT/'peers.jsonl'), '--max-seconds-per-peer',
           str(int(min(150, left() / 2 - 10)))]
    cmd += (['--size', '64', '--batches', '2', '--steps', '1', '--windows', '1'] if Q else
            ['--size', '256', '--batches', *map(str, BATCHES), '--steps', str(STEPS), '--windows', '3'])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=max(30, left() - 20))
    (OUT/'peers.log').write_text(p.stdout + p.stderr)
    rows = [json.loads(l) for l in p.stdout.splitlines() if l.startswith('{')]
    return dict(rc=p.returncode, rows=rows, stderr_tail=p.stderr[-800:])

@part('compile', 100)
def _():
    "torch.compile of G, D and the loss network, in a child process so a slow compile cannot eat the whole budget."
    b = best_batch()
    code = (f"import json,sys; sys.path.insert(0,'.'); from ra_inpaint.bench import bench; "
            f"r=bench({DEV!r}, batches=[{b}], steps={STEPS}, parts=('train',), compile=True, **{TINY!r}); print('JSON'+json.dumps(r))")
    t = time.time()
    try: p = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=max(30, left() - 15))
    except subprocess.TimeoutExpired: return dict(error=f'compile run did not finish in {time.time() - t:.0f} s')
    r = [json.loads(l[4:]) for l in p.stdout.splitlines() if l.startswith('JSON')]
    if not r: return dict(error=f'rc {p.returncode}', stderr_tail=p.stderr[-1500:])
    return dict(batch_size=b, train=r[0]['train'][str(b)], wall_with_compilation_s=round(time.time() - t, 1))

# --- the summary table
def g(name, *path):
    v = RESULTS.get(name, {})
    for k in path:
        if not isinstance(v, dict) or k not in v: return None
        v = v[k]
    return v

print('\n| measurement | value |\n|---|---|')
sw = RESULTS.get('sweep', {})
for b in map(str, BATCHES):
    print(f"| train images/s, batch {b} | {g('sweep', 'train', b, 'images_per_s')} |")
    print(f"| fill images/s, batch {b} | {g('sweep', 'fill', b, 'images_per_s')} |")
print(f"| fill one image ms | {g('sweep', 'fill_single_ms')} |\n| fill 512 photo ms | {g('sweep', 'fill_photo_512_ms')} |")
print(f"| eval per-batch images/s | {g('sweep', 'eval', 'images_per_s')} |")
print(f"| evaluate 3000x4 seconds (G fp32 / bf16) | {g('eval end to end', 'eval_run', 'seconds')} / {g('eval end to end', 'eval_run_bf16_generator', 'seconds')} |")
for name in VARIANTS: print(f"| {name} train / fill | {g('variant: ' + name, 'train_images_per_s')} / {g('variant: ' + name, 'fill_images_per_s')} |")
print(f"| compile train | {g('compile', 'train', 'images_per_s')} |\n| real data train | {g('real data loading', 'train', 'images_per_s')} |")
for r in (g('peers', 'rows') or []): print(f"| peer {r.get('peer')} batch {r.get('batch')} | {r.get('images_per_s')} {r.get('error') or ''} |")
print(f'total {time.time() - T0:.0f} s', flush=True)
