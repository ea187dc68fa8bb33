"""The CUDA backend's convolution strategy: cuDNN where it loads and does the geometry, else
im2col + cuBLAS.

cuDNN (:mod:`.cudnn`, a ctypes binding of its legacy convolution API): descriptors and
algorithms chosen once per geometry, one growing workspace. Where cuDNN is missing, switched
off (:func:`set_cudnn`, ``PYDARKNET_CUDNN=0``) or cannot do a geometry (Darknet's output size
for dilated convolutions, an unsupported shape), a convolution takes the im2col path: im2col
into a reusable workspace, then one strided-batched SGEMM per group over as many images as the
workspace holds (1x1 stride-1 unpadded convs GEMM the input directly).

Numerics: float32 (cuBLAS's default math and cuDNN's FMA math, no TF32 unless set_tf32);
``set_precision("fp16")`` runs the im2col GEMMs on fp16 copies of their inputs with fp32
accumulation and fp32 outputs (weights stay fp32), and lets cuDNN convert its float32 tensors
down for the tensor cores. cuDNN's backward algorithms are deterministic ones while
set_deterministic is on (the default).
"""

import os

from . import cublas as _cublas
from . import cuda_device as dev
from . import cudnn as _cudnn
from ..memory import CUDA_WORKSPACE, CUDNN_WORKSPACE_LIMIT
from .checks import INT_MAX
from .cuda_device import _launch, _p

# The im2col workspace holds this many bytes of columns at most (at least one image's):
# the batch is convolved in chunks of as many images as fit.
# (pydarknet.memory estimates with the same two numbers.)
_WORKSPACE_BYTES = CUDA_WORKSPACE
# cuDNN algorithms needing more workspace than this are passed over for the next one.
_CUDNN_WORKSPACE_LIMIT = CUDNN_WORKSPACE_LIMIT


# -- settings ---------------------------------------------------------------------------------
def cudnn_wanted():
    if dev._config["cudnn"] is not None:
        return bool(dev._config["cudnn"])
    return os.environ.get("PYDARKNET_CUDNN", "1").strip().lower() not in (
        "0", "off", "false", "no")


def set_cudnn(enabled):
    """Convolve with cuDNN where it loads (the default, unless PYDARKNET_CUDNN=0) or, off, with
    im2col + cuBLAS. Turning it on after :func:`init` loads cuDNN then if it was not tried."""
    dev._config["cudnn"] = bool(enabled)
    S = dev._S
    if S is not None and enabled and not S.dnn_tried:
        dnn_start(dev._ready())


def get_cudnn():
    """Whether cuDNN is wanted (:func:`cudnn_enabled` says whether it is used)."""
    return cudnn_wanted()


def cudnn_enabled():
    """True when the convolutions go to cuDNN (wanted, loaded, a handle on the device); the
    reason when not is ``cudnn_info()["reason"]``."""
    S = dev._S
    return S is not None and S.dnn is not None and cudnn_wanted()


def cudnn_info():
    """cuDNN's state: ``enabled``, ``reason`` (why not, else None), ``version`` (major,
    minor, patch), ``library`` (the file loaded), ``plans`` (geometries set up) and
    ``fallbacks`` (a list of "geometry direction: why" for the convolutions cuDNN does not do,
    which take the im2col path)."""
    S = dev._S
    if S is None:
        reason = "the CUDA backend is not initialised"
    elif not cudnn_wanted():
        reason = ("switched off by set_cudnn(False)" if dev._config["cudnn"] is not None else
                  "switched off by PYDARKNET_CUDNN=" + os.environ.get("PYDARKNET_CUDNN", ""))
    elif S.dnn is None:
        reason = S.dnn_reason or "cuDNN was not loaded"
    else:
        reason = None
    return {
        "enabled": reason is None,
        "reason": reason,
        "version": None if S is None else S.dnn_version,
        "library": _cudnn._LIBRARY.path if S is not None and S.dnn is not None else None,
        "plans": 0 if S is None else sum(p is not None for p in S.dnn_plans.values()),
        "fallbacks": [] if S is None else [
            f"{_geometry_text(geo)} {direction}: {why}"
            for (geo, direction), why in S.dnn_fallbacks.items()],
    }



