"""The embedded shapes data set: exact boxes, Darknet layout, reuse, determinism, speed."""

import os
import time

import cv2
import numpy as np

from pydarknet.data import (SHAPES, draw_shapes_image, make_shapes_classifier,
                            make_shapes_detection, read_label_file, read_list)
from pydarknet.labels import class_from_path, label_path, read_data_file


def test_boxes_are_the_exact_extent_of_each_shape():
    rng = np.random.default_rng(0)
    bg = (40, 90, 70)
    for _ in range(20):
        img, boxes, fills = draw_shapes_image(rng, 96, 80, SHAPES, count=(1, 4), background=bg)
        H, W = img.shape[:2]
        assert len(boxes) >= 1 and ((boxes[:, 0] >= 0) & (boxes[:, 0] < len(SHAPES))).all()
        drawn = (img != np.array(bg, np.uint8)).any(axis=2)
        covered = np.zeros_like(drawn)
        for (cls, x, y, w, h), fill in zip(boxes, fills):
            x0, x1 = round((x - w / 2) * W), round((x + w / 2) * W)
            y0, y1 = round((y - h / 2) * H), round((y + h / 2) * H)
            inside = drawn[y0:y1, x0:x1]
            # each edge row/column of the box touches the shape
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and \
                inside[:, -1].any()
            covered[y0:y1, x0:x1] = True
        assert not (drawn & ~covered).any()      # nothing drawn outside the boxes


def test_detection_set_layout_reuse_and_determinism(tmp_path):
    t0 = time.perf_counter()
    info = make_shapes_detection(tmp_path / "a", train=40, valid=10, size=96, seed=5)
    elapsed = time.perf_counter() - t0
    assert elapsed < 5
    train, valid = read_list(info["train"]), read_list(info["valid"])
    assert len(train) == 40 and len(valid) == 10 and not set(train) & set(valid)
    data = read_data_file(info["data"])
    assert data["classes"] == 3 and data["train"] == info["train"]
    assert read_list(data["names"]) == ["circle", "square", "triangle"]
    for path in train[:5] + valid[:2]:
        assert cv2.imread(path).shape == (96, 96, 3)
        lp = label_path(path)            # beside the image (AB's rule) and in labels/
        assert lp == os.path.splitext(path)[0] + ".txt"
        pjreddie = path.replace(os.sep + "images" + os.sep, os.sep + "labels" + os.sep)
        assert open(lp).read() == open(os.path.splitext(pjreddie)[0] + ".txt").read()
        boxes = read_label_file(lp, 3)
        assert len(boxes) >= 1
    # the same parameters: reused as is; another seed or force: regenerated
    stamp = os.path.getmtime(train[0])
    assert make_shapes_detection(tmp_path / "a", train=40, valid=10, size=96, seed=5) == info
    assert os.path.getmtime(train[0]) == stamp
    other = make_shapes_detection(tmp_path / "b", train=40, valid=10, size=96, seed=5)
    assert [open(label_path(p)).read() for p in read_list(other["train"])] == \
        [open(label_path(p)).read() for p in train]


def test_classifier_set(tmp_path):
    info = make_shapes_classifier(tmp_path / "square-things", train=12, valid=6, size=32,
                                  classes=4)
    names = read_list(info["labels"])
    assert names == list(SHAPES[:4]) and info["classes"] == 4
    data = read_data_file(info["data"])
    assert data["labels"] == info["labels"] and data["classes"] == 4
    train = read_list(info["train"])
    counts = np.bincount([class_from_path(p, names) for p in train], minlength=4)
    assert (counts == 3).all()     # the folder's "square" does not confuse the class lookup
    assert cv2.imread(train[0]).shape == (32, 32, 3)
