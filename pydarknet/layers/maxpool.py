"""[maxpool] / [max]: max pooling (or, with maxpool_depth, max over channel groups)."""

import numpy as np

from ..errors import NotSupportedError
from .pool_window import PoolWindow
from .registry import register

@register("maxpool", aliases=("max",))
class Maxpool(PoolWindow):
    type = "max"
    layer_type = "maxpool"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self._geometry(s, ctx, allow_depth=True)
        self.maxpool_zero_nonmax = s.get_int("maxpool_zero_nonmax", 0)

    def forward(self, x, state):
        n = x.shape[0]
        if self.antialiasing or self.maxpool_zero_nonmax:
            key = "antialiasing" if self.antialiasing else "maxpool_zero_nonmax"
            s = self.section
            raise NotSupportedError(f"{s.path}:{s.options[key].line}: [{s.name}] {key}: layer "
                                    f"{self.index}: {key}=1 is not implemented by pydarknet: "
                                    f"remove it or run the cfg with Darknet")
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
