"""``pydarknet data coco|voc|yolo|idx``: tiny inputs built here, converted through the CLI, the
outputs read back with pydarknet's own readers (labels, data loader, results writer)."""

import gzip
import json
import warnings
import os
import struct
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT
from pydarknet.cli import main
from pydarknet.datasets.layout import OutputFolder
from pydarknet.labels import class_from_path, label_path, read_data_file, read_labels, \
    read_list, read_names


def _image(path, w, h, value=128):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img = np.full((h, w, 3), value, np.uint8)
    img[::7, ::5] = 255 - value
    assert cv2.imwrite(str(path), img)
    return str(path)


def _tree(root):
    """{relative path: bytes or link target} of a folder, for idempotence checks."""
    out = {}
    for folder, _, files in os.walk(root):
        for f in files:
            p = os.path.join(folder, f)
            rel = os.path.relpath(p, root)
            out[rel] = os.readlink(p) if os.path.islink(p) else open(p, "rb").read()
    return out


# -- COCO --------------------------------------------------------------------------------------
def _coco(tmp_path, name="instances.json", images=None, anns=None, cats=None):
    img_dir = tmp_path / "coco_images"
    images = images if images is not None else [
        {"id": 139, "file_name": "000000000139.jpg", "width": 64, "height": 48},
        {"id": 7, "file_name": "street.jpg", "width": 40, "height": 40},
        {"id": 12, "file_name": "empty_view.png", "width": 32, "height": 32},
    ]
    for im in images:
        _image(img_dir / im["file_name"], im["width"], im["height"])
    cats = cats if cats is not None else [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"},
                                          {"id": 1, "name": "person"}]
    anns = anns if anns is not None else [
        {"id": 1, "image_id": 139, "category_id": 18, "bbox": [4, 6, 20, 10], "iscrowd": 0},
        {"id": 2, "image_id": 139, "category_id": 1, "bbox": [30, 10, 20, 30], "iscrowd": 0},
        {"id": 3, "image_id": 7, "category_id": 3, "bbox": [30, 30, 20, 20], "iscrowd": 0},
        {"id": 4, "image_id": 7, "category_id": 1, "bbox": [2, 2, 5, 5], "iscrowd": 1},
        {"id": 5, "image_id": 7, "category_id": 3, "bbox": [50, 5, 10, 10], "iscrowd": 0},
        {"id": 6, "image_id": 7, "category_id": 1, "bbox": [5, 5, 0, 8], "iscrowd": 0},
    ]
    for a in anns:
        if len(a["bbox"]) == 4:
            a.setdefault("area", a["bbox"][2] * a["bbox"][3])
    path = tmp_path / name
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return str(path), str(img_dir)


