"""`pydarknet data kitti`: KITTI 2D object labels -> Darknet's detector layout, Car,
Pedestrian, Cyclist in the order of AB's eval=kitti result files (pydarknet.datasets.kitti)."""

import os

import numpy as np

from pydarknet.cli import main
from pydarknet.labels import label_path, read_data_file, read_labels, read_list, read_names
from test_data_convert import _image, _tree


def _kitti(tmp_path):
    root = tmp_path / "training"
    for k, (w, h) in enumerate([(124, 37), (100, 50), (60, 30)]):
        _image(root / "image_2" / f"{k:06d}.png", w, h)
    (root / "label_2").mkdir()
    (root / "label_2" / "000000.txt").write_text(
        "Car 0.00 0 -1.58 10.00 5.00 50.00 25.00 1.48 1.60 3.69 3.0 1.7 46.7 -1.59\n"
        "Pedestrian 0.00 0 0.21 100.00 2.00 130.00 30.00 1.9 0.6 0.8 1 1 9 0.1\n"   # cut at 124
        "DontCare -1 -1 -10 1.00 1.00 4.00 4.00 -1 -1 -1 -1000 -1000 -1000 -10\n"
        "Van 0.00 0 0 1 1 5 5 1 1 1 1 1 1 0\n"
        "Cyclist 0.00 0 0 x 1 5 5 1 1 1 1 1 1 0\n")
    (root / "label_2" / "000001.txt").write_text("Cyclist 0 0 0 0.0 0.0 50.0 25.0 1 1 1 1 1 1 0\n")
    return root                                     # 000002: no label file


def test_kitti_layout_classes_and_eval(tmp_path, capsys):
    root = _kitti(tmp_path)
    (tmp_path / "val.txt").write_text("000001\n")
    out = tmp_path / "out"
    assert main(["data", "kitti", str(root), str(out), "--valid-ids",
                 str(tmp_path / "val.txt")]) == 0
    text = capsys.readouterr()
    data = read_data_file(out / "obj.data")
    assert read_names(data["names"]) == ["car", "pedestrian", "cyclist"]
    assert data["eval"] == "kitti"
    train, valid = read_list(data["train"]), read_list(data["valid"])
    assert [os.path.basename(p) for p in train] == ["000000.png", "000002.png"]
    assert [os.path.basename(p) for p in valid] == ["000001.png"]
    np.testing.assert_allclose(read_labels(label_path(train[0])), [
        [0, 30 / 124, 15 / 37, 40 / 124, 20 / 37],
        [1, 112 / 124, 16 / 37, 24 / 124, 28 / 37]], atol=1e-6)
    np.testing.assert_allclose(read_labels(label_path(valid[0])), [[2, 0.25, 0.25, 0.5, 0.5]],
                               atol=1e-6)
    assert "000000.txt:5: expected type" in text.err
    for note in ("objects of other types 1", "boxes cut to the image 1",
                 "images without a label file (no objects) 1"):
        assert note in text.out
    before = _tree(out)
    assert main(["data", "kitti", str(root), str(out), "--valid-ids",
                 str(tmp_path / "val.txt")]) == 0
    assert _tree(out) == before


def test_kitti_types_fraction_and_errors(tmp_path, capsys):
    root = _kitti(tmp_path)
    out = tmp_path / "out"
    assert main(["data", "kitti", str(root), str(out), "--classes", "Van,Car",
                 "--valid-fraction", "0.5"]) == 0
    data = read_data_file(out / "obj.data")
    assert read_names(data["names"]) == ["Van", "Car"] and "eval" not in data
    first = [p for p in read_list(data["train"]) + read_list(data.get("valid", data["train"]))
             if p.endswith("000000.png")][0]
    assert sorted(read_labels(label_path(first))[:, 0]) == [0, 1]
    capsys.readouterr()
    assert main(["data", "kitti", str(root), str(tmp_path / "o2"), "--classes", "Bus"]) == 2
    assert "Bus not among KITTI's types" in capsys.readouterr().err
    assert main(["data", "kitti", str(tmp_path), str(tmp_path / "o3")]) == 2
    assert "expected KITTI's image_2/ and label_2/" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()
