"""The CPU backend's training (backward) ops against the numpy oracle in reference_backend.py.

Tolerance: max |got - ref| <= 1e-5 * max |ref| (the same measure as test_backend_cpu.py).
Batch norm is also checked bit for bit against the oracle's emulation of Darknet's float32
summation order, and against float64 textbook formulas.
"""

import numpy as np
import pytest

import reference_backend as R
from pydarknet.backend import ACTIVATIONS
from closeness import assert_close, rng  # noqa: F401
from pydarknet.backend import get_backend

B = get_backend("cpu")   # needs the built C core (python setup.py build_ext --inplace)

f32 = np.float32
f64 = np.float64



def rand(r, shape, lo=-1.0, hi=1.0):
    return r.uniform(lo, hi, shape).astype(f32)


# -- conv2d_backward ----------------------------------------------------------------------------
# (N, C, H, W, F, k, stride_y, stride_x, pad_y, pad_x, dilation, groups)
CONV_CASES = [
    (2, 3, 7, 9, 4, 3, 1, 1, 1, 1, 1, 1),      # odd sizes, padded 3x3, batch 2
    (1, 4, 8, 8, 6, 1, 1, 1, 0, 0, 1, 1),      # 1x1 stride 1 unpadded: the direct path
    (3, 6, 9, 7, 4, 1, 1, 1, 0, 0, 1, 2),      # direct path with groups
    (2, 4, 11, 10, 6, 3, 2, 1, 1, 1, 1, 2),    # stride_y != stride_x, groups
    (2, 4, 10, 11, 4, 3, 1, 2, 2, 0, 1, 1),    # stride_x 2, pad_y != pad_x
    (1, 6, 12, 9, 6, 3, 1, 1, 2, 2, 2, 3),     # dilation 2 (pad = pad*dilation), groups 3
    (2, 3, 9, 9, 5, 5, 3, 2, 2, 2, 1, 1),      # 5x5, strides 3x2
    (1, 2, 5, 6, 3, 3, 2, 2, 0, 0, 1, 1),      # unpadded, stride 2 (cells left unread)
    (2, 4, 6, 5, 4, 2, 1, 1, 0, 1, 1, 4),      # even kernel, depthwise (groups == C)
    (1, 3, 6, 6, 2, 1, 2, 2, 0, 0, 1, 1),      # 1x1 stride 2: not the direct path
    (1, 2, 4, 4, 2, 3, 1, 1, 3, 3, 1, 1),      # padding wider than the kernel reach
]


