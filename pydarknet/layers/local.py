"""[local]: locally connected layer (unshared convolution weights per output position)."""

import numpy as np

from .activation import read_activation
from .base import Layer, activate_output
from .registry import register


@register("local")
class Local(Layer):
    type = "local"
    layer_type = "local"
    trainable = ("weights", "biases")
    loss_scale_undone = None

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.n = s.get_int("filters", 1)
        self.size = s.get_int("size", 1)
        self.stride = s.get_int("stride", 1)
        self.pad = s.get_int("pad", 0)   # pixels, as Darknet's im2col takes it
        self.activation = read_activation(s, "activation", "logistic")
        if min(self.n, self.size, self.stride) < 1:
            raise s.error("filters, size and stride must be positive integers", "filters")
        if not (ctx.w and ctx.h and ctx.c):
            raise s.error("the layer before a local layer must output an image")
        self.w, self.h, self.c = ctx.w, ctx.h, ctx.c
        reach = 1 if self.pad else self.size
        self.out_h = (self.h - reach) // self.stride + 1
        self.out_w = (self.w - reach) // self.stride + 1
        if self.pad < 0:
            raise s.error(f"pad must be >= 0, found {self.pad}", "pad")
        if self.out_h < 1 or self.out_w < 1:
            raise s.error(f"output would be empty ({self.out_w}x{self.out_h}): input "
                          f"{self.w}x{self.h} is too small for size={self.size}", "size")
        # Darknet's im2col pads by pad pixels whatever the size; where that gives another
        # number of positions than the output's, Darknet writes past its column buffer
        span = 2 * self.pad - self.size
        if ((self.h + span) // self.stride + 1, (self.w + span) // self.stride + 1) != (
                self.out_h, self.out_w):
            raise s.error(f"pad={self.pad} with size={self.size} gives Darknet's im2col "
                          f"another number of positions than the output's "
                          f"{self.out_w}x{self.out_h}; use pad=0"
                          f"{f' or pad={self.size // 2}' if self.size % 2 else ''}", "pad")
        self.out_c = self.n
        self.outputs = self.out_w * self.out_h * self.out_c
        self.inputs = self.w * self.h * self.c

    def param_shapes(self):
        locations = self.out_w * self.out_h
        return [("biases", (self.outputs,)),
                ("weights", (locations, self.n, self.c * self.size * self.size))]

    def init_params(self, rng):
        super().init_params(rng)
        scale = np.sqrt(2.0 / (self.size * self.size * self.c))
        w = self.params["weights"]
        w[...] = scale * rng.uniform(-1, 1, w.shape)

    def _columns(self, xh):
        """im2col of every image: [n, c*k*k, out_h*out_w] (rows c, ky, kx as Darknet's)."""
        n, k, p, s = xh.shape[0], self.size, self.pad, self.stride
        xp = np.pad(xh.reshape(n, self.c, self.h, self.w), ((0, 0), (0, 0), (p, p), (p, p)))
        cols = np.empty((n, self.c, k, k, self.out_h, self.out_w), np.float32)
        for ky in range(k):
            for kx in range(k):
                cols[:, :, ky, kx] = xp[:, :, ky:ky + s * self.out_h:s, kx:kx + s * self.out_w:s]
        return cols.reshape(n, self.c * k * k, self.out_h * self.out_w)

    def forward(self, x, state):
        n = x.shape[0]   # on the host
        B = state.backend
        cols = self._columns(B.to_numpy(x))
        # weights[j] is the [filters, c*k*k] matrix of output position j
        out = np.einsum("jfk,nkj->nfj", B.to_numpy(self.params["weights"]), cols, optimize=True)
        out = out.reshape(n, -1) + B.to_numpy(self.params["biases"])
        out = state.host_result(self, out.reshape(self.out_shape(n)))
        if state.train:
            self._input = x
        return activate_output(self, state, out)

    def backward(self, state):
        """backward_local_layer: bias and per-position weight gradients; the input's gradient
        through col2im, added (Darknet's col2im_cpu adds)."""
        B = state.backend
        delta = state.deltas[self.index]
        B.gradient(delta, state.outputs[self.index], self.activation, self._act_input)
        n = delta.shape[0]
        d = B.to_numpy(delta).reshape(n, self.n, self.out_h * self.out_w)
        state.add_host_delta(self.grads["biases"], d.reshape(n, -1).sum(axis=0))
        cols = self._columns(B.to_numpy(self._input))
        state.add_host_delta(self.grads["weights"],
                             np.einsum("nfj,nkj->jfk", d, cols, optimize=True))
        dx = self.input_delta(state)
        if dx is None:
            return
        dcols = np.einsum("jfk,nfj->nkj", B.to_numpy(self.params["weights"]), d, optimize=True)
        k, p, s = self.size, self.pad, self.stride
        dcols = dcols.reshape(n, self.c, k, k, self.out_h, self.out_w)
        dxp = np.zeros((n, self.c, self.h + 2 * p, self.w + 2 * p), np.float32)
        for ky in range(k):
            for kx in range(k):
                dxp[:, :, ky:ky + s * self.out_h:s, kx:kx + s * self.out_w:s] += dcols[:, :, ky, kx]
        state.add_host_delta(dx, dxp[:, :, p:p + self.h, p:p + self.w])
