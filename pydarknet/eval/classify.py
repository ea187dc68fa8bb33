"""Classifier prediction and top-k validation: AB's ``predict_classifier`` and its
``classifier valid*`` commands.

Every mode reads the image as RGB in [0, 1] and sums the network's scores over its views
(VIEWS):
  single  (``valid``)      the shorter side resized to the network width (``resize_min``),
                           then the centre net_w x net_h crop
  crop    (``validcrop``)  the whole image resized to net_w x net_h
  10      (``valid10``)    resized to (net_w + 32) x (net_h + 32); five crops (four shifted by
                           32 pixels, edge pixels repeated, and the centre) and their mirrors
  multi   (``validmulti``) the shorter side resized to 224, 288, 320, 352 and 384, each whole
                           and mirrored, the network resized to each
  full    (``validfull``)  the shorter side resized to the network width, the whole image,
                           the network resized to it
The label of a validation image is the first class name (in names order) found in its path.
"""

import concurrent.futures as cf
import math

import numpy as np

from ..image import ImageReadError, as_channels, crop, read_bgr, resize, resize_min, to_chw
from ..tree import load_tree

__all__ = ["classifier_input", "top_k", "predict", "image_scores", "iter_scores", "validate",
           "VIEWS"]


def _cdiv2(v):
    return int(v / 2)     # C's integer division (toward zero)


def _rgb(img_bgr, channels):
    img = as_channels(img_bgr, channels)
    return img[:, :, ::-1] if img.ndim == 3 and img.shape[2] == 3 else img   # BGR -> RGB


def _centre_crop(img, width, height):
    r = resize_min(img, width)
    h, w = r.shape[:2]
    return to_chw(crop(r, _cdiv2(w - width), _cdiv2(h - height), width, height))


def classifier_input(img_bgr, width, height, channels=3):
    """uint8 BGR (or grey) image -> float32 [channels, height, width] as Darknet's classifier
    sees it: RGB for 3 channels, grey for 1 (a colour image made grey as training reads it)."""
    return _centre_crop(_rgb(img_bgr, channels), width, height)


def _mirrored(chw):
    return np.ascontiguousarray(chw[:, :, ::-1])


def _ten_crops(img, width, height, shift=32):
    big = resize(img, width + shift, height + shift)
    at = [(-shift, -shift), (shift, -shift), (0, 0), (-shift, shift), (shift, shift)]
    crops = [to_chw(crop(big, dx, dy, width, height)) for dx, dy in at]
    flipped = big[:, ::-1]      # AB mirrors the image, then crops at the same offsets
    return crops + [to_chw(crop(flipped, dx, dy, width, height)) for dx, dy in at]


def _scales(img, width, height):
    views = []
    for size in (224, 288, 320, 352, 384):      # AB's fixed scales, whatever the network's
        r = to_chw(resize_min(img, size))
        views += [r, _mirrored(r)]
    return views


# mode -> (image RGB HxWxC uint8, net width, net height) -> [float32 CxHxW views]; a view of
# another size than the network's resizes the network to it
VIEWS = {
    "single": lambda img, w, h: [_centre_crop(img, w, h)],
    "crop": lambda img, w, h: [to_chw(resize(img, w, h))],
    "10": _ten_crops,
    "multi": _scales,
    "full": lambda img, w, h: [to_chw(resize_min(img, w))],
}

def _channels(network):
    return 1 if network.net.channels == 1 else 3


def top_k(scores, k):
    """Indexes of the k largest scores, largest first; ties keep the lower index first (as
    Darknet's ``top_k``)."""
    scores = np.asarray(scores).reshape(-1)
    return np.argsort(-scores, kind="stable")[: max(0, min(int(k), len(scores)))]


def softmax_tree(network):
    """The network's softmax tree (Darknet's net.hierarchy: its last [softmax] with tree=),
    or None."""
    trees = [l for l in network.layers if l.layer_type == "softmax" and l.tree]
    return load_tree(trees[-1]) if trees else None


def _scores(network, x, only_leaves=True):
    """The network's predictions: the last layer's output that is not a [cost] layer (as
    Darknet's ``get_network_output``); with a softmax tree, each class's probability along
    its path, the inner classes 0 with ``only_leaves`` (Darknet's hierarchy_predictions:
    leaves only in the valid commands, every class in predict)."""
    scores = network.predict(x).reshape(len(x), -1)
    tree = softmax_tree(network)
    if tree is not None:
        scores = tree.hierarchy_predictions(scores)
        if only_leaves:
            scores[:, ~tree.leaf] = 0
    return scores


