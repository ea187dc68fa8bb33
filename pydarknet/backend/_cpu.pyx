# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin wrappers over the C core (src_c/). Private: call pydarknet.backend.cpu, which
validates dtype / contiguity / shapes. Every array argument here must be a float32
C-contiguous numpy array of the size the C core will touch."""

cimport numpy as cnp
from scipy.linalg.cython_blas cimport sgemm as _scipy_sgemm

cnp.import_array()

cdef extern from "blas.h":
    ctypedef void (*pdn_sgemm_t)(char*, char*, int*, int*, int*, float*, float*, int*,
                                 float*, int*, float*, float*, int*) noexcept nogil
    void pdn_set_sgemm(pdn_sgemm_t fn) noexcept nogil
    int pdn_set_gemm_onednn(int on) noexcept nogil
    int pdn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc) noexcept nogil
    void pdn_set_num_threads(int n) noexcept nogil
    int pdn_get_num_threads() noexcept nogil

cdef extern from "activations.h":
    int pdn_activate_channels(float *x, int batch, int channels, Py_ssize_t spatial,
                              int code) noexcept nogil
    int pdn_gradient(float *delta, const float *y, const float *x, int batch, int channels,
                     Py_ssize_t spatial, int code) noexcept nogil
    Py_ssize_t pdn_count_nonfinite(const float *x, Py_ssize_t n) noexcept nogil

cdef extern from "conv.h":
    int pdn_conv2d(const float *x, const float *w, float *out, int N, int C, int H, int W,
                   int F, int kh, int kw, int OH, int OW, int sy, int sx, int py, int px,
                   int dil, int groups) noexcept nogil
    int pdn_conv2d_backward(const float *x, const float *w, const float *delta, float *dx,
                            float *dw, int N, int C, int H, int W, int F, int kh, int kw,
                            int OH, int OW, int sy, int sx, int py, int px, int dil,
                            int groups) noexcept nogil

cdef extern from "onednn_conv.h":
    int PDN_ONEDNN_UNAVAILABLE
    int PDN_ONEDNN_DECLINED
    int PDN_ONEDNN_SGEMM
    int pdn_onednn_built() noexcept nogil
    int pdn_onednn_conv2d(const float *x, const float *w, float *out, int N, int C, int H,
                          int W, int F, int kh, int kw, int OH, int OW, int sy, int sx, int py,
                          int px, int dil, int groups) noexcept nogil
    int pdn_onednn_conv2d_inference(const float *x, const float *w, float *out, int N, int C,
                                    int H, int W, int F, int kh, int kw, int OH, int OW, int sy,
                                    int sx, int py, int px, int dil, int groups,
                                    const float *scale, const float *mean, const float *var,
                                    const float *bias, float eps, int act) noexcept nogil
    int pdn_onednn_conv2d_backward(const float *x, const float *w, const float *delta,
                                   float *dx, float *dw, int N, int C, int H, int W, int F,
                                   int kh, int kw, int OH, int OW, int sy, int sx, int py,
                                   int px, int dil, int groups) noexcept nogil
    int pdn_onednn_conv2d_supported(int N, int C, int H, int W, int F, int kh, int kw, int OH,
                                    int OW, int sy, int sx, int py, int px, int dil,
                                    int groups, int act) noexcept nogil
    const char *pdn_onednn_conv2d_impl(int N, int C, int H, int W, int F, int kh, int kw,
                                       int OH, int OW, int sy, int sx, int py, int px, int dil,
                                       int groups, int act) noexcept nogil
    void pdn_onednn_clear_cache() noexcept nogil

cdef extern from "winograd.h":
    int PDN_WINOGRAD_DECLINED
    int pdn_winograd_built() noexcept nogil
    int pdn_winograd_applies(int C, int H, int W, int F, int kh, int kw, int OH, int OW,
                             int sy, int sx, int py, int px, int dil, int groups) noexcept nogil
    int pdn_winograd_conv3x3(const float *x, const float *w, float *out, int N, int C, int H,
                             int W, int F, int kh, int kw, int OH, int OW, int sy, int sx,
                             int py, int px, int dil, int groups) noexcept nogil
    void pdn_winograd_clear_cache() noexcept nogil

cdef extern from "pool.h":
    void pdn_maxpool(const float *x, float *out, int NC, int H, int W, int OH, int OW,
                     int size, int sy, int sx, int pad) noexcept nogil
    void pdn_local_avgpool(const float *x, float *out, int NC, int H, int W, int OH, int OW,
                           int size, int sy, int sx, int pad) noexcept nogil
    void pdn_global_avgpool(const float *x, float *out, int NC, long spatial) noexcept nogil
    void pdn_maxpool_train(const float *x, float *out, int *indexes, int NC, int H, int W,
                           int OH, int OW, int size, int sy, int sx, int pad) noexcept nogil
    void pdn_maxpool_backward(const float *delta, const int *indexes, float *dx,
                              Py_ssize_t planes, Py_ssize_t per_plane,
                              Py_ssize_t dx_per_plane) noexcept nogil
    void pdn_local_avgpool_backward(const float *delta, float *dx, int NC, int H, int W,
                                    int OH, int OW, int size, int sy, int sx,
                                    int pad) noexcept nogil

cdef extern from "batchnorm.h":
    void pdn_add_bias(float *x, const float *b, int N, int C, Py_ssize_t spatial) noexcept nogil
    void pdn_batchnorm_inference(float *x, const float *scale, const float *mean,
                                 const float *var, const float *bias, float eps,
                                 int N, int C, Py_ssize_t spatial) noexcept nogil
    int pdn_bias_bn_activate(float *x, const float *scale, const float *mean, const float *var,
                             const float *bias, float eps, int N, int C, Py_ssize_t spatial,
                             int code) noexcept nogil
    void pdn_batchnorm_train(float *x, const float *scale, const float *bias,
                             float *rolling_mean, float *rolling_var, float *mean, float *var,
                             float *x_saved, float *x_norm, float keep, float one_minus_keep,
                             int N, int C, Py_ssize_t spatial) noexcept nogil
    void pdn_batchnorm_backward(float *delta, const float *x, const float *x_norm,
                                const float *mean, const float *var, const float *scale,
                                float *bias_grad, float *scale_grad, int N, int C,
                                Py_ssize_t spatial) noexcept nogil

cdef extern from "boxes.h":
    int pdn_best_iou(const float *truths, int K, const float *preds, Py_ssize_t M,
                     float *best) noexcept nogil

cdef extern from "upsample.h":
    void pdn_upsample(const float *inp, float *out, int NC, int H, int W, int stride,
                      float scale) noexcept nogil
    void pdn_downsample_sum(const float *inp, float *out, int NC, int H, int W, int OH,
                            int OW, int stride, float scale) noexcept nogil

# hand scipy's BLAS sgemm (Fortran signature) to the C core once
pdn_set_sgemm(<pdn_sgemm_t>_scipy_sgemm)


cdef inline float *_ptr(cnp.ndarray a):
    return <float *>cnp.PyArray_DATA(a)


def set_gemm_onednn(bint on):
    """Whether the C core's matrix products use oneDNN's sgemm (where built with it) or
    scipy's BLAS; returns the setting in force."""
    return bool(pdn_set_gemm_onednn(on))