def test_coco_layout_summary_and_idempotence(tmp_path, capsys):
    ann, img_dir = _coco(tmp_path)
    out = tmp_path / "out"
    assert main(["data", "coco", ann, img_dir, str(out)]) == 0
    text = capsys.readouterr()
    assert "train: 3 images (1 without objects), 3 boxes" in text.out
    assert "boxes per class: person 1, car 1, dog 1" in text.out
    assert "crowd boxes 1" in text.out and "degenerate boxes 2" in text.out
    assert "boxes clipped to the image 1" in text.out
    assert "iscrowd=1" in text.err
    data = read_data_file(out / "obj.data")
    assert data["classes"] == 3 and data["eval"] == "coco"
    assert data["category_ids"] == "1,3,18"          # classes in category id order
    assert read_names(data["names"]) == ["person", "car", "dog"]
    paths = read_list(data["train"])
    assert all(os.path.isabs(p) for p in paths)
    names = [os.path.basename(p) for p in paths]
    # tmp_path holds '_': Darknet would read the id after it, so even 000000000139.jpg is renamed
    assert names == ["street_7.jpg", "empty_view_12.png", "000000000139_139.jpg"]
    assert os.path.islink(paths[0]) and os.path.samefile(paths[0], os.path.join(img_dir,
                                                                                  "street.jpg"))
    assert not os.listdir(img_dir) == []        # nothing written into the image folder
    assert sorted(os.listdir(img_dir)) == ["000000000139.jpg", "empty_view.png", "street.jpg"]
    boxes = read_labels(label_path(paths[2]))
    np.testing.assert_allclose(boxes, [[2, 14 / 64, 11 / 48, 20 / 64, 10 / 48],
                                       [0, 40 / 64, 25 / 48, 20 / 64, 30 / 48]], atol=1e-6)
    clipped = read_labels(label_path(paths[0]))            # [30, 30, 20, 20] in 40x40
    np.testing.assert_allclose(clipped, [[1, 35 / 40, 35 / 40, 10 / 40, 10 / 40]], atol=1e-6)
    assert read_labels(label_path(paths[1])).shape == (0, 5)
    before = _tree(out)
    assert main(["data", "coco", ann, img_dir, str(out)]) == 0
    assert _tree(out) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def _finished_pid():
    """The PID of a process that has ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_a_killed_runs_leftovers_are_cleaned_and_its_older_output_put_back(tmp_path, capsys):
    ann, img_dir = _coco(tmp_path)
    out = tmp_path / "out"
    assert main(["data", "coco", ann, img_dir, str(out)]) == 0
    before = _tree(out)
    killed_writing, killed_renaming = _finished_pid(), _finished_pid()
    # killed while writing its temporary folder: removed by the next run
    (tmp_path / f".out.tmp-{killed_writing}" / "images").mkdir(parents=True)
    # killed between commit's two renames: the older output moved aside, none in place
    out.rename(tmp_path / f".out.tmp-{killed_renaming}.old")
    # a run still going (this test's parent process) keeps its folder
    (tmp_path / f".out.tmp-{os.getppid()}").mkdir()
    with OutputFolder(out, "coco") as folder:
        assert folder.previous["converter"] == "coco"
    assert _tree(out) == before
    assert "put back the older output" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == \
        [f".out.tmp-{os.getppid()}"]
    assert main(["data", "coco", ann, img_dir, str(out)]) == 0
    assert _tree(out) == before


def test_coco_classes_subset_copy_and_valid_split(tmp_path, capsys):
    ann, img_dir = _coco(tmp_path)
    val, val_dir = _coco(tmp_path, "val.json", images=[
        {"id": 5001, "file_name": "COCO_val2014_000000005001.jpg", "width": 30, "height": 20}],
        anns=[{"id": 9, "image_id": 5001, "category_id": 18, "bbox": [1, 1, 10, 10]}])
    out = tmp_path / "sub"
    assert main(["data", "coco", ann, img_dir, str(out), "--classes", "dog,person", "--copy",
                 "--valid-json", val]) == 0
    text = capsys.readouterr().out
    assert "boxes of other classes 2" in text and "valid: 1 images, 1 boxes" in text
    data = read_data_file(out / "obj.data")
    assert data["category_ids"] == "18,1"
    valid = read_list(data["valid"])
    assert [os.path.basename(p) for p in valid] == ["COCO_val2014_000000005001.jpg"]
    assert not os.path.islink(valid[0])
    np.testing.assert_allclose(read_labels(label_path(valid[0])),
                               [[0, 6 / 30, 6 / 20, 10 / 30, 10 / 20]], atol=1e-6)
    assert main(["data", "coco", ann, img_dir, str(out), "--classes", "dog,cat,horse"]) == 2
    err = capsys.readouterr().err
    assert "cat, horse not among the categories" in err and "person, car, dog" in err


def test_coco_bad_inputs(tmp_path, capsys):
    ann, img_dir = _coco(tmp_path, images=[
        {"id": 1, "file_name": "a.jpg", "width": 20, "height": 20},
        {"id": 2, "file_name": "missing.jpg", "width": 20, "height": 20},
        {"id": 3, "file_name": "text.jpg", "width": 20, "height": 20},
        {"id": 4, "file_name": "nosize.png", "width": 16, "height": 12}],
        anns=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5]},
              {"id": 2, "image_id": 99, "category_id": 1, "bbox": [0, 0, 5, 5]},
              {"id": 3, "image_id": 1, "category_id": 1, "bbox": [40, 40, 5, 5]},
              {"id": 4, "image_id": 1, "category_id": 1, "bbox": [-5, -5, 10, 10]}])
    os.remove(os.path.join(img_dir, "missing.jpg"))
    with open(os.path.join(img_dir, "text.jpg"), "w") as f:
        f.write("not an image")
    coco = json.loads(open(ann).read())
    del coco["images"][3]["width"]
    with open(ann, "w") as f:
        json.dump(coco, f)
    out = tmp_path / "out"
    assert main(["data", "coco", ann, img_dir, str(out)]) == 0
    text = capsys.readouterr()
    assert "malformed annotations 2" in text.out and "missing or unreadable images 2" in text.out
    assert "degenerate boxes 1" in text.out and "sizes read from the image 1" in text.out
    assert "train: 2 images (1 without objects), 1 boxes" in text.out
    assert "text.jpg: not an image file" in text.err
    assert "annotations[0] (id 1): bbox [0, 0, 5]" in text.err
    assert "missing.jpg: image file not found" in text.err
    before = _tree(out)
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [\n{"id": 1,,}]}')
    assert main(["data", "coco", str(broken), img_dir, str(out)]) == 2
    err = capsys.readouterr().err
    assert "broken.json:2:" in err and "not valid json" in err and "Traceback" not in err
    assert _tree(out) == before                       # the older output is untouched
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["data", "coco", ann, img_dir, str(other)]) == 2
    assert "was not written by" in capsys.readouterr().err
    assert (other / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_coco_values_of_the_wrong_kind(tmp_path, capsys):
    """Found by mutating a COCO json: ids that are lists or objects, an infinite or absurd
    image size, a box given twice: skipped or mended and said, never a traceback, and the
    output clean for data check."""
    from pydarknet.datasets.check import check_dataset
    ann, img_dir = _coco(tmp_path, images=[
        {"id": 1, "file_name": "a.jpg", "width": 20, "height": 20},
        {"id": 2, "file_name": "b.jpg", "width": 20, "height": 20},
        {"id": 3, "file_name": "c.jpg", "width": 20, "height": 20}],
        anns=[{"id": 1, "image_id": [1], "category_id": 1, "bbox": [0, 0, 5, 5]},
              {"id": 2, "image_id": 1, "category_id": {}, "bbox": [0, 0, 5, 5]},
              {"id": 3, "image_id": 1, "category_id": 1, "bbox": [2, 2, 5, 5]},
              {"id": 4, "image_id": 1, "category_id": 1, "bbox": [2, 2, 5, 5]},
              {"id": 5, "image_id": 2, "category_id": 1, "bbox": [2, 2, 5, 5]},
              {"id": 6, "image_id": 3, "category_id": 1, "bbox": [2, 2, 5, 5]}])
    coco = json.loads(open(ann).read())
    coco["images"][1]["width"] = float("inf")      # json's Infinity: read from the image
    coco["images"][2]["height"] = 2 ** 40            # the box rounds to no height
    with open(ann, "w") as f:
        json.dump(coco, f)
    out = tmp_path / "out"
    assert main(["data", "coco", ann, img_dir, str(out)]) == 0
    text = capsys.readouterr()
    assert "Traceback" not in text.err
    assert "malformed annotations 2" in text.out and "degenerate boxes 1" in text.out
    assert "the same box twice (listed once) 1" in text.out
    assert "sizes read from the image 1" in text.out
    assert "image_id [1] is not among the images" in text.err
    assert check_dataset(str(out / "obj.data")).problem_count() == 0


@pytest.mark.parametrize("fmt", ["coco", "voc", "labelme", "bdd", "yolo", "kitti"])
def test_mutated_annotations_convert_clean_or_are_refused(tmp_path, fmt):
    """tools/data_convert_fuzz.py's first seeds: values of the wrong kind or edge values in
    the annotations convert to a set data check finds clean, or are refused with a message."""
    sys.path.insert(0, str(ROOT / "tools"))
    import data_convert_fuzz as fuzz
    from pydarknet.datasets.check import check_dataset
    from pydarknet.errors import PydarknetError
    for seed in range(40):
        folder = tmp_path / str(seed)
        folder.mkdir()
        try:
            fuzz.FORMATS[fmt](np.random.default_rng(seed), folder)
        except PydarknetError:
            continue
        report = check_dataset(str(folder / "out" / "obj.data"))
        assert report.problem_count() == 0, (seed, dict(report.counts))


def test_coco_link_names_keep_the_image_id():
    from pydarknet.datasets.coco import darknet_coco_image_id, link_name_for_id
    from pydarknet.eval.coco import image_id_from_path
    cases = {("000000000139.jpg", 139): "000000000139.jpg",
             ("COCO_val2014_000000000042.jpg", 42): "COCO_val2014_000000000042.jpg",
             ("dog.jpg", 5): "dog_5.jpg", ("sub/dog.jpg", 5): "dog_5.jpg",
             ("2008_000123.jpg", 5): "img_2008_000123_5.jpg",
             ("a.b.jpg", 3): "img_a_b_3.jpg", ("17.jpg", 3): "img_17_3.jpg"}
    for (name, image_id), want in cases.items():
        got = link_name_for_id(name, image_id, "/data/myset/images/train")
        assert got == want, (name, got)
        assert image_id_from_path(got) == image_id
        assert darknet_coco_image_id(f"/data/myset/images/train/{got}") == image_id
    # without '_' in the name, Darknet reads the number after the folder's last '_'
    assert link_name_for_id("139.jpg", 139, "/a_b/images/train") == "139_139.jpg"


def test_coco_round_trip_ap_one(tmp_path, capsys):
    """COCO -> Darknet -> results json as ``detector valid`` writes it, the detections being
    the converted ground truth -> pycocotools gives AP 1.0 against the original json."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from pydarknet.eval.decode import Detections
    from pydarknet.eval.results import ValidationResults, category_ids_from_data
    from pydarknet.errors import Problems
    images = [{"id": 300 + i, "file_name": f"img{i}.jpg", "width": 80, "height": 60}
              for i in range(4)] + [{"id": 77, "file_name": "000000000077.jpg", "width": 50,
                                     "height": 70}]
    rng = np.random.default_rng(0)
    anns = []
    for im in images:
        for _ in range(3):
            w, h = rng.uniform(8, 30, 2)
            x, y = rng.uniform(0, im["width"] - w), rng.uniform(0, im["height"] - h)
            anns.append({"id": len(anns) + 1, "image_id": im["id"],
                         "category_id": int(rng.choice([5, 2, 44])),
                         "bbox": [float(x), float(y), float(w), float(h)], "iscrowd": 0})
    cats = [{"id": 44, "name": "bottle"}, {"id": 2, "name": "bicycle"},
            {"id": 5, "name": "airplane"}]
    ann, img_dir = _coco(tmp_path, images=images, anns=anns, cats=cats)
    out = tmp_path / "rt"
    assert main(["data", "coco", ann, img_dir, str(out), "--valid-json", ann]) == 0
    capsys.readouterr()
    data = read_data_file(out / "obj.data")
    names = read_names(data["names"])
    results = ValidationResults(names, coco=data["eval"] == "coco",
                                category_ids=category_ids_from_data(data, len(names)))
    problems = Problems()
    for i, path in enumerate(read_list(data["valid"])):
        truth = read_labels(label_path(path), len(names))
        w, h = cv2.imread(path).shape[1::-1]
        probs = np.zeros((len(truth), len(names)), np.float32)
        probs[np.arange(len(truth)), truth[:, 0].astype(int)] = 1
        dets = Detections(truth[:, 1:].astype(np.float32), np.ones(len(truth), np.float32),
                          probs, np.zeros(len(truth), np.int32), np.arange(len(truth)), (w, h))
        results.add(i, path, dets, problems)
    json_path, _ = results.write(str(tmp_path / "results"))
    assert results.unnumbered == 0 and not problems.total()
    gt = COCO(ann)
    ev = COCOeval(gt, gt.loadRes(json_path), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0) and ev.stats[1] == pytest.approx(1.0)


