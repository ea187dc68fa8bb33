"""`pydarknet data labelme`: images annotated with the LabelMe tool -> Darknet's detector
layout (pydarknet.datasets.labelme)."""

import base64
import json
import os

import cv2
import numpy as np
import pytest

from pydarknet.cli import main
from pydarknet.datasets.labelme import shape_box
from pydarknet.labels import label_path, read_data_file, read_labels, read_list, read_names
from test_data_convert import _image, _tree


def _annotate(json_path, image_path, shapes, size=None, embed=None):
    data = {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image_path,
            "imageData": embed}
    if size:
        data["imageWidth"], data["imageHeight"] = size
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(data))


def rect(label, x0, y0, x1, y1):
    return {"label": label, "points": [[x0, y0], [x1, y1]], "shape_type": "rectangle",
            "group_id": None, "flags": {}}


def _set(tmp_path):
    root = tmp_path / "photos"
    _image(root / "a.jpg", 100, 50)
    _annotate(root / "a.json", "a.jpg", [
        rect("dog", 60, 40, 10, 10),                                      # corners reversed
        {"label": "cat", "points": [[0, 0], [20, 5], [10, 30]], "shape_type": "polygon"},
        {"label": "cat", "points": [[50, 25], [50, 35]], "shape_type": "circle"},
        {"label": "dog", "points": [[5, 5]], "shape_type": "point"},      # no box
        rect("dog", 90, 10, 130, 20),                                     # cut at the edge
        rect("dog", 60, 40, 10, 10),                                      # again
        rect("bird", 1, 1, 5, 5)], size=(100, 50))
    _image(root / "sub" / "img" / "b.png", 40, 40)
    # Windows path separators, the json in another folder than its image
    _annotate(root / "sub" / "ann" / "b.json", "..\\img\\b.png", [rect("cat", 0, 0, 20, 40)])
    _image(root / "c.jpg", 30, 30)
    _annotate(root / "c.json", "c.jpg", [], size=(30, 30))                # no objects
    # the image is gone but the json embeds it
    ok, png = cv2.imencode(".png", np.full((20, 24, 3), 77, np.uint8))
    _annotate(root / "d.json", "gone.png", [rect("dog", 2, 2, 12, 10)], size=(24, 20),
              embed=base64.b64encode(png.tobytes()).decode())
    _annotate(root / "e.json", "nowhere.jpg", [rect("dog", 1, 1, 2, 2)])  # no image at all
    (root / "other.json").write_text('{"images": []}')                   # not LabelMe's
    _image(root / "unlabelled.jpg", 10, 10)
    return root


def test_labelme_boxes_classes_and_summary(tmp_path, capsys):
    root = _set(tmp_path)
    out = tmp_path / "out"
    assert main(["data", "labelme", str(root), str(out)]) == 0
    text = capsys.readouterr()
    data = read_data_file(out / "obj.data")
    assert read_names(data["names"]) == ["bird", "cat", "dog"] and data["classes"] == 3
    train = read_list(data["train"])
    assert [os.path.basename(p) for p in train] == ["a.jpg", "c.jpg", "d.png", "b.png"]
    np.testing.assert_allclose(read_labels(label_path(train[0])), [
        [2, 0.35, 0.5, 0.5, 0.6],                # dog 10..60 x 10..40 of 100 x 50
        [1, 0.1, 0.3, 0.2, 0.6],                 # the polygon's extent
        [1, 0.5, 0.5, 0.2, 0.4],                 # the circle: centre (50, 25), radius 10
        [2, 0.95, 0.3, 0.1, 0.2],                # 90..100 (cut) x 10..20
        [0, 0.03, 0.06, 0.04, 0.08]], atol=1e-6)
    assert read_labels(label_path(train[1])).shape == (0, 5)
    np.testing.assert_allclose(read_labels(label_path(train[2])),
                               [[2, 7 / 24, 6 / 20, 10 / 24, 8 / 20]], atol=1e-6)
    assert cv2.imread(train[2]).shape == (20, 24, 3)          # written from imageData
    np.testing.assert_allclose(read_labels(label_path(train[3])), [[1, 0.25, 0.5, 0.5, 1]])
    assert "train: 4 images (1 without objects), 7 boxes" in text.out
    for note in ("points and lines (no box) 1", "boxes cut to the image 1",
                 "the same box twice (listed once) 1", "images written from the json",
                 "images without a LabelMe json (not listed) 1"):
        assert note in text.out
    assert "e.json: its image 'nowhere.jpg' is not there" in text.err
    assert "other.json: not a LabelMe annotation" in text.err
    before = _tree(out)
    assert main(["data", "labelme", str(root), str(out)]) == 0   # again: the same
    assert _tree(out) == before


