"""A slow pure-numpy implementation of the backend op API: an independent oracle for tests."""

import numpy as np

from pydarknet.backend import ACTIVATIONS

f32 = np.float32
HOST_ARRAYS = True


def empty(shape, dtype=f32):
    return np.empty(shape, dtype)


def zeros(shape):
    return np.zeros(shape, f32)


def to_numpy(a):
    return np.asarray(a)


def from_numpy(a):
    return np.ascontiguousarray(a, f32)


def copy_from_numpy(dst, src):
    dst[...] = np.asarray(src).reshape(dst.shape)
    return dst


def copy(dst, src):
    dst[...] = src.reshape(dst.shape)
    return dst


def fill(a, value):
    a[...] = value
    return a


def axpy(alpha, x, y):
    y += f32(alpha) * x.reshape(y.shape)
    return y


def all_finite(a):
    return bool(np.all(np.isfinite(a)))


def synchronize():
    pass


def copy_rows(src, dst, count, src_offset, dst_offset, accumulate=False):
    n = src.shape[0]
    s, d = src.reshape(n, -1), dst.reshape(n, -1)
    part = s[:, src_offset:src_offset + count]
    if accumulate:
        d[:, dst_offset:dst_offset + count] += part
    else:
        d[:, dst_offset:dst_offset + count] = part
    return dst


