"""Darknet's ``detector recall`` (AB's ``validate_detector_recall``): how many truth boxes some
proposal finds, whatever its class.

Each image is resized to the network (never letterboxed, as Darknet's recall does); the
proposals are the decoded boxes with objectness above ``thresh`` (0.001) after NMS by
objectness (Darknet's ``do_nms_obj``, IoU above ``nms`` = 0.4); a truth is found when its best
IoU with a proposal exceeds ``iou_thresh`` (0.5). Reported as Darknet prints it: proposals per
image, the mean best IoU of the truths and the recall.
"""

import functools

import numpy as np

from ..boxes import best_iou
from .nms import nms_keep

__all__ = ["RecallAccumulator", "evaluate_network_recall", "objectness_nms"]


def objectness_nms(boxes, objectness, thresh):
    """Darknet's ``do_nms_obj``: greedy NMS over every box by objectness, whatever its class.
    A bool mask of the boxes kept (those with objectness 0 take no part and are dropped)."""
    live = np.flatnonzero(objectness > 0)
    keep = np.zeros(len(objectness), bool)
    keep[live] = nms_keep(boxes[live], objectness[live], thresh) if thresh else True
    return keep


class RecallAccumulator:
    """Darknet's running recall counters over images."""

    def __init__(self, thresh=0.001, iou_thresh=0.5, nms=0.4):
        self.thresh, self.iou_thresh, self.nms = float(thresh), float(iou_thresh), float(nms)
        self.images = self.proposals = self.truths = self.found = 0
        self.iou_sum = 0.0

    def add_image(self, boxes, objectness, truth_boxes):
        """``boxes`` [N, 4] and ``objectness`` [N] of one image's candidates, ``truth_boxes``
        [M, 4]; all relative (x, y the centre)."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        objectness = np.asarray(objectness, np.float32).reshape(-1)
        keep = objectness_nms(boxes, objectness, self.nms)
        proposals = boxes[keep & (objectness > np.float32(self.thresh))]
        self.images += 1
        self.proposals += len(proposals)
        ious = best_iou(proposals, truth_boxes)     # each truth's best proposal
        self.truths += len(ious)
        self.iou_sum += float(np.sum(ious, dtype=np.float64))
        self.found += int(np.sum(ious > np.float32(self.iou_thresh)))

    def result(self):
        t = max(self.truths, 1)
        return {"images": self.images, "truths": self.truths, "found": self.found,
                "proposals_per_image": self.proposals / max(self.images, 1),
                "avg_iou": self.iou_sum / t, "recall": self.found / t}

    def line(self):
        """Darknet's progress line: image number, found, truths, proposals per image, mean
        best IoU and recall."""
        r = self.result()
        return (f"{self.images - 1:5d} {self.found:5d} {self.truths:5d}\tRPs/Img: "
                f"{r['proposals_per_image']:.2f}\tIOU: {r['avg_iou'] * 100:.2f}%\tRecall:"
                f"{r['recall'] * 100:.2f}%")


def evaluate_network_recall(network, valid, thresh=0.001, iou_thresh=0.5, nms=0.4,
                            batch_size=None, threads=2, problems=None, log=None):
    """Darknet's ``detector recall`` for a built network over a list file or a list of image
    paths (labels found as training finds them). Returns :meth:`RecallAccumulator.result`
    plus ``problems`` (counts of skipped inputs) and ``skipped_images``. ``log(line)`` gets
    Darknet's line after each image."""
    from .. import labels as L
    from ..detector import iter_detections
    from ..errors import DataError, Problems
    from .darknet_map import default_batch, validation_paths
    problems = problems if problems is not None else Problems()
    paths = validation_paths(valid)
    if batch_size is None:
        batch_size = default_batch(network)
    label_rule = functools.partial(L.label_path, problems=problems)
    acc = RecallAccumulator(thresh, iou_thresh, nms)
    for _, path, _, dets in iter_detections(network, paths, thresh, 0, letter_box=False,
                                            batch_size=batch_size, threads=threads,
                                            problems=problems):
        truths = L.read_labels(label_rule(path), None, problems, keep_empty=True)
        truths = np.zeros((0, 5)) if truths is None else np.asarray(truths).reshape(-1, 5)
        acc.add_image(dets.boxes, dets.objectness, truths[:, 1:5])
        if log is not None:
            log(acc.line())
    if acc.images == 0:
        raise DataError(f"none of the {len(paths)} validation images could be read (first: "
                        f"{paths[0]}); nothing to evaluate")
    r = acc.result()
    r["problems"] = problems.as_dict()
    r["skipped_images"] = len(paths) - acc.images
    return r
