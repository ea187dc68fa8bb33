"""The training loss of Darknet's [Gaussian_yolo] layer (AB's ``forward_gaussian_yolo_layer``).

The output holds per anchor and cell: x, y, w, h means at entries 0, 2, 4, 6 and their sigmas
at 1, 3, 5, 7 (all but the w, h means through the logistic, x and y also scaled by
``scale_x_y``), objectness at 8, classes from 9. The loss follows [yolo]'s steps
(pydarknet.layers.yolo_loss) with its own details:

1. every predicted box against the image's truths: objectness pushed to 0, left alone where
   the best IoU exceeds ``ignore_thresh`` and the cell predicts some class with p > 0.25
   (``objectness_smooth``: pushed to that IoU squared, classes trained); cells whose best IoU
   exceeds ``truth_thresh`` are trained towards their best truth;
2. per truth, in order: the anchor (of all ``num``) whose shape fits best, and with
   ``iou_thresh < 1`` every other anchor of the mask whose shape IoU (``iou_thresh_kind``)
   exceeds it: box deltas (accumulated), objectness 1, class targets;
3. every cell whose class deltas have positives gets its 8 box deltas divided by their number.

The box deltas: for the means, the gradient of the Gaussian negative log-likelihood (or with
``iou_loss`` giou/diou/ciou, AB's IoU gradient); for the sigmas, always the likelihood's.
A class target of a cell whose class 0 delta is already set changes only the truth's class
(AB tests class 0's delta, where [yolo] tests the truth class's). ``l.cost`` is the sum of
the squared deltas. Arithmetic is Darknet's float and double, in its order: the deltas equal a
loop-by-loop transcription bit for bit (tests/test_gaussian_yolo_loss.py).
"""

import numpy as np

from .. import boxes
from .yolo_loss import _Params, _in_shared_cells, image_truths

f32 = np.float32
SIGMA_CONST = f32(0.3)
EPSI = f32(1e-9)
SQRT_2PI = float(np.sqrt(np.pi * 2.0))
ENTRIES = 9       # box means and sigmas, objectness


