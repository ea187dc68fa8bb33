"""The few float32 numpy formulas the host-side code shares (layers' host paths, the CPU
backend, decoding), written once in Darknet's order of operations."""

import numpy as np

F32 = np.float32

FLT_MAX = float(np.finfo(np.float32).max)     # C's FLT_MAX: Darknet's "no limit"


def c_round(x):
    """C's round() of float32 values (float64 out): halves away from zero and the sign of a
    zero kept, so that printf's "%4.0f" shows round(-0.3) as "-0" as Darknet's does. Exact:
    a float32 value plus 0.5 is exact in float64."""
    x = np.asarray(x, np.float64)
    return np.copysign(np.floor(np.abs(x) + 0.5), x)


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


def cosine_similarities(v):
    """(similarities [n, n], norms [n]) of the rows of v, in float64, as AB's
    cosine_similarity gives them: 0 where a row is all zeros."""
    v = np.asarray(v, np.float64)
    norms = np.sqrt(np.square(v).sum(axis=1))
    divider = np.outer(norms, norms)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(divider > 0, (v @ v.T) / divider, 0.0), norms


def binarize_weights(w):
    """binary=1 / xnor=1 weights (AB's GPU build): each filter (first axis) -> +-(the mean of
    its absolute values, summed in order in float32); w > 0 gives +."""
    flat = w.reshape(w.shape[0], -1)
    mean = np.cumsum(np.abs(flat), axis=1, dtype=F32)[:, -1] / F32(flat.shape[1])
    return np.where(flat > 0, mean[:, None], -mean[:, None]).astype(F32).reshape(w.shape)


def binarize_signs(x):
    """xnor=1 inputs (AB's GPU build): +1 where x >= 0, else -1."""
    return np.where(x >= 0, F32(1), F32(-1))
