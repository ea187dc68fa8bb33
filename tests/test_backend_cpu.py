"""The CPU backend's ops (C core via Cython) against straightforward numpy references.

Tolerance: max |got - ref| <= 1e-5 * max |ref|.
"""

import numpy as np
import pytest

from pydarknet.backend import ACTIVATIONS, ACTIVATION_CODE
from closeness import assert_close, rng  # noqa: F401
from pydarknet.backend import get_backend

B = get_backend("cpu")   # needs the built C core (python setup.py build_ext --inplace)

f32 = np.float32
f64 = np.float64



# -- references -------------------------------------------------------------------------------
def ref_conv(x, w, sy, sx, py, px, dil, groups, oh, ow):
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    fg = f // groups
    out = np.zeros((n, f, oh, ow), f64)
    for g in range(groups):
        for ky in range(kh):
            for kx in range(kw):
                # input rows/cols seen by every output position for this kernel tap
                iy = np.arange(oh) * sy - py + ky * dil
                ix = np.arange(ow) * sx - px + kx * dil
                vy = (iy >= 0) & (iy < h)
                vx = (ix >= 0) & (ix < wd)
                patch = np.zeros((n, cg, oh, ow), f64)
                xs = x[:, g * cg:(g + 1) * cg].astype(f64)
                patch[:, :, np.ix_(vy, vx)[0], np.ix_(vy, vx)[1]] = \
                    xs[:, :, iy[vy]][:, :, :, ix[vx]]
                out[:, g * fg:(g + 1) * fg] += np.einsum(
                    "ncyx,fc->nfyx", patch, w[g * fg:(g + 1) * fg, :, ky, kx].astype(f64))
    return out


