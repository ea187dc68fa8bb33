"""The training loss of Darknet's [yolo] layer (AB's ``forward_yolo_layer``, train path).

:func:`yolo_loss` takes the layer's activated output and the truths of a mini-batch and
returns Darknet's ``l.delta`` (= -dLoss/d pre-activation), ``l.cost[0]`` and the numbers of
the training console line. It follows AB's ``process_batch`` step by step:

1. every predicted box (all cells, all anchors of the mask) against every truth of its image,
   vectorised: objectness pushed to 0, left alone where the best IoU with a truth whose class
   the cell already predicts (any class prob > 0.25) exceeds ``ignore_thresh``; cells whose
   best IoU exceeds ``truth_thresh`` are trained as positives;
2. per truth, in order: the anchor (of all ``num``) whose shape fits best; if it is one of
   this layer's, the cell ``(int)(x * w), (int)(y * h)`` gets the box gradient (accumulated),
   objectness 1 and the class targets; with ``iou_thresh < 1`` every other anchor of the mask
   whose shape IoU (``iou_thresh_kind``) exceeds ``iou_thresh`` too, and the box deltas of
   cells with several positive classes are averaged afterwards.

Arithmetic is float32 where Darknet's is ``float`` (the threshold decisions match Darknet's
to the bit), double where Darknet calls ``exp``/``log``/``sqrt``/``atan``.
"""

import numpy as np

from .. import boxes
from ..errors import DataError, NotSupportedError
from ..host_math import FLT_MAX
from ..tree import load_class_map

f32 = np.float32


def class_multipliers(layer):
    """Darknet's ``get_classes_multipliers``: max(counter) / counter, capped at max_delta."""
    counters = getattr(layer, "counters_per_class", None)
    if counters is None:
        return None
    counters = [int(c) for c in counters]
    if len(counters) != layer.classes:
        raise ValueError(f"[yolo] layer {getattr(layer, 'index', '?')}: counters_per_class has "
                         f"{len(counters)} values but classes={layer.classes}")
    counters = np.maximum(np.array(counters, np.float32), f32(1))
    m = counters.max() / counters
    return np.minimum(m, f32(layer.max_delta)).astype(np.float32)


class _Params:
    """The layer's options as the float32 values Darknet's ``layer`` struct holds."""

    def __init__(self, layer):
        self.n, self.total, self.classes = layer.n, layer.total, layer.classes
        self.mask = [int(m) for m in layer.mask]
        self.mask_arr = np.array(self.mask, np.int64)
        self.w, self.h = layer.w, layer.h
        self.biases = np.asarray(layer.anchors, np.float32)
        self.iou_loss = layer.iou_loss
        self.iou_thresh_kind = getattr(layer, "iou_thresh_kind", "iou")
        for key in ("iou_normalizer", "obj_normalizer", "cls_normalizer", "ignore_thresh",
                    "truth_thresh", "iou_thresh", "label_smooth_eps"):
            setattr(self, key, f32(getattr(layer, key)))
        self.max_delta = f32(getattr(layer, "max_delta", FLT_MAX))
        self.clip = float(self.max_delta) != FLT_MAX
        self.new_coords = int(getattr(layer, "new_coords", 0))
        self.objectness_smooth = int(getattr(layer, "objectness_smooth", 0))
        self.focal_loss = int(getattr(layer, "focal_loss", 0))
        self.show_details = int(getattr(layer, "show_details", 1))
        self.multipliers = class_multipliers(layer)

    def mult(self, class_id):
        return f32(1) if self.multipliers is None else self.multipliers[class_id]


