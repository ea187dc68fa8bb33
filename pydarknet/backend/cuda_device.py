"""The CUDA backend's device and memory: pycuda, the context, the memory pool, the growable
workspaces, the kernels' module and launches, init/shutdown, the settings and memory_info.

One process uses one GPU; its state (:class:`_State`) lives here once :func:`init` ran
(``get_backend("cuda:N")`` calls it). Arrays are ``pycuda.gpuarray.GPUArray`` allocated from
one ``pycuda.tools.DeviceMemoryPool``, so a shape allocated again comes back from the pool
instead of cudaMalloc. Everything runs in order on the legacy default stream, cuBLAS and cuDNN
included; pycuda uses the device's primary context, which cuBLAS and cuDNN (the runtime API)
share. Importing this module needs no GPU: :func:`init` raises
:class:`pydarknet.errors.PydarknetError` naming the fix when pycuda, the driver, the GPU, the
fatbin or cuBLAS is missing (a missing cuDNN only leaves the im2col path, :mod:`.cuda_conv`).

The kernels' argument types come from their C signatures (:mod:`.kernel_signatures`).
"""

import atexit
import importlib
import os
import pathlib
import threading

from . import cublas as _cublas
from . import kernel_signatures
from ..errors import PydarknetError

_THREADS = 256
FATBIN = pathlib.Path(os.environ.get("PYDARKNET_FATBIN")
                      or pathlib.Path(__file__).with_name("kernels.fatbin"))

# Kernels that process one float4 per thread: ceil(n / 1024) blocks measured best.
_VEC4 = frozenset(("pdn_activate", "pdn_activate_copy", "pdn_mish", "pdn_mish_copy",
                   "pdn_gradient", "pdn_mish_gradient"))

# Settings that may be chosen before init (applied there). cudnn None: as PYDARKNET_CUDNN says
# (on unless it is 0, off, false or no).
_config = {"tf32": False, "precision": "fp32", "cudnn": None, "deterministic": True}
_S = None                        # the state once init() ran (_State)
_init_lock = threading.Lock()
_atexit_registered = False