def ref_pool(x, oh, ow, size, sy, sx, pad, kind):
    n, c, h, w = x.shape
    off = -(pad // 2)  # C's -pad/2 for pad >= 0
    out = np.empty((n, c, oh, ow), f64)
    for i in range(oh):
        for j in range(ow):
            y0, x0 = off + i * sy, off + j * sx
            ys = [y for y in range(y0, y0 + size) if 0 <= y < h]
            xs = [xx for xx in range(x0, x0 + size) if 0 <= xx < w]
            if not ys or not xs:
                out[:, :, i, j] = -np.finfo(f32).max if kind == "max" else 0.0
                continue
            win = x[:, :, ys][:, :, :, xs].astype(f64)
            out[:, :, i, j] = win.max(axis=(2, 3)) if kind == "max" else win.mean(axis=(2, 3))
    return out


def ref_act(x, name):
    """Darknet's float formulas (activations.h / activations.c), in float32 numpy."""
    x = x.astype(f32)
    one, two = f32(1), f32(2)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        def logistic(v):
            return one / (one + np.exp(-v))

        def tanh(v):
            return two / (one + np.exp(-two * v)) - one

        if name == "logistic":
            return logistic(x)
        if name == "relu":
            return x * (x > 0)
        if name == "relie":
            return np.where(x > 0, x, f32(.01) * x)
        if name == "linear":
            return x
        if name == "ramp":
            return x * (x > 0) + f32(.1) * x
        if name == "tanh":
            return tanh(x)
        if name == "plse":
            return np.where(x < -4, f32(.01) * (x + 4),
                            np.where(x > 4, f32(.01) * (x - 4) + 1, f32(.125) * x + f32(.5)))
        if name in ("leaky", "revleaky"):
            return np.where(x > 0, x, f32(.1) * x)
        if name == "elu":
            return np.where(x >= 0, x, np.exp(x) - one)
        if name == "loggy":
            return two / (one + np.exp(-x)) - one
        if name == "stair":
            n = np.floor(x)
            half = np.floor(x / two)
            return np.where(n % 2 == 0, half, (x - n) + half)
        if name == "hardtan":
            return np.clip(x, -1, 1)
        if name == "lhtan":
            return np.where(x < 0, f32(.001) * x,
                            np.where(x > 1, f32(.001) * (x - 1) + 1, x))
        if name == "selu":
            return np.where(x >= 0, f32(1.0507) * x,
                            f32(1.0507) * f32(1.6732) * (np.exp(x) - one))
        if name == "gelu":
            arg = (0.797885 * x.astype(f64) + 0.035677 * (x * x * x).astype(f64)).astype(f32)
            return (0.5 * x.astype(f64) * (1 + np.tanh(arg).astype(f64))).astype(f32)
        if name == "swish":
            return x * logistic(x)
        if name == "mish":
            sp = np.where(x > 20, x, np.where(x < -20, np.exp(x), np.log(np.exp(x) + one)))
            return x * tanh(sp)
        if name == "hard_mish":
            return np.where(x > 0, x, np.where(x > -2, x * x / 2 + x, f32(0)))
        if name == "relu6":
            return np.clip(x, 0, 6)
    raise KeyError(name)


def ref_norm_channels(x, kind):
    """activate_array_normalize_channels* per pixel across channels of x[N, C, ...]."""
    n, c = x.shape[:2]
    v = x.reshape(n, c, -1).astype(f64)
    eps = 0.0001
    if kind == "normalize_channels":
        pos = np.where(v > 0, v, 0)
        out = pos / (eps + pos.sum(axis=1, keepdims=True))
    else:
        m = v.max(axis=1, keepdims=True) if kind.endswith("maxval") else 0.0
        e = np.exp(v - m)
        out = e / (eps + e.sum(axis=1, keepdims=True))
    return out.reshape(x.shape)


def act_input(seed=1):
    r = rng(seed)
    special = np.array([0, -0.0, 1e-8, -1e-8, 0.5, -0.5, 1, -1, 2, -2, 3.5, -3.5, 4, -4, 4.5,
                        -4.5, 6, 7, -1.9999, -2.0001, 19.9, -19.9, 20, -20, 20.1, -20.1, 25, -25,
                        40, -40, 85, -85], f32)
    return np.concatenate([special, r.normal(0, 4, 997).astype(f32),
                           r.uniform(-30, 30, 1001).astype(f32)])


# -- conv2d -----------------------------------------------------------------------------------
CONV_CASES = [
    # N, C, H, W, F, kh, kw, sy, sx, py, px, dil, groups
    (1, 3, 9, 11, 4, 3, 3, 1, 1, 1, 1, 1, 1),
    (2, 5, 13, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1),      # odd sizes, stride 2, batch 2
    (3, 4, 10, 9, 5, 1, 1, 1, 1, 0, 0, 1, 1),      # 1x1 direct path, batch 3
    (2, 6, 10, 9, 4, 1, 1, 1, 1, 0, 0, 1, 2),      # 1x1 direct path with groups
    (1, 4, 11, 11, 3, 1, 1, 2, 2, 0, 0, 1, 1),     # 1x1 with stride: im2col path
    (1, 4, 8, 8, 3, 1, 1, 1, 1, 1, 1, 1, 1),       # 1x1 with padding: im2col path
    (2, 4, 12, 15, 6, 3, 3, 1, 2, 1, 1, 1, 2),     # stride_x != stride_y, groups
    (1, 3, 15, 12, 4, 3, 3, 2, 1, 1, 1, 1, 1),     # stride_y != stride_x
    (1, 8, 9, 10, 8, 3, 3, 1, 1, 1, 1, 1, 8),      # depthwise
    (2, 3, 14, 13, 5, 3, 3, 1, 1, 2, 2, 2, 1),     # dilation 2
    (1, 4, 17, 16, 4, 5, 5, 2, 2, 2, 2, 1, 1),     # 5x5
    (1, 2, 9, 8, 3, 3, 3, 1, 1, 0, 0, 3, 1),       # dilation 3 without padding
    (1, 3, 7, 9, 2, 2, 3, 1, 2, 1, 0, 1, 1),       # non-square kernel, pad_y != pad_x
    (1, 2, 5, 5, 3, 7, 7, 1, 1, 3, 3, 1, 1),       # kernel larger than the image
    (1, 2, 6, 6, 2, 3, 3, 3, 3, 4, 4, 1, 1),       # more padding than kernel
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c)))
def test_conv2d(case):
    n, c, h, w, f, kh, kw, sy, sx, py, px, dil, groups = case
    oh = (h + 2 * py - dil * (kh - 1) - 1) // sy + 1
    ow = (w + 2 * px - dil * (kw - 1) - 1) // sx + 1
    r = rng(hash(case) % 1000)
    x = r.standard_normal((n, c, h, w)).astype(f32)
    wt = r.standard_normal((f, c // groups, kh, kw)).astype(f32)
    out = B.empty((n, f, oh, ow))
    out.fill(np.nan)
    got = B.conv2d(x, wt, out, sy, sx, py, px, dil, groups)
    assert got is out
    assert_close(out, ref_conv(x, wt, sy, sx, py, px, dil, groups, oh, ow))


def test_conv2d_out_shape_from_caller():
    # a smaller OH/OW than the formula gives: the caller's out shape rules
    r = rng(3)
    x = r.standard_normal((1, 3, 10, 10)).astype(f32)
    wt = r.standard_normal((2, 3, 3, 3)).astype(f32)
    out = B.zeros((1, 2, 4, 3))
    B.conv2d(x, wt, out, 2, 2, 1, 1, 1, 1)
    assert_close(out, ref_conv(x, wt, 2, 2, 1, 1, 1, 1, 4, 3))


def test_conv2d_larger_layer():
    r = rng(4)
    x = r.standard_normal((2, 32, 26, 26)).astype(f32)
    wt = (r.standard_normal((64, 32, 3, 3)) * 0.1).astype(f32)
    out = B.empty((2, 64, 26, 26))
    B.conv2d(x, wt, out, 1, 1, 1, 1, 1, 1)
    assert_close(out, ref_conv(x, wt, 1, 1, 1, 1, 1, 1, 26, 26))


@pytest.mark.parametrize("case", [
    # big enough that im2col runs in several bands of output rows (partial last band)
    (2, 64, 70, 66, 8, 3, 3, 1, 1, 1, 1, 1, 1),
    (1, 3, 300, 310, 4, 3, 3, 1, 1, 1, 1, 1, 1),
    (1, 64, 141, 133, 6, 3, 3, 2, 1, 1, 1, 1, 2),
], ids=lambda c: "x".join(map(str, c)))
def test_conv2d_banded_im2col(case):
    test_conv2d(case)


def test_conv2d_errors():
    x = B.zeros((1, 4, 8, 8))
    with pytest.raises(ValueError, match="conv2d.*float32"):
        B.conv2d(x.astype(f64), B.zeros((2, 4, 3, 3)), B.zeros((1, 2, 8, 8)), 1, 1, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="conv2d.*contiguous"):
        B.conv2d(B.zeros((1, 4, 8, 16))[..., ::2], B.zeros((2, 4, 3, 3)), B.zeros((1, 2, 8, 8)),
                 1, 1, 1, 1, 1, 1)
    with pytest.raises(ValueError, match=r"conv2d: w must have shape \(2, 2, kh, kw\)"):
        B.conv2d(x, B.zeros((2, 4, 3, 3)), B.zeros((1, 2, 8, 8)), 1, 1, 1, 1, 1, 2)
    with pytest.raises(ValueError, match="conv2d: out must have shape"):
        B.conv2d(x, B.zeros((2, 4, 3, 3)), B.zeros((1, 3, 8, 8)), 1, 1, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="conv2d.*divisible"):
        B.conv2d(x, B.zeros((3, 4, 3, 3)), B.zeros((1, 3, 8, 8)), 1, 1, 1, 1, 1, 2)
    with pytest.raises(ValueError, match="conv2d: stride_y"):
        B.conv2d(x, B.zeros((2, 4, 3, 3)), B.zeros((1, 2, 8, 8)), 0, 1, 1, 1, 1, 1)


# -- gemm -------------------------------------------------------------------------------------
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25)])
def test_gemm(ta, tb, alpha, beta):
    r = rng(5)
    m, n, k = 7, 13, 11
    a = r.standard_normal((k, m) if ta else (m, k)).astype(f32)
    b = r.standard_normal((n, k) if tb else (k, n)).astype(f32)
    c = r.standard_normal((m, n)).astype(f32)
    c0 = c.astype(f64)
    ref = alpha * ((a.T if ta else a).astype(f64) @ (b.T if tb else b).astype(f64)) + beta * c0
    assert B.gemm(ta, tb, alpha, a, b, beta, c) is c
    assert_close(c, ref)


