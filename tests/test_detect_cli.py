"""The inference and evaluation commands end to end on a tiny detector and classifier, and the
bad inputs they must survive (or refuse with a clear message)."""

import json
import os
import pathlib
import re
import warnings

import cv2
import numpy as np
import pytest

from pydarknet.cli import main
from pydarknet.detector import detect_detections
from pydarknet.image import network_input
from pydarknet.network import load_cfg_text

DET_CFG = """
[net]
width=64
height=64
channels=3

[convolutional]
filters=8
size=3
stride=2
pad=1
activation=leaky

[maxpool]
size=4
stride=4

[convolutional]
filters=21
size=1
stride=1
pad=1
activation=linear

[yolo]
mask=0,1,2
anchors=8,10, 20,24, 40,30
classes=2
num=3
"""

CLS_CFG = """
[net]
width=32
height=32
channels=3

[convolutional]
filters=8
size=3
stride=2
pad=1
activation=leaky

[avgpool]

[connected]
output=3
activation=linear

[softmax]
"""

SIZES = [(64, 64), (90, 50), (40, 120), (100, 77), (70, 70), (120, 40)]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("det"))


def make_dataset(root):
    """A detector (cfg + weights), 12 images in images/ with their labels beside them: the
    detector's own detections above 0.5 (so its mAP must be exactly 1 for every class with
    truths), a .data file, a names file, all in the folder ``root``."""
    root = pathlib.Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    imgs = [cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), np.uint8), (3, 3), 0)
            for w, h in SIZES * 2]
    net = load_cfg_text(DET_CFG, batch=1)
    net.forward(np.stack([network_input(im, 64, 64) for im in imgs]))
    # the last conv, standardised on these images: every cell's objectness and class scores
    # vary, a few percent of the (cell, anchor, class) end up above 0.5
    f = net.outputs[1]
    mean, std = f.mean((0, 2, 3)), f.std((0, 2, 3)) + 1e-6
    spread = np.array([1, 1, 0.4, 0.4, 1.5, 1.5, 1.5])
    w = rng.normal(0, 1, (3, 7, 8)) * spread[None, :, None] / (np.sqrt(8) * std)
    b = -(w * mean).sum(-1)
    b[:, 4:] -= 1
    conv = net.layers[2]
    conv.params["weights"][...] = w.reshape(conv.params["weights"].shape)
    conv.params["biases"][...] = b.ravel()
    (root / "tiny.cfg").write_text(DET_CFG)
    net.save_weights(root / "tiny.weights")
    (root / "images").mkdir()
    paths, classes_seen = [], set()
    for i, img in enumerate(imgs):
        p = root / "images" / f"{i:012d}.{'png' if i % 3 == 0 else 'jpg'}"
        cv2.imwrite(str(p), img)
        img = cv2.imread(str(p))
        d = detect_detections(net, [img], 0.005, 0.45)[0]
        rows, cls, score = d.pairs(0.5)
        lines = [f"{c} {b[0]:f} {b[1]:f} {b[2]:f} {b[3]:f}\n" for c, b in
                 zip(cls, d.boxes[rows])]
        classes_seen |= set(cls.tolist())
        p.with_suffix(".txt").write_text("".join(lines))
        paths.append(str(p))
    assert classes_seen == {0, 1}, "both classes need truth boxes"
    (root / "valid.txt").write_text("\n".join(paths) + "\n")
    (root / "names").write_text("cat\ndog\n")
    (root / "obj.data").write_text(f"classes = 2\ntrain = {root / 'valid.txt'}\n"
                                   f"valid = {root / 'valid.txt'}\nnames = {root / 'names'}\n"
                                   f"results = {root / 'results'}\neval = coco\n")
    return root