def shortcut_add(out, add, m, spatial, weights=None, accumulate=True):
    n = out.shape[0]
    o, a = out.reshape(n, -1), add.reshape(n, -1)
    if weights is None:
        w = np.ones(m, f32)
    else:
        weights = np.asarray(weights, f32).ravel()
        w = np.full(m, weights[0], f32) if weights.size == 1 else \
            weights[np.arange(m) // spatial]
    if accumulate:
        o[:, :m] += a[:, :m] * w
    else:
        o[:, :m] = a[:, :m] * w
    return out


def yolo_activate(x, out, anchors, entries, scale_x_y, new_coords):
    n = x.shape[0]
    v = x.reshape(n, anchors, entries, -1).copy()
    for e in range(entries):
        if not new_coords and e not in (2, 3):
            v[:, :, e] = _logistic(v[:, :, e])
        if e < 2:
            v[:, :, e] = v[:, :, e] * f32(scale_x_y) + f32(-0.5 * (scale_x_y - 1))
    out[...] = v.reshape(out.shape)
    return out


def softmax(x, out, groups, temperature):
    n = x.shape[0]
    rows = x.reshape(n, groups, -1)
    t = f32(temperature)
    e = np.exp(rows / t - rows.max(axis=-1, keepdims=True) / t)
    out[...] = (e / e.sum(axis=-1, keepdims=True)).reshape(out.shape)
    return out


def scale_channels(src, scale, out, scale_wh):
    n, c, h, w = src.shape
    s = scale.reshape(n, 1, h, w) if scale_wh else scale.reshape(n, c, 1, 1)
    out[...] = (src * s).reshape(out.shape)
    return out


def scale_channels_backward(delta, src, scale, dsrc, dscale, scale_wh):
    n, c, h, w = src.shape
    d = delta.reshape(src.shape)
    s = scale.reshape(n, 1, h, w) if scale_wh else scale.reshape(n, c, 1, 1)
    if dscale is not None:
        dscale += (d * src).sum(axis=1 if scale_wh else (2, 3)).reshape(dscale.shape)
    if dsrc is not None:
        dsrc += (d * s).reshape(dsrc.shape)


def sam(src, x, out):
    out[...] = (src.reshape(-1) * x.reshape(-1)).reshape(out.shape)
    return out


def sam_backward(delta, src, x, dx, dsrc):
    if dx is not None:
        dx += (delta.reshape(-1) * src.reshape(-1)).reshape(dx.shape)
    if dsrc is not None:
        dsrc += (delta.reshape(-1) * x.reshape(-1)).reshape(dsrc.shape)


def activate_copy(x, y, code):
    y[...] = x
    return activate(y, code)


def bias_activate(x, b, code):
    return activate(add_bias(x, b), code)


def batchnorm_activate_inference(x, scales, mean, var, biases, code, eps=1e-5):
    return activate(batchnorm_inference(x, scales, mean, var, biases, eps), code)


def conv2d_activate_inference(x, w, out, stride_y, stride_x, pad_y, pad_x, dilation, groups,
                              biases, code, scales=None, mean=None, variance=None, eps=1e-5):
    conv2d(x, w, out, stride_y, stride_x, pad_y, pad_x, dilation, groups)
    if scales is None:
        return bias_activate(out, biases, code)
    return batchnorm_activate_inference(out, scales, mean, variance, biases, code, eps)


def backward_bias(bias_grad, delta):
    n, c = delta.shape[0], delta.shape[1]
    bias_grad += delta.reshape(n, c, -1).astype(np.float64).sum(axis=(0, 2)).astype(f32)
    return bias_grad


def global_avgpool_backward(delta, dx):
    n, c, h, w = dx.shape
    dx += delta.reshape(n, c, 1, 1) / f32(h * w)
    return dx


def sgd_update(p, u, g, step, neg_decay_b, momentum, decayed):
    u += g
    if decayed:
        u += f32(neg_decay_b) * p
    p += f32(step) * u
    u *= f32(momentum)
    return p


def _logistic(x):
    return f32(1) / (f32(1) + np.exp(-x))


def _softplus(x):
    with np.errstate(over="ignore"):
        return np.where(x > 20, x, np.where(x < -20, np.exp(x), np.log(np.exp(x) + f32(1))))


def _act(x, name):
    if name == "linear":
        return x
    if name == "logistic":
        return _logistic(x)
    if name == "leaky" or name == "revleaky":
        return np.where(x > 0, x, f32(0.1) * x)
    if name == "relu":
        return x * (x > 0)
    if name == "relu6":
        return np.minimum(np.maximum(x, 0), 6)
    if name == "mish":
        return x * np.tanh(_softplus(x))
    if name == "swish":
        return x * _logistic(x)
    if name == "hard_mish":
        return np.where(x > 0, x, np.where(x > -2, x * x / 2 + x, 0))
    if name == "tanh":
        return f32(2) / (f32(1) + np.exp(f32(-2) * x)) - f32(1)
    if name == "elu":
        return np.where(x >= 0, x, np.exp(x) - 1)
    if name == "relie":
        return np.where(x > 0, x, f32(0.01) * x)
    if name == "ramp":
        return x * (x > 0) + f32(0.1) * x
    raise NotImplementedError(name)


def activate(x, code):
    name = ACTIVATIONS[code] if isinstance(code, int) else code
    x[...] = _act(x, name).astype(f32)
    return x


def add_bias(x, b):
    x += b.reshape(1, -1, *([1] * (x.ndim - 2)))
    return x


def batchnorm_inference(x, scales, mean, var, biases, eps=1e-5):
    shp = (1, -1) + (1,) * (x.ndim - 2)
    x[...] = ((x - mean.reshape(shp)) / np.sqrt(var.reshape(shp) + f32(eps))) \
        * scales.reshape(shp) + biases.reshape(shp)
    return x


def conv2d(x, w, out, stride_y, stride_x, pad_y, pad_x, dilation, groups):
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    oh, ow = out.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pad_y, pad_y + kh * dilation), (pad_x, pad_x + kw * dilation)))
    fg = f // groups
    for g in range(groups):
        acc = np.zeros((n, fg, oh, ow), np.float64)
        xs = xp[:, g * cg:(g + 1) * cg]
        for ky in range(kh):
            for kx in range(kw):
                y0, x0 = ky * dilation, kx * dilation
                patch = xs[:, :, y0:y0 + stride_y * oh:stride_y, x0:x0 + stride_x * ow:stride_x]
                acc += np.einsum("ncyx,fc->nfyx", patch, w[g * fg:(g + 1) * fg, :, ky, kx])
        out[:, g * fg:(g + 1) * fg] = acc
    return out


def gemm(trans_a, trans_b, alpha, a, b, beta, c):
    A = a.T if trans_a else a
    Bm = b.T if trans_b else b
    c[...] = alpha * (A.astype(np.float64) @ Bm) + beta * c
    return c


