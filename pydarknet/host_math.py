"""The few float32 numpy formulas the host-side code shares (layers' host paths, the CPU
backend, decoding), written once in Darknet's order of operations."""

import numpy as np

F32 = np.float32


def logistic(x):
    """Darknet's logistic activation, 1 / (1 + exp(-x)), in float32. exp overflowing to inf
    for x below about -88 gives 0, as C's expf does: not worth a warning."""
    with np.errstate(over="ignore"):
        return F32(1) / (F32(1) + np.exp(-x))


def softmax_rows(x, temperature=1.0):
    """Darknet's softmax along the last axis: max subtracted, divided by ``temperature``."""
    t = F32(temperature)
    e = np.exp(x / t - x.max(axis=-1, keepdims=True) / t)
    return e / e.sum(axis=-1, keepdims=True)