def run(capsys, *args, warned=None):
    """Run the command line; its warnings (skipped inputs) go to the list ``warned``."""
    with warnings.catch_warnings(record=True) as rec:
        code = main([str(a) for a in args])
    if warned is not None:
        warned.extend(str(w.message) for w in rec)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_map_is_one_on_its_own_detections(dataset, capsys):
    d = dataset
    for points in (0, 11, 101):
        code, out, err = run(capsys, "detector", "map", d / "obj.data", d / "tiny.cfg",
                             d / "tiny.weights", "-points", points, "-thresh", 0.5,
                             "--json", d / "m.json")
        assert code == 0, err
        assert "mean average precision (mAP@0.50) = 1.000000" in out
        r = json.loads((d / "m.json").read_text())
        assert r["images"] == 12 and r["fp"] == 0 and r["fn"] == 0
    assert "class_id = 1, name = dog, ap = 100.00%" in out
    assert "COCO metrics" in out and r["coco"]["AP50"] == pytest.approx(1.0)   # eval = coco
    # a stricter IoU threshold, still exact boxes
    code, out, _ = run(capsys, "detector", "map", d / "obj.data", d / "tiny.cfg",
                       d / "tiny.weights", "-iou_thresh", 0.9)
    assert "mAP@0.90) = 1.000000" in out
    # -letter_box letter-boxes here; Darknet's map ignores the flag, which the note says
    code, out, err = run(capsys, "detector", "map", d / "obj.data", d / "tiny.cfg",
                         d / "tiny.weights", "-letter_box")
    assert code == 0 and "Darknet's detector map ignores the flag" in err


def test_coco_metrics_from_an_annotation_file(dataset, tmp_path, capsys):
    """Ground truth from a COCO json (images by file name, categories by name, other ids)."""
    d = dataset
    images, anns = [], []
    for i, p in enumerate((d / "valid.txt").read_text().split()):
        h, w = cv2.imread(p).shape[:2]
        images.append({"id": 500 + i, "file_name": os.path.basename(p), "width": w, "height": h})
        for line in open(os.path.splitext(p)[0] + ".txt"):
            c, x, y, bw, bh = (float(v) for v in line.split())
            x0, y0 = max((x - bw / 2) * w, 0), max((y - bh / 2) * h, 0)
            x1, y1 = min((x + bw / 2) * w, w), min((y + bh / 2) * h, h)
            anns.append({"id": len(anns) + 1, "image_id": 500 + i, "category_id": [17, 18][int(c)],
                         "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
                         "iscrowd": 0})
    ann = tmp_path / "instances.json"
    ann.write_text(json.dumps({"images": images, "annotations": anns, "categories": [
        {"id": 17, "name": "cat"}, {"id": 18, "name": "dog"}]}))
    code, out, err = run(capsys, "detector", "map", d / "obj.data", d / "tiny.cfg",
                         d / "tiny.weights", "--annotations", ann, "--json", tmp_path / "m.json")
    assert code == 0, err
    r = json.loads((tmp_path / "m.json").read_text())
    assert r["coco"]["AP50"] == pytest.approx(1.0) and r["coco"]["images"] == 12
    assert [c["category_id"] for c in r["coco"]["per_class"]] == [17, 18]
    assert [c["name"] for c in r["coco"]["per_class"]] == ["cat", "dog"]


def test_map_skips_and_reports_bad_inputs(dataset, tmp_path, capsys):
    d = dataset
    paths = (d / "valid.txt").read_text().split()
    bad_img = tmp_path / "broken.jpg"
    bad_img.write_bytes(b"not a jpeg at all")
    bad_img.with_suffix(".txt").write_text("")
    labelled = tmp_path / "a.jpg"
    cv2.imwrite(str(labelled), cv2.imread(paths[1]))
    labelled.with_suffix(".txt").write_text(
        open(os.path.splitext(paths[1])[0] + ".txt").read() +
        "0 0.5 0.5\nx 0.1 0.2 0.3 0.4\n7 0.5 0.5 0.1 0.1\n1 0.5 0.5 0 0.2\n")
    nolabel = tmp_path / "nolabel.jpg"
    cv2.imwrite(str(nolabel), cv2.imread(paths[2]))
    lst = tmp_path / "valid.txt"
    lst.write_text("\n".join(paths[:4] + [str(tmp_path / "missing.jpg"), str(bad_img),
                                          str(labelled), str(nolabel)]) + "\n")
    data = tmp_path / "obj.data"
    data.write_text(f"classes = 2\nvalid = {lst}\nnames = {d / 'names'}\n")
    rec = []
    code, out, err = run(capsys, "detector", "map", data, d / "tiny.cfg", d / "tiny.weights",
                         warned=rec)
    assert code == 0, err
    msgs = "\n".join(rec)
    assert f"{tmp_path / 'missing.jpg'}: image not found; skipped" in msgs
    assert f"{bad_img}: cannot decode the image" in msgs
    lp = labelled.with_suffix(".txt")
    n = len(open(os.path.splitext(paths[1])[0] + ".txt").read().splitlines())
    assert f"{lp}:{n + 1}: expected 5 values 'class x y w h', found 3" in msgs
    assert f"{lp}:{n + 2}: the class id must be an integer" in msgs
    assert f"{lp}:{n + 3}: class id 7 is outside 0..1 (classes=2)" in msgs
    assert f"{lp}:{n + 4}: width and height must be > 0" in msgs
    assert f"{nolabel.with_suffix('.txt')}: label file not found" in msgs
    assert "image missing: 1" in err and "image unreadable: 1" in err
    assert " images = 6" in out           # 8 listed, 2 unreadable: skipped, not evaluated
    # the image without labels counts as having no objects (Darknet): its detections are FPs
    r_map = float(out.split("(mAP@0.50) = ")[1].split(",")[0])
    assert 0 < r_map < 1


