"""Layers pydarknet knows but does not run: recurrent and contrastive ones.

[crnn] and [contrastive] build (so that their layer table matches Darknet's) and fail with a
clear message when run; [rnn], [gru], [lstm], [conv_lstm] and [history] fail when built.
"""

from ..errors import NotSupportedError
from .activation import read_activation
from .base import Layer, register


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
        s.get_int("dilation", 1)
        pad = s.get_int("pad", 0)
        padding = size // 2 if pad else s.get_int("padding", 0)
        out_filters = s.get_int("output", 1)
        hidden = s.get_int("hidden", 1)
        groups = s.get_int("groups", 1)
        self.activation = read_activation(s, "activation", "logistic")
        self.batch_normalize = s.get_int("batch_normalize", 0)
        s.get_int("xnor", 0)
        s.get_int("shortcut", 0)
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


@register("contrastive")
class Contrastive(Layer):
    type = "contrastive"
    layer_type = "contrastive"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.classes = s.get_int("classes", 1000)
        self.yolo_layer = s.get_int("yolo_layer", 0)
        self.temperature = s.get_float("temperature", 1.0)
        self.cls_normalizer = s.get_float("cls_normalizer", 1.0)
        self.max_delta = s.get_float("max_delta", 3.4028234663852886e38)
        self.contrastive_neg_max = s.get_int("contrastive_neg_max", 3)
        self.w, self.h, self.c = ctx.w, ctx.h, ctx.c
        self.inputs = self.outputs = ctx.inputs


class _Recurrent(Layer):
    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        raise NotSupportedError(
            f"{s.path}:{s.line}: [{s.name}]: recurrent layers (rnn, gru, lstm, conv_lstm, "
            f"history) are not supported by pydarknet")


for _kind in ("rnn", "gru", "lstm", "conv_lstm", "history"):
    register(_kind)(_Recurrent)
