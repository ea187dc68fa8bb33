"""[region]: YOLOv2 detection head. Its output is in Darknet's CPU layout: flattened to
[cell, anchor, entries], objectness activated, classes soft-maxed (softmax=1); the loss is
pydarknet.layers.region_loss."""

import numpy as np

from ..host_math import logistic, softmax_rows
from ..tree import load_class_map, load_tree
from .base import HostLoss, Layer
from .registry import register


@register("region")
class Region(HostLoss, Layer):
    type = "region"
    layer_type = "region"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.coords = s.get_int("coords", 4)
        self.classes = s.get_int("classes", 20)
        self.num = s.get_int("num", 1)
        self.max_boxes = s.get_int("max", 200)
        self.w, self.h = ctx.w, ctx.h
        self.c = self.num * (self.classes + self.coords + 1)
        self.out_w, self.out_h, self.out_c = self.w, self.h, self.c
        self.outputs = self.inputs = self.w * self.h * self.c
        if self.outputs != ctx.inputs:
            raise s.error(f"the previous layer outputs {ctx.w}x{ctx.h}x{ctx.c}; this layer needs "
                          f"{self.c} channels = num {self.num} x (classes {self.classes} + coords "
                          f"{self.coords} + 1)", "classes")
        for key in ("log", "sqrt", "focal_loss", "rescore", "classfix", "absolute", "bias_match"):
            setattr(self, key, s.get_int(key, 0))
        self.softmax = s.get_int("softmax", 0)
        for key, default in (("jitter", 0.2), ("resize", 1.0), ("thresh", 0.5), ("random", 0.0),
                             ("coord_scale", 1.0), ("object_scale", 1.0),
                             ("noobject_scale", 1.0), ("mask_scale", 1.0), ("class_scale", 1.0)):
            setattr(self, key, s.get_float(key, default))
        self.tree = s.get_str("tree", None)
        self.map_file = s.get_str("map", None)
        self.anchors = np.full(self.num * 2, 0.5, np.float32)
        anchors = s.get_floats("anchors", [])[: self.num * 2]
        self.anchors[: len(anchors)] = anchors

    def check_trainable(self):
        super().check_trainable()
        if self.tree:            # their files are read now, so a missing one stops at once
            load_tree(self)
        if self.map_file:
            load_class_map(self)
        if self.coords != 4:
            raise self.refuse_training("coords", "a box of other than 4 numbers",
                                       "Darknet's region loss reads 4: set coords=4")

    def forward(self, x, state):
        n = x.shape[0]
        size = self.coords + self.classes + 1
        # Darknet's CPU path flattens to [cell, anchor*entries] before activating (on the
        # host here, where the loss runs too).
        xh = state.backend.to_numpy(x)
        out = xh.reshape(n, size * self.num, self.h * self.w).transpose(0, 2, 1).copy()
        out = out.reshape(n, self.h * self.w * self.num, size)
        out[:, :, 4] = logistic(out[:, :, 4])
        if self.tree:       # Darknet: the tree's softmax, with or without softmax=1
            out[:, :, 5:] = load_tree(self).softmax(out[:, :, 5:])
        elif self.softmax:
            out[:, :, 5:] = softmax_rows(out[:, :, 5:])
        self.cost = None
        if state.train and state.truth is not None:
            from .region_loss import region_loss
            self.run_loss(state, region_loss, out, state.truth, state.seen)
        return state.host_result(self, out.reshape(self.out_shape(n)))

    def fields(self):
        return {"classes": self.classes, "num": self.num, "coords": self.coords,
                "max_boxes": self.max_boxes}