@pytest.mark.parametrize("case,expect", [
    ("empty", "the validation image list is empty"),
    ("no_list", "validation image list not found"),
    ("short_names", "the names file ends after 1 names, but"),
    ("unreadable", "none of the 2 validation images could be read"),
    ("no_labels", "no label file found for any of the 1 images"),
])
def test_map_refuses_what_cannot_be_evaluated(dataset, tmp_path, capsys, case, expect):
    d = dataset
    lst, names = tmp_path / "valid.txt", d / "names"
    lst.write_text("\n".join((d / "valid.txt").read_text().split()[:2]) + "\n")
    if case == "empty":
        lst.write_text("\n\n")
    elif case == "no_list":
        lst = tmp_path / "nothing.txt"
    elif case == "short_names":
        names = tmp_path / "names"
        names.write_text("cat\n")
    elif case == "unreadable":
        lst.write_text(f"{tmp_path / 'a.jpg'}\n{tmp_path / 'b.jpg'}\n")
    elif case == "no_labels":
        img = tmp_path / "x.jpg"
        cv2.imwrite(str(img), np.zeros((20, 20, 3), np.uint8))
        lst.write_text(f"{img}\n")
    data = tmp_path / "obj.data"
    data.write_text(f"classes = 2\nvalid = {lst}\nnames = {names}\n")
    code, out, err = run(capsys, "detector", "map", data, d / "tiny.cfg", d / "tiny.weights")
    assert code == 2
    assert "pydarknet: error:" in err and expect in err
    if case in ("empty", "no_list"):
        assert str(lst) in err
    if case == "short_names":
        assert f"{names}:1:" in err and "classes=2" in err


def test_detect_command(dataset, tmp_path, capsys):
    d = dataset
    imgs = (d / "valid.txt").read_text().split()
    out_dir, js = tmp_path / "out", tmp_path / "dets.json"
    code, out, err = run(capsys, "detect", d / "tiny.cfg", d / "tiny.weights", imgs[0], imgs[1],
                         tmp_path / "missing.jpg", "--names", d / "names", "--out", out_dir,
                         "--json", js, "-ext_output", "--thresh", 0.5)
    assert code == 0, err
    assert sorted(os.listdir(out_dir)) == sorted(os.path.basename(p) for p in imgs[:2])
    frames = json.loads(js.read_text())
    assert [f["filename"] for f in frames] == imgs[:2]
    n_objects = sum(len(f["objects"]) for f in frames)
    labels = sum(len(open(os.path.splitext(p)[0] + ".txt").read().splitlines())
                 for p in imgs[:2])
    assert n_objects == labels > 0           # the labels are these very detections
    lines = [ln for ln in out.splitlines() if "left_x:" in ln]
    assert len(lines) == labels
    assert all(ln.split(":")[0] in ("cat", "dog") for ln in lines)
    assert "image missing: 1" in err
    # a folder works as input too
    code, out, err = run(capsys, "detect", d / "tiny.cfg", d / "tiny.weights", d / "images",
                         "--no-save")
    assert code == 0 and out.count(": ") >= 12