def set_num_threads(int n):
    """OpenMP thread count of the C core's loops."""
    pdn_set_num_threads(n)


def get_num_threads():
    return pdn_get_num_threads()


def gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
         cnp.ndarray a, int lda, cnp.ndarray b, int ldb, float beta, cnp.ndarray c, int ldc):
    cdef int rc
    cdef float *pa = _ptr(a)
    cdef float *pb = _ptr(b)
    cdef float *pc = _ptr(c)
    with nogil:
        rc = pdn_gemm(trans_a, trans_b, M, N, K, alpha, pa, lda, pb, ldb, beta, pc, ldc)
    if rc != 0:
        raise RuntimeError("gemm: no BLAS sgemm available")


def onednn_built():
    """Whether this extension was built with oneDNN."""
    return bool(pdn_onednn_built())


def onednn_conv2d_path(int N, int C, int H, int W, int F, int kh, int kw, int OH, int OW,
                       int sy, int sx, int py, int px, int dil, int groups, int act=-1):
    """oneDNN's implementation name for this geometry's forward (act -1), inference with the
    activation code act fused (act >= 0) or backward (act -2), or None when oneDNN does not
    take it (not built, or declined: im2col + sgemm runs)."""
    cdef const char *name
    if pdn_onednn_conv2d_supported(N, C, H, W, F, kh, kw, OH, OW, sy, sx, py, px, dil,
                                   groups, act) != 0:
        return None
    name = pdn_onednn_conv2d_impl(N, C, H, W, F, kh, kw, OH, OW, sy, sx, py, px, dil, groups,
                                  act)
    return name.decode("ascii", "replace")