# -- convolution / products ---------------------------------------------------------------------
def _gemm_rm(S, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
             batch=1, sa=0, sb=0, sc=0, half=False):
    """Row-major C = alpha op(A) op(B) + beta C on device addresses, through cuBLAS's
    column-major GEMM with the operands swapped (C^T = op(B)^T op(A)^T). ``batch`` > 1: the
    i-th product on A + i*sa, B + i*sb, C + i*sc (strides in elements, 0: the same matrix).
    ``half``: A and B are fp16, C float32 (fp32 accumulation)."""
    cublas = _cublas
    opa = cublas.OP_T if ta else cublas.OP_N
    opb = cublas.OP_T if tb else cublas.OP_N
    lda, ldb, ldc = max(1, lda), max(1, ldb), max(1, ldc)
    h = S.blas
    if half:
        if batch == 1:
            h.gemm_ex(opb, opa, n, m, k, alpha, b, cublas.R_16F, ldb, a, cublas.R_16F, lda,
                      beta, c, cublas.R_32F, ldc)
        else:
            h.gemm_strided_batched_ex(opb, opa, n, m, k, alpha, b, cublas.R_16F, ldb, sb, a,
                                      cublas.R_16F, lda, sa, beta, c, cublas.R_32F, ldc, sc,
                                      batch)
    elif batch == 1:
        h.sgemm(opb, opa, n, m, k, alpha, b, ldb, a, lda, beta, c, ldc)
    else:
        h.sgemm_strided_batched(opb, opa, n, m, k, alpha, b, ldb, sb, a, lda, sa, beta, c, ldc,
                                sc, batch)


def _to_half(S, buf, src, count):
    """fp16 copy of ``count`` floats at address ``src`` into the growable buffer ``buf``;
    returns its address."""
    dst = buf.get(2 * count)
    _launch(S, "pdn_f32_to_f16", count, src, dst, count)
    return dst


