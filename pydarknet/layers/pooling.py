"""[maxpool] / [max], [local_avgpool] / [local_avg] and the global [avgpool] / [avg]."""

import numpy as np

from .base import Layer, register


class _Window(Layer):
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
        if not (ctx.w and ctx.h and ctx.c):
            raise s.error(f"the layer before a pooling layer must output an image, found "
                          f"{ctx.w}x{ctx.h}x{ctx.c}")
        self.w, self.h, self.c = ctx.w, ctx.h, ctx.c
        if self.maxpool_depth:
            if self.out_channels < 1:
                raise s.error("out_channels must be >= 1", "out_channels")
            self.out_c, self.out_w, self.out_h = self.out_channels, self.w, self.h
        else:
            self.out_w = (self.w + self.pad - self.size) // self.stride_x + 1
            self.out_h = (self.h + self.pad - self.size) // self.stride_y + 1
            self.out_c = self.c
        if self.out_w < 1 or self.out_h < 1:
            raise s.error(f"output would be empty: input {self.w}x{self.h} is too small for "
                          f"size={self.size}", "size")
        self.outputs = self.out_w * self.out_h * self.out_c
        self.inputs = self.w * self.h * self.c
        self.bflops = self.size * self.size * self.c * self.out_h * self.out_w / 1e9

    def fields(self):
        return {"size": self.size, "stride": self.stride_x, "stride_x": self.stride_x,
                "stride_y": self.stride_y, "pad": self.pad, "maxpool_depth": self.maxpool_depth,
                "out_channels": self.out_channels}

    def describe(self):
        stride = (f"{self.stride_x}" if self.stride_x == self.stride_y
                  else f"{self.stride_x}x{self.stride_y}")
        return f"{'':9} {self.size:2d} x{self.size:2d}/{stride:>3}"


@register("maxpool")
class Maxpool(_Window):
    type = "max"
    layer_type = "maxpool"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self._geometry(s, ctx, allow_depth=True)
        self.maxpool_zero_nonmax = s.get_int("maxpool_zero_nonmax", 0)

    def forward(self, x, state):
        n = x.shape[0]
        if self.antialiasing:
            return Layer.forward(self, x, state)  # not implemented: says so with file:line
        if self.maxpool_depth:
            # max over channels g, g+out_c, g+2*out_c, ... at each pixel (on the host)
            xs = state.backend.to_numpy(x).reshape(n, self.c, self.h, self.w)
            out = [xs[:, g::self.out_c].max(axis=1) for g in range(self.out_c)]
            return state.host_result(self, np.stack(out, axis=1))
        out = state.output_buffer(self, self.out_shape(n))
        xin = x.reshape(n, self.c, self.h, self.w)
        if state.train:
            self._indexes = state.output_buffer(self, out.shape, "indexes", np.int32)
            state.backend.maxpool_train(xin, out, self._indexes, self.size, self.stride_y,
                                        self.stride_x, self.pad)
        else:
            state.backend.maxpool(xin, out, self.size, self.stride_y, self.stride_x, self.pad)
        return out

    def backward(self, state):
        dx = self.input_delta(state)
        if dx is None:
            return
        delta = state.deltas[self.index]
        if self.maxpool_depth:
            B = state.backend
            x = state.outputs[self.index - 1] if self.index else state.input
            xs = B.to_numpy(x).reshape(x.shape[0], self.c, self.h, self.w)
            d = B.to_numpy(delta)
            part = np.zeros(xs.shape, np.float32)
            for g in range(self.out_c):
                pick = xs[:, g::self.out_c].argmax(axis=1)[:, None]
                np.put_along_axis(part[:, g::self.out_c], pick, d[:, g:g + 1], axis=1)
            state.add_host_delta(dx, part)
            return
        state.backend.maxpool_backward(delta, self._indexes,
                                       dx.reshape(dx.shape[0], self.c, self.h, self.w))


@register("local_avgpool")
class LocalAvgpool(_Window):
    type = "avg"
    layer_type = "local_avgpool"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self._geometry(s, ctx, allow_depth=False)

    def forward(self, x, state):
        n = x.shape[0]
        out = state.output_buffer(self, self.out_shape(n))
        state.backend.local_avgpool(x.reshape(n, self.c, self.h, self.w), out, self.size,
                                    self.stride_y, self.stride_x, self.pad)
        return out

    def backward(self, state):
        dx = self.input_delta(state)
        if dx is not None:
            state.backend.local_avgpool_backward(
                state.deltas[self.index], dx.reshape(dx.shape[0], self.c, self.h, self.w),
                self.size, self.stride_y, self.stride_x, self.pad)


@register("avgpool")
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