# -- initialisation ---------------------------------------------------------------------------
class _Buffer:
    """A device buffer that grows to the largest size asked of it (Darknet's workspace):
    allocated outside the pool so that growing really frees the smaller one."""

    def __init__(self, state):
        self.state = state
        self.alloc = None
        self.nbytes = 0

    def get(self, nbytes):
        """Its address, with room for at least ``nbytes``."""
        if nbytes > self.nbytes:
            S = self.state
            if self.alloc is not None:
                S.drv.Context.synchronize()      # queued kernels may still use the old one
                self.alloc.free()
                self.alloc, self.nbytes = None, 0
            size = -(-nbytes // (1 << 20)) << 20  # whole MiB: fewer regrowths
            try:
                self.alloc = S.drv.mem_alloc(size)
            except S.drv.Error:
                S.pool.free_held()
                try:
                    self.alloc = S.drv.mem_alloc(size)
                except S.drv.Error as exc:
                    raise _oom(S, size, f"a {size / 2**20:.0f} MiB convolution workspace",
                               exc) from None
            self.nbytes = size
        return int(self.alloc)

    def free(self):
        if self.alloc is not None:
            self.alloc.free()
            self.alloc, self.nbytes = None, 0


class _State:
    def __init__(self, index, drv, gpuarray_cls, pool, ctx, module, blas, sms):
        self.index = index
        self.drv = drv
        self.GPUArray = gpuarray_cls
        self.pool = pool
        self.ctx = ctx
        self.module = module
        self.blas = blas
        self.sms = sms
        self.max_blocks = 32 * sms
        self.fns = {}
        self.threads = {threading.get_ident()}
        self.col = _Buffer(self)         # im2col columns (fp32)
        self.half_a = _Buffer(self)      # fp16 copies for the mixed-precision GEMMs
        self.half_b = _Buffer(self)
        self.half_c = _Buffer(self)
        self.small = _Buffer(self)       # batch-norm backward scratch
        self.weights = _Buffer(self)     # shortcut weights uploaded from the host
        self.count = _Buffer(self)       # all_finite's count
        self.pool_geometry = {}          # int32 indexes address -> max-pool geometry
        self.dnn = None                  # the cuDNN handle, None without cuDNN
        self.dnn_tried = False
        self.dnn_reason = None           # why there is no cuDNN handle
        self.dnn_version = None
        self.dnn_ws = _Buffer(self)      # cuDNN's workspace
        self.dnn_plans = {}              # geometry + mode -> _ConvPlan, or None (im2col)
        self.dnn_fallbacks = {}          # (geometry, direction) -> why im2col

    def buffers(self):
        return (self.col, self.half_a, self.half_b, self.half_c, self.small, self.weights,
                self.count, self.dnn_ws)

    def enter_thread(self):
        """Make the context current in a thread other than init's (pycuda's context stack
        is per thread)."""
        self.ctx.push()
        self.threads.add(threading.get_ident())


def _err(message):
    return PydarknetError(message)


def _import_pycuda():
    try:
        importlib.import_module("pycuda")
    except ImportError as exc:
        raise _err(f"the CUDA backend needs pycuda, which does not import ({exc}): install "
                   f"it with `pip install pycuda` (or `pip install 'pydarknet[cuda]'`; it "
                   f"builds against the CUDA toolkit, nvcc on PATH), or use device='cpu'") \
            from None
    try:
        import pycuda.driver as drv
    except ImportError as exc:
        text = str(exc)
        if "libcuda" in text:
            raise _err(f"no NVIDIA driver found (libcuda.so.1 could not be loaded: {text}): "
                       f"the CUDA backend needs an NVIDIA GPU with its driver installed "
                       f"(check `nvidia-smi`); use device='cpu' on this machine") from None
        raise _err(f"pycuda is installed but its driver module does not import ({text}): "
                   f"reinstall it for this Python and CUDA with `pip install --force-reinstall "
                   f"--no-cache-dir pycuda`") from None
    try:
        import pycuda.gpuarray as gpuarray
        import pycuda.tools as tools
    except ImportError as exc:
        raise _err(f"pycuda is incomplete ({exc}): reinstall it with `pip install "
                   f"--force-reinstall pycuda`") from None
    return drv, gpuarray, tools


def require_pycuda():
    """The error that says what to install where pycuda or the NVIDIA driver is missing,
    before anything starts (a multi-GPU run checks it before it starts its ranks)."""
    _import_pycuda()


def _fatbin_error(drv, exc):
    text = str(exc)
    if "UNSUPPORTED_PTX_VERSION" in text.upper() or "unsupported PTX" in text:
        why = ("it was built by a newer CUDA toolkit than this driver supports: update the "
               "NVIDIA driver, or rebuild it with the toolkit matching the driver "
               "(`make cuda NVCC=/path/to/older/nvcc`)")
    elif "NO_BINARY_FOR_GPU" in text.upper() or "no kernel image" in text.lower():
        why = ("it holds no code for this GPU's architecture (it has sm_80, sm_90 and "
               "compute_90 PTX): add this GPU's -gencode to the Makefile and run `make cuda`")
    else:
        why = "rebuild it with `make cuda` (needs nvcc)"
    return _err(f"cannot load the CUDA kernels from {FATBIN}: {text}: {why}")


def init(device_index=0):
    """Start the CUDA backend on GPU ``device_index`` (idempotent for the same index; one
    process uses one GPU). Raises PydarknetError naming the fix when something is missing."""
    global _S, _atexit_registered
    try:
        idx = int(device_index)
    except (TypeError, ValueError):
        raise ValueError(f"init: device_index must be an integer, got {device_index!r}") \
            from None
    if idx != device_index or idx < 0:
        raise ValueError(f"init: device_index must be an integer >= 0, got {device_index!r}")
    with _init_lock:
        if _S is not None:
            if _S.index == idx:
                return
            raise _err(f"the CUDA backend already runs on cuda:{_S.index}; one process uses one "
                       f"GPU: run cuda:{idx} in another process (or set CUDA_VISIBLE_DEVICES)")
        drv, gpuarray, tools = _import_pycuda()
        try:
            drv.init()
        except drv.Error as exc:
            raise _err(f"the CUDA driver did not start ({exc}): no usable NVIDIA GPU here? "
                       f"Check `nvidia-smi` and CUDA_VISIBLE_DEVICES, or use device='cpu'") \
                from None
        count = drv.Device.count()
        if count == 0:
            raise _err("no CUDA GPU found (the driver sees 0 devices): check `nvidia-smi` and "
                       "CUDA_VISIBLE_DEVICES, or use device='cpu'")
        if idx >= count:
            raise _err(f"cuda:{idx} does not exist: this machine has {count} GPU(s), "
                       f"cuda:0 to cuda:{count - 1}")
        if not FATBIN.is_file():
            raise _err(f"the CUDA kernels are not built ({FATBIN} is missing): run `make cuda` "
                       f"(needs nvcc) to build pydarknet/backend/kernels.fatbin, then reinstall "
                       f"or run from the source tree")
        _cublas.load_library()           # a clear message before touching the GPU
        dev = drv.Device(idx)
        try:
            ctx = dev.retain_primary_context()
            ctx.push()
        except drv.Error as exc:
            raise _err(f"cannot open cuda:{idx} ({exc}): is it busy in exclusive-process mode "
                       f"or in a bad state? Check `nvidia-smi`") from None
        blas = state = None
        try:
            try:
                module = drv.module_from_file(str(FATBIN))
            except drv.Error as exc:
                raise _fatbin_error(drv, exc) from None
            sms = int(dev.get_attribute(drv.device_attribute.MULTIPROCESSOR_COUNT))
            blas = _cublas.Handle()
            blas.set_stream(None)        # the legacy default stream, as the kernels
            state = _State(idx, drv, gpuarray.GPUArray, tools.DeviceMemoryPool(), ctx, module,
                           blas, sms)
            missing = []
            try:
                signatures = kernel_signatures.load()
            except (OSError, ValueError) as exc:
                raise _err(f"cannot read the CUDA kernels' signatures: {exc}") from None
            for kname, fmt in signatures.items():
                try:
                    state.fns[kname] = module.get_function(kname).prepare(fmt)
                except drv.Error:
                    missing.append(kname)
            if missing:
                raise _err(f"{FATBIN} lacks the kernels {', '.join(missing)}: it is older than "
                           f"cuda/*.cu; run `make cuda` to rebuild it")
            _apply_math_mode(state)
            from . import cuda_conv       # the convolution strategy (it imports this module)
            if cuda_conv.cudnn_wanted():
                cuda_conv.dnn_start(state)
        except BaseException:
            for h in (blas, state.dnn if state is not None else None):
                if h is not None:
                    try:
                        h.destroy()
                    except Exception:
                        pass
            ctx.pop()
            raise
        state.tools = tools
        _S = state
        if not _atexit_registered:
            atexit.register(_shutdown)
            _atexit_registered = True


def _shutdown():
    """At exit: wait for the GPU, free the workspaces and the pool's spare blocks, destroy the
    cuDNN descriptors and handle and the cuBLAS handle, pop the primary context."""
    global _S
    S = _S
    if S is None:
        return
    _S = None
    try:
        S.drv.Context.synchronize()
    except Exception:
        pass
    for buf in S.buffers():
        try:
            buf.free()
        except Exception:
            pass
    from . import cuda_conv
    cuda_conv.dnn_forget_plans(S)
    for h in (S.dnn, S.blas):
        try:
            if h is not None:
                h.destroy()
        except Exception:
            pass
    try:
        S.pool.stop_holding()
    except Exception:
        pass
    try:
        S.ctx.pop()
    except Exception:
        pass
    try:
        S.tools.clear_context_caches()
    except Exception:
        pass


def is_initialized():
    """True once :func:`init` succeeded."""
    return _S is not None


def device_index():
    """The GPU this process uses (None before :func:`init`)."""
    return None if _S is None else _S.index


def _ready():
    S = _S
    if S is None:
        raise _err("the CUDA backend is not initialised: call get_backend('cuda:N') "
                   "(or cuda_device.init(N)) before using its ops")
    if threading.get_ident() not in S.threads:
        S.enter_thread()
    return S


def _apply_math_mode(S):
    S.blas.set_math_mode(_cublas.TF32_TENSOR_OP_MATH if _config["tf32"]
                         else _cublas.DEFAULT_MATH)


def set_tf32(enabled):
    """TF32 tensor-core math for the float32 GEMMs and cuDNN convolutions (off by default:
    exact float32; cuBLAS's default math and cuDNN's FMA math)."""
    _config["tf32"] = bool(enabled)
    if _S is not None:
        _apply_math_mode(_ready())


def get_tf32():
    return _config["tf32"]


def set_precision(precision):
    """``"fp32"`` (default) or ``"fp16"``: with fp16 the im2col convolution GEMMs (forward and
    backward) read fp16 copies of their inputs, accumulate in fp32 and write fp32, and cuDNN
    runs with CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION (it may convert its float32 tensors down
    for the tensor cores); master weights, activations and gradients stay fp32."""
    p = str(precision).lower()
    p = {"float32": "fp32", "float16": "fp16", "half": "fp16"}.get(p, p)
    if p not in ("fp32", "fp16"):
        raise ValueError(f"set_precision: precision must be 'fp32' or 'fp16', got {precision!r}")
    _config["precision"] = p


def get_precision():
    return _config["precision"]


def set_deterministic(enabled):
    """Deterministic cuDNN algorithms only (on by default: two runs give the same bits).
    Off: cuDNN's heuristics pick the fastest, atomics-based backward algorithms included."""
    _config["deterministic"] = bool(enabled)


def get_deterministic():
    return _config["deterministic"]


def memory_info():
    """Device memory in bytes: what the pool holds (in use + cached), what is in use, the
    workspaces (im2col, cuDNN's and the small ones; cuDNN's also on its own), and the
    device's free and total memory."""
    S = _ready()
    free, total = S.drv.mem_get_info()
    pool = S.pool
    return {
        "pool_held_bytes": int(getattr(pool, "managed_bytes", 0)),
        "pool_active_bytes": int(getattr(pool, "active_bytes", 0)),
        "workspace_bytes": sum(b.nbytes for b in S.buffers()),
        "cudnn_workspace_bytes": S.dnn_ws.nbytes,
        "device_free": int(free),
        "device_total": int(total),
    }


def empty_cache():
    """Give the pool's cached blocks and the workspaces back to the device."""
    S = _ready()
    S.drv.Context.synchronize()
    for buf in S.buffers():
        buf.free()
    S.pool.free_held()


def _oom(S, nbytes, what, exc):
    try:
        free, total = S.drv.mem_get_info()
        where = f"{free / 2**20:.0f} of {total / 2**20:.0f} MiB free"
    except Exception:
        where = "device memory unknown"
    return _err(f"out of GPU memory allocating {what} ({nbytes / 2**20:.1f} MiB; {where}; "
                f"{exc}): lower the batch or raise subdivisions, shrink width/height, or call "
                f"the cuda backend's empty_cache()")


# -- launches -----------------------------------------------------------------------------------
def _p(a):
    """The device address of a backend array."""
    return int(a.gpudata)


def _launch(S, kname, work, *args, grid=None):
    """Launch ``kname`` with 256 threads per block and a grid for ``work`` items
    (cuda/README.md): min(ceil(work/256), 32 per SM), or ceil(work/1024) for the float4
    kernels; the kernels grid-stride, so any grid is correct."""
    if grid is None:
        if kname in _VEC4:
            grid = -(-work // (4 * _THREADS))
        else:
            grid = min(-(-work // _THREADS), S.max_blocks)
    grid = max(1, int(grid))
    try:
        S.fns[kname].prepared_call((grid, 1, 1), (_THREADS, 1, 1), *args)
    except S.drv.Error as exc:
        raise _err(f"CUDA kernel {kname} failed: {exc} (an earlier asynchronous error shows up "
                   f"at the next call: run with CUDA_LAUNCH_BLOCKING=1 to find the culprit)") \
            from None


def synchronize():
    """Wait until the GPU has finished the queued work; raises if a kernel failed."""
    S = _ready()
    try:
        S.drv.Context.synchronize()
    except S.drv.Error as exc:
        raise _err(f"a CUDA kernel failed: {exc} (run with CUDA_LAUNCH_BLOCKING=1 to find "
                   f"which)") from None