def test_detector_valid_writes_the_original_ids(tmp_path, capsys, monkeypatch):
    """``detector valid`` on a converted set (a 3-class network, random weights): the image
    ids and category ids in its json are COCO's."""
    from pydarknet.cli.common import builtin_cfg
    ann, img_dir = _coco(tmp_path)
    out = tmp_path / "out"
    assert main(["data", "coco", ann, img_dir, str(out), "--valid-json", ann]) == 0
    monkeypatch.chdir(tmp_path)
    assert main(["detector", "valid", str(out / "obj.data"), builtin_cfg("demo-shapes.cfg"),
                 "-thresh", "0.0"]) == 0
    assert "category ids from the .data file's category_ids" in capsys.readouterr().out
    results = json.loads((tmp_path / "results" / "coco_results.json").read_text())
    assert results and {r["image_id"] for r in results} <= {139, 7, 12}
    assert {r["image_id"] for r in results} == {139, 7, 12}
    assert {r["category_id"] for r in results} <= {1, 3, 18}


def test_converted_set_feeds_the_detection_loader(tmp_path, capsys):
    from pydarknet.data import DetectionDataset
    ann, img_dir = _coco(tmp_path)
    out = tmp_path / "out"
    assert main(["data", "coco", ann, img_dir, str(out)]) == 0
    data = read_data_file(out / "obj.data")
    ds = DetectionDataset(read_list(data["train"]), data["classes"], augment=False)
    rng = np.random.default_rng(0)
    for i in range(len(ds)):
        image, truth = ds.sample(rng, 32, 32, index=i)
        assert image.shape == (3, 32, 32)
    assert ds.labels(2).shape == (2, 5) and not ds.problems.total()


