"""Darknet's mAP: hand-computed cases for every -points mode, Darknet's TP/FP/IoU at the
threshold (quirks included), a loop transcription of validate_detector_map on random data, and
agreement of the 101-point AP@0.5 with pycocotools' AP50."""

import numpy as np
import pytest

from pydarknet.eval.darknet_map import MapAccumulator, average_precision


def box(x, y, w, h):
    return [x, y, w, h]


# image A: truths t1, t2 (class 0); image B: truth t3 (class 0)
T1, T2, T3 = box(0.2, 0.2, 0.2, 0.2), box(0.7, 0.7, 0.2, 0.2), box(0.5, 0.5, 0.3, 0.3)


def hand_case(order_a=("d1", "d2", "d4", "d5"), classes=1):
    det = {"d1": (T1, 0.9), "d2": (box(0.7, 0.2, 0.1, 0.1), 0.8),
           "d4": (box(0.2, 0.2, 0.2, 0.18), 0.6),            # duplicate of t1 (IoU 0.9)
           "d5": (box(0.7, 0.7, 0.16, 0.2), 0.5)}            # on t2, IoU 0.8
    acc = MapAccumulator(classes, 0.5, 0.25)
    a = [det[k] for k in order_a]
    acc.add_image([b for b, _ in a], [0] * len(a), [p for _, p in a],
                  [[0] + T1, [0] + T2])
    acc.add_image([T3], [0], [0.7], [[0] + T3])             # d3, exact
    return acc


def test_hand_computed_ap_every_points_mode():
    # ranking: d1 TP, d2 FP, d3 TP, d4 FP (t1 taken), d5 TP; 3 truths
    # precision 1, 1/2, 2/3, 1/2, 3/5; recall 1/3, 1/3, 2/3, 2/3, 1
    acc = hand_case()
    auc = 1 / 3 * 1 + 1 / 3 * 2 / 3 + 1 / 3 * 3 / 5                       # = 34/45
    voc11 = (4 * 1 + 3 * 2 / 3 + 4 * 0.6) / 11           # r=0..0.3 | 0.4..0.6 | 0.7..1
    coco101 = (34 * 1 + 33 * 2 / 3 + 34 * 0.6) / 101     # r=0..0.33 | 0.34..0.66 | 0.67..1
    assert acc.result(0)["map"] == pytest.approx(34 / 45, abs=1e-12)
    assert acc.result(0)["map"] == pytest.approx(auc, abs=1e-12)
    assert acc.result(11)["map"] == pytest.approx(voc11, abs=1e-12)
    assert acc.result(101)["map"] == pytest.approx(coco101, abs=1e-12)


def test_counts_at_threshold_and_average_iou():
    r = hand_case().result(0)
    c = r["per_class"][0]
    assert (r["tp"], r["fp"], r["fn"]) == (3, 2, 0)
    assert (c["tp"], c["fp"], c["truths"], c["detections"]) == (3, 2, 3, 5)
    assert r["precision"] == pytest.approx(3 / 5) and r["recall"] == 1.0
    assert r["f1"] == pytest.approx(2 * 0.6 / 1.6)
    # Darknet's "average IoU": sum of the true positives' IoU / (TP + FP)
    assert r["avg_iou"] == pytest.approx((1 + 1 + 0.8) / 5, abs=1e-6)
    assert c["avg_iou"] == pytest.approx(r["avg_iou"])


def test_threshold_counts_follow_detection_order_as_darknet():
    # Darknet's per-image check looks at earlier detections in detection order, whatever their
    # probability: with the duplicate d4 listed before d1, d4 is the TP at the threshold and
    # d1 the FP; the ranking (and the AP) still credit d1.
    acc = hand_case(order_a=("d4", "d1", "d2", "d5"))
    r = acc.result(0)
    assert (r["tp"], r["fp"]) == (3, 2)
    assert r["avg_iou"] == pytest.approx((0.9 + 1 + 0.8) / 5, abs=1e-6)
    assert r["map"] == pytest.approx(34 / 45)
    # below the threshold nothing is counted
    acc = MapAccumulator(1, 0.5, 0.95)
    acc.add_image([T1], [0], [0.9], [[0] + T1])
    assert (acc.result()["tp"], acc.result()["fp"], acc.result()["fn"]) == (0, 0, 1)


