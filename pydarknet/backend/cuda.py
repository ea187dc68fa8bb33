"""The CUDA backend: :class:`CudaBackend`, the op API of :mod:`pydarknet.backend` on device
arrays (``pycuda.gpuarray.GPUArray``: float32, or int32 for max-pool indexes; C-contiguous,
NCHW).

The ops' arguments are checked in :class:`.base.Backend` (the CPU backend's messages), so
misuse fails in Python, not in a kernel; the methods here are the unchecked launches. The
element-wise, pooling, batch-norm, ... ops launch the kernels of ``cuda/*.cu`` (compiled by
``make cuda`` into ``kernels.fatbin``; cuda/README.md lists them); ``gemm`` goes to cuBLAS
(:mod:`.cublas`); convolutions to cuDNN or im2col + cuBLAS (:mod:`.cuda_conv`). The device,
its memory pool, workspaces and settings are :mod:`.cuda_device`'s (one GPU per process).
Get the backend with ``pydarknet.backend.get_backend("cuda:N")``, which starts the device.

Numerics: float32 (no TF32 unless :meth:`CudaBackend.set_tf32`); reductions accumulate in
double; ``set_precision("fp16")`` changes the convolutions only (:mod:`.cuda_conv`).
"""

import numpy as np

from . import cuda_conv
from . import cuda_device as dev
from .base import Backend
from .checks import CHANNEL_CODES, F32, I32, LINEAR
from .cuda_device import _launch, _p

_EPS = 1e-5                      # Darknet's batch-norm epsilon (training)


def _forget_geometry(S, a):
    """``a`` is written by something else than maxpool_train: its indexes' window geometry
    is no longer known."""
    if a.dtype == I32 and a.size:
        S.pool_geometry.pop(_p(a), None)