def onednn_clear_cache():
    """Frees oneDNN's cached primitives and buffers."""
    with nogil:
        pdn_onednn_clear_cache()


def _onednn_error(op, int rc):
    if rc == -2:
        raise MemoryError(f"{op}: cannot allocate oneDNN's buffers")
    raise RuntimeError(f"{op}: oneDNN failed (status {rc}); PYDARKNET_ONEDNN=0 uses "
                       f"im2col + sgemm instead")


# what conv2d_inference did: all of it, or nothing (the caller runs the convolution, then the
# batch norm or bias and the activation), with the C core's im2col + sgemm being the faster
# convolution here (INFERENCE_SGEMM) or with any convolution (INFERENCE_APART)
INFERENCE_DONE, INFERENCE_APART, INFERENCE_SGEMM = 0, 1, 2


def conv2d_inference(cnp.ndarray x, cnp.ndarray w, cnp.ndarray out, int N, int C, int H,
                     int W, int F, int kh, int kw, int OH, int OW, int sy, int sx, int py,
                     int px, int dil, int groups, scale, mean, var, cnp.ndarray bias,
                     float eps, int act):
    """oneDNN's convolution with the batch norm (scale, mean, var: arrays or all None) or the
    bias, and the activation fused. Returns INFERENCE_DONE, or INFERENCE_APART /
    INFERENCE_SGEMM where oneDNN does not take it (nothing written)."""
    cdef int rc
    cdef float *px_ = _ptr(x)
    cdef float *pw = _ptr(w)
    cdef float *po = _ptr(out)
    cdef float *pb = _ptr(bias)
    cdef float *ps = NULL if scale is None else _ptr(<cnp.ndarray>scale)
    cdef float *pm = NULL if scale is None else _ptr(<cnp.ndarray>mean)
    cdef float *pv = NULL if scale is None else _ptr(<cnp.ndarray>var)
    with nogil:
        rc = pdn_onednn_conv2d_inference(px_, pw, po, N, C, H, W, F, kh, kw, OH, OW, sy, sx,
                                         py, px, dil, groups, ps, pm, pv, pb, eps, act)
    if rc == PDN_ONEDNN_SGEMM:
        return INFERENCE_SGEMM
    if rc == PDN_ONEDNN_DECLINED or rc == PDN_ONEDNN_UNAVAILABLE:
        return INFERENCE_APART
    if rc != 0:
        _onednn_error("conv2d_inference", rc)
    return INFERENCE_DONE


def winograd_built():
    """Whether the Winograd path was built (it needs oneDNN)."""
    return bool(pdn_winograd_built())


def winograd_applies(int C, int H, int W, int F, int kh, int kw, int OH, int OW, int sy,
                     int sx, int py, int px, int dil, int groups):
    """Whether conv2d_winograd takes this geometry (3x3, stride 1, large enough output)."""
    return bool(pdn_winograd_applies(C, H, W, F, kh, kw, OH, OW, sy, sx, py, px, dil, groups))


def conv2d_winograd(cnp.ndarray x, cnp.ndarray w, cnp.ndarray out, int N, int C, int H,
                    int W, int F, int kh, int kw, int OH, int OW, int sy, int sx, int py,
                    int px, int dil, int groups):
    """out = conv(x, w) by Winograd's F(4x4, 3x3) (inference). Returns False where the
    geometry is not one it takes (winograd_applies; nothing written)."""
    cdef int rc
    cdef float *px_ = _ptr(x)
    cdef float *pw = _ptr(w)
    cdef float *po = _ptr(out)
    with nogil:
        rc = pdn_winograd_conv3x3(px_, pw, po, N, C, H, W, F, kh, kw, OH, OW, sy, sx, py, px,
                                  dil, groups)
    if rc == PDN_WINOGRAD_DECLINED:
        return False
    if rc != 0:
        _onednn_error("conv2d_winograd", rc)
    return True


