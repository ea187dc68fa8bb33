"""The CPU backend: numpy arrays (float32, C-contiguous, NCHW) and the C core (``_cpu``).

Implements the op API of :mod:`pydarknet.backend`. Every op checks dtype, contiguity and
shapes up front and raises ``ValueError`` naming the op and the expected vs actual value;
the work itself (no per-element Python) runs in the C core with the GIL released.
"""

import os

import numpy as np

from .checks import (CHANNEL_CODES, F32, I32, LINEAR, Checks, activation_code, check_rank,
                     check_shape, fraction, int_arg)

HOST_ARRAYS = True   # backend arrays are numpy arrays: parameters never move


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
    "conv2d_backward", "gradient", "maxpool_train", "maxpool_backward", "local_avgpool_backward",
    "batchnorm_train", "batchnorm_backward",
]

name = "cpu"


# -- allocation ---------------------------------------------------------------------------
def empty(shape, dtype=F32):
    """Uninitialised array of ``shape``: float32, or int32 (max-pool indexes)."""
    dtype = np.dtype(dtype)
    if dtype not in (F32, I32):
        raise ValueError(f"empty: dtype must be float32 or int32, got {dtype}")
    return np.empty(shape, dtype)


def zeros(shape):
    """Zero-filled float32 array of ``shape``."""
    return np.zeros(shape, F32)


def to_numpy(a):
    """The array as numpy (on the CPU backend: the same array, no copy)."""
    return np.asarray(a)


def from_numpy(a):
    """A float32 C-contiguous array with a's values (no copy when ``a`` already is one)."""
    return np.ascontiguousarray(a, dtype=F32)


def copy_from_numpy(dst, src):
    """dst = src, a host array of dst's size (any shape); nothing to do when they are one."""
    _check("copy_from_numpy", "dst", dst)
    src = np.asarray(src)
    if src.size != dst.size:
        raise ValueError(f"copy_from_numpy: src has {src.size} values, dst {dst.size} "
                         f"(shapes {src.shape} and {dst.shape})")
    if src.__array_interface__["data"][0] != dst.__array_interface__["data"][0]:
        np.copyto(dst, src.reshape(dst.shape), casting="same_kind")
    return dst


def copy(dst, src):
    """dst = src for arrays of equal size (shapes may differ); returns dst."""
    _check("copy", "dst", dst)
    _check("copy", "src", src)
    if src.size != dst.size:
        raise ValueError(f"copy: src has {src.size} values, dst {dst.size}")
    np.copyto(dst, src.reshape(dst.shape))
    return dst


