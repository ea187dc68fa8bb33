"""[contrastive]: contrastive-learning loss layer; built (its layer table matches Darknet's), not run."""

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