def _conv_out(h, w, k, sy, sx, py, px, dil):
    return (h + 2 * py - dil * (k - 1) - 1) // sy + 1, (w + 2 * px - dil * (k - 1) - 1) // sx + 1


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("with_dx", [True, False])
def test_conv2d_backward(case, with_dx):
    n, c, h, w, f, k, sy, sx, py, px, dil, g = case
    r = rng(sum(case))
    oh, ow = _conv_out(h, w, k, sy, sx, py, px, dil)
    x = rand(r, (n, c, h, w))
    wt = rand(r, (f, c // g, k, k))
    delta = rand(r, (n, f, oh, ow))
    dw0 = rand(r, wt.shape)                  # gradients accumulate: start from non-zero
    dx0 = rand(r, x.shape)
    dw, dw_ref = dw0.copy(), dw0.copy()
    dx = dx0.copy() if with_dx else None
    dx_ref = dx0.copy() if with_dx else None
    assert B.conv2d_backward(x, wt, delta, dx, dw, sy, sx, py, px, dil, g) is dw
    R.conv2d_backward(x, wt, delta, dx_ref, dw_ref, sy, sx, py, px, dil, g)
    assert_close(dw, dw_ref)
    assert_close(dw - dw0, dw_ref - dw0, rtol=1e-4)   # the increment itself
    if with_dx:
        assert_close(dx, dx_ref)
        assert_close(dx - dx0, dx_ref - dx0, rtol=1e-4)


def test_conv2d_backward_is_the_adjoint_of_conv2d():
    # <conv(x), d> = <x, dx(d)> and = <w, dw(d)> for zero-initialised gradients
    r = rng(3)
    x = rand(r, (2, 6, 13, 11))
    wt = rand(r, (8, 3, 3, 3))
    out = B.empty((2, 8, 7, 11))
    B.conv2d(x, wt, out, 2, 1, 1, 1, 1, 2)
    d = rand(r, out.shape)
    dx, dw = B.zeros(x.shape), B.zeros(wt.shape)
    B.conv2d_backward(x, wt, d, dx, dw, 2, 1, 1, 1, 1, 2)
    lhs = float((out.astype(f64) * d).sum())
    assert abs(lhs - float((x.astype(f64) * dx).sum())) <= 1e-5 * abs(lhs) + 1e-4
    assert abs(lhs - float((wt.astype(f64) * dw).sum())) <= 1e-5 * abs(lhs) + 1e-4


def test_conv2d_backward_banded():
    # K * OH * OW > the im2col band (2^21 floats): several bands per image
    r = rng(4)
    x = rand(r, (2, 64, 70, 66))
    wt = rand(r, (5, 64, 3, 3), -0.1, 0.1)
    delta = rand(r, (2, 5, 70, 66))
    dx, dw = B.zeros(x.shape), B.zeros(wt.shape)
    dx_ref, dw_ref = np.zeros_like(dx), np.zeros_like(dw)
    B.conv2d_backward(x, wt, delta, dx, dw, 1, 1, 1, 1, 1, 1)
    R.conv2d_backward(x, wt, delta, dx_ref, dw_ref, 1, 1, 1, 1, 1, 1)
    assert_close(dw, dw_ref)
    assert_close(dx, dx_ref)


def test_conv2d_backward_errors():
    x, wt = B.zeros((1, 4, 5, 5)), B.zeros((2, 2, 3, 3))
    d, dw, dx = B.zeros((1, 2, 5, 5)), B.zeros((2, 2, 3, 3)), B.zeros((1, 4, 5, 5))
    with pytest.raises(ValueError, match="conv2d_backward: dw must have shape"):
        B.conv2d_backward(x, wt, d, dx, B.zeros((2, 4, 3, 3)), 1, 1, 1, 1, 1, 2)
    with pytest.raises(ValueError, match="conv2d_backward: dx must have shape"):
        B.conv2d_backward(x, wt, d, B.zeros((1, 4, 5, 4)), dw, 1, 1, 1, 1, 1, 2)
    with pytest.raises(ValueError, match="delta must have shape"):
        B.conv2d_backward(x, wt, B.zeros((1, 3, 5, 5)), dx, dw, 1, 1, 1, 1, 1, 2)
    with pytest.raises(ValueError, match="w must have shape"):
        B.conv2d_backward(x, wt, d, dx, dw, 1, 1, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="float32"):
        B.conv2d_backward(x, wt, d, dx, dw.astype(f64), 1, 1, 1, 1, 1, 2)
    with pytest.raises(ValueError, match="stride_y"):
        B.conv2d_backward(x, wt, d, dx, dw, 0, 1, 1, 1, 1, 2)
    with pytest.raises(ValueError, match="must not share memory with x"):
        B.conv2d_backward(x, wt, d, x, dw, 1, 1, 1, 1, 1, 2)
    ro = B.zeros(dw.shape)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="dw is read-only"):
        B.conv2d_backward(x, wt, d, dx, ro, 1, 1, 1, 1, 1, 2)


# -- gradient -----------------------------------------------------------------------------------
NEEDS_X = ("swish", "mish", "hard_mish")
CHANNELS = ("normalize_channels", "normalize_channels_softmax",
            "normalize_channels_softmax_maxval")


def _activation_inputs(name, shape, seed):
    """(y, x) as a layer would hold them: y the activated output, x the pre-activation."""
    r = rng(seed)
    x = r.uniform(-4, 4, shape).astype(f32)
    if name in NEEDS_X:
        return B.activate(x.copy(), name), x
    if name in CHANNELS:
        return B.activate(x.copy(), name), None
    if name == "stair":   # whole numbers too: Darknet's stair gradient is 0 there
        x[..., ::3] = np.round(x[..., ::3])
        return x, None
    if name == "gelu":
        return B.activate(x.copy(), name), None
    # Darknet evaluates these gradients at the output y; any y in a wide range tests them
    return x, None


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_gradient(name):
    shape = (2, 5, 7, 3)
    y, x = _activation_inputs(name, shape, 7 + ACTIVATIONS.index(name))
    d0 = rand(rng(1), shape)
    got = B.gradient(d0.copy(), y, name, x)
    ref = R.gradient(d0.copy(), y, name, x)
    assert_close(got, ref)
    got_by_code = B.gradient(d0.copy(), y, ACTIVATIONS.index(name), x)
    np.testing.assert_array_equal(got_by_code, got)


def test_gradient_mish_over_its_whole_range():
    # the one-exp formula against Darknet's tsp + x*(1-tsp^2)*(1-exp(-sp)) in float64,
    # across the softplus thresholds (+-20) and far beyond
    x = np.concatenate([np.linspace(-120, 120, 4801), np.linspace(-3, 3, 6001),
                        [-20.0001, -20, -19.999, 19.999, 20, 20.0001]]).astype(f32)
    x64 = x.astype(f64)
    sp = np.where(x64 > 20, x64, np.where(x64 < -20, np.exp(x64), np.log1p(np.exp(x64))))
    tsp = np.tanh(sp)
    want = x64 * (1 - tsp * tsp) * (1 - np.exp(-sp)) + tsp
    y = B.activate(x.copy(), "mish")
    got = B.gradient(np.ones_like(x), y, "mish", x)
    # (Darknet's own float32 evaluation of that expression is off by up to 9e-7 here)
    assert np.abs(got - want).max() <= 3e-7 * np.abs(want).max()
    away = np.abs(want) > 1e-2          # not next to mish's stationary point at x = -1.19
    assert (np.abs(got - want)[away] / np.abs(want[away])).max() < 1e-5


def test_gradient_linear_is_a_no_op_and_needs_no_x():
    d = rand(rng(2), (3, 4))
    np.testing.assert_array_equal(B.gradient(d.copy(), d, "linear"), d)


def test_gradient_large_parallel_array():
    r = rng(5)
    x = r.uniform(-5, 5, (4, 16, 40, 40)).astype(f32)
    d0 = rand(r, x.shape)
    for name in ("leaky", "mish", "logistic", "normalize_channels_softmax"):
        y = B.activate(x.copy(), name)
        xin = x if name in NEEDS_X else None
        assert_close(B.gradient(d0.copy(), y, name, xin), R.gradient(d0.copy(), y, name, xin))


def test_gradient_errors():
    d, y = B.zeros((2, 3, 4, 4)), B.zeros((2, 3, 4, 4))
    for name in NEEDS_X:
        with pytest.raises(ValueError, match=f"gradient: the {name} gradient needs the pre-"):
            B.gradient(d, y, name)
    with pytest.raises(ValueError, match="gradient: unknown activation 'nope'"):
        B.gradient(d, y, "nope")
    with pytest.raises(ValueError, match="gradient: activation code"):
        B.gradient(d, y, 99)
    with pytest.raises(ValueError, match="y must have shape"):
        B.gradient(d, B.zeros((2, 3, 4, 5)), "leaky")
    with pytest.raises(ValueError, match="x must have shape"):
        B.gradient(d, y, "mish", B.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        B.gradient(B.zeros((5,)), B.zeros((5,)), "normalize_channels")
    ro = B.zeros((2, 2))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="delta is read-only"):
        B.gradient(ro, B.zeros((2, 2)), "leaky")


# -- pooling ------------------------------------------------------------------------------------
# (N, C, H, W, size, stride_y, stride_x, pad)
POOL_CASES = [
    (2, 3, 8, 8, 2, 2, 2, 1),       # Darknet's default padding size-1
    (1, 2, 9, 7, 3, 2, 2, 2),       # odd sizes
    (2, 2, 7, 9, 3, 1, 1, 2),       # stride 1, overlapping windows
    (1, 3, 10, 9, 3, 2, 1, 2),      # stride_y != stride_x
    (2, 1, 6, 11, 2, 1, 3, 1),
    (1, 2, 5, 5, 5, 1, 1, 4),       # windows mostly outside the image
    (3, 2, 13, 12, 4, 3, 2, 0),     # no padding
    (1, 1, 6, 6, 3, 2, 2, 5),       # pad > size: odd offset
]


def _pool_out(h, w, size, sy, sx, pad):
    return (h + pad - size) // sy + 1, (w + pad - size) // sx + 1


@pytest.mark.parametrize("case", POOL_CASES)
def test_maxpool_train(case):
    n, c, h, w, size, sy, sx, pad = case
    oh, ow = _pool_out(h, w, size, sy, sx, pad)
    r = rng(sum(case))
    for x in (rand(r, (n, c, h, w)),
              r.integers(-2, 3, (n, c, h, w)).astype(f32)):   # many ties: the first max wins
        out, idx = B.empty((n, c, oh, ow)), np.empty((n, c, oh, ow), np.int32)
        out_ref, idx_ref = np.empty_like(out), np.empty_like(idx)
        assert B.maxpool_train(x, out, idx, size, sy, sx, pad) is out
        R.maxpool_train(x, out_ref, idx_ref, size, sy, sx, pad)
        empty = np.isneginf(out_ref)        # windows with no cell inside the image:
        out_ref[empty] = -np.finfo(f32).max   # Darknet's -FLT_MAX and index -1
        idx_ref[empty] = -1
        np.testing.assert_array_equal(out, out_ref)
        np.testing.assert_array_equal(idx, idx_ref)
        np.testing.assert_array_equal(out, B.maxpool(x, B.empty(out.shape), size, sy, sx, pad))
        np.testing.assert_array_equal(x.reshape(-1)[idx[~empty]], out[~empty])


@pytest.mark.parametrize("case", POOL_CASES)
def test_maxpool_backward(case):
    n, c, h, w, size, sy, sx, pad = case
    oh, ow = _pool_out(h, w, size, sy, sx, pad)
    r = rng(sum(case) + 1)
    x = rand(r, (n, c, h, w))
    out, idx = B.empty((n, c, oh, ow)), np.empty((n, c, oh, ow), np.int32)
    B.maxpool_train(x, out, idx, size, sy, sx, pad)
    delta = rand(r, out.shape)
    dx0 = rand(r, x.shape)
    dx = dx0.copy()
    assert B.maxpool_backward(delta, idx, dx) is dx
    inside = idx >= 0                       # -1: a window with no cell inside the image
    assert_close(dx, R.maxpool_backward(delta[inside], idx[inside], dx0.copy()))


def test_maxpool_backward_any_indexes():
    # indexes outside their own (image, channel) plane are still added; -1 and other
    # indexes outside dx are skipped
    r = rng(9)
    delta = rand(r, (2, 3, 4, 4))
    idx = r.integers(0, 2 * 3 * 5 * 5, delta.shape).astype(np.int32)
    idx.reshape(-1)[::7] = -1
    idx.reshape(-1)[3] = 10 ** 6
    dx = rand(r, (2, 3, 5, 5))
    want = dx.copy()
    keep = (idx >= 0) & (idx < dx.size)
    np.add.at(want.reshape(-1), idx[keep], delta[keep])
    assert_close(B.maxpool_backward(delta, idx, dx), want)
    flat = rand(r, (50,))                                 # shapes that share no planes
    want = flat.copy()
    np.add.at(want, idx[keep] % 50, delta[keep])
    assert_close(B.maxpool_backward(delta[keep].copy(), (idx[keep] % 50).astype(np.int32),
                                    flat), want)


@pytest.mark.parametrize("case", POOL_CASES)
def test_local_avgpool_backward(case):
    n, c, h, w, size, sy, sx, pad = case
    oh, ow = _pool_out(h, w, size, sy, sx, pad)
    r = rng(sum(case) + 2)
    delta = rand(r, (n, c, oh, ow))
    dx0 = rand(r, (n, c, h, w))
    dx = dx0.copy()
    assert B.local_avgpool_backward(delta, dx, size, sy, sx, pad) is dx
    with np.errstate(divide="ignore", invalid="ignore"):   # windows with no in-image cell
        ref = R.local_avgpool_backward(delta, dx0.copy(), size, sy, sx, pad)
    assert_close(dx, ref)


def test_local_avgpool_backward_is_the_adjoint_of_local_avgpool():
    r = rng(11)
    x = rand(r, (2, 3, 9, 8))
    out = B.local_avgpool(x, B.empty((2, 3, 5, 4)), 3, 2, 2, 2)
    d = rand(r, out.shape)
    dx = B.local_avgpool_backward(d, B.zeros(x.shape), 3, 2, 2, 2)
    lhs = float((out.astype(f64) * d).sum())
    assert abs(lhs - float((x.astype(f64) * dx).sum())) <= 1e-5 * abs(lhs)


def test_pool_backward_errors():
    x = B.zeros((1, 2, 6, 6))
    out, idx = B.zeros((1, 2, 3, 3)), np.zeros((1, 2, 3, 3), np.int32)
    with pytest.raises(ValueError, match="maxpool_train: indexes must be int32"):
        B.maxpool_train(x, out, idx.astype(np.int64), 2, 2, 2, 1)
    with pytest.raises(ValueError, match="maxpool_train: indexes must have shape"):
        B.maxpool_train(x, out, np.zeros((1, 2, 3, 2), np.int32), 2, 2, 2, 1)
    with pytest.raises(ValueError, match="maxpool_backward: indexes must have shape"):
        B.maxpool_backward(out, np.zeros((1, 2, 3, 2), np.int32), x)
    with pytest.raises(ValueError, match="maxpool_backward: dx must be float32"):
        B.maxpool_backward(out, idx, x.astype(f64))
    with pytest.raises(ValueError, match="local_avgpool_backward: delta must have shape"):
        B.local_avgpool_backward(B.zeros((1, 3, 3, 3)), x, 2, 2, 2, 1)
    with pytest.raises(ValueError, match="local_avgpool_backward: size"):
        B.local_avgpool_backward(out, x, 0, 2, 2, 1)


# -- batch norm ---------------------------------------------------------------------------------
BN_SHAPES = [(2, 3, 5, 7), (4, 6, 3, 3), (1, 5, 4, 4), (3, 7, 1, 1), (5, 4), (2, 3, 9)]


def _bn_params(r, c):
    return (r.uniform(0.5, 1.5, c).astype(f32), rand(r, (c,), -0.2, 0.2),
            rand(r, (c,), -0.1, 0.1), r.uniform(0.5, 1.5, c).astype(f32))


def _bn_train(mod, x, params, keep):
    scales, biases, rmean, rvar = (p.copy() for p in params)
    c = x.shape[1]
    mean, var = np.empty(c, f32), np.empty(c, f32)
    xs, xn = np.empty_like(x), np.empty_like(x)
    out = x.copy()
    mod.batchnorm_train(out, scales, biases, rmean, rvar, mean, var, xs, xn, keep)
    return dict(out=out, rolling_mean=rmean, rolling_variance=rvar, mean=mean, variance=var,
                x=xs, x_norm=xn)


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("keep", [0.9, 0.95])
def test_batchnorm_train(shape, keep):
    r = rng(len(shape) * 10 + shape[1])
    x = (rand(r, shape, -2, 2) + f32(0.7))              # an offset, like real activations
    params = _bn_params(r, shape[1])
    got = _bn_train(B, x, params, keep)
    ref = _bn_train(R, x, params, keep)
    for key in got:            # Darknet's summation order and float/double mix: bit for bit
        np.testing.assert_array_equal(got[key], ref[key], err_msg=key)
    # and the textbook formulas in float64
    axes = (0,) + tuple(range(2, len(shape)))
    m = x.astype(f64).mean(axis=axes)
    count = x.size // shape[1]
    v = ((x - m.reshape((1, -1) + (1,) * (len(shape) - 2))) ** 2).sum(axis=axes) / (count - 1)
    assert_close(got["mean"], m)
    assert_close(got["variance"], v)
    assert_close(got["rolling_mean"], keep * params[2] + (1 - keep) * m)
    assert_close(got["rolling_variance"], keep * params[3] + (1 - keep) * v)
    shp = (1, -1) + (1,) * (len(shape) - 2)
    xn = (x - m.reshape(shp)) / np.sqrt(v.reshape(shp) + 1e-5)
    np.testing.assert_array_equal(got["x"], x)
    assert_close(got["x_norm"], xn)
    assert_close(got["out"], xn * params[0].reshape(shp) + params[1].reshape(shp))


def test_batchnorm_train_darknet_rolling_factors():
    # keep=0.9: rolling = rolling*0.9f + 0.1f*stat (Darknet's scal_cpu(.9), axpy_cpu(.1))
    x = rand(rng(1), (2, 3, 4, 4))
    params = _bn_params(rng(2), 3)
    got = _bn_train(B, x, params, 0.9)
    want = params[2] * f32(0.9)
    want += f32(0.1) * got["mean"]
    np.testing.assert_array_equal(got["rolling_mean"], want)


@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batchnorm_backward(shape):
    r = rng(len(shape) * 100 + shape[1])
    x = rand(r, shape, -2, 2) + f32(0.3)
    params = _bn_params(r, shape[1])
    fw = _bn_train(B, x, params, 0.9)
    delta = rand(r, shape)
    bg0, sg0 = rand(r, (shape[1],)), rand(r, (shape[1],))
    got = [delta.copy(), bg0.copy(), sg0.copy()]
    ref = [delta.copy(), bg0.copy(), sg0.copy()]
    for mod, (d, bg, sg) in ((B, got), (R, ref)):
        assert mod.batchnorm_backward(d, fw["x"], fw["x_norm"], fw["mean"], fw["variance"],
                                      params[0], bg, sg) is d
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)
    # textbook gradients (Darknet's formulas with eps inside the root), float64
    shp = (1, -1) + (1,) * (len(shape) - 2)
    axes = (0,) + tuple(range(2, len(shape)))
    count = x.size // shape[1]
    d64, xc = delta.astype(f64), x.astype(f64) - fw["mean"].reshape(shp)
    veps = fw["variance"].astype(f64).reshape(shp) + 1e-5
    assert_close(got[1], bg0 + d64.sum(axis=axes))
    assert_close(got[2], sg0 + (d64 * fw["x_norm"]).sum(axis=axes))
    ds = d64 * params[0].reshape(shp)
    md = -ds.sum(axis=axes, keepdims=True) / np.sqrt(veps)
    vd = (ds * xc).sum(axis=axes, keepdims=True) * -0.5 * veps ** -1.5
    assert_close(got[0], ds / np.sqrt(veps) + vd * 2 * xc / count + md / count)