def fill(a, value):
    """a[...] = value; returns a."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"fill: a must be a numpy array, got {type(a).__name__}")
    a.fill(value)
    return a


def axpy(alpha, x, y):
    """y += alpha * x for arrays of equal size; returns y."""
    _check("axpy", "x", x)
    _check("axpy", "y", y)
    if x.size != y.size:
        raise ValueError(f"axpy: x has {x.size} values, y {y.size}")
    xv = x.reshape(y.shape)
    if alpha == 1:
        y += xv
    else:
        y += F32.type(alpha) * xv
    return y


def all_finite(a):
    """True when a holds no NaN and no inf."""
    _check("all_finite", "a", a)
    return _cpu.count_nonfinite(a) == 0


def synchronize():
    """Nothing to wait for on the CPU."""


# -- checks ---------------------------------------------------------------------------------
# What a numpy array must be here; the geometry, integer, shape and activation-code checks
# are shared with the CUDA backend (:mod:`.checks`).
def _check(op, argname, a, ndim=None, min_ndim=None, dtype=F32):
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{op}: {argname} must be a numpy {dtype.name} array, got "
                         f"{type(a).__name__}")
    if a.dtype != dtype:
        raise ValueError(f"{op}: {argname} must be {dtype.name}, got {a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{op}: {argname} must be C-contiguous (use numpy.ascontiguousarray)")
    check_rank(op, argname, a, ndim, min_ndim)
    if a.size > 0 and not a.flags.writeable and argname in ("x", "out", "c"):
        raise ValueError(f"{op}: {argname} is read-only")


def _writable(op, argname, a):
    if a.size > 0 and not a.flags.writeable:
        raise ValueError(f"{op}: {argname} is read-only")


def _distinct(op, out_name, out, named):
    """The array ``out`` is written: it must not share memory with the arrays it reads."""
    for argname, a in named:
        if a is not None and np.may_share_memory(out, a):
            raise ValueError(f"{op}: {out_name} must not share memory with {argname}")


def _written(op, argname, a, reads):
    _writable(op, argname, a)
    _distinct(op, argname, a, reads)


_checks = Checks(_check, _written, "the C core", totals=False)
_check_size = _checks.size


# -- convolution / products -----------------------------------------------------------------
def conv2d(x, w, out, stride_y, stride_x, pad_y, pad_x, dilation, groups):
    """Darknet's im2col convolution into ``out`` (written in full); returns ``out``.

    x[N,C,H,W], w[F,C//groups,kh,kw], out[N,F,OH,OW]; OH/OW are taken from ``out``.
    """
    op = "conv2d"
    n, c, h, wd, f, cg, kh, kw, sy, sx, py, px, dil, g = _checks.conv(
        op, x, w, "out", out, stride_y, stride_x, pad_y, pad_x, dilation, groups)
    oh, ow = out.shape[2], out.shape[3]
    if out.size == 0:
        return out
    _cpu.conv2d(x, w, out, n, c, h, wd, f, kh, kw, oh, ow, sy, sx, py, px, dil, g)
    return out


def gemm(trans_a, trans_b, alpha, a, b, beta, c):
    """c = alpha * op(a) @ op(b) + beta * c (2-D, row-major, BLAS sgemm); returns ``c``."""
    ta, tb, m, nn, k = _checks.gemm("gemm", trans_a, trans_b, a, b, c)
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
    a = activation_code(code)
    if a in CHANNEL_CODES:
        _check(op, "x", x, min_ndim=2)
        n, c = x.shape[0], x.shape[1]
        spatial = x.size // (n * c) if n * c else 0
    else:
        _check(op, "x", x)
        n, c, spatial = 1, 1, x.size
    if x.size == 0 or a == LINEAR:
        return x
    _check_size(op, n, c)
    _cpu.activate(x, n, c, spatial, a)
    return x


def add_bias(x, b):
    """x[N,C,...] += b[C] in place; returns x."""
    n, c, spatial = _checks.per_channel("add_bias", x, (("b", b),))
    if x.size:
        _cpu.add_bias(x, b, n, c, spatial)
    return x


def batchnorm_inference(x, scales, mean, variance, biases, eps=1e-5):
    """Darknet's inference batchnorm on x[N,C,...] in place; returns x.

    x = (x - mean) / sqrt(variance + eps), then x *= scales, then x += biases (one pass).
    """
    n, c, spatial = _checks.per_channel("batchnorm_inference", x, (
        ("scales", scales), ("mean", mean), ("variance", variance), ("biases", biases)))
    if x.size:
        _cpu.batchnorm_inference(x, scales, mean, variance, biases, float(eps), n, c, spatial)
    return x


def activate_copy(x, y, code):
    """y = f(x) with Darknet's activation ``code``; x is left as it was; returns y."""
    _check("activate_copy", "x", x)
    _check("activate_copy", "y", y)
    check_shape("activate_copy", "y", y, x.shape)
    np.copyto(y, x)
    return activate(y, code)


def bias_activate(x, b, code):
    """add_bias then activate, one pass per channel plane; returns x."""
    a = activation_code(code, "bias_activate")
    if a in CHANNEL_CODES:
        return activate(add_bias(x, b), a)
    n, c, spatial = _checks.per_channel("bias_activate", x, (("b", b),))
    if x.size:
        _cpu.bias_bn_activate(x, None, None, None, b, 0.0, n, c, spatial, a)
    return x


def batchnorm_activate_inference(x, scales, mean, variance, biases, code, eps=1e-5):
    """batchnorm_inference then activate, one pass per channel plane; returns x."""
    a = activation_code(code, "batchnorm_activate_inference")
    if a in CHANNEL_CODES:
        return activate(batchnorm_inference(x, scales, mean, variance, biases, eps), a)
    n, c, spatial = _checks.per_channel("batchnorm_activate_inference", x, (
        ("scales", scales), ("mean", mean), ("variance", variance), ("biases", biases)))
    if x.size:
        _cpu.bias_bn_activate(x, scales, mean, variance, biases, float(eps), n, c, spatial, a)
    return x


# -- copies between layers' outputs ------------------------------------------------------------
def copy_rows(src, dst, count, src_offset, dst_offset, accumulate=False):
    """Per image n: dst[n, dst_offset:+count] (= or +=) src[n, src_offset:+count], both seen
    as [N, values per image]; returns dst."""
    op = "copy_rows"
    n, s_per, d_per, count, so, do = _checks.copy_rows(op, src, dst, count, src_offset,
                                                       dst_offset)
    s, d = src.reshape(n, s_per), dst.reshape(n, d_per)
    if accumulate:
        d[:, do:do + count] += s[:, so:so + count]
    else:
        d[:, do:do + count] = s[:, so:so + count]
    return dst


def shortcut_add(out, add, m, spatial, weights=None, accumulate=True):
    """Per image: out[n, :m] (+= or =) add[n, :m] * w, with w = 1 (weights None), weights[0]
    (a single weight) or weights[i // spatial] (one per channel); returns out."""
    op = "shortcut_add"
    n, o_per, a_per, m, spatial = _checks.shortcut(op, out, add, m, spatial)
    o, a = out.reshape(n, o_per), add.reshape(n, a_per)
    values = a[:, :m]
    if weights is not None:
        w = np.asarray(weights, F32).ravel()
        if w.size == 1:
            values = values * w[0]
        else:
            c = m // spatial
            if w.size < c:
                raise ValueError(f"{op}: {c} channels need {c} weights, got {w.size}")
            values = (values.reshape(a.shape[0], c, spatial) * w[:c, None]).reshape(-1, m)
    if accumulate:
        o[:, :m] += values
    else:
        o[:, :m] = values
    return out


# -- layer-specific forward ops ----------------------------------------------------------------
def _logistic(v):
    return F32.type(1) / (F32.type(1) + np.exp(-v))


def yolo_activate(x, out, anchors, entries, scale_x_y, new_coords):
    """[yolo]'s activation of x[N, anchors*entries, H, W] into out (may be x); returns out."""
    op = "yolo_activate"
    anchors, entries = _checks.yolo(op, x, out, anchors, entries)
    n = x.shape[0]
    if x.size % (n * anchors * entries):
        raise ValueError(f"{op}: x of shape {x.shape} is not [N, {anchors}*{entries}, H, W]")
    v = x.reshape(n, anchors, entries, -1).copy()
    if not new_coords:     # new_coords heads are activated in the conv before
        v[:, :, 0:2] = _logistic(v[:, :, 0:2])
        v[:, :, 4:] = _logistic(v[:, :, 4:])
    v[:, :, 0:2] = v[:, :, 0:2] * F32.type(scale_x_y) + F32.type(-0.5 * (scale_x_y - 1))
    np.copyto(out, v.reshape(out.shape))
    return out


def softmax_rows(v, temperature=1.0):
    """Darknet's softmax along the last axis of a numpy array (max subtracted, float32)."""
    t = F32.type(temperature)
    e = np.exp(v / t - v.max(axis=-1, keepdims=True) / t)
    return e / e.sum(axis=-1, keepdims=True)


def softmax(x, out, groups, temperature):
    """Per image, Darknet's softmax over each of ``groups`` equal runs of x; returns out."""
    op = "softmax"
    groups, n, _ = _checks.softmax(op, x, out, groups)
    np.copyto(out, softmax_rows(x.reshape(n, groups, -1), temperature).reshape(out.shape))
    return out


def _scale_view(op, src, scale, scale_wh):
    n, c, spatial = _checks.scale(op, src, scale, scale_wh)
    return (scale.reshape(n, 1, spatial) if scale_wh else scale.reshape(n, c, 1),
            src.reshape(n, c, spatial))


def scale_channels(src, scale, out, scale_wh):
    """out = src[N,C,H,W] * scale, one scale per (image, channel), or per (image, pixel) with
    scale_wh; returns out."""
    op = "scale_channels"
    sv, s3 = _scale_view(op, src, scale, scale_wh)
    _checks.holds(op, "out", out, src.size)
    np.copyto(out, (s3 * sv).reshape(out.shape))
    return out


def scale_channels_backward(delta, src, scale, dsrc, dscale, scale_wh):
    """dsrc += delta * scale; dscale += sum(delta * src) over pixels (over channels with
    scale_wh); either output may be None."""
    op = "scale_channels_backward"
    sv, s3 = _scale_view(op, src, scale, scale_wh)
    _check(op, "delta", delta)
    d = delta.reshape(s3.shape)
    if dscale is not None:
        _check(op, "dscale", dscale)
        grad = (d * s3).sum(axis=1 if scale_wh else 2)
        dscale += grad.reshape(dscale.shape)
    if dsrc is not None:
        _check(op, "dsrc", dsrc)
        dsrc += (d * sv).reshape(dsrc.shape)


def sam(src, x, out):
    """out = src * x elementwise (equal sizes); returns out."""
    _checks.sam("sam", src, x, out)
    np.multiply(src.reshape(out.shape), x.reshape(out.shape), out=out)
    return out


def sam_backward(delta, src, x, dx, dsrc):
    """dx += delta * src; dsrc += delta * x (either may be None)."""
    op = "sam_backward"
    _check(op, "delta", delta)
    d = delta.reshape(-1)
    if dx is not None:
        _check(op, "src", src)
        dx.reshape(-1)[...] += d * src.reshape(-1)
    if dsrc is not None:
        _check(op, "x", x)
        dsrc.reshape(-1)[...] += d * x.reshape(-1)


# -- pooling / resampling --------------------------------------------------------------------
def maxpool(x, out, size, stride_y, stride_x, pad):
    """Darknet maxpool of x[N,C,H,W] into out[N,C,OH,OW] (OH/OW from ``out``); returns out.

    Window of output (oy, ox): rows oy*stride_y - pad/2 + [0, size), columns
    ox*stride_x - pad/2 + [0, size) (C integer division: -(pad // 2)); max over the cells
    inside the image (-FLT_MAX if none).
    """
    args = _checks.pool("maxpool", x, out, size, stride_y, stride_x, pad)
    if out.size:
        _cpu.maxpool(x, out, *args)
    return out


def local_avgpool(x, out, size, stride_y, stride_x, pad):
    """Darknet local_avgpool: maxpool's windows, averaged over the in-image cells only
    (0 where a window has none); returns out."""
    args = _checks.pool("local_avgpool", x, out, size, stride_y, stride_x, pad)
    if out.size:
        _cpu.local_avgpool(x, out, *args)
    return out


def global_avgpool(x, out):
    """out[N,C,1,1] = mean of x[N,C,H,W] over H*W; returns out."""
    op = "global_avgpool"
    n, c, h, w = _checks.global_avgpool(op, x, out)
    _check_size(op, n * c)
    if out.size:
        if h * w == 0:
            raise ValueError(f"{op}: x has no pixels (shape {x.shape})")
        _cpu.global_avgpool(x, out, n * c, h * w)
    return out


def upsample(x, out, stride, scale, accumulate=False):
    """Nearest-neighbour upsample: out[n,c,y,x] (= or +=) scale * x[n,c,y//stride,x//stride]
    for x[N,C,H,W], out[N,C,H*stride,W*stride]; returns out."""
    op = "upsample"
    nc, stride = _checks.resample(op, x, out, "x", "out", stride)
    n, c, h, w = x.shape
    check_shape(op, "out", out, (n, c, h * stride, w * stride))
    if out.size:
        dst = np.empty_like(out) if accumulate else out
        _cpu.upsample(x, dst, nc, h, w, stride, float(scale))
        if accumulate:
            out += dst
    return out


def downsample_sum(x, out, stride, scale, accumulate=False):
    """Darknet's upsample with negative stride: out[N,C,OH,OW] (= or +=) the sum of
    scale * x[n,c,y,x] over y//stride, x//stride, for y < OH*stride, x < OW*stride, where
    OH = H // stride, OW = W // stride; returns out."""
    op = "downsample_sum"
    nc, stride = _checks.resample(op, out, x, "out", "x", stride)
    n, c, h, w = x.shape
    check_shape(op, "out", out, (n, c, h // stride, w // stride))
    if out.size:
        dst = np.empty_like(out) if accumulate else out
        _cpu.downsample_sum(x, dst, nc, h, w, out.shape[2], out.shape[3], stride, float(scale))
        if accumulate:
            out += dst
    return out


# -- training (backward) ----------------------------------------------------------------------
def conv2d_backward(x, w, delta, dx, dw, stride_y, stride_x, pad_y, pad_x, dilation, groups):
    """Backward of :func:`conv2d` (same geometry), accumulating: per image and group
    ``dw += delta (x) im2col(x)``, and unless ``dx`` is None ``dx += col2im(w^T delta)``.

    x[N,C,H,W], w and dw[F,C//groups,kh,kw], delta[N,F,OH,OW] (OH/OW taken from delta),
    dx None or [N,C,H,W]. Returns ``dw``.
    """
    op = "conv2d_backward"
    n, c, h, wd, f, cg, kh, kw, sy, sx, py, px, dil, g = _checks.conv_backward(
        op, x, w, delta, dx, dw, stride_y, stride_x, pad_y, pad_x, dilation, groups)
    oh, ow = delta.shape[2], delta.shape[3]
    if delta.size == 0 or x.size == 0 or w.size == 0:
        return dw
    _cpu.conv2d_backward(x, w, delta, dx, dw, n, c, h, wd, f, kh, kw, oh, ow, sy, sx, py, px,
                         dil, g)
    return dw


def gradient(delta, y, code, x=None):
    """delta *= f'(.) in place with Darknet's gradient of activation ``code``; returns delta.

    f' is evaluated at the activated output ``y`` (Darknet's ``gradient_array``), except
    swish (y and the pre-activation ``x``), mish and hard_mish (``x`` only). The
    normalize_channels* gradients work per pixel across the channels of [N, C, ...].
    """
    op = "gradient"
    a, x = _checks.gradient(op, delta, y, code, x)
    if delta.size == 0 or a == LINEAR:
        return delta
    if a in CHANNEL_CODES:
        n, c = delta.shape[0], delta.shape[1]
        spatial = delta.size // (n * c)
    else:
        n, c, spatial = 1, 1, delta.size
    _check_size(op, n, c)
    _cpu.gradient(delta, y, x, n, c, spatial, a)
    return delta


def maxpool_train(x, out, indexes, size, stride_y, stride_x, pad):
    """:func:`maxpool` that also writes ``indexes`` (int32, shaped like out): the flat index
    into x (over the whole batch) of each window's first maximum (Darknet's l.indexes;
    -1 for a window with no cell inside the image); returns out."""
    op = "maxpool_train"
    args = _checks.pool(op, x, out, size, stride_y, stride_x, pad)
    _checks.int32(op, "indexes", indexes, out.shape)
    _writable(op, "indexes", indexes)
    _check_size(op, x.size)
    if out.size:
        _cpu.maxpool_train(x, out, indexes, *args)
    return out


def maxpool_backward(delta, indexes, dx):
    """dx.flat[indexes] += delta (repeated indexes add up; indexes outside dx, such as -1,
    are skipped); returns dx."""
    _checks.maxpool_backward("maxpool_backward", delta, indexes, dx)
    if delta.size == 0 or dx.size == 0:
        return dx
    if delta.ndim >= 2 and dx.ndim >= 2 and delta.shape[:2] == dx.shape[:2]:
        planes = delta.shape[0] * delta.shape[1]   # argmaxes stay in their (image, channel)
    else:
        planes = 1
    _cpu.maxpool_backward(delta, indexes, dx, planes, delta.size // planes, dx.size // planes)
    return dx


def local_avgpool_backward(delta, dx, size, stride_y, stride_x, pad):
    """Backward of :func:`local_avgpool`, accumulating: each output's delta divided by the
    number of its window's in-image cells is added to those cells of dx; returns dx."""
    args = _checks.pool_backward("local_avgpool_backward", delta, dx, size, stride_y, stride_x,
                                 pad)
    if delta.size and dx.size:
        _cpu.local_avgpool_backward(delta, dx, *args)
    return dx


def batchnorm_train(x, scales, biases, rolling_mean, rolling_variance, mean, variance,
                    x_saved, x_norm, keep):
    """Darknet's training batch norm on x[N,C,...] in place; returns x.

    Per channel, in Darknet's float32 summation order (batch outer, spatial inner):
    mean, variance (1/(M-1), M = N*spatial) into ``mean``/``variance``; rolling =
    keep*rolling + (1-keep)*batch statistic (Darknet: 0.9 for conv/batchnorm, 0.95 for
    connected; 1-keep is computed in double from the Python float ``keep``, so 0.9 gives
    Darknet's .1f); ``x_saved`` = the input; ``x_norm`` = (x - mean)/sqrt(variance + 1e-5);
    x = x_norm*scales + biases.
    """
    op = "batchnorm_train"
    n, c, spatial = _checks.per_channel(op, x, (
        ("scales", scales), ("biases", biases), ("rolling_mean", rolling_mean),
        ("rolling_variance", rolling_variance), ("mean", mean), ("variance", variance)))
    _writable(op, "x", x)
    for argname, a in (("rolling_mean", rolling_mean), ("rolling_variance", rolling_variance),
                       ("mean", mean), ("variance", variance)):
        _writable(op, argname, a)
    _checks.like_x(op, x, (("x_saved", x_saved), ("x_norm", x_norm)))
    _writable(op, "x_saved", x_saved)
    _writable(op, "x_norm", x_norm)
    _distinct(op, "x_saved", x_saved, (("x", x), ("x_norm", x_norm)))
    _distinct(op, "x_norm", x_norm, (("x", x),))
    keep = fraction(op, "keep", keep)
    _check_size(op, n * spatial)
    if x.size:
        _cpu.batchnorm_train(x, scales, biases, rolling_mean, rolling_variance, mean, variance,
                             x_saved, x_norm, keep, 1.0 - keep, n, c, spatial)
    return x


def batchnorm_backward(delta, x_saved, x_norm, mean, variance, scales, bias_grad, scale_grad):
    """Darknet's batch-norm backward (the -gpusem order) on delta[N,C,...] in place; returns
    delta.

    bias_grad += per-channel sum of delta; scale_grad += sum(delta*x_norm); delta *= scales;
    then delta = delta/sqrt(var+eps) + variance_delta*2*(x-mean)/M + mean_delta/M with
    mean_delta = -sum(delta)/sqrt(var+eps), variance_delta = sum(delta*(x-mean)) * -0.5 *
    (var+eps)^-1.5, x = x_saved, eps = 1e-5, M = N*spatial (Darknet's sums and float/double
    mix, eps inside the root).
    """
    op = "batchnorm_backward"
    n, c, spatial = _checks.per_channel(op, delta, (
        ("mean", mean), ("variance", variance), ("scales", scales), ("bias_grad", bias_grad),
        ("scale_grad", scale_grad)), xname="delta")
    _writable(op, "delta", delta)
    _writable(op, "bias_grad", bias_grad)
    _writable(op, "scale_grad", scale_grad)
    _checks.like_x(op, delta, (("x_saved", x_saved), ("x_norm", x_norm)))
    _distinct(op, "delta", delta, (("x_saved", x_saved), ("x_norm", x_norm)))
    _check_size(op, n * spatial)
    if delta.size:
        _cpu.batchnorm_backward(delta, x_saved, x_norm, mean, variance, scales, bias_grad,
                                scale_grad, n, c, spatial)
    return delta


def backward_bias(bias_grad, delta):
    """bias_grad[c] += the sum of delta[N, C, ...] over images and pixels (in double);
    returns bias_grad."""
    op = "backward_bias"
    n, c, _ = _checks.per_channel(op, delta, (("bias_grad", bias_grad),), xname="delta")
    _writable(op, "bias_grad", bias_grad)
    if delta.size:
        sums = delta.reshape(n, c, -1).sum(axis=(0, 2), dtype=np.float64)
        bias_grad += sums.astype(F32).reshape(bias_grad.shape)
    return bias_grad


def global_avgpool_backward(delta, dx):
    """dx[N,C,H,W] += delta[N,C,1,1] / (H*W); returns dx."""
    n, c, h, w = _checks.global_avgpool_backward("global_avgpool_backward", delta, dx)
    dx.reshape(n, c, -1)[...] += delta.reshape(n, c, 1) / F32.type(h * w)
    return dx


def sgd_update(p, u, g, step, neg_decay_b, momentum, decayed):
    """Darknet's SGD step in float32: u += g; u += neg_decay_b*p (when decayed);
    p += step*u; u *= momentum. Returns p."""
    _checks.like_x("sgd_update", p, (("p", p), ("u", u), ("g", g)))
    u += g
    if decayed:
        u += F32.type(neg_decay_b) * p
    p += F32.type(step) * u
    u *= F32.type(momentum)
    return p


# -- threads ---------------------------------------------------------------------------------
def set_num_threads(n):
    """Threads for the C core's OpenMP loops and, when threadpoolctl is installed, for BLAS."""
    n = int_arg("set_num_threads", "n", n, 1)
    _cpu.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(n, user_api="blas")


def get_num_threads():
    """Threads the C core's OpenMP loops use."""
    return _cpu.get_num_threads()
