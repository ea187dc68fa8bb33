"""[local]: locally connected layer (unshared convolution weights per output position)."""

import numpy as np

from .activation import read_activation
from .base import Layer
from .registry import register


@register("local")
class Local(Layer):
    type = "local"
    layer_type = "local"

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

    def forward(self, x, state):
        n, k = x.shape[0], self.size   # on the host (inference only)
        p = self.pad
        xh = state.backend.to_numpy(x)
        xp = np.pad(xh.reshape(n, self.c, self.h, self.w), ((0, 0), (0, 0), (p, p), (p, p)))
        cols = np.empty((n, self.c, k, k, self.out_h, self.out_w), np.float32)
        for ky in range(k):
            for kx in range(k):
                cols[:, :, ky, kx] = xp[:, :, ky:ky + self.stride * self.out_h:self.stride,
                                        kx:kx + self.stride * self.out_w:self.stride]
        cols = cols.reshape(n, self.c * k * k, self.out_h * self.out_w)
        # weights[j] is the [filters, c*k*k] matrix of output position j
        B = state.backend
        out = np.einsum("jfk,nkj->nfj", B.to_numpy(self.params["weights"]), cols, optimize=True)
        out = out.reshape(n, -1) + B.to_numpy(self.params["biases"])
        out = state.host_result(self, out.reshape(self.out_shape(n)))
        state.backend.activate(out, self.activation)
        return out