def test_gemm_vector_shapes_and_errors():
    r = rng(6)
    a = r.standard_normal((1, 5)).astype(f32)
    b = r.standard_normal((3, 5)).astype(f32)
    c = B.zeros((1, 3))
    B.gemm(False, True, 1.0, a, b, 0.0, c)
    assert_close(c, a.astype(f64) @ b.T.astype(f64))
    with pytest.raises(ValueError, match="gemm: inner dimensions"):
        B.gemm(False, False, 1.0, a, b, 0.0, c)
    with pytest.raises(ValueError, match=r"gemm: c must have shape \(1, 3\)"):
        B.gemm(False, True, 1.0, a, b, 0.0, B.zeros((3, 1)))


# -- activations ------------------------------------------------------------------------------
ELEMENTWISE = [a for a in ACTIVATIONS if not a.startswith("normalize_channels")]


def test_activation_enum_order():
    assert ACTIVATIONS[:3] == ("logistic", "relu", "relie")
    assert ACTIVATION_CODE["mish"] == 17 and ACTIVATION_CODE["normalize_channels"] == 20


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activate(name):
    x = act_input()
    ref = ref_act(x, name)
    got = x.copy()
    assert B.activate(got, name) is got
    assert_close(got, ref)
    got2 = x.reshape(2, -1).copy()   # by int code, another shape
    B.activate(got2, ACTIVATION_CODE[name])
    assert_close(got2.ravel(), ref)


