"""[yolo]: YOLOv3/v4 detection head. Forward activates x, y, objectness and classes."""

import warnings

import numpy as np

from ..cfg import CfgWarning
from ..host_math import FLT_MAX
from ..tree import load_class_map
from .base import HostLoss, Layer
from .registry import register

IOU_LOSSES = ("mse", "giou", "diou", "ciou")
IOU_KINDS = ("iou", "giou", "diou", "ciou")
NMS_KINDS = {"default": 0, "greedynms": 1, "diounms": 2, "cornersnms": 3}


class YoloBase(HostLoss, Layer):
    """What [yolo] and [Gaussian_yolo] share: anchors, masks and the loss options."""
    box_entries = 4       # values per anchor before objectness
    default_anchor = 0.5  # Darknet's value for anchors the cfg leaves out
    allowed_nms = ("default", "greedynms", "diounms")

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.classes = s.get_int("classes", 20)
        self.total = s.get_int("num", 1)
        self.max_boxes = s.get_int("max", 200)
        self.mask = s.get_ints("mask", None)
        if self.mask is None:
            self.mask = list(range(self.total))
        if self.classes < 1 or self.total < 1:
            raise s.error("classes and num must be positive integers", "classes")
        anchors = s.get_floats("anchors", [])
        bad = [m for m in self.mask if not 0 <= m < self.total]
        # Darknet builds a mask past num and reads past its anchors there (cspx-p7-mish.cfg
        # lists 20 anchors with num=16 and masks up to 19): pydarknet takes those from the
        # anchors= list; without them it warns, and decoding and training fail
        listed = bool(bad) and min(bad) >= 0 and len(anchors) >= 2 * (max(bad) + 1)
        if bad:
            what = (f"pydarknet takes them from the {len(anchors) // 2} anchors listed"
                    if listed else "they have no anchors")
            warnings.warn(f"{s.path}:{s.options['mask'].line}: [{s.name}] mask entries {bad} are "
                          f"not anchor indexes 0..{self.total - 1} (num={self.total}): Darknet "
                          f"reads past its anchors there; {what}", CfgWarning, stacklevel=2)
        self.n = len(self.mask)
        self.w, self.h = ctx.w, ctx.h
        self.c = self.n * (self.classes + self.box_entries + 1)
        self.out_w, self.out_h, self.out_c = self.w, self.h, self.c
        self.outputs = self.inputs = self.h * self.w * self.c
        self.truth_size = 6
        if self.outputs != ctx.inputs:
            raise s.error(
                f"the previous layer outputs {ctx.w}x{ctx.h}x{ctx.c} but this layer needs "
                f"{self.c} channels = {self.n} masks x (classes {self.classes} + "
                f"{self.box_entries + 1}): set filters={self.c} in the [convolutional] before it",
                "classes")
        self.max_delta = s.get_float("max_delta", FLT_MAX)
        self.counters_per_class = s.get_ints("counters_per_class", None)
        self.label_smooth_eps = s.get_float("label_smooth_eps", 0.0)
        self.scale_x_y = s.get_float("scale_x_y", 1.0)
        self.objectness_smooth = s.get_int("objectness_smooth", 0)
        self.iou_normalizer = s.get_float("iou_normalizer", 0.75)
        self.obj_normalizer = s.get_float("obj_normalizer", 1.0)
        self.cls_normalizer = s.get_float("cls_normalizer", 1.0)
        self.delta_normalizer = s.get_float("delta_normalizer", 1.0)
        loss = s.get_str("iou_loss", "mse")
        self.iou_loss = loss if loss in IOU_LOSSES else "iou"
        kind = s.get_str("iou_thresh_kind", "iou")
        self.iou_thresh_kind = kind if kind in IOU_KINDS else "iou"
        self.beta_nms = s.get_float("beta_nms", 0.6)
        nms = s.get_str("nms_kind", "default")
        self.nms_kind = NMS_KINDS[nms] if nms in self.allowed_nms else 0
        self.jitter = s.get_float("jitter", 0.2)
        self.resize = s.get_float("resize", 1.0)
        self.ignore_thresh = s.get_float("ignore_thresh", 0.5)
        self.truth_thresh = s.get_float("truth_thresh", 1.0)
        self.iou_thresh = s.get_float("iou_thresh", 1.0)
        self.random = s.get_float("random", 0.0)
        self.map_file = s.get_str("map", None)
        count = max(bad) + 1 if listed else self.total
        self.anchors = np.full(count * 2, self.default_anchor, np.float32)
        k = min(len(anchors), count * 2)
        self.anchors[:k] = anchors[:k]

    def check_trainable(self):
        super().check_trainable()
        if self.map_file:      # read now: a bad file stops training before it starts
            load_class_map(self)
        bad = [m for m in self.mask if not 0 <= 2 * m + 1 < len(self.anchors)]
        if bad:     # Darknet trains them with whatever lies past its anchors
            raise self.section.error(
                f"layer {self.index}: mask entries {bad} are not anchor indexes 0..{self.total - 1}"
                f" (num={self.total}): they have no anchors to train; fix mask= or num=", "mask")

    def fields(self):
        return {"classes": self.classes, "num": self.total, "n": self.n, "mask": list(self.mask),
                "anchors": [float(a) for a in self.anchors[:2 * self.total]],
                "max_boxes": self.max_boxes,
                "truth_size": self.truth_size, "scale_x_y": self.scale_x_y,
                "iou_loss": self.iou_loss, "iou_thresh_kind": self.iou_thresh_kind,
                "iou_normalizer": self.iou_normalizer, "obj_normalizer": self.obj_normalizer,
                "cls_normalizer": self.cls_normalizer, "ignore_thresh": self.ignore_thresh,
                "truth_thresh": self.truth_thresh, "iou_thresh": self.iou_thresh,
                "beta_nms": self.beta_nms, "nms_kind": self.nms_kind,
                "new_coords": getattr(self, "new_coords", 0),
                "objectness_smooth": self.objectness_smooth,
                "focal_loss": getattr(self, "focal_loss", 0),
                "label_smooth_eps": self.label_smooth_eps, "max_delta": self.max_delta,
                "random": self.random, "jitter": self.jitter}


