"""Detector outputs -> boxes, as AB's ``get_network_boxes`` builds them.

For every [yolo], [Gaussian_yolo], [region] and [detection] layer, in cfg order, and within a
layer cell by cell and anchor by anchor (Darknet's order, which is also OpenCV DNN's row order):

- [yolo]: a candidate where objectness > thresh; box ``x = (col + tx) / w``,
  ``w = exp(tw) * anchor_w / net_w`` (``new_coords=1``: ``tw^2 * 4 * anchor_w / net_w``); the
  layer's forward already applied the logistic and ``scale_x_y``;
- [Gaussian_yolo]: the same with the mean entries 0, 2, 4, 6, objectness at 8 and every class
  probability multiplied by ``1 - mean(sigma_x, sigma_y, sigma_w, sigma_h)``; ``yolo_point``
  left_top / right_bottom shift the centre by half the box;
- [region]: every cell and anchor, objectness 1, ``x = (col + logistic(tx)) / w``,
  ``w = exp(tw) * anchor_w / w`` (``classfix=-1``: scales below 0.5 count as 0; with a
  softmax ``tree``, the most specific class whose path probability exceeds 0.5);
- [detection] (YOLOv1): every cell and box, objectness its score, ``x = (tx + col) / side``,
  ``w = tw`` (``sqrt=1``: ``tw^2``), the cell's class probabilities for all its boxes;

per-class probability = objectness x class probability, set to 0 unless > thresh; then
``correct_yolo_boxes`` undoes the letterbox. Boxes are relative to the original image
(x, y the centre), float32, with Darknet's float/double arithmetic.
"""

import numpy as np

from ..errors import NotSupportedError
from ..heads import DETECTION_HEADS
from ..host_math import logistic
from ..image import letterbox_geometry
from ..tree import load_tree

__all__ = ["Detections", "detection_layers", "decode_layer", "decode_network", "correct_boxes"]

_F = np.float32


class Detections:
    """Candidate boxes of one image.

    ``boxes`` float32 [N, 4] (x, y, w, h relative to the image, x, y the centre),
    ``objectness`` float32 [N], ``probs`` float32 [N, classes] (0 where not above the threshold
    or suppressed by NMS), ``layer`` and ``index`` int [N] (the head's layer index and the
    row ``cell * anchors + anchor`` within it), ``image_size`` (w, h) in pixels,
    ``uncertainty`` float32 [N, 4] for [Gaussian_yolo] heads (else None).
    """

    __slots__ = ("boxes", "objectness", "probs", "layer", "index", "image_size", "uncertainty")

    def __init__(self, boxes, objectness, probs, layer, index, image_size, uncertainty=None):
        self.boxes, self.objectness, self.probs = boxes, objectness, probs
        self.layer, self.index, self.image_size = layer, index, tuple(image_size)
        self.uncertainty = uncertainty

    @classmethod
    def empty(cls, classes, image_size):
        return cls(np.zeros((0, 4), _F), np.zeros(0, _F), np.zeros((0, classes), _F),
                   np.zeros(0, np.int32), np.zeros(0, np.int64), image_size)

    @classmethod
    def concatenate(cls, parts, classes, image_size):
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty(classes, image_size)
        unc = None
        if any(p.uncertainty is not None for p in parts):
            unc = np.concatenate([p.uncertainty if p.uncertainty is not None else
                                  np.zeros((len(p), 4), _F) for p in parts])
        return cls(*(np.concatenate([getattr(p, k) for p in parts])
                     for k in ("boxes", "objectness", "probs", "layer", "index")),
                   image_size, unc)

    def __len__(self):
        return len(self.objectness)

    @property
    def classes(self):
        return self.probs.shape[1]

    def select(self, rows):
        return Detections(self.boxes[rows], self.objectness[rows], self.probs[rows],
                          self.layer[rows], self.index[rows], self.image_size,
                          None if self.uncertainty is None else self.uncertainty[rows])

    def copy(self):
        return Detections(self.boxes.copy(), self.objectness.copy(), self.probs.copy(),
                          self.layer.copy(), self.index.copy(), self.image_size,
                          None if self.uncertainty is None else self.uncertainty.copy())

    def pairs(self, thresh=0.0):
        """(row, class_id, score) of every probability > thresh, in Darknet's order (rows in
        detection order, classes ascending within a row)."""
        rows, cls = np.nonzero(self.probs > _F(thresh))
        return rows, cls, self.probs[rows, cls]

    def pixel_boxes(self):
        """Boxes in pixels of the original image, float64 [N, 4] (x, y centre, w, h)."""
        w, h = self.image_size
        return self.boxes.astype(np.float64) * np.array([w, h, w, h], np.float64)

    def to_list(self, thresh=0.0):
        """[(class_id, score, (x, y, w, h))] for every class probability > thresh, boxes in
        pixels (x, y the centre), highest score first (ties in detection order)."""
        rows, cls, score = self.pairs(thresh)
        order = np.argsort(-score, kind="stable")
        px = self.pixel_boxes()
        return [(int(cls[k]), float(score[k]), tuple(float(v) for v in px[rows[k]]))
                for k in order]

    def best_class(self, thresh=0.0):
        """(rows, class_id, score) of rows whose best probability is > thresh (Darknet's
        ``get_actual_detections``: the first class wins ties)."""
        if not len(self):
            return np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0, _F)
        best = self.probs.argmax(1)
        score = self.probs[np.arange(len(self)), best]
        rows = np.flatnonzero(score > _F(thresh))
        return rows, best[rows], score[rows]

    def __repr__(self):
        return f"<Detections {len(self)} boxes, {self.classes} classes, image {self.image_size}>"


