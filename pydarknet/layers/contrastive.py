"""[contrastive]: AB's contrastive-learning layer (yolov4-tiny_contrastive.cfg). It passes its
input on, as AB's GPU build does (its CPU build leaves its output at zeros). In training with a
[yolo] layer (``yolo_layer=``) it adds AB's contrastive loss on the embeddings its input holds
(pydarknet.layers.contrastive_loss) to its input's gradient. Without one (AB's classifier
mode) training is refused: AB's Darknet crashes parsing it."""

from ..host_math import FLT_MAX
from .base import HostLoss, Layer
from .registry import register



@register("contrastive")
class Contrastive(HostLoss, Layer):
    type = "contrastive"
    layer_type = "contrastive"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.classes = s.get_int("classes", 1000)
        self.temperature = s.get_float("temperature", 1.0)
        if self.temperature == 0:     # AB's Darknet stops at the first training pass
            raise s.error("temperature=0: the similarities are divided by it; set a positive "
                          "temperature (1 by default, 0.07 in the paper)", "temperature")
        self.cls_normalizer = s.get_float("cls_normalizer", 1.0)
        self.max_delta = s.get_float("max_delta", FLT_MAX)
        self.contrastive_neg_max = s.get_int("contrastive_neg_max", 3)
        self.time_steps = max(ctx.net.time_steps, 1)
        self.w, self.h, self.c = ctx.w, ctx.h, ctx.c
        self.inputs = self.outputs = ctx.inputs
        ref = s.get_int("yolo_layer", 0)
        self.yolo_layer = ctx.resolve(s, "yolo_layer", ref) if ref else None
        self.n, self.embedding_size = 1, self.c
        self._yolo = None     # what training checks of the [yolo] layer, as built
        if self.yolo_layer is not None:
            yolo = ctx.layers[self.yolo_layer]
            self.n = getattr(yolo, "n", 1)
            self.embedding_size = self.inputs // max(self.n * self.h * self.w, 1)
            self._yolo = dict(name=yolo.section.name, is_yolo=yolo.layer_type == "yolo",
                              w=yolo.w, h=yolo.h, n=self.n,
                              embedding_size=getattr(yolo, "embedding_size", 0))
        self.cost = self.stats = None

    def check_trainable(self):
        super().check_trainable()
        s = self.section
        if self.yolo_layer is None:
            raise s.error(f"layer {self.index}: a [contrastive] layer without yolo_layer= "
                          f"(contrastive learning for classifiers) is not implemented: AB's "
                          f"Darknet crashes on it too (parse_contrastive reads the missing "
                          f"[yolo] layer); point yolo_layer= at the detector's [yolo] layer",
                          "yolo_layer")
        yolo = self._yolo
        if not yolo["is_yolo"]:
            raise s.error(f"layer {self.index}: yolo_layer= must point to a [yolo] layer; layer "
                          f"{self.yolo_layer} is [{yolo['name']}]", "yolo_layer")
        if (self.w, self.h) != (yolo["w"], yolo["h"]) or self.c != self.n * self.embedding_size:
            raise s.error(
                f"layer {self.index}: the input is {self.w}x{self.h}x{self.c} but the [yolo] "
                f"layer {self.yolo_layer} needs its {yolo['w']}x{yolo['h']} grid with "
                f"{self.n} embeddings a cell ({self.n} x embedding size): route the embedding "
                f"layer of that [yolo] (its embedding_layer=) into this one", "yolo_layer")
        if yolo["embedding_size"] != self.embedding_size:
            raise s.error(
                f"layer {self.index}: embedding size {self.embedding_size} differs from the "
                f"[yolo] layer {self.yolo_layer}'s {yolo['embedding_size']} (its "
                f"embedding_layer= filters / {self.n} anchors): both must read the same "
                f"[convolutional] layer (as AB's Darknet requires)", "yolo_layer")

    def forward(self, x, state):
        self.cost = self.stats = None
        out = x.reshape(self.out_shape(x.shape[0]))   # Darknet leaves out_w/h/c at 0
        if state.train and state.truth is not None:
            yolo = state.network.layers[self.yolo_layer]
            labels = (yolo.stats or {}).get("track_labels") if yolo.cost is not None else None
            if labels is None:
                raise self.section.error(
                    f"layer {self.index}: the [yolo] layer {self.yolo_layer} assigned no track "
                    f"ids this pass: contrastive training needs truths with a sixth column "
                    f"(the track id, as pydarknet's loaders give)", "yolo_layer")
            from .contrastive_loss import contrastive_loss
            self.run_loss(state, contrastive_loss, state.backend.to_numpy(x), labels,
                          yolo.stats["class_ids"], self.time_steps)
        return out

    def delta_scale(self, state):
        return getattr(state, "loss_scale", 1.0)    # AB's GPU build: axpy by loss_scale
