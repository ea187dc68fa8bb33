"""Darknet's ``detector recall``: proposals per image, mean best IoU and recall of a random
detector ([yolo] and [region] heads) on images with random truths, against AB Darknet's own
command (its stderr line after each image: tests/data/darknet_eval.npz, from
tools/darknet_eval_oracle.py)."""

import pathlib

import cv2
import numpy as np
import pytest

from pydarknet.cli import main
from pydarknet.eval.recall import RecallAccumulator, evaluate_network_recall, objectness_nms
from pydarknet.network import load_cfg_text

ORACLE = pathlib.Path(__file__).parent / "data" / "darknet_eval.npz"

CFG = """
[net]
width=64
height=48
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=21
size=1
stride=1
pad=1
activation=linear

[yolo]
mask=0,1,2
anchors=6,8, 14,12, 24,20
classes=2
num=3
"""

# the same detector with a YOLOv2 head: every cell and anchor a proposal of objectness 1 (AB's
# custom_get_region_detections), so the objectness NMS keeps them in their order
REGION_CFG = CFG[:CFG.index("[yolo]")] + """[region]
anchors=0.8,1.0, 1.7,1.5, 3,2.5
classes=2
num=3
coords=4
softmax=1
"""
CFGS = {"yolo": CFG, "region": REGION_CFG}

IMAGE_SIZES = [(48, 64), (60, 40), (33, 90), (64, 64), (20, 30), (100, 70)]


def recall_inputs(head="yolo"):
    """The detector (parameters from a fixed seed: boxes near the anchors, objectness spread
    from near 0 to near 1; it finds 8 of the 12 truths) and the images with their truths
    [(class, x, y, w, h)], 0 to 4 each."""
    net = load_cfg_text(CFGS[head], batch=1)
    rng = np.random.default_rng(11)
    for layer in net.layers:
        for k, v in layer.params.items():
            v[...] = (rng.uniform(0.5, 1.5, v.shape) if k in ("scales", "rolling_variance")
                      else rng.normal(0, 0.3, v.shape))
    images, truths = [], []
    for h, w in IMAGE_SIZES:
        images.append(cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), np.uint8), (5, 5), 0))
        n = int(rng.integers(0, 5))
        wh = rng.uniform(0.15, 0.5, (n, 2))
        xy = rng.uniform(wh / 2, 1 - wh / 2)
        truths.append(np.column_stack([rng.integers(0, 2, n), xy, wh]))
    return net, images, truths


def write_data_set(folder, images, truths):
    """PNG images (lossless: the pixels Darknet reads) with their label files beside them, a
    valid list and a .data file; returns the .data path."""
    folder = pathlib.Path(folder)
    paths = []
    for i, (img, t) in enumerate(zip(images, truths)):
        p = folder / f"img{i}.png"
        cv2.imwrite(str(p), img)
        (folder / f"img{i}.txt").write_text("".join(
            f"{int(c)} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in t))
        paths.append(str(p))
    (folder / "valid.txt").write_text("\n".join(paths) + "\n")
    data = folder / "obj.data"
    data.write_text(f"classes = 2\nvalid = {folder / 'valid.txt'}\n")
    return data


def lines_as_numbers(lines):
    """Darknet's recall lines -> [[found, truths, RPs/img, IOU %, recall %], ...]."""
    out = []
    for ln in lines:
        f = ln.replace("RPs/Img:", " ").replace("IOU:", " ").replace("Recall:", " ")
        f = f.replace("%", " ").split()
        out.append([float(v) for v in f[1:6]])
    return np.array(out)


@pytest.mark.parametrize("head", list(CFGS))
def test_recall_matches_darknet(tmp_path, head):
    if not ORACLE.exists():
        pytest.skip(f"{ORACLE} missing: python tools/darknet_eval_oracle.py DARKNET")
    want = np.load(ORACLE)[f"recall_{head}"]
    net, images, truths = recall_inputs(head)
    data = write_data_set(tmp_path, images, truths)
    lines = []
    r = evaluate_network_recall(net, str(tmp_path / "valid.txt"), log=lines.append)
    got = lines_as_numbers(lines)
    assert got.shape == want.shape == (len(images), 5)
    np.testing.assert_array_equal(got[:, :2], want[:, :2])     # found, truths
    np.testing.assert_allclose(got[:, 2:], want[:, 2:], atol=0.0101)   # printed with 2 decimals
    assert 0 < r["recall"] < 1 and r["truths"] == sum(len(t) for t in truths)
    assert data.exists()


def test_objectness_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[.5, .5, .2, .2], [.51, .5, .2, .2], [.2, .2, .1, .1], [.5, .5, .2, .2]],
                     np.float32)
    obj = np.array([.6, .9, .3, 0], np.float32)
    np.testing.assert_array_equal(objectness_nms(boxes, obj, .4), [False, True, True, False])
    np.testing.assert_array_equal(objectness_nms(boxes, obj, 0), [True, True, True, False])
    acc = RecallAccumulator()
    acc.add_image(boxes, obj, np.array([[.5, .5, .2, .2], [.9, .9, .05, .05]]))
    r = acc.result()
    assert (r["truths"], r["found"], r["proposals_per_image"]) == (2, 1, 2)
    assert acc.line().startswith("    0     1     2\tRPs/Img: 2.00\tIOU: ")


def test_recall_command(tmp_path, capsys):
    net, images, truths = recall_inputs()
    data = write_data_set(tmp_path, images, truths)
    net.save_weights(str(tmp_path / "d.weights"))
    (tmp_path / "d.cfg").write_text(CFG)
    (tmp_path / "img5.txt").unlink()                # an image without a label file
    with pytest.warns(UserWarning, match="img5.txt: label file not found"):
        code = main(["detector", "recall", str(data), str(tmp_path / "d.cfg"),
                     str(tmp_path / "d.weights"), "-iou_thresh", "0.3"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert len([ln for ln in err.splitlines() if "RPs/Img:" in ln]) == len(images)
    assert out.startswith(f"6 images, {sum(len(t) for t in truths[:5])} truths: recall ")
    assert "(IoU > 0.3)" in out
    assert "labels missing: 1" in err
