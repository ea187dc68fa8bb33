"""[contrastive]: contrastive-learning loss layer (yolov4-tiny_contrastive.cfg). At inference
it passes its input on, as AB's GPU build does (its CPU build leaves its output at zeros); the
loss (training) is not implemented."""

from ..errors import NotSupportedError
from .base import Layer
from .registry import register

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

    def forward(self, x, state):
        if state.train:
            raise NotSupportedError(
                f"{self.section.path}:{self.section.line}: [contrastive] layer {self.index}: "
                f"its training loss (contrastive learning) is not implemented; inference is")
        return x.reshape(self.out_shape(x.shape[0]))   # Darknet leaves out_w/h/c at 0