def test_detection_outputs_that_cannot_be_written_say_where(dataset, tmp_path, capsys,
                                                           monkeypatch):
    """An output folder that cannot be made stops before the network runs, with the reason;
    a label file that cannot be written (-save_labels) is counted and the others go on."""
    d = dataset
    monkeypatch.chdir(tmp_path)           # (detector test writes predictions.jpg here)
    img = (d / "valid.txt").read_text().split()[0]
    (tmp_path / "a_file").write_text("")
    code, out, err = run(capsys, "detect", d / "tiny.cfg", d / "tiny.weights", img,
                         "--out", tmp_path / "a_file" / "boxes")
    assert code == 2 and "a_file/boxes: cannot make the output folder (Not a directory)" in err
    assert out == ""
    images = tmp_path / "set" / "JPEGImages"
    images.mkdir(parents=True)
    for name in ("a.jpg", "b.jpg"):
        (images / name).write_bytes(open(img, "rb").read())
    (tmp_path / "set" / "labels").write_text("")   # where JPEGImages' labels go: a file
    warned = []
    code, out, err = run(capsys, "detector", "test", d / "obj.data", d / "tiny.cfg",
                         d / "tiny.weights", images / "a.jpg", images / "b.jpg", "-thresh",
                         0.5, "-save_labels", "-dont_show", warned=warned)
    assert code == 0, err
    assert out.count("Predicted in") == 2
    assert any("labels/a.txt: cannot write the labels (Not a directory)" in w for w in warned)


def test_ext_output_rounds_as_c():
    """Darknet prints round((x - w / 2) * im.w) with "%4.0f": C's round of a float, halves
    away from zero (2.5 -> 3, where Python's round gives 2) and the sign of a zero kept
    (-0.1 -> "-0"); boxes ordered by their float left edges (tools/darknet_map_fuzz.py)."""
    from pydarknet.cli.detector import _darknet_lines
    from pydarknet.eval.decode import Detections
    boxes = np.array([[0.375, 0.5, 0.25, 0.5], [0.05, 0.5, 0.12, 0.25]], np.float32)
    dets = Detections(boxes, np.ones(2, np.float32), np.array([[0.9], [0.8]], np.float32),
                      np.zeros(2, np.int32), np.arange(2), (10, 20))
    assert _darknet_lines(dets, ["a"], 0.5, True) == [
        "a: 80%\t(left_x:   -0   top_y:    8   width:    1   height:    5)",
        "a: 90%\t(left_x:    3   top_y:    5   width:    3   height:   10)"]


def test_detector_test_writes_predictions(dataset, tmp_path, capsys, monkeypatch):
    d = dataset
    monkeypatch.chdir(tmp_path)
    img = (d / "valid.txt").read_text().split()[3]
    code, out, err = run(capsys, "detector", "test", d / "obj.data", d / "tiny.cfg",
                         d / "tiny.weights", img, "-thresh", 0.5, "-dont_show", "-out", "r.json",
                         "-benchmark_layers")
    assert code == 0, err
    assert "layers by time" in out
    assert re.fullmatch(rf"{re.escape(img)}: Predicted in \d+\.\d{{6}} milli-seconds\.",
                        out.splitlines()[0])                # Darknet's line, before the boxes
    assert (tmp_path / "predictions.jpg").exists()
    frames = json.loads((tmp_path / "r.json").read_text())
    assert frames[0]["frame_id"] == 1 and frames[0]["filename"] == img
    # -save_labels: the best class of every box above thresh, as the image's label file
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(open(img, "rb").read())
    code, out, err = run(capsys, "detector", "test", d / "obj.data", d / "tiny.cfg",
                         d / "tiny.weights", copy, "-thresh", 0.5, "-save_labels")
    assert code == 0, err
    mine = [ln.split() for ln in (tmp_path / "copy.txt").read_text().splitlines()]
    truth = [ln.split() for ln in open(os.path.splitext(img)[0] + ".txt").read().splitlines()]
    boxes = np.array([[float(v) for v in t[1:]] for t in truth])
    assert mine and all(np.abs(boxes - [float(v) for v in m[1:]]).max(1).min() < 1e-4
                        for m in mine)


def test_detector_test_reads_image_paths_on_standard_input(dataset, tmp_path, capsys,
                                                          monkeypatch):
    """Darknet's `detector test data cfg weights -dont_show -ext_output < list > result`."""
    import io
    d = dataset
    monkeypatch.chdir(tmp_path)
    imgs = (d / "valid.txt").read_text().split()[:3]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(imgs) + "\n\n"))
    code, out, err = run(capsys, "detector", "test", d / "obj.data", d / "tiny.cfg",
                         d / "tiny.weights", "-dont_show", "-ext_output")
    assert code == 0, err
    assert [ln.split(": Predicted")[0] for ln in out.splitlines()
            if ": Predicted in " in ln] == imgs
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, out, err = run(capsys, "detector", "test", d / "obj.data", d / "tiny.cfg",
                         d / "tiny.weights")
    assert code != 0 and "image paths on standard input" in err


