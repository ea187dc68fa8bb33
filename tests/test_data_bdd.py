"""`pydarknet data bdd`: BDD100K detection labels -> Darknet's detector layout, in the class
order of AB's eval=bdd result format (pydarknet.datasets.bdd)."""

import json
import os

import numpy as np

from pydarknet.cli import main
from pydarknet.eval.results import BDD_NAMES
from pydarknet.labels import label_path, read_data_file, read_labels, read_list, read_names
from test_data_convert import _image, _tree


def box(category, x1, y1, x2, y2):
    return {"category": category, "attributes": {"occluded": False},
            "box2d": {"x1": x1, "y1": y1, "x2": x2, "y2": y2}}


def _bdd(tmp_path):
    images = tmp_path / "images"
    _image(images / "train" / "a.jpg", 128, 72)
    _image(images / "train" / "b.jpg", 128, 72)
    _image(images / "val" / "v.jpg", 64, 36)
    train = [
        {"name": "a.jpg", "attributes": {"weather": "clear"}, "labels": [
            box("car", 10, 20, 50, 40),
            box("pedestrian", 100, 10, 140, 70),              # det_20's name; cut at 128
            {"category": "lane", "poly2d": [{"vertices": [[0, 0], [5, 5]]}]},
            box("trailer", 1, 1, 5, 5),                        # not one of the ten
            box("traffic light", 5, 5, 9, 15)]},
        {"name": "b.jpg", "labels": None},                     # no objects
        {"name": "missing.jpg", "labels": [box("car", 1, 1, 2, 2)]}]
    (tmp_path / "train.json").write_text(json.dumps(train))
    (tmp_path / "val.json").write_text(json.dumps(
        {"frames": [{"name": "v.jpg", "labels": [box("bicycle", 0, 0, 32, 18)]}]}))
    return tmp_path


def test_bdd_layout_classes_and_eval(tmp_path, capsys):
    root = _bdd(tmp_path)
    out = tmp_path / "out"
    assert main(["data", "bdd", str(root / "train.json"), str(root / "images" / "train"),
                 str(out), "--valid-json", str(root / "val.json"), "--valid-images",
                 str(root / "images" / "val")]) == 0
    text = capsys.readouterr()
    data = read_data_file(out / "obj.data")
    assert read_names(data["names"]) == list(BDD_NAMES) and data["eval"] == "bdd"
    train = read_list(data["train"])
    assert [os.path.basename(p) for p in train] == ["a.jpg", "b.jpg"]
    np.testing.assert_allclose(read_labels(label_path(train[0])), [
        [2, 30 / 128, 30 / 72, 40 / 128, 20 / 72],             # car
        [4, 114 / 128, 40 / 72, 28 / 128, 60 / 72],            # person, cut to 100..128
        [6, 7 / 128, 10 / 72, 4 / 128, 10 / 72]], atol=1e-6)    # traffic light
    assert read_labels(label_path(train[1])).shape == (0, 5)
    np.testing.assert_allclose(read_labels(label_path(read_list(data["valid"])[0])),
                               [[0, 0.25, 0.25, 0.5, 0.5]], atol=1e-6)   # bicycle = bike
    assert "train: 2 images (1 without objects), 3 boxes" in text.out
    assert "objects of other categories 1" in text.out and "boxes cut to the image 1" in text.out
    assert "missing.jpg: image file not found" in text.err
    before = _tree(out)
    assert main(["data", "bdd", str(root / "train.json"), str(root / "images" / "train"),
                 str(out), "--valid-json", str(root / "val.json"), "--valid-images",
                 str(root / "images" / "val")]) == 0
    assert _tree(out) == before


def test_bdd_classes_subset_and_errors(tmp_path, capsys):
    root = _bdd(tmp_path)
    out = tmp_path / "out"
    assert main(["data", "bdd", str(root / "train.json"), str(root / "images" / "train"),
                 str(out), "--classes", "pedestrian,car"]) == 0
    data = read_data_file(out / "obj.data")
    assert read_names(data["names"]) == ["person", "car"] and "eval" not in data
    assert [int(c) for c in read_labels(label_path(read_list(data["train"])[0]))[:, 0]] == [1, 0]
    capsys.readouterr()
    assert main(["data", "bdd", str(root / "train.json"), str(root / "images" / "train"),
                 str(tmp_path / "o2"), "--classes", "car,tram"]) == 2
    assert "tram not among BDD's" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"images": []}')
    assert main(["data", "bdd", str(tmp_path / "bad.json"), str(root / "images" / "train"),
                 str(tmp_path / "o3")]) == 2
    assert "not BDD100K labels" in capsys.readouterr().err
    assert main(["data", "bdd", str(root / "train.json"), str(root / "images" / "train"),
                 str(tmp_path / "o4"), "--valid-json", str(root / "val.json")]) == 2
    assert "needs both its labels json and its image folder" in capsys.readouterr().err
    assert not any((tmp_path / f"o{k}").exists() for k in (2, 3, 4))


def test_bdd_labels_that_are_not_a_list_skip_the_image(tmp_path, capsys):
    """Its objects would otherwise train as background."""
    root = _bdd(tmp_path)
    frames = json.loads((root / "train.json").read_text())
    frames[0]["labels"] = 18
    (root / "train.json").write_text(json.dumps(frames))
    out = tmp_path / "out"
    assert main(["data", "bdd", str(root / "train.json"), str(root / "images" / "train"),
                 str(out)]) == 0
    text = capsys.readouterr()
    assert "a.jpg: 'labels' is not a list; image skipped" in text.err
    assert [os.path.basename(p) for p in read_list(read_data_file(out / "obj.data")["train"])] \
        == ["b.jpg"]