# -- Ultralytics / Roboflow YOLO ---------------------------------------------------------------
def _yolo(tmp_path, yaml_text=None):
    """An Ultralytics layout: images/{train,val}/ with labels/{train,val}/ beside, a yaml."""
    root = tmp_path / "ds"
    _image(root / "images" / "train" / "a.jpg", 40, 30)
    _image(root / "images" / "train" / "b.png", 20, 20)             # no label file
    _image(root / "images" / "train" / "sub" / "a.jpg", 16, 16)     # the same name, deeper
    _image(root / "images" / "val" / "v.jpg", 30, 30)
    (root / "images" / "train" / "notes.txt").write_text("not an image")
    labels = root / "labels"
    (labels / "train" / "sub").mkdir(parents=True)
    (labels / "val").mkdir()
    (labels / "train" / "a.txt").write_text(
        "0 0.5 0.5 0.2 0.4\n"                       # a box
        "1 0.1 0.1 0.3 0.1 0.3 0.5 0.1 0.5\n"       # a polygon: box 0.1..0.3 x 0.1..0.5
        "0 0.5 0.5 0.2 0.4\n"                       # the same box again
        "5 0.5 0.5 0.1 0.1\n"                       # class out of range
        "1 0.95 0.5 0.2 0.2\n"                      # beyond the right edge: cut
        "0 x 0.5 0.1 0.1\n")
    (labels / "train" / "sub" / "a.txt").write_text("1 0.5 0.5 1 1\n")
    (labels / "val" / "v.txt").write_text("0 0.25 0.25 0.5 0.5\n")
    (root / "data.yaml").write_text(yaml_text or
                                    "path: .\ntrain: images/train\nval: images/val\n"
                                    "test:\nnames:\n  0: cat\n  1: dog\n")
    return root


