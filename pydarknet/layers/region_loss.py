"""The training loss of Darknet's [region] layer (YOLOv2; AB's ``forward_region_layer``).

:func:`region_loss` takes the layer's output in Darknet's flattened layout (``[N, h*w*num,
coords + classes + 1]``: objectness activated, classes soft-maxed, x, y, w, h raw) and the
truths of a mini-batch, and returns Darknet's ``l.delta`` (= -dLoss/d input, already in the
input's layout), ``l.cost[0]`` and the numbers of Darknet's "Region Avg IOU" line. Step by step:

1. every anchor of every cell: objectness pushed to 0 (``noobject_scale``), left alone where
   its box's best IoU with a truth of the image exceeds ``thresh`` (``classfix=-1``: pushed to
   that IoU instead; ``classfix=1/2``: also trained towards that truth's class); while fewer
   than 12800 images are seen, its box is pulled towards its anchor at the cell's centre
   (scale .01);
2. every truth, in order: in its cell ``(int)(x * w), (int)(y * h)``, the anchor whose box
   shape (its anchor's with ``bias_match``) fits the truth's best gets the box gradient
   (``coord_scale``), objectness 1 (``rescore``: the box's IoU; ``object_scale``) and the
   class targets (``class_scale``, ``focal_loss``). A later truth that picks the same anchor
   of the same cell replaces what an earlier one wrote, as Darknet's loop does.

Unlike [yolo], x and y are not activated in the output: the box uses logistic(x), and the x, y
deltas carry the logistic's gradient. Arithmetic is float32 where Darknet's is ``float``,
double where Darknet calls ``exp``/``log``; the results match a one-by-one transcription of
Darknet's loops bit for bit (tests/test_region_loss.py).

Where Darknet reads out of its arrays, pydarknet stays inside: a truth at x or y = 1 trains
the last column or row. A truth that no anchor's box of its cell overlaps (IoU 0 or NaN for
all: a w or h output whose exp overflows or underflows, beyond about 88 or -104, or one not
finite) trains its cell's first anchor; Darknet's best_index stays 0 there and the truth's
deltas go to the batch's first anchor (training fuzz seeds 82479, 87427).
"""

import numpy as np

from .. import boxes
from ..host_math import logistic
from ..tree import load_tree
from .yolo_loss import image_truths, map_classes

f32 = np.float32
PRIOR_SEEN = 12800      # images seen before the boxes stop being pulled to their anchors
PRIOR_SCALE = f32(0.01)


