"""NMS as AB's do_nms_sort / diounms_sort: per class, greedy, ties, the DIoU kinds, and the
order Darknet leaves its detection array in (it sorts the array in place, class by class)."""

import numpy as np
import pytest

from pydarknet.eval import Detections, nms, nms_keep


def dets_of(boxes, probs, objectness=None):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    probs = np.asarray(probs, np.float32).reshape(len(boxes), -1)
    n = len(boxes)
    obj = probs.max(1) if objectness is None else np.asarray(objectness, np.float32)
    return Detections(boxes, obj, probs, np.zeros(n, np.int32), np.arange(n), (100, 100))


def by_row(out):
    """The probabilities of NMS's output back in the input's row order (``index`` = row)."""
    return out.probs[np.argsort(out.index)]


def iou(a, b):
    def overlap(x1, w1, x2, w2):
        return min(x1 + w1 / 2, x2 + w2 / 2) - max(x1 - w1 / 2, x2 - w2 / 2)
    w, h = overlap(a[0], a[2], b[0], b[2]), overlap(a[1], a[3], b[1], b[3])
    inter = 0 if w < 0 or h < 0 else w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return 0 if inter == 0 or union == 0 else inter / union


def diou_term(a, b):
    cw = max(a[0] + a[2] / 2, b[0] + b[2] / 2) - min(a[0] - a[2] / 2, b[0] - b[2] / 2)
    ch = max(a[1] + a[3] / 2, b[1] + b[3] / 2) - min(a[1] - a[3] / 2, b[1] - b[3] / 2)
    return ((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2) / (cw * cw + ch * ch)


def reference(boxes, probs, thresh, kind="default", beta=0.6, objectness=None):
    """Loop transcription of do_nms_sort / diounms_sort, the array sorted in place (Python's
    sort is stable, as glibc's qsort). Returns (probabilities per input row, final row order)."""
    probs = np.array(probs, np.float64)
    arr = list(range(len(boxes)))
    if objectness is not None:                 # rows with objectness 0 swap to the end
        i, last = 0, len(arr) - 1
        while i <= last:
            if objectness[arr[i]] == 0:
                arr[i], arr[last] = arr[last], arr[i]
                last -= 1
                i -= 1
            i += 1
        live, rest = arr[:last + 1], arr[last + 1:]
    else:
        live, rest = arr, []
    for k in range(probs.shape[1]):
        live.sort(key=lambda i: -probs[i, k])
        for ii, i in enumerate(live):
            if probs[i, k] == 0:
                continue
            for j in live[ii + 1:]:
                a, b = boxes[i], boxes[j]
                if kind in ("default", "cornersnms"):
                    over = iou(a, b)
                elif kind == "greedynms":
                    over = iou(a, b) - diou_term(a, b) ** 0.6
                else:
                    over = iou(a, b) - diou_term(a, b) ** beta
                if over > thresh:
                    probs[j, k] = 0
    return probs, live + rest


def test_greedy_chain():
    # A (0.9) suppresses B (0.8, IoU 0.6); C (0.7) overlaps B but not A: C survives because
    # B, once suppressed, suppresses nothing
    boxes = [[0.30, 0.5, 0.2, 0.2], [0.35, 0.5, 0.2, 0.2], [0.45, 0.5, 0.2, 0.2]]
    out = nms(dets_of(boxes, [[0.9], [0.8], [0.7]]), 0.45)
    np.testing.assert_array_equal(by_row(out)[:, 0], np.float32([0.9, 0, 0.7]))


def test_per_class_and_threshold_is_strict():
    boxes = [[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2], [0.55, 0.5, 0.2, 0.2]]
    probs = [[0.9, 0.0], [0.0, 0.8], [0.5, 0.6]]
    out = nms(dets_of(boxes, probs), 0.45)
    # class 0: box 2 (IoU 0.6 with box 0) goes; class 1: box 2 (0.6 < 0.8) goes as well;
    # a box suppressed in one class keeps its probabilities of the others
    np.testing.assert_array_equal(by_row(out), np.float32([[0.9, 0], [0, 0.8], [0, 0]]))
    # rows come back as Darknet leaves its array: sorted by class 1 (0.8, 0.6, 0), the last
    # sort; box 0 and 2 are not reordered by what NMS zeroed
    np.testing.assert_array_equal(out.index, [1, 2, 0])
    # IoU exactly at the threshold does not suppress (Darknet: box_iou(a, b) > thresh)
    half = [[0.5, 0.5, 0.25, 0.25], [0.5, 0.5, 0.125, 0.25]]     # IoU = 0.5 exactly
    out = nms(dets_of(half, [[0.9], [0.8]]), 0.5)
    assert (out.probs > 0).all()
    assert not nms(dets_of(half, [[0.9], [0.8]]), 0.49).probs[1, 0]


def test_ties_keep_detection_order():
    boxes = [[0.5, 0.5, 0.2, 0.2], [0.51, 0.5, 0.2, 0.2], [0.9, 0.9, 0.1, 0.1]]
    out = nms(dets_of(boxes, [[0.7], [0.7], [0.7]]), 0.45)
    np.testing.assert_array_equal(by_row(out)[:, 0] > 0, [True, False, True])
    out = nms(dets_of(boxes[::-1], [[0.7], [0.7], [0.7]]), 0.45)
    np.testing.assert_array_equal(by_row(out)[:, 0] > 0, [True, True, False])


def test_ties_follow_the_earlier_classes_sort():
    # class 1 ties (0.7, 0.7): Darknet's stable sort for class 1 starts from the array as the
    # class-0 sort left it, where box 1 (0.6) is ahead of box 0 (0.2): box 1 survives
    boxes = [[0.5, 0.5, 0.2, 0.2], [0.51, 0.5, 0.2, 0.2]]
    out = nms(dets_of(boxes, [[0.2, 0.7], [0.6, 0.7]]), 0.45)
    np.testing.assert_array_equal(by_row(out), np.float32([[0, 0], [0.6, 0.7]]))
    np.testing.assert_array_equal(out.index, [1, 0])


def test_objectness_zero_rows_go_to_the_end():
    boxes = [[0.2, 0.2, 0.1, 0.1], [0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2],
             [0.8, 0.8, 0.1, 0.1]]
    probs = [[0.3], [0.9], [0.8], [0.6]]
    objectness = [0, 0.9, 0.8, 0]               # row 0 swaps with row 3, then row 3 goes too
    out = nms(dets_of(boxes, probs, objectness), 0.45)
    ref, order = reference(np.float64(boxes), probs, 0.45, objectness=objectness)
    np.testing.assert_array_equal(out.index, order)
    assert list(order[2:]) == [3, 0]             # Darknet's swap order, left unsorted
    np.testing.assert_array_equal(by_row(out) > 0, ref > 0)
    assert by_row(out)[2, 0] == 0                # the live rows were suppressed as usual


def test_zero_probabilities_and_nms_off():
    boxes = [[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2]]
    out = nms(dets_of(boxes, [[0.0], [0.5]]), 0.45)      # a 0 box suppresses nothing
    np.testing.assert_array_equal(by_row(out)[:, 0], np.float32([0, 0.5]))
    d = dets_of(boxes, [[0.6], [0.5]])
    assert (nms(d, 0).probs == d.probs).all()           # nms=0: off, as `if (nms)` in C
    assert by_row(nms(d, 0.45))[1, 0] == 0 and d.probs[1, 0] == np.float32(0.5)  # copy
    assert (nms(dets_of(boxes, [[0.5], [0.6]]), 0).index == [0, 1]).all()   # and not sorted


def test_diou_kinds():
    # same size, centres apart: IoU 0.5, d^2/c^2 = 0.01 / 0.09
    a, b = [0.5, 0.5, 0.2, 0.2], [0.5 + 0.2 / 3, 0.5, 0.2, 0.2]
    plain = iou(a, b)
    assert plain == pytest.approx(0.5)
    d2c2 = diou_term(a, b)
    for kind, beta, expect in [("default", 0.6, plain), ("cornersnms", 0.6, plain),
                               ("greedynms", 0.6, plain - d2c2 ** 0.6),
                               ("diounms", 0.6, plain - d2c2 ** 0.6),
                               ("diounms", 1.0, plain - d2c2)]:
        below = by_row(nms(dets_of([a, b], [[0.9], [0.8]]), expect - 1e-3, kind, beta))[1, 0]
        above = by_row(nms(dets_of([a, b], [[0.9], [0.8]]), expect + 1e-3, kind, beta))[1, 0]
        assert below == 0 and above > 0, (kind, beta)
    # Darknet's enum values work too (0 default, 1 greedynms, 2 diounms, 3 cornersnms)
    assert by_row(nms(dets_of([a, b], [[0.9], [0.8]]), 0.45, 2))[1, 0] > 0


@pytest.mark.parametrize("kind,beta", [("default", 0.6), ("greedynms", 0.6), ("diounms", 0.8)])
@pytest.mark.parametrize("levels", [None, 5])
def test_random_against_reference(kind, beta, levels):
    # levels=5: probabilities from five values only, so that ties are everywhere
    rng = np.random.default_rng(3)
    for _ in range(5):
        n, classes = 60, 4
        xy = rng.uniform(0.2, 0.8, (n, 2))
        wh = rng.uniform(0.05, 0.3, (n, 2))
        boxes = np.concatenate([xy, wh], 1).astype(np.float32)
        if levels:
            probs = rng.integers(1, levels + 1, (n, classes)).astype(np.float32) / levels
        else:
            probs = rng.permutation(n * classes).reshape(n, classes).astype(np.float32)
            probs /= n * classes
        probs[rng.uniform(size=probs.shape) < 0.4] = 0
        objectness = probs.max(1)                # 0 for the rows without any probability
        out = nms(dets_of(boxes, probs, objectness), 0.45, kind, beta)
        ref, order = reference(boxes.astype(np.float64), probs, 0.45, kind, beta, objectness)
        np.testing.assert_array_equal(by_row(out) > 0, ref > 0)
        np.testing.assert_array_equal(out.index, order)


def test_many_boxes_take_the_row_path(monkeypatch):
    import sys
    N = sys.modules["pydarknet.eval.nms"]      # (the package exports the function nms)
    rng = np.random.default_rng(0)
    n = 3000
    boxes = np.concatenate([rng.uniform(0.1, 0.9, (n, 2)), rng.uniform(0.01, 0.05, (n, 2))],
                           1).astype(np.float32)
    scores = rng.permutation(n).astype(np.float32) + 1
    keep = nms_keep(boxes, scores, 0.45)                   # overlap-matrix path
    monkeypatch.setattr(N, "_MATRIX_MAX", 100)
    np.testing.assert_array_equal(nms_keep(boxes, scores, 0.45), keep)   # row-by-row path
    # the kept set is a valid greedy result: no two kept boxes overlap > 0.45, and every
    # dropped box overlaps a kept box with a higher score
    from pydarknet.boxes import box_iou_matrix
    kb = boxes[keep]
    m = box_iou_matrix(kb, kb)
    np.fill_diagonal(m, 0)
    assert m.max() <= 0.45
    dropped = np.flatnonzero(~keep)[:200]
    over = box_iou_matrix(boxes[dropped], kb) > 0.45
    higher = scores[keep][None, :] > scores[dropped][:, None]
    assert (over & higher).any(1).all()
