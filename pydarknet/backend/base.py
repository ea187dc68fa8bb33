"""The backend base class: every op's argument checks, once, in front of the backends.

A backend is an object (:func:`pydarknet.backend.get_backend` hands out one per device). Its
public op methods (``OP_NAMES``) check their arguments here and raise ``ValueError`` naming the
op, the argument and what was expected vs found; then they call the backend's unchecked kernel
method ``_<op>`` with the checked values (and the geometry the checks worked out). A backend
subclass implements the kernels and says what one of its arrays is:

    _check_kind(op, argname, a, dtype)           an array of this backend (dtype, layout and
                                                 rank are checked here, with CONTIGUOUS_HINT)
    _check_any(op, argname, a) -> dtype          a float32 or int32 array of the backend
    _is_device(a) -> bool                        a device array (not a host numpy array)
    _address(a) -> int                           where its memory starts (in-place detection)
    _shares_memory(a, b) -> bool
    _is_writable(a) -> bool

and, as class attributes, ``SIZE_TARGET`` (what the C-int limit is for, in messages) and
``TOTALS`` (whether whole-array sizes must fit a C int too).
"""

import numpy as np

from . import OP_NAMES
from .checks import (CHANNEL_CODES, F32, I32, LINEAR, Checks, activation_code, check_rank,
                     check_shape, fraction, int_arg)