def detection_layers(network):
    """The layers Darknet reads boxes from, in cfg order ([yolo], [Gaussian_yolo], [region],
    [detection])."""
    heads = [layer for layer in network.layers if layer.layer_type in DETECTION_HEADS]
    if not heads:
        raise NotSupportedError(f"{network.cfg_path}: no [yolo], [Gaussian_yolo], [region] or "
                                "[detection] layer: not a detector")
    return heads


def correct_boxes(boxes, image_size, net_size, letter_box=False):
    """AB's ``correct_yolo_boxes`` with relative=1: boxes relative to the network input ->
    relative to the image, undoing the letterbox. float32 [N, 4], modified in place."""
    iw, ih = image_size
    netw, neth = net_size
    if letter_box:
        new_w, new_h, _, _ = letterbox_geometry(iw, ih, netw, neth)
    else:
        new_w, new_h = netw, neth
    if (new_w, new_h) == (netw, neth):
        return boxes
    deltaw, deltah = float(_F(netw - new_w)), float(_F(neth - new_h))
    ratiow, ratioh = _F(new_w) / _F(netw), _F(new_h) / _F(neth)
    b = boxes
    b[:, 0] = ((b[:, 0].astype(np.float64) - deltaw / 2.0 / netw) / float(ratiow)).astype(_F)
    b[:, 1] = ((b[:, 1].astype(np.float64) - deltah / 2.0 / neth) / float(ratioh)).astype(_F)
    b[:, 2] *= _F(1) / ratiow
    b[:, 3] *= _F(1) / ratioh
    return boxes


def _class_probs(obj, cls, thresh):
    p = obj[:, None] * cls
    p[~(p > _F(thresh))] = 0
    return p


