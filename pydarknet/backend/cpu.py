"""The CPU backend: numpy arrays (float32, C-contiguous, NCHW) and the C core (``_cpu``).

Implements the op API of :mod:`pydarknet.backend`. Every op checks dtype, contiguity and
shapes up front and raises ``ValueError`` naming the op and the expected vs actual value;
the work itself (no per-element Python) runs in the C core with the GIL released.
"""

import os

import numpy as np

from . import ACTIVATION_CODE, ACTIVATIONS


def _load_core():
    # libgomp reads OMP_WAIT_POLICY once, when it is loaded together with _cpu. Its default
    # keeps idle OpenMP threads spinning after each parallel loop, where they fight BLAS's
    # own threads for the cores (measured: convs about 2x slower on 2 cores). Load it with
    # PASSIVE unless the user chose a policy; the process environment is left as it was.
    key = "OMP_WAIT_POLICY"
    chosen = key in os.environ
    if not chosen:
        os.environ[key] = "PASSIVE"
    try:
        from . import _cpu
    finally:
        if not chosen:
            os.environ.pop(key, None)
    return _cpu


_cpu = _load_core()

__all__ = [
    "empty", "zeros", "to_numpy", "from_numpy", "conv2d", "gemm", "activate", "add_bias",
    "batchnorm_inference", "maxpool", "local_avgpool", "global_avgpool", "upsample",
    "downsample_sum", "set_num_threads", "get_num_threads",
]

name = "cpu"
_F32 = np.dtype(np.float32)
_INT_MAX = 2**31 - 1

# Cross-channel activations: need x as (N, C, ...) and work per pixel across C.
_CHANNEL_CODES = frozenset(ACTIVATION_CODE[n] for n in (
    "normalize_channels", "normalize_channels_softmax", "normalize_channels_softmax_maxval"))


# -- allocation ---------------------------------------------------------------------------
def empty(shape):
    """Uninitialised float32 array of ``shape``."""
    return np.empty(shape, _F32)


def zeros(shape):
    """Zero-filled float32 array of ``shape``."""
    return np.zeros(shape, _F32)


def to_numpy(a):
    """The array as numpy (on the CPU backend: the same array, no copy)."""
    return np.asarray(a)


def from_numpy(a):
    """A float32 C-contiguous array with a's values (no copy when ``a`` already is one)."""
    return np.ascontiguousarray(a, dtype=_F32)


# -- checks ---------------------------------------------------------------------------------
def _check(op, argname, a, ndim=None, min_ndim=None):
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{op}: {argname} must be a numpy float32 array, got {type(a).__name__}")
    if a.dtype != _F32:
        raise ValueError(f"{op}: {argname} must be float32, got {a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{op}: {argname} must be C-contiguous (use numpy.ascontiguousarray)")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{op}: {argname} must be {ndim}-D, got shape {a.shape}")
    if min_ndim is not None and a.ndim < min_ndim:
        raise ValueError(f"{op}: {argname} must have at least {min_ndim} dimensions "
                         f"(N, C, ...), got shape {a.shape}")
    if a.size > 0 and not a.flags.writeable and argname in ("x", "out", "c"):
        raise ValueError(f"{op}: {argname} is read-only")


def _check_shape(op, argname, a, expected):
    if tuple(a.shape) != tuple(expected):
        raise ValueError(f"{op}: {argname} must have shape {tuple(expected)}, got {tuple(a.shape)}")


def _int(op, argname, v, minimum):
    try:
        iv = int(v)
    except (TypeError, ValueError):
        raise ValueError(f"{op}: {argname} must be an integer, got {v!r}") from None
    if iv != v or iv < minimum:
        raise ValueError(f"{op}: {argname} must be an integer >= {minimum}, got {v!r}")
    return iv


def _check_size(op, *dims):
    for d in dims:
        if d > _INT_MAX:
            raise ValueError(f"{op}: dimension {d} is too large for the C core (max {_INT_MAX})")


def _activation_code(code):
    if isinstance(code, str):
        try:
            return ACTIVATION_CODE[code]
        except KeyError:
            raise ValueError(f"activate: unknown activation {code!r}; expected one of "
                             f"{', '.join(ACTIVATIONS)}") from None
    try:
        c = int(code)
    except (TypeError, ValueError):
        raise ValueError(f"activate: activation must be a name or an int code, got {code!r}") from None
    if c != code or not 0 <= c < len(ACTIVATIONS):
        raise ValueError(f"activate: activation code must be in 0..{len(ACTIVATIONS) - 1}, got {code!r}")
    return c


