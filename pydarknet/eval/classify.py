"""Classifier prediction and top-k validation (AB's ``predict_classifier`` and
``validate_classifier_single``).

Pre-processing: RGB in [0, 1], the shorter side resized to the network width
(``resize_min``), then the centre net_w x net_h crop. The label of a validation image is the
first class name (in names order) found anywhere in its path.
"""

import concurrent.futures as cf
import math

import numpy as np

from ..image import ImageReadError, as_channels, crop, read_bgr, resize_min, to_chw
from ..tree import load_tree

__all__ = ["classifier_input", "top_k", "predict", "validate"]


def _cdiv2(v):
    return int(v / 2)     # C's integer division (toward zero)


def classifier_input(img_bgr, width, height, channels=3):
    """uint8 BGR (or grey) image -> float32 [channels, height, width] as Darknet's classifier
    sees it: RGB for 3 channels, grey for 1 (a colour image made grey as training reads it)."""
    img = as_channels(img_bgr, channels)
    if img.ndim == 3 and img.shape[2] == 3:
        img = img[:, :, ::-1]                           # BGR -> RGB
    r = resize_min(img, width)
    h, w = r.shape[:2]
    return to_chw(crop(r, _cdiv2(w - width), _cdiv2(h - height), width, height))


def _channels(network):
    return 1 if network.net.channels == 1 else 3


def top_k(scores, k):
    """Indexes of the k largest scores, largest first; ties keep the lower index first (as
    Darknet's ``top_k``)."""
    scores = np.asarray(scores).reshape(-1)
    return np.argsort(-scores, kind="stable")[: max(0, min(int(k), len(scores)))]


def _scores(network, x):
    """The network's predictions: the last layer's output that is not a [cost] layer (as
    Darknet's ``get_network_output``); with a softmax tree, its leaves' path probabilities
    (the classifier commands' hierarchy_predictions(..., only_leaves=1))."""
    scores = network.predict(x).reshape(len(x), -1)
    trees = [l for l in network.layers if l.layer_type == "softmax" and l.tree]
    if trees:   # Darknet's net.hierarchy: each leaf's probability along its path, leaves only
        tree = load_tree(trees[-1])
        scores = tree.hierarchy_predictions(scores)
        scores[:, ~tree.leaf] = 0
    return scores


def predict(network, image_bgr, top=5):
    """[(class_id, probability)] of the ``top`` highest outputs for one uint8 BGR image."""
    n = network.net
    x = classifier_input(image_bgr, n.width, n.height, _channels(network))[None]
    s = _scores(network, x)[0]
    return [(int(i), float(s[i])) for i in top_k(s, top)]


def validate(network, paths, names, top=5, threads=2, batch_size=8, problems=None, log=None):
    """Top-1 and top-``top`` accuracy over image paths labelled by the class name in their
    path. Images that cannot be read and images whose path holds no class name are skipped,
    counted (``problems``) and reported in the result. ``loss``: the mean cross-entropy
    -log(score of the true class) (the scores being a softmax's probabilities)."""
    from ..labels import class_from_path
    n = network.net
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

    channels = _channels(network)

    def load(p):
        return classifier_input(read_bgr(p, channels), n.width, n.height, channels)

    top1 = topk = done = 0
    loss = 0.0
    with cf.ThreadPoolExecutor(max(1, threads)) as pool:
        futures = [pool.submit(load, p) for p in keep[: 4 * batch_size]]
        batch, truth = [], []
        for i, p in enumerate(keep):
            if i + 4 * batch_size < len(keep):
                futures.append(pool.submit(load, keep[i + 4 * batch_size]))
            try:
                batch.append(futures[i].result())
                truth.append(labels[i])
            except ImageReadError as e:
                if problems is not None:
                    kind = "image_missing" if "not found" in e.reason else "image_unreadable"
                    problems.report(kind, f"{e.path}: {e.reason}; skipped", key=e.path)
            futures[i] = None
            if batch and (len(batch) == batch_size or i == len(keep) - 1):
                s = _scores(network, np.stack(batch))
                for row, t in zip(s, truth):
                    idx = top_k(row, top)
                    top1 += int(len(idx) > 0 and idx[0] == t)
                    topk += int(t in idx)
                    loss -= math.log(max(float(row[t]), 1e-12))
                done += len(batch)
                batch, truth = [], []
                if log is not None:
                    log(f"\r{done}: top 1: {top1 / done:f}, top {top}: {topk / done:f}", end="")
    return {"images": done, "top1": top1 / done if done else 0.0,
            "topk": topk / done if done else 0.0, "k": int(top), "unlabeled": unlabeled,
            "loss": loss / done if done else 0.0,
            "skipped": len(keep) - done}
