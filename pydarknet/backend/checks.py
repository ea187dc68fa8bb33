"""The argument checks of the backend base class (:mod:`.base`).

Each op checks its arguments before any work and raises ``ValueError`` naming the op, the
argument and what was expected vs found. What is the same on both backends lives here:
geometry (convolution, pooling, resampling, per-channel vectors, rows of images) and the
integer, shape and activation-code checks, which look only at ``shape``, ``size``, ``ndim``
and values. What an array must be (numpy or device array, dtype, layout, writeable) stays with
its backend, which hands its checks to :class:`Checks`.
"""

import numpy as np

from . import ACTIVATION_CODE, ACTIVATIONS

F32 = np.dtype(np.float32)
I32 = np.dtype(np.int32)
INT_MAX = 2**31 - 1              # the kernels take their dimensions as C ints

# Cross-channel activations: need x as (N, C, ...) and work per pixel across C.
CHANNEL_CODES = frozenset(ACTIVATION_CODE[n] for n in (
    "normalize_channels", "normalize_channels_softmax", "normalize_channels_softmax_maxval"))
# Activations whose gradient Darknet computes from the pre-activation x.
NEEDS_X = frozenset(ACTIVATION_CODE[n] for n in ("swish", "mish", "hard_mish"))
LINEAR = ACTIVATION_CODE["linear"]


def check_rank(op, argname, a, ndim=None, min_ndim=None):
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{op}: {argname} must be {ndim}-D, got shape {a.shape}")
    if min_ndim is not None and a.ndim < min_ndim:
        raise ValueError(f"{op}: {argname} must have at least {min_ndim} dimensions "
                         f"(N, C, ...), got shape {a.shape}")


def check_shape(op, argname, a, expected):
    if tuple(a.shape) != tuple(expected):
        raise ValueError(f"{op}: {argname} must have shape {tuple(expected)}, got {tuple(a.shape)}")


def int_arg(op, argname, v, minimum):
    """``v`` as an int, which it must be equal to and at least ``minimum``."""
    try:
        iv = int(v)
    except (TypeError, ValueError):
        raise ValueError(f"{op}: {argname} must be an integer, got {v!r}") from None
    if iv != v or iv < minimum:
        raise ValueError(f"{op}: {argname} must be an integer >= {minimum}, got {v!r}")
    return iv


def fraction(op, argname, v):
    """``v`` as a float in [0, 1]."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{op}: {argname} must be a number, got {v!r}") from None
    if not 0.0 <= f <= 1.0:
        raise ValueError(f"{op}: {argname} must be in [0, 1], got {f!r}")
    return f


def activation_code(code, op="activate"):
    """The int code of an activation given by name or code."""
    if isinstance(code, str):
        try:
            return ACTIVATION_CODE[code]
        except KeyError:
            raise ValueError(f"{op}: unknown activation {code!r}; expected one of "
                             f"{', '.join(ACTIVATIONS)}") from None
    try:
        c = int(code)
    except (TypeError, ValueError):
        raise ValueError(f"{op}: activation must be a name or an int code, got {code!r}") from None
    if c != code or not 0 <= c < len(ACTIVATIONS):
        raise ValueError(f"{op}: activation code must be in 0..{len(ACTIVATIONS) - 1}, "
                         f"got {code!r}")
    return c


def pool_window(op, size, stride_y, stride_x, pad):
    """A pooling window's checked (size, stride_y, stride_x, pad)."""
    return (int_arg(op, "size", size, 1), int_arg(op, "stride_y", stride_y, 1),
            int_arg(op, "stride_x", stride_x, 1), int_arg(op, "pad", pad, 0))


