"""Darknet's mAP (AB's ``validate_detector_map``), vectorised.

Per image, every (box, class) with a probability > 0 after NMS is one detection. It is matched to
the ground-truth box of the same class with the highest IoU above ``iou_thresh`` (strictly
greater, first box on ties). All detections of the data set are then ranked by probability;
going down the ranking, a matched detection whose truth was not claimed yet is a true positive,
anything else a false positive. Per class, precision = TP / (TP + FP) and recall =
TP / (number of truth boxes) at every rank give the AP:

- ``points=0`` (default): area under the interpolated precision/recall curve at every unique
  recall (VOC 2010-2012, ImageNet);
- ``points=N`` (11: VOC 2007, 101: COCO): mean over ``r = 0, 1/(N-1), ..., 1`` of the highest
  precision at recall >= r, with r = k * (1 / (N - 1)) in double as AB's Linux builds (-Ofast)
  compute it: a recall of exactly 3/10 does not reach their level 0.30000000000000004.

mAP is the mean over *all* classes (a class without truth boxes counts as 0, as in Darknet).
At ``thresh`` (Darknet's ``-thresh``, 0.25) it also reports TP, FP, FN, precision, recall, F1
and the "average IoU", which Darknet defines as the sum of the true positives' IoUs divided by
TP + FP; a detection above ``thresh`` is a TP there when it is matched and no earlier detection
of the same image (any probability) was matched to the same truth. "Earlier" is the order in
which Darknet walks an image's detection array after its NMS, which sorted the array in place
class by class, so the *last* class's probability orders it first (see :mod:`.nms`, whose
:func:`~pydarknet.eval.nms` returns the rows in that order), and within a box the classes
ascending. The order is not the ranking by probability: a class-0 detection at 0.1 on a box
whose class-2 probability is high comes before a class-0 detection at 0.9 on a box without
class 2, claims the truth, and makes the 0.9 one a false positive at the threshold.

Equal probabilities keep that order in the ranking (images in list order), as glibc's stable
``qsort`` does in Darknet. Differences from Darknet: images that cannot be read are skipped
(Darknet evaluates a black 10x10 image); a label line Darknet cannot parse ends its reading of
the file, here only that line is skipped (and reported).
"""

import functools
import time

import numpy as np

from ..boxes import box_iou_matrix

__all__ = ["MapAccumulator", "average_precision", "evaluate_network_map", "format_report"]

_F = np.float32


def average_precision(precision, recall, points=0):
    """AP of one class from its precision/recall at each of its detections (rank order),
    float64 arrays. ``points`` 0: area under the curve at every unique recall; N >= 2: mean
    of the best precision at recall >= k / (N - 1), k = 0..N-1."""
    precision = np.asarray(precision, np.float64)
    recall = np.asarray(recall, np.float64)
    if not len(precision):
        return 0.0
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    if points == 0:
        delta = np.diff(recall, prepend=0.0)
        terms = delta * envelope
        return float(sum(terms[::-1].tolist()))   # Darknet sums from the last rank down
    if points < 2:
        raise ValueError(f"points must be 0 (area under the curve) or >= 2, found {points}")
    # k * (1 / (N - 1)), not k / (N - 1): AB's Linux builds (-Ofast) multiply by the reciprocal,
    # so 3 * 0.1 = 0.30000000000000004 and a class whose recall is exactly 0.3 does not
    # reach the 0.3 level (levels 3, 6, 7 of 11; 35, 41, 47, ... of 101)
    levels = np.arange(points, dtype=np.float64) * (1.0 / (points - 1))
    # recall is non-decreasing: the first rank with recall >= r holds the best precision there
    first = np.searchsorted(recall, levels, side="left")
    env = np.append(envelope, 0.0)
    return float(sum(env[first].tolist()) / points)     # summed in order, as Darknet


