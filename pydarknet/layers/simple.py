"""Small layers without parameters: [dropout], [upsample], [reorg3d], [reorg], [crop],
[sam], [scale_channels], [empty]."""

import numpy as np

from .activation import read_activation
from .base import Layer, register


@register("dropout")
class Dropout(Layer):
    """At inference the identity (Darknet shares the previous layer's output buffer)."""
    type = "dropout"
    layer_type = "dropout"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.probability = s.get_float("probability", 0.2)
        self.dropblock = s.get_int("dropblock", 0)
        self.dropblock_size_rel = s.get_float("dropblock_size_rel", 0)
        self.dropblock_size_abs = int(s.get_float("dropblock_size_abs", 0))
        if not 0 <= self.probability < 1:
            raise s.error(f"probability must be in [0, 1), found {self.probability}",
                          "probability")
        self.inputs = self.outputs = ctx.inputs
        self.out_w, self.out_h, self.out_c = ctx.w, ctx.h, ctx.c
        if self.dropblock:   # Darknet sets the input geometry only for DropBlock
            self.w, self.h, self.c = ctx.w, ctx.h, ctx.c

    def forward(self, x, state):
        if not state.train or self.probability == 0:
            self._mask = None
            return x.reshape(self.out_shape(x.shape[0]))
        if self.dropblock:
            return Layer.forward(self, x, state)   # not implemented: says so with file:line
        # Darknet: drop where rand < p, scale the kept values by 1/(1-p) (mask on the host:
        # the random numbers come from the network's generator)
        keep = state.rng.random(x.shape, dtype=np.float32) >= np.float32(self.probability)
        self._mask = keep.astype(np.float32) * np.float32(1 / (1 - self.probability))
        mask = state.host_result(self, self._mask, "mask")
        out = state.output_buffer(self, self.out_shape(x.shape[0]))
        state.backend.sam(mask, x, out)
        return out

    def backward(self, state):
        dx = self.input_delta(state)
        if dx is None:
            return
        B = state.backend
        if self._mask is None:
            B.axpy(1, state.deltas[self.index], dx)
        else:
            mask = state.output_buffer(self, self._mask.shape, "mask")
            B.sam_backward(state.deltas[self.index], mask, None, dx, None)

    def fields(self):
        return {"probability": self.probability}


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


def reorg_indices(out_w, out_h, out_c, stride):
    """(in_index, out_index) pairs of Darknet's reorg_cpu for one image."""
    in_c = out_c // (stride * stride)
    k, j, i = np.meshgrid(np.arange(out_c), np.arange(out_h), np.arange(out_w), indexing="ij")
    in_index = i + out_w * (j + out_h * k)
    c2, offset = k % in_c, k // in_c
    w2 = i * stride + offset % stride
    h2 = j * stride + offset // stride
    out_index = w2 + out_w * stride * (h2 + out_h * stride * c2)
    return in_index.ravel(), out_index.ravel()


