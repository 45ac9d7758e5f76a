"""Make CPU autocast follow CUDA's autocast policy for the ops this model uses where the two differ
(found by running the forward on fake CUDA tensors under CUDA autocast and comparing op dtypes with CPU autocast)."""
import torch, warnings
K = torch._C.DispatchKey.AutocastCPU
_lib = None
def _noac():
    return torch._C._ExcludeDispatchKeyGuard(torch._C.DispatchKeySet(K))
def _low(t): return isinstance(t, torch.Tensor) and t.is_floating_point() and t.dtype != torch.float32 and t.dtype != torch.float64
def install():
    global _lib
    if _lib is not None: return
    warnings.filterwarnings('ignore', message='.*Overriding a previously registered kernel.*')
    _lib = torch.library.Library('aten', 'IMPL')
    a = torch.ops.aten
    def pad(x, p):                       # CUDA: not in any autocast list (CPU: fp32 list)
        with _noac(): return a.reflection_pad2d.default(x, p)
    def softmax(x, dim, dtype=None):     # CUDA: fp32_set_opt_dtype (CPU: none)
        with _noac(): return a.softmax.int(x, dim, dtype=torch.float32 if dtype is None and _low(x) else dtype)
    def up_vec(x, size, align, scales):  # CUDA: fp32 (CPU: none)
        with _noac(): return a.upsample_bilinear2d.vec(x.float() if _low(x) else x, size, align, scales)
    def mv(x, v):                        # CUDA: lower precision (CPU: none)
        dt = torch.get_autocast_dtype('cpu')
        with _noac(): return a.mv.default(x.to(dt), v.to(dt))
    def cat(ts, dim=0):                  # CUDA: cat handles mixed dtypes itself (CPU: promote first)
        with _noac(): return a.cat.default(ts, dim)
    def vdot(x, y):                      # CUDA: promote (CPU: none)
        dt = x.dtype if x.dtype == y.dtype else torch.float32
        with _noac(): return a.vdot.default(x.to(dt), y.to(dt))
    _lib.impl('vdot', vdot, 'AutocastCPU')
    def einsum(eq, ts, path=None):       # CUDA: lower precision (CPU: none, only the bmm inside)
        dt = torch.get_autocast_dtype('cpu')
        ts = [t.to(dt) if isinstance(t, torch.Tensor) and t.is_floating_point() else t for t in ts]
        with _noac(): return a.einsum.default(eq, ts, path=path)
    def vnorm(x, ord=2, dim=None, keepdim=False, dtype=None):  # CUDA: fp32_set_opt_dtype
        with _noac(): return a.linalg_vector_norm.default(x, ord, dim, keepdim, dtype=torch.float32 if dtype is None and _low(x) else dtype)
    _lib.impl('einsum', einsum, 'AutocastCPU')
    _lib.impl('linalg_vector_norm', vnorm, 'AutocastCPU')
    _lib.impl('reflection_pad2d', pad, 'AutocastCPU')
    _lib.impl('softmax.int', softmax, 'AutocastCPU')
    _lib.impl('upsample_bilinear2d.vec', up_vec, 'AutocastCPU')
    _lib.impl('mv', mv, 'AutocastCPU')
    _lib.impl('cat', cat, 'AutocastCPU')
