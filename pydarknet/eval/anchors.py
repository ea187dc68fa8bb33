"""Anchors by k-means over the training labels' box sizes (AB's ``calc_anchors``).

Every truth box's (w * width, h * height) is a point; the distance to a centre is
1 - IoU of the two sizes placed at the same centre. Initial centres are k distinct random boxes
(Darknet's ``random_centers``), then assignment and mean steps alternate until no assignment
changes (at most 1000 rounds); a centre that loses all its boxes keeps its place. Anchors are
sorted by area; the average IoU is the mean over boxes of the IoU with their closest anchor.
"""

import functools

import numpy as np

__all__ = ["size_iou", "kmeans_anchors", "average_iou", "format_anchors", "read_box_sizes",
           "anchor_cloud"]

_F = np.float32


def size_iou(wh, centers):
    """IoU of sizes placed at one centre: wh [N, 2], centers [K, 2] -> float32 [N, K]."""
    wh = np.asarray(wh, _F)
    c = np.asarray(centers, _F)
    inter = np.minimum(wh[:, None, 0], c[None, :, 0]) * np.minimum(wh[:, None, 1], c[None, :, 1])
    union = (wh[:, 0] * wh[:, 1])[:, None] + (c[:, 0] * c[:, 1])[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def _assign(wh, centers):
    return (_F(1) - size_iou(wh, centers)).argmin(1)


def kmeans_anchors(wh, k, seed=None, max_rounds=1000):
    """(centers float32 [k, 2] sorted by area, assignments [N], rounds)."""
    from ..errors import DataError
    wh = np.asarray(wh, _F).reshape(-1, 2)
    if len(wh) < k:
        raise DataError(f"k-means needs at least num_of_clusters={k} boxes, found {len(wh)}")
    rng = np.random.default_rng(seed)
    centers = wh[rng.permutation(len(wh))[:k]].copy()
    assignments = np.zeros(len(wh), np.intp)
    rounds = 0

    def maximize():
        counts = np.bincount(assignments, minlength=k)
        sums = np.stack([np.bincount(assignments, weights=wh[:, d], minlength=k)
                         for d in (0, 1)], 1)
        new = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], 0.0)
        return np.where(new == 0, centers, new).astype(_F)

    if k == 1:
        centers = maximize()
    while rounds < max_rounds:
        new = _assign(wh, centers)
        converged = np.array_equal(new, assignments)
        assignments = new
        if converged:
            break
        centers = maximize()
        rounds += 1
    order = np.argsort(centers[:, 0] * centers[:, 1], kind="stable")
    remap = np.empty(k, np.intp)
    remap[order] = np.arange(k)
    return centers[order], remap[assignments], rounds


def average_iou(wh, centers):
    """Mean over boxes of the IoU with the closest centre (as Darknet prints it, 0..1)."""
    if not len(wh):
        return 0.0
    iou = size_iou(wh, centers)
    best = iou[np.arange(len(iou)), (_F(1) - iou).argmin(1)]
    ok = (best >= 0) & (best <= 1)
    return float(best[ok].astype(np.float64).sum() / len(wh))


def anchor_cloud(wh, assignments, centers, width, height, size=700):
    """AB's calc_anchors -show picture (cloud.png): each box size a dot coloured by its
    cluster, each anchor a white rectangle from the corner, ``width`` x ``height`` scaled to
    ``size`` pixels; BGR uint8."""
    import cv2
    img = np.zeros((size, size, 3), np.uint8)
    scale = np.array([size / width, size / height])
    for (x, y), k in zip(np.asarray(wh, np.float64) * scale, np.asarray(assignments)):
        k = int(k)
        rgb = ((k * 123 + 55) % 255, (k * 321 + 33) % 255, (k * 11 + 99) % 255)
        cv2.circle(img, (int(x), int(y)), 1, rgb[::-1], -1)
    for x, y in np.asarray(centers, np.float64) * scale:
        cv2.rectangle(img, (0, 0), (int(x), int(y)), (255, 255, 255), 1)
    return img


def format_anchors(centers, width):
    """Darknet's ``anchors = ...`` text: integers for pixel sizes (width > 32), else 4
    decimals."""
    fmt = "{:3.0f},{:3.0f}" if width > 32 else "{:2.4f},{:2.4f}"
    return ", ".join(fmt.format(w, h) for w, h in centers)


def read_box_sizes(paths, classes=None, problems=None, label_rule=None):
    """(wh relative float32 [N, 2], counts per class, images with labels) from the label
    files of ``paths``; boxes of size outside (0, 1] are reported (and used, as Darknet)."""
    from .. import labels as L
    label_rule = label_rule or functools.partial(L.label_path, problems=problems)
    sizes, counts, found = [], np.zeros(max(classes or 0, 1), np.int64), 0
    for path in paths:
        lp = label_rule(path)
        boxes = L.read_labels(lp, classes, problems)
        if boxes is None:
            continue
        found += 1
        if not len(boxes):
            continue
        bad = (boxes[:, 1:] > 1).any(1) | (boxes[:, 1:3] <= 0).any(1)
        if bad.any() and problems is not None:
            for b in boxes[bad][:3]:
                problems.report("label_box_outside", f"{lp}: wrong label: x = {b[1]:g}, "
                                f"y = {b[2]:g}, width = {b[3]:g}, height = {b[4]:g} (outside "
                                "0..1); used anyway, as Darknet")
        ids = boxes[:, 0].astype(np.int64)
        if ids.max() >= len(counts):
            counts = np.concatenate([counts, np.zeros(ids.max() + 1 - len(counts), np.int64)])
        counts += np.bincount(ids, minlength=len(counts))
        sizes.append(boxes[:, 3:5])
    wh = np.concatenate(sizes).astype(_F) if sizes else np.zeros((0, 2), _F)
    return wh, counts, found
