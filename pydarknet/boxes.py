"""Box helpers in Darknet's conventions.

A box is ``(x_center, y_center, w, h)``; arrays of boxes have the four values in their last
axis (``[..., 4]``) and every function broadcasts over the leading axes, so
``box_iou(a[:, None], b[None])`` is the pairwise matrix (see :func:`box_iou_matrix`).

The formulas are AlexeyAB Darknet's (``src/box.c``), including its special cases (an IoU of 0
when the intersection or the union is 0, the ``0.6`` power in :func:`box_diou`, the
``1e-6`` in CIoU's alpha). Arithmetic runs in the inputs' precision: float32 boxes give the
float32 results Darknet's ``float`` code gives; the few terms Darknet evaluates in double
(``pow``, ``atan`` with ``M_PI``) are evaluated in double here too and rounded back.
"""

import math

import numpy as np

__all__ = ["box_iou", "box_iou_matrix", "best_iou", "box_giou", "box_diou", "box_ciou",
           "box_diounms", "box_iou_kind", "dx_box_iou", "IOU_KINDS"]

IOU_KINDS = ("iou", "giou", "diou", "ciou")
_PI2 = math.pi * math.pi


def _dtype(*arrays):
    dt = np.result_type(*(np.asarray(a) for a in arrays))
    return dt if dt in (np.float32, np.float64) else np.dtype(np.float64)


def _split(a, dt):
    a = np.asarray(a, dt)
    if a.shape[-1:] != (4,):
        raise ValueError(f"boxes must have 4 values (x, y, w, h) in their last axis, "
                         f"found shape {list(a.shape)}")
    return a[..., 0], a[..., 1], a[..., 2], a[..., 3]


def _scalar_or_array(r):
    return r[()] if isinstance(r, np.ndarray) and r.ndim == 0 else r


def _parts(a, b):
    """Intersection, union and the enclosing box of a and b, as box.c computes them."""
    dt = _dtype(a, b)
    ax, ay, aw, ah = _split(a, dt)
    bx, by, bw, bh = _split(b, dt)
    two = dt.type(2)
    al, ar, at, ab = ax - aw / two, ax + aw / two, ay - ah / two, ay + ah / two
    bl, br, bt, bb = bx - bw / two, bx + bw / two, by - bh / two, by + bh / two
    ow = np.minimum(ar, br) - np.maximum(al, bl)
    oh = np.minimum(ab, bb) - np.maximum(at, bt)
    inter = np.where((ow < 0) | (oh < 0), dt.type(0), ow * oh)
    union = aw * ah + bw * bh - inter
    cw = np.maximum(ar, br) - np.minimum(al, bl)
    ch = np.maximum(ab, bb) - np.minimum(at, bt)
    return dt, (ax, ay, aw, ah), (bx, by, bw, bh), inter, union, cw, ch


def _iou(inter, union, dt):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((inter == 0) | (union == 0), dt.type(0), inter / union)


def box_iou(a, b):
    """Darknet's ``box_iou``: intersection over union, 0 when either is 0. Broadcasts."""
    dt, _, _, inter, union, _, _ = _parts(a, b)
    return _scalar_or_array(_iou(inter, union, dt))


def box_iou_matrix(a, b):
    """Pairwise IoU: a [N, 4], b [M, 4] -> [N, M] (the values :func:`box_iou` gives).

    Computes each box's edges once, so it is the fast path for many boxes (NMS, mAP, the
    per-cell pass of the [yolo] loss)."""
    dt = _dtype(a, b)
    ax, ay, aw, ah = _split(np.asarray(a, dt).reshape(-1, 4), dt)
    bx, by, bw, bh = _split(np.asarray(b, dt).reshape(-1, 4), dt)
    two = dt.type(2)
    al, ar, at, ab = (ax - aw / two)[:, None], (ax + aw / two)[:, None], \
        (ay - ah / two)[:, None], (ay + ah / two)[:, None]
    bl, br, bt, bb = bx - bw / two, bx + bw / two, by - bh / two, by + bh / two
    ow = np.minimum(ar, br)
    ow -= np.maximum(al, bl)
    np.maximum(ow, 0, out=ow)           # box.c: no overlap -> intersection 0 (NaN stays NaN)
    oh = np.minimum(ab, bb)
    oh -= np.maximum(at, bt)
    np.maximum(oh, 0, out=oh)
    inter = ow
    inter *= oh
    union = (aw * ah)[:, None] + bw * bh
    union -= inter
    ok = inter != 0
    ok &= union != 0
    iou = np.zeros(inter.shape, dt)
    np.divide(inter, union, out=iou, where=ok)
    return iou


def best_iou(truths, preds):
    """For each of preds [M, 4], its largest IoU with any of truths [K, 4], NaN IoUs left out,
    at least 0 (NaN where every IoU is NaN becomes 0): the values of
    ``np.fmax(np.fmax.reduce(box_iou_matrix(truths, preds), axis=0), 0)`` in float32, from
    the C core in one pass without the [K, M] matrix (the per-cell pass of the [yolo] loss).
    """
    t = np.ascontiguousarray(truths, np.float32).reshape(-1, 4)
    p = np.ascontiguousarray(preds, np.float32).reshape(-1, 4)
    best = np.zeros(len(p), np.float32)
    if len(t) and len(p):
        from .backend.cpu import _cpu
        _cpu.best_iou(t, p, best)
    return best