def test_labelme_classes_and_valid_lists(tmp_path, capsys):
    root = _set(tmp_path)
    out = tmp_path / "out"
    assert main(["data", "labelme", str(root), str(out), "--classes", "dog,cat",
                 "--valid", str(root / "sub")]) == 0
    text = capsys.readouterr().out
    data = read_data_file(out / "obj.data")
    assert read_names(data["names"]) == ["dog", "cat"]
    assert [os.path.basename(p) for p in read_list(data["valid"])] == ["b.png"]
    assert "b.png" not in [os.path.basename(p) for p in read_list(data["train"])]
    assert "images of the valid folder left out of train 1" in text
    boxes = read_labels(label_path(read_list(data["train"])[0]))
    assert set(boxes[:, 0]) == {0, 1} and len(boxes) == 4          # the bird left out
    assert "objects of classes not converted 1" in text
    out2 = tmp_path / "out2"
    assert main(["data", "labelme", str(root), str(out2), "--valid-fraction", "0.5"]) == 0
    d2 = read_data_file(out2 / "obj.data")
    train, valid = read_list(d2["train"]), read_list(d2["valid"])
    assert len(train) + len(valid) == 4 and valid
    assert main(["data", "labelme", str(root), str(tmp_path / "out3"), "--valid-fraction",
                 "0.5"]) == 0
    again = read_data_file(tmp_path / "out3" / "obj.data")
    assert [os.path.basename(p) for p in read_list(again["valid"])] == \
        [os.path.basename(p) for p in valid]                       # the same share each run


def test_labelme_errors(tmp_path, capsys):
    assert main(["data", "labelme", str(tmp_path / "none"), str(tmp_path / "o")]) == 2
    assert "not a folder of LabelMe annotations" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["data", "labelme", str(tmp_path / "empty"), str(tmp_path / "o")]) == 2
    assert "no LabelMe annotation with its image found" in capsys.readouterr().err
    root = _set(tmp_path)
    assert main(["data", "labelme", str(root), str(tmp_path / "o"), "--valid-fraction",
                 "1.5"]) == 2
    assert "expected 0 <= f < 1" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("shape, want", [
    ({"points": [[3, 4], [1, 8]], "shape_type": "rectangle"}, (1, 4, 3, 8)),
    ({"points": [[3, 4], [1, 8], [5, 5]]}, (1, 4, 5, 8)),          # no shape_type: polygon
    ({"points": [[0, 0], [3, 4]], "shape_type": "circle"}, (-5, -5, 5, 5)),
    ({"points": [[1, 1], [2, 2]], "shape_type": "line"}, "a line has no box"),
    ({"points": [[1, "x"]], "shape_type": "polygon"}, "its points are not pairs of numbers"),
    ({"points": [[1, 1], {}], "shape_type": "polygon"}, "its points are not pairs of numbers"),
    ({"points": [[1, 1], [2, float("nan")]], "shape_type": "polygon"}, "not finite"),
    ({"points": [[1, 1], [2, 2]], "shape_type": "cuboid"}, "is not one LabelMe writes"),
])
def test_shape_boxes(shape, want):
    got = shape_box(shape)
    if isinstance(want, str):
        assert isinstance(got, str) and want in got
    else:
        assert got == want
