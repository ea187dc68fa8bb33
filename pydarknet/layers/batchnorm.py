"""[batchnorm]: standalone batch normalisation, and the batch-norm maths the convolutional and
connected layers share (Darknet's training statistics and deltas, with eps inside the root)."""

import numpy as np

from .base import Layer, register

EPS = np.float32(1e-5)


def bn_train_forward(out, scales, biases, rolling_mean, rolling_variance, keep=0.9):
    """Normalise ``out`` [N, C, ...] in place with batch statistics (variance 1/(N-1)), update
    the rolling statistics (keep*rolling + (1-keep)*batch) and return what backward needs."""
    n, c = out.shape[:2]
    x = out.reshape(n, c, -1)
    count = x.shape[0] * x.shape[2]
    mean = x.mean(axis=(0, 2), dtype=np.float64).astype(np.float32)
    centred = x - mean[None, :, None]
    variance = (np.einsum("ncs,ncs->c", centred, centred, dtype=np.float64)
                / max(count - 1, 1)).astype(np.float32)
    rolling_mean *= np.float32(keep)
    rolling_mean += np.float32(1 - keep) * mean
    rolling_variance *= np.float32(keep)
    rolling_variance += np.float32(1 - keep) * variance
    x_saved = x.copy()
    x_norm = centred / np.sqrt(variance + EPS)[None, :, None]
    x[...] = x_norm * scales[None, :, None] + biases[None, :, None]
    return {"x": x_saved, "x_norm": x_norm, "mean": mean, "variance": variance}


def bn_backward(delta, cache, scales, grads):
    """Darknet's batch-norm backward on ``delta`` [N, C, ...] in place; accumulates the
    bias and scale gradients into ``grads``."""
    n, c = delta.shape[:2]
    d = delta.reshape(n, c, -1)
    count = d.shape[0] * d.shape[2]
    grads["biases"] += d.sum(axis=(0, 2), dtype=np.float64).astype(np.float32)
    grads["scales"] += np.einsum("ncs,ncs->c", d, cache["x_norm"], dtype=np.float64).astype(
        np.float32)
    d *= scales[None, :, None]
    inv_std = (1 / np.sqrt(cache["variance"] + EPS)).astype(np.float32)
    centred = cache["x"] - cache["mean"][None, :, None]
    mean_delta = (d.sum(axis=(0, 2), dtype=np.float64) * -inv_std).astype(np.float32)
    var_delta = (np.einsum("ncs,ncs->c", d, centred, dtype=np.float64) * -0.5
                 * np.power(cache["variance"].astype(np.float64) + EPS, -1.5)).astype(np.float32)
    d[...] = (d * inv_std[None, :, None] + var_delta[None, :, None] * 2 * centred / count
              + mean_delta[None, :, None] / count)
    return delta


@register("batchnorm")
class Batchnorm(Layer):
    type = "batchnorm"
    layer_type = "batchnorm"
    trainable = ("biases", "scales")

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.w = self.out_w = ctx.w
        self.h = self.out_h = ctx.h
        self.c = self.out_c = ctx.c
        self.inputs = self.outputs = ctx.w * ctx.h * ctx.c
        self.activation = "logistic"   # Darknet leaves the enum at 0 (printed as logistic)

    def param_shapes(self):
        return [("biases", (self.c,)), ("scales", (self.c,)), ("rolling_mean", (self.c,)),
                ("rolling_variance", (self.c,))]

    def init_params(self, rng):
        super().init_params(rng)
        self.params["scales"][...] = 1
        self.params["rolling_variance"][...] = 1

    def forward(self, x, state):
        p = self.params
        out = x.reshape(self.out_shape(x.shape[0])).copy()
        if state.train:
            self._cache = bn_train_forward(out, p["scales"], p["biases"], p["rolling_mean"],
                                           p["rolling_variance"])
        else:
            state.backend.batchnorm_inference(out, p["scales"], p["rolling_mean"],
                                              p["rolling_variance"], p["biases"])
        return out

    def backward(self, state):
        delta = state.deltas[self.index].copy()
        bn_backward(delta, self._cache, self.params["scales"], self.grads)
        dx = self.input_delta(state)
        if dx is not None:
            dx += delta.reshape(dx.shape)

    def fields(self):
        return {"activation": self.activation}