class MapAccumulator:
    """Collects detections and truths image by image; :meth:`result` computes the metrics.

    ``add_image(boxes, class_ids, scores, truths)``: detections as (box, class, probability)
    pairs in the order Darknet walks them (rows as :func:`~pydarknet.eval.nms` returns them,
    classes ascending within a row; boxes float32 [n, 4] relative x, y, w, h), truths [m, 5]
    (class, x, y, w, h relative) with class ids already checked against ``classes``.
    ``difficult`` truths (VOC) make unmatched detections overlapping them disappear from the
    ranking, as Darknet's ``difficult=`` list does.
    """

    def __init__(self, classes, iou_thresh=0.5, thresh=0.25, names=None):
        self.classes = int(classes)
        self.iou_thresh = float(iou_thresh)
        self.thresh = float(thresh)
        self.names = list(names) if names is not None else [str(i) for i in range(classes)]
        self.images = 0
        self.truth_count = np.zeros(self.classes, np.int64)
        self.unique_truths = 0
        self.tp_thresh = np.zeros(self.classes, np.int64)
        self.fp_thresh = np.zeros(self.classes, np.int64)
        self.iou_thresh_sum = np.zeros(self.classes, np.float64)
        self._scores, self._cls, self._truth = [], [], []

    def add_image(self, boxes, class_ids, scores, truths, difficult=None):
        boxes = np.asarray(boxes, _F).reshape(-1, 4)
        class_ids = np.asarray(class_ids, np.int64).reshape(-1)
        scores = np.asarray(scores, _F).reshape(-1)
        truths = np.asarray(truths, np.float64).reshape(-1, 5)
        n, m = len(scores), len(truths)
        t_cls = truths[:, 0].astype(np.int64)
        base = self.unique_truths
        self.images += 1
        self.unique_truths += m
        if m:
            self.truth_count += np.bincount(t_cls, minlength=self.classes)[: self.classes]
        if not n:
            return
        truth_index = np.full(n, -1, np.int64)
        best_iou = np.zeros(n, _F)
        if m:
            iou = box_iou_matrix(boxes, truths[:, 1:5].astype(_F))
            ok = (iou > _F(self.iou_thresh)) & (class_ids[:, None] == t_cls[None, :])
            iou = np.where(ok, iou, _F(0))
            best = iou.argmax(1)
            matched = ok.any(1)
            truth_index[matched] = base + best[matched]
            best_iou[matched] = iou[matched, best[matched]]
        keep = np.ones(n, bool)
        if difficult is not None and len(difficult):
            difficult = np.asarray(difficult, np.float64).reshape(-1, 5)
            d_iou = box_iou_matrix(boxes, difficult[:, 1:5].astype(_F))
            d_ok = (d_iou > _F(self.iou_thresh)) & \
                (class_ids[:, None] == difficult[None, :, 0].astype(np.int64))
            keep = ~((truth_index < 0) & d_ok.any(1))
        # TP / FP at the confidence threshold (Darknet's per-image "found" rule)
        above = scores > _F(self.thresh)
        if above.any():
            kept = np.flatnonzero(keep & (truth_index >= 0))
            first = np.zeros(n, bool)
            if len(kept):
                _, first_pos = np.unique(truth_index[kept], return_index=True)
                first[kept[first_pos]] = True
            tp = above & first
            fp = above & ~first
            np.add.at(self.tp_thresh, class_ids[tp], 1)
            np.add.at(self.fp_thresh, class_ids[fp], 1)
            np.add.at(self.iou_thresh_sum, class_ids[tp], best_iou[tp].astype(np.float64))
        self._scores.append(scores[keep])
        self._cls.append(class_ids[keep])
        self._truth.append(truth_index[keep])

    def add_detections(self, dets, truths, difficult=None):
        """:meth:`add_image` from a :class:`~pydarknet.eval.Detections` after
        :func:`~pydarknet.eval.nms` (whose row order decides which detection claims a truth
        first at the threshold)."""
        rows, cls, score = dets.pairs(0.0)
        self.add_image(dets.boxes[rows], cls, score, truths, difficult)

    @property
    def detections(self):
        return int(sum(len(s) for s in self._scores))

    def result(self, points=0):
        """The metrics as a dict (see :func:`format_report`)."""
        scores = np.concatenate(self._scores) if self._scores else np.zeros(0, _F)
        cls = np.concatenate(self._cls) if self._cls else np.zeros(0, np.int64)
        truth = np.concatenate(self._truth) if self._truth else np.zeros(0, np.int64)
        order = np.argsort(-scores, kind="stable")
        cls, truth = cls[order], truth[order]
        is_tp = np.zeros(len(order), bool)
        matched = np.flatnonzero(truth >= 0)
        if len(matched):
            _, first = np.unique(truth[matched], return_index=True)
            is_tp[matched[first]] = True
        per_class = []
        for k in range(self.classes):
            sel = cls == k
            tp = np.cumsum(is_tp[sel])
            fp = np.cumsum(~is_tp[sel])
            n_truth = int(self.truth_count[k])
            precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
            recall = tp / n_truth if n_truth else np.zeros(len(tp))
            ap = average_precision(precision, recall, points) if len(tp) else 0.0
            t_tp, t_fp = int(self.tp_thresh[k]), int(self.fp_thresh[k])
            p_t = t_tp / (t_tp + t_fp) if t_tp + t_fp else 0.0
            r_t = t_tp / n_truth if n_truth else 0.0
            per_class.append({
                "id": k, "name": self.names[k] if k < len(self.names) else str(k), "ap": ap,
                "truths": n_truth, "detections": int(sel.sum()), "tp": t_tp, "fp": t_fp,
                "fn": n_truth - t_tp, "precision": p_t, "recall": r_t,
                "f1": 2 * p_t * r_t / (p_t + r_t) if p_t + r_t else 0.0,
                "avg_iou": float(self.iou_thresh_sum[k] / (t_tp + t_fp)) if t_tp + t_fp else 0.0})
        tp, fp = int(self.tp_thresh.sum()), int(self.fp_thresh.sum())
        fn = self.unique_truths - tp
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        return {
            "map": sum(c["ap"] for c in per_class) / len(per_class) if per_class else 0.0,
            "iou_thresh": self.iou_thresh, "points": int(points), "thresh": self.thresh,
            "images": self.images, "truths": self.unique_truths, "detections": len(order),
            "tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "avg_iou": float(self.iou_thresh_sum.sum() / (tp + fp)) if tp + fp else 0.0,
            "classes_with_truths": int((self.truth_count > 0).sum()),
            "per_class": per_class}


