"""The C core at the edges the sanitizers watch (tools/asan.py runs this file under ASan +
UBSan): non-finite and out-of-int-range values through every activation and gradient, and
pooling windows that hang off every side of the image or miss it entirely."""
import itertools

import numpy as np
import pytest

import reference_backend
from pydarknet.backend import ACTIVATION_CODE, ACTIVATIONS, _cpu

f32 = np.float32
FLT_MAX = np.finfo(f32).max
EXTREMES = np.array([np.nan, np.inf, -np.inf, FLT_MAX, -FLT_MAX, 3e9, -3e9, 2.0 ** 31,
                     -(2.0 ** 31), 1e30, -1e30, 88.5, -87.5, 20.5, 1e-45, -1e-45, 0.0, -0.0,
                     0.5, -0.5, 2.5, -2.5], f32)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_and_gradient_take_any_float(name):
    code = ACTIVATION_CODE[name]
    y = EXTREMES.copy()
    _cpu.activate(y, 1, y.size, 1, code)
    delta = np.ones_like(y)
    _cpu.gradient(delta, y, EXTREMES.copy(), 1, y.size, 1, code)


def test_stair_beyond_int_range_is_floor_of_half():
    # x86's (int) of such a value is INT_MIN (even), so Darknet takes floor(x / 2) there
    x = np.array([3e9, -3e9, 2.0 ** 31, -(2.0 ** 31), 1e30, -FLT_MAX, np.inf], f32)
    y = x.copy()
    _cpu.activate(y, 1, y.size, 1, ACTIVATION_CODE["stair"])
    np.testing.assert_array_equal(y, np.floor(x / f32(2)))
    nan = np.array([np.nan], f32)
    _cpu.activate(nan, 1, 1, 1, ACTIVATION_CODE["stair"])
    assert np.isnan(nan[0])


def test_mish_of_nan_is_nan():
    x = np.array([np.nan], f32)
    y = x.copy()
    _cpu.activate(y, 1, 1, 1, ACTIVATION_CODE["mish"])
    delta = np.ones_like(x)
    _cpu.gradient(delta, y, x, 1, 1, 1, ACTIVATION_CODE["mish"])
    assert np.isnan(y[0]) and np.isnan(delta[0])


def out_size(n, pad, size, stride):
    return (n + pad - size) // stride + 1   # Darknet's maxpool output size


# (H, W, size, stride, pad): windows off the top/left (pad), off the bottom/right (size past
# the image), windows larger than the image, odd pads
OVERHANGING = [(5, 4, 3, 1, 2), (5, 7, 2, 2, 1), (3, 3, 5, 1, 4), (4, 6, 3, 2, 3),
               (1, 1, 3, 1, 2), (6, 5, 4, 3, 5)]


