"""The CUDA backend: the op API of :mod:`pydarknet.backend` on device arrays.

Arrays are ``pycuda.gpuarray.GPUArray`` (float32, or int32 for max-pool indexes; C-contiguous,
NCHW) allocated from one ``pycuda.tools.DeviceMemoryPool``, so a shape allocated again comes
back from the pool instead of cudaMalloc. The element-wise, pooling, batch-norm, ... ops launch
the kernels of ``cuda/*.cu`` (compiled by ``make cuda`` into ``kernels.fatbin`` beside this
file; cuda/README.md lists them); ``gemm`` goes to cuBLAS (:mod:`.cublas`, a ctypes binding).
Convolutions go to cuDNN (:mod:`.cudnn`, a ctypes binding of its legacy convolution API) where
it loads: descriptors and algorithms chosen once per geometry, one growing workspace. Where
cuDNN is missing, switched off (:func:`set_cudnn`, ``PYDARKNET_CUDNN=0``) or cannot do a
geometry (Darknet's output size for dilated convolutions, an unsupported shape), they take the
im2col path: im2col into a reusable workspace, then one strided-batched SGEMM per group over as
many images as the workspace holds (1x1 stride-1 unpadded convs GEMM the input directly).
Everything runs in order on the legacy default stream, cuBLAS and cuDNN included; pycuda uses
the device's primary context, which cuBLAS and cuDNN (the runtime API) share.

Importing this module needs no GPU: :func:`init` (``get_backend("cuda:N")`` calls it) does the
CUDA work and raises :class:`pydarknet.errors.PydarknetError` naming the fix when pycuda, the
driver, the GPU, the fatbin or cuBLAS is missing (a missing cuDNN only leaves the im2col path:
:func:`cudnn_enabled` and :func:`cudnn_info` say why). Every op checks its arguments first (device
arrays of this backend, dtypes, shapes; the CPU backend's messages) and raises ValueError, so
misuse fails in Python, not in a kernel.

Numerics: float32 (cuBLAS's default math and cuDNN's FMA math, no TF32: :func:`set_tf32`
turns TF32 on); reductions accumulate in double. ``set_precision("fp16")`` runs the im2col
convolution GEMMs on fp16 copies of their inputs with fp32 accumulation and fp32 outputs
(weights stay fp32), and lets cuDNN convert its float32 tensors down for the tensor cores.
cuDNN's backward algorithms are deterministic ones while :func:`set_deterministic` is on (the
default).
"""

import atexit
import importlib
import os
import pathlib
import threading

import numpy as np

from . import cublas as _cublas
from . import cudnn as _cudnn
from .checks import (CHANNEL_CODES, F32, I32, INT_MAX, LINEAR, Checks, activation_code,
                     check_rank, check_shape, fraction, int_arg)
from ..errors import PydarknetError

__all__ = [
    "init", "is_initialized", "device_index", "set_tf32", "get_tf32", "set_precision",
    "get_precision", "set_cudnn", "get_cudnn", "cudnn_enabled", "cudnn_info",
    "set_deterministic", "get_deterministic", "memory_info", "empty_cache",
    "empty", "zeros", "to_numpy", "from_numpy", "copy_from_numpy", "copy", "fill", "axpy",
    "all_finite", "synchronize",
    "conv2d", "gemm", "activate", "activate_copy", "add_bias", "batchnorm_inference",
    "bias_activate", "batchnorm_activate_inference", "copy_rows", "shortcut_add",
    "yolo_activate", "softmax", "scale_channels", "sam", "maxpool", "local_avgpool",
    "global_avgpool", "upsample", "downsample_sum",
    "conv2d_backward", "gradient", "maxpool_train", "maxpool_backward", "local_avgpool_backward",
    "batchnorm_train", "batchnorm_backward", "backward_bias", "global_avgpool_backward",
    "scale_channels_backward", "sam_backward", "sgd_update",
    "set_num_threads", "get_num_threads",
]

name = "cuda"
_THREADS = 256
_EPS = 1e-5                      # Darknet's batch-norm epsilon (training)
FATBIN = pathlib.Path(os.environ.get("PYDARKNET_FATBIN")
                      or pathlib.Path(__file__).with_name("kernels.fatbin"))
# The im2col workspace holds this many bytes of columns at most (at least one image's):
# the batch is convolved in chunks of as many images as fit.
_WORKSPACE_BYTES = 256 * 2**20
# cuDNN algorithms needing more workspace than this are passed over for the next one.
_CUDNN_WORKSPACE_LIMIT = 2**30

# Kernel -> argument kinds, as pycuda's struct format: P pointer, i int (32-bit), f float.
# The C signatures are in cuda/*.cu; tests/test_cuda_backend.py checks this table against
# them (no GPU needed).
_SIGNATURES = {
    "pdn_activate": "Pii",
    "pdn_activate_copy": "PPii",
    "pdn_mish": "Pi",
    "pdn_mish_copy": "PPi",
    "pdn_gradient": "PPPii",
    "pdn_mish_gradient": "PPi",
    "pdn_activate_channels": "Piiii",
    "pdn_gradient_channels": "PPiiii",
    "pdn_add_bias": "PPiii",
    "pdn_bias_activate": "PPiiii",
    "pdn_batchnorm_inference": "PPPPPfiii",
    "pdn_batchnorm_activate_inference": "PPPPPfiiii",
    "pdn_batchnorm_stats": "PPPPPffiii",
    "pdn_batchnorm_normalize_train": "PPPPPPPfiii",
    "pdn_batchnorm_backward_reduce": "PPPPPPPPPPfiii",
    "pdn_batchnorm_backward_delta": "PPPPPPPfiii",
    "pdn_backward_bias": "PPiii",
    "pdn_im2col": "PiiiiiiiiiiiiP",
    "pdn_col2im_add": "PiiiiiiiiiiiiP",
    "pdn_maxpool": "PPiiiiiiiii",
    "pdn_maxpool_train": "PPPiiiiiiiii",
    "pdn_maxpool_backward": "PPPiiiiiiiii",
    "pdn_local_avgpool": "PPiiiiiiiii",
    "pdn_local_avgpool_backward": "PPiiiiiiiii",
    "pdn_global_avgpool": "PPii",
    "pdn_global_avgpool_backward": "PPii",
    "pdn_upsample": "PPiiiifi",
    "pdn_downsample_sum": "PPiiiiiifi",
    "pdn_copy_block": "PPiiiiiii",
    "pdn_scale_channels": "PPPiiii",
    "pdn_scale_channels_backward_src": "PPPiiii",
    "pdn_scale_channels_backward_scale": "PPPiiii",
    "pdn_sam": "PPPi",
    "pdn_sam_backward": "PPPPPi",
    "pdn_sgd_update": "PPPifffii",
    "pdn_shortcut_add": "PPPiiiiiii",
    "pdn_softmax": "PiiiiiifP",
    "pdn_yolo_activate": "PPiiiiffi",
    "pdn_axpy": "PPif",
    "pdn_count_nonfinite": "PiP",
    "pdn_mul_add": "PPPi",
    "pdn_index_add": "PPPii",
    "pdn_f32_to_f16": "PPi",
}
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
            for kname, fmt in _SIGNATURES.items():
                try:
                    state.fns[kname] = module.get_function(kname).prepare(fmt)
                except drv.Error:
                    missing.append(kname)
            if missing:
                raise _err(f"{FATBIN} lacks the kernels {', '.join(missing)}: it is older than "
                           f"cuda/*.cu; run `make cuda` to rebuild it")
            _apply_math_mode(state)
            if _cudnn_wanted():
                _dnn_start(state)
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
    _dnn_forget_plans(S)
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
        raise _err("the CUDA backend is not initialised: call pydarknet.backend.cuda.init(N) "
                   "(get_backend('cuda:N') does) before using its ops")
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


