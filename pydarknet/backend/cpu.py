"""The CPU backend: numpy arrays (float32, C-contiguous, NCHW) and the C core (``_cpu``).

:class:`CpuBackend` implements the kernels of :class:`pydarknet.backend.base.Backend`, which
checks every op's arguments first; the work itself (no per-element Python) runs in the C core
with the GIL released. Get the backend with ``pydarknet.backend.get_backend("cpu")``.
"""

import os

import numpy as np

from ..host_math import logistic, softmax_rows
from .base import Backend, channel_geometry
from .checks import CHANNEL_CODES, F32, LINEAR, activation_code
from . import onednn


def _load_core():
    # libgomp reads its wait policy once, when it is loaded together with _cpu. Its default
    # keeps idle OpenMP threads spinning for 300,000 rounds after each parallel loop, where
    # they fight any other process's threads for the cores (measured on 2 cores beside one
    # busy process: yolov4-tiny 416 forward 55-60 ms passive, 70-530 ms spinning 1e4-1e5
    # rounds). Sleeping at once (PASSIVE) costs a wake-up at each of the ~200 parallel loops
    # of a forward: yolov4-tiny 35 ms on a quiet machine. 1,000 rounds (what libgomp itself
    # uses when threads outnumber cores) gives most of both: 30-31 ms quiet, 62-66 ms beside
    # a busy process; training the same. Loaded so unless the user chose a policy or a
    # count; the process environment is left as it was.
    chosen = {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} & set(os.environ)
    if not chosen:
        os.environ["GOMP_SPINCOUNT"] = "1000"
    try:
        onednn.preload()     # libdnnl.so.3 from the onednn-cpu-gomp wheel, wherever it is
        from . import _cpu
    finally:
        if not chosen:
            os.environ.pop("GOMP_SPINCOUNT", None)
    # the matrix products on the same threads (oneDNN's sgemm) unless PYDARKNET_ONEDNN=0
    _cpu.set_gemm_onednn(onednn.requested())
    return _cpu


_cpu = _load_core()