def winograd_clear_cache():
    """Frees the Winograd path's cached matrix-product primitives."""
    with nogil:
        pdn_winograd_clear_cache()


def conv2d(cnp.ndarray x, cnp.ndarray w, cnp.ndarray out, int N, int C, int H, int W,
           int F, int kh, int kw, int OH, int OW, int sy, int sx, int py, int px,
           int dil, int groups, bint onednn=False):
    """onednn: try oneDNN first (im2col + sgemm where it declines the geometry)."""
    cdef int rc = PDN_ONEDNN_DECLINED
    cdef float *px_ = _ptr(x)
    cdef float *pw = _ptr(w)
    cdef float *po = _ptr(out)
    with nogil:
        if onednn:
            rc = pdn_onednn_conv2d(px_, pw, po, N, C, H, W, F, kh, kw, OH, OW, sy, sx, py, px,
                                   dil, groups)
        if rc == PDN_ONEDNN_DECLINED or rc == PDN_ONEDNN_UNAVAILABLE or rc == PDN_ONEDNN_SGEMM:
            rc = pdn_conv2d(px_, pw, po, N, C, H, W, F, kh, kw, OH, OW, sy, sx, py, px,
                            dil, groups)
        elif rc < 0:
            rc = rc - 100
    if rc < -100:
        _onednn_error("conv2d", rc + 100)
    if rc == -1:
        raise RuntimeError("conv2d: no BLAS sgemm available")
    if rc == -2:
        raise MemoryError("conv2d: cannot allocate the im2col workspace")
    if rc != 0:
        raise ValueError("conv2d: invalid arguments")


def activate(cnp.ndarray x, int batch, int channels, Py_ssize_t spatial, int code):
    cdef int rc
    cdef float *p = _ptr(x)
    with nogil:
        rc = pdn_activate_channels(p, batch, channels, spatial, code)
    if rc != 0:
        raise ValueError(f"activate: unknown activation code {code}")


def add_bias(cnp.ndarray x, cnp.ndarray b, int N, int C, Py_ssize_t spatial):
    cdef float *px_ = _ptr(x)
    cdef float *pb = _ptr(b)
    with nogil:
        pdn_add_bias(px_, pb, N, C, spatial)


def batchnorm_inference(cnp.ndarray x, cnp.ndarray scale, cnp.ndarray mean,
                        cnp.ndarray var, cnp.ndarray bias, float eps,
                        int N, int C, Py_ssize_t spatial):
    cdef float *px_ = _ptr(x)
    cdef float *ps = _ptr(scale)
    cdef float *pm = _ptr(mean)
    cdef float *pv = _ptr(var)
    cdef float *pb = _ptr(bias)
    with nogil:
        pdn_batchnorm_inference(px_, ps, pm, pv, pb, eps, N, C, spatial)


def best_iou(cnp.ndarray truths, cnp.ndarray preds, cnp.ndarray best):
    """best[m] = the largest IoU of preds[m] with any truth (src_c/boxes.h); truths [K, 4],
    preds [M, 4], best [M]."""
    cdef const float *pt = _ptr(truths)
    cdef const float *pp = _ptr(preds)
    cdef float *pbest = _ptr(best)
    cdef int K = truths.shape[0]
    cdef Py_ssize_t M = preds.shape[0]
    cdef int rc
    with nogil:
        rc = pdn_best_iou(pt, K, pp, M, pbest)
    if rc:
        raise MemoryError("best_iou: no memory for the boxes' edges")


def count_nonfinite(cnp.ndarray x):
    """NaN and inf values in a float32 C-contiguous array."""
    cdef const float *p = _ptr(x)
    cdef Py_ssize_t n = x.size, bad
    with nogil:
        bad = pdn_count_nonfinite(p, n)
    return bad