def _pred_boxes(p, out, net_w, net_h):
    """get_yolo_box for every cell: [N, n, hw, 4] float32."""
    N, n, _, hw = out.shape
    loc = np.arange(hw)
    gi = (loc % p.w).astype(np.float32)
    gj = (loc // p.w).astype(np.float32)
    bw = p.biases[[2 * m for m in p.mask]][None, :, None]
    bh = p.biases[[2 * m + 1 for m in p.mask]][None, :, None]
    pred = np.empty((N, n, hw, 4), np.float32)
    pred[..., 0] = (gi + out[:, :, 0]) / f32(p.w)
    pred[..., 1] = (gj + out[:, :, 1]) / f32(p.h)
    tw, th = out[:, :, 2], out[:, :, 3]
    with np.errstate(over="ignore", invalid="ignore"):
        if p.new_coords:
            pred[..., 2] = tw * tw * f32(4) * bw / f32(net_w)
            pred[..., 3] = th * th * f32(4) * bh / f32(net_h)
        else:
            pred[..., 2] = np.exp(tw.astype(np.float64)) * bw / float(net_w)
            pred[..., 3] = np.exp(th.astype(np.float64)) * bh / float(net_h)
    return pred


def _delta_class(dc, oc, class_id, p):
    """delta_yolo_class on one cell: dc, oc are the cell's class deltas / outputs (views)."""
    if dc[class_id] != 0:  # a truth of this cell already set the classes: only add this one
        eps = p.label_smooth_eps
        y = f32(1)
        if eps:
            y = f32(float(f32(1) * (f32(1) - eps)) + 0.5 * float(eps))
        r = y - oc[class_id]
        if np.isfinite(r):
            dc[class_id] = r
        if p.multipliers is not None:
            dc[class_id] *= p.multipliers[class_id]
        return
    _first_class_deltas(p, oc[None, :], np.array([class_id]), dc[None, :])


def _first_class_deltas(p, oc, class_id, dc):
    """delta_yolo_class on K cells where no truth has set the classes yet: oc [K, classes]
    their outputs, class_id [K]; writes their class deltas dc [K, classes] in place."""
    k = np.arange(len(class_id))
    onehot = np.zeros(oc.shape, np.float32)
    onehot[k, class_id] = 1
    if p.focal_loss:
        pt = oc[k, class_id] + f32(1e-15)
        grad = -(f32(1) - pt) * (f32(2) * pt * np.log(pt) + pt - f32(1))
        dc[...] = (onehot - oc) * (f32(0.5) * grad)[:, None]
        return
    y = onehot
    eps = p.label_smooth_eps
    if eps:
        y = (y * (f32(1) - eps) + 0.5 * float(eps)).astype(np.float32)
    r = y - oc
    ok = np.isfinite(r)
    dc[ok] = r[ok]
    if p.multipliers is not None:
        dc[k, class_id] *= p.multipliers[class_id] * p.cls_normalizer


class _Jobs:
    """The (cell, truth) pairs that get a box gradient, gathered image by image."""

    def __init__(self):
        self.parts = []

    def add(self, b, mask_n, loc, truth_row, class_id, bias_n, from_cell=False,
            best_iou=None):
        """b (the image: one for all or one each), mask_n, loc, truth_row, class_id, bias_n:
        [K] arrays for K jobs; from_cell: pass 1's truth_thresh cells, with their best IoU."""
        k = len(loc)
        if best_iou is None:
            best_iou = np.zeros(k, np.float32)
        self.parts.append((np.broadcast_to(b, (k,)), mask_n, loc, truth_row, class_id, bias_n,
                           np.full(k, from_cell), best_iou))

    def arrays(self):
        """(image, mask_n, loc, truth row, class id, bias index, from_cell, best_iou)."""
        if not self.parts:
            empty = np.zeros(0, np.int64)
            return (empty,) * 6 + (np.zeros(0, bool), np.zeros(0, np.float32))
        return tuple(np.concatenate(column) for column in zip(*self.parts))


def _in_shared_cells(cell_of_job):
    """Which jobs train a cell that another job trains too."""
    _, inverse, counts = np.unique(cell_of_job, return_inverse=True, return_counts=True)
    return counts[inverse.reshape(-1)] > 1


def _apply_alone(p, delta, out, alone, jb, jm, jl, jcls, from_cell, best_iou, cm, contrib):
    """The jobs that are alone in their cells, all at once: what the one-by-one loop does
    to a cell whose box and class deltas are still 0."""
    for cell_pass in (True, False):
        sel = alone & (from_cell == cell_pass)
        if not sel.any():
            continue
        b, m, loc, cid, c = jb[sel], jm[sel], jl[sel], jcls[sel], cm[sel]
        o4 = out[b, m, 4, loc]
        oc = out[b, m, 5:, loc]                                          # [K, classes]
        dc = np.zeros(oc.shape, np.float32)
        _first_class_deltas(p, oc, cid, dc)
        k = np.arange(len(cid))
        if cell_pass:
            if p.objectness_smooth:
                mult2 = best_iou[sel] * best_iou[sel]
                delta[b, m, 4, loc] = p.obj_normalizer * (mult2 - o4)
                dc[k, cid] = c * (mult2 - oc[k, cid])
            else:
                delta[b, m, 4, loc] = p.obj_normalizer * (f32(1) - o4)
        else:
            d_obj = c * p.obj_normalizer * (f32(1) - o4)
            if p.objectness_smooth:
                cur = delta[b, m, 4, loc]
                d_obj = np.where(cur == 0, d_obj, cur)
            delta[b, m, 4, loc] = d_obj
        delta[b, m, 5:, loc] = dc
        delta[b, m, 0:4, loc] += contrib[sel]


def _ordered_sum(values):
    """sum(values) added one by one from 0.0, as Darknet's loop adds them (np.sum pairs;
    the final + 0.0 is the start's: it turns a sum of -0.0 into 0.0)."""
    values = np.asarray(values, np.float64)
    return float(np.cumsum(values)[-1]) + 0.0 if values.size else 0.0


def _box_deltas(p, pred, truth, xs, ij, bias_n, iou_norm, net_w, net_h):
    """delta_yolo_box's contributions and IoUs for K (prediction, truth) pairs at once.

    pred, truth [K, 4] float32; xs [K, 4] the cells' x, y, w, h outputs; ij [K, 2] the cells
    (i, j); bias_n [K] the anchor index; iou_norm [K] = iou_normalizer * class multiplier.
    Returns (contributions [K, 4] float32 to add to the box deltas, iou [K], giou [K]).
    """
    iou = boxes.box_iou(pred, truth)
    giou = boxes.box_giou(pred, truth)
    if p.iou_loss == "mse":
        bw = p.biases[2 * bias_n]
        bh = p.biases[2 * bias_n + 1]
        t = np.empty_like(xs)
        t[:, 0] = truth[:, 0] * f32(p.w) - ij[:, 0].astype(np.float32)
        t[:, 1] = truth[:, 1] * f32(p.h) - ij[:, 1].astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if p.new_coords:
                t[:, 2] = np.sqrt((truth[:, 2] * f32(net_w) / (f32(4) * bw)).astype(np.float64))
                t[:, 3] = np.sqrt((truth[:, 3] * f32(net_h) / (f32(4) * bh)).astype(np.float64))
            else:
                t[:, 2] = np.log((truth[:, 2] * f32(net_w) / bw).astype(np.float64))
                t[:, 3] = np.log((truth[:, 3] * f32(net_h) / bh).astype(np.float64))
            scale = f32(2) - truth[:, 2] * truth[:, 3]
            d = scale[:, None] * (t - xs) * iou_norm[:, None]
        return d.astype(np.float32), iou, giou
    pred = pred.copy()  # AB: "avoid nan in dx_box_iou"
    pred[:, 2] = np.where(pred[:, 2] == 0, f32(1), pred[:, 2])
    pred[:, 3] = np.where(pred[:, 3] == 0, f32(1), pred[:, 3])
    d = boxes.dx_box_iou(pred, truth, p.iou_loss).astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        if not p.new_coords:  # the gradient of exp() for w, h
            d[:, 2] = d[:, 2] * np.exp(xs[:, 2].astype(np.float64))
            d[:, 3] = d[:, 3] * np.exp(xs[:, 3].astype(np.float64))
        d = d * iou_norm[:, None]
    d[~np.isfinite(d)] = 0  # fix_nan_inf
    if p.clip:
        np.clip(d, -p.max_delta, p.max_delta, out=d)
    return d, iou, giou


def image_truths(classes, truths, b, T, layer=None):
    """The rows of image b that Darknet's losses read (up to the first x == 0) as (indexes of
    the rows whose class id is in 0..classes-1, every row's class id (-1 for NaN or inf),
    the rows, the number of rows with out-of-image coordinates). With ``layer`` that has a
    ``map=`` file, the kept rows' class ids are the map's (AB checks the label's own id
    against classes, then trains the mapped one)."""
    rows = truths[b, :T]
    zero = np.flatnonzero(rows[:, 0] == 0)
    end = int(zero[0]) if zero.size else T
    rows = rows[:end]
    with np.errstate(invalid="ignore"):
        cls = np.trunc(np.nan_to_num(rows[:, 4], nan=-1, posinf=-1, neginf=-1)).astype(np.int64)
    bad = int(np.count_nonzero((rows[:, 0] < 0) | (rows[:, 1] < 0) | (rows[:, 0] > 1)
                               | (rows[:, 1] > 1) | (rows[:, 2] < 0) | (rows[:, 3] < 0)))
    keep = np.flatnonzero((cls >= 0) & (cls < classes))
    if layer is not None and getattr(layer, "map_file", None) and keep.size:
        cls[keep] = map_classes(layer, cls[keep])
    return keep, cls, rows, bad


def map_classes(layer, class_ids):
    """The class ids through the layer's ``map=`` file (yolo9000's coco9k.map)."""
    mapping = load_class_map(layer)
    if (class_ids >= mapping.size).any():
        raise DataError(f"[{layer.type}] layer {layer.index}: a truth of class "
                         f"{int(class_ids.max())} is past the {mapping.size} lines of "
                         f"{layer.map_file}; the map needs a line for each class of the data")
    return mapping[class_ids]


def _label_cells(track_labels, class_ids, truths, tb, trow, tcls, mask_n, loc):
    """AB's l.labels / l.class_ids: the cell of each truth's best anchor (when in the mask)
    gets the truth's track id and class; a later truth overwrites an earlier one."""
    hit = np.flatnonzero(mask_n >= 0)
    if not hit.size:
        return
    _, n, hw = track_labels.shape
    cells = (tb[hit] * n + mask_n[hit]) * hw + loc[hit]
    _, last = np.unique(cells[::-1], return_index=True)     # the last truth of each cell
    keep = cells.size - 1 - last
    hit, cells = hit[keep], cells[keep]
    track_labels.reshape(-1)[cells] = truths[tb[hit], trow[hit], 5].astype(np.int64)
    class_ids.reshape(-1)[cells] = tcls[hit]


def yolo_loss(layer, output, truths, net_w, net_h, delta_out=None, zeroed=False, reject=None):
    """Darknet's [yolo] training loss.

    layer: a built :class:`pydarknet.layers.yolo.Yolo`; output: its activated output, float32
    [N, n*(classes+5), h, w]; truths: float32 [N, max_boxes, 5 or 6] rows x, y, w, h, class
    (, track id) relative to the image, a row with x == 0 ends an image's list; net_w, net_h:
    the network's input size.

    Returns ``(delta, cost, stats)``: delta (float32, output's shape) as AB's
    forward_yolo_layer writes ``l.delta``; cost = ``l.cost[0]``; stats a dict with Darknet's
    console numbers (avg_iou, count, class_count, recall50, recall75, avg_obj, avg_anyobj,
    avg_cat, class_loss, iou_loss, total_loss, rewritten_bbox, total_bbox, bad_labels).
    delta_out: a float32 C-contiguous array of output's size to write delta into (it is then
    the returned delta, reshaped) instead of a new one; zeroed: it holds zeros already (a
    training pass's fresh delta), which saves clearing it again. reject: called with the
    delta before the cost (pydarknet.layers.yolo_reject: AB's bad-label rejection), which
    may zero some of it.
    """
    if getattr(layer, "box_entries", 4) != 4:
        raise NotSupportedError(f"yolo_loss is the [yolo] loss; layer "
                                f"{getattr(layer, 'index', '?')} is [{layer.type}]")
    p = _Params(layer)
    n, classes, hw = p.n, p.classes, p.w * p.h
    c5 = classes + 5
    output = np.asarray(output, np.float32)
    N = output.shape[0]
    if output.size != N * n * c5 * hw:
        raise ValueError(f"[yolo] output must be [N, {n * c5}, {p.h}, {p.w}], found "
                         f"{list(output.shape)}")
    out = output.reshape(N, n, c5, hw)
    truths = np.asarray(truths, np.float32)
    truths = truths.reshape(N, -1, truths.shape[-1])
    if truths.shape[-1] < 5:
        raise ValueError(f"truths must have rows x, y, w, h, class[, track_id]; found "
                         f"{truths.shape[-1]} columns")
    T = min(truths.shape[1], layer.max_boxes)

    if (delta_out is not None and delta_out.dtype == np.float32 and delta_out.size ==
            output.size and delta_out.flags.c_contiguous):
        delta = delta_out.reshape(N, n, c5, hw)
        if not zeroed:
            delta.fill(0)
    else:
        delta = np.zeros((N, n, c5, hw), np.float32)
    st = {"tot_iou": 0.0, "tot_iou_loss": 0.0, "tot_giou_loss": 0.0, "count": 0,
          "class_count": 0, "recall50": 0, "recall75": 0, "avg_obj": 0.0, "avg_anyobj": 0.0,
          "avg_cat": 0.0, "rewritten_bbox": 0, "total_bbox": 0, "bad_labels": 0}

    per_image = [image_truths(p.classes, truths, b, T, layer) for b in range(N)]
    # each cell's truth (its best anchor's): track id and class, for a [contrastive] layer
    # (which needs the [yolo] layer's embedding_layer=)
    track_labels = class_ids = None
    if truths.shape[-1] >= 6 and getattr(layer, "embedding_layer", None) is not None:
        track_labels = np.full((N, n, hw), -1, np.int64)
        class_ids = np.full((N, n, hw), -1, np.int64)
    if not np.isfinite(out[:, :, 4]).all():  # Darknet zeroes a NaN/inf objectness output
        fix = [b for b in range(N) if per_image[b][0].size]
        if fix:
            out = out.copy()
            sub = out[fix, :, 4]
            sub[~np.isfinite(sub)] = 0
            out[fix, :, 4] = sub

    pred = _pred_boxes(p, out, net_w, net_h)          # [N, n, hw, 4]
    obj = out[:, :, 4]                                # [N, n, hw]
    st["avg_anyobj"] = float(obj.sum(dtype=np.float64))
    delta[:, :, 4] = p.obj_normalizer * (f32(0) - obj)

    # ---- pass 1: every predicted box against the image's truths --------------------------
    jobs = _Jobs()      # the cells that get a box gradient, in Darknet's order
    for b in range(N):
        keep, cls, rows, _ = per_image[b]
        if not keep.size:
            continue
        best = boxes.best_iou(rows[keep, :4], pred[b].reshape(-1, 4)).reshape(n, hw)
        # ignore_thresh applies where the best IoU among truths (best_match_iou) exceeds it
        # and compare_yolo_class holds: the cell predicts some class with p > 0.25 (NaN: no)
        cand_m, cand_loc = np.nonzero(best > p.ignore_thresh)
        if cand_m.size:
            probs = out[b, cand_m, 5:, cand_loc]                              # [C, classes]
            match = np.fmax.reduce(probs, axis=1) > f32(0.25)
            cand_m, cand_loc = cand_m[match], cand_loc[match]
            if p.objectness_smooth:
                cur = delta[b, cand_m, 4, cand_loc]
                d_obj = p.obj_normalizer * (best[cand_m, cand_loc] - obj[b, cand_m, cand_loc])
                delta[b, cand_m, 4, cand_loc] = np.where(d_obj > cur, d_obj, cur)
            else:
                delta[b, cand_m, 4, cand_loc] = 0
        # cells whose best IoU exceeds truth_thresh are trained towards their best truth
        hit_m, hit_loc = np.nonzero(best > p.truth_thresh)
        if hit_m.size:
            cols = boxes.box_iou_matrix(rows[keep, :4], pred[b, hit_m, hit_loc])    # [K, H]
            bt = np.argmax(np.where(np.isnan(cols), -1, cols), axis=0)
            jobs.add(b, hit_m, hit_loc, keep[bt], cls[keep[bt]], p.mask_arr[hit_m],
                     from_cell=True, best_iou=best[hit_m, hit_loc])

    # ---- pass 2: every truth: the anchor (of all num) whose shape fits it best, and with
    # iou_thresh < 1 every other anchor of the mask whose shape IoU exceeds iou_thresh ------
    anchors = np.zeros((p.total, 4), np.float32)
    anchors[:, 2] = p.biases[0::2][:p.total] / f32(net_w)
    anchors[:, 3] = p.biases[1::2][:p.total] / f32(net_h)
    in_mask = np.full(p.total, -1)       # anchor -> its (first) place in the mask, or -1
    for k, m in reversed(list(enumerate(p.mask))):
        if 0 <= m < p.total:
            in_mask[m] = k
    st["bad_labels"] = sum(bad for *_, bad in per_image)
    # the truths of all images, image by image: image, row, class
    tb = np.concatenate([np.full(keep.size, b) for b, (keep, *_) in enumerate(per_image)])
    trow = np.concatenate([keep for keep, *_ in per_image])
    if trow.size:
        tcls = np.concatenate([cls[keep] for keep, cls, *_ in per_image])
        tbox = truths[tb, trow, :4]
        shift = np.zeros((trow.size, 4), np.float32)
        shift[:, 2:] = tbox[:, 2:4]
        shape_iou = boxes.box_iou(anchors[None, :, :], shift[:, None, :])   # [K, total]
        best_n = np.argmax(np.where(np.isnan(shape_iou), -1, shape_iou), axis=1)
        # per truth (row-major order): its best anchor, then the others in index order
        choice = np.empty((trow.size, 1 + p.total), np.int64)
        choice[:, 0] = best_n
        choice[:, 1:] = np.arange(p.total)
        chosen = in_mask[choice] >= 0
        if p.iou_thresh < 1:
            kind_iou = boxes.box_iou_kind(anchors[None, :, :], shift[:, None, :],
                                          p.iou_thresh_kind)
            chosen[:, 1:] &= (choice[:, 1:] != best_n[:, None]) & (kind_iou > p.iou_thresh)
        else:
            chosen[:, 1:] = False
        k, c = np.nonzero(chosen)
        gi = np.clip((tbox[:, 0] * f32(p.w)).astype(np.int64), 0, p.w - 1)
        gj = np.clip((tbox[:, 1] * f32(p.h)).astype(np.int64), 0, p.h - 1)
        a = choice[k, c]
        jobs.add(tb[k], in_mask[a], gj[k] * p.w + gi[k], trow[k], tcls[k], a)
        if track_labels is not None:
            _label_cells(track_labels, class_ids, truths, tb, trow, tcls, in_mask[best_n],
                         gj * p.w + gi)

    jb, jm, jl, jt, jcls, jn, from_cell, best_iou = jobs.arrays()
    cell_of_job = (jb * n + jm) * hw + jl
    cells = np.unique(cell_of_job)
    if cells.size:
        truth_boxes = truths[jb, jt, :4]
        xs = out[jb, jm, 0:4, jl]
        ij = np.stack([jl % p.w, jl // p.w], axis=1)
        cm = np.ones(jb.size, np.float32) if p.multipliers is None else p.multipliers[jcls]
        contrib, iou, giou = _box_deltas(p, pred[jb, jm, jl], truth_boxes, xs, ij, jn,
                                         p.iou_normalizer * cm, net_w, net_h)
        shared = _in_shared_cells(cell_of_job)
        _apply_alone(p, delta, out, ~shared, jb, jm, jl, jcls, from_cell, best_iou, cm, contrib)
        # a cell that several jobs train gets them one by one, in Darknet's order
        for k in np.flatnonzero(shared):
            b, m, loc, cid = int(jb[k]), int(jm[k]), int(jl[k]), int(jcls[k])
            cell = delta[b, m, :, loc]
            ocell = out[b, m, :, loc]
            if from_cell[k]:
                if p.objectness_smooth:
                    mult2 = best_iou[k] * best_iou[k]
                    cell[4] = p.obj_normalizer * (mult2 - ocell[4])
                else:
                    cell[4] = p.obj_normalizer * (f32(1) - ocell[4])
                _delta_class(cell[5:], ocell[5:], cid, p)
                if p.objectness_smooth:
                    cell[5 + cid] = cm[k] * (mult2 - ocell[5 + cid])
            if cell[0] or cell[1] or cell[2] or cell[3]:
                st["rewritten_bbox"] += 1
            cell[0:4] += contrib[k]
            if from_cell[k]:
                continue
            d_obj = cm[k] * p.obj_normalizer * (f32(1) - ocell[4])
            if not p.objectness_smooth or cell[4] == 0:
                cell[4] = d_obj
            _delta_class(cell[5:], ocell[5:], cid, p)
        # the console's sums over the truths' jobs, added in job order as Darknet does
        t = ~from_cell
        st["total_bbox"] = int(jb.size)
        st["count"] = st["class_count"] = int(t.sum())
        iou_t, giou_t = iou[t].astype(np.float64), giou[t].astype(np.float64)
        st["tot_iou"] = _ordered_sum(iou_t)
        st["tot_iou_loss"] = _ordered_sum(1.0 - iou_t)
        st["tot_giou_loss"] = _ordered_sum(1.0 - giou_t)
        st["avg_obj"] = _ordered_sum(out[jb[t], jm[t], 4, jl[t]])
        st["avg_cat"] = _ordered_sum(out[jb[t], jm[t], 5 + jcls[t], jl[t]])
        st["recall50"] = int((iou[t] > 0.5).sum())
        st["recall75"] = int((iou[t] > 0.75).sum())

    # Box and class deltas are 0 outside the cells the jobs touched: the averaging and the
    # squared sums below only visit those cells (and the objectness plane).
    if cells.size:
        cb, cm_, cl = cells // (n * hw), cells // hw % n, cells % hw
        touched = delta[cb, cm_, :, cl]                                       # [C, c5] copy
        if p.iou_thresh < 1:  # averages_yolo_deltas
            npos = (touched[:, 5:] > 0).sum(axis=1)
            sel = (touched[:, 4] != 0) & (npos > 0)
            if sel.any():
                touched[sel, :4] /= npos[sel, None].astype(np.float32)
                delta[cb[sel], cm_[sel], 0:4, cl[sel]] = touched[sel, :4]

    if reject is not None:
        reject(delta)
        if cells.size:
            touched = delta[cb, cm_, :, cl]

    # ---- cost (show_details=1: obj/cls squared deltas + normalised (1 - IoU)) -------------
    count = st["count"] or 1
    class_count = st["class_count"] or 1
    sq_obj = float(np.square(delta[:, :, 4], dtype=np.float64).sum())
    sq_box = sq_class = 0.0
    if cells.size:
        touched = touched.astype(np.float64)
        sq_box = float(np.square(touched[:, :4]).sum())
        sq_class = float(np.square(touched[:, 5:]).sum())
    sq_cls = sq_obj + sq_class
    sq_all = sq_cls + sq_box
    classification_loss = float(p.obj_normalizer) * sq_cls
    if p.show_details == 0 or p.iou_loss == "mse":
        cost = sq_all
    else:
        tot = st["tot_giou_loss"] if p.iou_loss == "giou" else st["tot_iou_loss"]
        cost = float(p.iou_normalizer) * tot / count + classification_loss

    stats = {
        "count": st["count"], "class_count": st["class_count"],
        "avg_iou": st["tot_iou"] / count,
        "recall50": st["recall50"] / count, "recall75": st["recall75"] / count,
        "avg_obj": st["avg_obj"] / count,
        "avg_anyobj": st["avg_anyobj"] / (hw * n * N),
        "avg_cat": st["avg_cat"] / class_count,
        "class_loss": classification_loss / N,
        "iou_loss": (sq_all - classification_loss) / N,
        "total_loss": sq_all / N,
        "rewritten_bbox": st["rewritten_bbox"], "total_bbox": st["total_bbox"],
        "bad_labels": st["bad_labels"],
        "cost": cost,
        "track_labels": track_labels, "class_ids": class_ids,
    }
    return delta.reshape(output.shape), cost, stats
