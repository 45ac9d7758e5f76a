"""Where do the big copies / add_ / mul of one ra_inpaint training step come from?

Runs the project's own Trainer._snapshot_buffers / _forward_backward / _apply on a namespace that stands in for the
Trainer (CPU, bf16 autocast made to follow CUDA's autocast policy by cuda_policy.py), logs every aten op of one
steady-state step (step 2) with a TorchDispatchMode, attributes backward ops to the forward line that created their
autograd node (anomaly-mode tracebacks), and ranks call sites by bytes written.

  python experiments/copyprobe/probe.py [--size 256] [--batch 2] [--channels-last] [--vgg-one-pass] [--fake] [--cpu-policy] [--out FILE.json]

It found the in-place ReLU after instance norm (autograd's CopySlices/AsStrided rebuilds in backward), the fp32
SK-fusion products and the sum-from-zero adds that chapter 16 reports (bytes written per step, before and after).
--fake: fake tensors (no compute; any batch, e.g. --batch 32 to match the H200 profile)
--cpu-policy: plain CPU autocast policy instead of the CUDA-like one"""
import argparse, collections, json, re, sys, time, traceback, types, os
import torch
from torch.utils._python_dispatch import TorchDispatchMode
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cuda_policy

ap = argparse.ArgumentParser()
ap.add_argument('--size', type=int, default=256); ap.add_argument('--batch', type=int, default=2)
ap.add_argument('--channels-last', action='store_true'); ap.add_argument('--fake', action='store_true')
ap.add_argument('--cpu-policy', action='store_true'); ap.add_argument('--out', default=None)
ap.add_argument('--top', type=int, default=45); ap.add_argument('--vgg-one-pass', action='store_true')
A = ap.parse_args()
if not A.cpu_policy: cuda_policy.install()
torch.set_num_threads(os.cpu_count())

from ra_inpaint.core import preset, seed_everything
from ra_inpaint.generator import InpaintGenerator
from ra_inpaint.discriminator import PatchDiscriminator
from ra_inpaint.losses import GeneratorLoss, VGGFeatures, load_vgg16
from ra_inpaint.train import Trainer

cfg = preset('paper', batch_size=A.batch, size=A.size, vgg_one_pass=A.vgg_one_pass)
mem_fmt = torch.channels_last if A.channels_last else torch.contiguous_format

seed_everything(cfg.seed)
T = types.SimpleNamespace()
T.cfg = cfg
T.G = InpaintGenerator(cfg).to(memory_format=mem_fmt)
T.D = PatchDiscriminator(cfg).to(memory_format=mem_fmt)
T.loss_fn = GeneratorLoss(cfg, VGGFeatures(load_vgg16(pretrained=False)).to(memory_format=mem_fmt))
fake_mode = None
if A.fake:   # same modules, every parameter and buffer swapped for a fake tensor (same shape, dtype, strides)
    from torch._subclasses.fake_tensor import FakeTensorMode
    fake_mode = FakeTensorMode(allow_non_fake_inputs=False)
    for root in (T.G, T.D, T.loss_fn):
        for mod in root.modules():
            for k, p in list(mod._parameters.items()):
                if p is not None: mod._parameters[k] = torch.nn.Parameter(fake_mode.from_tensor(p.detach()), requires_grad=p.requires_grad)
            for k, b in list(mod._buffers.items()):
                if b is not None: mod._buffers[k] = fake_mode.from_tensor(b)
    fake_mode.__enter__()
T.G_run, T.D_run, T.D_adv = T.G, T.D, T.D
T._loss = lambda: T.loss_fn                                    # eager loss (Trainer._loss without compile)
T._decay_shared_linears = types.MethodType(Trainer._decay_shared_linears, T)  # a no-op at rmg_weight_decay = 0
T._update_ema = lambda keep: None                              # no moving average (ema_decay = 0)
T.ra_layers = {k: l.ra for k, l in T.G.lga.items() if l.ra is not None}
T._region_terms = types.MethodType(Trainer._region_terms, T)  # the region term, weighted by cfg.w_region
T.scaler = torch.amp.GradScaler('cpu', enabled=False)        # bf16: scaler off, as on the H200
T.sync_free = True                                              # fused Adam + no scaler -> Trainer's sync-free path
T.opt_g = torch.optim.Adam(T.G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=True)
T.opt_d = torch.optim.Adam(T.D.parameters(), lr=cfg.d_lr, betas=(cfg.beta1, cfg.beta2), fused=True)
T._autocast = lambda: torch.autocast('cpu', dtype=torch.bfloat16)