def test_detector_valid_writes_coco_results(dataset, capsys):
    d = dataset
    code, out, err = run(capsys, "detector", "valid", d / "obj.data", d / "tiny.cfg",
                         d / "tiny.weights")
    assert code == 0, err
    res = json.loads((d / "results" / "coco_results.json").read_text())
    assert {r["image_id"] for r in res} <= set(range(12)) and len({r["image_id"] for r in res}) > 6
    assert {r["category_id"] for r in res} == {0, 1}       # 2 classes: class index ids
    assert all(len(r["bbox"]) == 4 and r["score"] > 0.001 for r in res)
    assert "category id = class index" in out


def test_detector_valid_writes_voc_files(dataset, tmp_path, capsys):
    """eval=voc (Darknet's default): per-class comp4 files with 1-based, clipped corners,
    holding the same detections as the COCO json."""
    d = dataset
    data = tmp_path / "voc.data"
    data.write_text(f"classes = 2\nvalid = {d / 'valid.txt'}\nnames = {d / 'names'}\n"
                    f"results = {tmp_path / 'res'}\n")
    code, out, err = run(capsys, "detector", "valid", data, d / "tiny.cfg", d / "tiny.weights",
                         "-out", "mine_")
    assert code == 0, err
    sizes = {os.path.basename(p).split(".")[0]: cv2.imread(p).shape[1::-1]
             for p in (d / "valid.txt").read_text().split()}
    lines = 0
    for name in ("cat", "dog"):
        for line in (tmp_path / "res" / f"mine_{name}.txt").read_text().splitlines():
            stem, score, x0, y0, x1, y1 = line.split()
            w, h = sizes[stem]
            assert 0 < float(score) <= 1 and 1 <= float(x0) <= float(x1) <= w
            assert 1 <= float(y0) <= float(y1) <= h
            lines += 1
    res = json.loads((tmp_path / "res" / "coco_results.json").read_text())
    assert lines == len(res) > 0
    assert "per-class VOC files written to" in out


def test_detector_valid_names_a_results_file_it_cannot_write(dataset, tmp_path, capsys):
    """A class name with a '/' makes a VOC file name that cannot exist: an error naming it
    (tools/cli_input_fuzz.py found a traceback there, with a NUL byte)."""
    d = dataset
    (tmp_path / "names").write_text("cat\ndog/puppy\n")
    data = tmp_path / "voc.data"
    data.write_text(f"classes = 2\nvalid = {d / 'valid.txt'}\nnames = {tmp_path / 'names'}\n"
                    f"results = {tmp_path / 'res'}\n")
    code, out, err = run(capsys, "detector", "valid", data, d / "tiny.cfg", d / "tiny.weights")
    assert code != 0 and "Traceback" not in err
    assert "comp4_det_test_dog/puppy.txt': cannot write this results file" in err