def _decode_yolo(layer, out, net_w, net_h, thresh):
    lw, lh, n, classes = layer.w, layer.h, layer.n, layer.classes
    gaussian = layer.layer_type == "gaussian_yolo"
    entries = classes + (9 if gaussian else 5)
    obj_entry = 8 if gaussian else 4
    out = np.asarray(out, _F).reshape(n, entries, lh * lw)
    obj_all = out[:, obj_entry].T                      # [cells, anchors]: Darknet's order
    rows = np.flatnonzero(obj_all.ravel() > _F(thresh))
    cell, a = rows // n, rows % n
    v = out[a, :, cell]                                 # [k, entries]
    col, row = (cell % lw).astype(_F), (cell // lw).astype(_F)
    anchor = np.asarray(layer.mask, np.intp)[a]
    if anchor.size and anchor.max() * 2 + 1 >= len(layer.anchors):
        raise NotSupportedError(f"{layer.section.path}:{layer.section.line}: [{layer.type}] "
                                f"mask refers to anchor {anchor.max()} but num={layer.total}")
    aw32, ah32 = layer.anchors[2 * anchor], layer.anchors[2 * anchor + 1]
    aw, ah = aw32.astype(np.float64), ah32.astype(np.float64)
    boxes = np.empty((len(rows), 4), _F)
    uncertainty = None
    if gaussian:
        tx, ty, tw, th = v[:, 0], v[:, 2], v[:, 4], v[:, 6]
    else:
        tx, ty, tw, th = v[:, 0], v[:, 1], v[:, 2], v[:, 3]
    boxes[:, 0] = (col + tx) / _F(lw)
    boxes[:, 1] = (row + ty) / _F(lh)
    if getattr(layer, "new_coords", 0):
        boxes[:, 2] = tw * tw * _F(4) * aw32 / _F(net_w)
        boxes[:, 3] = th * th * _F(4) * ah32 / _F(net_h)
    else:
        boxes[:, 2] = (np.exp(tw.astype(np.float64)) * aw / net_w).astype(_F)
        boxes[:, 3] = (np.exp(th.astype(np.float64)) * ah / net_h).astype(_F)
    obj = v[:, obj_entry].copy()
    cls = v[:, obj_entry + 1:]
    if gaussian:
        point = getattr(layer, "yolo_point", "center")
        if point in ("left_top", "right_bottom"):
            sign = _F(1) if point == "left_top" else _F(-1)
            boxes[:, 0] += sign * boxes[:, 2] / _F(2)
            boxes[:, 1] += sign * boxes[:, 3] / _F(2)
        uncertainty = v[:, [1, 3, 5, 7]].copy()
        uc = (((uncertainty[:, 0] + uncertainty[:, 1]) + uncertainty[:, 2])
              + uncertainty[:, 3]).astype(np.float64) / 4.0
        probs = ((obj[:, None] * cls).astype(np.float64) * (1.0 - uc)[:, None]).astype(_F)
        probs[~(probs > _F(thresh))] = 0
    else:
        probs = _class_probs(obj, cls, thresh)
    return boxes, obj, probs, rows.astype(np.int64), uncertainty


def _decode_region(layer, out, thresh):
    if layer.coords != 4:
        raise NotSupportedError(f"{layer.section.path}:{layer.section.line}: [region] with "
                                f"coords={layer.coords} (masks) is not decoded; coords=4 is")
    lw, lh, n, classes = layer.w, layer.h, layer.num, layer.classes
    v = np.asarray(out, _F).reshape(lh * lw * n, classes + 5)
    rows = np.arange(len(v))
    cell, a = rows // n, rows % n
    col, row = (cell % lw).astype(_F), (cell // lw).astype(_F)
    aw = layer.anchors[2 * a].astype(np.float64)
    ah = layer.anchors[2 * a + 1].astype(np.float64)
    boxes = np.empty((len(v), 4), _F)
    boxes[:, 0] = (col + logistic(v[:, 0])) / _F(lw)
    boxes[:, 1] = (row + logistic(v[:, 1])) / _F(lh)
    boxes[:, 2] = (np.exp(v[:, 2].astype(np.float64)) * aw / lw).astype(_F)
    boxes[:, 3] = (np.exp(v[:, 3].astype(np.float64)) * ah / lh).astype(_F)
    scale = v[:, 4].copy()
    if layer.classfix == -1:           # Darknet's get_region_boxes drops scales below 0.5
        scale[scale < _F(0.5)] = 0
    if layer.tree:
        probs = _tree_probs(load_tree(layer), v[:, 5:], scale, thresh)
    else:
        probs = _class_probs(scale, v[:, 5:], thresh)
    return boxes, np.ones(len(v), _F), probs, rows.astype(np.int64), None


def _tree_probs(tree, cls, scale, thresh):
    """get_region_boxes with a softmax tree (and no map): each class's probability along its
    path; of the classes above 0.5 only the last one (the most specific) is kept, at its
    probability (not times the scale), where the scale exceeds thresh."""
    p = tree.hierarchy_predictions(cls)
    above = p > 0.5
    last = p.shape[1] - 1 - np.argmax(above[:, ::-1], axis=1)
    keep = above.any(axis=1) & (scale > _F(thresh))
    probs = np.zeros_like(p)
    rows = np.flatnonzero(keep)
    probs[rows, last[rows]] = p[rows, last[rows]]
    return probs


def _decode_detection(layer, out, thresh):
    """get_detection_detections, with boxes relative to the network input."""
    if layer.coords != 4:
        raise NotSupportedError(f"{layer.section.path}:{layer.section.line}: [detection] with "
                                f"coords={layer.coords} is not decoded; coords=4 is")
    side, n, classes = layer.side, layer.num, layer.classes
    cells = side * side
    v = np.asarray(out, _F).reshape(-1)
    cls = v[:cells * classes].reshape(cells, classes)
    scale = v[cells * classes:cells * (classes + n)].copy()               # [cells * n]
    t = v[cells * (classes + n):cells * (classes + n) + cells * n * 4].reshape(cells * n, 4)
    rows = np.arange(cells * n)
    cell = rows // n
    col, row = (cell % side).astype(_F), (cell // side).astype(_F)
    boxes = np.empty((len(rows), 4), _F)
    boxes[:, 0] = (t[:, 0] + col) / _F(side)
    boxes[:, 1] = (t[:, 1] + row) / _F(side)
    power = 2 if layer.sqrt else 1
    boxes[:, 2:] = (t[:, 2:].astype(np.float64) ** power).astype(_F)
    probs = _class_probs(scale, cls[cell], thresh)
    return boxes, scale, probs, rows.astype(np.int64), None


def decode_layer(layer, output, net_size, image_size=None, thresh=0.25, letter_box=False):
    """One head's output for one image ([C, H, W] or flat) -> :class:`Detections`.
    ``image_size`` (w, h) defaults to the network's input size (no correction)."""
    net_w, net_h = net_size
    image_size = tuple(image_size or net_size)
    if layer.layer_type == "region":
        boxes, obj, probs, index, unc = _decode_region(layer, output, thresh)
    elif layer.layer_type in ("yolo", "gaussian_yolo"):
        boxes, obj, probs, index, unc = _decode_yolo(layer, output, net_w, net_h, thresh)
    elif layer.layer_type == "detection":
        boxes, obj, probs, index, unc = _decode_detection(layer, output, thresh)
    else:
        raise NotSupportedError(f"layer {layer.index} [{layer.type}] has no boxes to decode")
    correct_boxes(boxes, image_size, net_size, letter_box)
    return Detections(boxes, obj, probs, np.full(len(obj), layer.index, np.int32), index,
                      image_size, unc)


def decode_network(network, image_size=None, thresh=0.25, letter_box=None, batch_index=0,
                   heads=None):
    """Every head's candidates for image ``batch_index`` of the last forward pass, in
    Darknet's order. ``letter_box`` defaults to the cfg's ``letter_box``."""
    heads = heads or detection_layers(network)
    if letter_box is None:
        letter_box = bool(network.net.letter_box)
    net_size = (network.net.width, network.net.height)
    classes = heads[-1].classes
    parts = []
    for layer in heads:
        if layer.classes != classes:
            raise NotSupportedError(
                f"{layer.section.path}:{layer.section.line}: [{layer.type}] has classes="
                f"{layer.classes} but the last detection layer has classes={classes}")
        out = network.outputs[layer.index]
        if out is None:
            raise RuntimeError("decode_network needs a forward pass first (network.predict)")
        parts.append(decode_layer(layer, out[batch_index], net_size, image_size, thresh,
                                  letter_box))
    return Detections.concatenate(parts, classes, image_size or net_size)
