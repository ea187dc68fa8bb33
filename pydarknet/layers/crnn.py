"""[crnn]: convolutional recurrent layer (crnn.train.cfg, yolov3-tiny_occlusion_track.cfg).

[rnn] with three convolutions instead of [connected] layers (input -> hidden, hidden -> hidden
"self", hidden -> output), each with its own bias, batch norm and weights in the .weights
file (in that order), as AB's forward_crnn_layer: at each time step the state becomes
input_conv(x) + self_conv(state) (+ the old state with ``shortcut=1``) and the output is
output_conv(state). Time steps, the state carried from pass to pass (a video's frames:
``reset_state`` starts again) and training through time are [rnn]'s (pydarknet.layers.recurrent).
The convolutions must keep the size (stride 1, "same" padding), since the state feeds the
self convolution.
"""

from .activation import read_activation
from .recurrent import ConvGate, Recurrent
from .registry import register
from .rnn import Rnn

PARTS = ("input", "self", "output")

def _conv_out(size_in, size, stride, padding):
    return (size_in + 2 * padding - size) // stride + 1


@register("crnn")
class Crnn(Rnn):
    type = "crnn"
    layer_type = "crnn"

    def __init__(self, s, ctx):
        Recurrent.__init__(self, s, ctx)
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
        self.gates = [ConvGate(self, part, cin, cout, self.activation)
                      for part, (cin, cout) in zip(PARTS, ((self.c, hidden), (hidden, hidden),
                                                           (hidden, out_filters)))]
        self.input_gate, self.self_gate, self.output_gate = self.gates
        self.finish()

    def forward(self, x, state):
        if (self.out_h, self.out_w) != (self.h, self.w) or self.xnor:
            raise self.section.error(
                f"layer {self.index}: a [crnn] runs here only with convolutions that keep "
                f"the size (stride=1, pad=1; Darknet asserts it) and without xnor")
        return super().forward(x, state)

    def describe(self):
        return ""

    def fields(self):
        return {}
