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
    net.forward(x)
    assert names == [f"yolo_{l.index}" for l in net.layers if l.layer_type == "yolo"]
    for name, g in zip(names, got):
        want = np.asarray(net.outputs[int(name.split("_")[1])]).reshape(g.shape)
        assert float(np.abs(g - want).max() / np.abs(want).max()) <= 1e-4, name


# -- fine-tuning: a backbone cut from the COCO model, a new 4-class head, a converted data set --

NEW_CLASSES = {1: "person", 16: "bird", 18: "dog", 19: "horse"}     # COCO's category ids


def coco_annotations(model, folder):
    """A COCO instances json of the shared photographs, the 'ground truth' being the pretrained
    model's own boxes of four classes (score >= 0.3); the images without them are negatives."""
    import json

    import cv2
    names = model["coco.names"].read_text().split("\n")
    net = pydarknet.load(model["yolov3-tiny.cfg"], model["yolov3-tiny.weights"], batch=1)
    images, annotations = [], []
    for image_id, path in enumerate(sorted(PHOTOS.glob("*.png")), 1):
        img = cv2.imread(str(path))
        h, w = img.shape[:2]
        images.append({"id": image_id, "file_name": path.name, "width": w, "height": h})
        for c, score, (x, y, bw, bh) in net.detect(img, thresh=0.3):
            ids = [k for k, v in NEW_CLASSES.items() if v == names[int(c)]]
            if ids:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                    "category_id": ids[0], "iscrowd": 0, "area": bw * bh,
                                    "bbox": [x - bw / 2, y - bh / 2, bw, bh]})
    categories = [{"id": k, "name": v} for k, v in NEW_CLASSES.items()]
    out = folder / "instances.json"
    out.write_text(json.dumps({"images": images, "annotations": annotations,
                               "categories": categories}))
    return out, len(annotations)


def fine_tuning_cfg(model, path, size=256, iterations=100):
    """pjreddie's yolov3-tiny.cfg made a 4-class detector at ``size``, as a user edits it:
    classes and the filters before each [yolo], batch, a short schedule, no random resizing."""
    text = model["yolov3-tiny.cfg"].read_text()
    for old, new in (("classes=80", "classes=4"), ("filters=255", "filters=27"),
                     ("width=416", f"width={size}"), ("height=416", f"height={size}"),
                     ("batch=1\n", "batch=6\n"), ("random=1", "random=0"),
                     ("burn_in=1000", "burn_in=10"),
                     ("max_batches = 500200", f"max_batches = {iterations}"),
                     ("steps=400000,450000", f"steps={iterations * 8 // 10},"
                                             f"{iterations * 9 // 10}")):
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)
    return path


def test_fine_tunes_a_new_head_on_a_converted_coco_set(model, tmp_path, capsys):
    """The user's road: COCO json -> `data coco` -> `partial` -> `detector train` -> `detector
    map`: the loss falls and the mAP of the new head rises from nothing."""
    from pydarknet.cli import main
    if not PHOTOS.exists():
        pytest.skip(f"the shared photographs are not at {PHOTOS}")
    instances, boxes = coco_annotations(model, tmp_path)
    assert boxes >= 8
    data = tmp_path / "set"
    assert main(["data", "coco", str(instances), str(PHOTOS), str(data)]) == 0
    summary = capsys.readouterr().out
    assert "person" in summary and "horse" in summary
    cfg = fine_tuning_cfg(model, tmp_path / "yolov3-tiny-obj.cfg")
    backbone = tmp_path / "yolov3-tiny.conv.15"
    assert main(["partial", str(model["yolov3-tiny.cfg"]), str(model["yolov3-tiny.weights"]),
                 str(backbone), "15"]) == 0
    start = pydarknet.Network(cfg, batch=1, seed=1)     # the backbone and a random new head
    start.load_weights(backbone, allow_partial=True)
    start.save_weights(tmp_path / "start.weights")
    before = _map(main, capsys, data, cfg, tmp_path / "start.weights")
    backup = tmp_path / "backup"
    assert main(["detector", "train", str(data / "obj.data"), str(cfg), str(backbone),
                 "-dont_show", "--backup", str(backup), "--seed", "1"]) == 0
    log = capsys.readouterr().out
    losses = [float(line.split(", ")[1].split()[0]) for line in log.splitlines()
              if " avg loss" in line]
    assert len(losses) == 100 and losses[-1] < 0.2 * losses[0], losses[::10]
    after = _map(main, capsys, data, cfg, backup / "yolov3-tiny-obj_final.weights")
    assert before < 0.05 and after > before + 0.15, (before, after)
    print(f"avg loss {losses[0]:.1f} -> {losses[-1]:.2f}, mAP@0.5 {before:.4f} -> {after:.4f}")


def _map(main, capsys, data, cfg, weights):
    assert main(["detector", "map", str(data / "obj.data"), str(cfg), str(weights)]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if "mean average precision (mAP@0.50)" in l)
    return float(line.split("=")[1].split(",")[0])