def _pred_boxes(out, biases, w, h):
    """get_region_box for every cell and anchor: out [N, hw, num, size] -> [N, hw, num, 4]
    float32, and the logistic of x and y."""
    N, hw, num, _ = out.shape
    cell = np.arange(hw)
    gi = (cell % w).astype(np.float32)[None, :, None]
    gj = (cell // w).astype(np.float32)[None, :, None]
    lx, ly = logistic(out[..., 0]), logistic(out[..., 1])
    pred = np.empty((N, hw, num, 4), np.float32)
    pred[..., 0] = (gi + lx) / f32(w)
    pred[..., 1] = (gj + ly) / f32(h)
    bw = biases[0::2][:num].astype(np.float64)
    bh = biases[1::2][:num].astype(np.float64)
    with np.errstate(over="ignore"):
        pred[..., 2] = np.exp(out[..., 2].astype(np.float64)) * bw / w
        pred[..., 3] = np.exp(out[..., 3].astype(np.float64)) * bh / h
    return pred, lx, ly


def _box_delta(target, x4, lx, ly, ij, anchor_wh, w, h, scale):
    """delta_region_box for K boxes: target [K, 4] truths, x4 [K, 4] raw outputs, lx, ly [K]
    their logistic, ij [K, 2] cells, anchor_wh [K, 2]; returns the [K, 4] deltas."""
    tx = target[:, 0] * f32(w) - ij[:, 0].astype(np.float32)
    ty = target[:, 1] * f32(h) - ij[:, 1].astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        tw = np.log((target[:, 2] * f32(w) / anchor_wh[:, 0]).astype(np.float64)).astype(f32)
        th = np.log((target[:, 3] * f32(h) / anchor_wh[:, 1]).astype(np.float64)).astype(f32)
    d = np.empty(target.shape, np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        d[:, 0] = scale * (tx - lx) * ((f32(1) - lx) * lx)
        d[:, 1] = scale * (ty - ly) * ((f32(1) - ly) * ly)
        d[:, 2] = scale * (tw - x4[:, 2])
        d[:, 3] = scale * (th - x4[:, 3])
    return d


def _class_delta(oc, class_id, scale, focal_loss):
    """delta_region_class for K cells: oc [K, classes] their class outputs, class_id [K],
    scale a float32 or [K]; returns the [K, classes] deltas."""
    k = np.arange(len(class_id))
    onehot = np.zeros(oc.shape, np.float32)
    onehot[k, class_id] = 1
    d = np.asarray(scale, np.float32).reshape(-1, 1) * (onehot - oc)
    if focal_loss:
        pt = oc[k, class_id] + f32(1e-15)
        with np.errstate(divide="ignore", invalid="ignore"):
            grad = -(f32(1) - pt) * (f32(2) * pt * np.log(pt) + pt - f32(1))
        d *= (f32(0.5) * grad)[:, None]
    return d


def _tree_class_delta(tree, delta, output, class_id, scale):
    """delta_region_class with a softmax tree, for one cell's class values (``delta`` and
    ``output`` [classes], delta written in place): along the path from ``class_id`` to its
    root, every class of each group pushed to 0 and the path's class to 1 (the rest of the
    delta left as it was); returns the path's probability (Darknet's avg_cat term)."""
    pred = 1.0
    while class_id >= 0:
        pred *= float(output[class_id])
        g = tree.group_of[class_id]
        lo = tree.group_offset[g]
        hi = lo + tree.group_size[g]
        delta[lo:hi] = scale * (f32(0) - output[lo:hi])
        delta[class_id] = scale * (f32(1) - output[class_id])
        class_id = int(tree.parent[class_id])
    return pred


def _last_of_each(keys):
    """Indexes of the last occurrence of each distinct key: where several truths write the
    same place, Darknet's loop leaves the last one's values."""
    _, first_from_end = np.unique(keys[::-1], return_index=True)
    return len(keys) - 1 - first_from_end


def region_loss(layer, output, truths, seen, delta_out=None, zeroed=False):
    """Darknet's [region] training loss.

    layer: a built :class:`pydarknet.layers.region.Region`; output: its output as its forward
    gives it, float32 with N * h*w*num*(coords+classes+1) values in Darknet's flattened order;
    truths: float32 [N, max_boxes, 5 or 6] rows x, y, w, h, class (, track id) relative to the
    image, a row with x == 0 ends an image's list; seen: the images seen, this mini-batch's
    included (Darknet's ``*net.seen`` in the forward).

    Returns ``(delta, cost, stats)``: delta, float32 [N, num*size, h, w] in the layer
    input's layout (Darknet's ``l.delta`` after its final flatten); cost = ``l.cost[0]``, the
    sum of the squared deltas; stats Darknet's console numbers (avg_iou, avg_cat, avg_obj,
    avg_anyobj, recall, count, class_count). delta_out: an array of the delta's size to
    write it into (then returned, reshaped); every value of it is written, so ``zeroed``
    (it holds zeros already) changes nothing.
    """
    w, h, num, classes = layer.w, layer.h, layer.num, layer.classes
    hw, size = w * h, layer.coords + classes + 1
    output = np.asarray(output, np.float32)
    N = output.size // (hw * num * size)
    if layer.coords != 4 or output.size != N * hw * num * size:
        raise ValueError(f"[region] layer {layer.index}: the loss needs coords=4 and an output "
                         f"of N x {hw * num * size} values, found coords={layer.coords}, "
                         f"{output.size} values")
    out = output.reshape(N, hw, num, size)
    biases = np.asarray(layer.anchors, np.float32)
    anchor_wh = np.stack([biases[0::2][:num], biases[1::2][:num]], axis=1)
    truths = np.asarray(truths, np.float32).reshape(N, -1, truths.shape[-1])
    T = min(truths.shape[1], layer.max_boxes)
    thresh = f32(layer.thresh)
    noobject_scale, object_scale = f32(layer.noobject_scale), f32(layer.object_scale)
    class_scale, coord_scale = f32(layer.class_scale), f32(layer.coord_scale)

    pred, lx, ly = _pred_boxes(out, biases, w, h)
    obj = out[..., 4]
    grad_obj = (f32(1) - obj) * obj                                  # logistic_gradient
    delta = np.zeros(out.shape, np.float32)
    cell = np.arange(hw)
    ij_all = np.stack([cell % w, cell // w], axis=1)                  # [hw, 2]
    st = {"avg_iou": 0.0, "recall": 0, "avg_cat": 0.0, "avg_obj": 0.0, "count": 0,
          "class_count": 0, "avg_anyobj": float(obj.sum(dtype=np.float64))}

    tree = load_tree(layer) if layer.tree else None
    # the truths Darknet reads: up to the first x == 0, classes in range; with a tree, an
    # image whose truth is marked x, y > 100000 (a classification-only image of yolo9000's
    # combined data) trains only that class, at the cell and anchor that predict it best
    rows, only_class = [], {}
    for b in range(N):
        keep, cid, r, _ = image_truths(classes, truths, b, T)
        if tree is not None:
            marked = keep[(r[keep, 0] > 100000) & (r[keep, 1] > 100000)]
            if marked.size:
                only_class[b] = int(cid[marked[0]])
                keep = keep[:0]
        rows.append((r[keep, :4], cid[keep]))

    # ---- every anchor of every cell ------------------------------------------------------
    with np.errstate(over="ignore", invalid="ignore"):
        delta[..., 4] = noobject_scale * ((f32(0) - obj) * grad_obj)
    for b, class_id in only_class.items():     # nothing else of the image trains
        delta[b] = 0
        p = obj[b] * tree.path_probability(out[b, ..., 5:], class_id)
        c, a = np.unravel_index(int(np.argmax(p)) if (p > 0).any() else 0, p.shape)
        st["avg_cat"] += _tree_class_delta(tree, delta[b, c, a, 5:], out[b, c, a, 5:],
                                           class_id, class_scale)
        st["class_count"] += 1
    for b in range(N):
        if b in only_class:
            continue
        tbox, tcls = rows[b]
        if not tbox.size:
            best = np.zeros((hw, num), np.float32)
            best_cls = np.full((hw, num), -1)
        else:
            ious = boxes.box_iou_matrix(tbox, pred[b].reshape(-1, 4))       # [T, hw*num]
            ious = np.where(np.isnan(ious), f32(0), ious)
            first = np.argmax(ious, axis=0)                                # the first largest
            best = np.maximum(ious[first, np.arange(ious.shape[1])], f32(0)).reshape(hw, num)
            best_cls = np.where(best > 0, tcls[first].reshape(hw, num), -1)
        if layer.classfix == -1:
            with np.errstate(over="ignore", invalid="ignore"):
                delta[b, ..., 4] = noobject_scale * ((best - obj[b]) * grad_obj[b])
            continue
        hit = best > thresh
        delta[b, ..., 4][hit] = 0
        if layer.classfix > 0 and hit.any():
            c, a = np.nonzero(hit)
            scale = class_scale * (obj[b, c, a] if layer.classfix == 2 else f32(1))
            oc = out[b, c, a, 5:]
            if tree is not None:
                scale = np.broadcast_to(np.asarray(scale, np.float32), c.shape)
                for k in range(c.size):
                    st["avg_cat"] += _tree_class_delta(tree, delta[b, c[k], a[k], 5:], oc[k],
                                                       int(best_cls[c[k], a[k]]), scale[k])
            else:
                delta[b, c, a, 5:] = _class_delta(oc, best_cls[c, a], scale, layer.focal_loss)
                st["avg_cat"] += float(oc[np.arange(c.size),
                                          best_cls[c, a]].sum(dtype=np.float64))
            st["class_count"] += int(c.size)

    if seen < PRIOR_SEEN:  # every box towards its anchor, centred in its cell
        regular = np.ones(N, bool)
        regular[list(only_class)] = False
        prior = np.empty((hw, num, 4), np.float32)
        prior[..., 0] = ((cell % w + 0.5) / w).astype(np.float32)[:, None]
        prior[..., 1] = ((cell // w + 0.5) / h).astype(np.float32)[:, None]
        prior[..., 2] = anchor_wh[:, 0] / f32(w)
        prior[..., 3] = anchor_wh[:, 1] / f32(h)
        target = np.broadcast_to(prior, (N, hw, num, 4)).reshape(-1, 4)
        ij = np.broadcast_to(ij_all[None, :, None, :], (N, hw, num, 2)).reshape(-1, 2)
        aw = np.broadcast_to(anchor_wh[None, None], (N, hw, num, 2)).reshape(-1, 2)
        prior_delta = _box_delta(target, out[..., :4].reshape(-1, 4), lx.reshape(-1),
                                 ly.reshape(-1), ij, aw, w, h, PRIOR_SCALE).reshape(N, hw, num, 4)
        delta[regular, ..., :4] = prior_delta[regular]

    # ---- every truth: the best anchor of its cell -----------------------------------------
    tb = np.concatenate([np.full(len(c), b) for b, (_, c) in enumerate(rows)]).astype(np.int64)
    if tb.size:
        tbox = np.concatenate([r for r, _ in rows])
        tcls = np.concatenate([c for _, c in rows])
        gi = np.clip((tbox[:, 0] * f32(w)).astype(np.int64), 0, w - 1)
        gj = np.clip((tbox[:, 1] * f32(h)).astype(np.int64), 0, h - 1)
        tc = gj * w + gi
        shape = pred[tb, tc].copy()                                           # [K, num, 4]
        if layer.bias_match:
            shape[..., 2] = anchor_wh[:, 0] / f32(w)
            shape[..., 3] = anchor_wh[:, 1] / f32(h)
        shape[..., :2] = 0
        shift = np.zeros((tb.size, 1, 4), np.float32)
        shift[..., 2:] = tbox[:, None, 2:4]
        shape_iou = boxes.box_iou(shape, shift)                               # [K, num]
        shape_iou = np.where(np.isnan(shape_iou), f32(0), shape_iou)
        best_n = np.argmax(shape_iou, axis=1)        # the first largest (0 when none is > 0)
        x4 = out[tb, tc, best_n, :4]
        o = obj[tb, tc, best_n]
        iou = boxes.box_iou(pred[tb, tc, best_n], tbox)
        d_box = _box_delta(tbox, x4, lx[tb, tc, best_n], ly[tb, tc, best_n],
                           np.stack([gi, gj], axis=1), anchor_wh[best_n], w, h, coord_scale)
        target_obj = iou if layer.rescore else f32(1)
        with np.errstate(invalid="ignore"):
            d_obj = object_scale * (target_obj - o) * ((f32(1) - o) * o)
        oc = out[tb, tc, best_n, 5:]
        last = _last_of_each((tb * hw + tc) * num + best_n)
        b_, c_, n_ = tb[last], tc[last], best_n[last]
        delta[b_, c_, n_, :4] = d_box[last]
        delta[b_, c_, n_, 4] = d_obj[last]
        if layer.map_file:        # (Darknet maps here only, not for classfix)
            tcls = map_classes(layer, tcls)
        if tree is not None:   # truth by truth: a later one writes over its own groups only
            cat = [_tree_class_delta(tree, delta[tb[k], tc[k], best_n[k], 5:], oc[k],
                                     int(tcls[k]), class_scale) for k in range(tb.size)]
            st["avg_cat"] += float(sum(cat))
        else:
            d_cls = _class_delta(oc, tcls, class_scale, layer.focal_loss)
            delta[b_, c_, n_, 5:] = d_cls[last]
            st["avg_cat"] += float(oc[np.arange(tb.size), tcls].sum(dtype=np.float64))
        st["count"] = int(tb.size)
        st["class_count"] += int(tb.size)
        st["avg_iou"] = float(iou.sum(dtype=np.float64))
        st["recall"] = int((iou > f32(0.5)).sum())
        st["avg_obj"] = float(o.sum(dtype=np.float64))

    # back to the input's layout (Darknet's flatten(..., 0))
    shape = (N, num * size, h, w)
    if delta_out is not None and delta_out.size == delta.size:
        result = delta_out.reshape(shape)
    else:
        result = np.empty(shape, np.float32)
    result.reshape(N, num * size, hw)[...] = delta.reshape(N, hw, num * size).transpose(0, 2, 1)
    cost = float(np.square(delta, dtype=np.float64).sum())
    count, class_count = st["count"], st["class_count"]
    stats = {"count": count, "class_count": class_count,
             "avg_iou": st["avg_iou"] / count if count else float("nan"),
             "avg_cat": st["avg_cat"] / class_count if class_count else float("nan"),
             "avg_obj": st["avg_obj"] / count if count else float("nan"),
             "avg_anyobj": st["avg_anyobj"] / (hw * num * N),
             "recall": st["recall"] / count if count else float("nan"),
             "cost": cost}
    return result, cost, stats