class _Reorg(Layer):
    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.stride = s.get_int("stride", 1)
        self.reverse = s.get_int("reverse", 0)
        if self.stride < 1:
            raise s.error("stride must be a positive integer", "stride")
        if not (ctx.w and ctx.h and ctx.c):
            raise s.error("the layer before a reorg layer must output an image")
        self.w, self.h, self.c = ctx.w, ctx.h, ctx.c
        st = self.stride
        if self.reverse:
            self.out_w, self.out_h, self.out_c = self.w * st, self.h * st, self.c // (st * st)
        else:
            self.out_w, self.out_h, self.out_c = self.w // st, self.h // st, self.c * st * st
        self.outputs = self.out_w * self.out_h * self.out_c
        self.inputs = self.w * self.h * self.c
        self._index = None

    def _call_geometry(self):
        raise NotImplementedError

    def forward(self, x, state):
        n = x.shape[0]
        if self._index is None:
            self._index = reorg_indices(*self._call_geometry(), self.stride)
        in_index, out_index = self._index   # a gather on the host (YOLOv2-era layers)
        flat = state.backend.to_numpy(x).reshape(n, -1)
        out = np.zeros((n, self.outputs), np.float32)
        if self.reverse:        # reorg_cpu(forward=1): out[out_index] = x[in_index]
            out[:, out_index] = flat[:, in_index]
        else:                   # reorg_cpu(forward=0): out[in_index] = x[out_index]
            out[:, in_index] = flat[:, out_index]
        return state.host_result(self, out.reshape(self.out_shape(n)))

    def backward(self, state):
        dx = self.input_delta(state)
        if dx is None:
            return
        in_index, out_index = self._index   # a permutation: plain scatter on the host
        n = dx.shape[0]
        delta = state.backend.to_numpy(state.deltas[self.index]).reshape(n, -1)
        part = np.zeros((n, dx.size // n), np.float32)
        if self.reverse:
            part[:, in_index] = delta[:, out_index]
        else:
            part[:, out_index] = delta[:, in_index]
        state.add_host_delta(dx, part)

    def fields(self):
        return {"stride": self.stride, "reverse": self.reverse}


@register("reorg3d")
class Reorg(_Reorg):
    """[reorg3d]: space-to-depth (Darknet's REORG)."""
    type = "reorg"
    layer_type = "reorg"

    def _call_geometry(self):
        return self.out_w, self.out_h, self.out_c


@register("reorg")
class ReorgOld(_Reorg):
    """[reorg]: YOLOv2's original reorg, which indexes with the input's own geometry."""
    type = "reorg_old"
    layer_type = "reorg_old"

    def _call_geometry(self):
        return self.w, self.h, self.c


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

    def forward(self, x, state):
        n = x.shape[0]
        dh, dw = (self.h - self.out_h) // 2, (self.w - self.out_w) // 2
        xs = state.backend.to_numpy(x).reshape(n, self.c, self.h, self.w)
        xs = xs[:, :, dh:dh + self.out_h, dw:dw + self.out_w]    # on the host: inference only
        scale, trans = (np.float32(1), np.float32(0)) if self.noadjust else (np.float32(2),
                                                                              np.float32(-1))
        return state.host_result(self, xs * scale + trans)


class _FromLayer(Layer):
    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.from_index = ctx.resolve(s, "from", s.get_int("from"))
        self.activation = read_activation(s, "activation", "linear")
        src = ctx.layers[self.from_index]
        self.w, self.h, self.c = ctx.w, ctx.h, ctx.c
        self.out_w, self.out_h, self.out_c = src.out_w, src.out_h, src.out_c
        self.outputs = self.inputs = self.out_w * self.out_h * self.out_c

    def fields(self):
        return {"from": self.from_index, "activation": self.activation}

    def describe(self):
        return f"{self.from_index}"


@register("scale_channels")
class ScaleChannels(_FromLayer):
    """out = from_layer_output * input, the input holding one scale per channel (or per pixel
    with scale_wh=1)."""
    type = "scale_channels"
    layer_type = "scale_channels"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.scale_wh = s.get_int("scale_wh", 0)
        if self.scale_wh and (self.out_w, self.out_h) != (self.w, self.h):
            raise s.error(f"scale_wh=1 needs equal spatial sizes, found {self.w}x{self.h} and "
                          f"{self.out_w}x{self.out_h}", "from")
        if not self.scale_wh and self.out_c != self.c:
            raise s.error(f"layer {self.from_index} has {self.out_c} channels, the input has "
                          f"{self.c}: they must match", "from")

    def forward(self, x, state):
        n = x.shape[0]
        src = state.outputs[self.from_index].reshape(n, self.out_c, self.out_h, self.out_w)
        out = state.output_buffer(self, self.out_shape(n))
        state.backend.scale_channels(src, x, out, self.scale_wh)
        if state.train:
            self._input = x
        state.backend.activate(out, self.activation)
        return out

    def backward(self, state):
        delta = state.deltas[self.index]
        n = delta.shape[0]
        state.backend.gradient(delta, state.outputs[self.index], self.activation)
        src = state.outputs[self.from_index].reshape(n, self.out_c, self.out_h, self.out_w)
        state.backend.scale_channels_backward(delta, src, self._input,
                                              state.deltas[self.from_index],
                                              self.input_delta(state), self.scale_wh)


@register("sam")
class Sam(_FromLayer):
    """Spatial attention: out = from_layer_output * input, elementwise."""
    type = "sam"
    layer_type = "sam"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        if self.out_c != self.c:
            raise s.error(f"layer {self.from_index} has {self.out_c} channels, the input has "
                          f"{self.c}: they must match", "from")

    def forward(self, x, state):
        out = state.output_buffer(self, self.out_shape(x.shape[0]))
        state.backend.sam(state.outputs[self.from_index], x, out)
        if state.train:
            self._input = x
        state.backend.activate(out, self.activation)
        return out

    def backward(self, state):
        delta = state.deltas[self.index]
        state.backend.gradient(delta, state.outputs[self.index], self.activation)
        state.backend.sam_backward(delta, state.outputs[self.from_index], self._input,
                                   self.input_delta(state), state.deltas[self.from_index])


@register("empty")
class Empty(Layer):
    type = "empty"
    layer_type = "empty"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.w = self.out_w = ctx.w
        self.h = self.out_h = ctx.h
        self.c = self.out_c = ctx.c
        self.inputs = self.outputs = ctx.inputs

    def forward(self, x, state):
        return x

    def backward(self, state):
        dx = self.input_delta(state)
        if dx is not None:
            state.backend.axpy(1, state.deltas[self.index], dx)