def _chunk(n, per_image):
    """Images per im2col fill of the workspace."""
    per_image = max(per_image, 1)
    fit = max(1, _WORKSPACE_BYTES // (4 * per_image))
    return max(1, min(n, fit, INT_MAX // per_image))


def _is_direct(kh, kw, sy, sx, py, px, h, wd, oh, ow):
    """1x1, stride 1, unpadded, same size: the input is its own im2col."""
    return kh == kw == 1 and sy == sx == 1 and py == px == 0 and (oh, ow) == (h, wd)


# -- cuDNN ------------------------------------------------------------------------------------
_MISSING = object()


def _geometry_text(geo):
    n, c, h, wd, f, cg, kh, kw, oh, ow, sy, sx, py, px, dil, g = geo[:16]
    return (f"[{n},{c},{h},{wd}]->[{n},{f},{oh},{ow}] {kh}x{kw} stride {sy},{sx} pad {py},{px} "
            f"dilation {dil} groups {g}")


def dnn_start(S):
    """Load cuDNN and create its handle on the legacy default stream; where that fails,
    remember why and go on without it (the im2col path)."""
    S.dnn_tried = True
    handle = None
    try:
        lib = _cudnn.load_library()
        handle = _cudnn.Handle(lib)
        handle.set_stream(None)              # the legacy default stream, as everything else
        S.dnn_version = _cudnn.version(lib)
    except (_cudnn.CudnnError, OSError) as exc:
        if handle is not None:
            try:
                handle.destroy()
            except Exception:
                pass
        S.dnn, S.dnn_reason = None, str(exc)
        return
    S.dnn, S.dnn_reason = handle, None


def dnn_forget_plans(S):
    for plan in S.dnn_plans.values():
        if plan is not None:
            plan.destroy()
    S.dnn_plans.clear()


def _dnn_math():
    """The cudnnMathType_t of the settings: FMA (exact float32) by default, DEFAULT (TF32
    allowed on Ampere and newer) with TF32, ALLOW_CONVERSION (float32 tensors converted down
    for the tensor cores) with fp16."""
    if dev._config["precision"] == "fp16":
        return _cudnn.TENSOR_OP_MATH_ALLOW_CONVERSION
    return _cudnn.DEFAULT_MATH if dev._config["tf32"] else _cudnn.FMA_MATH


class _ConvPlan:
    """One convolution geometry on cuDNN: its tensor, filter and convolution descriptors
    (one convolution descriptor per math type an algorithm asks for) and, per direction, the
    chosen (descriptor, algorithm, workspace bytes), or None where that direction takes the
    im2col path."""

    def __init__(self, lib, geo, math, deterministic):
        n, c, h, wd, f, cg, kh, kw, oh, ow, sy, sx, py, px, dil, g = geo
        self.lib, self.geo, self.math, self.deterministic = lib, geo, math, deterministic
        self.x = self.w = self.y = None
        self.convs = {}
        self.chosen = {}
        try:
            self.x = _cudnn.TensorDescriptor(n, c, h, wd, lib=lib)
            self.w = _cudnn.FilterDescriptor(f, cg, kh, kw, lib=lib)
            self.y = _cudnn.TensorDescriptor(n, f, oh, ow, lib=lib)
            self.conv = self.conv_for(math)
        except BaseException:
            self.destroy()
            raise

    def conv_for(self, math):
        conv = self.convs.get(math)
        if conv is None:
            n, c, h, wd, f, cg, kh, kw, oh, ow, sy, sx, py, px, dil, g = self.geo
            conv = self.convs[math] = _cudnn.ConvolutionDescriptor(py, px, sy, sx, dil, dil, g,
                                                                   math, lib=self.lib)
        return conv

    def destroy(self):
        for d in [self.x, self.w, self.y] + list(self.convs.values()):
            if d is not None:
                try:
                    d.destroy()
                except Exception:
                    pass
        self.x = self.w = self.y = None
        self.convs, self.chosen = {}, {}


def _dnn_fallback(S, geo, direction, why):
    S.dnn_fallbacks[(geo, direction)] = why


def _dnn_plan(S, geo):
    """The cuDNN plan of a geometry (n, c, h, w, f, c/groups, kh, kw, oh, ow, sy, sx, py, px,
    dilation, groups) under the current settings, set up on first use; None where cuDNN is
    off or cannot do it (the reason is in cudnn_info()["fallbacks"])."""
    if S.dnn is None or not cudnn_wanted():
        return None
    math, det = _dnn_math(), dev._config["deterministic"]
    key = geo + (math, det)
    plan = S.dnn_plans.get(key, _MISSING)
    if plan is not _MISSING:
        return plan
    plan = None
    try:
        plan = _ConvPlan(S.dnn.lib, geo, math, det)
        dims = _cudnn.output_dim(plan.conv, plan.x, plan.w)
        n, f, oh, ow = geo[0], geo[4], geo[8], geo[9]
        if dims != (n, f, oh, ow):
            why = (f"cuDNN's output would be {dims[2]}x{dims[3]}, the output array's is "
                   f"{oh}x{ow}" + (" (Darknet's output size ignores the dilation)"
                                   if geo[14] > 1 else ""))
            plan.destroy()
            plan = None
            _dnn_fallback(S, geo, "all", why)
    except _cudnn.CudnnError as exc:
        if plan is not None:
            plan.destroy()
            plan = None
        if exc.category not in (2000, 3000):
            raise
        _dnn_fallback(S, geo, "all", str(exc))
    S.dnn_plans[key] = plan
    return plan


def _dnn_choose(S, plan, direction):
    """The first algorithm of cuDNN's heuristics that succeeded, is deterministic when that
    is asked for, keeps exact float32 (FMA math) unless TF32 or fp16 is on, and needs at most
    _CUDNN_WORKSPACE_LIMIT bytes of workspace: (descriptor, algo, workspace bytes), or None."""
    exact = plan.math == _cudnn.FMA_MATH
    wants_det = plan.deterministic and direction != _cudnn.FWD
    perfs = S.dnn.algorithms(direction, plan.x, plan.w, plan.conv, plan.y)
    skipped = []
    for p in perfs:
        if p.status != 0:
            continue
        if wants_det and p.determinism != _cudnn.DETERMINISTIC:
            skipped.append(f"{p.algo} (not deterministic)")
            continue
        if exact and p.math not in (_cudnn.FMA_MATH, _cudnn.DEFAULT_MATH):
            skipped.append(f"{p.algo} (tensor-op math)")
            continue
        # exact float32 keeps the FMA descriptor; otherwise the math the algorithm was rated
        # with (as cuDNN asks: the algorithm and its math type go together)
        try:
            conv = plan.conv if exact else plan.conv_for(p.math)
            ws = S.dnn.workspace_size(direction, plan.x, plan.w, conv, plan.y, p.algo)
        except _cudnn.CudnnError as exc:
            if exc.category not in (2000, 3000):
                raise
            skipped.append(f"{p.algo} ({_cudnn.status_name(exc.status)})")
            continue
        if ws > _CUDNN_WORKSPACE_LIMIT:
            skipped.append(f"{p.algo} ({ws / 2**20:.0f} MiB of workspace)")
            continue
        return conv, p.algo, ws
    _dnn_fallback(S, plan.geo, direction,
                  "no suitable cuDNN algorithm" + (f"; passed over: {', '.join(skipped)}"
                                                  if skipped else ""))
    return None


def _dnn_run(S, plan, direction, alpha, beta, a, b, out):
    """One direction on cuDNN (forward: out = conv(a=x, b=w); backward data: out = dx from
    a=w, b=delta; backward filter: out = dw from a=x, b=delta), out = alpha * result + beta *
    out. False where this direction takes the im2col path (nothing was written)."""
    if plan is None:
        return False
    entry = plan.chosen.get(direction, _MISSING)
    if entry is _MISSING:
        try:
            entry = _dnn_choose(S, plan, direction)
        except _cudnn.CudnnError as exc:
            if exc.category not in (2000, 3000):
                raise
            _dnn_fallback(S, plan.geo, direction, str(exc))
            entry = None
        plan.chosen[direction] = entry
    if entry is None:
        return False
    conv, algo, ws_bytes = entry
    ws = S.dnn_ws.get(ws_bytes) if ws_bytes else 0
    descs = {_cudnn.FWD: (plan.x, plan.w, plan.y), _cudnn.BWD_DATA: (plan.w, plan.y, plan.x),
             _cudnn.BWD_FILTER: (plan.x, plan.y, plan.w)}[direction]
    try:
        S.dnn.convolve(direction, alpha, descs[0], _p(a), descs[1], _p(b), conv, algo, ws,
                       ws_bytes, beta, descs[2], _p(out))
    except _cudnn.CudnnError as exc:
        if exc.category not in (2000, 3000):     # bad parameter / not supported: im2col
            raise
        plan.chosen[direction] = None
        _dnn_fallback(S, plan.geo, direction, str(exc))
        return False
    return True


# -- convolution ------------------------------------------------------------------------------
def conv2d(S, x, w, out, checked):
    """Darknet's convolution of x[N,C,H,W] by w[F,C//groups,kh,kw] into out[N,F,OH,OW]
    (written in full; arguments checked, ``checked`` the geometry the checks returned);
    returns ``out``. cuDNN's forward (alpha 1, beta 0) where it does this geometry, else
    im2col + SGEMM."""
    n, c, h, wd, f, cg, kh, kw, sy, sx, py, px, dil, g = checked
    oh, ow = out.shape[2], out.shape[3]
    if x.size == 0 or w.size == 0:
        S.drv.memset_d32(_p(out), 0, out.size)
        return out
    plan = _dnn_plan(S, (n, c, h, wd, f, cg, kh, kw, oh, ow, sy, sx, py, px, dil, g))
    if _dnn_run(S, plan, _cudnn.FWD, 1.0, 0.0, x, w, out):
        return out
    fg, kg, ohw = f // g, cg * kh * kw, oh * ow
    half = dev._config["precision"] == "fp16"
    es = 2 if half else 4
    wp = _to_half(S, S.half_a, _p(w), w.size) if half else _p(w)
    op_ = _p(out)
    if _is_direct(kh, kw, sy, sx, py, px, h, wd, oh, ow):
        xp = _to_half(S, S.half_b, _p(x), x.size) if half else _p(x)
        for gi in range(g):
            _gemm_rm(S, False, False, fg, ohw, cg, 1.0, wp + gi * fg * kg * es, kg,
                     xp + gi * cg * ohw * es, ohw, 0.0, op_ + gi * fg * ohw * 4, ohw,
                     batch=n, sa=0, sb=c * ohw, sc=f * ohw, half=half)
        return out
    per_image = c * kh * kw * ohw
    chunk = _chunk(n, per_image)
    col = S.col.get(4 * chunk * per_image)
    for n0 in range(0, n, chunk):
        b = min(chunk, n - n0)
        _launch(S, "pdn_im2col", b * per_image, _p(x) + n0 * c * h * wd * 4, b * c, h, wd, kh,
                kw, sy, sx, py, px, dil, oh, ow, col)
        cp = _to_half(S, S.half_b, col, b * per_image) if half else col
        for gi in range(g):
            _gemm_rm(S, False, False, fg, ohw, kg, 1.0, wp + gi * fg * kg * es, kg,
                     cp + gi * kg * ohw * es, ohw, 0.0, op_ + (n0 * f + gi * fg) * ohw * 4, ohw,
                     batch=b, sa=0, sb=per_image, sc=f * ohw, half=half)
    return out


def conv2d_backward(S, x, w, delta, dx, dw, checked):
    """Backward of :func:`conv2d` as the op API says (dw, and dx unless None, accumulated;
    OH/OW from delta; arguments checked, none empty); returns ``dw``. cuDNN's backward filter and backward data with beta 1
    (they add to dw and dx) where it does this geometry; else dw: one GEMM per image and group
    on the im2col columns (Darknet's order); dx: w^T delta into the columns, then
    ``pdn_col2im_add``, or one batched GEMM straight into dx for 1x1 stride-1 unpadded convs."""
    n, c, h, wd, f, cg, kh, kw, sy, sx, py, px, dil, g = checked
    oh, ow = delta.shape[2], delta.shape[3]
    geo = (n, c, h, wd, f, cg, kh, kw, oh, ow, sy, sx, py, px, dil, g)
    plan = _dnn_plan(S, geo)
    if _dnn_run(S, plan, _cudnn.BWD_FILTER, 1.0, 1.0, x, delta, dw):
        dw_left = None
    else:
        dw_left = dw
    if dx is not None and _dnn_run(S, plan, _cudnn.BWD_DATA, 1.0, 1.0, w, delta, dx):
        dx = None
    if dw_left is not None or dx is not None:
        _conv2d_backward_im2col(S, geo, x, w, delta, dx, dw_left)
    return dw


def _conv2d_backward_im2col(S, geo, x, w, delta, dx, dw):
    """conv2d_backward's im2col path for dw and dx, each skipped when None."""
    n, c, h, wd, f, cg, kh, kw, oh, ow, sy, sx, py, px, dil, g = geo
    fg, kg, ohw = f // g, cg * kh * kw, oh * ow
    half = dev._config["precision"] == "fp16"
    es = 2 if half else 4
    wp = (_to_half(S, S.half_a, _p(w), w.size) if half else _p(w)) if dx is not None else 0
    direct = _is_direct(kh, kw, sy, sx, py, px, h, wd, oh, ow)
    per_image = c * ohw if direct else c * kh * kw * ohw
    chunk = n if direct else _chunk(n, per_image)
    col = 0 if direct else S.col.get(4 * chunk * per_image)
    for n0 in range(0, n, chunk):
        b = min(chunk, n - n0)
        xc = _p(x) + n0 * c * h * wd * 4              # this chunk's input
        dc = _p(delta) + n0 * f * ohw * 4             # and its delta
        dh = _to_half(S, S.half_c, dc, b * f * ohw) if half else dc
        if dw is not None:
            if direct:
                src = xc
            else:
                _launch(S, "pdn_im2col", b * per_image, xc, b * c, h, wd, kh, kw, sy, sx, py,
                        px, dil, oh, ow, col)
                src = col
            if half:
                src = _to_half(S, S.half_b, src, b * per_image)
            # dw_g[fg, kg] += delta_g[fg, ohw] @ col_g[kg, ohw]^T, image by image (Darknet's
            # accumulation order)
            dwp = _p(dw)
            for i in range(b):
                for gi in range(g):
                    _gemm_rm(S, False, True, fg, kg, ohw, 1.0,
                             dh + (i * f + gi * fg) * ohw * es, ohw,
                             src + (i * per_image + gi * kg * ohw) * es, ohw, 1.0,
                             dwp + gi * fg * kg * 4, kg, half=half)
        if dx is None:
            continue
        if direct:
            # dx_g[cg, hw] += w_g^T[cg, fg] @ delta_g[fg, hw], all images in one batch
            for gi in range(g):
                _gemm_rm(S, True, False, cg, ohw, fg, 1.0, wp + gi * fg * kg * es, kg,
                         dh + gi * fg * ohw * es, ohw, 1.0,
                         _p(dx) + (n0 * c + gi * cg) * ohw * 4, ohw,
                         batch=b, sa=0, sb=f * ohw, sc=c * ohw, half=half)
        else:
            # col_g[kg, ohw] = w_g^T @ delta_g (the columns are free again), then col2im
            for gi in range(g):
                _gemm_rm(S, True, False, kg, ohw, fg, 1.0, wp + gi * fg * kg * es, kg,
                         dh + gi * fg * ohw * es, ohw, 0.0, col + gi * kg * ohw * 4, ohw,
                         batch=b, sa=0, sb=f * ohw, sc=per_image, half=half)
            _launch(S, "pdn_col2im_add", b * c * h * wd, col, b * c, h, wd, kh, kw, sy, sx, py,
                    px, dil, oh, ow, _p(dx) + n0 * c * h * wd * 4)