def test_threshold_counts_walk_darknets_array_after_nms():
    # One truth T of class 0. Box A: class 0 at 0.9. Box B: class 0 at 0.1, class 1 at 0.8
    # (nothing of class 1 here). Both match T (IoU 0.65); they overlap each other too little
    # (0.3) for NMS. Decoded A comes first: A claims T, a TP at 0.25. Darknet's NMS leaves its
    # array sorted by the last class's probability, B (0.8) before A (0): B's class-0 detection
    # claims T first, below the threshold, so A is a false positive there; B's class 1 is one
    # too. The ranking by probability (the AP) still credits A.
    from pydarknet.eval import Detections, nms
    truth = box(0.5, 0.5, 0.4, 0.4)
    boxes = np.float32([box(0.43, 0.5, 0.26, 0.4), box(0.57, 0.5, 0.26, 0.4)])
    probs = np.float32([[0.9, 0.0], [0.1, 0.8]])
    decoded = Detections(boxes, probs.max(1), probs, np.zeros(2, np.int32), np.arange(2),
                         (100, 100))
    after = nms(decoded, 0.45)
    assert (after.probs > 0).sum() == 3 and list(after.index) == [1, 0]
    acc = MapAccumulator(2, 0.5, 0.25)
    acc.add_detections(after, [[0] + truth])
    r = acc.result(0)
    assert (r["tp"], r["fp"], r["fn"]) == (0, 2, 1)
    assert r["avg_iou"] == 0.0 and r["precision"] == 0.0 and r["recall"] == 0.0
    assert r["per_class"][0]["ap"] == 1.0
    # in decode order the same detections would count A as the TP
    acc = MapAccumulator(2, 0.5, 0.25)
    acc.add_detections(decoded, [[0] + truth])
    assert (acc.result(0)["tp"], acc.result(0)["fp"]) == (1, 1)


def test_classes_without_truths_count_as_zero_and_strict_iou():
    acc = MapAccumulator(2, 0.5, 0.25)
    acc.add_image([T1, box(0.5, 0.5, 0.1, 0.1)], [0, 1], [0.9, 0.8], [[0] + T1])
    r = acc.result(0)
    assert [c["ap"] for c in r["per_class"]] == [1.0, 0.0]
    assert r["map"] == 0.5 and r["classes_with_truths"] == 1
    # IoU exactly 0.5 is not a match (box_iou > iou_thresh)
    acc = MapAccumulator(1, 0.5, 0.25)
    acc.add_image([[0.5, 0.5, 0.25, 0.25]], [0], [0.9], [[0, 0.5, 0.5, 0.125, 0.25]])
    assert acc.result()["map"] == 0.0 and acc.result()["fp"] == 1
    # the class must match too
    acc = MapAccumulator(2, 0.5, 0.25)
    acc.add_image([T1], [1], [0.9], [[0] + T1])
    assert acc.result()["per_class"][0]["ap"] == 0.0


def test_difficult_truths_remove_unmatched_detections():
    acc = MapAccumulator(1, 0.5, 0.25)
    acc.add_image([T1, T2], [0, 0], [0.9, 0.95], [[0] + T1], difficult=[[0] + T2])
    r = acc.result(0)
    assert r["map"] == 1.0 and r["detections"] == 1      # the 0.95 on a difficult box is gone
    assert r["fp"] == 1      # ... but Darknet still counts it as a FP at the threshold


def test_average_precision_edge_cases():
    assert average_precision([], [], 0) == 0.0
    assert average_precision([1.0], [1.0], 101) == 1.0
    with pytest.raises(ValueError):
        average_precision([1.0], [1.0], 1)


def test_recall_points_as_darknets_linux_builds_compute_them():
    """AB's Makefile and CMake builds use -Ofast: the level k / (N - 1) becomes
    k * (1 / (N - 1)), and 3 * 0.1 = 0.30000000000000004, which a recall of exactly 3/10 does
    not reach (found by tools/darknet_map_fuzz.py: up to 2.5 points of AP apart)."""
    # 10 truths; ranks TP TP TP FP FP FP TP: recall .1 .2 .3 .3 .3 .3 .4
    tp = np.array([1, 2, 3, 3, 3, 3, 4])
    fp = np.array([0, 0, 0, 1, 2, 3, 3])
    ap = average_precision(tp / (tp + fp), tp / 10, 11)
    assert ap == pytest.approx((3 * 1 + 2 * 4 / 7) / 11)   # exact levels: (4 + 4 / 7) / 11
    assert average_precision(tp / (tp + fp), tp / 10, 101) == pytest.approx(
        (31 * 1 + 10 * 4 / 7) / 101)       # levels .35, .41, .47, .57, ... are not concerned