def test_yolo_layout_polygons_and_summary(tmp_path, capsys):
    root = _yolo(tmp_path)
    out = tmp_path / "out"
    assert main(["data", "yolo", str(root / "data.yaml"), str(out)]) == 0
    text = capsys.readouterr()
    data = read_data_file(out / "obj.data")
    assert data["classes"] == 2 and read_names(data["names"]) == ["cat", "dog"]
    train = read_list(data["train"])
    assert [os.path.basename(p) for p in train] == ["a.jpg", "b.png", "sub_1_a.jpg"]
    boxes = read_labels(label_path(train[0]))
    np.testing.assert_allclose(boxes, [[0, 0.5, 0.5, 0.2, 0.4], [1, 0.2, 0.3, 0.2, 0.4],
                                       [1, 0.925, 0.5, 0.15, 0.2]], atol=1e-6)
    assert read_labels(label_path(train[1])).shape == (0, 5)       # a background image
    np.testing.assert_allclose(read_labels(label_path(train[2])), [[1, 0.5, 0.5, 1, 1]])
    assert len(read_list(data["valid"])) == 1
    assert "train: 3 images (1 without objects), 4 boxes" in text.out
    assert "malformed label lines 2" in text.out
    assert "a.txt:4: class 5 outside 0..1" in text.err and "a.txt:6: not numbers" in text.err
    for note in ("boxes cut to the image 1", "the same box twice (listed once) 1",
                 "images without a label file (no objects) 1"):
        assert note in text.out
    before = _tree(out)
    assert main(["data", "yolo", str(root / "data.yaml"), str(out)]) == 0   # again: the same
    assert _tree(out) == before


def test_yolo_roboflow_paths_lists_and_errors(tmp_path, capsys):
    root = _yolo(tmp_path, "train: ../images/train\nval: [val.txt]\nnc: 2\n"
                           "names: ['cat', 'dog']\n")
    (root / "val.txt").write_text("./images/val/v.jpg\n")
    out = tmp_path / "out"
    assert main(["data", "yolo", str(root / "data.yaml"), str(out)]) == 0
    data = read_data_file(out / "obj.data")
    assert len(read_list(data["train"])) == 3 and len(read_list(data["valid"])) == 1
    for yaml_text, message in (
            ("val: images/val\nnames: [a, b]\n", "no 'train:' split"),
            ("train: nowhere\nnames: [a, b]\n", "train: nowhere"),
            ("train: images/train\nnames: {0: a, 2: b}\n", "without gaps"),
            ("train: images/train\nnc: 3\nnames: [a, b]\n", "nc = 3, but names holds 2"),
            ("train: images/train\n", "no class names"),
            ("[1, 2]\n", "expected a mapping")):
        (root / "data.yaml").write_text(yaml_text)
        assert main(["data", "yolo", str(root / "data.yaml"), str(tmp_path / "bad")]) != 0
        assert message in capsys.readouterr().err, yaml_text
    assert not (tmp_path / "bad").exists()
    from pydarknet.datasets.yolo import parse_yolo_label
    pose = "0 0.5 0.5 0.2 0.2 0.1 0.1 2"                  # a box and one keypoint (x, y, v)
    box, cut = parse_yolo_label(pose, 1, pose=True)
    assert box == pytest.approx((0, 0.5, 0.5, 0.2, 0.2)) and not cut
    assert "8 values" in parse_yolo_label(pose, 1)


# -- Pascal VOC --------------------------------------------------------------------------------
def _voc_xml(objects, size=(50, 40)):
    parts = ["<annotation><folder>VOC</folder>"]
    if size:
        parts.append(f"<size><width>{size[0]}</width><height>{size[1]}</height>"
                     "<depth>3</depth></size>")
    for name, difficult, box in objects:
        parts.append(f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox>"
                     + "".join(f"<{k}>{v}</{k}>" for k, v in zip(
                         ("xmin", "ymin", "xmax", "ymax"), box)) + "</bndbox></object>")
    return "".join(parts) + "</annotation>"


