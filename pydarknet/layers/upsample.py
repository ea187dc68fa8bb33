"""[upsample]: nearest-neighbour upsampling (a negative stride sums down instead)."""

from .base import Layer
from .registry import register

@register("upsample")
class Upsample(Layer):
    type = "upsample"
    layer_type = "upsample"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        stride = s.get_int("stride", 2)
        self.scale = s.get_float("scale", 1.0)
        if stride == 0:
            raise s.error("stride must not be 0", "stride")
        self.reverse = int(stride < 0)
        self.stride = abs(stride)
        self.w, self.h, self.c = ctx.w, ctx.h, ctx.c
        if self.reverse:
            if self.w % self.stride or self.h % self.stride:   # Darknet indexes them wrongly
                raise s.error(f"stride={stride} sums {self.stride}x{self.stride} blocks: the input "
                              f"must be a multiple of {self.stride} wide and high, found "
                              f"{self.w}x{self.h}", "stride")
            self.out_w, self.out_h = self.w // self.stride, self.h // self.stride
        else:
            self.out_w, self.out_h = self.w * self.stride, self.h * self.stride
        self.out_c = self.c
        self.outputs = self.out_w * self.out_h * self.out_c
        self.inputs = self.w * self.h * self.c

    def forward(self, x, state):
        n = x.shape[0]
        out = state.output_buffer(self, self.out_shape(n))
        xin = x.reshape(n, self.c, self.h, self.w)
        if self.reverse:
            state.backend.downsample_sum(xin, out, self.stride, self.scale)
        else:
            state.backend.upsample(xin, out, self.stride, self.scale)
        return out

    def backward(self, state):
        dx = self.input_delta(state)
        if dx is None:
            return
        delta = state.deltas[self.index]
        dxi = dx.reshape(delta.shape[0], self.c, self.h, self.w)
        if self.reverse:
            state.backend.upsample(delta, dxi, self.stride, self.scale, accumulate=True)
        else:
            state.backend.downsample_sum(delta, dxi, self.stride, self.scale, accumulate=True)

    def fields(self):
        return {"stride": self.stride, "scale": self.scale, "reverse": self.reverse}

    def describe(self):
        return f"{'':12}{self.stride:2d}x" if not self.reverse else f"{'':12}/{self.stride:2d}"