# -- a loop transcription of validate_detector_map ------------------------------------------------

def _iou(a, b):
    def overlap(x1, w1, x2, w2):
        return min(x1 + w1 / 2, x2 + w2 / 2) - max(x1 - w1 / 2, x2 - w2 / 2)
    w, h = overlap(a[0], a[2], b[0], b[2]), overlap(a[1], a[3], b[1], b[3])
    inter = 0 if w < 0 or h < 0 else w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return 0 if inter == 0 or union == 0 else inter / union


def reference_map(images, classes, iou_thresh, thresh, points):
    dets, unique, truth_count = [], 0, [0] * classes
    tp_t = fp_t = 0
    for boxes, probs, truths in images:
        for t in truths:
            truth_count[int(t[0])] += 1
        checkpoint = len(dets)
        for b, p in zip(boxes, probs):
            for k in range(classes):
                if p[k] > 0:
                    ti, best = -1, 0
                    for j, t in enumerate(truths):
                        cur = _iou(b, t[1:])
                        if cur > iou_thresh and k == int(t[0]) and cur > best:
                            best, ti = cur, unique + j
                    dets.append((p[k], k, ti))
                    if p[k] > thresh:
                        found = any(dets[z][2] == ti for z in range(checkpoint, len(dets) - 1))
                        if ti > -1 and not found:
                            tp_t += 1
                        else:
                            fp_t += 1
        unique += len(truths)
    dets.sort(key=lambda d: -d[0])
    n = len(dets)
    tp = [[0] * n for _ in range(classes)]
    fp = [[0] * n for _ in range(classes)]
    claimed = set()
    for r, (p, k, ti) in enumerate(dets):
        if r:
            for c in range(classes):
                tp[c][r], fp[c][r] = tp[c][r - 1], fp[c][r - 1]
        if ti > -1 and ti not in claimed:
            claimed.add(ti)
            tp[k][r] += 1
        else:
            fp[k][r] += 1
    aps = []
    for c in range(classes):
        prec = [tp[c][r] / (tp[c][r] + fp[c][r]) if tp[c][r] + fp[c][r] else 0 for r in range(n)]
        rec = [tp[c][r] / truth_count[c] if truth_count[c] else 0 for r in range(n)]
        ap = 0.0
        if points == 0:
            last_r, last_p = rec[n - 1], prec[n - 1]
            for r in range(n - 2, -1, -1):
                delta = last_r - rec[r]
                last_r = rec[r]
                last_p = max(last_p, prec[r])
                ap += delta * last_p
            ap += last_r * last_p
        else:
            for point in range(points):
                cur = point * (1.0 / (points - 1))     # -Ofast: by the reciprocal
                best = 0
                for r in range(n):
                    if rec[r] >= cur and prec[r] > best:
                        best = prec[r]
                ap += best
            ap /= points
        aps.append(ap)
    return aps, tp_t, fp_t


def random_images(rng, n_images, classes, per_image=12):
    images = []
    for _ in range(n_images):
        m = rng.integers(0, 5)
        truths = np.concatenate([rng.integers(0, classes, (m, 1)),
                                 rng.uniform(0.2, 0.8, (m, 2)), rng.uniform(0.05, 0.3, (m, 2))], 1)
        boxes, probs = [], []
        for _ in range(per_image):
            if m and rng.uniform() < 0.6:
                t = truths[rng.integers(m)]
                b = t[1:] + rng.normal(0, 0.03, 4) * [1, 1, 0.5, 0.5]
            else:
                b = np.concatenate([rng.uniform(0.2, 0.8, 2), rng.uniform(0.05, 0.3, 2)])
            p = np.where(rng.uniform(size=classes) < 0.5, rng.uniform(0.005, 1, classes), 0)
            boxes.append(np.abs(b))
            probs.append(p)
        images.append((np.array(boxes, np.float32).reshape(-1, 4),
                       np.array(probs, np.float32).reshape(-1, classes), truths))
    return images


