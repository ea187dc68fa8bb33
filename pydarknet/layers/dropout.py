"""[dropout]: random dropout while training (or DropBlock), the identity at inference."""

import numpy as np

from .base import Layer
from .registry import register

@register("dropout")
class Dropout(Layer):
    """At inference the identity (Darknet shares the previous layer's output buffer)."""
    type = "dropout"
    layer_type = "dropout"
    shares_input_delta = True

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.probability = s.get_float("probability", 0.2)
        self.dropblock = s.get_int("dropblock", 0)
        self.dropblock_size_rel = s.get_float("dropblock_size_rel", 0)
        self.dropblock_size_abs = int(s.get_float("dropblock_size_abs", 0))
        # Darknet's parse_dropout: an absolute size at most the input's; DropBlock without a
        # size takes 7; with both sizes the absolute one
        if self.dropblock_size_abs > ctx.w or self.dropblock_size_abs > ctx.h:
            self.dropblock_size_abs = min(ctx.w, ctx.h)
        if self.dropblock and not self.dropblock_size_rel and not self.dropblock_size_abs:
            self.dropblock_size_abs = 7
        if self.dropblock_size_rel and self.dropblock_size_abs:
            self.dropblock_size_rel = 0.0
        if not 0 <= self.probability < 1:
            raise s.error(f"probability must be in [0, 1), found {self.probability}",
                          "probability")
        self.inputs = self.outputs = ctx.inputs
        self.out_w, self.out_h, self.out_c = ctx.w, ctx.h, ctx.c
        if self.dropblock:   # Darknet sets the input geometry only for DropBlock
            self.w, self.h, self.c = ctx.w, ctx.h, ctx.c
            if not (self.w > 0 and self.h > 0 and self.c > 0):
                raise s.error("DropBlock needs an image input (w, h, c > 0)", "dropblock")

    def forward(self, x, state):
        if not state.train or self.probability == 0:
            self._mask = None
            return x.reshape(self.out_shape(x.shape[0]))
        if self.dropblock:
            return self._dropblock(x, state)
        self._backward_mask = None
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
            self.pass_delta_unchanged(state)
        else:
            name = "mask" if self._backward_mask is None else "backward_mask"
            mask = state.output_buffer(self, self._mask.shape, name)
            B.sam_backward(state.deltas[self.index], mask, None, dx, None)

    def _dropblock(self, x, state):
        """AB's GPU DropBlock (forward_dropout_layer_gpu): the probability and the block size
        grow with the iteration up to 85% of max_batches; in each channel of each image, of
        the places whose uniform draw is below probability / block^2 the one with the lowest
        draw starts a block (moved inside the image) that is zeroed; each image is then scaled
        by 1 / (1 - its dropped fraction). The backward zeroes the dropped places' gradient,
        unscaled, as Darknet's. The draws come from the network's generator."""
        n = x.shape[0]
        w, h, c = self.w, self.h, self.c
        limit = np.float32(state.max_batches * 0.85)
        it = state.iteration
        mult = np.float32(it) / limit if it < limit else np.float32(1)
        prob = np.float32(self.probability) * mult
        if self.dropblock_size_rel:
            bw = int(np.float32(self.dropblock_size_rel) * w * mult)
            bh = int(np.float32(self.dropblock_size_rel) * h * mult)
        else:
            bw = bh = int(self.dropblock_size_abs * mult)
        block = min(min(max(1, bw), w), min(max(1, bh), h))
        block_prob = prob / np.float32(block * block)
        draws = state.rng.random((n, c, h * w), dtype=np.float32)
        lowest = draws.argmin(axis=2)                                            # [n, c]
        chosen = np.take_along_axis(draws, lowest[..., None], 2)[..., 0] < block_prob
        keep = np.ones((n, c, h, w), np.float32)
        bx, by = lowest % w, lowest // w
        bx = np.where(bx > w - block, bx - (w - block), bx).clip(0, w - block)
        by = np.where(by > h - block, by - (h - block), by).clip(0, h - block)
        for b, f in zip(*np.nonzero(chosen)):
            keep[b, f, by[b, f]:by[b, f] + block, bx[b, f]:bx[b, f] + block] = 0
        dropped = chosen.sum(axis=1).astype(np.float32) * np.float32(block * block)
        scale = np.float32(1) / (np.float32(1) - dropped / np.float32(self.outputs))
        self._mask = (keep * scale[:, None, None, None]).reshape(x.shape)
        self._backward_mask = keep.reshape(x.shape)
        state.host_result(self, self._backward_mask, "backward_mask")
        mask = state.host_result(self, self._mask, "mask")
        out = state.output_buffer(self, self.out_shape(n))
        state.backend.sam(mask, x, out)
        return out

    def fields(self):
        return {"probability": self.probability}
