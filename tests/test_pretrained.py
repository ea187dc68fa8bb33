"""pjreddie's pretrained yolov3-tiny (real COCO weights): detections on real photographs, and
its ONNX export equal to pydarknet's forward pass."""

import pathlib

import numpy as np
import pytest

import pydarknet
from pretrained import yolov3_tiny

PHOTOS = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "photos"


@pytest.fixture(scope="module")
def model():
    return yolov3_tiny()


def photo(name):
    path = PHOTOS / name
    if not path.exists():
        pytest.skip(f"the shared photographs are not at {PHOTOS}")
    import cv2
    return cv2.imread(str(path))


@pytest.mark.parametrize("name, expected", [("dog.png", {"dog", "bicycle"}),
                                            ("horses.png", {"horse"}),
                                            ("person.png", {"person"})])
def test_detects_the_objects_in_real_photographs(model, name, expected):
    names = model["coco.names"].read_text().split("\n")
    net = pydarknet.load(model["yolov3-tiny.cfg"], model["yolov3-tiny.weights"], batch=1)
    found = {names[int(c)] for c, score, box in net.detect(photo(name), thresh=0.25)}
    assert expected <= found, found


def test_onnx_export_equals_the_forward_pass(model, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="pip install '.[onnx]'")
    net = pydarknet.load(model["yolov3-tiny.cfg"], model["yolov3-tiny.weights"], batch=1)
    out = tmp_path / "yolov3-tiny.onnx"
    net.export_onnx(str(out))
    x = np.random.default_rng(0).random((1, 3, net.net.height, net.net.width),
                                        dtype=np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]           # yolo_16, yolo_23: the heads
    got = session.run(None, {"images": x})
    net.predict(x)
    assert names == [f"yolo_{l.index}" for l in net.layers if l.layer_type == "yolo"]
    for name, g in zip(names, got):
        want = np.asarray(net.outputs[int(name.split("_")[1])]).reshape(g.shape)
        assert float(np.abs(g - want).max() / np.abs(want).max()) <= 1e-4, name