class CpuBackend(Backend):
    """The op API on numpy arrays; the checks are the base class's."""

    name = "cpu"
    HOST_ARRAYS = True               # backend arrays are numpy arrays: parameters never move
    SIZE_TARGET = "the C core"
    TOTALS = False                   # the C core indexes whole arrays with size_t

    def __init__(self):
        super().__init__()
        # convolutions through oneDNN where it takes the geometry (im2col + sgemm elsewhere),
        # unless the extension was built without it or PYDARKNET_ONEDNN=0
        self.onednn = bool(_cpu.onednn_built()) and onednn.requested()
        # inference's large 3x3 stride-1 convolutions by Winograd (PYDARKNET_WINOGRAD=0: not)
        self.winograd = self.onednn and bool(_cpu.winograd_built()) and \
            onednn.winograd_requested()

    # -- what an array is here ---------------------------------------------------------------
    CONTIGUOUS_HINT = "use numpy.ascontiguousarray"

    def _check_kind(self, op, argname, a, dtype):
        if not isinstance(a, np.ndarray):
            raise ValueError(f"{op}: {argname} must be a numpy {dtype.name} array, got "
                             f"{type(a).__name__}")

    def _check_array(self, op, argname, a, ndim=None, min_ndim=None, dtype=F32):
        super()._check_array(op, argname, a, ndim, min_ndim, dtype)
        if a.size > 0 and not a.flags.writeable and argname in ("x", "out", "c"):
            raise ValueError(f"{op}: {argname} is read-only")

    def _check_any(self, op, argname, a):
        if not isinstance(a, np.ndarray):
            raise ValueError(f"{op}: {argname} must be a numpy array, got {type(a).__name__}")
        if a.dtype not in (F32, np.dtype(np.int32)):
            raise ValueError(f"{op}: {argname} must be float32 or int32, got {a.dtype}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{op}: {argname} must be C-contiguous (use "
                             f"numpy.ascontiguousarray)")
        return a.dtype

    def _is_device(self, a):
        return False                 # numpy arrays are host arrays

    def _address(self, a):
        return a.__array_interface__["data"][0]

    def _shares_memory(self, a, b):
        return np.may_share_memory(a, b)

    # -- memory planning (pydarknet.output_pool) ---------------------------------------------
    def address(self, a):
        """Where the array's memory starts."""
        return self._address(a)

    def view_at(self, array, shape, offset=0):
        """An array of ``shape`` over the elements ``offset``, ``offset + 1``, ... of the
        contiguous ``array`` seen flat (its memory, not a copy)."""
        size = int(np.prod(shape, dtype=np.int64))
        return array.reshape(-1)[offset:offset + size].reshape(shape)

    def _is_writable(self, a):
        return a.flags.writeable

    # -- allocation and transfer -------------------------------------------------------------
    def _empty(self, shape, dtype):
        return np.empty(shape, dtype)

    def _zeros(self, shape, dtype):
        return np.zeros(shape, dtype)

    def _to_numpy(self, a):
        return a

    def _from_numpy(self, a):
        return a                     # already float32 C-order: no copy

    def _copy_from_numpy(self, dst, src):
        if src.size and self._address(src) != self._address(dst):
            np.copyto(dst, src.reshape(dst.shape))
        return dst

    def _copy(self, dst, src):
        np.copyto(dst, src.reshape(dst.shape))
        return dst

    def _fill(self, a, value, dtype):
        a.fill(value)
        return a

    def _axpy(self, alpha, x, y):
        xv = x.reshape(y.shape)
        if alpha == 1:
            y += xv
        else:
            y += F32.type(alpha) * xv
        return y

    def _all_finite(self, a):
        return _cpu.count_nonfinite(a) == 0

    def _synchronize(self):
        pass                         # nothing queued on the CPU

    # -- convolution / products --------------------------------------------------------------
    def _conv2d(self, x, w, out, geo):
        n, c, h, wd, f, cg, kh, kw, sy, sx, py, px, dil, g = geo
        _cpu.conv2d(x, w, out, n, c, h, wd, f, kh, kw, out.shape[2], out.shape[3], sy, sx, py,
                    px, dil, g, self.onednn)
        return out

    def _conv2d_activate_inference(self, x, w, out, geo, biases, a, scales, mean, variance,
                                   eps, n, c, spatial):
        nb, ci, h, wd, f, cg, kh, kw, sy, sx, py, px, dil, g = geo
        oh, ow = out.shape[2], out.shape[3]
        if self.winograd and _cpu.conv2d_winograd(x, w, out, nb, ci, h, wd, f, kh, kw, oh, ow,
                                                  sy, sx, py, px, dil, g):
            pass                 # the convolution; batch norm or bias and activation below
        elif self.onednn:    # batch norm / bias and activation inside oneDNN's convolution
            done = _cpu.conv2d_inference(x, w, out, nb, ci, h, wd, f, kh, kw, oh, ow, sy, sx,
                                         py, px, dil, g, scales, mean, variance, biases, eps, a)
            if done == _cpu.INFERENCE_DONE:
                return out
            # apart, by im2col + sgemm where that is the faster path, else oneDNN's
            _cpu.conv2d(x, w, out, nb, ci, h, wd, f, kh, kw, oh, ow, sy, sx, py, px, dil, g,
                        done == _cpu.INFERENCE_APART)
        else:
            self._conv2d(x, w, out, geo)
        if scales is None:
            return self._bias_activate(out, biases, a, n, c, spatial)
        return self._batchnorm_activate_inference(out, scales, mean, variance, biases, a, eps,
                                                  n, c, spatial)

    def conv2d_path(self, n, c, h, w, f, kh, kw, oh, ow, stride_y, stride_x, pad_y, pad_x,
                    dilation, groups, activation=None, backward=False):
        """Which code runs this convolution: "winograd-f4x4-3x3" (inference's large 3x3
        stride-1 convolutions), "onednn:<oneDNN's implementation>" or "im2col+sgemm"
        (oneDNN off, not built, or not taking the geometry). By default the
        plain forward (training); with ``activation``, conv2d_activate_inference with that
        activation; with ``backward``, conv2d_backward."""
        if self.winograd and activation is not None and not backward and \
                _cpu.winograd_applies(c, h, w, f, kh, kw, oh, ow, stride_y, stride_x, pad_y,
                                      pad_x, dilation, groups):
            return onednn.WINOGRAD
        if self.onednn:
            act = -2 if backward else -1 if activation is None else activation_code(
                activation, "conv2d_path")
            impl = _cpu.onednn_conv2d_path(n, c, h, w, f, kh, kw, oh, ow, stride_y, stride_x,
                                           pad_y, pad_x, dilation, groups, act)
            if impl is not None:
                return f"onednn:{impl}"
        return onednn.FALLBACK

    def _gemm(self, ta, tb, m, n, k, alpha, a, b, beta, c):
        _cpu.gemm(ta, tb, m, n, k, alpha, a, a.shape[1], b, b.shape[1], beta, c, c.shape[1])
        return c

    # -- element-wise / per channel ----------------------------------------------------------
    def _activate(self, x, a, n, c, spatial):
        _cpu.activate(x, n, c, spatial, a)
        return x

    def _activate_copy(self, x, y, a, n, c, spatial):
        np.copyto(y, x)
        return y if a == LINEAR else self._activate(y, a, n, c, spatial)

    def _add_bias(self, x, b, n, c, spatial):
        _cpu.add_bias(x, b, n, c, spatial)
        return x

    def _bias_activate(self, x, b, a, n, c, spatial):
        if a in CHANNEL_CODES:
            self._add_bias(x, b, n, c, spatial)
            return self._activate(x, a, *channel_geometry(x, a))
        _cpu.bias_bn_activate(x, None, None, None, b, 0.0, n, c, spatial, a)
        return x

    def _batchnorm_inference(self, x, scales, mean, variance, biases, eps, n, c, spatial):
        _cpu.batchnorm_inference(x, scales, mean, variance, biases, eps, n, c, spatial)
        return x

    def _batchnorm_activate_inference(self, x, scales, mean, variance, biases, a, eps, n, c,
                                      spatial):
        if a in CHANNEL_CODES:
            self._batchnorm_inference(x, scales, mean, variance, biases, eps, n, c, spatial)
            return self._activate(x, a, *channel_geometry(x, a))
        _cpu.bias_bn_activate(x, scales, mean, variance, biases, eps, n, c, spatial, a)
        return x

    # -- copies between layers' outputs ------------------------------------------------------
    def _copy_rows(self, src, dst, n, s_per, d_per, count, so, do, accumulate):
        s, d = src.reshape(n, s_per), dst.reshape(n, d_per)
        if accumulate:
            d[:, do:do + count] += s[:, so:so + count]
        else:
            d[:, do:do + count] = s[:, so:so + count]
        return dst

    def _shortcut_add(self, out, add, n, o_per, a_per, m, spatial, weights, accumulate):
        o, a = out.reshape(n, o_per), add.reshape(n, a_per)
        values = a[:, :m]
        if weights is not None:
            if weights.size == 1:
                values = values * weights[0]
            else:
                c = m // spatial
                values = (values.reshape(n, c, spatial) * weights[:c, None]).reshape(-1, m)
        if accumulate:
            o[:, :m] += values
        else:
            o[:, :m] = values
        return out

    # -- layer-specific forward ops ----------------------------------------------------------
    def _yolo_activate(self, x, out, n, anchors, entries, scale_x_y, new_coords):
        # in place in out: the same float32 operations as logistic(), without a head-sized
        # temporary per step (a training batch's head is megabytes)
        np.copyto(out, x.reshape(out.shape))
        v = out.reshape(n, anchors, entries, -1)
        parts = [v[:, :, 0:2], v[:, :, 4:]] if not new_coords else []
        with np.errstate(over="ignore"):
            for part in parts:     # new_coords heads are activated in the conv before
                np.negative(part, out=part)
                np.exp(part, out=part)
                np.add(F32.type(1), part, out=part)
                np.divide(F32.type(1), part, out=part)
        xy = v[:, :, 0:2]
        np.multiply(xy, F32.type(scale_x_y), out=xy)
        np.add(xy, F32.type(-0.5 * (scale_x_y - 1)), out=xy)
        return out

    def _softmax(self, x, out, groups, n, per, temperature):
        np.copyto(out, softmax_rows(x.reshape(n, groups, -1), temperature).reshape(out.shape))
        return out

    @staticmethod
    def _scale_view(src, scale, n, c, spatial, scale_wh):
        return (scale.reshape(n, 1, spatial) if scale_wh else scale.reshape(n, c, 1),
                src.reshape(n, c, spatial))

    def _scale_channels(self, src, scale, out, n, c, spatial, scale_wh):
        sv, s3 = self._scale_view(src, scale, n, c, spatial, scale_wh)
        np.copyto(out, (s3 * sv).reshape(out.shape))
        return out

    def _scale_channels_backward(self, delta, src, scale, dsrc, dscale, n, c, spatial,
                                 scale_wh):
        sv, s3 = self._scale_view(src, scale, n, c, spatial, scale_wh)
        d = delta.reshape(s3.shape)
        if dscale is not None:
            grad = (d * s3).sum(axis=1 if scale_wh else 2)
            dscale += grad.reshape(dscale.shape)
        if dsrc is not None:
            dsrc += (d * sv).reshape(dsrc.shape)

    def _sam(self, src, x, out):
        np.multiply(src.reshape(out.shape), x.reshape(out.shape), out=out)
        return out

    def _sam_backward(self, delta, src, x, dx, dsrc, n):
        d = delta.reshape(-1)
        if dx is not None:
            dx.reshape(-1)[...] += d * src.reshape(-1)
        if dsrc is not None:
            dsrc.reshape(-1)[...] += d * x.reshape(-1)

    # -- pooling / resampling ----------------------------------------------------------------
    def _maxpool(self, x, out, args):
        _cpu.maxpool(x, out, *args)
        return out

    def _local_avgpool(self, x, out, args):
        _cpu.local_avgpool(x, out, *args)
        return out

    def _global_avgpool(self, x, out, planes, hw):
        _cpu.global_avgpool(x, out, planes, hw)
        return out

    def _upsample(self, x, out, nc, h, w, stride, scale, accumulate):
        dst = np.empty_like(out) if accumulate else out
        _cpu.upsample(x, dst, nc, h, w, stride, scale)
        if accumulate:
            out += dst
        return out

    def _downsample_sum(self, x, out, nc, h, w, stride, scale, accumulate):
        dst = np.empty_like(out) if accumulate else out
        _cpu.downsample_sum(x, dst, nc, h, w, out.shape[2], out.shape[3], stride, scale)
        if accumulate:
            out += dst
        return out

    # -- training (backward) -----------------------------------------------------------------
    def _conv2d_backward(self, x, w, delta, dx, dw, geo):
        n, c, h, wd, f, cg, kh, kw, sy, sx, py, px, dil, g = geo
        _cpu.conv2d_backward(x, w, delta, dx, dw, n, c, h, wd, f, kh, kw, delta.shape[2],
                             delta.shape[3], sy, sx, py, px, dil, g, self.onednn)
        return dw

    def _gradient(self, delta, y, x, a, n, c, spatial):
        _cpu.gradient(delta, y, x, n, c, spatial, a)
        return delta

    def _maxpool_train(self, x, out, indexes, args):
        _cpu.maxpool_train(x, out, indexes, *args)
        return out

    def _maxpool_backward(self, delta, indexes, dx):
        if delta.ndim >= 2 and dx.ndim >= 2 and delta.shape[:2] == dx.shape[:2]:
            planes = delta.shape[0] * delta.shape[1]   # argmaxes stay in their (image, channel)
        else:
            planes = 1
        _cpu.maxpool_backward(delta, indexes, dx, planes, delta.size // planes,
                              dx.size // planes)
        return dx

    def _local_avgpool_backward(self, delta, dx, args):
        _cpu.local_avgpool_backward(delta, dx, *args)
        return dx

    def _batchnorm_train(self, x, scales, biases, rolling_mean, rolling_variance, mean,
                         variance, x_saved, x_norm, keep, n, c, spatial):
        _cpu.batchnorm_train(x, scales, biases, rolling_mean, rolling_variance, mean, variance,
                             x_saved, x_norm, keep, 1.0 - keep, n, c, spatial)
        return x

    def _batchnorm_backward(self, delta, x_saved, x_norm, mean, variance, scales, bias_grad,
                            scale_grad, n, c, spatial):
        _cpu.batchnorm_backward(delta, x_saved, x_norm, mean, variance, scales, bias_grad,
                                scale_grad, n, c, spatial)
        return delta

    def _backward_bias(self, bias_grad, delta, n, c, spatial):
        sums = delta.reshape(n, c, -1).sum(axis=(0, 2), dtype=np.float64)
        bias_grad += sums.astype(F32).reshape(bias_grad.shape)
        return bias_grad

    def _global_avgpool_backward(self, delta, dx, nc, hw):
        dx.reshape(nc, -1)[...] += delta.reshape(nc, 1) / F32.type(hw)
        return dx

    def _sgd_update(self, p, u, g, step, neg_decay_b, momentum, decayed):
        u += g
        if decayed:
            u += neg_decay_b * p
        p += step * u
        u *= momentum
        return p

    # -- threads -----------------------------------------------------------------------------
    def _set_num_threads(self, n):
        """The C core's OpenMP loops and, when threadpoolctl is installed, BLAS."""
        _cpu.set_num_threads(n)
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return
        threadpool_limits(n, user_api="blas")

    def _get_num_threads(self):
        return _cpu.get_num_threads()
