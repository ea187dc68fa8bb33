"""[crop]: the centre crop of the input (inference)."""

import numpy as np

from .base import Layer
from .registry import register

@register("crop")
class Crop(Layer):
    """At inference: the centre crop, scaled to [-1, 1] unless noadjust."""
    type = "crop"
    layer_type = "crop"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.crop_height = s.get_int("crop_height", 1)
        self.crop_width = s.get_int("crop_width", 1)
        self.flip = s.get_int("flip", 0)
        self.angle = s.get_float("angle", 0)
        self.saturation = s.get_float("saturation", 1)
        self.exposure = s.get_float("exposure", 1)
        self.noadjust = s.get_int("noadjust", 0)
        self.shift = s.get_float("shift", 0)
        if not (ctx.w and ctx.h and ctx.c):
            raise s.error("the layer before a crop layer must output an image")
        self.w, self.h, self.c = ctx.w, ctx.h, ctx.c
        self.out_w, self.out_h, self.out_c = self.crop_width, self.crop_height, self.c
        if self.out_w > self.w or self.out_h > self.h or self.out_w < 1 or self.out_h < 1:
            raise s.error(f"crop {self.out_w}x{self.out_h} does not fit the {self.w}x{self.h} "
                          f"input", "crop_width")
        self.inputs = self.w * self.h * self.c
        self.outputs = self.out_w * self.out_h * self.out_c

    def check_trainable(self):
        super().check_trainable()
        s = self.section
        # Darknet crops at a random place (and flips, turns, recolours) while training
        raise s.error(f"layer {self.index}: training through a [crop] layer (random crops while "
                      f"training) is not implemented by pydarknet: train with Darknet")

    def forward(self, x, state):
        n = x.shape[0]
        dh, dw = (self.h - self.out_h) // 2, (self.w - self.out_w) // 2
        xs = state.backend.to_numpy(x).reshape(n, self.c, self.h, self.w)
        xs = xs[:, :, dh:dh + self.out_h, dw:dw + self.out_w]    # on the host: inference only
        scale, trans = (np.float32(1), np.float32(0)) if self.noadjust else (np.float32(2),
                                                                              np.float32(-1))
        return state.host_result(self, xs * scale + trans)