def test_batchnorm_errors():
    x = B.zeros((2, 3, 4, 4))
    c3 = [B.zeros((3,)) for _ in range(6)]
    with pytest.raises(ValueError, match="batchnorm_train: mean must have shape"):
        B.batchnorm_train(x, *c3[:4], B.zeros((4,)), c3[5], B.zeros(x.shape),
                          B.zeros(x.shape), 0.9)
    with pytest.raises(ValueError, match="batchnorm_train: x_norm must have shape"):
        B.batchnorm_train(x, *c3, B.zeros(x.shape), B.zeros((2, 3, 16)), 0.9)
    with pytest.raises(ValueError, match="keep must be in"):
        B.batchnorm_train(x, *c3, B.zeros(x.shape), B.zeros(x.shape), 1.5)
    with pytest.raises(ValueError, match="x_saved must not share memory with x"):
        B.batchnorm_train(x, *c3, x, B.zeros(x.shape), 0.9)
    with pytest.raises(ValueError, match="batchnorm_backward: bias_grad must have shape"):
        B.batchnorm_backward(x, B.zeros(x.shape), B.zeros(x.shape), *c3[:3], B.zeros((2,)),
                             c3[3])
    with pytest.raises(ValueError, match="batchnorm_backward: x_saved must be float32"):
        B.batchnorm_backward(x, np.zeros(x.shape), B.zeros(x.shape), *c3[:5])
    ro = B.zeros((3,))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="scale_grad is read-only"):
        B.batchnorm_backward(x, B.zeros(x.shape), B.zeros(x.shape), *c3[:4], ro)