def bias_bn_activate(cnp.ndarray x, scale, mean, var, cnp.ndarray bias, float eps,
                     int N, int C, Py_ssize_t spatial, int code):
    """Bias (scale None) or batch norm, then an elementwise activation, one pass per plane."""
    cdef float *px_ = _ptr(x)
    cdef float *pb = _ptr(bias)
    cdef float *ps = NULL
    cdef float *pm = NULL
    cdef float *pv = NULL
    cdef int rc
    if scale is not None:
        ps = _ptr(scale)
        pm = _ptr(mean)
        pv = _ptr(var)
    with nogil:
        rc = pdn_bias_bn_activate(px_, ps, pm, pv, pb, eps, N, C, spatial, code)
    if rc != 0:
        raise ValueError(f"bias_bn_activate: activation code {code} is not elementwise")


def maxpool(cnp.ndarray x, cnp.ndarray out, int NC, int H, int W, int OH, int OW,
            int size, int sy, int sx, int pad):
    cdef float *px_ = _ptr(x)
    cdef float *po = _ptr(out)
    with nogil:
        pdn_maxpool(px_, po, NC, H, W, OH, OW, size, sy, sx, pad)


def local_avgpool(cnp.ndarray x, cnp.ndarray out, int NC, int H, int W, int OH, int OW,
                  int size, int sy, int sx, int pad):
    cdef float *px_ = _ptr(x)
    cdef float *po = _ptr(out)
    with nogil:
        pdn_local_avgpool(px_, po, NC, H, W, OH, OW, size, sy, sx, pad)


def global_avgpool(cnp.ndarray x, cnp.ndarray out, int NC, long spatial):
    cdef float *px_ = _ptr(x)
    cdef float *po = _ptr(out)
    with nogil:
        pdn_global_avgpool(px_, po, NC, spatial)


def upsample(cnp.ndarray x, cnp.ndarray out, int NC, int H, int W, int stride, float scale):
    cdef float *px_ = _ptr(x)
    cdef float *po = _ptr(out)
    with nogil:
        pdn_upsample(px_, po, NC, H, W, stride, scale)


def downsample_sum(cnp.ndarray x, cnp.ndarray out, int NC, int H, int W, int OH, int OW,
                   int stride, float scale):
    cdef float *px_ = _ptr(x)
    cdef float *po = _ptr(out)
    with nogil:
        pdn_downsample_sum(px_, po, NC, H, W, OH, OW, stride, scale)


# -- training ---------------------------------------------------------------------------------
def conv2d_backward(cnp.ndarray x, cnp.ndarray w, cnp.ndarray delta, dx, cnp.ndarray dw,
                    int N, int C, int H, int W, int F, int kh, int kw, int OH, int OW,
                    int sy, int sx, int py, int px, int dil, int groups, bint onednn=False):
    """dx: a float32 array or None (no input gradient). onednn: as conv2d."""
    cdef int rc = PDN_ONEDNN_DECLINED
    cdef float *px_ = _ptr(x)
    cdef float *pw = _ptr(w)
    cdef float *pd = _ptr(delta)
    cdef float *pdx = NULL if dx is None else _ptr(<cnp.ndarray>dx)
    cdef float *pdw = _ptr(dw)
    with nogil:
        if onednn:
            rc = pdn_onednn_conv2d_backward(px_, pw, pd, pdx, pdw, N, C, H, W, F, kh, kw, OH,
                                            OW, sy, sx, py, px, dil, groups)
        if rc == PDN_ONEDNN_DECLINED or rc == PDN_ONEDNN_UNAVAILABLE or rc == PDN_ONEDNN_SGEMM:
            rc = pdn_conv2d_backward(px_, pw, pd, pdx, pdw, N, C, H, W, F, kh, kw, OH, OW,
                                     sy, sx, py, px, dil, groups)
        elif rc < 0:
            rc = rc - 100
    if rc < -100:
        _onednn_error("conv2d_backward", rc + 100)
    if rc == -1:
        raise RuntimeError("conv2d_backward: no BLAS sgemm available")
    if rc == -2:
        raise MemoryError("conv2d_backward: cannot allocate the im2col workspace")
    if rc != 0:
        raise ValueError("conv2d_backward: invalid arguments")