def channel_geometry(a, code):
    """(N, C, spatial) the activation kernels see: per pixel across C for the cross-channel
    activations, else the whole array as one run."""
    if code in CHANNEL_CODES:
        n, c = a.shape[0], a.shape[1]
        return n, c, (a.size // (n * c) if n * c else 0)
    return 1, 1, a.size


class Backend:
    name = None
    HOST_ARRAYS = False
    SIZE_TARGET = "the kernels"
    TOTALS = True

    def __init__(self):
        self._checks = Checks(self._check_array, self._written, self.SIZE_TARGET, self.TOTALS)

    def __repr__(self):
        return f"<pydarknet {self.name} backend>"

    # -- check helpers ---------------------------------------------------------------------
    CONTIGUOUS_HINT = ""       # how to get a C-contiguous array of this backend

    def _check_array(self, op, argname, a, ndim=None, min_ndim=None, dtype=F32):
        """Array kind (the backend's ``_check_kind``), dtype, layout and rank."""
        self._check_kind(op, argname, a, dtype)
        if a.dtype != dtype:
            raise ValueError(f"{op}: {argname} must be {dtype.name}, got {a.dtype}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{op}: {argname} must be C-contiguous ({self.CONTIGUOUS_HINT})")
        check_rank(op, argname, a, ndim, min_ndim)

    def _writable(self, op, argname, a):
        if a.size > 0 and not self._is_writable(a):
            raise ValueError(f"{op}: {argname} is read-only")

    def _distinct(self, op, out_name, out, named):
        """The array ``out`` is written: it must not share memory with the arrays it reads."""
        for argname, a in named:
            if a is not None and out.size and a.size and self._shares_memory(out, a):
                raise ValueError(f"{op}: {out_name} must not share memory with {argname}")

    def _written(self, op, argname, a, reads):
        self._writable(op, argname, a)
        self._distinct(op, argname, a, reads)

    def _same(self, a, b):
        return a.size == b.size and (a.size == 0 or self._address(a) == self._address(b))

    def _dtype(self, op, dtype):
        dtype = np.dtype(dtype)
        if dtype not in (F32, I32):
            raise ValueError(f"{op}: dtype must be float32 or int32, got {dtype}")
        return dtype

    @staticmethod
    def _shape(op, shape):
        try:
            shape = tuple(int(d) for d in (shape if isinstance(shape, (tuple, list))
                                           else (shape,)))
        except (TypeError, ValueError):
            raise ValueError(f"{op}: shape must be a tuple of integers, got {shape!r}") from None
        if any(d < 0 for d in shape):
            raise ValueError(f"{op}: negative dimension in shape {shape}")
        return shape

    # -- allocation and transfer -----------------------------------------------------------
    def empty(self, shape, dtype=F32):
        """Uninitialised array of ``shape``: float32, or int32 (max-pool indexes)."""
        return self._empty(self._shape("empty", shape), self._dtype("empty", dtype))

    def zeros(self, shape, dtype=F32):
        """Zero-filled array of ``shape`` (float32, or int32)."""
        return self._zeros(self._shape("zeros", shape), self._dtype("zeros", dtype))

    def to_numpy(self, a):
        """The array as numpy (CPU: the same array, no copy; a device: a host copy)."""
        if isinstance(a, np.ndarray):
            return a
        self._check_any("to_numpy", "a", a)
        return self._to_numpy(a)

    def from_numpy(self, a):
        """A float32 C-contiguous backend array with a's values."""
        return self._from_numpy(np.ascontiguousarray(a, dtype=F32))

    def copy_from_numpy(self, dst, src):
        """dst = src, a host array of dst's size (any shape; converted to dst's dtype when the
        conversion is safe in kind); returns dst. Nothing to do when src is dst; a device
        array ``src`` is copied on the device."""
        op = "copy_from_numpy"
        dt = self._check_any(op, "dst", dst)
        if self._is_device(src):
            if src.size == dst.size and self._same(src, dst):
                return dst
            return self.copy(dst, src)
        src = np.asarray(src)
        if src.size != dst.size:
            raise ValueError(f"{op}: src has {src.size} values, dst {dst.size} "
                             f"(shapes {src.shape} and {dst.shape})")
        try:
            h = np.ascontiguousarray(src.astype(dt, casting="same_kind", copy=False))
        except TypeError:
            raise ValueError(f"{op}: cannot copy {src.dtype} values into a {dt} array") from None
        return self._copy_from_numpy(dst, h)

    def copy(self, dst, src):
        """dst = src for arrays of equal size and dtype (shapes may differ); returns dst."""
        op = "copy"
        dt = self._check_any(op, "dst", dst)
        self._check_array(op, "src", src, dtype=dt)
        if src.size != dst.size:
            raise ValueError(f"{op}: src has {src.size} values, dst {dst.size}")
        if dst.size == 0 or self._same(src, dst):
            return dst
        if self._shares_memory(dst, src):
            raise ValueError(f"{op}: dst and src overlap")
        self._writable(op, "dst", dst)
        return self._copy(dst, src)

    def fill(self, a, value):
        """a[...] = value (float32 or int32 array); returns a."""
        op = "fill"
        dt = self._check_any(op, "a", a)
        try:
            np.array(value, dtype=dt)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{op}: value {value!r} does not fit a {dt} array") from None
        self._writable(op, "a", a)
        return self._fill(a, value, dt) if a.size else a

    def axpy(self, alpha, x, y):
        """y += alpha * x for float32 arrays of equal size; returns y."""
        op = "axpy"
        self._check_array(op, "x", x)
        self._check_array(op, "y", y)
        if x.size != y.size:
            raise ValueError(f"{op}: x has {x.size} values, y {y.size}")
        self._writable(op, "y", y)
        self._checks.totals_fit(op, y.size)
        return self._axpy(alpha, x, y) if y.size else y

    def all_finite(self, a):
        """True when a holds no NaN and no inf (waits for a device)."""
        op = "all_finite"
        dt = self._check_any(op, "a", a)
        if dt == I32 or a.size == 0:
            return True
        self._checks.totals_fit(op, a.size)
        return self._all_finite(a)

    def synchronize(self):
        """Wait until queued device work is done (CPU: nothing)."""
        return self._synchronize()

    # -- convolution / products ------------------------------------------------------------
    def conv2d(self, x, w, out, stride_y, stride_x, pad_y, pad_x, dilation, groups):
        """Darknet's im2col convolution into ``out`` (written in full); returns ``out``.

        x[N,C,H,W], w[F,C//groups,kh,kw], out[N,F,OH,OW]; OH/OW are taken from ``out``.
        """
        op = "conv2d"
        geo = self._checks.conv(op, x, w, "out", out, stride_y, stride_x, pad_y, pad_x,
                                dilation, groups)
        self._written(op, "out", out, (("x", x), ("w", w)))
        if out.size == 0:
            return out
        return self._conv2d(x, w, out, geo)

    def gemm(self, trans_a, trans_b, alpha, a, b, beta, c):
        """c = alpha * op(a) @ op(b) + beta * c (2-D, row-major); returns ``c``."""
        op = "gemm"
        ta, tb, m, n, k = self._checks.gemm(op, trans_a, trans_b, a, b, c)
        self._written(op, "c", c, (("a", a), ("b", b)))
        if c.size == 0:
            return c
        return self._gemm(ta, tb, m, n, k, float(alpha), a, b, float(beta), c)

    # -- element-wise / per channel (in place) ---------------------------------------------
    def _activation_x(self, op, x, a, xname="x"):
        """x checked for activation ``a``; returns its (N, C, spatial)."""
        if a in CHANNEL_CODES:
            return self._checks.per_channel(op, x, (), xname=xname)
        self._check_array(op, xname, x)
        self._checks.totals_fit(op, x.size)
        return 1, 1, x.size

    def activate(self, x, code):
        """Darknet activation ``code`` (int code or name) on x in place; returns x.
        The normalize_channels* activations work per pixel across channels of x[N, C, ...]."""
        op = "activate"
        a = activation_code(code)
        n, c, spatial = self._activation_x(op, x, a)
        if x.size == 0 or a == LINEAR:
            return x
        self._writable(op, "x", x)
        return self._activate(x, a, n, c, spatial)

    def activate_copy(self, x, y, code):
        """y = f(x) with Darknet's activation ``code``; x is left as it was; returns y."""
        op = "activate_copy"
        a = activation_code(code, op)
        n, c, spatial = self._activation_x(op, x, a)
        self._check_array(op, "y", y)
        check_shape(op, "y", y, x.shape)
        if x.size == 0:
            return y
        self._writable(op, "y", y)
        if self._same(x, y):
            return y if a == LINEAR else self._activate(y, a, n, c, spatial)
        self._distinct(op, "y", y, (("x", x),))
        return self._activate_copy(x, y, a, n, c, spatial)

    def add_bias(self, x, b):
        """x[N,C,...] += b[C] in place; returns x."""
        n, c, spatial = self._checks.per_channel("add_bias", x, (("b", b),))
        return self._add_bias(x, b, n, c, spatial) if x.size else x

    def bias_activate(self, x, b, code):
        """add_bias then activate (fused where the backend can); returns x."""
        op = "bias_activate"
        a = activation_code(code, op)
        n, c, spatial = self._checks.per_channel(op, x, (("b", b),))
        return self._bias_activate(x, b, a, n, c, spatial) if x.size else x

    def _batchnorm_args(self, op, x, scales, mean, variance, biases):
        return self._checks.per_channel(op, x, (
            ("scales", scales), ("mean", mean), ("variance", variance), ("biases", biases)))

    def batchnorm_inference(self, x, scales, mean, variance, biases, eps=1e-5):
        """Darknet's inference batchnorm on x[N,C,...] in place; returns x:
        x = (x - mean) / sqrt(variance + eps), then x *= scales, then x += biases."""
        n, c, spatial = self._batchnorm_args("batchnorm_inference", x, scales, mean, variance,
                                             biases)
        if x.size == 0:
            return x
        return self._batchnorm_inference(x, scales, mean, variance, biases, float(eps), n, c,
                                         spatial)

    def batchnorm_activate_inference(self, x, scales, mean, variance, biases, code, eps=1e-5):
        """batchnorm_inference then activate (fused where the backend can); returns x."""
        op = "batchnorm_activate_inference"
        a = activation_code(code, op)
        n, c, spatial = self._batchnorm_args(op, x, scales, mean, variance, biases)
        if x.size == 0:
            return x
        return self._batchnorm_activate_inference(x, scales, mean, variance, biases, a,
                                                  float(eps), n, c, spatial)

    def conv2d_activate_inference(self, x, w, out, stride_y, stride_x, pad_y, pad_x, dilation,
                                  groups, biases, code, scales=None, mean=None, variance=None,
                                  eps=1e-5):
        """A convolutional layer's inference in one op, which a backend may fuse (the CPU's
        oneDNN path runs the batch norm and activation inside the convolution): conv2d, then
        batchnorm_activate_inference when ``scales`` (and ``mean``, ``variance``) are given,
        else bias_activate. Returns ``out``."""
        op = "conv2d_activate_inference"
        a = activation_code(code, op)
        geo = self._checks.conv(op, x, w, "out", out, stride_y, stride_x, pad_y, pad_x,
                                dilation, groups)
        self._written(op, "out", out, (("x", x), ("w", w)))
        if scales is None:
            n, c, spatial = self._checks.per_channel(op, out, (("biases", biases),))
        else:
            n, c, spatial = self._batchnorm_args(op, out, scales, mean, variance, biases)
        if out.size == 0:
            return out
        return self._conv2d_activate_inference(x, w, out, geo, biases, a, scales, mean,
                                               variance, float(eps), n, c, spatial)

    def _conv2d_activate_inference(self, x, w, out, geo, biases, a, scales, mean, variance,
                                   eps, n, c, spatial):
        # unfused: the backend's own three kernels
        self._conv2d(x, w, out, geo)
        if scales is None:
            return self._bias_activate(out, biases, a, n, c, spatial)
        return self._batchnorm_activate_inference(out, scales, mean, variance, biases, a, eps,
                                                  n, c, spatial)

    # -- copies between layers' outputs ----------------------------------------------------
    def copy_rows(self, src, dst, count, src_offset, dst_offset, accumulate=False):
        """Per image n: dst[n, dst_offset:+count] (= or +=) src[n, src_offset:+count], both
        seen as [N, values per image]; returns dst."""
        op = "copy_rows"
        n, s_per, d_per, count, so, do = self._checks.copy_rows(op, src, dst, count,
                                                                src_offset, dst_offset)
        if not (n and count):
            return dst
        if self._same(src, dst) and abs(so - do) < count:
            raise ValueError(f"{op}: the source and destination ranges overlap")
        self._writable(op, "dst", dst)
        return self._copy_rows(src, dst, n, s_per, d_per, count, so, do, bool(accumulate))

    def shortcut_add(self, out, add, m, spatial, weights=None, accumulate=True):
        """Per image: out[n, :m] (+= or =) add[n, :m] * w, with w = 1 (weights None),
        weights[0] (a single weight) or weights[i // spatial] (one per channel); ``weights``
        is a host numpy vector (or a float32 backend array); returns out."""
        op = "shortcut_add"
        n, o_per, a_per, m, spatial = self._checks.shortcut(op, out, add, m, spatial)
        if weights is not None:
            if self._is_device(weights):
                self._check_array(op, "weights", weights)
            else:
                weights = np.ascontiguousarray(np.asarray(weights, F32).ravel())
            if weights.size == 0:
                raise ValueError(f"{op}: weights is empty")
            if weights.size > 1:
                if m % spatial:
                    raise ValueError(f"{op}: m={m} is not a whole number of channels of "
                                     f"{spatial} values (per-channel weights)")
                if weights.size < m // spatial:
                    raise ValueError(f"{op}: {m // spatial} channels need {m // spatial} "
                                     f"weights, got {weights.size}")
        if not (n and m):
            return out
        self._writable(op, "out", out)
        return self._shortcut_add(out, add, n, o_per, a_per, m, spatial, weights,
                                  bool(accumulate))

    # -- layer-specific forward ops --------------------------------------------------------
    def yolo_activate(self, x, out, anchors, entries, scale_x_y, new_coords):
        """[yolo]'s activation of x[N, anchors*entries, H, W] into out (may be x); returns
        out."""
        op = "yolo_activate"
        anchors, entries = self._checks.yolo(op, x, out, anchors, entries)
        n = x.shape[0]
        self._checks.totals_fit(op, x.size)
        if n == 0 or x.size == 0:
            return out
        if x.size % (n * anchors * entries):
            raise ValueError(f"{op}: x of shape {x.shape} is not [N, {anchors}*{entries}, H, W]")
        if not self._same(x, out):
            self._written(op, "out", out, (("x", x),))
        return self._yolo_activate(x, out, n, anchors, entries, scale_x_y,
                                   bool(new_coords))

    def softmax(self, x, out, groups, temperature):
        """Per image, Darknet's softmax over each of ``groups`` equal runs of x; returns out."""
        op = "softmax"
        groups, n, per = self._checks.softmax(op, x, out, groups)
        self._checks.size(op, n * groups)
        self._checks.totals_fit(op, x.size)
        t = float(temperature)
        if t == 0:
            raise ValueError(f"{op}: temperature must not be 0")
        if x.size == 0:
            return out
        if not self._same(x, out):
            self._written(op, "out", out, (("x", x),))
        return self._softmax(x, out, groups, n, per, t)

    def scale_channels(self, src, scale, out, scale_wh):
        """out = src[N,C,H,W] * scale, one scale per (image, channel), or per (image, pixel)
        with scale_wh; returns out."""
        op = "scale_channels"
        n, c, spatial = self._checks.scale(op, src, scale, scale_wh)
        self._checks.holds(op, "out", out, src.size)
        if src.size == 0:
            return out
        self._writable(op, "out", out)
        return self._scale_channels(src, scale, out, n, c, spatial, bool(scale_wh))

    def scale_channels_backward(self, delta, src, scale, dsrc, dscale, scale_wh):
        """dsrc += delta * scale; dscale += sum(delta * src) over pixels (over channels with
        scale_wh); either output may be None."""
        op = "scale_channels_backward"
        n, c, spatial = self._checks.scale(op, src, scale, scale_wh)
        self._checks.holds(op, "delta", delta, src.size)
        if dscale is not None:
            self._checks.holds(op, "dscale", dscale, scale.size)
            self._written(op, "dscale", dscale, (("delta", delta), ("src", src)))
        if dsrc is not None:
            self._checks.holds(op, "dsrc", dsrc, src.size)
            self._written(op, "dsrc", dsrc, (("scale", scale),))
        if src.size and (dsrc is not None or dscale is not None):
            self._scale_channels_backward(delta, src, scale, dsrc, dscale, n, c, spatial,
                                          bool(scale_wh))

    def sam(self, src, x, out):
        """out = src * x elementwise (equal sizes); returns out."""
        self._checks.sam("sam", src, x, out)
        if src.size == 0:
            return out
        self._writable("sam", "out", out)
        return self._sam(src, x, out)

    def sam_backward(self, delta, src, x, dx, dsrc):
        """dx += delta * src; dsrc += delta * x (either may be None; they may be one array)."""
        op = "sam_backward"
        self._check_array(op, "delta", delta)
        n = delta.size
        self._checks.totals_fit(op, n)
        named = [("src", src), ("dx", dx)] if dx is not None else []
        if dsrc is not None:
            named += [("x", x), ("dsrc", dsrc)]
        for argname, a in named:
            self._check_array(op, argname, a)
            if a.size != n:
                raise ValueError(f"{op}: {argname} must hold {n} values, got {a.size}")
        for argname, a in (("dx", dx), ("dsrc", dsrc)):
            if a is not None:
                self._writable(op, argname, a)
        if n and (dx is not None or dsrc is not None):
            self._sam_backward(delta, src, x, dx, dsrc, n)

    # -- pooling / resampling --------------------------------------------------------------
    def _pool_args(self, op, x, out, size, stride_y, stride_x, pad):
        args = self._checks.pool(op, x, out, size, stride_y, stride_x, pad)
        self._written(op, "out", out, (("x", x),))
        return args

    def maxpool(self, x, out, size, stride_y, stride_x, pad):
        """Darknet maxpool of x[N,C,H,W] into out[N,C,OH,OW] (OH/OW from ``out``): window of
        output (oy, ox) from rows oy*stride_y - pad//2, columns ox*stride_x - pad//2, of
        ``size``; max over the cells inside the image (-FLT_MAX if none); returns out."""
        args = self._pool_args("maxpool", x, out, size, stride_y, stride_x, pad)
        return self._maxpool(x, out, args) if out.size else out

    def local_avgpool(self, x, out, size, stride_y, stride_x, pad):
        """Darknet local_avgpool: maxpool's windows, averaged over the in-image cells only
        (0 where a window has none); returns out."""
        args = self._pool_args("local_avgpool", x, out, size, stride_y, stride_x, pad)
        return self._local_avgpool(x, out, args) if out.size else out

    def global_avgpool(self, x, out):
        """out[N,C,1,1] = mean of x[N,C,H,W] over H*W; returns out."""
        op = "global_avgpool"
        n, c, h, w = self._checks.global_avgpool(op, x, out)
        self._checks.size(op, n * c)
        self._checks.totals_fit(op, n * c * 32, x.size)   # 32 device threads per plane
        if out.size == 0:
            return out
        if h * w == 0:
            raise ValueError(f"{op}: x has no pixels (shape {x.shape})")
        self._written(op, "out", out, (("x", x),))
        return self._global_avgpool(x, out, n * c, h * w)

    def _resample_args(self, op, small, big, small_name, big_name, stride):
        nc, stride = self._checks.resample(op, small, big, small_name, big_name, stride)
        out, x = (small, big) if small_name == "out" else (big, small)
        self._written(op, "out", out, (("x", x),))
        return nc, stride

    def upsample(self, x, out, stride, scale, accumulate=False):
        """Nearest-neighbour upsample: out[n,c,y,x] (= or +=) scale * x[n,c,y//stride,
        x//stride] for x[N,C,H,W], out[N,C,H*stride,W*stride]; returns out."""
        op = "upsample"
        nc, stride = self._resample_args(op, x, out, "x", "out", stride)
        n, c, h, w = x.shape
        check_shape(op, "out", out, (n, c, h * stride, w * stride))
        if out.size == 0:
            return out
        return self._upsample(x, out, nc, h, w, stride, float(scale), bool(accumulate))

    def downsample_sum(self, x, out, stride, scale, accumulate=False):
        """Darknet's upsample with negative stride: out[N,C,H//s,W//s] (= or +=) scale * the
        sum of each s x s block of x, s = stride; returns out."""
        op = "downsample_sum"
        nc, stride = self._resample_args(op, out, x, "out", "x", stride)
        n, c, h, w = x.shape
        check_shape(op, "out", out, (n, c, h // stride, w // stride))
        if out.size == 0:
            return out
        return self._downsample_sum(x, out, nc, h, w, stride, float(scale), bool(accumulate))

    # -- training (backward) ---------------------------------------------------------------
    def conv2d_backward(self, x, w, delta, dx, dw, stride_y, stride_x, pad_y, pad_x, dilation,
                        groups):
        """Backward of :meth:`conv2d` (same geometry, OH/OW from delta), accumulating:
        ``dw += delta (x) im2col(x)``, and unless ``dx`` is None ``dx += col2im(w^T delta)``.
        Returns ``dw``."""
        op = "conv2d_backward"
        geo = self._checks.conv_backward(op, x, w, delta, dx, dw, stride_y, stride_x, pad_y,
                                         pad_x, dilation, groups)
        if delta.size == 0 or x.size == 0 or w.size == 0:
            return dw
        return self._conv2d_backward(x, w, delta, dx, dw, geo)

    def gradient(self, delta, y, code, x=None):
        """delta *= f'(.) in place with Darknet's gradient of activation ``code`` at the
        activated output ``y``, or at the pre-activation ``x`` for swish, mish and hard_mish;
        per pixel across the channels of [N, C, ...] for normalize_channels*. Returns delta."""
        op = "gradient"
        a, x = self._checks.gradient(op, delta, y, code, x)
        self._checks.totals_fit(op, delta.size)
        if delta.size == 0 or a == LINEAR:
            return delta
        n, c, spatial = channel_geometry(delta, a)
        self._checks.size(op, n, c)
        return self._gradient(delta, y, x, a, n, c, spatial)

    def maxpool_train(self, x, out, indexes, size, stride_y, stride_x, pad):
        """:meth:`maxpool` that also writes ``indexes`` (int32, shaped like out): the flat
        index into x (over the whole batch) of each window's first maximum (Darknet's
        l.indexes; -1 for a window with no cell inside the image); returns out."""
        op = "maxpool_train"
        args = self._pool_args(op, x, out, size, stride_y, stride_x, pad)
        self._checks.int32(op, "indexes", indexes, out.shape)
        self._written(op, "indexes", indexes, (("x", x), ("out", out)))
        self._checks.size(op, x.size)          # the indexes are flat int32 over the batch
        return self._maxpool_train(x, out, indexes, args) if out.size else out

    def maxpool_backward(self, delta, indexes, dx):
        """dx.flat[indexes] += delta (repeated indexes add up; indexes outside dx, such as
        -1, are skipped); returns dx."""
        self._checks.maxpool_backward("maxpool_backward", delta, indexes, dx)
        if delta.size == 0 or dx.size == 0:
            return dx
        return self._maxpool_backward(delta, indexes, dx)

    def local_avgpool_backward(self, delta, dx, size, stride_y, stride_x, pad):
        """Backward of :meth:`local_avgpool`, accumulating: each output's delta divided by
        the number of its window's in-image cells is added to those cells of dx; returns
        dx."""
        args = self._checks.pool_backward("local_avgpool_backward", delta, dx, size, stride_y,
                                          stride_x, pad)
        if delta.size == 0 or dx.size == 0:
            return dx
        return self._local_avgpool_backward(delta, dx, args)

    def batchnorm_train(self, x, scales, biases, rolling_mean, rolling_variance, mean,
                        variance, x_saved, x_norm, keep):
        """Darknet's training batch norm on x[N,C,...] in place; returns x.

        Per channel, in Darknet's summation order: mean, variance (1/(M-1), M = N*spatial)
        into ``mean``/``variance``; rolling = keep*rolling + (1-keep)*batch statistic (1-keep
        computed in double from the Python float ``keep``, so 0.9 gives Darknet's .1f);
        ``x_saved`` = the input; ``x_norm`` = (x - mean)/sqrt(variance + 1e-5);
        x = x_norm*scales + biases.
        """
        op = "batchnorm_train"
        n, c, spatial = self._checks.per_channel(op, x, (
            ("scales", scales), ("biases", biases), ("rolling_mean", rolling_mean),
            ("rolling_variance", rolling_variance), ("mean", mean), ("variance", variance)))
        for argname, a in (("x", x), ("rolling_mean", rolling_mean),
                           ("rolling_variance", rolling_variance), ("mean", mean),
                           ("variance", variance)):
            self._writable(op, argname, a)
        self._checks.like_x(op, x, (("x_saved", x_saved), ("x_norm", x_norm)))
        self._written(op, "x_saved", x_saved, (("x", x), ("x_norm", x_norm)))
        self._written(op, "x_norm", x_norm, (("x", x),))
        keep = fraction(op, "keep", keep)
        self._checks.size(op, n * spatial)
        if x.size == 0:
            return x
        return self._batchnorm_train(x, scales, biases, rolling_mean, rolling_variance, mean,
                                     variance, x_saved, x_norm, keep, n, c, spatial)

    def batchnorm_backward(self, delta, x_saved, x_norm, mean, variance, scales, bias_grad,
                           scale_grad):
        """Darknet's batch-norm backward (the -gpusem order, eps = 1e-5 inside the root) on
        delta[N,C,...] in place; bias_grad and scale_grad accumulated; returns delta."""
        op = "batchnorm_backward"
        n, c, spatial = self._checks.per_channel(op, delta, (
            ("mean", mean), ("variance", variance), ("scales", scales),
            ("bias_grad", bias_grad), ("scale_grad", scale_grad)), xname="delta")
        self._writable(op, "bias_grad", bias_grad)
        self._writable(op, "scale_grad", scale_grad)
        self._checks.like_x(op, delta, (("x_saved", x_saved), ("x_norm", x_norm)))
        self._written(op, "delta", delta, (("x_saved", x_saved), ("x_norm", x_norm)))
        self._checks.size(op, n * spatial)
        if delta.size == 0:
            return delta
        return self._batchnorm_backward(delta, x_saved, x_norm, mean, variance, scales,
                                        bias_grad, scale_grad, n, c, spatial)

    def backward_bias(self, bias_grad, delta):
        """bias_grad[c] += the sum of delta[N, C, ...] over images and pixels (in double);
        returns bias_grad."""
        op = "backward_bias"
        n, c, spatial = self._checks.per_channel(op, delta, (("bias_grad", bias_grad),),
                                                 xname="delta")
        self._writable(op, "bias_grad", bias_grad)
        return self._backward_bias(bias_grad, delta, n, c, spatial) if delta.size else bias_grad

    def global_avgpool_backward(self, delta, dx):
        """dx[N,C,H,W] += delta[N,C,1,1] / (H*W); returns dx."""
        op = "global_avgpool_backward"
        n, c, h, w = self._checks.global_avgpool_backward(op, delta, dx)
        self._written(op, "dx", dx, (("delta", delta),))
        self._checks.totals_fit(op, dx.size)
        return self._global_avgpool_backward(delta, dx, n * c, h * w) if dx.size else dx

    def sgd_update(self, p, u, g, step, neg_decay_b, momentum, decayed):
        """Darknet's SGD step in float32: u += g; u += neg_decay_b*p (when decayed);
        p += step*u; u *= momentum. Returns p."""
        op = "sgd_update"
        self._checks.like_x(op, p, (("p", p), ("u", u), ("g", g)))
        self._written(op, "p", p, (("u", u), ("g", g)))
        self._written(op, "u", u, (("g", g),))
        self._checks.totals_fit(op, p.size)
        if p.size == 0:
            return p
        return self._sgd_update(p, u, g, F32.type(step), F32.type(neg_decay_b),
                                F32.type(momentum), bool(decayed))

    # -- threads ---------------------------------------------------------------------------
    def set_num_threads(self, n):
        """Host threads for the backend's parallel loops (where it has any)."""
        self._set_num_threads(int_arg("set_num_threads", "n", n, 1))

    def get_num_threads(self):
        return self._get_num_threads()


# Every op of the API is a checked method here; the subclasses implement the ``_<op>`` kernels.
assert all(callable(getattr(Backend, op, None)) for op in OP_NAMES)