def _voc(tmp_path):
    root = tmp_path / "VOCdevkit"
    sets = {"2007": {"trainval": ["000005", "000007"], "test": ["000009"]},
            "2012": {"trainval": ["2008_000001", "2008_000002", "2008_000003"]}}
    xmls = {
        "000005": _voc_xml([("dog", 0, (1, 1, 25, 21)), ("person", 1, (5, 5, 10, 10)),
                            ("cat", 0, (40, 30, 60, 50))]),
        "000007": _voc_xml([]),
        "000009": _voc_xml([("car", 0, (11, 11, 30, 20))]),
        "2008_000001": _voc_xml([("dog", 0, (2, 2, 8, 8)), ("unicorn", 0, (1, 1, 4, 4))],
                                size=None),
        "2008_000002": "<annotation><object>",
        "2008_000003": _voc_xml([("bird", 0, (9, 9, 9, 20)), ("bird", 0, ("a", 1, 2, 3))]),
    }
    for year, lists in sets.items():
        base = root / f"VOC{year}"
        (base / "ImageSets" / "Main").mkdir(parents=True)
        (base / "Annotations").mkdir()
        for name, ids in lists.items():
            (base / "ImageSets" / "Main" / f"{name}.txt").write_text("\n".join(ids) + "\n")
            for i in ids:
                (base / "Annotations" / f"{i}.xml").write_text(xmls[i])
                _image(base / "JPEGImages" / f"{i}.jpg", 50, 40)
    return root


def test_voc_layout_boxes_summary_and_idempotence(tmp_path, capsys):
    root = _voc(tmp_path)
    out = tmp_path / "voc"
    assert main(["data", "voc", str(root), str(out)]) == 0
    text = capsys.readouterr()
    assert "train: 4 images (2 without objects), 3 boxes" in text.out
    assert "valid: 1 images, 1 boxes" in text.out
    for skip in ("difficult objects 1", "objects of other classes 1", "malformed objects 1",
                 "degenerate boxes 1", "missing or malformed xml 1"):
        assert skip in text.out, skip
    assert "sizes read from the image 1" in text.out and "boxes clipped to the image 1" in text.out
    assert "2008_000002.xml:1:" in text.err and "not well-formed" in text.err
    assert "2008_000001.xml: object 2 (unicorn)" in text.err
    data = read_data_file(out / "obj.data")
    assert data["classes"] == 20 and read_names(data["names"])[11] == "dog"
    train = read_list(data["train"])
    assert [os.path.basename(p) for p in train] == ["000005.jpg", "000007.jpg",
                                                    "2008_000001.jpg", "2008_000003.jpg"]
    # voc_label.py: x = ((1 + 25) / 2 - 1) / 50, w = (25 - 1) / 50
    np.testing.assert_allclose(read_labels(label_path(train[0])),
                               [[11, 12 / 50, 10 / 40, 24 / 50, 20 / 40],
                                [7, 44.5 / 50, 34.5 / 40, 11 / 50, 11 / 40]], atol=1e-6)
    valid = read_list(data["valid"])
    np.testing.assert_allclose(read_labels(label_path(valid[0])),
                               [[6, 19.5 / 50, 14.5 / 40, 19 / 50, 9 / 40]], atol=1e-6)
    before = _tree(out)
    assert main(["data", "voc", str(root), str(out)]) == 0
    assert _tree(out) == before


def test_voc_classes_sets_and_errors(tmp_path, capsys):
    root = _voc(tmp_path)
    out = tmp_path / "voc"
    assert main(["data", "voc", str(root), str(out), "--sets", "2007/trainval",
                 "--valid-sets", "none", "--classes", "person,dog,zebra",
                 "--keep-difficult"]) == 0
    text = capsys.readouterr()
    assert "train: 2 images (1 without objects), 2 boxes" in text.out
    assert "classes without any box 1" in text.out and "zebra" in text.err
    data = read_data_file(out / "obj.data")
    assert "valid" not in data and read_names(data["names"]) == ["person", "dog", "zebra"]
    assert main(["data", "voc", str(root), str(out), "--sets", "2010/train"]) == 2
    assert "2010/train" in capsys.readouterr().err
    assert main(["data", "voc", str(root), str(out), "--sets", "2007-train"]) == 2
    assert "YEAR/SET" in capsys.readouterr().err
    assert read_names(data["names"]) == ["person", "dog", "zebra"]     # older output kept


