"""[connected] / [conn]: fully connected layer (optionally batch-normalised)."""

import numpy as np

from .activation import read_activation
from .base import Layer, activate_output
from .registry import register
from .batchnorm import bn_backward, bn_train_forward


@register("connected", aliases=("conn",))
class Connected(Layer):
    type = "connected"
    layer_type = "connected"
    trainable = ("weights", "biases", "scales")
    rate_scaled = True
    loss_scale_undone = "updates"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.output_size = s.get_int("output", 1)
        if self.output_size < 1:
            raise s.error(f"must be a positive integer, found {self.output_size}", "output")
        self.activation = read_activation(s, "activation", "logistic")
        self.batch_normalize = s.get_int("batch_normalize", 0)
        self.inputs, self.outputs = ctx.inputs, self.output_size
        self.w = self.h = 1
        self.c = self.inputs
        self.out_w = self.out_h = 1
        self.out_c = self.outputs
        self.nweights = 0   # Darknet does not count them for connected layers (nor BFLOPs)

    def param_shapes(self):
        shapes = [("biases", (self.outputs,)), ("weights", (self.outputs, self.inputs))]
        if self.batch_normalize:
            shapes += [("scales", (self.outputs,)), ("rolling_mean", (self.outputs,)),
                       ("rolling_variance", (self.outputs,))]
        return shapes

    def init_params(self, rng):
        super().init_params(rng)
        scale = np.sqrt(2.0 / self.inputs)
        self.params["weights"][...] = rng.uniform(-scale, scale, (self.outputs, self.inputs))
        if self.batch_normalize:
            self.params["scales"][...] = 1
            self.params["rolling_variance"][...] = 1

    def forward(self, x, state):
        B, p = state.backend, self.params
        n = x.shape[0]
        out = B.zeros((n, self.outputs))
        B.gemm(False, True, 1.0, x.reshape(n, self.inputs), p["weights"], 0.0, out)
        out = out.reshape(n, self.outputs, 1, 1)
        if self.batch_normalize and state.train:
            # Darknet's connected layer keeps 0.95/0.05 rolling statistics
            self._bn = bn_train_forward(B, out, p["scales"], p["biases"], p["rolling_mean"],
                                        p["rolling_variance"], keep=0.95)
        elif self.batch_normalize:
            B.batchnorm_inference(out, p["scales"], p["rolling_mean"], p["rolling_variance"],
                                  p["biases"])
        else:
            B.add_bias(out, p["biases"])
        if state.train:
            self._input = x
        return activate_output(self, state, out)

    def backward(self, state):
        B = state.backend
        delta = state.deltas[self.index]
        n = delta.shape[0]
        B.gradient(delta, state.outputs[self.index], self.activation, self._act_input)
        if self.batch_normalize:
            bn_backward(B, delta, self._bn, self.params["scales"], self.grads)
        else:
            B.backward_bias(self.grads["biases"], delta)
        d = delta.reshape(n, self.outputs)
        x = self._input.reshape(n, self.inputs)
        B.gemm(True, False, 1.0, d, x, 1.0, self.grads["weights"])
        dx = self.input_delta(state)
        if dx is not None:
            B.gemm(False, False, 1.0, d, self.params["weights"], 1.0, dx.reshape(n, self.inputs))

    def fields(self):
        return {"output_size": self.output_size, "batch_normalize": self.batch_normalize,
                "activation": self.activation, "nweights": self.nweights}