def _cudnn_wanted():
    if _config["cudnn"] is not None:
        return bool(_config["cudnn"])
    return os.environ.get("PYDARKNET_CUDNN", "1").strip().lower() not in (
        "0", "off", "false", "no")


def set_cudnn(enabled):
    """Convolve with cuDNN where it loads (the default, unless PYDARKNET_CUDNN=0) or, off, with
    im2col + cuBLAS. Turning it on after :func:`init` loads cuDNN then if it was not tried."""
    _config["cudnn"] = bool(enabled)
    S = _S
    if S is not None and enabled and not S.dnn_tried:
        _dnn_start(_ready())


def get_cudnn():
    """Whether cuDNN is wanted (:func:`cudnn_enabled` says whether it is used)."""
    return _cudnn_wanted()


def cudnn_enabled():
    """True when the convolutions go to cuDNN (wanted, loaded, a handle on the device); the
    reason when not is ``cudnn_info()["reason"]``."""
    S = _S
    return S is not None and S.dnn is not None and _cudnn_wanted()


def cudnn_info():
    """cuDNN's state: ``enabled``, ``reason`` (why not, else None), ``version`` (major,
    minor, patch), ``library`` (the file loaded), ``plans`` (geometries set up) and
    ``fallbacks`` (a list of "geometry direction: why" for the convolutions cuDNN does not do,
    which take the im2col path)."""
    S = _S
    if S is None:
        reason = "the CUDA backend is not initialised"
    elif not _cudnn_wanted():
        reason = ("switched off by set_cudnn(False)" if _config["cudnn"] is not None else
                  "switched off by PYDARKNET_CUDNN=" + os.environ.get("PYDARKNET_CUDNN", ""))
    elif S.dnn is None:
        reason = S.dnn_reason or "cuDNN was not loaded"
    else:
        reason = None
    return {
        "enabled": reason is None,
        "reason": reason,
        "version": None if S is None else S.dnn_version,
        "library": _cudnn._LIBRARY.path if S is not None and S.dnn is not None else None,
        "plans": 0 if S is None else sum(p is not None for p in S.dnn_plans.values()),
        "fallbacks": [] if S is None else [
            f"{_geometry_text(geo)} {direction}: {why}"
            for (geo, direction), why in S.dnn_fallbacks.items()],
    }


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
                f"pydarknet.backend.cuda.empty_cache()")


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


# -- checks -------------------------------------------------------------------------------------
# What a device array must be here; the geometry, integer, shape and activation-code checks
# are shared with the CPU backend (:mod:`.checks`).
def _check(op, argname, a, ndim=None, min_ndim=None, dtype=F32):
    S = _S
    if not isinstance(a, S.GPUArray):
        hint = (": copy it to the GPU with from_numpy() or copy_from_numpy()"
                if isinstance(a, np.ndarray) else "")
        raise ValueError(f"{op}: {argname} must be a {dtype.name} device array of the cuda "
                         f"backend (pycuda GPUArray), got {type(a).__name__}{hint}")
    if a.dtype != dtype:
        raise ValueError(f"{op}: {argname} must be {dtype.name}, got {a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{op}: {argname} must be C-contiguous (reshape a backend array "
                         f"instead of slicing it)")
    check_rank(op, argname, a, ndim, min_ndim)


def _check_any(op, argname, a):
    """A float32 or int32 device array; returns its dtype."""
    S = _S
    if not isinstance(a, S.GPUArray):
        raise ValueError(f"{op}: {argname} must be a device array of the cuda backend (pycuda "
                         f"GPUArray), got {type(a).__name__}")
    if a.dtype not in (F32, I32):
        raise ValueError(f"{op}: {argname} must be float32 or int32, got {a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{op}: {argname} must be C-contiguous")
    return a.dtype


def _overlap(a, b):
    if a is None or b is None or a.size == 0 or b.size == 0:
        return False
    pa, pb = _p(a), _p(b)
    return pa < pb + b.nbytes and pb < pa + a.nbytes


def _distinct(op, out_name, out, named):
    """The array ``out`` is written: it must not share memory with the arrays it reads."""
    for argname, a in named:
        if _overlap(out, a):
            raise ValueError(f"{op}: {out_name} must not share memory with {argname}")


_checks = Checks(_check, _distinct, "the CUDA kernels", totals=True)
_check_size = _checks.size


def _forget_geometry(S, a):
    if a.dtype == I32 and a.size:
        S.pool_geometry.pop(_p(a), None)