def _pred_boxes(p, out, net_w, net_h):
    """get_gaussian_yolo_box for every cell: [N, n, hw, 4] float32."""
    N, n, _, hw = out.shape
    loc = np.arange(hw)
    gi = (loc % p.w).astype(np.float32)
    gj = (loc // p.w).astype(np.float32)
    bw = p.biases[[2 * m for m in p.mask]].astype(np.float64)[None, :, None]
    bh = p.biases[[2 * m + 1 for m in p.mask]].astype(np.float64)[None, :, None]
    pred = np.empty((N, n, hw, 4), np.float32)
    with np.errstate(over="ignore"):
        pred[..., 2] = np.exp(out[:, :, 4].astype(np.float64)) * bw / net_w
        pred[..., 3] = np.exp(out[:, :, 6].astype(np.float64)) * bh / net_h
    pred[..., 0] = (gi + out[:, :, 0]) / f32(p.w)
    pred[..., 1] = (gj + out[:, :, 2]) / f32(p.h)
    _shift_point(p, pred[..., :2], pred[..., 2:])
    return pred


def _shift_point(p, xy, wh, sign=1):
    """yolo_point: left_top / right_bottom boxes have their centre half a box away."""
    if p.yolo_point == "left_top":
        xy += f32(sign) * wh / f32(2)
    elif p.yolo_point == "right_bottom":
        xy -= f32(sign) * wh / f32(2)


def _box_deltas(p, pred, truth, x8, ij, bias_n, iou_norm, net_w, net_h):
    """delta_gaussian_yolo_box for K (prediction, truth) pairs: pred, truth [K, 4], x8 [K, 8]
    the cell's box entries, ij [K, 2] its cell, bias_n [K] the anchor, iou_norm [K] the
    iou_normalizer times the class multiplier. Returns (contributions [K, 8] to add to the
    box deltas, the IoU Darknet returns: GIoU unless iou_loss is mse)."""
    iou = boxes.box_iou(pred, truth)
    giou = boxes.box_giou(pred, truth)
    pred = pred.copy()
    pred[:, 2] = np.where(pred[:, 2] == 0, f32(1), pred[:, 2])
    pred[:, 3] = np.where(pred[:, 3] == 0, f32(1), pred[:, 3])
    scale = f32(2) - truth[:, 2] * truth[:, 3]
    t = np.empty((len(truth), 4), np.float32)
    t_xy = truth[:, :2].copy()
    _shift_point(p, t_xy, truth[:, 2:], sign=-1)
    t[:, 0] = t_xy[:, 0] * f32(p.w) - ij[:, 0].astype(np.float32)
    t[:, 1] = t_xy[:, 1] * f32(p.h) - ij[:, 1].astype(np.float32)
    bw, bh = p.biases[2 * bias_n], p.biases[2 * bias_n + 1]
    out = np.empty((len(truth), 8), np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t[:, 2] = np.log((truth[:, 2] * f32(net_w) / bw).astype(np.float64))
        t[:, 3] = np.log((truth[:, 3] * f32(net_h) / bh).astype(np.float64))
        d = t - x8[:, 0::2]                                            # dx, dy, dw, dh
        sigma = x8[:, 1::2]
        in_exp = d / sigma
        in_exp2 = np.square(in_exp.astype(np.float64)).astype(np.float32)
        normal = (np.exp(in_exp2.astype(np.float64) * -0.5)
                  / (SQRT_2PI * (sigma + SIGMA_CONST).astype(np.float64))).astype(np.float32)
        temp = (0.5 / (normal + EPSI).astype(np.float64) * normal.astype(np.float64)
                * scale.astype(np.float64)[:, None]).astype(np.float32)
        means = ((temp * in_exp).astype(np.float64) * (1.0 / sigma.astype(np.float64))
                 ).astype(np.float32)
        sigmas = (temp.astype(np.float64) * ((in_exp2 / sigma).astype(np.float64)
                                             - 1.0 / (sigma + SIGMA_CONST).astype(np.float64))
                  ).astype(np.float32)
        returned = iou
        if p.iou_loss != "mse":
            returned = giou
            g = boxes.dx_box_iou(pred, truth, p.iou_loss).astype(np.float32)
            _shift_point(p, g[:, :2], g[:, 2:], sign=-1)
            g[:, 2] = (g[:, 2].astype(np.float64) * np.exp(x8[:, 4].astype(np.float64)))
            g[:, 3] = (g[:, 3].astype(np.float64) * np.exp(x8[:, 6].astype(np.float64)))
            means = g
        out[:, 0::2] = means * iou_norm[:, None]
        out[:, 1::2] = sigmas * p.uc_normalizer
    out[~np.isfinite(out)] = 0                                         # fix_nan_inf
    if p.clip:
        np.clip(out, -p.max_delta, p.max_delta, out=out)
    return out, returned


def _y_true(p, hot):
    """The class target: 1 or 0, label-smoothed as Darknet computes it."""
    y = f32(hot)
    if p.label_smooth_eps:
        y = f32(float(y * (f32(1) - p.label_smooth_eps)) + 0.5 * float(p.label_smooth_eps))
    return y


def _class_delta(p, dc, oc, class_id):
    """delta_gaussian_yolo_class on one cell: dc, oc its class deltas / outputs (views)."""
    if dc[0]:      # AB tests class 0's delta: only the truth's class changes
        dc[class_id] = _y_true(p, 1) - oc[class_id]
        if p.multipliers is not None:
            dc[class_id] *= p.multipliers[class_id]
        return
    _first_class_deltas(p, dc[None], oc[None], np.array([class_id]))


def _first_class_deltas(p, dc, oc, class_id):
    """delta_gaussian_yolo_class on K cells whose class 0 delta is 0: dc, oc [K, classes]."""
    k = np.arange(len(class_id))
    y = np.full(oc.shape, _y_true(p, 0), np.float32)
    y[k, class_id] = _y_true(p, 1)
    dc[...] = y - oc
    if p.multipliers is not None:
        dc[k, class_id] *= p.multipliers[class_id] * p.cls_normalizer


def gaussian_yolo_loss(layer, output, truths, net_w, net_h, delta_out=None, zeroed=False):
    """Darknet's [Gaussian_yolo] training loss.

    layer: a built :class:`pydarknet.layers.gaussian_yolo.GaussianYolo`; output: its
    activated output [N, n*(classes+9), h, w]; truths: float32 [N, max_boxes, 5 or 6] (x, y,
    w, h, class relative to the image; a row with x == 0 ends an image's list); net_w, net_h:
    the network's input size; delta_out: an array of output's size to write the delta into,
    ``zeroed`` if it holds zeros already.

    Returns ``(delta, cost, stats)``: delta as Darknet's ``l.delta`` (float32, output's
    shape), cost = ``l.cost[0]``, stats Darknet's console numbers (avg_iou, class, obj,
    no_obj, recall50, recall75, count, class_loss, iou_loss, uc_loss, total_loss).
    """
    p = _Params(layer)
    p.uc_normalizer = f32(layer.uc_normalizer)
    p.yolo_point = layer.yolo_point
    n, classes, hw = p.n, p.classes, p.w * p.h
    size = classes + ENTRIES
    output = np.asarray(output, np.float32)
    N = output.shape[0]
    out = output.reshape(N, n, size, hw)
    truths = np.asarray(truths, np.float32)
    truths = truths.reshape(N, -1, truths.shape[-1])
    T = min(truths.shape[1], layer.max_boxes)
    if delta_out is not None and delta_out.size == output.size:
        delta = delta_out.reshape(N, n, size, hw)
        if not zeroed:
            delta.fill(0)
    else:
        delta = np.zeros((N, n, size, hw), np.float32)
    st = {"iou": [], "obj": [], "cat": 0.0}
    pred = _pred_boxes(p, out, net_w, net_h)                        # [N, n, hw, 4]
    obj = out[:, :, 8]
    delta[:, :, 8] = p.obj_normalizer * (f32(0) - obj)

    rows = []                                   # per image: (its truth rows, their class ids)
    for b in range(N):
        _, cid, r, _ = image_truths(classes, truths, b, T, layer)
        rows.append((r, cid))

    # ---- pass 1: every predicted box against the image's truths --------------------------
    touched = np.zeros((N, n, hw), bool)      # cells whose class deltas pass 1 set
    for b in range(N):
        r, cid = rows[b]
        ok = np.flatnonzero((cid >= 0) & (cid < classes))
        if not ok.size:
            continue
        best = boxes.best_iou(r[ok, :4], pred[b].reshape(-1, 4)).reshape(n, hw)

        def best_truth(m, loc):
            """The first truth with the cell's best IoU (its row in r)."""
            ious = boxes.box_iou_matrix(r[ok, :4], pred[b, m, loc][None])[:, 0]
            return ok[int(np.argmax(np.where(np.isnan(ious), f32(0), ious)))]

        match = (out[b, :, 9:, :] > f32(0.25)).any(axis=1)                        # [n, hw]
        m, loc = np.nonzero(match & (best > p.ignore_thresh))
        if m.size:
            if p.objectness_smooth:
                mult2 = best[m, loc] * best[m, loc]
                delta[b, m, 8, loc] = p.obj_normalizer * (mult2 - obj[b, m, loc])
                for mk, lk in zip(m, loc):
                    _class_delta(p, delta[b, mk, 9:, lk], out[b, mk, 9:, lk],
                                 int(cid[best_truth(mk, lk)]))
                touched[b, m, loc] = True
            else:
                delta[b, m, 8, loc] = 0
        for mk, lk in zip(*np.nonzero(best > p.truth_thresh)):     # rare: truth_thresh < 1
            t = best_truth(mk, lk)
            class_id = int(cid[t])
            mult2 = best[mk, lk] * best[mk, lk]
            o = obj[b, mk, lk]
            delta[b, mk, 8, lk] = p.obj_normalizer * ((mult2 if p.objectness_smooth
                                                       else f32(1)) - o)
            _class_delta(p, delta[b, mk, 9:, lk], out[b, mk, 9:, lk], class_id)
            cm = p.mult(class_id)
            if p.objectness_smooth:
                delta[b, mk, 9 + class_id, lk] = cm * (mult2 - out[b, mk, 9 + class_id, lk])
            contrib, _ = _box_deltas(p, pred[b, mk, lk][None], r[t, :4][None],
                                     out[b, mk, :8, lk][None], np.array([[lk % p.w, lk // p.w]]),
                                     np.array([p.mask[mk]]), np.array([p.iou_normalizer * cm]),
                                     net_w, net_h)
            delta[b, mk, :8, lk] += contrib[0]
            touched[b, mk, lk] = True

    # ---- pass 2: every truth's anchors (the best of all num; others above iou_thresh) -------
    anchors = np.zeros((p.total, 4), np.float32)
    anchors[:, 2] = p.biases[0::2][:p.total] / f32(net_w)
    anchors[:, 3] = p.biases[1::2][:p.total] / f32(net_h)
    in_mask = np.full(p.total, -1)
    for k, m in reversed(list(enumerate(p.mask))):
        if 0 <= m < p.total:
            in_mask[m] = k
    tb = np.concatenate([np.full(len(c), b) for b, (_, c) in enumerate(rows)]).astype(np.int64)
    jobs = None
    if tb.size:
        tbox = np.concatenate([r[:, :4] for r, _ in rows])
        tcls = np.concatenate([c for _, c in rows])
        shift = np.zeros((tb.size, 4), np.float32)
        shift[:, 2:] = tbox[:, 2:]
        shape_iou = boxes.box_iou(anchors[None], shift[:, None])                 # [K, total]
        shape_iou = np.where(np.isnan(shape_iou), f32(0), shape_iou)
        best_n = np.argmax(shape_iou, axis=1)
        choice = np.empty((tb.size, 1 + p.total), np.int64)
        choice[:, 0] = best_n
        choice[:, 1:] = np.arange(p.total)
        chosen = in_mask[choice] >= 0
        if p.iou_thresh < 1:
            kind = boxes.box_iou_kind(anchors[None], shift[:, None], p.iou_thresh_kind)
            chosen[:, 1:] &= (choice[:, 1:] != best_n[:, None]) & (kind > p.iou_thresh)
        else:
            chosen[:, 1:] = False
        k, c = np.nonzero(chosen)
        if p.yolo_point == "center":
            fi, fj = tbox[:, 0] * f32(p.w), tbox[:, 1] * f32(p.h)
        else:
            xy = tbox[:, :2].copy()
            _shift_point(p, xy, tbox[:, 2:], sign=-1)
            fi = np.maximum(xy[:, 0] * f32(p.w), f32(0))
            fj = np.maximum(xy[:, 1] * f32(p.h), f32(0))
        gi = np.clip(fi.astype(np.int64), 0, p.w - 1)
        gj = np.clip(fj.astype(np.int64), 0, p.h - 1)
        a = choice[k, c]
        jobs = (tb[k], in_mask[a], gj[k] * p.w + gi[k], tbox[k], tcls[k], a)

    if jobs is not None and jobs[0].size:
        jb, jm, jl, jbox, jcls, jn = jobs
        if (jcls < 0).any() or (jcls >= classes).any():
            raise ValueError(f"[Gaussian_yolo] layer {layer.index}: truth classes must be in "
                             f"0..{classes - 1}")
        cm = np.ones(jb.size, np.float32) if p.multipliers is None else p.multipliers[jcls]
        contrib, iou = _box_deltas(p, pred[jb, jm, jl], jbox, out[jb, jm, :8, jl],
                                   np.stack([jl % p.w, jl // p.w], axis=1), jn,
                                   p.iou_normalizer * cm, net_w, net_h)
        key = (jb * n + jm) * hw + jl
        alone = ~_in_shared_cells(key) & ~touched[jb, jm, jl]
        # jobs alone in an untouched cell, all at once
        b_, m_, l_ = jb[alone], jm[alone], jl[alone]
        delta[b_, m_, :8, l_] += contrib[alone]
        delta[b_, m_, 8, l_] = cm[alone] * p.obj_normalizer * (f32(1) - obj[b_, m_, l_])
        dc = np.empty((b_.size, classes), np.float32)
        _first_class_deltas(p, dc, out[b_, m_, 9:, l_], jcls[alone])
        delta[b_, m_, 9:, l_] = dc
        # the others one by one, in Darknet's order
        for k in np.flatnonzero(~alone):
            b, m, loc, cid = int(jb[k]), int(jm[k]), int(jl[k]), int(jcls[k])
            cell = delta[b, m, :, loc]
            cell[:8] += contrib[k]
            cell[8] = cm[k] * p.obj_normalizer * (f32(1) - obj[b, m, loc])
            _class_delta(p, cell[9:], out[b, m, 9:, loc], cid)
        st["iou"] = iou
        st["obj"] = obj[jb, jm, jl]
        st["cat"] = float(out[jb, jm, 9 + jcls, jl].sum(dtype=np.float64))

    # ---- averages_gaussian_yolo_deltas: box deltas / the cell's positive class deltas -----
    npos = (delta[:, :, 9:] > 0).sum(axis=2)                                      # [N, n, hw]
    sel = npos > 0
    if sel.any():
        d8 = delta[:, :, :8].transpose(0, 1, 3, 2)                                 # view
        d8[sel] /= npos[sel][:, None].astype(np.float32)

    # ---- cost and the console's numbers ----------------------------------------------------
    sq = np.square(delta, dtype=np.float64)
    loss = float(sq.sum())
    class_loss = loss - float(sq[:, :, :8].sum())
    except_uc = loss - float(sq[:, :, 4:8].sum())
    count = len(st["iou"])
    iou = np.asarray(st["iou"], np.float64)
    stats = {"count": count,
             "avg_iou": float(iou.sum()) / count if count else float("nan"),
             "recall50": int((iou > 0.5).sum()) / count if count else float("nan"),
             "recall75": int((iou > 0.75).sum()) / count if count else float("nan"),
             "avg_obj": float(np.sum(st["obj"], dtype=np.float64)) / count if count else
             float("nan"),
             "avg_cat": st["cat"] / count if count else float("nan"),
             "avg_anyobj": float(obj.sum(dtype=np.float64)) / (hw * n * N),
             "class_loss": class_loss / N, "iou_loss": (except_uc - class_loss) / N,
             "uc_loss": (loss - except_uc) / N, "total_loss": loss / N, "cost": loss}
    return delta.reshape(output.shape), loss, stats
