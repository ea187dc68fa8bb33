"""[normalization] / [lrn]: Darknet's local response normalisation across channels,
out = x * norms^-beta with norms = kappa + alpha * (a window sum of squared channels).

Darknet builds the window sums by a running recurrence (forward_normalization_layer): channel
0 starts from channels 0 .. size/2-1, and each next channel adds channel k + size/2 and drops
channel k - (size-1)/2 - 1. That leaves channel size/2 out of every window until it is
dropped (then subtracted): the sums are Darknet's, not the textbook LRN's. The recurrence
runs here as Darknet runs it, in float32 and in its order (``window_sums``): a running sum
keeps the rounding of every large square it has dropped, which a direct sum of the same
window (``window_matrix``, the ONNX export's 1x1 convolution) would not.
Backward is Darknet's: the input's delta is the output's times norms^-beta (it leaves out the
derivative of norms, as Darknet's "approximate" backward does), added rather than written.
"""

import numpy as np

from .base import Layer
from .registry import register


def window_matrix(c, size):
    """[c, c] matrix M (entries 0, 1 or -1) with norms = kappa + alpha * M @ squares, as
    Darknet's recurrence sums them (the recurrence run on each channel alone)."""
    one_hot = np.eye(c, dtype=np.float32).reshape(c, c, 1, 1)
    return window_sums(one_hot, size, 0.0, 1.0)[:, :, 0, 0].T.astype(np.float64)


def window_sums(squares, size, kappa, alpha):
    """kappa + alpha * Darknet's running window sums of ``squares`` [N, C, H, W]: float32,
    channel after channel, each addition in Darknet's order."""
    kappa, alpha = np.float32(kappa), np.float32(alpha)
    c = squares.shape[1]
    norms = np.empty_like(squares)
    norms[:, 0] = kappa
    for k in range(size // 2):
        norms[:, 0] += alpha * squares[:, k]
    for k in range(1, c):
        norms[:, k] = norms[:, k - 1]
        prev, nxt = k - (size - 1) // 2 - 1, k + size // 2
        if prev >= 0:
            norms[:, k] += -alpha * squares[:, prev]
        if nxt < c:
            norms[:, k] += alpha * squares[:, nxt]
    return norms


@register("normalization", aliases=("lrn",))
class Normalization(Layer):
    type = "normalization"
    layer_type = "normalization"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.alpha = s.get_float("alpha", 0.0001)
        self.beta = s.get_float("beta", 0.75)
        self.kappa = s.get_float("kappa", 1.0)
        self.size = s.get_int("size", 5)
        if self.size < 1:
            raise s.error(f"size must be a positive integer, found {self.size}", "size")
        if not (ctx.w and ctx.h and ctx.c):
            raise s.error("the layer before a normalization layer must output an image")
        if self.size // 2 > ctx.c:
            raise s.error(f"size={self.size} reaches past the input's {ctx.c} channels (Darknet "
                          f"starts from channels 0 .. size/2-1 and reads past its buffer): use "
                          f"size <= {2 * ctx.c + 1}", "size")
        self.w = self.out_w = ctx.w
        self.h = self.out_h = ctx.h
        self.c = self.out_c = ctx.c
        self.inputs = self.outputs = ctx.w * ctx.h * ctx.c

    def _scale(self, x):
        """norms^-beta for input x [N, C, H, W] (float32, Darknet's order of operations)."""
        norms = window_sums(x * x, self.size, self.kappa, self.alpha)
        return np.power(norms, np.float32(-self.beta), dtype=np.float32)

    def forward(self, x, state):
        n = x.shape[0]
        xs = state.backend.to_numpy(x).reshape(n, self.c, self.h, self.w)
        scale = self._scale(xs)
        if state.train:
            self._scale_kept = scale
        return state.host_result(self, xs * scale)

    def backward(self, state):
        dx = self.input_delta(state)
        if dx is None:
            return
        delta = state.backend.to_numpy(state.deltas[self.index])
        state.add_host_delta(dx, delta.reshape(self._scale_kept.shape) * self._scale_kept)

    def fields(self):
        return {"size": self.size, "alpha": self.alpha, "beta": self.beta, "kappa": self.kappa}