def test_activate_large_parallel_array():
    # big enough for the OpenMP loops; 4-D like a layer output
    r = rng(7)
    x = (r.standard_normal((2, 16, 33, 35)) * 8).astype(f32)
    for name in ("mish", "leaky", "logistic", "swish", "hard_mish", "gelu"):
        got = x.copy()
        B.activate(got, name)
        assert_close(got, ref_act(x, name))


def test_mish_extremes():
    x = np.array([25, -25, 19.9, -19.9, 20, -20, 20.5, -20.5, 88, -88, 100, -100, 0], f32)
    got = B.activate(x.copy(), "mish")
    assert np.all(np.isfinite(got))
    assert_close(got, ref_act(x, "mish"))
    # per-value checks against the exact function (large |x| is where float paths break)
    exact = x.astype(f64) * np.tanh(np.logaddexp(0, x.astype(f64)))
    np.testing.assert_allclose(got[[0, 2, 4, 6, 8, 10]], exact[[0, 2, 4, 6, 8, 10]], rtol=1e-6)
    assert np.all(np.abs(got[[1, 3, 5, 7, 9, 11]]) < 1e-6)


def test_hard_mish_values():
    x = np.array([3, 0.5, 0, -0.5, -1, -1.5, -2, -2.5, -10], f32)
    got = B.activate(x.copy(), "hard_mish")
    np.testing.assert_array_equal(got, np.array([3, .5, 0, -.375, -.5, -.375, 0, 0, 0], f32))


@pytest.mark.parametrize("name", ["normalize_channels", "normalize_channels_softmax",
                                  "normalize_channels_softmax_maxval"])
@pytest.mark.parametrize("shape", [(2, 5, 7, 9), (3, 4, 11), (1, 6, 1, 1), (2, 3, 70, 90)])
def test_normalize_channels(name, shape):
    r = rng(8)
    x = (r.standard_normal(shape) * 3).astype(f32)
    got = B.activate(x.copy(), name)
    assert_close(got, ref_norm_channels(x, name))
    B.activate(x, ACTIVATION_CODE[name])   # by int code: the same floats
    np.testing.assert_array_equal(x, got)


def test_normalize_channels_softmax_maxval_large_values():
    # the max-subtracting variant stays finite where plain exp overflows
    x = np.array([[[100.0], [101.0], [99.0]]], f32)
    got = B.activate(x.copy(), "normalize_channels_softmax_maxval")
    assert_close(got, ref_norm_channels(x, "normalize_channels_softmax_maxval"))