def test_detector_valid_writes_bdd_kitti_and_imagenet_files(dataset, tmp_path, capsys):
    """eval=bdd|kitti|imagenet: AB's other result formats, the same detections as the COCO
    json (whose boxes are [x, y, w, h] clipped to the image) in their layouts."""
    d = dataset
    data = tmp_path / "x.data"
    base = (f"classes = 2\nvalid = {d / 'valid.txt'}\nnames = {d / 'names'}\n"
            f"results = {tmp_path / 'res'}\n")
    data.write_text(base + "eval = coco\n")
    assert run(capsys, "detector", "valid", data, d / "tiny.cfg", d / "tiny.weights")[0] == 0
    coco = json.loads((tmp_path / "res" / "coco_results.json").read_text())
    want = sorted((r["category_id"], r["score"], r["bbox"][0], r["bbox"][1],
                   r["bbox"][0] + r["bbox"][2], r["bbox"][1] + r["bbox"][3]) for r in coco)
    assert want

    def key(row):           # (the text formats print 6 decimals)
        return row[0], round(row[1], 6), round(row[2], 2), round(row[3], 2)

    def same(got):
        np.testing.assert_allclose(np.array(sorted(got, key=key)),
                                   np.array(sorted(want, key=key)), rtol=0, atol=2e-5)
    paths = (d / "valid.txt").read_text().split()

    def rows(kind):
        data.write_text(base + f"eval = {kind}\n")
        code, out, err = run(capsys, "detector", "valid", data, d / "tiny.cfg",
                             d / "tiny.weights")
        assert code == 0 and f"({kind} format)" in out, err
        return out

    rows("bdd")
    bdd = json.loads((tmp_path / "res" / "bdd_results.json").read_text())
    assert {b["name"] for b in bdd} <= {os.path.basename(p).replace(".jpg", "") for p in paths}
    same([({"bike": 0, "bus": 1}[b["category"]], b["score"], *b["bbox"]) for b in bdd])
    rows("kitti")
    got = []
    for p in paths:
        for line in (tmp_path / "res" / "kitti_results" / "data" /
                     (os.path.basename(p).split(".")[0] + ".txt")).read_text().splitlines():
            f = line.split()
            assert f[1:4] == ["-1", "-1", "-10"] and f[8:15] == ["-1", "-1", "-1", "-1000",
                                                                  "-1000", "-1000", "-10"]
            got.append(({"car": 0, "pedestrian": 1}[f[0]], float(f[15]),
                        *(float(v) for v in f[4:8])))
    same(got)
    rows("imagenet")
    lines = (tmp_path / "res" / "imagenet-detection.txt").read_text().splitlines()
    same([(int(f[1]) - 1, *(float(v) for v in f[2:])) for f in (ln.split() for ln in lines)])
    assert {int(line.split()[0]) for line in lines} <= set(range(1, len(paths) + 1))
    from pydarknet.errors import DataError
    from pydarknet.eval.coco import COCO_IDS
    from pydarknet.eval.results import ValidationResults
    for coco in (dict(coco=True), dict(kind="coco")):        # 80 classes: COCO's ids
        assert ValidationResults([str(k) for k in range(80)], **coco).category_ids == COCO_IDS
    assert ValidationResults([str(k) for k in range(80)]).category_ids == list(range(80))
    with pytest.raises(DataError, match="eval=kitti names 3 classes .* the network has 4"):
        ValidationResults("abcd", kind="kitti")
    with pytest.raises(DataError, match="eval=yolo: the result formats are voc, coco, bdd"):
        ValidationResults("ab", kind="yolo")