def format_report(r):
    """Darknet's mAP printout for a :meth:`MapAccumulator.result`."""
    # the thresholds as Darknet holds them, in float: -iou_thresh 0.265 prints 0.26 there
    t, iou = float(_F(r["thresh"])), _F(r["iou_thresh"])
    lines = [f" detections_count = {r['detections']}, unique_truth_count = {r['truths']}, "
             f"images = {r['images']}"]
    for c in r["per_class"]:
        lines.append(f"class_id = {c['id']}, name = {c['name']}, ap = {c['ap'] * 100:.2f}%   "
                     f"\t (TP = {c['tp']}, FP = {c['fp']}, truths = {c['truths']}, "
                     f"precision = {c['precision']:.2f}, recall = {c['recall']:.2f}, "
                     f"F1 = {c['f1']:.2f}, avg IoU = {c['avg_iou'] * 100:.2f}%) ")
    lines.append("")
    lines.append(f" for conf_thresh = {t:.2f}, precision = {r['precision']:.2f}, recall = "
                 f"{r['recall']:.2f}, F1-score = {r['f1']:.2f} ")
    lines.append(f" for conf_thresh = {t:.2f}, TP = {r['tp']}, FP = {r['fp']}, FN = {r['fn']}, "
                 f"average IoU = {r['avg_iou'] * 100:.2f} % ")
    lines.append("")
    how = (f"used {r['points']} Recall-points" if r["points"]
           else "used Area-Under-Curve for each unique Recall")
    lines.append(f" IoU threshold = {float(iou * _F(100)):.0f} %, {how} ")
    lines.append(f" mean average precision (mAP@{float(iou):.2f}) = {r['map']:.6f}, or "
                 f"{r['map'] * 100:.2f} % ")
    missing = len(r["per_class"]) - r["classes_with_truths"]
    if missing:
        lines.append(f" note: {missing} of {len(r['per_class'])} classes have no truth boxes in "
                     "these labels; they count as AP 0 in the mean (as Darknet)")
    return "\n".join(lines)