def predict(network, image_bgr, top=5):
    """[(class_id, probability)] of the ``top`` highest outputs for one uint8 BGR image (with
    a softmax tree, over every class of the tree, as Darknet's predict_classifier)."""
    n = network.net
    x = classifier_input(image_bgr, n.width, n.height, _channels(network))[None]
    s = _scores(network, x, only_leaves=False)[0]
    return [(int(i), float(s[i])) for i in top_k(s, top)]


def _views(mode):
    if mode not in VIEWS:
        raise ValueError(f"mode {mode!r}: one of {', '.join(VIEWS)}")
    return VIEWS[mode]


def image_scores(network, image_bgr, mode="single"):
    """The scores ``classifier valid*`` sums for one uint8 BGR image over ``mode``'s views
    (VIEWS); the network ends at the size it started with."""
    n = network.net
    width, height, channels = n.width, n.height, _channels(network)
    try:
        return _view_scores(network, [_views(mode)(_rgb(image_bgr, channels), width, height)],
                            8)[0]
    finally:
        network.resize(width, height)


def _view_scores(network, items, batch_size):
    """Each item's views' scores summed: views of one size go through the network together
    (at most batch_size a pass), the network resized to each size."""
    total = [0.0] * len(items)
    by_size = {}
    for i, views in enumerate(items):
        for v in views:
            by_size.setdefault(v.shape, []).append((i, v))
    for (_, h, w), group in by_size.items():
        network.resize(w, h)
        for start in range(0, len(group), batch_size):
            part = group[start:start + batch_size]
            rows = _scores(network, np.stack([v for _, v in part]))
            for (i, _), row in zip(part, rows):
                total[i] = total[i] + row
    return total


def iter_scores(network, paths, mode="single", threads=2, batch_size=8, problems=None):
    """Yields ``(index, path, scores, views)`` for every image of ``paths`` that can be read:
    the network's scores summed over the image's ``mode`` views (VIEWS) and how many views
    there were. Images are read ahead in ``threads`` threads and go through the network
    ``batch_size`` at a time; those that cannot be read are reported to ``problems`` and
    skipped. The network ends at the size it started with."""
    views = _views(mode)
    width, height, channels = network.net.width, network.net.height, _channels(network)
    paths = list(paths)

    def load(p):
        return views(_rgb(read_bgr(p, channels), channels), width, height)

    try:
        with cf.ThreadPoolExecutor(max(1, threads)) as pool:
            futures = [pool.submit(load, p) for p in paths[: 4 * batch_size]]
            batch = []
            for i, p in enumerate(paths):
                if i + 4 * batch_size < len(paths):
                    futures.append(pool.submit(load, paths[i + 4 * batch_size]))
                try:
                    batch.append((i, futures[i].result()))
                except ImageReadError as e:
                    if problems is not None:
                        kind = "image_missing" if "not found" in e.reason else "image_unreadable"
                        problems.report(kind, f"{e.path}: {e.reason}; skipped", key=e.path)
                futures[i] = None
                if batch and (len(batch) == batch_size or i == len(paths) - 1):
                    scores = _view_scores(network, [v for _, v in batch], batch_size)
                    for (j, v), row in zip(batch, scores):
                        yield j, paths[j], row, len(v)
                    batch = []
    finally:
        network.resize(width, height)


def validate(network, paths, names, top=5, threads=2, batch_size=8, problems=None, log=None,
             mode="single"):
    """Top-1 and top-``top`` accuracy over image paths labelled by the class name in their
    path, each image seen as ``mode`` says (VIEWS). Images that cannot be read and images whose
    path holds no class name are skipped, counted (``problems``) and reported in the result.
    ``loss``: the mean cross-entropy -log(score of the true class) (the scores being a
    softmax's probabilities; for modes of several views, of their mean). The network ends at
    the size it started with."""
    from ..labels import class_from_path
    labels, keep = [], []
    unlabeled = 0
    for p in paths:
        c = class_from_path(p, names)
        if c is None:
            unlabeled += 1
            if problems is not None:
                problems.report("no_class_in_path", f"{p}: no class name from the names file "
                                "occurs in the path; skipped")
            continue
        labels.append(c)
        keep.append(p)
    top1 = topk = done = 0
    loss = 0.0
    for i, _, row, views in iter_scores(network, keep, mode, threads, batch_size, problems):
        t = labels[i]
        idx = top_k(row, top)
        top1 += int(len(idx) > 0 and idx[0] == t)
        topk += int(t in idx)
        loss -= math.log(max(float(row[t]) / views, 1e-12))
        done += 1
        if log is not None:
            log(f"\r{done}: top 1: {top1 / done:f}, top {top}: {topk / done:f}", end="")
    return {"images": done, "top1": top1 / done if done else 0.0,
            "topk": topk / done if done else 0.0, "k": int(top), "unlabeled": unlabeled,
            "loss": loss / done if done else 0.0,
            "skipped": len(keep) - done}