@register("yolo")
class Yolo(YoloBase):
    type = "yolo"
    layer_type = "yolo"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.show_details = s.get_int("show_details", 1)
        self.new_coords = s.get_int("new_coords", 0)
        self.focal_loss = s.get_int("focal_loss", 0)
        # the layer whose output holds each anchor's embedding (AB: its filters / n values),
        # which a [contrastive] layer trains; Darknet's demo also tracks objects with it
        self.embedding_layer, self.embedding_size = None, 0
        if s.has("embedding_layer"):
            self.embedding_layer = ctx.resolve(s, "embedding_layer", s.get_int("embedding_layer"))
            self.embedding_size = ctx.layers[self.embedding_layer].out_c // self.n

    def forward(self, x, state):
        B = state.backend
        out = state.output_buffer(self, self.out_shape(x.shape[0]))
        B.yolo_activate(x.reshape(out.shape), out, self.n, self.classes + 5, self.scale_x_y,
                        self.new_coords)
        self.cost = None
        if state.train and state.truth is not None:
            from .yolo_loss import yolo_loss
            rejection = getattr(state.network, "delta_rejection", None)
            reject = None
            if rejection is not None and rejection.enabled:
                def reject(delta):
                    rejection(delta, state.iteration, state.max_batches, self.classes)
            self.run_loss(state, yolo_loss, B.to_numpy(out), state.truth, state.net_w,
                          state.net_h, reject=reject)
        return out

    def delta_scale(self, state):
        # The yolo deltas already are the gradients w.r.t. the logits (logistic +
        # cross-entropy) and the raw w, h. Darknet's GPU build scales them by the net's
        # loss_scale (mixed precision) and the layer's delta_normalizer (both 1 by default).
        return getattr(state, "loss_scale", 1.0) * self.delta_normalizer
