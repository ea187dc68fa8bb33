"""Darknet's ``antialiasing=`` in [convolutional] and [maxpool] (AB's blur pooling): the layer
runs at stride 1, then a fixed blur, a depthwise convolution with the layer's strides, gives
the output: 3x3 [1 2 1]x[1 2 1]/16 padded by 1 (antialiasing=1), or a 2x2 box unpadded
(antialiasing=2). The blur is not trained and not in the .weights file, as in Darknet."""

import numpy as np


class Blur:
    """The blur after a layer of output [c, h, w] at stride 1."""

    def __init__(self, kind, c, h, w, stride_x, stride_y):
        self.size, self.pad = (2, 0) if kind == 2 else (3, 1)
        self.c, self.h, self.w = c, h, w
        self.stride_x, self.stride_y = stride_x, stride_y
        self.out_h = (h + 2 * self.pad - self.size) // stride_y + 1
        self.out_w = (w + 2 * self.pad - self.size) // stride_x + 1
        taps = np.ones(2) / 2 if kind == 2 else np.array([1.0, 2.0, 1.0]) / 4
        kernel = np.outer(taps, taps).astype(np.float32)
        self.weights = np.ascontiguousarray(
            np.broadcast_to(kernel, (c, 1, self.size, self.size)))
        self._input = None
        self._on = None      # (backend, its copy of the weights): made once, not every pass

    def input_shape(self, n):
        """The shape of the layer's own (stride 1) result, the blur's input."""
        return (n, self.c, self.h, self.w)

    def _geometry(self):
        return self.stride_y, self.stride_x, self.pad, self.pad, 1, self.c

    def _weights(self, state):
        if self._on is None or self._on[0] is not state.backend:
            self._on = (state.backend, state.backend.from_numpy(self.weights))
        return self._on[1]

    def forward(self, state, layer, x):
        """The layer's output: ``x`` (its stride-1 result) blurred."""
        out = state.output_buffer(layer, layer.out_shape(x.shape[0]))
        state.backend.conv2d(x, self._weights(state), out, *self._geometry())
        self._input = x if state.train else None
        return out

    def backward(self, state, layer, delta):
        """The gradient at the stride-1 result from the gradient at the output."""
        B = state.backend
        dx = state.output_buffer(layer, self._input.shape, "blur_delta")
        B.fill(dx, 0)
        dw = state.output_buffer(layer, self.weights.shape, "blur_weight_grad")
        B.conv2d_backward(self._input, self._weights(state), delta, dx, dw,
                          *self._geometry())
        return dx