def batch():
    img = torch.rand(A.batch, 3, A.size, A.size)
    m = torch.zeros(A.batch, 1, A.size, A.size); m[..., A.size//4:A.size//2, A.size//4:3*A.size//4] = 1
    return img.contiguous(memory_format=mem_fmt), m.contiguous(memory_format=mem_fmt)   # Trainer._to_device

def step(image, mask):
    bufs = Trainer._snapshot_buffers(T)
    terms, ok = Trainer._forward_backward(T, image, mask)
    Trainer._apply(T, ~ok, bufs)
    return terms

# ---------------------------------------------------------------- logging
FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')
def short(f): return f.split('/site-packages/')[-1].split('/ra_inpaint/')[-1] if '/ra_inpaint/' in f or 'site-packages' in f else os.path.basename(f)
def site_of(frames):  # frames: list of (file, line, func), outermost first
    ra = [fr for fr in frames if '/ra_inpaint/' in fr[0]]
    tor = [fr for fr in frames if 'site-packages/torch' in fr[0] and '_python_dispatch' not in fr[0]
           and 'utils/_device' not in fr[0] and '_compile.py' not in fr[0] and '_ops.py' not in fr[0] and not fr[0].endswith('module.py')]
    s = f"{short(ra[-1][0])}:{ra[-1][1]} {ra[-1][2]}" if ra else '-'
    if tor and (not ra or frames.index(tor[-1]) > frames.index(ra[-1])): s += f"  [{short(tor[-1][0])}:{tor[-1][1]} {tor[-1][2]}]"
    return s
def py_frames():
    return [(f.filename, f.lineno, f.name) for f in traceback.extract_stack()[:-3]]
def node_frames(node):
    tb = node.metadata.get('traceback_') if node is not None else None
    if not tb: return None
    if isinstance(tb, (list, tuple)): tb = ''.join(tb)
    return [(m.group(1), int(m.group(2)), m.group(3)) for m in FRAME.finditer(tb)]

def tens(x):
    if isinstance(x, torch.Tensor): yield x
    elif isinstance(x, (list, tuple)):
        for y in x: yield from tens(y)
def nbytes(t): return t.numel() * t.element_size()
def desc(t): return f"{str(t.dtype)[6:]}{list(t.shape)}" + ('' if t.is_contiguous() else (' CL' if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) else f' strides{list(t.stride())}'))

SKIP = {'detach', 'view', '_unsafe_view', 'alias', 'permute', 'transpose', 't', 'expand', 'unsqueeze', 'squeeze', 'select',
        'slice', 'as_strided', 'split', 'chunk', 'unbind', 'split_with_sizes', '_reshape_alias', 'device', 'is_same_size',
        '_local_scalar_dense', 'lift_fresh', 'reshape', 'sym_size', 'sym_stride', 'sym_numel', 'sym_storage_offset', 'dim', 'numel'}