def test_activate_errors():
    with pytest.raises(ValueError, match="activate: unknown activation 'bogus'"):
        B.activate(B.zeros((3,)), "bogus")
    with pytest.raises(ValueError, match="activate: activation code"):
        B.activate(B.zeros((3,)), 99)
    with pytest.raises(ValueError, match="activate.*at least 2"):
        B.activate(B.zeros((3,)), "normalize_channels")
    with pytest.raises(ValueError, match="activate.*float32"):
        B.activate(np.zeros(3), "mish")


# -- bias / batchnorm -------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (3, 6), (1, 4, 9), (2, 64, 20, 20)])
def test_add_bias(shape):
    r = rng(9)
    x = r.standard_normal(shape).astype(f32)
    b = r.standard_normal(shape[1]).astype(f32)
    bshape = (1, -1) + (1,) * (len(shape) - 2)
    ref = x.astype(f64) + b.astype(f64).reshape(bshape)
    assert B.add_bias(x, b) is x
    assert_close(x, ref)


@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (3, 6), (2, 64, 20, 20)])
def test_batchnorm_inference(shape):
    r = rng(10)
    c = shape[1]
    x = r.standard_normal(shape).astype(f32) * 3 + 1
    scales = r.uniform(0.5, 2, c).astype(f32)
    mean = r.standard_normal(c).astype(f32)
    var = r.uniform(0, 3, c).astype(f32)
    var[0] = 0.0
    biases = r.standard_normal(c).astype(f32)
    bs = (1, -1) + (1,) * (len(shape) - 2)
    ref = ((x.astype(f64) - mean.reshape(bs)) / np.sqrt(var.astype(f64).reshape(bs) + 1e-5)
           * scales.reshape(bs) + biases.reshape(bs))
    assert B.batchnorm_inference(x, scales, mean, var, biases) is x
    assert_close(x, ref)


def test_batchnorm_errors():
    x = B.zeros((1, 3, 4, 4))
    v = B.zeros(3)
    with pytest.raises(ValueError, match=r"batchnorm_inference: mean must have shape \(3,\)"):
        B.batchnorm_inference(x, v, B.zeros(4), v, v)
    with pytest.raises(ValueError, match=r"add_bias: b must have shape \(3,\)"):
        B.add_bias(x, B.zeros(2))


# -- pooling ----------------------------------------------------------------------------------
POOL_CASES = [
    # N, C, H, W, size, sy, sx, pad
    (1, 3, 8, 8, 2, 2, 2, 0),
    (2, 3, 13, 13, 2, 1, 1, 1),      # yolov3-tiny's size=2 stride=1 (pad=size-1)
    (1, 4, 13, 11, 3, 2, 2, 2),      # odd sizes
    (2, 2, 12, 15, 3, 1, 2, 2),      # stride_x != stride_y
    (1, 2, 11, 10, 2, 2, 1, 1),
    (1, 3, 9, 9, 5, 1, 1, 4),        # SPP
    (1, 2, 10, 10, 13, 1, 1, 12),    # window bigger than the image
    (1, 2, 9, 8, 3, 2, 2, 3),        # odd pad: window origin -(3 // 2) = -1 (C division)
    (2, 16, 40, 40, 3, 2, 2, 2),     # big enough for the OpenMP loop
]


def _pool_out(h, w, size, sy, sx, pad):
    return (h + pad - size) // sy + 1, (w + pad - size) // sx + 1


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool(case, kind):
    n, c, h, w, size, sy, sx, pad = case
    oh, ow = _pool_out(h, w, size, sy, sx, pad)
    x = rng(11).standard_normal((n, c, h, w)).astype(f32)
    out = B.empty((n, c, oh, ow))
    fn = B.maxpool if kind == "max" else B.local_avgpool
    assert fn(x, out, size, sy, sx, pad) is out
    assert_close(out, ref_pool(x, oh, ow, size, sy, sx, pad, kind))


