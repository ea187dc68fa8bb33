"""[Gaussian_yolo]: Gaussian YOLOv3 head (mean and sigma per box coordinate); its loss is
pydarknet.layers.gaussian_yolo_loss."""

import numpy as np

from .registry import register
from ..host_math import logistic
from .yolo import YoloBase


@register("Gaussian_yolo")
class GaussianYolo(YoloBase):
    type = "Gaussian_yolo"
    layer_type = "gaussian_yolo"
    box_entries = 8
    allowed_nms = ("default", "greedynms", "diounms", "cornersnms")

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.uc_normalizer = s.get_float("uc_normalizer", 1.0)
        self.yolo_point = s.get_str("yolo_point", "center")

    def forward(self, x, state):
        n = x.shape[0]   # computed on the host
        out = state.backend.to_numpy(x).reshape(n, self.n, self.classes + 9, self.h * self.w)
        out = out.copy()
        a, b = np.float32(self.scale_x_y), np.float32(-0.5 * (self.scale_x_y - 1))
        for k in (0, 1, 2, 3, 5, 7):
            out[:, :, k] = logistic(out[:, :, k])
        out[:, :, 8:] = logistic(out[:, :, 8:])
        out[:, :, 0] = out[:, :, 0] * a + b   # x mean
        out[:, :, 2] = out[:, :, 2] * a + b   # y mean
        out = out.reshape(self.out_shape(n))
        self.cost = None
        if state.train and state.truth is not None:
            from .gaussian_yolo_loss import gaussian_yolo_loss
            self.run_loss(state, gaussian_yolo_loss, out, state.truth, state.net_w, state.net_h)
        return state.host_result(self, out)

    def delta_scale(self, state):
        return self.delta_normalizer    # Darknet's GPU build (not loss_scale, unlike [yolo])
