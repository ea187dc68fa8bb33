"""Second oracle: OpenCV DNN 4.x's Darknet importer agrees with pydarknet layer by layer."""

import re

import numpy as np
import pytest

import pydarknet
from conftest import ROOT

cv2 = pytest.importorskip("cv2")
if not hasattr(cv2.dnn, "readNetFromDarknet"):
    pytest.skip("this OpenCV has no Darknet importer (OpenCV 5 removed it)", allow_module_level=True)

from opencv_oracle import opencv_layer_outputs  # noqa: E402

SIZE = 160   # small input: the check is about semantics, not speed


def randomise(net, seed):
    """Non-trivial biases and batch-norm statistics, so that every term is exercised."""
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        p = layer.params
        if "biases" in p:
            p["biases"][...] = rng.uniform(-0.1, 0.1, p["biases"].shape)
        if "rolling_mean" in p:
            p["rolling_mean"][...] = rng.uniform(-0.1, 0.1, p["rolling_mean"].shape)
            p["rolling_variance"][...] = rng.uniform(0.5, 1.5, p["rolling_variance"].shape)
            p["scales"][...] = rng.uniform(0.5, 1.5, p["scales"].shape)


def yolo_from_opencv(rows, layer):
    """OpenCV's [yolo] rows ([cell*anchor, 5+classes], x/y relative to the grid) -> the
    layer's activated x, y and objectness in pydarknet's [anchor, entry, cell] layout."""
    h, w, n = layer.h, layer.w, layer.n
    rows = rows.reshape(h, w, n, -1)
    ys, xs = np.mgrid[0:h, 0:w]
    x = rows[..., 0] * w - xs[..., None]
    y = rows[..., 1] * h - ys[..., None]
    obj = rows[..., 4]
    return [v.transpose(2, 0, 1).reshape(n, h * w) for v in (x, y, obj)]


@pytest.mark.parametrize("name", ["yolov4-tiny", "yolov4"])
def test_outputs_agree_with_opencv(tmp_path, name):
    text = (ROOT / "cfg" / f"{name}.cfg").read_text()
    text = re.sub(r"(?m)^width=\d+", f"width={SIZE}", text)
    text = re.sub(r"(?m)^height=\d+", f"height={SIZE}", text)
    cfg = tmp_path / f"{name}.cfg"
    cfg.write_text(text)
    net = pydarknet.load(cfg, batch=1)
    randomise(net, 1)
    net.save_weights(tmp_path / "random.weights")
    x = np.random.default_rng(2).uniform(0, 1, (1, 3, SIZE, SIZE)).astype(np.float32)
    net.forward(x)
    theirs = opencv_layer_outputs(cfg, tmp_path / "random.weights", x)
    assert len(theirs) == len(net.layers)
    bad = {}
    for i, out in theirs.items():
        layer, ours = net.layers[i], net.outputs[i]
        if layer.layer_type == "yolo":
            ours = ours.reshape(layer.n, layer.classes + 5, -1)
            for k, theirs_k in zip((0, 1, 4), yolo_from_opencv(out, layer)):
                err = np.abs(ours[:, k] - theirs_k).max() / np.abs(ours[:, k]).max()
                if err > 1e-4:
                    bad[(i, layer.type, k)] = err
            continue
        err = np.abs(out.reshape(ours.shape) - ours).max() / np.abs(ours).max()
        if err > 1e-4:
            bad[(i, layer.type)] = err
    assert not bad, f"layers disagreeing with OpenCV (max|a-b|/max|b|): {bad}"