def test_maxpool_all_negative_and_window_outside():
    x = np.full((1, 1, 3, 3), -5.0, f32)
    out = B.empty((1, 1, 4, 4))   # last row/col windows start past the image
    B.maxpool(x, out, 1, 1, 1, 0)
    assert np.all(out[0, 0, :3, :3] == -5)
    assert np.all(out[0, 0, 3, :] == -np.finfo(f32).max)
    B.local_avgpool(x, out, 1, 1, 1, 0)
    assert np.all(out[0, 0, 3, :] == 0)


def test_pool_errors():
    with pytest.raises(ValueError, match=r"maxpool: out must have shape \(1, 3, OH, OW\)"):
        B.maxpool(B.zeros((1, 3, 8, 8)), B.zeros((1, 2, 4, 4)), 2, 2, 2, 0)
    with pytest.raises(ValueError, match="local_avgpool: x must be 4-D"):
        B.local_avgpool(B.zeros((3, 8, 8)), B.zeros((1, 3, 4, 4)), 2, 2, 2, 0)
    with pytest.raises(ValueError, match="maxpool: size"):
        B.maxpool(B.zeros((1, 3, 8, 8)), B.zeros((1, 3, 4, 4)), 0, 2, 2, 0)


@pytest.mark.parametrize("shape", [(2, 3, 7, 5), (1, 64, 13, 13), (1, 1, 1, 1)])
def test_global_avgpool(shape):
    x = rng(12).standard_normal(shape).astype(f32)
    out = B.empty(shape[:2] + (1, 1))
    assert B.global_avgpool(x, out) is out
    assert_close(out, x.astype(f64).mean(axis=(2, 3), keepdims=True))
    with pytest.raises(ValueError, match="global_avgpool: out must have shape"):
        B.global_avgpool(x, B.empty(shape[:2] + (2, 1)))


# -- resampling -------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,stride,scale", [((2, 3, 5, 7), 2, 1.0), ((1, 4, 13, 13), 3, 0.5),
                                                ((1, 2, 6, 5), 1, 2.0), ((1, 64, 26, 26), 2, 1.0)])