class Log(TorchDispatchMode):
    def __init__(self): super().__init__(); self.rows = []; self.phase = 'fwd'
    def __torch_dispatch__(self, func, types_, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        if name in SKIP: return out
        node = torch._C._current_autograd_node()
        schema = func._schema
        mutated = [a for a, arg in zip(args, schema.arguments) if arg.alias_info is not None and arg.alias_info.is_write and isinstance(a, torch.Tensor)]
        mutated += [kwargs[arg.name] for arg in schema.arguments if arg.name in kwargs and arg.alias_info is not None and arg.alias_info.is_write and isinstance(kwargs[arg.name], torch.Tensor)]
        written = mutated if mutated else list(tens(out))
        b = sum(nbytes(t) for t in written)
        ins = [t for t in tens(args)]
        if node is not None:
            nf = node_frames(node)
            site = site_of(nf) if nf else f"<{node.name()} (no fwd traceback)>"
            where = node.name()
        else:
            fr = py_frames()
            site = site_of(fr); where = ''
            if self.phase == 'bwd' and any('autograd' in f[0] and 'backward' in f[2] for f in fr):
                where = 'engine:InputBuffer.accumulate'
        src = '+'.join(sorted({str(t.dtype)[6:] for t in ins if t.is_floating_point()})) or '-'
        dst = desc(written[0]) if written else '-'
        self.rows.append(dict(phase=self.phase, op=name, where=where, site=site, bytes=b, src=src, dst=dst))
        return out

seed_everything(1)
img, m = batch()
t0 = time.time()
with torch.autograd.set_detect_anomaly(True, check_nan=False):
    step(img, m)                                    # warm-up: creates the buffer snapshot and Adam state
    t1 = time.time()
    img, m = batch()
    log = Log()
    # phases: wrap the trainer's pieces so each row knows fwd/bwd/optim
    orig_backward = torch.Tensor.backward
    def bw(self, *a, **k):
        p = log.phase; log.phase = 'bwd'
        try: return orig_backward(self, *a, **k)
        finally: log.phase = p
    torch.Tensor.backward = bw
    with log:
        bufs = Trainer._snapshot_buffers(T); 
        for r in log.rows: r['phase'] = 'snapshot'
        n0 = len(log.rows)
        terms, ok = Trainer._forward_backward(T, img, m)
        log.phase = 'apply'
        Trainer._apply(T, ~ok, bufs)
    torch.Tensor.backward = orig_backward
t2 = time.time()
print(f"size={A.size} batch={A.batch} vgg_one_pass={A.vgg_one_pass} channels_last={A.channels_last} fake={A.fake} policy={'cpu' if A.cpu_policy else 'cuda-like'} "
      f"warm-up step {t1-t0:.1f}s, logged step {t2-t1:.1f}s, {len(log.rows)} ops logged")

rows = log.rows
MB = 1e6
def table(filter_fn, title, key=lambda r: (r['op'], r['phase'], r['where'], r['site'], r['src'], r['dst']), top=A.top):
    agg = collections.OrderedDict()
    for r in rows:
        if not filter_fn(r): continue
        k = key(r); e = agg.setdefault(k, [0, 0]); e[0] += 1; e[1] += r['bytes']
    tot = sum(v[1] for v in agg.values()); n = sum(v[0] for v in agg.values())
    print(f"\n=== {title}: {n} calls, {tot/MB:.1f} MB written per step")
    print(f"{'MB':>9} {'%':>5} {'cum%':>5} {'n':>4}  op | phase | autograd node | call site | src dtypes -> written")
    cum = 0
    for k, (c, b) in sorted(agg.items(), key=lambda kv: -kv[1][1])[:top]:
        cum += b
        print(f"{b/MB:9.2f} {100*b/max(tot,1):5.1f} {100*cum/max(tot,1):5.1f} {c:4d}  " + ' | '.join(str(x) for x in k))
    return agg

COPY = {'copy_', '_to_copy', 'clone', 'contiguous', 'cat', 'stack', '_copy_from', 'copy'}
table(lambda r: r['op'] in COPY, 'COPY-like ops (copy_, _to_copy, clone, cat)')
table(lambda r: r['op'] in ('add_', 'add'), 'add / add_')
table(lambda r: r['op'] in ('mul', 'mul_'), 'mul / mul_', top=25)
table(lambda r: r['op'] in ('bmm', 'mm', 'addmm', 'baddbmm', 'matmul', 'linear', 'mv'), 'matmuls (written = output)', top=40)
table(lambda r: True, 'ALL ops by bytes written', key=lambda r: (r['op'], r['phase'], r['src']), top=30)
if A.out:
    json.dump(rows, open(A.out, 'w'))
