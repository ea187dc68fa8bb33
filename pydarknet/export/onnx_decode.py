"""``--decode``: every head's boxes and per-class scores inside the graph, as
pydarknet/eval/decode.py computes them (before the threshold and the letterbox correction).

Rows are Darknet's: head by head in cfg order, then cell by cell, anchor by anchor. Boxes are
(x1, y1, x2, y2) in network-input pixels; scores are objectness x class probability
([Gaussian_yolo]: also x (1 - mean sigma); [region]: the activated scale x class probability;
[detection]: each box's scale x its cell's class probabilities),
without a threshold. ``--nms`` adds ONNX NonMaxSuppression (per class, like Darknet's sort NMS).
"""

import numpy as np

from ..errors import NotSupportedError
from .onnx_graph import Tensor

F32 = np.float32


def _rows(b, t, anchors, entries, h, w):
    """[anchors*entries, h, w] -> rows [h*w*anchors, entries] in Darknet's order."""
    t = b.reshape(t, (anchors, entries, h * w))
    name = b.op("Transpose", [t.name], "rows", perm=[0, 3, 1, 2])
    return b.reshape(Tensor(name, (h * w, anchors, entries)), (h * w * anchors, entries))


def _grid(h, w, n):
    cell = np.arange(h * w * n) // n
    return (cell % w).astype(F32), (cell // w).astype(F32)


def _col(b, t, k):
    return b.slice(t, 1, k, k + 1)


def _corners(b, cx, cy, bw, bh, net_w, net_h):
    """Relative centre boxes -> pixel corners [rows, 4]."""
    half_w = b.binary("Mul", bw, F32(net_w / 2))
    half_h = b.binary("Mul", bh, F32(net_h / 2))
    px, py = b.binary("Mul", cx, F32(net_w)), b.binary("Mul", cy, F32(net_h))
    return b.concat([b.binary("Sub", px, half_w), b.binary("Sub", py, half_h),
                     b.binary("Add", px, half_w), b.binary("Add", py, half_h)], 1)


def _yolo_head(b, layer, out, net_w, net_h):
    gaussian = layer.layer_type == "gaussian_yolo"
    entries = layer.classes + (9 if gaussian else 5)
    n, h, w = layer.n, layer.h, layer.w
    mask = np.asarray(layer.mask, np.intp)
    if mask.size and mask.max() * 2 + 1 >= len(layer.anchors):
        raise NotSupportedError(f"{layer.section.path}:{layer.section.line}: [{layer.type}] "
                                f"mask refers to anchor {mask.max()} but num={layer.total}")
    v = _rows(b, out, n, entries, h, w)
    col, row = _grid(h, w, n)
    a = np.tile(np.arange(n), h * w)
    aw = layer.anchors[2 * mask[a]].astype(F32).reshape(-1, 1)
    ah = layer.anchors[2 * mask[a] + 1].astype(F32).reshape(-1, 1)
    ix, iy, iw, ih, obj_k = (0, 2, 4, 6, 8) if gaussian else (0, 1, 2, 3, 4)
    cx = b.binary("Div", b.binary("Add", _col(b, v, ix), col.reshape(-1, 1)), F32(w))
    cy = b.binary("Div", b.binary("Add", _col(b, v, iy), row.reshape(-1, 1)), F32(h))
    tw, th = _col(b, v, iw), _col(b, v, ih)
    if getattr(layer, "new_coords", 0):
        bw = b.binary("Div", b.binary("Mul", b.binary("Mul", tw, tw), 4 * aw), F32(net_w))
        bh = b.binary("Div", b.binary("Mul", b.binary("Mul", th, th), 4 * ah), F32(net_h))
    else:
        bw = b.binary("Mul", b.unary("Exp", tw), aw / F32(net_w))
        bh = b.binary("Mul", b.unary("Exp", th), ah / F32(net_h))
    if gaussian and getattr(layer, "yolo_point", "center") in ("left_top", "right_bottom"):
        sign = F32(0.5 if layer.yolo_point == "left_top" else -0.5)
        cx = b.binary("Add", cx, b.binary("Mul", bw, sign))
        cy = b.binary("Add", cy, b.binary("Mul", bh, sign))
    scores = b.binary("Mul", _col(b, v, obj_k), b.slice(v, 1, obj_k + 1, entries))
    if gaussian:    # x (1 - mean of the four sigmas)
        sig = b.concat([_col(b, v, k) for k in (1, 3, 5, 7)], 1)
        uc = b.binary("Mul", b.reduce("ReduceSum", sig, [1]), F32(0.25))
        scores = b.binary("Mul", scores, b.binary("Sub", Tensor(b.scalar(1.0), ()), uc))
    return _corners(b, cx, cy, bw, bh, net_w, net_h), scores


def _region_head(b, layer, out, net_w, net_h):
    if layer.tree:
        raise NotSupportedError(f"{layer.section.path}:{layer.section.line}: [region] with a "
                                f"softmax tree is exported (its output), but its decoding "
                                f"(the tree's path probabilities) is not: export without "
                                f"--decode")
    if layer.coords != 4:
        raise NotSupportedError(f"{layer.section.path}:{layer.section.line}: [region] with "
                                f"coords={layer.coords} is not decoded; coords=4 is")
    n, h, w, entries = layer.num, layer.h, layer.w, layer.classes + 5
    v = b.reshape(out, (h * w * n, entries))
    col, row = _grid(h, w, n)
    a = np.tile(np.arange(n), h * w)
    aw = layer.anchors[2 * a].astype(F32).reshape(-1, 1)
    ah = layer.anchors[2 * a + 1].astype(F32).reshape(-1, 1)
    cx = b.binary("Div", b.binary("Add", b.unary("Sigmoid", _col(b, v, 0)),
                                  col.reshape(-1, 1)), F32(w))
    cy = b.binary("Div", b.binary("Add", b.unary("Sigmoid", _col(b, v, 1)),
                                  row.reshape(-1, 1)), F32(h))
    bw = b.binary("Mul", b.unary("Exp", _col(b, v, 2)), aw / F32(w))
    bh = b.binary("Mul", b.unary("Exp", _col(b, v, 3)), ah / F32(h))
    scale = _col(b, v, 4)
    if layer.classfix == -1:           # Darknet's get_region_boxes drops scales below 0.5
        low = b.op("Less", [scale.name, b.scalar(0.5)], "region_low")
        scale = Tensor(b.op("Where", [low, b.scalar(0.0), scale.name], "region_scale"),
                       scale.shape)
    scores = b.binary("Mul", scale, b.slice(v, 1, 5, entries))
    return _corners(b, cx, cy, bw, bh, net_w, net_h), scores


def _detection_head(b, layer, out, net_w, net_h):
    if layer.coords != 4:
        raise NotSupportedError(f"{layer.section.path}:{layer.section.line}: [detection] with "
                                f"coords={layer.coords} is not decoded; coords=4 is")
    side, n, classes = layer.side, layer.num, layer.classes
    cells = side * side
    flat = b.reshape(out, (layer.inputs,))
    cls = b.reshape(b.slice(flat, 0, 0, cells * classes), (cells, 1, classes))
    cls = Tensor(b.op("Expand", [cls.name, b.ints([cells, n, classes])], "cell_probs"),
                 (cells, n, classes))
    cls = b.reshape(cls, (cells * n, classes))
    scale = b.reshape(b.slice(flat, 0, cells * classes, cells * (classes + n)), (cells * n, 1))
    start = cells * (classes + n)
    t = b.reshape(b.slice(flat, 0, start, start + cells * n * 4), (cells * n, 4))
    col, row = _grid(side, side, n)
    cx = b.binary("Div", b.binary("Add", _col(b, t, 0), col.reshape(-1, 1)), F32(side))
    cy = b.binary("Div", b.binary("Add", _col(b, t, 1), row.reshape(-1, 1)), F32(side))
    bw, bh = _col(b, t, 2), _col(b, t, 3)
    if layer.sqrt:
        bw, bh = b.binary("Mul", bw, bw), b.binary("Mul", bh, bh)
    return _corners(b, cx, cy, bw, bh, net_w, net_h), b.binary("Mul", scale, cls)


def decode_heads(b, network, heads, outputs):
    """(boxes [K, 4], scores [K, classes]) Tensors over every head."""
    net_w, net_h = network.net.width, network.net.height
    classes = heads[-1].classes
    boxes, scores = [], []
    for layer in heads:
        if layer.classes != classes:
            raise NotSupportedError(
                f"{layer.section.path}:{layer.section.line}: [{layer.type}] has classes="
                f"{layer.classes} but the last detection layer has classes={classes}")
        if layer.layer_type == "region":
            bx, sc = _region_head(b, layer, outputs[layer.index], net_w, net_h)
        elif layer.layer_type in ("yolo", "gaussian_yolo"):
            bx, sc = _yolo_head(b, layer, outputs[layer.index], net_w, net_h)
        elif layer.layer_type == "detection":
            bx, sc = _detection_head(b, layer, outputs[layer.index], net_w, net_h)
        else:
            raise NotSupportedError(f"layer {layer.index} [{layer.type}]: decoding its "
                                    "outputs to boxes is not implemented")
        boxes.append(bx)
        scores.append(sc)
    return b.concat(boxes, 0, "all_boxes"), b.concat(scores, 0, "all_scores")


def add_nms(b, boxes, scores, iou_thresh, score_thresh, max_per_class):
    """ONNX NonMaxSuppression per class: selected_indices [M, 3] = (image, class, row)."""
    per_class = Tensor(b.op("Transpose", [scores.name], "scores_t", perm=[0, 2, 1]),
                       scores.shape[::-1])
    name = b.op("NonMaxSuppression",
                [boxes.name, per_class.name, b.ints([max_per_class]),
                 b.const(np.float32(iou_thresh), "iou_thresh"),
                 b.const(np.float32(score_thresh), "score_thresh")],
                out_names=["selected_indices"], center_point_box=0)
    return name