@pytest.mark.parametrize("points", [0, 11, 101])
def test_random_against_loop_transcription(points):
    rng = np.random.default_rng(points)
    classes = 3
    images = random_images(rng, 25, classes)
    acc = MapAccumulator(classes, 0.5, 0.25)
    for boxes, probs, truths in images:
        rows, cls = np.nonzero(probs > 0)
        acc.add_image(boxes[rows], cls, probs[rows, cls], truths)
    r = acc.result(points)
    # the reference works on the same float32 boxes, in double
    ref_aps, tp, fp = reference_map([(b.astype(np.float64), p.astype(np.float64), t)
                                     for b, p, t in images], classes, 0.5, 0.25, points)
    np.testing.assert_allclose([c["ap"] for c in r["per_class"]], ref_aps, atol=1e-12)
    assert (r["tp"], r["fp"]) == (tp, fp)
    assert 0 < r["map"] < 1


# -- Darknet's AP@0.5 with 101 points vs pycocotools' AP50 ---------------------------------------

def test_darknet_101_point_ap50_equals_pycocotools():
    """Same synthetic detections for both. Chosen so that the two definitions coincide: truth
    boxes of an image do not overlap (so a detection can match at most one truth and COCO's
    'next best unmatched truth' never differs from Darknet's 'best truth or false positive'),
    no IoU near 0.5 (Darknet: > 0.5 in float32, COCO: >= 0.5 in double), distinct scores,
    at most 100 detections per image and class (COCO's maxDets), and truth counts per class
    with no factor 2 or 5 (COCO's recall thresholds come from linspace, Darknet's from
    k / 100: they differ in the last bit exactly at recalls k/100)."""
    from pydarknet.eval import Detections
    from pydarknet.eval.coco import coco_evaluate
    rng = np.random.default_rng(7)
    classes, size = 3, (320, 240)
    want = {0: 37, 1: 41, 2: 43}
    pool = [c for c, n in want.items() for _ in range(n)]
    rng.shuffle(pool)
    gts, dets = [], []
    score_pool = rng.permutation(100000)[:5000].astype(np.float32) / 100000 + np.float32(0.001)
    s_next = iter(score_pool)
    while pool:
        m = min(len(pool), int(rng.integers(1, 5)))
        cls, pool = pool[:m], pool[m:]
        # one truth per cell of a 2x2 grid: never overlapping
        cells = rng.permutation(4)[:m]
        t = []
        for c, cell in zip(cls, cells):
            cx, cy = 0.25 + 0.5 * (cell % 2), 0.25 + 0.5 * (cell // 2)
            w, h = rng.uniform(0.15, 0.35, 2)
            t.append([c, cx + rng.uniform(-0.05, 0.05), cy + rng.uniform(-0.05, 0.05), w, h])
        t = np.array(t)
        boxes, probs = [], []
        for row in t:
            for _ in range(int(rng.integers(0, 3))):          # hits (IoU 0.6-0.95) and misses
                scale = rng.uniform(0.62, 0.95) if rng.uniform() < 0.75 else rng.uniform(0.2, 0.33)
                b = [row[1], row[2], row[3] * scale, row[4]]      # IoU with its truth = scale
                p = np.zeros(classes, np.float32)
                k = int(row[0]) if rng.uniform() < 0.85 else int(rng.integers(classes))
                p[k] = next(s_next)
                boxes.append(b)
                probs.append(p)
        for _ in range(int(rng.integers(0, 3))):              # background false positives
            b = [rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), 0.02, 0.02]
            p = np.zeros(classes, np.float32)
            p[int(rng.integers(classes))] = next(s_next)
            boxes.append(b)
            probs.append(p)
        boxes = np.array(boxes, np.float32).reshape(-1, 4)
        probs = np.array(probs, np.float32).reshape(-1, classes)
        n = len(boxes)
        dets.append(Detections(boxes, probs.max(1, initial=0), probs, np.zeros(n, np.int32),
                               np.arange(n), size))
        gts.append(t)
    acc = MapAccumulator(classes, 0.5, 0.25)
    for d, t in zip(dets, gts):
        acc.add_detections(d, t)
    r = acc.result(101)
    assert [c["truths"] for c in r["per_class"]] == [37, 41, 43]
    coco = coco_evaluate(gts, dets, ["a", "b", "c"])
    ours = [c["ap"] for c in r["per_class"]]
    theirs = [c["AP50"] for c in coco["per_class"]]
    np.testing.assert_allclose(ours, theirs, atol=1e-9)
    assert r["map"] == pytest.approx(coco["AP50"], abs=1e-9)
    assert 0.3 < r["map"] < 0.95