def test_calc_anchors(dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = dataset
    code, out, err = run(capsys, "detector", "calc_anchors", d / "obj.data", "-num_of_clusters",
                         3, "-width", 64, "-height", 64, "-seed", 1)
    assert code == 0, err
    anchors = out.split("anchors = ")[-1].strip()
    wh = [float(v) for v in anchors.replace(",", " ").split()]
    assert len(wh) == 6
    areas = [wh[i] * wh[i + 1] for i in (0, 2, 4)]
    assert areas == sorted(areas)
    assert "avg IoU = " in out and "counters_per_class = " in out
    assert (tmp_path / "anchors.txt").read_text().strip() == anchors
    assert not (tmp_path / "cloud.png").exists()
    code, out, err = run(capsys, "detector", "calc_anchors", d / "obj.data", "-num_of_clusters",
                         3, "-width", 64, "-height", 64, "-seed", 1, "-show")
    cloud = cv2.imread(str(tmp_path / "cloud.png"))
    assert code == 0 and cloud.shape == (700, 700, 3)
    x, y = (int(wh[4] * 700 / 64), int(wh[5] * 700 / 64))     # the largest anchor's corner
    assert (cloud[0, :x - 12] == 255).all() and (cloud[:y - 12, 0] == 255).all()
    assert (cloud[y - 12:y + 12, x - 12:x + 12] == 255).all(-1).any()


@pytest.mark.parametrize("channels", [3, 1])
def test_classifier_commands(tmp_path, capsys, channels):
    cfg = CLS_CFG.replace("channels=3", f"channels={channels}")   # 1: a grey network
    net = load_cfg_text(cfg, batch=1)
    (tmp_path / "c.cfg").write_text(cfg)
    net.save_weights(tmp_path / "c.weights")
    rng = np.random.default_rng(0)
    names = ["red", "green", "blue"]
    paths = []
    for i in range(9):
        p = tmp_path / f"{i}_{names[i % 3]}.png"
        cv2.imwrite(str(p), rng.integers(0, 256, (40, 50, 3), np.uint8))
        paths.append(str(p))
    paths += [str(tmp_path / "9_red.png"), str(tmp_path / "10_nothing.png")]   # missing, no class
    cv2.imwrite(paths[-1], np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "valid.txt").write_text("\n".join(paths))
    (tmp_path / "labels").write_text("\n".join(names) + "\n")
    data = tmp_path / "c.data"
    data.write_text(f"classes = 3\nvalid = {tmp_path / 'valid.txt'}\n"
                    f"labels = {tmp_path / 'labels'}\n")
    code, out, err = run(capsys, "classifier", "predict", data, tmp_path / "c.cfg",
                         tmp_path / "c.weights", paths[0], "-top", 2)
    assert code == 0, err
    lines = [ln for ln in out.splitlines() if ln.split(":")[0] in names]
    assert len(lines) == 2
    assert sum(float(ln.split(": ")[1]) for ln in lines) <= 1.0
    import io
    with pytest.MonkeyPatch.context() as mp:        # Darknet's `classifier predict ... < list`
        mp.setattr("sys.stdin", io.StringIO(f"{paths[0]}\n{paths[1]}\n"))
        code, out, err = run(capsys, "classifier", "predict", data, tmp_path / "c.cfg",
                             tmp_path / "c.weights")
    assert code == 0, err
    assert out.count("Predicted in") == 2
    code, out, err = run(capsys, "classifier", "valid", data, tmp_path / "c.cfg",
                         tmp_path / "c.weights")
    assert code == 0, err
    assert out.startswith("9 images: top 1: ") and "top 3: 1.000000" in out
    assert "1 without a class name in the path, 1 unreadable" in err
    for command in ("validcrop", "valid10", "validmulti", "validfull"):
        code, out, err = run(capsys, "classifier", command, data, tmp_path / "c.cfg",
                             tmp_path / "c.weights", "-top", 2)
        assert code == 0, err
        assert out.startswith("9 images: top 1: ") and "top 2: " in out, command
    with open(data, "a") as f:
        f.write(f"test = {tmp_path / 'valid.txt'}\n")
    code, out, err = run(capsys, "classifier", "label", data, tmp_path / "c.cfg",
                         tmp_path / "c.weights")
    assert code == 0, err
    assert len(out.split()) == 10 and set(out.split()) <= set(names)   # 11 paths, 1 missing
    code, out, err = run(capsys, "classifier", "test", data, tmp_path / "c.cfg",
                         tmp_path / "c.weights")
    assert code == 0, err
    rows = [ln.split("\t") for ln in out.splitlines()]
    assert [r[0] for r in rows] == paths[:9] + paths[10:]
    assert all(len(r) == 4 and abs(sum(map(float, r[1:])) - 1) < 1e-4 for r in rows)
    assert "image missing: 1" in err
    (tmp_path / "fc.cfg").write_text(cfg.replace("[avgpool]\n", ""))   # [connected] sized by
    code, out, err = run(capsys, "classifier", "validfull", data, tmp_path / "fc.cfg")   # input
    assert code != 0 and "cannot be resized" in err and "layer 1 [connected]" in err


def test_a_grey_classifier_sees_what_training_reads(tmp_path):
    from pydarknet.data.classification import ClassificationDataset
    from pydarknet.eval.classify import classifier_input, predict
    from pydarknet.image import read_bgr
    cfg = CLS_CFG.replace("channels=3", "channels=1")
    net = load_cfg_text(cfg, batch=1)
    rng = np.random.default_rng(1)
    p = tmp_path / "0_red.png"
    cv2.imwrite(str(p), rng.integers(0, 256, (32, 32, 3), np.uint8))
    x = classifier_input(read_bgr(p, 1), 32, 32, channels=1)   # read grey, as valid does
    loader = ClassificationDataset([str(p)], ["red", "green"], channels=1, augment=False)
    seen = loader.sample(np.random.default_rng(0), 32, 32, index=0)[0]
    assert x.shape == (1, 32, 32) == seen.shape
    np.testing.assert_allclose(x, seen, atol=1e-6)
    made_grey = classifier_input(read_bgr(p, 3), 32, 32, channels=1)   # cvtColor's rounding
    np.testing.assert_allclose(made_grey, seen, atol=1.01 / 255)
    assert len(predict(net, read_bgr(p, 1), 2)) == 2
