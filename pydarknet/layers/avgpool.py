"""[avgpool] / [avg]: global average pooling (one value per channel)."""

from .base import Layer
from .registry import register

@register("avgpool", aliases=("avg",))
class Avgpool(Layer):
    type = "avg"
    layer_type = "avgpool"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        if not (ctx.w and ctx.h and ctx.c):
            raise s.error(f"the layer before [avgpool] must output an image, found "
                          f"{ctx.w}x{ctx.h}x{ctx.c}")
        self.w, self.h, self.c = ctx.w, ctx.h, ctx.c
        self.out_w = self.out_h = 1
        self.out_c = self.c
        self.outputs = self.c
        self.inputs = self.w * self.h * self.c

    def forward(self, x, state):
        n = x.shape[0]
        out = state.output_buffer(self, self.out_shape(n))
        state.backend.global_avgpool(x.reshape(n, self.c, self.h, self.w), out)
        return out

    def backward(self, state):
        dx = self.input_delta(state)
        if dx is not None:
            state.backend.global_avgpool_backward(
                state.deltas[self.index], dx.reshape(dx.shape[0], self.c, self.h, self.w))
