"""[dropout]: random dropout while training, the identity at inference."""

import numpy as np

from .base import Layer
from .registry import register

@register("dropout")
class Dropout(Layer):
    """At inference the identity (Darknet shares the previous layer's output buffer)."""
    type = "dropout"
    layer_type = "dropout"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.probability = s.get_float("probability", 0.2)
        self.dropblock = s.get_int("dropblock", 0)
        self.dropblock_size_rel = s.get_float("dropblock_size_rel", 0)
        self.dropblock_size_abs = int(s.get_float("dropblock_size_abs", 0))
        if not 0 <= self.probability < 1:
            raise s.error(f"probability must be in [0, 1), found {self.probability}",
                          "probability")
        self.inputs = self.outputs = ctx.inputs
        self.out_w, self.out_h, self.out_c = ctx.w, ctx.h, ctx.c
        if self.dropblock:   # Darknet sets the input geometry only for DropBlock
            self.w, self.h, self.c = ctx.w, ctx.h, ctx.c

    def check_trainable(self):
        super().check_trainable()
        if self.dropblock:
            raise self.refuse_training("dropblock", "DropBlock")

    def forward(self, x, state):
        if not state.train or self.probability == 0:
            self._mask = None
            return x.reshape(self.out_shape(x.shape[0]))
        if self.dropblock:
            return Layer.forward(self, x, state)   # not implemented: says so with file:line
        # Darknet: drop where rand < p, scale the kept values by 1/(1-p) (mask on the host:
        # the random numbers come from the network's generator)
        keep = state.rng.random(x.shape, dtype=np.float32) >= np.float32(self.probability)
        self._mask = keep.astype(np.float32) * np.float32(1 / (1 - self.probability))
        mask = state.host_result(self, self._mask, "mask")
        out = state.output_buffer(self, self.out_shape(x.shape[0]))
        state.backend.sam(mask, x, out)
        return out

    def backward(self, state):
        dx = self.input_delta(state)
        if dx is None:
            return
        B = state.backend
        if self._mask is None:
            B.axpy(1, state.deltas[self.index], dx)
        else:
            mask = state.output_buffer(self, self._mask.shape, "mask")
            B.sam_backward(state.deltas[self.index], mask, None, dx, None)

    def fields(self):
        return {"probability": self.probability}
