"""[local_avgpool] / [local_avg]: average pooling over a window."""

from .pool_window import PoolWindow
from .registry import register

@register("local_avgpool", aliases=("local_avg",))
class LocalAvgpool(PoolWindow):
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
