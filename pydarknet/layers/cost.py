"""[cost]: a loss layer against the truths (sse, masked, smooth, L1, ...)."""

import numpy as np

from .base import Layer
from .registry import register

COST_TYPES = ("sse", "masked", "smooth", "L1", "seg", "wgan")


@register("cost")
class Cost(Layer):
    type = "cost"
    layer_type = "cost"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.cost_type = s.get_str("type", "sse")
        if self.cost_type not in COST_TYPES:
            raise s.error(f"unknown cost type '{self.cost_type}': expected one of "
                          f"{', '.join(COST_TYPES)}", "type")
        self.scale = s.get_float("scale", 1.0)
        self.ratio = s.get_float("ratio", 0.0)   # in the layer table, but no effect:
        if s.has("ratio"):                       # pydarknet.no_effect warns of it
            s.options["ratio"].used = False
        self.inputs = self.outputs = ctx.inputs

    def forward(self, x, state):
        # Without truths Darknet's cost layer leaves its (zeroed) output untouched.
        n = x.shape[0]
        B = state.backend
        out = np.zeros(self.out_shape(n), np.float32)   # on the host: losses against truths
        self.cost = None
        if state.train and state.truth is not None:
            truth = state.truth.reshape(n, -1).astype(np.float32)
            pred = B.to_numpy(x).reshape(n, -1)
            if self.cost_type == "masked":  # Darknet's SECRET_NUM marks entries to ignore
                pred = np.where(truth == np.float32(-1234), truth, pred)
            diff = truth - pred
            if self.cost_type == "smooth":
                absd = np.abs(diff)
                err = np.where(absd < 1, diff * diff, 2 * absd - 1)
                delta = np.where(absd < 1, diff, np.sign(diff))
            else:  # AB's get_cost_type knows sse, masked and smooth: L1, seg, wgan go as sse
                err, delta = diff * diff, diff
            out[...] = err.reshape(out.shape)
            B.copy_from_numpy(state.deltas[self.index], delta)
            self.cost = float(err.sum(dtype=np.float32))
        return state.host_result(self, out)

    def backward(self, state):
        dx = self.input_delta(state)
        if dx is not None:
            state.backend.axpy(np.float32(self.scale), state.deltas[self.index], dx)

    def fields(self):
        return {"cost_type": self.cost_type, "scale": self.scale, "ratio": self.ratio}