class CudaBackend(Backend):
    """The op API on one GPU's device arrays; the checks are the base class's."""

    name = "cuda"
    HOST_ARRAYS = False
    SIZE_TARGET = "the CUDA kernels"
    TOTALS = True                    # the kernels index whole arrays with a C int

    def __init__(self, index=0):
        super().__init__()
        self.index = index

    def __repr__(self):
        return f"<pydarknet cuda backend on cuda:{self.index}>"

    # The device's settings and state (process-wide: one GPU per process).
    is_initialized = staticmethod(dev.is_initialized)
    device_index = staticmethod(dev.device_index)
    set_tf32 = staticmethod(dev.set_tf32)
    get_tf32 = staticmethod(dev.get_tf32)
    set_precision = staticmethod(dev.set_precision)
    get_precision = staticmethod(dev.get_precision)
    set_deterministic = staticmethod(dev.set_deterministic)
    get_deterministic = staticmethod(dev.get_deterministic)
    set_cudnn = staticmethod(cuda_conv.set_cudnn)
    get_cudnn = staticmethod(cuda_conv.get_cudnn)
    cudnn_enabled = staticmethod(cuda_conv.cudnn_enabled)
    cudnn_info = staticmethod(cuda_conv.cudnn_info)
    memory_info = staticmethod(dev.memory_info)
    empty_cache = staticmethod(dev.empty_cache)

    @property
    def S(self):
        """The started device's state (made current in this thread)."""
        return dev._ready()

    # -- what an array is here ---------------------------------------------------------------
    CONTIGUOUS_HINT = "reshape a backend array instead of slicing it"

    def _check_kind(self, op, argname, a, dtype):
        if not isinstance(a, self.S.GPUArray):
            hint = (": copy it to the GPU with from_numpy() or copy_from_numpy()"
                    if isinstance(a, np.ndarray) else "")
            raise ValueError(f"{op}: {argname} must be a {dtype.name} device array of the cuda "
                             f"backend (pycuda GPUArray), got {type(a).__name__}{hint}")

    def _check_any(self, op, argname, a):
        if not isinstance(a, self.S.GPUArray):
            raise ValueError(f"{op}: {argname} must be a device array of the cuda backend "
                             f"(pycuda GPUArray), got {type(a).__name__}")
        if a.dtype not in (F32, I32):
            raise ValueError(f"{op}: {argname} must be float32 or int32, got {a.dtype}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{op}: {argname} must be C-contiguous")
        return a.dtype

    def _is_device(self, a):
        return isinstance(a, self.S.GPUArray)

    def _address(self, a):
        return _p(a)

    def _shares_memory(self, a, b):
        if a.size == 0 or b.size == 0:
            return False
        pa, pb = _p(a), _p(b)
        return pa < pb + b.nbytes and pb < pa + a.nbytes

    def _is_writable(self, a):
        return True

    # -- allocation and transfer -------------------------------------------------------------
    def _empty(self, shape, dtype):
        S = self.S
        try:
            a = S.GPUArray(shape, dtype, allocator=S.pool.allocate)
        except S.drv.Error as exc:
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            raise dev._oom(S, nbytes, f"an array of shape {shape} ({dtype.name})", exc) from None
        _forget_geometry(S, a)
        return a

    def _zeros(self, shape, dtype):
        a = self._empty(shape, dtype)
        if a.size:
            self.S.drv.memset_d32(_p(a), 0, a.size)
        return a

    def _to_numpy(self, a):
        out = np.empty(a.shape, a.dtype)
        if a.size:
            self.S.drv.memcpy_dtoh(out, _p(a))
        return out

    def _from_numpy(self, h):
        d = self._empty(h.shape, F32)
        if h.size:
            self.S.drv.memcpy_htod(_p(d), h)
        return d

    def _copy_from_numpy(self, dst, h):
        S = self.S
        _forget_geometry(S, dst)
        if h.size:
            S.drv.memcpy_htod(_p(dst), h)
        return dst

    def _copy(self, dst, src):
        S = self.S
        _forget_geometry(S, dst)
        S.drv.memcpy_dtod(_p(dst), _p(src), dst.nbytes)
        return dst

    def _fill(self, a, value, dtype):
        S = self.S
        bits = int(np.array(value, dtype=dtype).view(np.uint32))
        _forget_geometry(S, a)
        S.drv.memset_d32(_p(a), bits, a.size)
        return a

    def _axpy(self, alpha, x, y):
        # numpy's float32 rounding: product, then sum
        _launch(self.S, "pdn_axpy", y.size, _p(x), _p(y), y.size, float(np.float32(alpha)))
        return y

    def _all_finite(self, a):
        S = self.S
        count = S.count.get(4)
        S.drv.memset_d32(count, 0, 1)
        _launch(S, "pdn_count_nonfinite", a.size, _p(a), a.size, count)
        out = np.zeros(1, np.int32)
        S.drv.memcpy_dtoh(out, count)
        return int(out[0]) == 0

    def _synchronize(self):
        dev.synchronize()

    # -- convolution / products --------------------------------------------------------------
    def _conv2d(self, x, w, out, geo):
        return cuda_conv.conv2d(self.S, x, w, out, geo)

    def _conv2d_backward(self, x, w, delta, dx, dw, geo):
        return cuda_conv.conv2d_backward(self.S, x, w, delta, dx, dw, geo)

    def _gemm(self, ta, tb, m, n, k, alpha, a, b, beta, c):
        cuda_conv._gemm_rm(self.S, ta, tb, m, n, k, alpha, _p(a) if a.size else 0, a.shape[1],
                           _p(b) if b.size else 0, b.shape[1], beta, _p(c), c.shape[1])
        return c

    # -- element-wise / per channel ----------------------------------------------------------
    def _activate(self, x, a, n, c, spatial):
        if a in CHANNEL_CODES:
            _launch(self.S, "pdn_activate_channels", n * spatial, _p(x), n, c, spatial, a)
        else:
            _launch(self.S, "pdn_activate", x.size, _p(x), x.size, a)
        return x

    def _activate_copy(self, x, y, a, n, c, spatial):
        if a in CHANNEL_CODES or a == LINEAR:
            self.S.drv.memcpy_dtod(_p(y), _p(x), x.nbytes)
            return y if a == LINEAR else self._activate(y, a, n, c, spatial)
        _launch(self.S, "pdn_activate_copy", x.size, _p(x), _p(y), x.size, a)
        return y

    def _add_bias(self, x, b, n, c, spatial):
        _launch(self.S, "pdn_add_bias", x.size, _p(x), _p(b), n, c, spatial)
        return x

    def _bias_activate(self, x, b, a, n, c, spatial):
        if a in CHANNEL_CODES:
            self._add_bias(x, b, n, c, spatial)
            return self._activate(x, a, n, c, spatial)
        _launch(self.S, "pdn_bias_activate", x.size, _p(x), _p(b), n, c, spatial, a)
        return x

    def _batchnorm_inference(self, x, scales, mean, variance, biases, eps, n, c, spatial):
        _launch(self.S, "pdn_batchnorm_inference", x.size, _p(x), _p(scales), _p(mean),
                _p(variance), _p(biases), eps, n, c, spatial)
        return x

    def _batchnorm_activate_inference(self, x, scales, mean, variance, biases, a, eps, n, c,
                                      spatial):
        if a in CHANNEL_CODES:
            self._batchnorm_inference(x, scales, mean, variance, biases, eps, n, c, spatial)
            return self._activate(x, a, n, c, spatial)
        _launch(self.S, "pdn_batchnorm_activate_inference", x.size, _p(x), _p(scales),
                _p(mean), _p(variance), _p(biases), eps, n, c, spatial, a)
        return x

    # -- copies between layers' outputs ------------------------------------------------------
    def _copy_rows(self, src, dst, n, s_per, d_per, count, so, do, accumulate):
        _launch(self.S, "pdn_copy_block", n * count, _p(src), _p(dst), n, count, s_per, so,
                d_per, do, int(accumulate))
        return dst

    def _shortcut_add(self, out, add, n, o_per, a_per, m, spatial, weights, accumulate):
        S = self.S
        mode, wp = 0, _p(out)
        if weights is not None:
            mode = 1 if weights.size == 1 else 2
            if isinstance(weights, np.ndarray):
                wp = S.weights.get(4 * weights.size)
                # from pageable memory: the copy waits for the queued kernels (the previous
                # shortcut's among them) before it overwrites the buffer
                S.drv.memcpy_htod(wp, weights)
            else:
                wp = _p(weights)
        _launch(S, "pdn_shortcut_add", n * m, _p(out), _p(add), wp, n, o_per, a_per, m, spatial,
                mode, int(accumulate))
        return out

    # -- layer-specific forward ops ----------------------------------------------------------
    def _yolo_activate(self, x, out, n, anchors, entries, scale_x_y, new_coords):
        hw = x.size // (n * anchors * entries)
        scale = float(scale_x_y)
        _launch(self.S, "pdn_yolo_activate", x.size, _p(x), _p(out), n, anchors, entries, hw,
                scale, float(np.float32(-0.5 * (scale - 1))), int(new_coords))
        return out

    def _softmax(self, x, out, groups, n, per, temperature):
        size = per // groups
        _launch(self.S, "pdn_softmax", n * groups, _p(x), size, n, per, groups, size, 1,
                temperature, _p(out))
        return out

    def _scale_channels(self, src, scale, out, n, c, spatial, scale_wh):
        _launch(self.S, "pdn_scale_channels", src.size, _p(src), _p(scale), _p(out), n, c,
                spatial, int(scale_wh))
        return out

    def _scale_channels_backward(self, delta, src, scale, dsrc, dscale, n, c, spatial,
                                 scale_wh):
        wh = int(scale_wh)
        if dscale is not None:
            work = n * spatial if wh else n * c * 32
            _launch(self.S, "pdn_scale_channels_backward_scale", work, _p(delta), _p(src),
                    _p(dscale), n, c, spatial, wh)
        if dsrc is not None:
            _launch(self.S, "pdn_scale_channels_backward_src", src.size, _p(delta), _p(scale),
                    _p(dsrc), n, c, spatial, wh)

    def _sam(self, src, x, out):
        _launch(self.S, "pdn_sam", src.size, _p(src), _p(x), _p(out), src.size)
        return out

    def _sam_backward(self, delta, src, x, dx, dsrc, n):
        if dx is not None and dsrc is not None:
            _launch(self.S, "pdn_sam_backward", n, _p(delta), _p(src), _p(x), _p(dx), _p(dsrc),
                    n)
        elif dx is not None:
            _launch(self.S, "pdn_mul_add", n, _p(delta), _p(src), _p(dx), n)
        else:
            _launch(self.S, "pdn_mul_add", n, _p(delta), _p(x), _p(dsrc), n)

    # -- pooling / resampling: one thread per output ------------------------------------------
    def _maxpool(self, x, out, args):
        _launch(self.S, "pdn_maxpool", out.size, _p(x), _p(out), *args)
        return out

    def _local_avgpool(self, x, out, args):
        _launch(self.S, "pdn_local_avgpool", out.size, _p(x), _p(out), *args)
        return out

    def _global_avgpool(self, x, out, planes, hw):
        _launch(self.S, "pdn_global_avgpool", planes * 32, _p(x), _p(out), planes, hw)
        return out

    def _upsample(self, x, out, nc, h, w, stride, scale, accumulate):
        _launch(self.S, "pdn_upsample", out.size, _p(x), _p(out), nc, h, w, stride, scale,
                int(accumulate))
        return out

    def _downsample_sum(self, x, out, nc, h, w, stride, scale, accumulate):
        _launch(self.S, "pdn_downsample_sum", out.size, _p(x), _p(out), nc, h, w, out.shape[2],
                out.shape[3], stride, scale, int(accumulate))
        return out

    # -- training (backward) -----------------------------------------------------------------
    def _gradient(self, delta, y, x, a, n, c, spatial):
        if a in CHANNEL_CODES:
            _launch(self.S, "pdn_gradient_channels", n * spatial, _p(delta), _p(y), n, c,
                    spatial, a)
        else:
            _launch(self.S, "pdn_gradient", delta.size, _p(delta), _p(y),
                    _p(x) if x is not None else 0, delta.size, a)
        return delta

    def _maxpool_train(self, x, out, indexes, args):
        S = self.S
        _launch(S, "pdn_maxpool_train", out.size, _p(x), _p(out), _p(indexes), *args)
        # remembered so that maxpool_backward can gather (deterministic) instead of scatter
        S.pool_geometry[_p(indexes)] = (indexes.nbytes,) + tuple(args)
        return out

    def _maxpool_backward(self, delta, indexes, dx):
        """Indexes written by maxpool_train (and not overwritten since) take the deterministic
        gather kernel with their window geometry; any others an atomic scatter (the order of
        additions to one cell may vary between runs)."""
        S = self.S
        geo = S.pool_geometry.get(_p(indexes))
        if geo is not None:
            nbytes, nc, h, w, oh, ow, size, sy, sx, pad = geo
            if nbytes == indexes.nbytes and delta.size == nc * oh * ow and dx.size == nc * h * w:
                _launch(S, "pdn_maxpool_backward", dx.size, _p(delta), _p(indexes), _p(dx), nc,
                        h, w, oh, ow, size, sy, sx, pad)
                return dx
        _launch(S, "pdn_index_add", delta.size, _p(delta), _p(indexes), _p(dx), delta.size,
                dx.size)
        return dx

    def _local_avgpool_backward(self, delta, dx, args):
        _launch(self.S, "pdn_local_avgpool_backward", dx.size, _p(delta), _p(dx), *args)
        return dx

    def _batchnorm_train(self, x, scales, biases, rolling_mean, rolling_variance, mean,
                         variance, x_saved, x_norm, keep, n, c, spatial):
        S = self.S
        _launch(S, "pdn_batchnorm_stats", 0, _p(x), _p(mean), _p(variance), _p(rolling_mean),
                _p(rolling_variance), keep, 1.0 - keep, n, c, spatial, grid=c)
        _launch(S, "pdn_batchnorm_normalize_train", x.size, _p(x), _p(x_saved), _p(x_norm),
                _p(mean), _p(variance), _p(scales), _p(biases), _EPS, n, c, spatial)
        return x

    def _batchnorm_backward(self, delta, x_saved, x_norm, mean, variance, scales, bias_grad,
                            scale_grad, n, c, spatial):
        """One block per channel adds to bias_grad and scale_grad and sums the mean and
        variance deltas (in double) into a scratch buffer; one element-wise pass then
        rewrites delta."""
        S = self.S
        scratch = S.small.get(8 * c)          # mean_delta[C], var_delta[C]
        md, vd = scratch, scratch + 4 * c
        _launch(S, "pdn_batchnorm_backward_reduce", 0, _p(delta), _p(x_saved), _p(x_norm),
                _p(mean), _p(variance), _p(scales), _p(bias_grad), _p(scale_grad), md, vd, _EPS,
                n, c, spatial, grid=c)
        _launch(S, "pdn_batchnorm_backward_delta", delta.size, _p(delta), _p(x_saved), _p(mean),
                _p(variance), _p(scales), md, vd, _EPS, n, c, spatial)
        return delta

    def _backward_bias(self, bias_grad, delta, n, c, spatial):
        _launch(self.S, "pdn_backward_bias", 0, _p(bias_grad), _p(delta), n, c, spatial, grid=c)
        return bias_grad

    def _global_avgpool_backward(self, delta, dx, nc, hw):
        _launch(self.S, "pdn_global_avgpool_backward", dx.size, _p(delta), _p(dx), nc, hw)
        return dx

    def _sgd_update(self, p, u, g, step, neg_decay_b, momentum, decayed):
        # bitwise numpy's float32 steps
        _launch(self.S, "pdn_sgd_update", p.size, _p(p), _p(u), _p(g), p.size, float(step),
                float(neg_decay_b), float(momentum), int(decayed), 0)
        return p

    # -- threads -----------------------------------------------------------------------------
    def _set_num_threads(self, n):
        """Host threads do no array work on this backend: accepted (checked) and ignored."""

    def _get_num_threads(self):
        return 1            # the host runs no parallel array loops on this backend
