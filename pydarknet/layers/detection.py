"""[detection]: YOLOv1 detection head (its loss: pydarknet.layers.detection_loss)."""

from .base import HostLoss, Layer
from ..host_math import softmax_rows
from .registry import register

@register("detection")
class Detection(HostLoss, Layer):
    type = "detection"
    layer_type = "detection"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.coords = s.get_int("coords", 1)
        self.classes = s.get_int("classes", 1)
        self.rescore = s.get_int("rescore", 0)
        self.num = s.get_int("num", 1)
        self.side = s.get_int("side", 7)
        self.inputs = self.outputs = ctx.inputs
        self.w = self.h = self.side   # Darknet sets only w and h here
        expected = self.side * self.side * ((1 + self.coords) * self.num + self.classes)
        if expected != ctx.inputs:
            raise s.error(f"expects side*side*((1+coords)*num+classes) = {expected} inputs, the "
                          f"previous layer outputs {ctx.inputs}", "side")
        self.softmax = s.get_int("softmax", 0)
        self.sqrt = s.get_int("sqrt", 0)
        self.max_boxes = s.get_int("max", 200)
        self.forced = s.get_int("forced", 0)
        self.reorg = s.get_int("reorg", 0)
        for key, default in (("coord_scale", 1.0), ("object_scale", 1.0), ("noobject_scale", 1.0),
                             ("class_scale", 1.0), ("jitter", 0.2), ("resize", 1.0),
                             ("random", 0.0)):
            setattr(self, key, s.get_float(key, default))

    def check_trainable(self):
        super().check_trainable()
        if self.coords != 4:
            raise self.refuse_training("coords", "a box of other than 4 numbers",
                                       "Darknet's detection loss reads 4: set coords=4")

    def forward(self, x, state):
        n = x.shape[0]   # on the host
        out = state.backend.to_numpy(x).reshape(n, -1).copy()
        if self.softmax:
            k = self.side * self.side * self.classes
            out[:, :k] = softmax_rows(out[:, :k].reshape(n, -1, self.classes)).reshape(n, k)
        self.cost = None
        if state.train and state.truth is not None:
            from .detection_loss import detection_loss
            self.run_loss(state, detection_loss, out, state.truth, state.seen, state.rng)
        return state.host_result(self, out.reshape(self.out_shape(n)))
