"""[history]: AB's shift register over time steps (conv_lstm_layer.c's history layer).

Each image's output holds ``history_size`` blocks of its input's channels: its own input,
then the input of the step before, and so on; the blocks reaching before the pass come from
the last pass (carried per stream, as the recurrent layers' state; ``reset_state`` clears
it). With one time step a pass (inference), as AB's: the image's own input, then zeros (AB
copies the whole batch's inputs to the start of the output; pydarknet gives each image its
own, which is AB's at batch 1). Backward gives each input the gradients of every block it
was copied to in the pass (AB's, only its own block's). Host-side numpy: a rare layer.
"""

import numpy as np

from .base import Layer
from .registry import register


@register("history")
class History(Layer):
    type = "history"
    layer_type = "history"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.history_size = s.get_int("history_size", 4)
        if self.history_size < 1:
            raise s.error(f"must be a positive integer, found {self.history_size}",
                          "history_size")
        if not (ctx.w and ctx.h and ctx.c):
            raise s.error("the layer before a history layer must output an image")
        self.steps = max(ctx.net.time_steps, 1)
        self.w = self.out_w = ctx.w
        self.h = self.out_h = ctx.h
        self.c = ctx.c
        self.out_c = ctx.c * self.history_size
        self.inputs = ctx.w * ctx.h * ctx.c
        self.outputs = self.inputs * self.history_size
        self._last = None     # [streams, history_size, inputs]: the last step's output

    def reset_state(self, stream=None):
        if stream is None or self._last is None:
            self._last = None
        else:
            self._last[stream] = 0

    def carried_state(self):
        return None if self._last is None else [self._last.copy()]

    def restore_state(self, arrays, backend):
        self._last = None if arrays is None else np.array(arrays[0], np.float32)

    def _split(self, n):
        if n % self.steps:
            raise self.section.error(
                f"layer {self.index}: a pass of {n} rows is not a whole number of time steps "
                f"({self.steps}, [net] time_steps)")
        return self.steps, n // self.steps

    def forward(self, x, state):
        n = x.shape[0]
        steps, streams = self._split(n)
        hs, m = self.history_size, self.inputs
        xs = state.backend.to_numpy(x).reshape(steps, streams, m)
        out = np.zeros((steps, streams, hs, m), np.float32)
        out[:, :, 0] = xs
        if steps > 1:
            last = self._last
            if last is None or last.shape != (streams, hs, m):
                last = np.zeros((streams, hs, m), np.float32)
            for t in range(steps):
                out[t, :, 1:] = (out[t - 1] if t else last)[:, :hs - 1]
            self._last = out[-1].copy()
        return state.host_result(self, out.reshape(self.out_shape(n)))

    def backward(self, state):
        dx = self.input_delta(state)
        if dx is None:
            return
        steps, streams = self._split(dx.shape[0])
        hs, m = self.history_size, self.inputs
        delta = state.backend.to_numpy(state.deltas[self.index]).reshape(steps, streams, hs, m)
        grad = np.zeros((steps, streams, m), np.float32)
        for k in range(hs if steps > 1 else 1):     # block k at step t is the input of t - k
            grad[:steps - k] += delta[k:, :, k]
        state.add_host_delta(dx, grad)

    def fields(self):
        return {"history_size": self.history_size}