def validation_paths(valid):
    """A validation list: a list file's images, or the paths given; empty is a DataError."""
    from .. import labels as L
    from ..errors import DataError
    paths = L.read_list(valid, "validation image list") if isinstance(valid, (str, bytes)) \
        or hasattr(valid, "__fspath__") else [str(p) for p in valid]
    if not paths:
        raise DataError("the validation image list is empty")
    return paths


def default_batch(network):
    """Images per forward pass of an evaluation: the network's batch, at most 16."""
    return max(1, min(int(getattr(network, "batch", 1) or 1), 16))


def evaluate_network_map(network, valid, names=None, iou_thresh=0.5, thresh=0.25, points=0,
                         letter_box=None, nms=0.45, det_thresh=0.005, batch_size=None, threads=2,
                         difficult=None, problems=None, label_rule=None, collect=None, log=None):
    """Darknet's ``detector map`` for a built network.

    ``valid``: a list file or a list of image paths; ``names``: a names file, a list of names
    or None; ``difficult``: a list file parallel to ``valid`` (VOC's difficult objects).
    Detections use Darknet's mAP settings (``det_thresh`` 0.005, ``nms`` 0.45, the cfg's
    nms_kind). ``collect(path, dets, truths, image_size)`` is called per image (the COCO
    evaluation hooks in there). Returns :meth:`MapAccumulator.result` plus ``problems``
    (counts of skipped inputs) and ``seconds``. ``batch_size`` (images per forward pass)
    defaults to the batch the network was built for (1 for ``load(..., batch=1)``, the
    mini-batch for a training network, at most 16).
    """
    from .. import labels as L
    from ..errors import DataError, Problems
    from ..detector import detection_layers, iter_detections

    t0 = time.time()
    problems = problems if problems is not None else Problems()
    label_rule = label_rule or functools.partial(L.label_path, problems=problems)
    paths = validation_paths(valid)
    classes = detection_layers(network)[-1].classes
    if names is None:
        names = [str(i) for i in range(classes)]
    elif isinstance(names, (str, bytes)) or hasattr(names, "__fspath__"):
        names = L.check_names(L.read_names(names), classes, names,
                              f"{network.cfg_path} (last detection layer)")
    else:
        names = L.check_names(list(names), classes, "<names>",
                              f"{network.cfg_path} (last detection layer)")
    dif_paths = None
    if difficult:
        dif_paths = L.read_list(difficult, "difficult image list")
        if len(dif_paths) != len(paths):
            raise DataError(f"{difficult}: {len(dif_paths)} lines, but the validation list has "
                            f"{len(paths)}: they must be parallel")
    if batch_size is None:
        batch_size = default_batch(network)
    acc = MapAccumulator(classes, iou_thresh, thresh, names)
    missing_labels = 0
    done = 0
    for i, path, _, dets in iter_detections(network, paths, det_thresh, nms, letter_box,
                                            batch_size=batch_size, threads=threads,
                                            problems=problems):
        truths = L.read_labels(label_rule(path), classes, problems, keep_empty=True)
        if truths is None:
            missing_labels += 1
            truths = np.zeros((0, 5))
        dif = None
        if dif_paths is not None:
            dif = L.read_labels(label_rule(dif_paths[i]), classes, problems, keep_empty=True)
        acc.add_detections(dets, truths, dif)
        if collect is not None:
            collect(path, dets, truths, dets.image_size)
        done += 1
        if log is not None and (done % 100 == 0):
            log(f"\r{done}/{len(paths)} images", end="")
    if done == 0:
        raise DataError(f"none of the {len(paths)} validation images could be read (first: "
                        f"{paths[0]}); nothing to evaluate")
    if missing_labels == done:
        raise DataError(f"no label file found for any of the {done} images (the first "
                        f"image's would be {label_rule(paths[0])}): check the image -> label "
                        "path rule (labels beside the images, or images/ -> labels/)")
    if acc.unique_truths == 0:
        raise DataError(f"the label files of the {done} images hold no truth boxes; mAP would "
                        "be 0 for every class")
    r = acc.result(points)
    r["problems"] = problems.as_dict()
    r["seconds"] = time.time() - t0
    r["skipped_images"] = len(paths) - done
    return r
