"""What [sam] and [scale_channels] share: an elementwise product of the input with an
earlier layer's output (``from=``), then an activation."""

from .activation import read_activation
from .base import Layer

class FromLayer(Layer):
    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.from_index = ctx.resolve(s, "from", s.get_int("from"))
        self.activation = read_activation(s, "activation", "linear")
        src = ctx.layers[self.from_index]
        self.w, self.h, self.c = ctx.w, ctx.h, ctx.c
        self.out_w, self.out_h, self.out_c = src.out_w, src.out_h, src.out_c
        self.outputs = self.inputs = self.out_w * self.out_h * self.out_c

    def reads(self):
        return (self.from_index,)

    def fields(self):
        return {"from": self.from_index, "activation": self.activation}

    def describe(self):
        return f"{self.from_index}"
