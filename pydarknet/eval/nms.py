"""Non-maximum suppression as AB's ``do_nms_sort`` and ``diounms_sort``.

For every class separately: the boxes with a probability > 0 for that class, highest first;
each box that survives zeroes the class probability of every later box that overlaps it by more
than ``thresh``. What "overlaps" means depends on the kind (the cfg's ``nms_kind``):

- ``default`` (do_nms_sort) and ``cornersnms``: IoU;
- ``greedynms``: DIoU, ``IoU - (d^2 / c^2)^0.6`` (Darknet's ``box_diou``);
- ``diounms``: ``IoU - (d^2 / c^2)^beta_nms`` (``box_diounms``).

Ties keep detection order (the earlier box wins); Darknet's ``qsort`` leaves their order
unspecified. A box suppressed for one class keeps its other classes.
"""

import numpy as np

from ..boxes import box_diou, box_diounms, box_iou_matrix

__all__ = ["NMS_KINDS", "nms", "nms_keep", "nms_kind_name"]

NMS_KINDS = ("default", "greedynms", "diounms", "cornersnms")   # index = Darknet's NMS_KIND
_BLOCK = 256          # rows of the overlap matrix computed at once
_MATRIX_MAX = 4096    # above this many boxes of one class, one row per surviving box


def nms_kind_name(kind):
    """'default', 'greedynms', 'diounms' or 'cornersnms' from a name or Darknet's enum value."""
    if isinstance(kind, (int, np.integer)):
        if not 0 <= kind < len(NMS_KINDS):
            raise ValueError(f"nms kind {kind}: expected 0..{len(NMS_KINDS) - 1}")
        return NMS_KINDS[kind]
    if kind not in NMS_KINDS:
        raise ValueError(f"nms kind '{kind}': expected one of {', '.join(NMS_KINDS)}")
    return kind


def _overlap(a, b, kind, beta):
    """Pairwise overlap [len(a), len(b)] of float32 boxes, as the kind's Darknet function."""
    if kind in ("default", "cornersnms"):
        return box_iou_matrix(a, b)
    if kind == "greedynms":
        return box_diou(a[:, None], b[None])
    return box_diounms(a[:, None], b[None], beta)


def _suppression_matrix(boxes, thresh, kind, beta):
    """bool [m, m]: overlap(i, j) > thresh (the overlaps are symmetric), in row blocks."""
    m = len(boxes)
    sup = np.empty((m, m), bool)
    thr = np.float32(thresh)
    for r0 in range(0, m, _BLOCK):
        r1 = min(r0 + _BLOCK, m)
        np.greater(_overlap(boxes[r0:r1], boxes, kind, beta), thr, out=sup[r0:r1])
    return sup


def _greedy(sup):
    """Greedy pass over a suppression matrix whose rows are in score order."""
    m = len(sup)
    keep = np.ones(m, bool)
    for i in range(m - 1):
        if keep[i]:
            keep[i + 1:] &= ~sup[i, i + 1:]
    return keep


def _greedy_shared(shared, order):
    """:func:`_greedy` on the rows/columns ``order`` of a shared suppression matrix, reading
    only the rows of the boxes that survive."""
    m = len(order)
    keep = np.ones(m, bool)
    for i in range(m - 1):
        if keep[i]:
            keep[i + 1:] &= ~shared[order[i]][order[i + 1:]]
    return keep


def _greedy_rows(b, thresh, kind, beta):
    """Greedy pass computing one overlap row per surviving box (for very many boxes)."""
    m = len(b)
    keep = np.ones(m, bool)
    thr = np.float32(thresh)
    for i in range(m - 1):
        if keep[i]:
            rest = np.flatnonzero(keep[i + 1:]) + i + 1
            if not len(rest):
                break
            keep[rest[_overlap(b[i:i + 1], b[rest], kind, beta)[0] > thr]] = False
    return keep


def nms_keep(boxes, scores, thresh=0.45, kind="default", beta=0.6):
    """Greedy NMS of one class. ``boxes`` [m, 4] (x, y, w, h), ``scores`` [m] > 0. Returns a
    bool mask of the boxes kept."""
    kind = nms_kind_name(kind)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores)
    m = len(scores)
    if m < 2:
        return np.ones(m, bool)
    order = np.argsort(-scores, kind="stable")
    b = boxes[order]
    if m <= _MATRIX_MAX:
        keep_sorted = _greedy(_suppression_matrix(b, thresh, kind, beta))
    else:
        keep_sorted = _greedy_rows(b, thresh, kind, beta)
    keep = np.empty(m, bool)
    keep[order] = keep_sorted
    return keep


def nms(dets, thresh=0.45, kind="default", beta=0.6, inplace=False):
    """Per-class greedy NMS of :class:`~pydarknet.eval.Detections`: suppressed class
    probabilities become 0. Returns the (copied unless ``inplace``) detections.

    The overlaps of all boxes with any probability > 0 are computed once and shared by the
    classes (when there are at most a few thousand such boxes)."""
    kind = nms_kind_name(kind)
    if not inplace:
        dets = dets.copy()
    if not thresh or len(dets) < 2:
        return dets
    probs = dets.probs
    positive = probs > 0
    per_class = positive.sum(0)
    classes = np.flatnonzero(per_class > 1)
    if not len(classes):
        return dets
    active = np.flatnonzero(positive[:, classes].any(1))
    shared = None
    if len(active) <= _MATRIX_MAX:
        shared = _suppression_matrix(dets.boxes[active], thresh, kind, beta)
    for k in classes:
        local = np.flatnonzero(positive[active, k])
        order = local[np.argsort(-probs[active[local], k], kind="stable")]
        if shared is not None:
            keep = _greedy_shared(shared, order)
        else:
            b = dets.boxes[active[order]]
            keep = _greedy(_suppression_matrix(b, thresh, kind, beta)) \
                if len(order) <= _MATRIX_MAX else _greedy_rows(b, thresh, kind, beta)
        probs[active[order[~keep]], k] = 0
    return dets