@pytest.mark.parametrize("H,W,size,stride,pad", OVERHANGING)
def test_pooling_windows_off_the_image(H, W, size, stride, pad):
    rng = np.random.default_rng(H * 100 + W * 10 + size)
    n, c = 2, 3
    oh, ow = out_size(H, pad, size, stride), out_size(W, pad, size, stride)
    x = rng.standard_normal((n, c, H, W)).astype(f32)
    geometry = (n * c, H, W, oh, ow, size, stride, stride, pad)

    out = np.empty((n, c, oh, ow), f32)
    _cpu.maxpool(x, out, *geometry)
    np.testing.assert_array_equal(out, reference_backend.maxpool(x, np.empty_like(out), size,
                                                                 stride, stride, pad))
    out_train = np.empty_like(out)
    indexes = np.empty(out.shape, np.int32)
    _cpu.maxpool_train(x, out_train, indexes, *geometry)
    np.testing.assert_array_equal(out_train, out)
    assert (x.reshape(-1)[indexes] == out).all()

    avg = np.empty_like(out)
    _cpu.local_avgpool(x, avg, *geometry)
    np.testing.assert_allclose(avg, reference_backend.local_avgpool(
        x, np.empty_like(out), size, stride, stride, pad), rtol=1e-6, atol=1e-6)

    delta = rng.standard_normal(out.shape).astype(f32)
    dx = np.zeros_like(x)
    _cpu.maxpool_backward(delta, indexes, dx, n * c, oh * ow, H * W)
    np.testing.assert_allclose(dx, reference_backend.maxpool_backward(
        delta, indexes, np.zeros_like(x)), rtol=1e-6, atol=1e-6)
    dx = np.zeros_like(x)
    _cpu.local_avgpool_backward(delta, dx, *geometry)
    np.testing.assert_allclose(dx, reference_backend.local_avgpool_backward(
        delta, np.zeros_like(x), size, stride, stride, pad), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("size,stride,pad", [(3, 1, 2), (5, 1, 4), (9, 1, 8), (13, 1, 12),
                                             (3, 2, 2), (4, 3, 5), (7, 2, 3)])
def test_wide_maxpool_windows_pick_the_first_maximum_bit_for_bit(size, stride, pad):
    """Windows of 3 and more run in two passes (rows, then columns); ties between -0.0 and
    0.0, NaN and all-NaN windows must come out as the direct window scan's: its first
    maximum in row-major order (maxpool_train's values are that scan)."""
    rng = np.random.default_rng(size * 10 + stride)
    H, W = 11, 14
    x = rng.choice(np.array([-0.0, 0.0, 1.0, -1.0, np.nan], f32), (2, 3, H, W))
    x[1, 2] = np.nan                                      # a plane with no number at all
    oh, ow = out_size(H, pad, size, stride), out_size(W, pad, size, stride)
    geometry = (6, H, W, oh, ow, size, stride, stride, pad)
    out, scanned = np.empty((2, 3, oh, ow), f32), np.empty((2, 3, oh, ow), f32)
    _cpu.maxpool(x, out, *geometry)
    _cpu.maxpool_train(x, scanned, np.empty(out.shape, np.int32), *geometry)
    np.testing.assert_array_equal(out.view(np.int32), scanned.view(np.int32))
    assert (out[1, 2] == -FLT_MAX).all()


def test_pooling_windows_that_miss_the_image():
    # pad 4 puts the first window (rows/columns -2, -1) wholly outside a 3x3 image
    H = W = 3
    size, stride, pad = 2, 3, 4
    oh = ow = out_size(H, pad, size, stride)
    x = np.arange(H * W, dtype=f32).reshape(1, 1, H, W)
    geometry = (1, H, W, oh, ow, size, stride, stride, pad)
    out = np.empty((1, 1, oh, ow), f32)
    _cpu.maxpool(x, out, *geometry)
    indexes = np.empty(out.shape, np.int32)
    out_train = np.empty_like(out)
    _cpu.maxpool_train(x, out_train, indexes, *geometry)
    avg = np.empty_like(out)
    _cpu.local_avgpool(x, avg, *geometry)
    empty = np.zeros((oh, ow), bool)
    for i, j in itertools.product(range(oh), range(ow)):
        empty[i, j] = i == 0 or j == 0
    assert (out[0, 0][empty] == -FLT_MAX).all() and (out_train[0, 0][empty] == -FLT_MAX).all()
    assert (indexes[0, 0][empty] == -1).all() and (avg[0, 0][empty] == 0).all()
    assert out[0, 0, 1, 1] == x[0, 0, 1:3, 1:3].max()
    dx = np.zeros_like(x)
    _cpu.maxpool_backward(np.ones_like(out), indexes, dx, 1, oh * ow, H * W)
    assert dx.sum() == 1 and dx[0, 0, 2, 2] == 1
    dx = np.zeros_like(x)
    _cpu.local_avgpool_backward(np.ones_like(out), dx, *geometry)
    assert dx.sum() == pytest.approx(1)


def random_conv_geometry(rng):
    """A small convolution whose kernel often hangs off the image: 1-pixel images, kernels
    wider than the image, pads beyond the kernel's reach, strides past the kernel, dilation."""
    while True:
        groups = int(rng.choice([1, 1, 2, 3]))
        c, f = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        h, w = int(rng.integers(1, 9)), int(rng.integers(1, 9))
        kh = kw = int(rng.integers(1, 6))
        sy, sx = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        py, px = int(rng.integers(0, 6)), int(rng.integers(0, 6))
        dil = int(rng.integers(1, 4))
        oh = (h + 2 * py - dil * (kh - 1) - 1) // sy + 1
        ow = (w + 2 * px - dil * (kw - 1) - 1) // sx + 1
        if oh >= 1 and ow >= 1:
            return int(rng.integers(1, 3)), c, h, w, f, kh, kw, oh, ow, sy, sx, py, px, dil, groups


@pytest.mark.parametrize("seed", range(40))
def test_conv_with_kernels_off_the_image(seed):
    rng = np.random.default_rng(seed)
    n, c, h, w, f, kh, kw, oh, ow, sy, sx, py, px, dil, groups = random_conv_geometry(rng)
    x = rng.standard_normal((n, c, h, w)).astype(f32)
    wt = rng.standard_normal((f, c // groups, kh, kw)).astype(f32)
    geometry = (n, c, h, w, f, kh, kw, oh, ow, sy, sx, py, px, dil, groups)

    out = np.empty((n, f, oh, ow), f32)
    _cpu.conv2d(x, wt, out, *geometry)
    ref = reference_backend.conv2d(x, wt, np.empty_like(out), sy, sx, py, px, dil, groups)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)

    delta = rng.standard_normal(out.shape).astype(f32)
    dx, dw = np.zeros_like(x), np.zeros_like(wt)
    _cpu.conv2d_backward(x, wt, delta, dx, dw, *geometry)
    dx_ref, dw_ref = np.zeros_like(x), np.zeros_like(wt)
    reference_backend.conv2d_backward(x, wt, delta, dx_ref, dw_ref, sy, sx, py, px, dil, groups)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-4, atol=1e-4)
