"""[softmax] / [soft] and [cost]: the classifier's output and its loss layer."""

import numpy as np

from ..errors import NotSupportedError
from .base import Layer, register
from .region import softmax_rows

COST_TYPES = ("sse", "masked", "smooth", "L1", "seg", "wgan")


@register("softmax")
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
        self.tree = s.get_str("tree", None)
        self.w, self.h, self.c = ctx.w, ctx.h, ctx.c
        self.spatial = s.get_float("spatial", 0.0)
        self.noloss = s.get_int("noloss", 0)

    def forward(self, x, state):
        if self.tree:
            raise NotSupportedError(f"{self.section.path}:{self.section.line}: [softmax] with a "
                                    f"tree ({self.tree}) is not implemented")
        n = x.shape[0]
        rows = x.reshape(n, self.groups, self.inputs // self.groups)
        return softmax_rows(rows, self.temperature).reshape(self.out_shape(n))

    def fields(self):
        return {"groups": self.groups, "temperature": self.temperature,
                "spatial": self.spatial, "noloss": self.noloss}


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
        self.ratio = s.get_float("ratio", 0.0)
        self.inputs = self.outputs = ctx.inputs

    def forward(self, x, state):
        # Without truths Darknet's cost layer leaves its (zeroed) output untouched.
        return np.zeros(self.out_shape(x.shape[0]), np.float32)

    def fields(self):
        return {"cost_type": self.cost_type, "scale": self.scale, "ratio": self.ratio}
