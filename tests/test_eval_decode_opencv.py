"""Decoded boxes before NMS agree with OpenCV DNN 4.x's [yolo] output rows.

OpenCV's Darknet importer turns every [yolo] layer into a RegionLayer whose output has one row
per (cell, anchor), in Darknet's order (cell-major, anchor-minor):

    [x, y, w, h, objectness, p_0 .. p_{classes-1}]

x, y, w, h relative to the network input (x = (col + (sigmoid(tx) - 0.5) * scale_x_y + 0.5) /
grid_w, w = exp(tw) * anchor_w / net_w), objectness = sigmoid(to), and p_k = objectness *
sigmoid(class_k), set to 0 unless > OpenCV's own ``thresh`` (0.2 by default; the importer reads
a ``thresh=`` key that Darknet's [yolo] does not have). OpenCV applies no objectness cut and no
NMS there (``nms_threshold`` 0). Darknet keeps a (cell, anchor) when objectness > thresh, so at
thresh = 0.2 both hold the same class scores; the rows pydarknet drops have objectness <= 0.2
and therefore all-zero scores in OpenCV.
"""

import re

import numpy as np
import pytest

import pydarknet
from conftest import ROOT
from pydarknet.eval import decode_network

cv2 = pytest.importorskip("cv2")
if not hasattr(cv2.dnn, "readNetFromDarknet"):
    pytest.skip("this OpenCV has no Darknet importer (OpenCV 5 removed it)",
                allow_module_level=True)

SIZE = 160
THRESH = 0.2          # OpenCV's default class-score threshold for [yolo] rows
MARGIN = 1e-4         # values this close to the threshold may fall either side


def small_cfg(tmp_path, name):
    text = (ROOT / "cfg" / f"{name}.cfg").read_text()
    text = re.sub(r"(?m)^width=\d+", f"width={SIZE}", text)
    text = re.sub(r"(?m)^height=\d+", f"height={SIZE}", text)
    path = tmp_path / f"{name}.cfg"
    path.write_text(text)
    return path


def spread_heads(net, x, seed):
    """Re-draw the conv before each [yolo] so that its outputs vary from cell to cell
    (Darknet's random init leaves every objectness at ~0.5): per-entry target spread, biases
    that put part of the objectness and class scores above the threshold."""
    net.forward(x)
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if layer.layer_type != "yolo":
            continue
        conv = net.layers[layer.index - 1]
        inp = net.outputs[layer.index - 2]
        rms = float(np.sqrt(np.mean(inp.astype(np.float64) ** 2))) + 1e-12
        e = layer.classes + 5
        w = conv.params["weights"].reshape(layer.n, e, -1)
        b = conv.params["biases"].reshape(layer.n, e)
        spread = np.array([1, 1, 0.5, 0.5, 2] + [2] * layer.classes, np.float32)
        w[...] = rng.standard_normal(w.shape).astype(np.float32) * \
            (spread[None, :, None] / (np.sqrt(w.shape[-1]) * rms))
        b[...] = 0
        b[:, 4:] = -1


@pytest.mark.parametrize("name", ["yolov4-tiny", "yolov4"])
def test_decoded_boxes_agree_with_opencv(tmp_path, name):
    cfg = small_cfg(tmp_path, name)
    net = pydarknet.load(cfg, batch=1)
    x = np.random.default_rng(1).uniform(0, 1, (1, 3, SIZE, SIZE)).astype(np.float32)
    spread_heads(net, x, 0)
    net.save_weights(tmp_path / "heads.weights")
    net.forward(x)
    dets = decode_network(net, thresh=THRESH, letter_box=False)

    cv = cv2.dnn.readNetFromDarknet(str(cfg), str(tmp_path / "heads.weights"))
    cv.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    cv.setInput(x)
    names = cv.getUnconnectedOutLayersNames()
    outs = cv.forward(names)
    heads = [l for l in net.layers if l.layer_type == "yolo"]
    assert [f"yolo_{l.index}" for l in heads] == list(names)
    offset = np.cumsum([0] + [len(o) for o in outs])
    rows = np.concatenate(outs)
    assert rows.shape[1] == heads[0].classes + 5

    # candidates: Darknet keeps objectness > thresh
    ours = {(int(l), int(i)) for l, i in zip(dets.layer, dets.index)}
    theirs_obj = {(heads[k].index, i) for k in range(len(heads))
                  for i in np.flatnonzero(outs[k][:, 4] > THRESH + MARGIN)}
    near = {(heads[k].index, i) for k in range(len(heads))
            for i in np.flatnonzero(np.abs(outs[k][:, 4] - THRESH) <= MARGIN)}
    assert theirs_obj <= ours <= theirs_obj | near
    assert 50 < len(dets) < len(rows), "the test wants some boxes in and some out"

    head_pos = {l.index: k for k, l in enumerate(heads)}
    r = rows[[offset[head_pos[int(l)]] + int(i) for l, i in zip(dets.layer, dets.index)]]
    # boxes: relative to the input, ours computed as Darknet (logistic * scale - shift)
    scale = np.maximum(1.0, np.abs(r[:, :4]))
    np.testing.assert_array_less(np.abs(dets.boxes - r[:, :4]) / scale, 2e-3)
    np.testing.assert_allclose(dets.objectness, r[:, 4], atol=1e-4)
    # class scores: objectness x class probability, zero unless > thresh (both sides)
    settled = np.abs(r[:, 5:] - THRESH) > MARGIN
    settled &= np.abs(dets.probs - THRESH) > MARGIN
    np.testing.assert_allclose(np.where(settled, dets.probs, 0), np.where(settled, r[:, 5:], 0),
                               atol=1e-4)
    assert (dets.probs > 0).sum() > 100
    # the rows pydarknet dropped have no class score in OpenCV either
    dropped = np.setdiff1d(np.arange(len(rows)),
                           [offset[head_pos[int(l)]] + int(i)
                            for l, i in zip(dets.layer, dets.index)])
    assert not (rows[dropped, 5:] > THRESH + MARGIN).any()
