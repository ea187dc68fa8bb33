"""Non-maximum suppression as AB's ``do_nms_sort`` and ``diounms_sort``.

For every class separately: the boxes with a probability > 0 for that class, highest first;
each box that survives zeroes the class probability of every later box that overlaps it by more
than ``thresh``. What "overlaps" means depends on the kind (the cfg's ``nms_kind``):

- ``default`` (do_nms_sort) and ``cornersnms``: IoU;
- ``greedynms``: DIoU, ``IoU - (d^2 / c^2)^0.6`` (Darknet's ``box_diou``);
- ``diounms``: ``IoU - (d^2 / c^2)^beta_nms`` (``box_diounms``).

A box suppressed for one class keeps its other classes.

Darknet sorts the detection array itself, in place, once per class (``qsort``, which glibc
implements as a stable merge sort), and callers then walk the array in that order: ``detector
map`` decides which detection claims a truth first by it, ``valid`` writes its results in it.
:func:`nms` does the same and returns the rows reordered: rows whose objectness is 0 swapped
to the end (they take no part), the others stably sorted by class 0's probability, then by class
1's, ..., so the last class's probability decides first and ties fall back to the earlier
classes' probabilities (all taken before any suppression), then to detection order. The same
running order breaks ties between equal probabilities in each class's greedy pass.
"""

import numpy as np

from ..boxes import box_diou, box_diounms, box_iou_matrix

__all__ = ["NMS_KINDS", "nms", "nms_keep", "nms_kind_name", "suppression_matrix", "greedy_keep"]

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


def suppression_matrix(boxes, thresh, kind, beta):
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


def greedy_keep(shared, order):
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
        keep_sorted = _greedy(suppression_matrix(b, thresh, kind, beta))
    else:
        keep_sorted = _greedy_rows(b, thresh, kind, beta)
    keep = np.empty(m, bool)
    keep[order] = keep_sorted
    return keep


def _objectness_partition(objectness):
    """Darknet's first NMS step: each row with objectness 0 swaps places with the last row not
    yet swapped out. Returns (row order, how many rows take part)."""
    n = len(objectness)
    order = np.arange(n)
    zero = objectness == 0
    if not zero.any():
        return order, n
    i, last = 0, n - 1
    while i <= last:
        if zero[order[i]]:
            order[i], order[last] = order[last], order[i]
            last -= 1
        else:
            i += 1
    return order, last + 1


def _take_rows(dets, rows):
    for name in ("boxes", "objectness", "probs", "layer", "index", "uncertainty"):
        value = getattr(dets, name)
        if value is not None:
            setattr(dets, name, value[rows])


def nms(dets, thresh=0.45, kind="default", beta=0.6, inplace=False, pixels=False):
    """Per-class greedy NMS of :class:`~pydarknet.eval.Detections`: suppressed class
    probabilities become 0 and the rows come back in Darknet's order after its NMS (see the
    module's docstring). Returns the (copied unless ``inplace``) detections; ``thresh`` 0
    leaves them as they are (Darknet skips NMS then).

    ``pixels``: the overlaps of the boxes in pixels of the image (float32, as Darknet's
    ``get_network_boxes`` with ``relative=0`` makes them: its ``detector valid`` and Python
    API's ``detect_image``) rather than relative to it (``detector test``, ``map``, ``demo``).
    DIoU's centre-distance term changes when x and y are scaled by different factors, so the
    cfg's ``greedynms``/``diounms`` keep other boxes there; IoU only rounds differently.

    The overlaps of all boxes with any probability > 0 are computed once and shared by the
    classes (when there are at most a few thousand such boxes)."""
    kind = nms_kind_name(kind)
    if not inplace:
        dets = dets.copy()
    if not thresh or len(dets) < 2:
        return dets
    boxes = dets.boxes
    if pixels:
        w, h = dets.image_size
        boxes = boxes * np.array([w, h, w, h], np.float32)
    order, total = _objectness_partition(dets.objectness)
    live = order[:total]
    probs = dets.probs
    per_class = (probs[live] > 0).sum(0)
    nms_classes = np.flatnonzero(per_class > 1)
    active = live[(probs[live][:, nms_classes] > 0).any(1)]
    shared = None
    if len(active) <= _MATRIX_MAX:
        shared = suppression_matrix(boxes[active], thresh, kind, beta)
        slot = np.empty(len(dets), np.intp)
        slot[active] = np.arange(len(active))
    for k in np.flatnonzero(per_class):       # an all-zero column leaves the order as it is
        live = live[np.argsort(-probs[live, k], kind="stable")]
        if per_class[k] < 2:
            continue
        ranked = live[:per_class[k]]          # the boxes with a probability > 0, best first
        if shared is not None:
            keep = greedy_keep(shared, slot[ranked])
        else:
            b = boxes[ranked]
            keep = _greedy(suppression_matrix(b, thresh, kind, beta)) \
                if len(ranked) <= _MATRIX_MAX else _greedy_rows(b, thresh, kind, beta)
        probs[ranked[~keep], k] = 0
    _take_rows(dets, np.concatenate([live, order[total:]]))
    return dets