# -- threads ------------------------------------------------------------------------------------
def test_threads_do_not_change_results():
    """The C core's own loops give the same bits with 1, 2 or 3 threads. The convolutions'
    matrix products (oneDNN's sgemm and convolutions) may round their last bits otherwise with
    another thread count on some CPUs (on AVX2 about half of the sgemm shapes a network uses:
    their blocking follows the threads), so those are compared to 1e-6 of their largest value."""
    r = rng(15)
    x = r.standard_normal((2, 32, 30, 29)).astype(f32)
    wt = (r.standard_normal((24, 16, 3, 3)) * 0.1).astype(f32)
    w1 = (r.standard_normal((32, 32, 1, 1)) * 0.1).astype(f32)
    d15 = r.standard_normal((2, 24, 15, 15)).astype(f32)
    d30 = r.standard_normal((2, 32, 30, 29)).astype(f32)
    params = _bn_params(r, 32)

    def run():
        conv = []
        dx, dw = B.zeros(x.shape), B.zeros(wt.shape)
        B.conv2d_backward(x, wt, d15, dx, dw, 2, 2, 1, 1, 1, 2)
        conv += [dx, dw]
        dx1, dw1 = B.zeros(x.shape), B.zeros(w1.shape)
        B.conv2d_backward(x, w1, d30, dx1, dw1, 1, 1, 0, 0, 1, 1)
        conv += [dx1, dw1]
        res = []
        for name in ACTIVATIONS:
            y = B.activate(x.copy(), name)
            res.append(B.gradient(d30.copy(), y, name, x))
        p, idx = B.empty((2, 32, 15, 15)), np.empty((2, 32, 15, 15), np.int32)
        B.maxpool_train(x, p, idx, 3, 2, 2, 2)
        res += [p, idx, B.maxpool_backward(p, idx, B.zeros(x.shape))]
        res.append(B.local_avgpool_backward(p, B.zeros(x.shape), 3, 2, 2, 2))
        fw = _bn_train(B, x, params, 0.9)
        res += list(fw.values())
        d, bg, sg = d30.copy(), B.zeros((32,)), B.zeros((32,))
        B.batchnorm_backward(d, fw["x"], fw["x_norm"], fw["mean"], fw["variance"], params[0],
                             bg, sg)
        res += [d, bg, sg]
        return conv, res

    before = B.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            B.set_num_threads(n)
            results.append(run())
    finally:
        B.set_num_threads(before)
    (conv1, loops1), others = results[0], results[1:]
    for conv, loops in others:
        for a, b in zip(conv1, conv):
            assert_close(a, b, 1e-6)
        for a, b in zip(loops1, loops):
            np.testing.assert_array_equal(a, b)
