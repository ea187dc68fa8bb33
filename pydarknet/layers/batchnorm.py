"""[batchnorm]: standalone batch normalisation, and the batch-norm maths the convolutional and
connected layers share (Darknet's training statistics and deltas, with eps inside the root)."""

from .base import Layer
from .registry import register


def bn_train_forward(backend, out, scales, biases, rolling_mean, rolling_variance, keep=0.9,
                     alloc=None):
    """Normalise ``out`` [N, C, ...] in place with batch statistics (variance 1/(N-1)), update
    the rolling statistics (keep*rolling + (1-keep)*batch) and return what backward needs.

    Runs the backend's ``batchnorm_train`` (Darknet's float32 summation order)."""
    c = out.shape[1]
    alloc = alloc or (lambda name, shape: backend.empty(shape))
    cache = {"mean": alloc("bn_mean", (c,)), "variance": alloc("bn_variance", (c,)),
             "x": alloc("bn_x", out.shape), "x_norm": alloc("bn_x_norm", out.shape)}
    backend.batchnorm_train(out, scales, biases, rolling_mean, rolling_variance, cache["mean"],
                            cache["variance"], cache["x"], cache["x_norm"], keep)
    return cache


def bn_backward(backend, delta, cache, scales, grads):
    """Darknet's batch-norm backward on ``delta`` [N, C, ...] in place (the backend's
    ``batchnorm_backward``); accumulates the bias and scale gradients into ``grads``."""
    backend.batchnorm_backward(delta, cache["x"], cache["x_norm"], cache["mean"],
                               cache["variance"], scales, grads["biases"], grads["scales"])
    return delta


@register("batchnorm")
class Batchnorm(Layer):
    type = "batchnorm"
    layer_type = "batchnorm"
    trainable = ("biases", "scales")
    rate_scaled = True

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
        out = state.copy_to_buffer(self, "output", x.reshape(self.out_shape(x.shape[0])))
        if state.train:
            self._cache = bn_train_forward(state.backend, out, p["scales"], p["biases"],
                                           p["rolling_mean"], p["rolling_variance"])
        else:
            state.backend.batchnorm_inference(out, p["scales"], p["rolling_mean"],
                                              p["rolling_variance"], p["biases"])
        return out

    def backward(self, state):
        delta = state.copy_to_buffer(self, "delta_copy", state.deltas[self.index])
        bn_backward(state.backend, delta, self._cache, self.params["scales"], self.grads)
        dx = self.input_delta(state)
        if dx is not None:
            state.backend.axpy(1, delta, dx)

    def fields(self):
        return {"activation": self.activation}
