"""[implicit]: YOLOR's implicit knowledge, a learned [filters, atoms, 1] tensor that is the
layer's output for every image whatever its input (AB's representation_layer.c)."""

import numpy as np

from .base import Layer
from .registry import register


@register("implicit")
class Implicit(Layer):
    type = "implicit"
    layer_type = "implicit"
    trainable = ("weights",)
    rate_scaled = True

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.mean = s.get_float("mean", 0.0)
        self.std = s.get_float("std", 0.2)
        self.filters = s.get_int("filters", 128)
        self.atoms = s.get_int("atoms", 1)
        for key in ("mean", "std"):     # the initial weights are mean + U(-std, std)
            if not np.isfinite(getattr(self, key)):
                raise s.error(f"{key} must be a finite number, found {getattr(self, key)}", key)
        if self.filters < 1 or self.atoms < 1:
            raise s.error(f"filters and atoms must be positive integers, found "
                          f"filters={self.filters}, atoms={self.atoms}", "filters")
        self.w = self.h = self.c = 1
        self.inputs = 1
        self.out_w, self.out_h, self.out_c = 1, self.atoms, self.filters
        self.outputs = self.nweights = self.atoms * self.filters

    def param_shapes(self):
        return [("weights", (self.nweights,))]

    def init_params(self, rng):
        super().init_params(rng)
        std = abs(self.std)           # (Darknet's rand_uniform swaps reversed bounds)
        self.params["weights"][...] = self.mean + rng.uniform(-std, std, self.nweights)

    def forward(self, x, state):
        n = x.shape[0]
        out = state.output_buffer(self, self.out_shape(n))
        B = state.backend
        weights = B.to_numpy(self.params["weights"])
        B.copy_from_numpy(out, np.ascontiguousarray(
            np.broadcast_to(weights.reshape(self.out_shape(1)), out.shape), np.float32))
        return out

    def backward(self, state):
        # the weights' gradient: the delta summed over the images; the input gets none
        B = state.backend
        delta = B.to_numpy(state.deltas[self.index]).reshape(-1, self.nweights)
        grad = B.to_numpy(self.grads["weights"]) + delta.sum(axis=0, dtype=np.float32)
        B.copy_from_numpy(self.grads["weights"], grad.astype(np.float32))

    def fields(self):
        return {"filters": self.filters, "atoms": self.atoms, "mean": self.mean, "std": self.std}
