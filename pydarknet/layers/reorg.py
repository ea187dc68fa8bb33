"""[reorg3d] and [reorg]: Darknet's space-to-depth reorganisations (REORG, REORG_OLD)."""

import warnings

import numpy as np

from ..cfg import CfgWarning
from .base import Layer
from .registry import register

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
        self._check_geometry(s)

    def _check_geometry(self, s):
        """Refuse what Darknet's reorg_cpu cannot do: it splits the channels it is given into
        stride² parts (division by zero below stride², reads and writes past its buffers for
        a remainder)."""
        st2 = self.stride * self.stride
        call_c = self._call_geometry()[2]
        if call_c < st2 or call_c % st2:
            raise s.error(f"{'reverse=1 ' if self.reverse else ''}reorganises {call_c} "
                          f"channels, which must be a multiple of stride² = {st2} "
                          f"(its input has {self.c} channels)", "stride")

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

    def _check_geometry(self, s):
        super()._check_geometry(s)
        st = self.stride
        if not self.reverse and (self.w % st or self.h % st):
            # reorg_cpu takes rows of out_w x stride values and images of out_w x out_h x
            # out_c: the rest of each row is read as the next row's start, and each image
            # after a batch's first starts inside the one before (tools/darknet_iteration_fuzz
            # --resize: a reorg3d on 41x10 images)
            warnings.warn(f"{s.path}:{s.line}: [reorg3d] stride={st} of a {self.w}x{self.h} "
                          f"input, not multiples of {st}: Darknet reads it as rows of "
                          f"{self.out_w * st} values, and from the second image of a batch on "
                          "partly the image before; pydarknet reads rows as Darknet does but "
                          "each image's own values (a batch of one equals Darknet's)",
                          CfgWarning, stacklevel=2)


@register("reorg")
class ReorgOld(_Reorg):
    """[reorg]: YOLOv2's original reorg, which indexes with the input's own geometry."""
    type = "reorg_old"
    layer_type = "reorg_old"

    def _call_geometry(self):
        return self.w, self.h, self.c

    def _check_geometry(self, s):
        super()._check_geometry(s)
        st = self.stride
        if not self.reverse and (self.w % st or self.h % st):
            raise s.error(f"needs an input whose width and height are multiples of {st} "
                          f"(Darknet writes past its output otherwise); its input is "
                          f"{self.w}x{self.h}", "stride")