def box_giou(a, b):
    """Darknet's ``box_giou``: IoU - (C - U) / C with C the enclosing box's area."""
    dt, _, _, inter, union, cw, ch = _parts(a, b)
    iou = _iou(inter, union, dt)
    c = cw * ch
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(c == 0, iou, iou - (c - union) / c)
    return _scalar_or_array(r)


def _center_term(A, B, cw, ch):
    d = (A[0] - B[0]) * (A[0] - B[0]) + (A[1] - B[1]) * (A[1] - B[1])
    c = cw * cw + ch * ch
    return d, c


def box_diounms(a, b, beta1):
    """Darknet's ``box_diounms``: IoU - (d^2 / c^2)^beta1 (used by DIoU-NMS)."""
    dt, A, B, inter, union, cw, ch = _parts(a, b)
    iou = _iou(inter, union, dt)
    d, c = _center_term(A, B, cw, ch)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.power((d / c).astype(np.float64), float(beta1)).astype(dt)
        r = np.where(c == 0, iou, iou - u)
    return _scalar_or_array(r)


def box_diou(a, b):
    """Darknet's ``box_diou``: IoU - (d^2 / c^2)^0.6 (the 0.6 power is Darknet's)."""
    return box_diounms(a, b, 0.6)


def _aspect_term(aw, ah, bw, bh):
    """atan(w_gt/h_gt) - atan(w/h) in double (CIoU's v = 4/pi^2 times its square)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (np.arctan((bw / bh).astype(np.float64))
             - np.arctan((aw / ah).astype(np.float64)))
    return d


def box_ciou(a, b):
    """Darknet's ``box_ciou`` (a: prediction, b: truth): IoU - d^2/c^2 - alpha * v."""
    dt, A, B, inter, union, cw, ch = _parts(a, b)
    iou = _iou(inter, union, dt)
    d, c = _center_term(A, B, cw, ch)
    datan = _aspect_term(A[2], A[3], B[2], B[3])
    ar_loss = (4 / _PI2 * datan * datan).astype(dt)
    alpha = (ar_loss / ((1 - iou + ar_loss).astype(np.float64) + 0.000001)).astype(dt)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(c == 0, iou, iou - (d / c + alpha * ar_loss))
    return _scalar_or_array(r)


def box_iou_kind(a, b, kind):
    """Darknet's ``box_iou_kind``: kind is 'iou', 'giou', 'diou' or 'ciou' (else IoU)."""
    if kind == "giou":
        return box_giou(a, b)
    if kind == "diou":
        return box_diou(a, b)
    if kind == "ciou":
        return box_ciou(a, b)
    return box_iou(a, b)


