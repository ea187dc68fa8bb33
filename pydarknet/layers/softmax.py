"""[softmax] / [soft]: the classifier's output (with its cross-entropy loss)."""

import numpy as np

from ..errors import NotSupportedError
from ..tree import SECRET_NUM, load_tree
from .base import Layer
from .registry import register

@register("softmax", aliases=("soft",))
class Softmax(Layer):
    type = "softmax"
    layer_type = "softmax"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.groups = s.get_int("groups", 1)
        self.inputs = self.outputs = ctx.inputs
        if self.groups < 1 or self.inputs % self.groups:
            raise s.error(f"groups={self.groups} must divide the {self.inputs} inputs", "groups")
        self.temperature = s.get_float("temperature", 1.0)
        if self.temperature == 0:      # Darknet divides the inputs by it
            raise s.error("temperature must not be 0 (the inputs are divided by it)",
                          "temperature")
        self.tree = s.get_str("tree", None)
        self.w, self.h, self.c = ctx.w, ctx.h, ctx.c
        self.spatial = s.get_float("spatial", 0.0)
        self.noloss = s.get_int("noloss", 0)

    def check_trainable(self):
        super().check_trainable()
        if self.tree:            # read now: a missing file stops training at once
            load_tree(self)

    def forward(self, x, state):
        if self.spatial:
            raise NotSupportedError(f"{self.section.path}:{self.section.line}: [softmax] with "
                                    f"spatial=1 (per-pixel softmax) is not implemented")
        n = x.shape[0]
        B = state.backend
        out = state.output_buffer(self, self.out_shape(n))
        if self.tree:       # within each group of the tree (on the host)
            p = load_tree(self).softmax(B.to_numpy(x).reshape(n, -1), self.temperature)
            B.copy_from_numpy(out, p)
        else:
            B.softmax(x.reshape(out.shape), out, self.groups, self.temperature)
        self.cost = None
        if state.train and state.truth is not None and not self.noloss:
            truth = state.truth.reshape(n, -1)
            p = B.to_numpy(out).reshape(n, -1)
            if self.tree:        # the labels' ancestors, and the groups left out
                truth = load_tree(self).fill_hierarchy(truth)
            # Darknet's softmax_x_ent: delta = t - p, loss = -log(p) where t != 0
            delta = truth - p
            with np.errstate(divide="ignore"):
                loss = np.where(truth != 0, -np.log(p), np.float32(0))
            if self.tree:        # AB's GPU build: nothing from the groups left out
                skip = truth == SECRET_NUM
                delta[skip] = 0
                loss[skip] = 0
            B.copy_from_numpy(state.deltas[self.index], delta)
            self.cost = float(loss.sum(dtype=np.float32))
        return out

    def backward(self, state):
        dx = self.input_delta(state)
        if dx is not None:   # scaled by [net] loss_scale, as AB's GPU build (the update
            # divides the rate by it again)
            state.backend.axpy(getattr(state, "loss_scale", 1.0), state.deltas[self.index], dx)

    def fields(self):
        return {"groups": self.groups, "temperature": self.temperature,
                "spatial": self.spatial, "noloss": self.noloss}