class Checks:
    """The shared checks, bound to one backend's own:

    ``check(op, argname, a, ndim=None, min_ndim=None, dtype=F32)`` checks that ``a`` is an
    array of the backend with that dtype and layout (and rank, through :func:`check_rank`);
    ``written(op, argname, a, reads)`` checks an array the op writes (not sharing memory with
    the ``(name, array)`` pairs it reads, ...). ``target`` names what the C-int limit is for in
    messages. With ``totals`` whole-array sizes must fit in a C int too (the CUDA kernels index
    whole arrays with one).
    """

    def __init__(self, check, written, target, totals):
        self.check = check
        self.written = written
        self.target = target
        self.totals = totals

    def size(self, op, *dims):
        for d in dims:
            if d > INT_MAX:
                raise ValueError(f"{op}: dimension {d} is too large for {self.target} "
                                 f"(max {INT_MAX})")

    def totals_fit(self, op, *totals):
        """Whole-array (or whole-launch) sizes: they must fit a C int where ``totals`` is on."""
        if self.totals:
            self.size(op, *totals)

    def _sizes(self, op, dims, totals):
        self.size(op, *dims, *(totals if self.totals else ()))

    def int32(self, op, argname, a, shape):
        """An int32 array of ``shape`` (max-pool indexes)."""
        self.check(op, argname, a, dtype=I32)
        check_shape(op, argname, a, shape)

    def like_x(self, op, x, named):
        """Each ``(name, array)`` of ``named`` an array shaped like ``x``."""
        for argname, a in named:
            self.check(op, argname, a)
            check_shape(op, argname, a, x.shape)

    # -- convolution / products
    def conv(self, op, x, w, out_name, out, stride_y, stride_x, pad_y, pad_x, dilation, groups):
        """Checked geometry shared by conv2d and its backward: ``out`` is the [N, F, OH, OW]
        output (or its delta). Returns (n, c, h, w, f, c/groups, kh, kw, stride_y, stride_x,
        pad_y, pad_x, dilation, groups)."""
        self.check(op, "x", x, ndim=4)
        self.check(op, "w", w, ndim=4)
        self.check(op, out_name, out, ndim=4)
        sy = int_arg(op, "stride_y", stride_y, 1)
        sx = int_arg(op, "stride_x", stride_x, 1)
        py = int_arg(op, "pad_y", pad_y, 0)
        px = int_arg(op, "pad_x", pad_x, 0)
        dil = int_arg(op, "dilation", dilation, 1)
        g = int_arg(op, "groups", groups, 1)
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
            raise ValueError(f"{op}: {out_name} must have shape ({n}, {f}, OH, OW), got "
                             f"{out.shape}")
        oh, ow = out.shape[2], out.shape[3]
        self._sizes(op, (oh * ow, c * h * wd, cg * kh * kw, n * f, f * cg * kh * kw),
                    (c * kh * kw * oh * ow, x.size, out.size))
        return n, c, h, wd, f, cg, kh, kw, sy, sx, py, px, dil, g

    def conv_backward(self, op, x, w, delta, dx, dw, stride_y, stride_x, pad_y, pad_x,
                      dilation, groups):
        """conv2d_backward's arrays: :meth:`conv`'s geometry (returned) with delta as the
        output, dw (written) shaped like w, dx None or (written) shaped like x."""
        self.check(op, "dw", dw, ndim=4)
        geometry = self.conv(op, x, w, "delta", delta, stride_y, stride_x, pad_y, pad_x,
                             dilation, groups)
        check_shape(op, "dw", dw, w.shape)
        self.written(op, "dw", dw, (("x", x), ("w", w), ("delta", delta)))
        if dx is not None:
            self.check(op, "dx", dx, ndim=4)
            check_shape(op, "dx", dx, x.shape)
            self.written(op, "dx", dx, (("x", x), ("w", w), ("delta", delta), ("dw", dw)))
        return geometry

    def gemm(self, op, trans_a, trans_b, a, b, c):
        """Checked 2-D operands of c = op(a) @ op(b); returns (ta, tb, m, n, k)."""
        self.check(op, "a", a, ndim=2)
        self.check(op, "b", b, ndim=2)
        self.check(op, "c", c, ndim=2)
        ta, tb = bool(trans_a), bool(trans_b)
        m, k = (a.shape[1], a.shape[0]) if ta else a.shape
        kb, nn = (b.shape[1], b.shape[0]) if tb else b.shape
        if k != kb:
            raise ValueError(f"{op}: inner dimensions differ: op(a) is {m}x{k}, op(b) is "
                             f"{kb}x{nn} (a {a.shape}, b {b.shape}, trans_a={ta}, trans_b={tb})")
        self.size(op, m, nn, k, a.shape[1], b.shape[1])
        check_shape(op, "c", c, (m, nn))
        return ta, tb, m, nn, k

    # -- element-wise / per channel
    def per_channel(self, op, x, named, xname="x"):
        """x [N, C, ...] and one C-vector per ``(name, array)`` of ``named``; returns
        (N, C, spatial)."""
        self.check(op, xname, x, min_ndim=2)
        c = x.shape[1]
        for argname, v in named:
            self.check(op, argname, v)
            if v.size != c or v.ndim > 1 and v.shape != (c,):
                raise ValueError(f"{op}: {argname} must have shape ({c},) for {xname} of shape "
                                 f"{x.shape}, got {v.shape}")
        n = x.shape[0]
        self._sizes(op, (n, c), (x.size,))
        return n, c, (x.size // (n * c) if n * c else 0)

    def gradient(self, op, delta, y, code, x):
        """delta (written), y and, for the activations that need it, x shaped alike; returns
        (code, x), x None where the gradient does not read it."""
        a = activation_code(code, op)
        self.check(op, "delta", delta, min_ndim=2 if a in CHANNEL_CODES else None)
        self.written(op, "delta", delta, ())
        self.check(op, "y", y)
        check_shape(op, "y", y, delta.shape)
        if a not in NEEDS_X:
            return a, None
        if x is None:
            raise ValueError(f"{op}: the {ACTIVATIONS[a]} gradient needs the pre-activation x "
                             f"(got x=None)")
        self.check(op, "x", x)
        check_shape(op, "x", x, delta.shape)
        return a, x

    # -- rows of images
    def rows(self, op, argname, a, n=None):
        """``a`` seen as [N, values per image] (N = ``n`` when given); returns (N, values)."""
        self.check(op, argname, a, min_ndim=1)
        if n is not None and a.shape[0] != n:
            raise ValueError(f"{op}: {argname} must hold {n} images (first dimension), got "
                             f"shape {a.shape}")
        self._sizes(op, (), (a.size,))
        per = 1
        for d in a.shape[1:]:      # from the shape, so that an empty batch has rows too
            per *= int(d)
        return a.shape[0], per

    def copy_rows(self, op, src, dst, count, src_offset, dst_offset):
        """Rows of src and dst and a run of ``count`` values that fits both at its offsets;
        returns (N, src's values, dst's values, count, src_offset, dst_offset)."""
        n, s_per = self.rows(op, "src", src)
        _, d_per = self.rows(op, "dst", dst, n)
        count = int_arg(op, "count", count, 0)
        so = int_arg(op, "src_offset", src_offset, 0)
        do = int_arg(op, "dst_offset", dst_offset, 0)
        if so + count > s_per or do + count > d_per:
            raise ValueError(f"{op}: {count} values from offset {so} of {s_per} into offset "
                             f"{do} of {d_per} do not fit")
        return n, s_per, d_per, count, so, do

    def shortcut(self, op, out, add, m, spatial):
        """Rows of out and add, both with at least ``m`` values; returns (N, out's values,
        add's values, m, spatial)."""
        n, o_per = self.rows(op, "out", out)
        _, a_per = self.rows(op, "add", add, n)
        m = int_arg(op, "m", m, 0)
        spatial = int_arg(op, "spatial", spatial, 1)
        if m > o_per or m > a_per:
            raise ValueError(f"{op}: m={m} exceeds the values per image ({o_per}, {a_per})")
        return n, o_per, a_per, m, spatial

    # -- layer-specific forward ops
    def yolo(self, op, x, out, anchors, entries):
        """x [N, anchors*entries, ...] and out shaped like it; returns (anchors, entries)."""
        self.check(op, "x", x, min_ndim=2)
        self.check(op, "out", out)
        check_shape(op, "out", out, x.shape)
        return int_arg(op, "anchors", anchors, 1), int_arg(op, "entries", entries, 5)

    def softmax(self, op, x, out, groups):
        """x [N, ...] and out shaped like it, ``groups`` dividing an image's values; returns
        (groups, N, values per image)."""
        self.check(op, "x", x, min_ndim=1)
        self.check(op, "out", out)
        check_shape(op, "out", out, x.shape)
        groups = int_arg(op, "groups", groups, 1)
        n = x.shape[0]
        per = x.size // max(n, 1)
        if per % groups:
            raise ValueError(f"{op}: groups={groups} does not divide the {per} values per image")
        return groups, n, per

    def scale(self, op, src, scale, scale_wh):
        """src [N, C, H, W] and a scale per (image, channel), or per (image, pixel) with
        scale_wh; returns (N, C, H*W)."""
        self.check(op, "src", src, ndim=4)
        self.check(op, "scale", scale)
        n, c, h, w = src.shape
        want = n * h * w if scale_wh else n * c
        if scale.size != want:
            raise ValueError(f"{op}: scale must hold {want} values "
                             f"({'N*H*W' if scale_wh else 'N*C'}) for src of shape "
                             f"{src.shape}, got shape {scale.shape}")
        self._sizes(op, (), (src.size,))
        return n, c, h * w

    def holds(self, op, argname, a, size):
        """An array of ``size`` values (any shape)."""
        self.check(op, argname, a)
        if a.size != size:
            raise ValueError(f"{op}: {argname} must hold {size} values, got shape {a.shape}")

    def sam(self, op, src, x, out):
        """src, x and out of equal sizes."""
        for argname, a in (("src", src), ("x", x), ("out", out)):
            self.check(op, argname, a)
            if a.size != src.size:
                raise ValueError(f"{op}: {argname} must hold {src.size} values, got {a.size}")
        self._sizes(op, (), (src.size,))

    # -- pooling / resampling
    def pool(self, op, x, out, size, stride_y, stride_x, pad):
        """x [N, C, H, W] pooled into out [N, C, OH, OW]; returns the kernels' arguments
        (N*C, H, W, OH, OW, size, stride_y, stride_x, pad)."""
        self.check(op, "x", x, ndim=4)
        self.check(op, "out", out, ndim=4)
        window = pool_window(op, size, stride_y, stride_x, pad)
        n, c, h, w = x.shape
        if out.shape[:2] != (n, c):
            raise ValueError(f"{op}: out must have shape ({n}, {c}, OH, OW), got {out.shape}")
        self._sizes(op, (n * c, h * w, out.shape[2] * out.shape[3]), (x.size, out.size))
        return (n * c, h, w, out.shape[2], out.shape[3]) + window

    def pool_backward(self, op, delta, dx, size, stride_y, stride_x, pad):
        """delta [N, C, OH, OW] of a pooling of dx [N, C, H, W] (written); returns
        :meth:`pool`'s arguments."""
        self.check(op, "delta", delta, ndim=4)
        self.check(op, "dx", dx, ndim=4)
        self.written(op, "dx", dx, (("delta", delta),))
        window = pool_window(op, size, stride_y, stride_x, pad)
        n, c, h, w = dx.shape
        if delta.shape[:2] != (n, c):
            raise ValueError(f"{op}: delta must have shape ({n}, {c}, OH, OW) for dx of shape "
                             f"{dx.shape}, got {delta.shape}")
        self._sizes(op, (n * c, h * w, delta.shape[2] * delta.shape[3]), (dx.size, delta.size))
        return (n * c, h, w, delta.shape[2], delta.shape[3]) + window

    def maxpool_backward(self, op, delta, indexes, dx):
        """delta, int32 indexes shaped like it, and dx (written), any shapes."""
        self.check(op, "delta", delta)
        self.int32(op, "indexes", indexes, delta.shape)
        self.check(op, "dx", dx)
        self.written(op, "dx", dx, (("delta", delta), ("indexes", indexes)))
        self._sizes(op, (dx.size,), (delta.size,))

    def global_avgpool(self, op, x, out):
        """x [N, C, H, W] and out [N, C, 1, 1] (or [N, C]); returns (N, C, H, W)."""
        self.check(op, "x", x, ndim=4)
        self.check(op, "out", out)
        n, c, h, w = x.shape
        if out.shape not in ((n, c, 1, 1), (n, c)):
            raise ValueError(f"{op}: out must have shape {(n, c, 1, 1)}, got {out.shape}")
        return n, c, h, w

    def global_avgpool_backward(self, op, delta, dx):
        """dx [N, C, H, W] and delta of N*C values; returns (N, C, H, W)."""
        self.check(op, "delta", delta)
        self.check(op, "dx", dx, ndim=4)
        n, c, h, w = dx.shape
        if delta.size != n * c:
            raise ValueError(f"{op}: delta must hold N*C = {n * c} values, got shape "
                             f"{delta.shape}")
        return n, c, h, w

    def resample(self, op, small, big, small_name, big_name, stride):
        """small [N, C, H, W] and big [N, C, ...] (one is x, the other out); returns
        (N*C, stride)."""
        self.check(op, "x", small if small_name == "x" else big, ndim=4)
        self.check(op, "out", big if small_name == "x" else small, ndim=4)
        stride = int_arg(op, "stride", stride, 1)
        n, c, h, w = small.shape
        if big.shape[:2] != (n, c):
            raise ValueError(f"{op}: {big_name} must have shape ({n}, {c}, ...) like "
                             f"{small_name} {small.shape}, got {big.shape}")
        self._sizes(op, (n * c, big.shape[2] * big.shape[3]), (big.size, small.size))
        return n * c, stride
