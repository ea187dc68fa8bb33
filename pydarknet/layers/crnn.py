"""[crnn]: convolutional recurrent layer; built (its layer table matches Darknet's), not run."""

from .activation import read_activation
from .base import Layer
from .registry import register

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
        self.activation = read_activation(s, "activation", "logistic")
        self.batch_normalize = s.get_int("batch_normalize", 0)
        self.xnor = s.get_int("xnor", 0)
        self.shortcut = s.get_int("shortcut", 0)
        self.w, self.h, self.c = ctx.w, ctx.h, ctx.c
        oh = _conv_out(self.h, size, stride, padding)
        ow = _conv_out(self.w, size, stride, padding)
        self.out_w, self.out_h, self.out_c = ow, oh, out_filters
        self.inputs = self.w * self.h * self.c
        self.outputs = ow * oh * out_filters
        # three convolutions: input->hidden, hidden->hidden (self), hidden->output
        flops = 0.0
        for cin, cout in ((self.c, hidden), (hidden, hidden), (hidden, out_filters)):
            flops += 2.0 * (cin // groups) * cout * size * size * oh * ow
        self.bflops = flops / 1e9