# -- allocation and transfer --------------------------------------------------------------------
def _alloc(S, shape, dtype, op):
    try:
        shape = tuple(int(d) for d in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    except (TypeError, ValueError):
        raise ValueError(f"{op}: shape must be a tuple of integers, got {shape!r}") from None
    if any(d < 0 for d in shape):
        raise ValueError(f"{op}: negative dimension in shape {shape}")
    try:
        a = S.GPUArray(shape, dtype, allocator=S.pool.allocate)
    except S.drv.Error as exc:
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        raise _oom(S, nbytes, f"an array of shape {shape} ({dtype.name})", exc) from None
    if dtype == I32:
        _forget_geometry(S, a)
    return a


def _dtype(op, dtype):
    dtype = np.dtype(dtype)
    if dtype not in (F32, I32):
        raise ValueError(f"{op}: dtype must be float32 or int32, got {dtype}")
    return dtype


def empty(shape, dtype=F32):
    """Uninitialised device array of ``shape``: float32, or int32 (max-pool indexes)."""
    S = _ready()
    return _alloc(S, shape, _dtype("empty", dtype), "empty")


def zeros(shape, dtype=F32):
    """Zero-filled device array of ``shape`` (float32, or int32)."""
    S = _ready()
    a = _alloc(S, shape, _dtype("zeros", dtype), "zeros")
    if a.size:
        S.drv.memset_d32(_p(a), 0, a.size)
    return a


def to_numpy(a):
    """A host (numpy) copy of the device array ``a``; numpy arrays come back as they are."""
    if isinstance(a, np.ndarray):
        return a
    S = _ready()
    _check_any("to_numpy", "a", a)
    out = np.empty(a.shape, a.dtype)
    if a.size:
        S.drv.memcpy_dtoh(out, _p(a))
    return out


def from_numpy(a):
    """A new float32 device array with a's values."""
    S = _ready()
    h = np.ascontiguousarray(a, dtype=F32)
    d = _alloc(S, h.shape, F32, "from_numpy")
    if h.size:
        S.drv.memcpy_htod(_p(d), h)
    return d


def copy_from_numpy(dst, src):
    """dst = src, a host array of dst's size (any shape; converted to dst's dtype when the
    conversion is safe in kind); returns dst. A device array ``src`` is copied on the device
    (nothing to do when it is dst)."""
    op = "copy_from_numpy"
    S = _ready()
    dt = _check_any(op, "dst", dst)
    if isinstance(src, S.GPUArray):
        if src.size == dst.size and (dst.size == 0 or _p(src) == _p(dst)):
            return dst
        return copy(dst, src)
    src = np.asarray(src)
    if src.size != dst.size:
        raise ValueError(f"{op}: src has {src.size} values, dst {dst.size} "
                         f"(shapes {src.shape} and {dst.shape})")
    try:
        h = np.ascontiguousarray(src.astype(dt, casting="same_kind", copy=False))
    except TypeError:
        raise ValueError(f"{op}: cannot copy {src.dtype} values into a {dt} array") from None
    _forget_geometry(S, dst)
    if h.size:
        S.drv.memcpy_htod(_p(dst), h)
    return dst


def copy(dst, src):
    """dst = src for device arrays of equal size and dtype (shapes may differ); returns dst."""
    op = "copy"
    S = _ready()
    dt = _check_any(op, "dst", dst)
    _check(op, "src", src, dtype=dt)
    if src.size != dst.size:
        raise ValueError(f"{op}: src has {src.size} values, dst {dst.size}")
    if dst.size == 0 or _p(src) == _p(dst):
        return dst
    if _overlap(dst, src):
        raise ValueError(f"{op}: dst and src overlap")
    _forget_geometry(S, dst)
    S.drv.memcpy_dtod(_p(dst), _p(src), dst.nbytes)
    return dst


def fill(a, value):
    """a[...] = value (float32 or int32 array); returns a."""
    op = "fill"
    S = _ready()
    dt = _check_any(op, "a", a)
    try:
        bits = int(np.array(value, dtype=dt).view(np.uint32))
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{op}: value {value!r} does not fit a {dt} array") from None
    _forget_geometry(S, a)
    if a.size:
        S.drv.memset_d32(_p(a), bits, a.size)
    return a


def axpy(alpha, x, y):
    """y += alpha * x for float32 arrays of equal size (numpy's float32 rounding: product,
    then sum); returns y."""
    op = "axpy"
    S = _ready()
    _check(op, "x", x)
    _check(op, "y", y)
    if x.size != y.size:
        raise ValueError(f"{op}: x has {x.size} values, y {y.size}")
    _check_size(op, y.size)
    if y.size:
        _launch(S, "pdn_axpy", y.size, _p(x), _p(y), y.size, float(np.float32(alpha)))
    return y


def all_finite(a):
    """True when a holds no NaN and no inf (waits for the GPU)."""
    op = "all_finite"
    S = _ready()
    dt = _check_any(op, "a", a)
    if dt == I32 or a.size == 0:
        return True
    _check_size(op, a.size)
    count = S.count.get(4)
    S.drv.memset_d32(count, 0, 1)
    _launch(S, "pdn_count_nonfinite", a.size, _p(a), a.size, count)
    out = np.zeros(1, np.int32)
    S.drv.memcpy_dtoh(out, count)
    return int(out[0]) == 0


# -- convolution / products ---------------------------------------------------------------------
def _gemm_rm(S, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
             batch=1, sa=0, sb=0, sc=0, half=False):
    """Row-major C = alpha op(A) op(B) + beta C on device addresses, through cuBLAS's
    column-major GEMM with the operands swapped (C^T = op(B)^T op(A)^T). ``batch`` > 1: the
    i-th product on A + i*sa, B + i*sb, C + i*sc (strides in elements, 0: the same matrix).
    ``half``: A and B are fp16, C float32 (fp32 accumulation)."""
    cublas = _cublas
    opa = cublas.OP_T if ta else cublas.OP_N
    opb = cublas.OP_T if tb else cublas.OP_N
    lda, ldb, ldc = max(1, lda), max(1, ldb), max(1, ldc)
    h = S.blas
    if half:
        if batch == 1:
            h.gemm_ex(opb, opa, n, m, k, alpha, b, cublas.R_16F, ldb, a, cublas.R_16F, lda,
                      beta, c, cublas.R_32F, ldc)
        else:
            h.gemm_strided_batched_ex(opb, opa, n, m, k, alpha, b, cublas.R_16F, ldb, sb, a,
                                      cublas.R_16F, lda, sa, beta, c, cublas.R_32F, ldc, sc,
                                      batch)
    elif batch == 1:
        h.sgemm(opb, opa, n, m, k, alpha, b, ldb, a, lda, beta, c, ldc)
    else:
        h.sgemm_strided_batched(opb, opa, n, m, k, alpha, b, ldb, sb, a, lda, sa, beta, c, ldc,
                                sc, batch)


def _to_half(S, buf, src, count):
    """fp16 copy of ``count`` floats at address ``src`` into the growable buffer ``buf``;
    returns its address."""
    dst = buf.get(2 * count)
    _launch(S, "pdn_f32_to_f16", count, src, dst, count)
    return dst


def _chunk(n, per_image):
    """Images per im2col fill of the workspace."""
    per_image = max(per_image, 1)
    fit = max(1, _WORKSPACE_BYTES // (4 * per_image))
    return max(1, min(n, fit, INT_MAX // per_image))


def _is_direct(kh, kw, sy, sx, py, px, h, wd, oh, ow):
    """1x1, stride 1, unpadded, same size: the input is its own im2col."""
    return kh == kw == 1 and sy == sx == 1 and py == px == 0 and (oh, ow) == (h, wd)


# -- cuDNN ------------------------------------------------------------------------------------
_MISSING = object()


def _geometry_text(geo):
    n, c, h, wd, f, cg, kh, kw, oh, ow, sy, sx, py, px, dil, g = geo[:16]
    return (f"[{n},{c},{h},{wd}]->[{n},{f},{oh},{ow}] {kh}x{kw} stride {sy},{sx} pad {py},{px} "
            f"dilation {dil} groups {g}")


def _dnn_start(S):
    """Load cuDNN and create its handle on the legacy default stream; where that fails,
    remember why and go on without it (the im2col path)."""
    S.dnn_tried = True
    handle = None
    try:
        lib = _cudnn.load_library()
        handle = _cudnn.Handle(lib)
        handle.set_stream(None)              # the legacy default stream, as everything else
        S.dnn_version = _cudnn.version(lib)
    except (_cudnn.CudnnError, OSError) as exc:
        if handle is not None:
            try:
                handle.destroy()
            except Exception:
                pass
        S.dnn, S.dnn_reason = None, str(exc)
        return
    S.dnn, S.dnn_reason = handle, None


def _dnn_forget_plans(S):
    for plan in S.dnn_plans.values():
        if plan is not None:
            plan.destroy()
    S.dnn_plans.clear()


def _dnn_math():
    """The cudnnMathType_t of the settings: FMA (exact float32) by default, DEFAULT (TF32
    allowed on Ampere and newer) with TF32, ALLOW_CONVERSION (float32 tensors converted down
    for the tensor cores) with fp16."""
    if _config["precision"] == "fp16":
        return _cudnn.TENSOR_OP_MATH_ALLOW_CONVERSION
    return _cudnn.DEFAULT_MATH if _config["tf32"] else _cudnn.FMA_MATH


class _ConvPlan:
    """One convolution geometry on cuDNN: its tensor, filter and convolution descriptors
    (one convolution descriptor per math type an algorithm asks for) and, per direction, the
    chosen (descriptor, algorithm, workspace bytes), or None where that direction takes the
    im2col path."""

    def __init__(self, lib, geo, math, deterministic):
        n, c, h, wd, f, cg, kh, kw, oh, ow, sy, sx, py, px, dil, g = geo
        self.lib, self.geo, self.math, self.deterministic = lib, geo, math, deterministic
        self.x = self.w = self.y = None
        self.convs = {}
        self.chosen = {}
        try:
            self.x = _cudnn.TensorDescriptor(n, c, h, wd, lib=lib)
            self.w = _cudnn.FilterDescriptor(f, cg, kh, kw, lib=lib)
            self.y = _cudnn.TensorDescriptor(n, f, oh, ow, lib=lib)
            self.conv = self.conv_for(math)
        except BaseException:
            self.destroy()
            raise

    def conv_for(self, math):
        conv = self.convs.get(math)
        if conv is None:
            n, c, h, wd, f, cg, kh, kw, oh, ow, sy, sx, py, px, dil, g = self.geo
            conv = self.convs[math] = _cudnn.ConvolutionDescriptor(py, px, sy, sx, dil, dil, g,
                                                                   math, lib=self.lib)
        return conv

    def destroy(self):
        for d in [self.x, self.w, self.y] + list(self.convs.values()):
            if d is not None:
                try:
                    d.destroy()
                except Exception:
                    pass
        self.x = self.w = self.y = None
        self.convs, self.chosen = {}, {}


def _dnn_fallback(S, geo, direction, why):
    S.dnn_fallbacks[(geo, direction)] = why


def _dnn_plan(S, geo):
    """The cuDNN plan of a geometry (n, c, h, w, f, c/groups, kh, kw, oh, ow, sy, sx, py, px,
    dilation, groups) under the current settings, set up on first use; None where cuDNN is
    off or cannot do it (the reason is in cudnn_info()["fallbacks"])."""
    if S.dnn is None or not _cudnn_wanted():
        return None
    math, det = _dnn_math(), _config["deterministic"]
    key = geo + (math, det)
    plan = S.dnn_plans.get(key, _MISSING)
    if plan is not _MISSING:
        return plan
    plan = None
    try:
        plan = _ConvPlan(S.dnn.lib, geo, math, det)
        dims = _cudnn.output_dim(plan.conv, plan.x, plan.w)
        n, f, oh, ow = geo[0], geo[4], geo[8], geo[9]
        if dims != (n, f, oh, ow):
            why = (f"cuDNN's output would be {dims[2]}x{dims[3]}, the output array's is "
                   f"{oh}x{ow}" + (" (Darknet's output size ignores the dilation)"
                                   if geo[14] > 1 else ""))
            plan.destroy()
            plan = None
            _dnn_fallback(S, geo, "all", why)
    except _cudnn.CudnnError as exc:
        if plan is not None:
            plan.destroy()
            plan = None
        if exc.category not in (2000, 3000):
            raise
        _dnn_fallback(S, geo, "all", str(exc))
    S.dnn_plans[key] = plan
    return plan


def _dnn_choose(S, plan, direction):
    """The first algorithm of cuDNN's heuristics that succeeded, is deterministic when that
    is asked for, keeps exact float32 (FMA math) unless TF32 or fp16 is on, and needs at most
    _CUDNN_WORKSPACE_LIMIT bytes of workspace: (descriptor, algo, workspace bytes), or None."""
    exact = plan.math == _cudnn.FMA_MATH
    wants_det = plan.deterministic and direction != _cudnn.FWD
    perfs = S.dnn.algorithms(direction, plan.x, plan.w, plan.conv, plan.y)
    skipped = []
    for p in perfs:
        if p.status != 0:
            continue
        if wants_det and p.determinism != _cudnn.DETERMINISTIC:
            skipped.append(f"{p.algo} (not deterministic)")
            continue
        if exact and p.math not in (_cudnn.FMA_MATH, _cudnn.DEFAULT_MATH):
            skipped.append(f"{p.algo} (tensor-op math)")
            continue
        # exact float32 keeps the FMA descriptor; otherwise the math the algorithm was rated
        # with (as cuDNN asks: the algorithm and its math type go together)
        try:
            conv = plan.conv if exact else plan.conv_for(p.math)
            ws = S.dnn.workspace_size(direction, plan.x, plan.w, conv, plan.y, p.algo)
        except _cudnn.CudnnError as exc:
            if exc.category not in (2000, 3000):
                raise
            skipped.append(f"{p.algo} ({_cudnn.status_name(exc.status)})")
            continue
        if ws > _CUDNN_WORKSPACE_LIMIT:
            skipped.append(f"{p.algo} ({ws / 2**20:.0f} MiB of workspace)")
            continue
        return conv, p.algo, ws
    _dnn_fallback(S, plan.geo, direction,
                  "no suitable cuDNN algorithm" + (f"; passed over: {', '.join(skipped)}"
                                                  if skipped else ""))
    return None


def _dnn_run(S, plan, direction, alpha, beta, a, b, out):
    """One direction on cuDNN (forward: out = conv(a=x, b=w); backward data: out = dx from
    a=w, b=delta; backward filter: out = dw from a=x, b=delta), out = alpha * result + beta *
    out. False where this direction takes the im2col path (nothing was written)."""
    if plan is None:
        return False
    entry = plan.chosen.get(direction, _MISSING)
    if entry is _MISSING:
        try:
            entry = _dnn_choose(S, plan, direction)
        except _cudnn.CudnnError as exc:
            if exc.category not in (2000, 3000):
                raise
            _dnn_fallback(S, plan.geo, direction, str(exc))
            entry = None
        plan.chosen[direction] = entry
    if entry is None:
        return False
    conv, algo, ws_bytes = entry
    ws = S.dnn_ws.get(ws_bytes) if ws_bytes else 0
    descs = {_cudnn.FWD: (plan.x, plan.w, plan.y), _cudnn.BWD_DATA: (plan.w, plan.y, plan.x),
             _cudnn.BWD_FILTER: (plan.x, plan.y, plan.w)}[direction]
    try:
        S.dnn.convolve(direction, alpha, descs[0], _p(a), descs[1], _p(b), conv, algo, ws,
                       ws_bytes, beta, descs[2], _p(out))
    except _cudnn.CudnnError as exc:
        if exc.category not in (2000, 3000):     # bad parameter / not supported: im2col
            raise
        plan.chosen[direction] = None
        _dnn_fallback(S, plan.geo, direction, str(exc))
        return False
    return True


# -- convolution ------------------------------------------------------------------------------
def conv2d(x, w, out, stride_y, stride_x, pad_y, pad_x, dilation, groups):
    """Darknet's im2col convolution into ``out`` (written in full); returns ``out``.

    x[N,C,H,W], w[F,C//groups,kh,kw], out[N,F,OH,OW]; OH/OW are taken from ``out``.
    cuDNN's forward (alpha 1, beta 0) where it does this geometry, else im2col + SGEMM.
    """
    op = "conv2d"
    S = _ready()
    n, c, h, wd, f, cg, kh, kw, sy, sx, py, px, dil, g = _checks.conv(
        op, x, w, "out", out, stride_y, stride_x, pad_y, pad_x, dilation, groups)
    _distinct(op, "out", out, (("x", x), ("w", w)))
    oh, ow = out.shape[2], out.shape[3]
    if out.size == 0:
        return out
    if x.size == 0 or w.size == 0:
        S.drv.memset_d32(_p(out), 0, out.size)
        return out
    plan = _dnn_plan(S, (n, c, h, wd, f, cg, kh, kw, oh, ow, sy, sx, py, px, dil, g))
    if _dnn_run(S, plan, _cudnn.FWD, 1.0, 0.0, x, w, out):
        return out
    fg, kg, ohw = f // g, cg * kh * kw, oh * ow
    half = _config["precision"] == "fp16"
    es = 2 if half else 4
    wp = _to_half(S, S.half_a, _p(w), w.size) if half else _p(w)
    op_ = _p(out)
    if _is_direct(kh, kw, sy, sx, py, px, h, wd, oh, ow):
        xp = _to_half(S, S.half_b, _p(x), x.size) if half else _p(x)
        for gi in range(g):
            _gemm_rm(S, False, False, fg, ohw, cg, 1.0, wp + gi * fg * kg * es, kg,
                     xp + gi * cg * ohw * es, ohw, 0.0, op_ + gi * fg * ohw * 4, ohw,
                     batch=n, sa=0, sb=c * ohw, sc=f * ohw, half=half)
        return out
    per_image = c * kh * kw * ohw
    chunk = _chunk(n, per_image)
    col = S.col.get(4 * chunk * per_image)
    for n0 in range(0, n, chunk):
        b = min(chunk, n - n0)
        _launch(S, "pdn_im2col", b * per_image, _p(x) + n0 * c * h * wd * 4, b * c, h, wd, kh,
                kw, sy, sx, py, px, dil, oh, ow, col)
        cp = _to_half(S, S.half_b, col, b * per_image) if half else col
        for gi in range(g):
            _gemm_rm(S, False, False, fg, ohw, kg, 1.0, wp + gi * fg * kg * es, kg,
                     cp + gi * kg * ohw * es, ohw, 0.0, op_ + (n0 * f + gi * fg) * ohw * 4, ohw,
                     batch=b, sa=0, sb=per_image, sc=f * ohw, half=half)
    return out


def conv2d_backward(x, w, delta, dx, dw, stride_y, stride_x, pad_y, pad_x, dilation, groups):
    """Backward of :func:`conv2d` as the op API says (dw, and dx unless None, accumulated;
    OH/OW from delta); returns ``dw``. cuDNN's backward filter and backward data with beta 1
    (they add to dw and dx) where it does this geometry; else dw: one GEMM per image and group
    on the im2col columns (Darknet's order); dx: w^T delta into the columns, then
    ``pdn_col2im_add``, or one batched GEMM straight into dx for 1x1 stride-1 unpadded convs."""
    op = "conv2d_backward"
    S = _ready()
    n, c, h, wd, f, cg, kh, kw, sy, sx, py, px, dil, g = _checks.conv_backward(
        op, x, w, delta, dx, dw, stride_y, stride_x, pad_y, pad_x, dilation, groups)
    oh, ow = delta.shape[2], delta.shape[3]
    if delta.size == 0 or x.size == 0 or w.size == 0:
        return dw
    geo = (n, c, h, wd, f, cg, kh, kw, oh, ow, sy, sx, py, px, dil, g)
    plan = _dnn_plan(S, geo)
    if _dnn_run(S, plan, _cudnn.BWD_FILTER, 1.0, 1.0, x, delta, dw):
        dw_left = None
    else:
        dw_left = dw
    if dx is not None and _dnn_run(S, plan, _cudnn.BWD_DATA, 1.0, 1.0, w, delta, dx):
        dx = None
    if dw_left is not None or dx is not None:
        _conv2d_backward_im2col(S, geo, x, w, delta, dx, dw_left)
    return dw


def _conv2d_backward_im2col(S, geo, x, w, delta, dx, dw):
    """conv2d_backward's im2col path for dw and dx, each skipped when None."""
    n, c, h, wd, f, cg, kh, kw, oh, ow, sy, sx, py, px, dil, g = geo
    fg, kg, ohw = f // g, cg * kh * kw, oh * ow
    half = _config["precision"] == "fp16"
    es = 2 if half else 4
    wp = (_to_half(S, S.half_a, _p(w), w.size) if half else _p(w)) if dx is not None else 0
    direct = _is_direct(kh, kw, sy, sx, py, px, h, wd, oh, ow)
    per_image = c * ohw if direct else c * kh * kw * ohw
    chunk = n if direct else _chunk(n, per_image)
    col = 0 if direct else S.col.get(4 * chunk * per_image)
    for n0 in range(0, n, chunk):
        b = min(chunk, n - n0)
        xc = _p(x) + n0 * c * h * wd * 4              # this chunk's input
        dc = _p(delta) + n0 * f * ohw * 4             # and its delta
        dh = _to_half(S, S.half_c, dc, b * f * ohw) if half else dc
        if dw is not None:
            if direct:
                src = xc
            else:
                _launch(S, "pdn_im2col", b * per_image, xc, b * c, h, wd, kh, kw, sy, sx, py,
                        px, dil, oh, ow, col)
                src = col
            if half:
                src = _to_half(S, S.half_b, src, b * per_image)
            # dw_g[fg, kg] += delta_g[fg, ohw] @ col_g[kg, ohw]^T, image by image (Darknet's
            # accumulation order)
            dwp = _p(dw)
            for i in range(b):
                for gi in range(g):
                    _gemm_rm(S, False, True, fg, kg, ohw, 1.0,
                             dh + (i * f + gi * fg) * ohw * es, ohw,
                             src + (i * per_image + gi * kg * ohw) * es, ohw, 1.0,
                             dwp + gi * fg * kg * 4, kg, half=half)
        if dx is None:
            continue
        if direct:
            # dx_g[cg, hw] += w_g^T[cg, fg] @ delta_g[fg, hw], all images in one batch
            for gi in range(g):
                _gemm_rm(S, True, False, cg, ohw, fg, 1.0, wp + gi * fg * kg * es, kg,
                         dh + gi * fg * ohw * es, ohw, 1.0,
                         _p(dx) + (n0 * c + gi * cg) * ohw * 4, ohw,
                         batch=b, sa=0, sb=f * ohw, sc=c * ohw, half=half)
        else:
            # col_g[kg, ohw] = w_g^T @ delta_g (the columns are free again), then col2im
            for gi in range(g):
                _gemm_rm(S, True, False, kg, ohw, fg, 1.0, wp + gi * fg * kg * es, kg,
                         dh + gi * fg * ohw * es, ohw, 0.0, col + gi * kg * ohw * 4, ohw,
                         batch=b, sa=0, sb=f * ohw, sc=per_image, half=half)
            _launch(S, "pdn_col2im_add", b * c * h * wd, col, b * c, h, wd, kh, kw, sy, sx, py,
                    px, dil, oh, ow, _p(dx) + n0 * c * h * wd * 4)


def gemm(trans_a, trans_b, alpha, a, b, beta, c):
    """c = alpha * op(a) @ op(b) + beta * c (2-D, row-major, cuBLAS sgemm); returns ``c``."""
    op = "gemm"
    S = _ready()
    ta, tb, m, nn, k = _checks.gemm(op, trans_a, trans_b, a, b, c)
    _distinct(op, "c", c, (("a", a), ("b", b)))
    if c.size == 0:
        return c
    _gemm_rm(S, ta, tb, m, nn, k, float(alpha), _p(a) if a.size else 0, a.shape[1],
             _p(b) if b.size else 0, b.shape[1], float(beta), _p(c), c.shape[1])
    return c


# -- element-wise / per channel (in place) ------------------------------------------------------
def _activate_channels(S, x, n, c, spatial, code):
    _launch(S, "pdn_activate_channels", n * spatial, _p(x), n, c, spatial, code)


def activate(x, code):
    """Darknet activation ``code`` (int code or name) on x in place; returns x.

    The normalize_channels* activations work per pixel across channels of x[N, C, ...].
    """
    op = "activate"
    S = _ready()
    a = activation_code(code)
    if a in CHANNEL_CODES:
        n, c, spatial = _checks.per_channel(op, x, ())
    else:
        _check(op, "x", x)
        _check_size(op, x.size)
    if x.size == 0 or a == LINEAR:
        return x
    if a in CHANNEL_CODES:
        _activate_channels(S, x, n, c, spatial, a)
    else:
        _launch(S, "pdn_activate", x.size, _p(x), x.size, a)
    return x


def activate_copy(x, y, code):
    """y = f(x) with Darknet's activation ``code``; x is left as it was; returns y."""
    op = "activate_copy"
    S = _ready()
    a = activation_code(code, op)
    _check(op, "x", x, min_ndim=2 if a in CHANNEL_CODES else None)
    _check(op, "y", y)
    check_shape(op, "y", y, x.shape)
    _check_size(op, x.size)
    if x.size == 0:
        return y
    if _p(x) == _p(y):
        return activate(y, a)
    _distinct(op, "y", y, (("x", x),))
    if a in CHANNEL_CODES or a == LINEAR:
        S.drv.memcpy_dtod(_p(y), _p(x), x.nbytes)
        if a != LINEAR:
            n, c = y.shape[0], y.shape[1]
            _activate_channels(S, y, n, c, y.size // (n * c), a)
    else:
        _launch(S, "pdn_activate_copy", x.size, _p(x), _p(y), x.size, a)
    return y


def add_bias(x, b):
    """x[N,C,...] += b[C] in place; returns x."""
    S = _ready()
    n, c, spatial = _checks.per_channel("add_bias", x, (("b", b),))
    if x.size:
        _launch(S, "pdn_add_bias", x.size, _p(x), _p(b), n, c, spatial)
    return x


def bias_activate(x, b, code):
    """add_bias then activate, fused into one pass; returns x."""
    op = "bias_activate"
    S = _ready()
    a = activation_code(code, op)
    n, c, spatial = _checks.per_channel(op, x, (("b", b),))
    if x.size == 0:
        return x
    if a in CHANNEL_CODES:
        _launch(S, "pdn_add_bias", x.size, _p(x), _p(b), n, c, spatial)
        _activate_channels(S, x, n, c, spatial, a)
    else:
        _launch(S, "pdn_bias_activate", x.size, _p(x), _p(b), n, c, spatial, a)
    return x


def batchnorm_inference(x, scales, mean, variance, biases, eps=1e-5):
    """Darknet's inference batchnorm on x[N,C,...] in place; returns x.

    x = (x - mean) / sqrt(variance + eps), then x *= scales, then x += biases (one pass).
    """
    S = _ready()
    n, c, spatial = _checks.per_channel("batchnorm_inference", x, (
        ("scales", scales), ("mean", mean), ("variance", variance), ("biases", biases)))
    if x.size:
        _launch(S, "pdn_batchnorm_inference", x.size, _p(x), _p(scales), _p(mean),
                _p(variance), _p(biases), float(eps), n, c, spatial)
    return x


def batchnorm_activate_inference(x, scales, mean, variance, biases, code, eps=1e-5):
    """batchnorm_inference then activate, fused into one pass; returns x."""
    op = "batchnorm_activate_inference"
    S = _ready()
    a = activation_code(code, op)
    n, c, spatial = _checks.per_channel(op, x, (
        ("scales", scales), ("mean", mean), ("variance", variance), ("biases", biases)))
    if x.size == 0:
        return x
    args = (_p(x), _p(scales), _p(mean), _p(variance), _p(biases), float(eps), n, c, spatial)
    if a in CHANNEL_CODES:
        _launch(S, "pdn_batchnorm_inference", x.size, *args)
        _activate_channels(S, x, n, c, spatial, a)
    else:
        _launch(S, "pdn_batchnorm_activate_inference", x.size, *args, a)
    return x


# -- copies between layers' outputs -------------------------------------------------------------
def copy_rows(src, dst, count, src_offset, dst_offset, accumulate=False):
    """Per image n: dst[n, dst_offset:+count] (= or +=) src[n, src_offset:+count], both seen
    as [N, values per image]; returns dst."""
    op = "copy_rows"
    S = _ready()
    n, s_per, d_per, count, so, do = _checks.copy_rows(op, src, dst, count, src_offset,
                                                       dst_offset)
    if n and count:
        if _p(src) == _p(dst) and abs(so - do) < count:
            raise ValueError(f"{op}: the source and destination ranges overlap")
        _launch(S, "pdn_copy_block", n * count, _p(src), _p(dst), n, count, s_per, so, d_per, do,
                int(bool(accumulate)))
    return dst


def shortcut_add(out, add, m, spatial, weights=None, accumulate=True):
    """Per image: out[n, :m] (+= or =) add[n, :m] * w, with w = 1 (weights None), weights[0]
    (a single weight) or weights[i // spatial] (one per channel); ``weights`` is a host
    numpy vector (or a float32 device array); returns out."""
    op = "shortcut_add"
    S = _ready()
    n, o_per, a_per, m, spatial = _checks.shortcut(op, out, add, m, spatial)
    mode, wp = 0, _p(out) if out.size else 0
    if weights is not None:
        if isinstance(weights, S.GPUArray):
            _check(op, "weights", weights)
            wsize = weights.size
        else:
            wh = np.ascontiguousarray(np.asarray(weights, F32).ravel())
            wsize = wh.size
        if wsize == 0:
            raise ValueError(f"{op}: weights is empty")
        if wsize == 1:
            mode = 1
        else:
            mode = 2
            if m % spatial:
                raise ValueError(f"{op}: m={m} is not a whole number of channels of {spatial} "
                                 f"values (per-channel weights)")
            if wsize < m // spatial:
                raise ValueError(f"{op}: {m // spatial} channels need {m // spatial} weights, "
                                 f"got {wsize}")
        if isinstance(weights, S.GPUArray):
            wp = _p(weights)
        elif n and m:
            wp = S.weights.get(4 * wh.size)
            # from pageable memory: the copy waits for the queued kernels (the previous
            # shortcut's among them) before it overwrites the buffer
            S.drv.memcpy_htod(wp, wh)
    if n and m:
        _launch(S, "pdn_shortcut_add", n * m, _p(out), _p(add), wp, n, o_per, a_per, m, spatial,
                mode, int(bool(accumulate)))
    return out


# -- layer-specific forward ops -----------------------------------------------------------------
def yolo_activate(x, out, anchors, entries, scale_x_y, new_coords):
    """[yolo]'s activation of x[N, anchors*entries, H, W] into out (may be x); returns out."""
    op = "yolo_activate"
    S = _ready()
    anchors, entries = _checks.yolo(op, x, out, anchors, entries)
    n = x.shape[0]
    _check_size(op, x.size)
    if n == 0 or x.size == 0:
        return out
    if x.size % (n * anchors * entries):
        raise ValueError(f"{op}: x of shape {x.shape} is not [N, {anchors}*{entries}, H, W]")
    if _p(x) != _p(out):
        _distinct(op, "out", out, (("x", x),))
    hw = x.size // (n * anchors * entries)
    scale = float(scale_x_y)
    _launch(S, "pdn_yolo_activate", x.size, _p(x), _p(out), n, anchors, entries, hw, scale,
            float(np.float32(-0.5 * (scale - 1))), int(bool(new_coords)))
    return out


def softmax(x, out, groups, temperature):
    """Per image, Darknet's softmax over each of ``groups`` equal runs of x; returns out."""
    op = "softmax"
    S = _ready()
    groups, n, per = _checks.softmax(op, x, out, groups)
    _check_size(op, x.size, n * groups)
    t = float(temperature)
    if t == 0:
        raise ValueError(f"{op}: temperature must not be 0")
    if x.size == 0:
        return out
    if _p(x) != _p(out):
        _distinct(op, "out", out, (("x", x),))
    size = per // groups
    _launch(S, "pdn_softmax", n * groups, _p(x), size, n, per, groups, size, 1, t, _p(out))
    return out


def scale_channels(src, scale, out, scale_wh):
    """out = src[N,C,H,W] * scale, one scale per (image, channel), or per (image, pixel) with
    scale_wh; returns out."""
    op = "scale_channels"
    S = _ready()
    n, c, spatial = _checks.scale(op, src, scale, scale_wh)
    _checks.holds(op, "out", out, src.size)
    if src.size:
        _launch(S, "pdn_scale_channels", src.size, _p(src), _p(scale), _p(out), n, c, spatial,
                int(bool(scale_wh)))
    return out


def scale_channels_backward(delta, src, scale, dsrc, dscale, scale_wh):
    """dsrc += delta * scale; dscale += sum(delta * src) over pixels (over channels with
    scale_wh); either output may be None."""
    op = "scale_channels_backward"
    S = _ready()
    n, c, spatial = _checks.scale(op, src, scale, scale_wh)
    _checks.holds(op, "delta", delta, src.size)
    wh = int(bool(scale_wh))
    if dscale is not None:
        _checks.holds(op, "dscale", dscale, scale.size)
        _distinct(op, "dscale", dscale, (("delta", delta), ("src", src)))
        if src.size:
            work = n * spatial if wh else n * c * 32
            _launch(S, "pdn_scale_channels_backward_scale", work, _p(delta), _p(src),
                    _p(dscale), n, c, spatial, wh)
    if dsrc is not None:
        _checks.holds(op, "dsrc", dsrc, src.size)
        _distinct(op, "dsrc", dsrc, (("scale", scale),))
        if src.size:
            _launch(S, "pdn_scale_channels_backward_src", src.size, _p(delta), _p(scale),
                    _p(dsrc), n, c, spatial, wh)


def sam(src, x, out):
    """out = src * x elementwise (equal sizes); returns out."""
    S = _ready()
    _checks.sam("sam", src, x, out)
    if src.size:
        _launch(S, "pdn_sam", src.size, _p(src), _p(x), _p(out), src.size)
    return out


def sam_backward(delta, src, x, dx, dsrc):
    """dx += delta * src; dsrc += delta * x (either may be None; they may be one array)."""
    op = "sam_backward"
    S = _ready()
    _check(op, "delta", delta)
    n = delta.size
    _check_size(op, n)
    named = [("src", src), ("dx", dx)] if dx is not None else []
    if dsrc is not None:
        named += [("x", x), ("dsrc", dsrc)]
    for argname, a in named:
        _check(op, argname, a)
        if a.size != n:
            raise ValueError(f"{op}: {argname} must hold {n} values, got {a.size}")
    if n == 0:
        return
    if dx is not None and dsrc is not None:
        _launch(S, "pdn_sam_backward", n, _p(delta), _p(src), _p(x), _p(dx), _p(dsrc), n)
    elif dx is not None:
        _launch(S, "pdn_mul_add", n, _p(delta), _p(src), _p(dx), n)
    elif dsrc is not None:
        _launch(S, "pdn_mul_add", n, _p(delta), _p(x), _p(dsrc), n)


# -- pooling / resampling -----------------------------------------------------------------------
def _pool_args(op, x, out, size, stride_y, stride_x, pad):
    args = _checks.pool(op, x, out, size, stride_y, stride_x, pad)
    _distinct(op, "out", out, (("x", x),))
    return args


def maxpool(x, out, size, stride_y, stride_x, pad):
    """Darknet maxpool of x[N,C,H,W] into out[N,C,OH,OW] (OH/OW from ``out``; windows from
    -(pad // 2), as the op API says), one thread per output; returns out."""
    S = _ready()
    args = _pool_args("maxpool", x, out, size, stride_y, stride_x, pad)
    if out.size:
        _launch(S, "pdn_maxpool", out.size, _p(x), _p(out), *args)
    return out


def local_avgpool(x, out, size, stride_y, stride_x, pad):
    """Darknet local_avgpool: maxpool's windows, averaged over the in-image cells only
    (0 where a window has none); returns out."""
    S = _ready()
    args = _pool_args("local_avgpool", x, out, size, stride_y, stride_x, pad)
    if out.size:
        _launch(S, "pdn_local_avgpool", out.size, _p(x), _p(out), *args)
    return out


def global_avgpool(x, out):
    """out[N,C,1,1] = mean of x[N,C,H,W] over H*W; returns out."""
    op = "global_avgpool"
    S = _ready()
    n, c, h, w = _checks.global_avgpool(op, x, out)
    _check_size(op, n * c * 32, x.size)
    if out.size:
        if h * w == 0:
            raise ValueError(f"{op}: x has no pixels (shape {x.shape})")
        _launch(S, "pdn_global_avgpool", n * c * 32, _p(x), _p(out), n * c, h * w)
    return out


def _resample_args(op, small, big, small_name, big_name, stride):
    args = _checks.resample(op, small, big, small_name, big_name, stride)
    _distinct(op, "out", small if small_name == "out" else big,
              (("x", big if small_name == "out" else small),))
    return args


def upsample(x, out, stride, scale, accumulate=False):
    """Nearest-neighbour upsample: out[n,c,y,x] (= or +=) scale * x[n,c,y//stride,x//stride]
    for x[N,C,H,W], out[N,C,H*stride,W*stride]; returns out."""
    op = "upsample"
    S = _ready()
    nc, stride = _resample_args(op, x, out, "x", "out", stride)
    n, c, h, w = x.shape
    check_shape(op, "out", out, (n, c, h * stride, w * stride))
    if out.size:
        _launch(S, "pdn_upsample", out.size, _p(x), _p(out), nc, h, w, stride, float(scale),
                int(bool(accumulate)))
    return out


def downsample_sum(x, out, stride, scale, accumulate=False):
    """Darknet's upsample with negative stride (also upsample's backward): each out[N,C,H//s,
    W//s] cell (= or +=) scale * the sum of its s x s block of x, s = stride, one thread per
    output cell; returns out."""
    op = "downsample_sum"
    S = _ready()
    nc, stride = _resample_args(op, out, x, "out", "x", stride)
    n, c, h, w = x.shape
    check_shape(op, "out", out, (n, c, h // stride, w // stride))
    if out.size:
        _launch(S, "pdn_downsample_sum", out.size, _p(x), _p(out), nc, h, w, out.shape[2],
                out.shape[3], stride, float(scale), int(bool(accumulate)))
    return out


# -- training (backward) ------------------------------------------------------------------------
def gradient(delta, y, code, x=None):
    """delta *= f'(.) in place (Darknet's gradient of ``code`` at y, or at the pre-activation
    x for swish, mish and hard_mish); returns delta. One float4 pass, or a per-pixel kernel
    across the channels of [N, C, ...] for normalize_channels*."""
    op = "gradient"
    S = _ready()
    a, x = _checks.gradient(op, delta, y, code, x)
    _check_size(op, delta.size)
    if delta.size == 0 or a == LINEAR:
        return delta
    if a in CHANNEL_CODES:
        n, c = delta.shape[0], delta.shape[1]
        spatial = delta.size // (n * c)
        _launch(S, "pdn_gradient_channels", n * spatial, _p(delta), _p(y), n, c, spatial, a)
    else:
        _launch(S, "pdn_gradient", delta.size, _p(delta), _p(y), _p(x) if x is not None else 0,
                delta.size, a)
    return delta


def maxpool_train(x, out, indexes, size, stride_y, stride_x, pad):
    """:func:`maxpool` that also writes ``indexes`` (int32, shaped like out: Darknet's
    l.indexes, flat over the batch, -1 for a window outside the image) and remembers their
    geometry for :func:`maxpool_backward`'s gather; returns out."""
    op = "maxpool_train"
    S = _ready()
    args = _pool_args(op, x, out, size, stride_y, stride_x, pad)
    _checks.int32(op, "indexes", indexes, out.shape)
    _distinct(op, "indexes", indexes, (("x", x), ("out", out)))
    if out.size:
        _launch(S, "pdn_maxpool_train", out.size, _p(x), _p(out), _p(indexes), *args)
        # remembered so that maxpool_backward can gather (deterministic) instead of scatter
        S.pool_geometry[_p(indexes)] = (indexes.nbytes,) + args
    return out


def maxpool_backward(delta, indexes, dx):
    """dx.flat[indexes] += delta (repeated indexes add up; indexes outside dx, such as -1,
    are skipped); returns dx.

    Indexes written by :func:`maxpool_train` (and not overwritten since) take the
    deterministic gather kernel with their window geometry; any others an atomic scatter
    (the order of additions to one cell may vary between runs)."""
    op = "maxpool_backward"
    S = _ready()
    _checks.maxpool_backward(op, delta, indexes, dx)
    if delta.size == 0 or dx.size == 0:
        return dx
    geo = S.pool_geometry.get(_p(indexes))
    if geo is not None:
        nbytes, nc, h, w, oh, ow, size, sy, sx, pad = geo
        if nbytes == indexes.nbytes and delta.size == nc * oh * ow and dx.size == nc * h * w:
            _launch(S, "pdn_maxpool_backward", dx.size, _p(delta), _p(indexes), _p(dx), nc, h, w,
                    oh, ow, size, sy, sx, pad)
            return dx
    _launch(S, "pdn_index_add", delta.size, _p(delta), _p(indexes), _p(dx), delta.size, dx.size)
    return dx


def local_avgpool_backward(delta, dx, size, stride_y, stride_x, pad):
    """Backward of :func:`local_avgpool`, accumulating: each output's delta divided by the
    number of its window's in-image cells is added to those cells of dx; returns dx."""
    op = "local_avgpool_backward"
    S = _ready()
    args = _checks.pool_backward(op, delta, dx, size, stride_y, stride_x, pad)
    if delta.size and dx.size:
        _launch(S, "pdn_local_avgpool_backward", dx.size, _p(delta), _p(dx), *args)
    return dx


def batchnorm_train(x, scales, biases, rolling_mean, rolling_variance, mean, variance,
                    x_saved, x_norm, keep):
    """Darknet's training batch norm on x[N,C,...] in place; returns x.

    Per channel: mean, variance (1/(M-1), M = N*spatial; summed in double) into
    ``mean``/``variance``; rolling = keep*rolling + (1-keep)*batch statistic (1-keep
    computed in double from the Python float ``keep``); ``x_saved`` = the input;
    ``x_norm`` = (x - mean)/sqrt(variance + 1e-5); x = x_norm*scales + biases.
    """
    op = "batchnorm_train"
    S = _ready()
    n, c, spatial = _checks.per_channel(op, x, (
        ("scales", scales), ("biases", biases), ("rolling_mean", rolling_mean),
        ("rolling_variance", rolling_variance), ("mean", mean), ("variance", variance)))
    _checks.like_x(op, x, (("x_saved", x_saved), ("x_norm", x_norm)))
    _distinct(op, "x_saved", x_saved, (("x", x), ("x_norm", x_norm)))
    _distinct(op, "x_norm", x_norm, (("x", x),))
    keep = fraction(op, "keep", keep)
    _check_size(op, n * spatial)
    if x.size:
        _launch(S, "pdn_batchnorm_stats", 0, _p(x), _p(mean), _p(variance), _p(rolling_mean),
                _p(rolling_variance), keep, 1.0 - keep, n, c, spatial, grid=c)
        _launch(S, "pdn_batchnorm_normalize_train", x.size, _p(x), _p(x_saved), _p(x_norm),
                _p(mean), _p(variance), _p(scales), _p(biases), _EPS, n, c, spatial)
    return x


def batchnorm_backward(delta, x_saved, x_norm, mean, variance, scales, bias_grad, scale_grad):
    """Darknet's batch-norm backward (the -gpusem order, eps = 1e-5 inside the root) on
    delta[N,C,...] in place, as the op API says; returns delta. One block per channel adds to
    bias_grad and scale_grad and sums the mean and variance deltas (in double) into a scratch
    buffer; one element-wise pass then rewrites delta."""
    op = "batchnorm_backward"
    S = _ready()
    n, c, spatial = _checks.per_channel(op, delta, (
        ("mean", mean), ("variance", variance), ("scales", scales), ("bias_grad", bias_grad),
        ("scale_grad", scale_grad)), xname="delta")
    _checks.like_x(op, delta, (("x_saved", x_saved), ("x_norm", x_norm)))
    _distinct(op, "delta", delta, (("x_saved", x_saved), ("x_norm", x_norm)))
    _check_size(op, n * spatial)
    if delta.size:
        scratch = S.small.get(8 * c)          # mean_delta[C], var_delta[C]
        md, vd = scratch, scratch + 4 * c
        _launch(S, "pdn_batchnorm_backward_reduce", 0, _p(delta), _p(x_saved), _p(x_norm),
                _p(mean), _p(variance), _p(scales), _p(bias_grad), _p(scale_grad), md, vd, _EPS,
                n, c, spatial, grid=c)
        _launch(S, "pdn_batchnorm_backward_delta", delta.size, _p(delta), _p(x_saved), _p(mean),
                _p(variance), _p(scales), md, vd, _EPS, n, c, spatial)
    return delta


def backward_bias(bias_grad, delta):
    """bias_grad[c] += the sum of delta[N, C, ...] over images and pixels (in double);
    returns bias_grad."""
    op = "backward_bias"
    S = _ready()
    n, c, spatial = _checks.per_channel(op, delta, (("bias_grad", bias_grad),), xname="delta")
    if delta.size:
        _launch(S, "pdn_backward_bias", 0, _p(bias_grad), _p(delta), n, c, spatial, grid=c)
    return bias_grad


def global_avgpool_backward(delta, dx):
    """dx[N,C,H,W] += delta[N,C,1,1] / (H*W); returns dx."""
    op = "global_avgpool_backward"
    S = _ready()
    n, c, h, w = _checks.global_avgpool_backward(op, delta, dx)
    _distinct(op, "dx", dx, (("delta", delta),))
    _check_size(op, dx.size)
    if dx.size:
        _launch(S, "pdn_global_avgpool_backward", dx.size, _p(delta), _p(dx), n * c, h * w)
    return dx


def sgd_update(p, u, g, step, neg_decay_b, momentum, decayed):
    """Darknet's SGD step in float32: u += g; u += neg_decay_b*p (when decayed);
    p += step*u; u *= momentum (bitwise numpy's float32 steps). Returns p."""
    op = "sgd_update"
    S = _ready()
    _checks.like_x(op, p, (("p", p), ("u", u), ("g", g)))
    _distinct(op, "p", p, (("u", u), ("g", g)))
    _distinct(op, "u", u, (("g", g),))
    _check_size(op, p.size)
    if p.size:
        _launch(S, "pdn_sgd_update", p.size, _p(p), _p(u), _p(g), p.size,
                float(np.float32(step)), float(np.float32(neg_decay_b)),
                float(np.float32(momentum)), int(bool(decayed)), 0)
    return p


# -- threads ------------------------------------------------------------------------------------
def set_num_threads(n):
    """Host threads do no array work on this backend: accepted (checked) and ignored."""
    int_arg("set_num_threads", "n", n, 1)


def get_num_threads():
    """1: the host runs no parallel array loops on this backend."""
    return 1
