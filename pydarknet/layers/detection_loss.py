"""The training loss of Darknet's [detection] layer (YOLOv1; AB's ``forward_detection_layer``).

The output of an image is flat: ``side*side*classes`` class scores (soft-maxed per cell with
``softmax=1``), then ``side*side*num`` objectness scores, then ``side*side*num`` boxes
``x, y`` (offsets in the cell), ``w, h`` (relative to the image; their square roots with
``sqrt=1``). Nothing else is activated.

Darknet trains YOLOv1 from a grid of truths (``fill_truth_region``): per cell an object flag,
the class one-hot and one box. :func:`truth_grid` builds that grid from pydarknet's box
truths: the first box of a cell is the cell's, boxes under 0.001 wide or high are left out.
:func:`detection_loss` then follows forward_detection_layer:

- every objectness is pushed to 0 (``noobject_scale``);
- in a cell with an object: the class scores towards the one-hot (``class_scale``); of the
  cell's ``num`` boxes, the one with the largest IoU with the truth (while none overlaps it:
  the smallest RMSE below 20), or by size with ``forced``, or a random one while fewer than
  64000 images are seen with ``random``: its objectness towards 1 (``rescore``: the IoU;
  ``object_scale``) and its box towards the truth (``coord_scale``).

``l.cost`` is the sum of the squared deltas. Arithmetic is Darknet's float and double, in its
order. Where Darknet indexes outside the cell (a truth at x or y = 1, no box chosen), the
last row or column and the cell's first box are used.
"""

import numpy as np

from .. import boxes

f32 = np.float32
RANDOM_SEEN = 64000


def truth_grid(truths, side, classes):
    """fill_truth_region: box truths [N, max_boxes, >= 5] (x, y, w, h, class; a row with
    x == 0 ends an image's list) -> [N, side*side, 5 + classes] rows (object, one-hot,
    x and y within the cell, w, h)."""
    truths = np.asarray(truths, np.float32)
    N = truths.shape[0]
    grid = np.zeros((N, side * side, 5 + classes), np.float32)
    for b in range(N):
        for x, y, w, h, cls in truths[b, :, :5]:
            if x == 0:
                break
            if float(w) < .001 or float(h) < .001:
                continue
            col = min(int(x * f32(side)), side - 1)
            row = min(int(y * f32(side)), side - 1)
            cell = grid[b, col + row * side]
            if cell[0]:
                continue
            cell[0] = 1
            if 0 <= int(cls) < classes:
                cell[1 + int(cls)] = 1
            cell[1 + classes:] = (x * f32(side) - f32(col), y * f32(side) - f32(row), w, h)
    return grid


def _rmse(a, b):
    """box_rmse: in double, returned as float."""
    d = (a - b).astype(np.float64)
    return np.sqrt(np.square(d).sum(axis=-1)).astype(np.float32)