# -- convolution / products -----------------------------------------------------------------
def conv2d(x, w, out, stride_y, stride_x, pad_y, pad_x, dilation, groups):
    """Darknet's im2col convolution into ``out`` (written in full); returns ``out``.

    x[N,C,H,W], w[F,C//groups,kh,kw], out[N,F,OH,OW]; OH/OW are taken from ``out``.
    """
    op = "conv2d"
    _check(op, "x", x, ndim=4)
    _check(op, "w", w, ndim=4)
    _check(op, "out", out, ndim=4)
    sy = _int(op, "stride_y", stride_y, 1)
    sx = _int(op, "stride_x", stride_x, 1)
    py = _int(op, "pad_y", pad_y, 0)
    px = _int(op, "pad_x", pad_x, 0)
    dil = _int(op, "dilation", dilation, 1)
    g = _int(op, "groups", groups, 1)
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    if c % g:
        raise ValueError(f"{op}: input channels {c} are not divisible by groups={g}")
    if f % g:
        raise ValueError(f"{op}: filters {f} are not divisible by groups={g}")
    if cg != c // g:
        raise ValueError(f"{op}: w must have shape ({f}, {c // g}, kh, kw) for C={c}, "
                         f"groups={g}; got {w.shape}")
    if out.shape[0] != n or out.shape[1] != f:
        raise ValueError(f"{op}: out must have shape ({n}, {f}, OH, OW), got {out.shape}")
    oh, ow = out.shape[2], out.shape[3]
    _check_size(op, oh * ow, c * h * wd, cg * kh * kw, n * f, f * cg * kh * kw)
    if out.size == 0:
        return out
    _cpu.conv2d(x, w, out, n, c, h, wd, f, kh, kw, oh, ow, sy, sx, py, px, dil, g)
    return out


def gemm(trans_a, trans_b, alpha, a, b, beta, c):
    """c = alpha * op(a) @ op(b) + beta * c (2-D, row-major, BLAS sgemm); returns ``c``."""
    op = "gemm"
    _check(op, "a", a, ndim=2)
    _check(op, "b", b, ndim=2)
    _check(op, "c", c, ndim=2)
    ta, tb = bool(trans_a), bool(trans_b)
    m, k = (a.shape[1], a.shape[0]) if ta else a.shape
    kb, nn = (b.shape[1], b.shape[0]) if tb else b.shape
    if k != kb:
        raise ValueError(f"{op}: inner dimensions differ: op(a) is {m}x{k}, op(b) is {kb}x{nn} "
                         f"(a {a.shape}, b {b.shape}, trans_a={ta}, trans_b={tb})")
    _check_size(op, m, nn, k, a.shape[1], b.shape[1])
    _check_shape(op, "c", c, (m, nn))
    if c.size == 0:
        return c
    _cpu.gemm(ta, tb, m, nn, k, float(alpha), a, a.shape[1], b, b.shape[1], float(beta),
              c, c.shape[1])
    return c


# -- element-wise / per channel (in place) ---------------------------------------------------
def activate(x, code):
    """Darknet activation ``code`` (int code or name) on x in place; returns x.

    The normalize_channels* activations work per pixel across channels of x[N, C, ...].
    """
    op = "activate"
    a = _activation_code(code)
    if a in _CHANNEL_CODES:
        _check(op, "x", x, min_ndim=2)
        n, c = x.shape[0], x.shape[1]
        spatial = x.size // (n * c) if n * c else 0
    else:
        _check(op, "x", x)
        n, c, spatial = 1, 1, x.size
    if x.size == 0 or ACTIVATIONS[a] == "linear":
        return x
    _check_size(op, n, c)
    _cpu.activate(x, n, c, spatial, a)
    return x