def _windows(x, out, size, stride_y, stride_x, pad, fill):
    n, c, h, w = x.shape
    oh, ow = out.shape[2:]
    off = -(pad // 2)
    big = np.full((n, c, h + size + abs(off) + stride_y * oh, w + size + abs(off) + stride_x * ow),
                  fill, f32)
    big[:, :, -off:-off + h, -off:-off + w] = x
    stack = []
    for ky in range(size):
        for kx in range(size):
            stack.append(big[:, :, ky:ky + stride_y * oh:stride_y, kx:kx + stride_x * ow:stride_x])
    return np.stack(stack)


def maxpool(x, out, size, stride_y, stride_x, pad):
    out[...] = _windows(x, out, size, stride_y, stride_x, pad, -np.inf).max(axis=0)
    return out


def local_avgpool(x, out, size, stride_y, stride_x, pad):
    vals = _windows(x, out, size, stride_y, stride_x, pad, np.nan)
    out[...] = np.nanmean(vals, axis=0)
    return out


def global_avgpool(x, out):
    out[...] = x.mean(axis=(2, 3), keepdims=True)
    return out


def upsample(x, out, stride, scale, accumulate=False):
    v = f32(scale) * x.repeat(stride, axis=2).repeat(stride, axis=3)
    if accumulate:
        out += v
    else:
        out[...] = v
    return out


def downsample_sum(x, out, stride, scale, accumulate=False):
    n, c, oh, ow = out.shape
    v = f32(scale) * x[:, :, :oh * stride, :ow * stride].reshape(
        n, c, oh, stride, ow, stride).sum(axis=(3, 5))
    if accumulate:
        out += v
    else:
        out[...] = v
    return out


def set_num_threads(n):
    pass


# -- training ops ---------------------------------------------------------------------------
def _im2col(x, kh, kw, stride_y, stride_x, pad_y, pad_x, dilation, oh, ow):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad_y, pad_y + kh * dilation + stride_y * oh),
                    (pad_x, pad_x + kw * dilation + stride_x * ow)))
    cols = np.empty((n, c, kh, kw, oh, ow), x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dilation, kx * dilation
            cols[:, :, ky, kx] = xp[:, :, y0:y0 + stride_y * oh:stride_y, x0:x0 + stride_x * ow:stride_x]
    return cols


def conv2d_backward(x, w, delta, dx, dw, stride_y, stride_x, pad_y, pad_x, dilation, groups):
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    oh, ow = delta.shape[2:]
    fg = f // groups
    for g in range(groups):
        cols = _im2col(x[:, g * cg:(g + 1) * cg], kh, kw, stride_y, stride_x, pad_y, pad_x,
                       dilation, oh, ow).astype(np.float64)
        d = delta[:, g * fg:(g + 1) * fg].astype(np.float64)
        dw[g * fg:(g + 1) * fg] += np.einsum("nfyx,ncjkyx->fcjk", d, cols).astype(f32)
        if dx is not None:
            dcols = np.einsum("fcjk,nfyx->ncjkyx", w[g * fg:(g + 1) * fg].astype(np.float64), d)
            big = np.zeros((n, cg, h + 2 * pad_y + kh * dilation + stride_y * oh,
                            wd + 2 * pad_x + kw * dilation + stride_x * ow))
            for ky in range(kh):
                for kx in range(kw):
                    y0, x0 = ky * dilation, kx * dilation
                    big[:, :, y0:y0 + stride_y * oh:stride_y, x0:x0 + stride_x * ow:stride_x] += \
                        dcols[:, :, ky, kx]
            dx[:, g * cg:(g + 1) * cg] += big[:, :, pad_y:pad_y + h, pad_x:pad_x + wd].astype(f32)
    return dw


def _grad(y, x, name):
    if name == "linear":
        return np.ones_like(y)
    if name == "logistic":
        return (1 - y) * y
    if name == "leaky":
        return np.where(y > 0, f32(1), f32(0.1))
    if name == "relu":
        return (y > 0).astype(f32)
    if name == "relu6":
        return ((y > 0) & (y < 6)).astype(f32)
    if name == "tanh":
        return 1 - y * y
    if name == "mish":
        sp = _softplus(x)
        tsp = np.tanh(sp)
        grad_sp = 1 - np.exp(-sp)
        return x * (1 - tsp * tsp) * grad_sp + tsp
    if name == "swish":
        s = _logistic(x)
        return y + s * (1 - y)
    if name == "hard_mish":
        return np.where(x > 0, f32(1), np.where(x > -2, x + 1, f32(0)))
    if name == "elu":
        return (y >= 0) + (y < 0) * (y + 1)
    if name == "relie":
        return np.where(y > 0, f32(1), f32(0.01))
    if name == "ramp":
        return (y > 0) + f32(0.1)
    raise NotImplementedError(name)


def gradient(delta, y, code, x=None):
    name = ACTIVATIONS[code] if isinstance(code, int) else code
    delta *= _grad(y, x, name).astype(f32)
    return delta


def maxpool_train(x, out, indexes, size, stride_y, stride_x, pad):
    n, c, h, w = x.shape
    oh, ow = out.shape[2:]
    off = -(pad // 2)
    best = np.full(out.shape, -np.inf, f32)
    arg = np.full(out.shape, -1, np.int64)
    oy, ox = np.mgrid[0:oh, 0:ow]
    for ky in range(size):
        for kx in range(size):
            yy, xx = off + oy * stride_y + ky, off + ox * stride_x + kx
            valid = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            vals = np.where(valid, x[:, :, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)], -np.inf)
            better = vals > best
            best = np.where(better, vals, best)
            arg = np.where(better, (np.clip(yy, 0, h - 1) * w + np.clip(xx, 0, w - 1)), arg)
    out[...] = best
    chan = (np.arange(n)[:, None, None, None] * c + np.arange(c)[None, :, None, None]) * h * w
    indexes[...] = arg + chan
    return out


def maxpool_backward(delta, indexes, dx):
    np.add.at(dx.reshape(-1), indexes.reshape(-1), delta.reshape(-1))
    return dx


def local_avgpool_backward(delta, dx, size, stride_y, stride_x, pad):
    n, c, h, w = dx.shape
    oh, ow = delta.shape[2:]
    off = -(pad // 2)
    count = np.zeros((oh, ow), f32)
    oy, ox = np.mgrid[0:oh, 0:ow]
    for ky in range(size):
        for kx in range(size):
            yy, xx = off + oy * stride_y + ky, off + ox * stride_x + kx
            count += (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    for ky in range(size):
        for kx in range(size):
            yy, xx = off + oy * stride_y + ky, off + ox * stride_x + kx
            valid = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            np.add.at(dx, (slice(None), slice(None), yy[valid], xx[valid]),
                      (delta / count)[:, :, valid])
    return dx


# Darknet's gradients of the activations the table in _grad leaves out (from the activated
# output y, like gradient_array); gradient() looks _grad up when called, so this extends it.
_grad_base = _grad


def _gelu_grad(y):
    y3 = (y.astype(np.float32) ** 3).astype(f32)
    t = (0.0356774 * y3.astype(np.float64) + 0.797885 * y).astype(f32)
    sech = (f32(2) / (np.exp(t) + np.exp(-t))).astype(f32)
    return (0.5 * np.tanh(t) + (0.0535161 * y3.astype(np.float64) + 0.398942 * y)
            * (sech * sech).astype(np.float64) + 0.5).astype(f32)


def _grad(y, x, name):
    if name == "selu":
        return np.where(y >= 0, f32(1.0507), y + f32(1.0507) * f32(1.6732))
    if name == "loggy":
        t = (y + f32(1)) / f32(2)
        return 2 * (1 - t) * t
    if name == "gelu":
        return _gelu_grad(y)
    if name == "stair":
        return np.where(np.floor(y) == y, f32(0), f32(1))
    if name == "hardtan":
        return ((y > -1) & (y < 1)).astype(f32)
    if name == "lhtan":
        return np.where((y > 0) & (y < 1), f32(1), f32(0.001))
    if name == "plse":
        return np.where((y < 0) | (y > 1), f32(0.01), f32(0.125))
    if name.startswith("normalize_channels") or name == "revleaky":
        raise AssertionError("handled in gradient()")
    return _grad_base(y, x, name)


def gradient(delta, y, code, x=None):
    name = ACTIVATIONS[code] if isinstance(code, int) else code
    # AB's GPU build: normalize_channels delta *= y where y > 0; the softmax ones
    # delta *= y (1 - y), non-finite results 0; revleaky divides by leaky's gradient
    if name == "normalize_channels":
        delta *= np.where(y > 0, y, f32(1)).astype(f32)
        return delta
    if name.startswith("normalize_channels"):
        with np.errstate(all="ignore"):
            d = delta * (y * (f32(1) - y))
        delta[...] = np.where(np.isfinite(d), d, f32(0))
        return delta
    if name == "revleaky":
        delta /= np.where(y > 0, f32(1), f32(0.1))
        return delta
    if name in ("swish", "mish", "hard_mish") and x is None:
        raise ValueError(f"gradient: the {name} gradient needs the pre-activation x")
    delta *= _grad(y, x, name).astype(f32)
    return delta


# -- batch norm in training, in Darknet's float32 summation order -----------------------------
def _by_channel(a):
    """[N, C, ...] -> [C, N*spatial] in Darknet's loop order (batch outer, spatial inner)."""
    n, c = a.shape[:2]
    return a.reshape(n, c, -1).transpose(1, 0, 2).reshape(c, -1)


def _seq_sum(a):
    """Sequential float32 sum along the last axis (Darknet's `s += a[i]` loop)."""
    if a.shape[-1] == 0:
        return np.zeros(a.shape[:-1], f32)
    return np.cumsum(a, axis=-1, dtype=f32)[..., -1]


def batchnorm_train(x, scales, biases, rolling_mean, rolling_variance, mean, variance,
                    x_saved, x_norm, keep):
    n, c = x.shape[:2]
    xc = _by_channel(x)
    count = xc.shape[1]
    mean[...] = _seq_sum(xc) * f32(1.0 / count)
    d = (xc - mean[:, None]).astype(np.float64)
    v = np.zeros(c, f32)
    for i in range(count):              # float += (double)pow(d, 2): round to float each step
        v = (v.astype(np.float64) + d[:, i] * d[:, i]).astype(f32)
    variance[...] = v * f32(1.0 / max(count - 1, 1))
    rolling_mean *= f32(keep)
    rolling_mean += f32(1.0 - keep) * mean
    rolling_variance *= f32(keep)
    rolling_variance += f32(1.0 - keep) * variance
    shp = (1, c) + (1,) * (x.ndim - 2)
    x_saved[...] = x
    sd = np.sqrt((variance + f32(1e-5)).astype(np.float64)).reshape(shp)
    x_norm[...] = ((x - mean.reshape(shp)).astype(np.float64) / sd).astype(f32)
    x[...] = (x_norm * scales.reshape(shp)).astype(f32) + biases.reshape(shp)
    return x


def batchnorm_backward(delta, x_saved, x_norm, mean, variance, scales, bias_grad, scale_grad):
    n, c = delta.shape[:2]
    shp = (1, c) + (1,) * (delta.ndim - 2)
    d3 = delta.reshape(n, c, -1)
    for b in range(n):                  # backward_bias: per image sum_array, then added
        bias_grad += _seq_sum(d3[b])
    scale_grad += _seq_sum(_by_channel(delta) * _by_channel(x_norm))
    ds = (delta * scales.reshape(shp)).astype(f32)
    centred = (x_saved - mean.reshape(shp)).astype(f32)
    count = d3.shape[0] * d3.shape[2]
    veps = (variance + f32(1e-5)).astype(np.float64)
    md = (_seq_sum(_by_channel(ds)).astype(np.float64) * (-1.0 / np.sqrt(veps))).astype(f32)
    vd = (_seq_sum(_by_channel(ds * centred)).astype(np.float64)
          * (-0.5 * np.power(veps, -1.5))).astype(f32)
    md_term = (md / f32(count)).astype(f32)
    delta[...] = (ds.astype(np.float64) / np.sqrt(veps).reshape(shp)
                  + (vd.astype(np.float64) * 2.0).reshape(shp) * centred / count
                  + md_term.astype(np.float64).reshape(shp)).astype(f32)
    return delta
