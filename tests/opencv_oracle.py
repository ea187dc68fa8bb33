"""OpenCV DNN's Darknet importer as a second, independent forward oracle."""

import re

import numpy as np

# OpenCV names the activation of cfg layer i with index i+1 ("leaky_1" follows "conv_0").
_SAME_INDEX = {"conv", "bn", "pool", "concat", "slice", "shortcut", "upsample", "permute", "yolo",
               "identity", "eltwise", "scale", "reorg", "region", "softmax", "fc", "dropout",
               "crop", "sam", "scale_channels", "avgpool"}


def opencv_layer_outputs(cfg, weights, x):
    """{cfg layer index: output of the last OpenCV layer built for it}, for input x (NCHW)."""
    import cv2
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    # With fusion on, OpenCV 4.x returns stale buffers for some requested intermediate outputs
    # (e.g. a conv+bn+mish whose output is only consumed by a later route).
    net.enableFusion(False)
    names = list(net.getLayerNames())
    last = {}
    for name in names:
        m = re.fullmatch(r"([A-Za-z_]+?)_(\d+)", name)
        if not m:
            continue
        kind, number = m.group(1), int(m.group(2))
        index = number if kind in _SAME_INDEX else number - 1
        last[index] = name
    net.setInput(x)
    wanted = sorted(last)
    outs = net.forward([last[i] for i in wanted])
    return {i: np.asarray(o) for i, o in zip(wanted, outs)}