def test_voc_infinite_size_and_an_object_twice(tmp_path, capsys):
    """<width>inf</width> is no size (read from the image, not an OverflowError); the same
    object twice is written once."""
    base = tmp_path / "VOCdevkit" / "VOC2007"
    (base / "ImageSets" / "Main").mkdir(parents=True)
    (base / "Annotations").mkdir()
    (base / "ImageSets" / "Main" / "trainval.txt").write_text("000001\n")
    _image(base / "JPEGImages" / "000001.jpg", 50, 40)
    (base / "Annotations" / "000001.xml").write_text(_voc_xml(
        [("dog", 0, (1, 1, 25, 21)), ("dog", 0, (1, 1, 25, 21))], size=("inf", 40)))
    out = tmp_path / "voc"
    assert main(["data", "voc", str(tmp_path / "VOCdevkit"), str(out), "--sets",
                 "2007/trainval", "--valid-sets", "none"]) == 0
    text = capsys.readouterr()
    assert "sizes read from the image 1" in text.out
    assert "the same box twice (listed once) 1" in text.out and "1 boxes" in text.out
    labels = read_labels(label_path(read_list(read_data_file(out / "obj.data")["train"])[0]))
    np.testing.assert_allclose(labels, [[11, 12 / 50, 10 / 40, 24 / 50, 20 / 40]], atol=1e-6)


# -- idx ---------------------------------------------------------------------------------------
def _idx(path, array, zipped=True, cut=0):
    array = np.asarray(array, np.uint8)
    data = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                  *array.shape)
    data += array.tobytes()
    if cut:
        data = data[:-cut]
    if zipped:
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return str(path)


def _mnist_like(tmp_path, prefix, n, zipped=True, cut=0, labels=None):
    rng = np.random.default_rng(n)
    images = rng.integers(0, 256, (n, 6, 5), np.uint8)
    labels = np.arange(n) % 10 if labels is None else np.asarray(labels)
    return (_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images, zipped, cut),
            _idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels, zipped), images, labels)


def test_idx_fashion_train_and_valid_in_one_folder(tmp_path, capsys):
    from pydarknet.data import ClassificationDataset
    from pydarknet.datasets.idx import NAME_PRESETS
    tr_img, tr_lab, tr_images, tr_labels = _mnist_like(tmp_path, "train", 23)
    te_img, te_lab, _, _ = _mnist_like(tmp_path, "t10k", 7, zipped=False)
    out = tmp_path / "fashion"
    assert main(["data", "idx", tr_img, tr_lab, str(out), "--names", "fashion-mnist"]) == 0
    text = capsys.readouterr().out
    assert "train: 23 images" in text and "T-shirt_top 3, Trouser 3" in text
    first = _tree(out)
    assert main(["data", "idx", te_img, te_lab, str(out), "--names", "fashion-mnist",
                 "--list", "valid"]) == 0
    text = capsys.readouterr().out
    assert "valid: 7 images" in text and "train: 23 images kept from the earlier run" in text
    data = read_data_file(out / "obj.data")
    names = read_names(data["labels"])
    assert names == ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                     "Sneaker", "Bag", "Ankle_boot"]
    assert len(NAME_PRESETS["fashion-mnist"]) == 10 and data["classes"] == 10
    assert data["top"] == 5
    train, valid = read_list(data["train"]), read_list(data["valid"])
    assert len(train) == 23 and len(valid) == 7
    assert {k: v for k, v in _tree(out).items() if k.startswith("train")} == \
        {k: v for k, v in first.items() if k.startswith("train")}
    for i, path in enumerate(train):
        assert class_from_path(path, names) == tr_labels[i]
        np.testing.assert_array_equal(cv2.imread(path, cv2.IMREAD_UNCHANGED), tr_images[i])
    ds = ClassificationDataset(train + valid, names, channels=1, augment=False)
    assert [ds.class_of(i) for i in range(len(train))] == list(tr_labels)
    # the same run again: the same folder
    before = _tree(out)
    assert main(["data", "idx", te_img, te_lab, str(out), "--names", "fashion-mnist",
                 "--list", "valid"]) == 0
    assert _tree(out) == before
    # other names than the kept list's: refused, the folder unchanged
    assert main(["data", "idx", te_img, te_lab, str(out), "--list", "valid"]) == 2
    assert "give the same --names" in capsys.readouterr().err
    assert _tree(out) == before