def _per_channel(op, x, named):
    _check(op, "x", x, min_ndim=2)
    c = x.shape[1]
    for argname, v in named:
        _check(op, argname, v)
        if v.size != c or v.ndim > 1 and v.shape != (c,):
            raise ValueError(f"{op}: {argname} must have shape ({c},) for x of shape {x.shape}, "
                             f"got {v.shape}")
    n = x.shape[0]
    _check_size(op, n, c)
    return n, c, (x.size // (n * c) if n * c else 0)


def add_bias(x, b):
    """x[N,C,...] += b[C] in place; returns x."""
    n, c, spatial = _per_channel("add_bias", x, (("b", b),))
    if x.size:
        _cpu.add_bias(x, b, n, c, spatial)
    return x


def batchnorm_inference(x, scales, mean, variance, biases, eps=1e-5):
    """Darknet's inference batchnorm on x[N,C,...] in place; returns x.

    x = (x - mean) / sqrt(variance + eps), then x *= scales, then x += biases (one pass).
    """
    n, c, spatial = _per_channel("batchnorm_inference", x, (
        ("scales", scales), ("mean", mean), ("variance", variance), ("biases", biases)))
    if x.size:
        _cpu.batchnorm_inference(x, scales, mean, variance, biases, float(eps), n, c, spatial)
    return x


# -- pooling / resampling --------------------------------------------------------------------
def _pool_args(op, x, out, size, stride_y, stride_x, pad):
    _check(op, "x", x, ndim=4)
    _check(op, "out", out, ndim=4)
    size = _int(op, "size", size, 1)
    sy = _int(op, "stride_y", stride_y, 1)
    sx = _int(op, "stride_x", stride_x, 1)
    pad = _int(op, "pad", pad, 0)
    n, c, h, w = x.shape
    if out.shape[:2] != (n, c):
        raise ValueError(f"{op}: out must have shape ({n}, {c}, OH, OW), got {out.shape}")
    _check_size(op, n * c, h * w, out.shape[2] * out.shape[3])
    return n * c, h, w, out.shape[2], out.shape[3], size, sy, sx, pad


def maxpool(x, out, size, stride_y, stride_x, pad):
    """Darknet maxpool of x[N,C,H,W] into out[N,C,OH,OW] (OH/OW from ``out``); returns out.

    Window of output (oy, ox): rows oy*stride_y - pad/2 + [0, size), columns
    ox*stride_x - pad/2 + [0, size) (C integer division: -(pad // 2)); max over the cells
    inside the image (-FLT_MAX if none).
    """
    args = _pool_args("maxpool", x, out, size, stride_y, stride_x, pad)
    if out.size:
        _cpu.maxpool(x, out, *args)
    return out


def local_avgpool(x, out, size, stride_y, stride_x, pad):
    """Darknet local_avgpool: maxpool's windows, averaged over the in-image cells only
    (0 where a window has none); returns out."""
    args = _pool_args("local_avgpool", x, out, size, stride_y, stride_x, pad)
    if out.size:
        _cpu.local_avgpool(x, out, *args)
    return out


def global_avgpool(x, out):
    """out[N,C,1,1] = mean of x[N,C,H,W] over H*W; returns out."""
    op = "global_avgpool"
    _check(op, "x", x, ndim=4)
    _check(op, "out", out)
    n, c, h, w = x.shape
    if out.shape not in ((n, c, 1, 1), (n, c)):
        raise ValueError(f"{op}: out must have shape {(n, c, 1, 1)}, got {out.shape}")
    _check_size(op, n * c)
    if out.size:
        if h * w == 0:
            raise ValueError(f"{op}: x has no pixels (shape {x.shape})")
        _cpu.global_avgpool(x, out, n * c, h * w)
    return out


def _resample_args(op, small, big, small_name, big_name, stride):
    _check(op, "x", small if small_name == "x" else big, ndim=4)
    _check(op, "out", big if small_name == "x" else small, ndim=4)
    stride = _int(op, "stride", stride, 1)
    n, c, h, w = small.shape
    if big.shape[:2] != (n, c):
        raise ValueError(f"{op}: {big_name} must have shape ({n}, {c}, ...) like "
                         f"{small_name} {small.shape}, got {big.shape}")
    _check_size(op, n * c, big.shape[2] * big.shape[3])
    return n * c, stride


def upsample(x, out, stride, scale):
    """Nearest-neighbour upsample: out[n,c,y,x] = scale * x[n,c,y//stride,x//stride] for
    x[N,C,H,W], out[N,C,H*stride,W*stride]; returns out."""
    op = "upsample"
    nc, stride = _resample_args(op, x, out, "x", "out", stride)
    n, c, h, w = x.shape
    _check_shape(op, "out", out, (n, c, h * stride, w * stride))
    if out.size:
        _cpu.upsample(x, out, nc, h, w, stride, float(scale))
    return out


def downsample_sum(x, out, stride, scale):
    """Darknet's upsample with negative stride: out[N,C,OH,OW] = 0, then
    out[n,c,y//stride,x//stride] += scale * x[n,c,y,x] for y < OH*stride, x < OW*stride,
    where OH = H // stride, OW = W // stride; returns out."""
    op = "downsample_sum"
    nc, stride = _resample_args(op, out, x, "out", "x", stride)
    n, c, h, w = x.shape
    _check_shape(op, "out", out, (n, c, h // stride, w // stride))
    if out.size:
        _cpu.downsample_sum(x, out, nc, h, w, out.shape[2], out.shape[3], stride, float(scale))
    return out


# -- threads ---------------------------------------------------------------------------------
def set_num_threads(n):
    """Threads for the C core's OpenMP loops and, when threadpoolctl is installed, for BLAS."""
    n = _int("set_num_threads", "n", n, 1)
    _cpu.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(n, user_api="blas")


def get_num_threads():
    """Threads the C core's OpenMP loops use."""
    return _cpu.get_num_threads()
