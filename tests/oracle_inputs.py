"""Random inputs of the oracle networks (the fuzzers' and test_darknet_iterations' cases):
parameters of a useful scale, and truths for their heads."""

import numpy as np


def randomize(net, rng):
    """Every layer's parameters drawn from ``rng``: weights N(0, 1/fan-in), rolling variances
    U(0.5, 2), scales U(0.5, 1.5), the rest N(0, 0.2)."""
    for layer in net.layers:
        for name, arr in layer.params.items():
            a = np.asarray(arr)
            # (a recurrent layer's are named after its gates: input_weights, ...)
            if name.endswith("weights"):
                fan = int(np.prod(a.shape[1:])) if a.ndim > 1 else 1
                v = rng.normal(0, 1.0 / np.sqrt(max(fan, 1)), a.shape)
            elif name.endswith("rolling_variance"):
                v = rng.uniform(0.5, 2.0, a.shape)
            elif name.endswith("scales"):
                v = rng.uniform(0.5, 1.5, a.shape)
            else:
                v = rng.normal(0, 0.2, a.shape)
            layer.params[name] = v.astype(np.float32)


def box_truths(rng, head, rows):
    """(rows, head.max_boxes, 6) random truths for a detection head: 1 to 5 boxes an image."""
    truths = np.zeros((rows, head.max_boxes, 6), np.float32)
    for b in range(rows):
        k = int(rng.integers(1, 6))
        truths[b, :k, :2] = rng.uniform(0.05, 0.95, (k, 2))
        truths[b, :k, 2:4] = rng.uniform(0.05, 0.6, (k, 2))
        truths[b, :k, 4] = rng.integers(0, head.classes, k)
    return truths


def random_truths(rng, net, rows):
    """Truths of ``rows`` images for ``net``'s last layer: a detection head's boxes
    (``box_truths``) or a classifier's one-hot rows."""
    head = net.layers[-1]
    if head.layer_type in ("yolo", "gaussian_yolo", "region"):
        return box_truths(rng, head, rows)
    truths = np.zeros((rows, head.outputs), np.float32)
    truths[np.arange(rows), rng.integers(0, head.outputs, rows)] = 1
    return truths