def test_idx_bad_inputs(tmp_path, capsys):
    img, lab, _, _ = _mnist_like(tmp_path, "cut", 12, cut=45)           # 1.5 images short
    out = tmp_path / "cut"
    assert main(["data", "idx", img, lab, str(out), "--limit", "100"]) == 0
    text = capsys.readouterr()
    assert "train: 10 images" in text.out
    assert "records missing from truncated idx files 2" in text.out
    assert "records without a partner 2" in text.out
    assert "cut-images-idx3-ubyte.gz: truncated: its header promises 12 records" in text.err
    names = read_names(out / "obj.names")
    assert names == [f"class_{k}" for k in range(10)]
    assert main(["data", "idx", img, lab, str(tmp_path / "lim"), "--limit", "4"]) == 0
    assert "train: 4 images" in capsys.readouterr().out
    assert main(["data", "idx", lab, img, str(tmp_path / "swapped")]) == 2
    assert "expected images" in capsys.readouterr().err
    junk = tmp_path / "junk.gz"
    junk.write_bytes(b"hello world")
    assert main(["data", "idx", str(junk), lab, str(tmp_path / "junk")]) == 2
    assert "junk.gz: not an idx file" in capsys.readouterr().err
    img2, lab2, _, _ = _mnist_like(tmp_path, "shuffled", 12, labels=[(i * 3 + 1) % 10
                                                                      for i in range(12)])
    assert main(["data", "idx", img2, lab2, str(tmp_path / "dig"), "--names",
                 ",".join(str(k) for k in range(10))]) == 2
    assert "choose names that are not numbers" in capsys.readouterr().err
    assert main(["data", "idx", img, lab, str(tmp_path / "sub"), "--names",
                 "cat,bobcat,a,b,c,d,e,f,g,h"]) == 2
    assert "'cat' is part of 'bobcat'" in capsys.readouterr().err
    assert main(["data", "idx", img, lab, str(tmp_path / "few"), "--names", "a,b"]) == 0
    text = capsys.readouterr().out
    assert "labels outside the classes 8" in text and "train: 2 images" in text
    assert not (tmp_path / "dig").exists() and not (tmp_path / "sub").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_detector_map_scores_a_converted_set_against_the_original_json(tmp_path, capsys):
    """``detector map --annotations`` finds the images of a converted set in the original json
    through their links (renamed to keep the image id) and maps the classes by name."""
    from pydarknet.cli.common import builtin_cfg
    ann, img_dir = _coco(tmp_path)
    out = tmp_path / "out"
    assert main(["data", "coco", ann, img_dir, str(out), "--valid-json", ann]) == 0
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        assert main(["detector", "map", str(out / "obj.data"), builtin_cfg("demo-shapes.cfg"),
                     "--annotations", ann]) == 0
    assert not [w for w in caught if "not in the annotation file" in str(w.message)]
    assert "COCO metrics (pycocotools)" in capsys.readouterr().out


# -- CIFAR-10 ----------------------------------------------------------------------------------
def _cifar_records(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    return labels, pixels


def test_cifar_binary_and_python_versions_give_the_same_set(tmp_path, capsys):
    import pickle
    from pydarknet.data.classification import ClassificationDataset
    binary, python = tmp_path / "cifar-10-batches-bin", tmp_path / "cifar-10-batches-py"
    binary.mkdir()
    python.mkdir()
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"]
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        labels, pixels = _cifar_records(3, k)
        records = np.concatenate([labels[:, None], pixels], axis=1)
        (binary / f"{name}.bin").write_bytes(records.tobytes())
        with open(python / name, "wb") as f:
            pickle.dump({b"data": pixels, b"labels": labels.tolist(),
                         b"batch_label": b"x"}, f)
    (binary / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    with open(python / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [n.encode() for n in names]}, f)
    outs = {}
    for src in (binary, python):
        out = tmp_path / f"out-{src.name}"
        assert main(["data", "cifar", str(src), str(out)]) == 0
        assert "train: 15 images" in capsys.readouterr().out
        outs[src.name] = out
        data = read_data_file(out / "obj.data")
        assert data["classes"] == 10 and data["top"] == 2
        assert read_names(data["labels"]) == names
        train, valid = read_list(data["train"]), read_list(data["valid"])
        assert len(train) == 15 and len(valid) == 3
        labels, pixels = _cifar_records(3, 0)
        first = cv2.imread(train[0])[:, :, ::-1]             # RGB
        np.testing.assert_array_equal(first, pixels[0].reshape(3, 32, 32).transpose(1, 2, 0))
        assert class_from_path(train[0], names) == labels[0]
        ds = ClassificationDataset(train, names, augment=False)
        assert ds.sample(np.random.default_rng(0), 32, 32, index=1)[0].shape == (3, 32, 32)
    a, b = (_tree(o / "train") for o in outs.values())
    assert a == b
    # a pickle that would build anything else is refused before it runs
    with open(python / "data_batch_2", "wb") as f:
        pickle.dump({b"data": os.system}, f)
    assert main(["data", "cifar", str(python), str(tmp_path / "evil")]) != 0
    assert "posix.system is not part of a CIFAR batch" in capsys.readouterr().err
    (binary / "data_batch_3.bin").write_bytes(b"\x01" * 100)            # short of a record
    assert main(["data", "cifar", str(binary), str(tmp_path / "short")]) != 0
    assert "holds no complete 3073-byte record" in capsys.readouterr().err
    assert main(["data", "cifar", str(tmp_path), str(tmp_path / "none")]) != 0
    assert "no data_batch_1..5" in capsys.readouterr().err