def gradient(cnp.ndarray delta, cnp.ndarray y, x, int batch, int channels,
             Py_ssize_t spatial, int code):
    """x: the pre-activation (float32 array) or None."""
    cdef int rc
    cdef float *pd = _ptr(delta)
    cdef float *py = _ptr(y)
    cdef float *px_ = NULL if x is None else _ptr(<cnp.ndarray>x)
    with nogil:
        rc = pdn_gradient(pd, py, px_, batch, channels, spatial, code)
    if rc == -2:
        raise ValueError(f"gradient: activation code {code} needs the pre-activation x")
    if rc != 0:
        raise ValueError(f"gradient: unknown activation code {code}")


def maxpool_train(cnp.ndarray x, cnp.ndarray out, cnp.ndarray indexes, int NC, int H, int W,
                  int OH, int OW, int size, int sy, int sx, int pad):
    cdef float *px_ = _ptr(x)
    cdef float *po = _ptr(out)
    cdef int *pi = <int *>cnp.PyArray_DATA(indexes)
    with nogil:
        pdn_maxpool_train(px_, po, pi, NC, H, W, OH, OW, size, sy, sx, pad)


def maxpool_backward(cnp.ndarray delta, cnp.ndarray indexes, cnp.ndarray dx,
                     Py_ssize_t planes, Py_ssize_t per_plane, Py_ssize_t dx_per_plane):
    cdef float *pd = _ptr(delta)
    cdef int *pi = <int *>cnp.PyArray_DATA(indexes)
    cdef float *pdx = _ptr(dx)
    with nogil:
        pdn_maxpool_backward(pd, pi, pdx, planes, per_plane, dx_per_plane)


def local_avgpool_backward(cnp.ndarray delta, cnp.ndarray dx, int NC, int H, int W, int OH,
                           int OW, int size, int sy, int sx, int pad):
    cdef float *pd = _ptr(delta)
    cdef float *pdx = _ptr(dx)
    with nogil:
        pdn_local_avgpool_backward(pd, pdx, NC, H, W, OH, OW, size, sy, sx, pad)


def batchnorm_train(cnp.ndarray x, cnp.ndarray scale, cnp.ndarray bias,
                    cnp.ndarray rolling_mean, cnp.ndarray rolling_var, cnp.ndarray mean,
                    cnp.ndarray var, cnp.ndarray x_saved, cnp.ndarray x_norm, float keep,
                    float one_minus_keep, int N, int C, Py_ssize_t spatial):
    cdef float *px_ = _ptr(x)
    cdef float *ps = _ptr(scale)
    cdef float *pb = _ptr(bias)
    cdef float *prm = _ptr(rolling_mean)
    cdef float *prv = _ptr(rolling_var)
    cdef float *pm = _ptr(mean)
    cdef float *pv = _ptr(var)
    cdef float *pxs = _ptr(x_saved)
    cdef float *pxn = _ptr(x_norm)
    with nogil:
        pdn_batchnorm_train(px_, ps, pb, prm, prv, pm, pv, pxs, pxn, keep, one_minus_keep,
                            N, C, spatial)


def batchnorm_backward(cnp.ndarray delta, cnp.ndarray x_saved, cnp.ndarray x_norm,
                       cnp.ndarray mean, cnp.ndarray var, cnp.ndarray scale,
                       cnp.ndarray bias_grad, cnp.ndarray scale_grad, int N, int C,
                       Py_ssize_t spatial):
    cdef float *pd = _ptr(delta)
    cdef float *pxs = _ptr(x_saved)
    cdef float *pxn = _ptr(x_norm)
    cdef float *pm = _ptr(mean)
    cdef float *pv = _ptr(var)
    cdef float *ps = _ptr(scale)
    cdef float *pbg = _ptr(bias_grad)
    cdef float *psg = _ptr(scale_grad)
    with nogil:
        pdn_batchnorm_backward(pd, pxs, pxn, pm, pv, ps, pbg, psg, N, C, spatial)
