"""Darknet's pooling window, shared by [maxpool] and [local_avgpool]."""

from .antialias import Blur
from .base import Layer

class PoolWindow(Layer):
    """Darknet's pooling window: out = (in + pad - size) / stride + 1, origin at -pad/2."""
    type = "max"

    def _geometry(self, s, ctx, allow_depth):
        stride = s.get_int("stride", 1)
        self.stride_x = s.get_int("stride_x", stride)
        self.stride_y = s.get_int("stride_y", stride)
        self.stride = self.stride_x
        self.size = s.get_int("size", stride)
        self.pad = s.get_int("padding", self.size - 1)
        self.maxpool_depth = s.get_int("maxpool_depth", 0) if allow_depth else 0
        self.out_channels = s.get_int("out_channels", 1) if allow_depth else 1
        self.antialiasing = s.get_int("antialiasing", 0) if allow_depth else 0
        if self.size < 1 or self.stride_x < 1 or self.stride_y < 1:
            raise s.error("size and stride must be positive integers", "size")
        if self.pad < 0:
            raise s.error(f"padding must be >= 0, found {self.pad}", "padding")
        if not (ctx.w and ctx.h and ctx.c):
            raise s.error(f"the layer before a pooling layer must output an image, found "
                          f"{ctx.w}x{ctx.h}x{ctx.c}")
        self.w, self.h, self.c = ctx.w, ctx.h, ctx.c
        blur_strides = (self.stride_x, self.stride_y)
        if self.antialiasing:   # the pooling at stride 1, then the blur with the strides
            self.stride_x = self.stride_y = self.stride = 1
        if self.maxpool_depth:
            if not 1 <= self.out_channels <= self.c:
                raise s.error(f"out_channels must be from 1 to the input's {self.c} channels, "
                              f"found {self.out_channels}", "out_channels")
            self.out_c, self.out_w, self.out_h = self.out_channels, self.w, self.h
        else:
            self.out_w = (self.w + self.pad - self.size) // self.stride_x + 1
            self.out_h = (self.h + self.pad - self.size) // self.stride_y + 1
            self.out_c = self.c
        if self.out_w < 1 or self.out_h < 1:
            raise s.error(f"output would be empty: input {self.w}x{self.h} is too small for "
                          f"size={self.size}", "size")
        self.blur = None
        if self.antialiasing:
            self.blur = Blur(self.antialiasing, self.out_c, self.out_h, self.out_w, *blur_strides)
            self.out_h, self.out_w = self.blur.out_h, self.blur.out_w
        self.outputs = self.out_w * self.out_h * self.out_c
        self.inputs = self.w * self.h * self.c
        core = self.blur or self
        self.bflops = self.size * self.size * self.c * core.out_h * core.out_w / 1e9

    def fields(self):
        return {"size": self.size, "stride": self.stride_x, "stride_x": self.stride_x,
                "stride_y": self.stride_y, "pad": self.pad, "maxpool_depth": self.maxpool_depth,
                "out_channels": self.out_channels}

    def describe(self):
        stride = (f"{self.stride_x}" if self.stride_x == self.stride_y
                  else f"{self.stride_x}x{self.stride_y}")
        return f"{'':9} {self.size:2d} x{self.size:2d}/{stride:>3}"