def dx_box_iou(pred, truth, iou_loss):
    """AB's ``dx_box_iou``: the gradient Darknet uses for the IoU-family box losses.

    Returns ``[..., 4]`` = ``(dx, dy, dw, dh)`` (AB's ``dt, db, dl, dr`` fields, which its
    ``delta_yolo_box`` reads as d/dx, d/dy, d/dw, d/dh). The sign is the one Darknet puts in
    ``l.delta``: the direction that *increases* IoU. ``iou_loss`` is 'iou', 'giou', 'diou'
    or 'ciou' ('mse' gives the plain IoU terms, as in C).

    These are AB's formulas, not always the exact derivative (see the tests):
    - iou, giou with overlapping boxes: dx, dy exact; dw, dh are 2x the exact derivative
      (AB: "for dw and dh, we do not divide by 2").
    - giou without overlap, diou and ciou: the centre-distance term is d(d^2/c^2) with its
      enclosing-box part of the wrong sign, for a DIoU without the 0.6 power that
      :func:`box_diou` applies; CIoU's aspect term leaves out the 1/(w^2+h^2) factor (as the
      CIoU paper does) and treats alpha as a constant.
    """
    dt = _dtype(pred, truth)
    px, py, pw, ph = _split(pred, dt)
    tx, ty, tw, th = _split(truth, dt)
    f = dt.type
    two = f(2)
    ptop, pbot, plft, prgt = py - ph / two, py + ph / two, px - pw / two, px + pw / two
    pred_t, pred_b = np.minimum(ptop, pbot), np.maximum(ptop, pbot)
    pred_l, pred_r = np.minimum(plft, prgt), np.maximum(plft, prgt)
    tt, tb, tl, tr = ty - th / two, ty + th / two, tx - tw / two, tx + tw / two

    X = (pred_b - pred_t) * (pred_r - pred_l)
    Xhat = (tb - tt) * (tr - tl)
    Ih = np.minimum(pred_b, tb) - np.maximum(pred_t, tt)
    Iw = np.minimum(pred_r, tr) - np.maximum(pred_l, tl)
    I = Iw * Ih
    U = X + Xhat - I
    S = (px - tx) * (px - tx) + (py - ty) * (py - ty)
    gCw = np.maximum(pred_r, tr) - np.minimum(pred_l, tl)
    gCh = np.maximum(pred_b, tb) - np.minimum(pred_t, tt)
    gC = gCw * gCh

    zero = f(0)
    dX_t, dX_b = -(pred_r - pred_l), pred_r - pred_l
    dX_l, dX_r = -(pred_b - pred_t), pred_b - pred_t
    dI_t = np.where(pred_t > tt, -Iw, zero)
    dI_b = np.where(pred_b < tb, Iw, zero)
    dI_l = np.where(pred_l > tl, -Ih, zero)
    dI_r = np.where(pred_r < tr, Ih, zero)
    dU_t, dU_b, dU_l, dU_r = dX_t - dI_t, dX_b - dI_b, dX_l - dI_l, dX_r - dI_r
    dC_t = np.where(pred_t < tt, -gCw, zero)
    dC_b = np.where(pred_b > tb, gCw, zero)
    dC_l = np.where(pred_l < tl, -gCh, zero)
    dC_r = np.where(pred_r > tr, gCh, zero)

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        UU = U * U
        upos = U > 0

        def d_iou(dI, dU):
            return np.where(upos, (U * dI - I * dU) / UU, zero)

        p_t, p_b, p_l, p_r = d_iou(dI_t, dU_t), d_iou(dI_b, dU_b), d_iou(dI_l, dU_l), \
            d_iou(dI_r, dU_r)
        # AB's corner selection for boxes with negative w or h: both sides take b (resp. r)
        flip_v = ~(ptop < pbot)
        flip_h = ~(plft < prgt)
        p_t = np.where(flip_v, p_b, p_t)
        p_l = np.where(flip_h, p_r, p_l)

        no_overlap = (Iw <= 0) | (Ih <= 0)
        if iou_loss == "giou":
            CC = gC * gC

            def d_c(dU, dC):
                return (gC * dU - U * dC) / CC

            g_t, g_b, g_l, g_r = d_c(dU_t, dC_t), d_c(dU_b, dC_b), d_c(dU_l, dC_l), \
                d_c(dU_r, dC_r)
            cpos = gC > 0
            p_t = np.where(no_overlap, g_t, np.where(cpos, p_t + g_t, p_t))
            p_b = np.where(no_overlap, g_b, np.where(cpos, p_b + g_b, p_b))
            p_l = np.where(no_overlap, g_l, np.where(cpos, p_l + g_l, p_l))
            p_r = np.where(no_overlap, g_r, np.where(cpos, p_r + g_r, p_r))

        p_dx = p_l + p_r
        p_dy = p_t + p_b
        p_dw = p_r - p_l
        p_dh = p_b - p_t

        if iou_loss in ("diou", "ciou"):
            Ct = np.minimum(ptop, tt)
            Cb = np.maximum(pbot, tb)
            Cl = np.minimum(plft, tl)
            Cr = np.maximum(prgt, tr)
            Cw, Ch = Cr - Cl, Cb - Ct
            C = Cw * Cw + Ch * Ch
            one, half = f(1), f(0.5)
            dCw_dx = np.where(pred_r > tr, one, zero) - np.where(pred_l < tl, one, zero)
            dCw_dw = np.where(pred_r > tr, half, zero) - np.where(pred_l < tl, -half, zero)
            dCh_dy = np.where(pred_b > tb, one, zero) - np.where(pred_t < tt, one, zero)
            dCh_dh = np.where(pred_b > tb, half, zero) - np.where(pred_t < tt, -half, zero)
            CC = C * C
            q_dx = (two * (tx - px) * C - (two * Cw * dCw_dx) * S) / CC
            q_dy = (two * (ty - py) * C - (two * Ch * dCh_dy) * S) / CC
            q_dw = (two * Cw * dCw_dw) * S / CC
            q_dh = (two * Ch * dCh_dh) * S / CC
            if iou_loss == "ciou":
                datan = _aspect_term(pw, ph, tw, th)
                ar_loss = (4 / _PI2 * datan * datan).astype(dt)
                alpha = (ar_loss / ((1 - I / U + ar_loss).astype(np.float64) + 0.000001)
                         ).astype(dt)
                ar_dw = (8 / _PI2 * datan * ph).astype(dt)
                ar_dh = (-8 / _PI2 * datan * pw).astype(dt)
                q_dw = q_dw + alpha * ar_dw
                q_dh = q_dh + alpha * ar_dh
            cpos = C > 0
            p_dx = np.where(no_overlap, q_dx, np.where(cpos, p_dx + q_dx, p_dx))
            p_dy = np.where(no_overlap, q_dy, np.where(cpos, p_dy + q_dy, p_dy))
            p_dw = np.where(no_overlap, q_dw, np.where(cpos, p_dw + q_dw, p_dw))
            p_dh = np.where(no_overlap, q_dh, np.where(cpos, p_dh + q_dh, p_dh))

    return np.stack([p_dx, p_dy, p_dw, p_dh], axis=-1).astype(dt, copy=False)
