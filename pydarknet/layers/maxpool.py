"""[maxpool] / [max]: max pooling (or, with maxpool_depth, max over channel groups)."""

import numpy as np

from .pool_window import PoolWindow
from .registry import register

@register("maxpool", aliases=("max",))
class Maxpool(PoolWindow):
    type = "max"
    layer_type = "maxpool"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self._geometry(s, ctx, allow_depth=True)
        # AB's GPU build: keep only the values that are their own window's maximum (a
        # non-maximum suppression inside the feature map); the output is the input's shape
        self.maxpool_zero_nonmax = s.get_int("maxpool_zero_nonmax", 0)
        if self.maxpool_zero_nonmax and (self.maxpool_depth or self.antialiasing or (
                self.out_c, self.out_h, self.out_w) != (self.c, self.h, self.w)):
            raise s.error(f"maxpool_zero_nonmax=1 compares each output with the input at the "
                          f"same place: it needs an output the input's size (stride=1, "
                          f"padding=size-1, no maxpool_depth or antialiasing), found "
                          f"{self.out_w}x{self.out_h}x{self.out_c} from "
                          f"{self.w}x{self.h}x{self.c}", "maxpool_zero_nonmax")

    def forward(self, x, state):
        y = self._pool(x, state)
        if self.maxpool_zero_nonmax:    # on the host: a rare option
            B = state.backend
            values = np.array(B.to_numpy(y))
            values[values != B.to_numpy(x).reshape(values.shape)] = 0
            B.copy_from_numpy(y, values)
        if self.blur:
            return self.blur.forward(state, self, y)
        return y

    def _pool(self, x, state):
        """The pooling itself (at stride 1 when a blur follows)."""
        n = x.shape[0]
        name = "blur_input" if self.blur else "output"
        if self.maxpool_depth:
            # max over channels g, g+out_c, g+2*out_c, ... at each pixel (on the host)
            xs = state.backend.to_numpy(x).reshape(n, self.c, self.h, self.w)
            out = [xs[:, g::self.out_c].max(axis=1) for g in range(self.out_c)]
            return state.host_result(self, np.stack(out, axis=1), name)
        shape = self.blur.input_shape(n) if self.blur else self.out_shape(n)
        out = state.output_buffer(self, shape, name)
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
        if self.blur:
            delta = self.blur.backward(state, self, delta)
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
        if self.maxpool_zero_nonmax:
            # Darknet's backward, on this layer's share only: the pooled gradient, then 0
            # wherever the input was not its own window's maximum (AB's GPU build zeroes the
            # whole input delta there, others' shares included)
            B = state.backend
            n = dx.shape[0]
            part = state.output_buffer(self, (n, self.c, self.h, self.w), "nonmax_delta")
            B.fill(part, 0)
            B.maxpool_backward(delta, self._indexes, part)
            own = B.to_numpy(self._indexes).reshape(-1) == np.arange(part.size)
            state.add_host_delta(dx, np.where(own, B.to_numpy(part).reshape(-1), 0))
            return
        state.backend.maxpool_backward(delta, self._indexes,
                                       dx.reshape(dx.shape[0], self.c, self.h, self.w))
