"""[empty] / [silence]: passes its input on unchanged."""

from .base import Layer
from .registry import register

@register("empty", aliases=("silence",))
class Empty(Layer):
    type = "empty"
    layer_type = "empty"
    shares_input_delta = True

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.w = self.out_w = ctx.w
        self.h = self.out_h = ctx.h
        self.c = self.out_c = ctx.c
        self.inputs = self.outputs = ctx.inputs

    def forward(self, x, state):
        return x

    def backward(self, state):
        self.pass_delta_unchanged(state)