def detection_loss(layer, output, truths, seen, rng=None, delta_out=None, zeroed=False):
    """Darknet's [detection] training loss.

    layer: a built :class:`pydarknet.layers.detection.Detection`; output: its output (float32,
    N x inputs values); truths: box truths as the other detection heads take them (see
    :func:`truth_grid`); seen: the images seen, this mini-batch's included; rng: a numpy
    Generator for ``random`` (the box chosen at random early in training); delta_out: an
    array of output's size to write the delta into, ``zeroed`` if it holds zeros already.

    Returns ``(delta, cost, stats)``: delta float32 in output's shape (Darknet's ``l.delta``),
    cost = ``l.cost[0]`` (the sum of its squares), stats the console's numbers (avg_iou,
    pos_cat, all_cat, pos_obj, any_obj, count).
    """
    side, num, classes = layer.side, layer.num, layer.classes
    cells = side * side
    output = np.asarray(output, np.float32)
    N = output.shape[0]
    if layer.coords != 4:
        raise ValueError(f"[detection] layer {layer.index}: the loss needs coords=4, found "
                         f"{layer.coords}")
    flat = output.reshape(N, -1)
    cls_out = flat[:, :cells * classes].reshape(N, cells, classes)
    obj_out = flat[:, cells * classes:cells * (classes + num)].reshape(N, cells, num)
    box_out = flat[:, cells * (classes + num):].reshape(N, cells, num, 4)
    if delta_out is not None and delta_out.size == output.size:
        delta = delta_out.reshape(N, -1)
        if not zeroed:
            delta.fill(0)
    else:
        delta = np.zeros((N, flat.shape[1]), np.float32)
    d_cls = delta[:, :cells * classes].reshape(N, cells, classes)
    d_obj = delta[:, cells * classes:cells * (classes + num)].reshape(N, cells, num)
    d_box = delta[:, cells * (classes + num):].reshape(N, cells, num, 4)
    noobject_scale, object_scale = f32(layer.noobject_scale), f32(layer.object_scale)
    class_scale, coord_scale = f32(layer.class_scale), f32(layer.coord_scale)

    d_obj[...] = noobject_scale * (f32(0) - obj_out)
    grid = truth_grid(truths, side, classes)
    b, c = np.nonzero(grid[..., 0])                    # the cells with an object, in order
    stats = {"count": int(b.size), "any_obj": float(obj_out.sum(dtype=np.float64))
             / (N * cells * num)}
    if b.size:
        onehot = grid[b, c, 1:1 + classes]
        oc = cls_out[b, c]
        d_cls[b, c] = class_scale * (onehot - oc)
        tbox = grid[b, c, 1 + classes:].copy()
        truth = tbox.copy()
        truth[:, :2] /= f32(side)
        pred = box_out[b, c].copy()                                        # [K, num, 4]
        pred[..., :2] /= f32(side)
        if layer.sqrt:
            pred[..., 2:] = pred[..., 2:] * pred[..., 2:]
        iou = boxes.box_iou(pred, truth[:, None, :])                     # [K, num]
        rmse = _rmse(pred, truth[:, None, :])
        # Darknet's scan: the largest IoU once one is > 0, the smallest RMSE (< 20) until then
        K = b.size
        best_iou, best_rmse = np.zeros(K, np.float32), np.full(K, f32(20))
        best = np.full(K, -1)
        for j in range(num):
            by_iou = (best_iou > 0) | (iou[:, j] > 0)
            up = np.where(by_iou, iou[:, j] > best_iou, rmse[:, j] < best_rmse)
            best_iou = np.where(by_iou & up, iou[:, j], best_iou)
            best_rmse = np.where(~by_iou & up, rmse[:, j], best_rmse)
            best = np.where(up, j, best)
        if layer.forced:
            best = np.where(truth[:, 2] * truth[:, 3] < f32(.1), 1, 0)
        if layer.random and seen < RANDOM_SEEN:
            rng = rng if rng is not None else np.random.default_rng()
            best = rng.integers(0, num, K)
        best = np.clip(best, 0, num - 1)       # -1: no box chosen (only NaN or huge outputs)
        k = np.arange(K)
        iou_best = iou[k, best]
        o = obj_out[b, c, best]
        if layer.rescore:
            d_obj[b, c, best] = object_scale * (iou_best - o)
        else:
            d_obj[b, c, best] = (float(object_scale) * (1.0 - o.astype(np.float64))).astype(f32)
        raw = box_out[b, c, best]
        d = coord_scale * (tbox - raw)
        if layer.sqrt:
            wh = np.sqrt(tbox[:, 2:].astype(np.float64)) - raw[:, 2:].astype(np.float64)
            d[:, 2:] = (float(coord_scale) * wh).astype(f32)
        d_box[b, c, best] = d
        stats.update(avg_iou=float(iou_best.sum(dtype=np.float64)) / K,
                     pos_cat=float(oc[onehot > 0].sum(dtype=np.float64)) / K,
                     all_cat=float(oc.sum(dtype=np.float64)) / (K * classes),
                     pos_obj=float(o.sum(dtype=np.float64)) / K)
    cost = float(np.square(delta, dtype=np.float64).sum())
    stats["cost"] = cost
    return delta.reshape(output.shape), cost, stats