def test_upsample(shape, stride, scale):
    x = rng(13).standard_normal(shape).astype(f32)
    n, c, h, w = shape
    out = B.empty((n, c, h * stride, w * stride))
    assert B.upsample(x, out, stride, scale) is out
    ref = np.empty(out.shape, f64)
    for y in range(h * stride):
        for xx in range(w * stride):
            ref[:, :, y, xx] = scale * x[:, :, y // stride, xx // stride]
    assert_close(out, ref)
    with pytest.raises(ValueError, match="upsample: out must have shape"):
        B.upsample(x, B.empty((n, c, h * stride + 1, w * stride)), stride, scale)


@pytest.mark.parametrize("shape,stride,scale", [((2, 3, 10, 14), 2, 1.0), ((1, 2, 11, 13), 2, 0.5),
                                                ((1, 3, 9, 10), 3, 2.0), ((1, 64, 52, 52), 2, 1.0)])
def test_downsample_sum(shape, stride, scale):
    x = rng(14).standard_normal(shape).astype(f32)
    n, c, h, w = shape
    oh, ow = h // stride, w // stride
    out = B.empty((n, c, oh, ow))
    out.fill(np.nan)   # must be zero-filled by the op
    assert B.downsample_sum(x, out, stride, scale) is out
    ref = np.zeros(out.shape, f64)
    for y in range(oh * stride):
        for xx in range(ow * stride):
            ref[:, :, y // stride, xx // stride] += scale * x[:, :, y, xx]
    assert_close(out, ref)
    with pytest.raises(ValueError, match="downsample_sum: out must have shape"):
        B.downsample_sum(x, B.empty((n, c, oh + 1, ow)), stride, scale)


# -- allocation / conversion ------------------------------------------------------------------
def test_alloc_and_conversion():
    a = B.empty((2, 3))
    assert a.dtype == f32 and a.shape == (2, 3) and a.flags.c_contiguous
    z = B.zeros((4,))
    assert z.dtype == f32 and not z.any()
    src = np.arange(12, dtype=f64).reshape(3, 4).T
    b = B.from_numpy(src)
    assert b.dtype == f32 and b.flags.c_contiguous
    np.testing.assert_array_equal(B.to_numpy(b), src.astype(f32))


# -- threads ----------------------------------------------------------------------------------
def test_threads_do_not_change_results():
    r = rng(15)
    x = r.standard_normal((2, 32, 30, 29)).astype(f32)
    wt = (r.standard_normal((24, 16, 3, 3)) * 0.1).astype(f32)
    c = wt.shape[0]
    scales, mean = r.uniform(.5, 2, c).astype(f32), r.standard_normal(c).astype(f32)
    var, biases = r.uniform(0, 2, c).astype(f32), r.standard_normal(c).astype(f32)

    def run():
        res = []
        out = B.empty((2, 24, 15, 15))
        B.conv2d(x, wt, out, 2, 2, 1, 1, 1, 2)
        B.batchnorm_inference(out, scales, mean, var, biases)
        res.append(out.copy())
        for name in ELEMENTWISE + ["normalize_channels", "normalize_channels_softmax_maxval"]:
            res.append(B.activate(out.copy(), name))
        B.add_bias(out, biases)
        res.append(out.copy())
        p = B.empty((2, 32, 15, 15))
        res.append(B.maxpool(x, p, 3, 2, 2, 2).copy())
        res.append(B.local_avgpool(x, p, 3, 2, 2, 2).copy())
        res.append(B.global_avgpool(x, B.empty((2, 32, 1, 1))).copy())
        up = B.upsample(x, B.empty((2, 32, 60, 58)), 2, 1.0).copy()
        res.append(up)
        res.append(B.downsample_sum(up, B.empty((2, 32, 30, 29)), 2, 0.25).copy())
        return res

    before = B.get_num_threads()
    try:
        B.set_num_threads(1)
        assert B.get_num_threads() == 1
        one = run()
        B.set_num_threads(2)
        assert B.get_num_threads() == 2
        two = run()
    finally:
        B.set_num_threads(before)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["leaky", "mish", "logistic", "linear", "swish",
                                  "normalize_channels_softmax"])
def test_fused_tails_equal_the_separate_ops_bitwise(name):
    g = np.random.default_rng(5)
    x = (g.standard_normal((2, 5, 7, 9)) * 3).astype(np.float32)
    scales, biases = g.random(5, np.float32) + 0.5, g.standard_normal(5).astype(np.float32)
    mean, var = g.standard_normal(5).astype(np.float32), g.random(5, np.float32) + 0.1
    want = B.activate(B.batchnorm_inference(x.copy(), scales, mean, var, biases), name)
    got = B.batchnorm_activate_inference(x.copy(), scales, mean, var, biases, name)
    np.testing.assert_array_equal(got, want)
    want = B.activate(B.add_bias(x.copy(), biases), name)
    np.testing.assert_array_equal(B.bias_activate(x.copy(), biases, name), want)


def test_batchnorm_inference_rounds_like_darknets_division():
    g = np.random.default_rng(6)
    x = (g.standard_normal((1, 3, 400, 400)) * 50).astype(np.float32)
    mean, var = np.float32([0.3, -2, 7]), np.float32([0.01, 3, 1e4])
    ones, zeros = np.ones(3, np.float32), np.zeros(3, np.float32)
    got = B.batchnorm_inference(x.copy(), ones, mean, var, zeros)
    sd = np.sqrt((var + np.float32(1e-5)).astype(np.float64))[None, :, None, None]
    want = ((x - mean[None, :, None, None]).astype(np.float64) / sd).astype(np.float32)
    np.testing.assert_array_equal(got, want)


def test_all_finite_and_empty_batches():
    a = np.zeros((3, 70000), np.float32)
    assert B.all_finite(a)
    a[2, 69999] = np.nan
    assert not B.all_finite(a)
    empty = np.zeros((0, 4, 2, 2), np.float32)
    B.copy_rows(empty, np.zeros((0, 8, 2, 2), np.float32), 16, 0, 0)
    B.shortcut_add(np.zeros((0, 4, 2, 2), np.float32), empty, 16, 4)
