"""[crnn]: convolutional recurrent layer (yolov3-tiny_occlusion_track.cfg).

Three convolutions (input -> hidden, hidden -> hidden "self", hidden -> output), each with its
own bias, batch norm and weights in the .weights file (in that order). At inference, as AB's
forward_crnn_layer with one time step: the state becomes input_conv(x) + self_conv(state)
(+ the old state with ``shortcut=1``) and the output is output_conv(state). The state
carries over from one forward pass to the next (video frames); it starts at 0 and again
whenever the batch size changes, or after :meth:`reset_state`. Training is not implemented.
"""

import numpy as np

from .activation import read_activation
from .base import Layer
from .registry import register

PARTS = ("input", "self", "output")

def _conv_out(size_in, size, stride, padding):
    return (size_in + 2 * padding - size) // stride + 1


@register("crnn")
class Crnn(Layer):
    type = "crnn"
    layer_type = "crnn"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        size = s.get_int("size", 3)
        stride = s.get_int("stride", 1)
        self.dilation = s.get_int("dilation", 1)
        pad = s.get_int("pad", 0)
        padding = size // 2 if pad else s.get_int("padding", 0)
        out_filters = s.get_int("output", 1)
        hidden = s.get_int("hidden", 1)
        groups = s.get_int("groups", 1)
        for key, value in (("size", size), ("stride", stride), ("dilation", self.dilation),
                           ("output", out_filters), ("hidden", hidden), ("groups", groups)):
            if value < 1:
                raise s.error(f"{key} must be a positive integer, found {value}", key)
        if padding < 0:
            raise s.error(f"padding must be >= 0, found {padding}", "padding")
        if not (ctx.w and ctx.h and ctx.c):
            raise s.error("the layer before a crnn layer must output an image")
        if ctx.c % groups or hidden % groups or out_filters % groups:
            raise s.error(f"groups={groups} must divide the input's {ctx.c} channels, hidden "
                          f"and output", "groups")
        self.size, self.stride, self.padding, self.groups = size, stride, padding, groups
        self.hidden, self.out_filters = hidden, out_filters
        self.activation = read_activation(s, "activation", "logistic")
        self.batch_normalize = s.get_int("batch_normalize", 0)
        self.xnor = s.get_int("xnor", 0)
        self.shortcut = s.get_int("shortcut", 0)
        self.w, self.h, self.c = ctx.w, ctx.h, ctx.c
        oh = _conv_out(self.h, size, stride, padding)
        ow = _conv_out(self.w, size, stride, padding)
        if oh < 1 or ow < 1:
            raise s.error(f"output would be empty ({ow}x{oh}): input {self.w}x{self.h} is too "
                          f"small for size={size}", "size")
        self.out_w, self.out_h, self.out_c = ow, oh, out_filters
        self.inputs = self.w * self.h * self.c
        self.outputs = ow * oh * out_filters
        # three convolutions: input->hidden, hidden->hidden (self), hidden->output
        flops = 0.0
        for cin, cout in ((self.c, hidden), (hidden, hidden), (hidden, out_filters)):
            flops += 2.0 * (cin // groups) * cout * size * size * oh * ow
        self.bflops = flops / 1e9
        self._state = None

    def _part_channels(self):
        return {"input": (self.c, self.hidden), "self": (self.hidden, self.hidden),
                "output": (self.hidden, self.out_filters)}

    def param_shapes(self):
        shapes = []
        for part, (cin, cout) in self._part_channels().items():
            shapes.append((f"{part}_biases", (cout,)))
            if self.batch_normalize:
                shapes += [(f"{part}_scales", (cout,)), (f"{part}_rolling_mean", (cout,)),
                           (f"{part}_rolling_variance", (cout,))]
            shapes.append((f"{part}_weights",
                           (cout, cin // self.groups, self.size, self.size)))
        return shapes

    def init_params(self, rng):
        super().init_params(rng)
        for part, (cin, _) in self._part_channels().items():
            w = self.params[f"{part}_weights"]
            w[...] = np.sqrt(2.0 / (self.size * self.size * cin / self.groups)) * \
                rng.uniform(-1, 1, w.shape)
            if self.batch_normalize:
                self.params[f"{part}_scales"][...] = 1
                self.params[f"{part}_rolling_variance"][...] = 1

    def check_trainable(self):
        super().check_trainable()
        raise self.section.error(f"layer {self.index}: training [crnn] layers is not "
                                 f"implemented (inference is)")

    def reset_state(self):
        """Start the next forward pass from a zero state (a new video)."""
        self._state = None

    def _conv(self, state, part, x, out):
        p = self.params
        pad = self.padding * self.dilation
        bn = ((p[f"{part}_scales"], p[f"{part}_rolling_mean"], p[f"{part}_rolling_variance"])
              if self.batch_normalize else ())
        return state.backend.conv2d_activate_inference(
            x, p[f"{part}_weights"], out, self.stride, self.stride, pad, pad, self.dilation,
            self.groups, p[f"{part}_biases"], self.activation, *bn)

    def forward(self, x, state):
        if state.train:
            raise self.section.error(f"layer {self.index}: training [crnn] layers is not "
                                     f"implemented (inference is)")
        if (self.out_h, self.out_w) != (self.h, self.w) or self.xnor:
            raise self.section.error(
                f"layer {self.index}: a [crnn] runs here only with convolutions that keep "
                f"the size (stride=1, pad=1; Darknet asserts it) and without xnor")
        B = state.backend
        n = x.shape[0]
        hidden_shape = (n, self.hidden, self.out_h, self.out_w)
        if self._state is None or tuple(self._state.shape) != hidden_shape:
            self._state = B.zeros(hidden_shape)
        x = x.reshape(n, self.c, self.h, self.w)
        from_input = self._conv(state, "input", x, state.output_buffer(self, hidden_shape,
                                                                       "input_out"))
        from_state = self._conv(state, "self", self._state,
                                state.output_buffer(self, hidden_shape, "self_out"))
        new_state = B.zeros(hidden_shape)
        if self.shortcut:
            B.axpy(1.0, self._state, new_state)
        B.axpy(1.0, from_input, new_state)
        B.axpy(1.0, from_state, new_state)
        self._state = new_state
        out = state.output_buffer(self, self.out_shape(n))
        return self._conv(state, "output", new_state, out)
