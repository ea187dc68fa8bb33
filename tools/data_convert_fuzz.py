"""Mutated annotations through the data converters: each must convert (its output clean for
``data check``) or refuse with a PydarknetError. Anything else (another exception, an output
that data check finds problems in) is printed with its seed.

    python tools/data_convert_fuzz.py coco 0 3000 [--folder DIR]
    python tools/data_convert_fuzz.py voc|labelme|bdd|yolo|kitti 0 3000

Each seed takes a small valid set of the format (three images, boxes of several classes, a
crowd box, an image without objects, one missing) and changes one to three of its values to
another kind or an edge value (None, -1, 0, 2.5, "x", 1e30, NaN, inf, [], {}, True, 2**40)
or deletes it; VOC's xml elements get edge texts, are deleted or repeated, a file is cut short;
YOLO's and KITTI's label lines get a token changed to an edge text, are deleted or repeated
(and YOLO's yaml values changed as the json ones).
"""

import argparse
import base64
import copy
import io
import json
import os
import pathlib
import shutil
import sys
import tempfile
import traceback
import warnings
import xml.etree.ElementTree as ET

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydarknet.errors import PydarknetError  # noqa: E402

VALUES = [None, -1, 0, 1, 2.5, -3.7, "x", "", 1e30, float("nan"), float("inf"), [], {}, True,
          2 ** 40, [1, 2], "7", 139, 18]
XML_TEXTS = ["", "-1", "0", "1", "2.5", "-3.7", "x", "1e30", "nan", "inf", "-inf",
             "99999999999999999999", " 7 ", "1,2", "dog", "person"]


def _paths(o, pre=()):
    yield pre
    if isinstance(o, dict):
        for k, v in o.items():
            yield from _paths(v, pre + (k,))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from _paths(v, pre + (i,))


def mutate(rng, data):
    """One value somewhere in a json structure replaced by another kind, or deleted."""
    places = [p for p in _paths(data) if p]
    place = places[int(rng.integers(len(places)))]
    parent = data
    for key in place[:-1]:
        parent = parent[key]
    if rng.random() < 0.2:
        del parent[place[-1]]
    else:
        parent[place[-1]] = copy.deepcopy(VALUES[int(rng.integers(len(VALUES)))])


def _image(path, w, h):
    import cv2
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), 90, np.uint8))


def _rect(label, x0, y0, x1, y1):
    return {"label": label, "points": [[x0, y0], [x1, y1]], "shape_type": "rectangle"}


def _bdd_box(category, x1, y1, x2, y2):
    return {"category": category, "box2d": {"x1": x1, "y1": y1, "x2": x2, "y2": y2}}


def coco(rng, folder):
    from pydarknet.datasets.coco import convert_coco
    images = [{"id": 139, "file_name": "000000000139.jpg", "width": 64, "height": 48},
              {"id": 7, "file_name": "street.jpg", "width": 40, "height": 40},
              {"id": 12, "file_name": "sub/empty_view.png", "width": 32, "height": 32}]
    for im in images:
        _image(folder / "img" / im["file_name"], im["width"], im["height"])
    data = {"images": images, "categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"},
                                             {"id": 1, "name": "person"}],
            "annotations": [
                {"id": 1, "image_id": 139, "category_id": 18, "bbox": [4, 6, 20, 10]},
                {"id": 2, "image_id": 139, "category_id": 1, "bbox": [30, 10, 20, 30]},
                {"id": 3, "image_id": 7, "category_id": 3, "bbox": [30, 30, 20, 20]},
                {"id": 4, "image_id": 7, "category_id": 1, "bbox": [2, 2, 5, 5], "iscrowd": 1},
                {"id": 5, "image_id": 12, "category_id": 3, "bbox": [1, 1, 10, 10]}]}
    for _ in range(int(rng.integers(1, 4))):
        mutate(rng, data)
    (folder / "instances.json").write_text(json.dumps(data))
    convert_coco(str(folder / "instances.json"), str(folder / "img"), str(folder / "out"),
                 out=io.StringIO())


def labelme(rng, folder):
    import cv2
    from pydarknet.datasets.labelme import convert_labelme
    _image(folder / "set" / "a.jpg", 100, 50)
    _image(folder / "set" / "b.png", 40, 40)
    embedded = base64.b64encode(cv2.imencode(".png", np.zeros((30, 20, 3), np.uint8))[1]
                                .tobytes()).decode()
    docs = [("a.json", {"imagePath": "a.jpg", "imageWidth": 100, "imageHeight": 50, "shapes": [
                _rect("dog", 60, 40, 10, 10),
                {"label": "cat", "points": [[0, 0], [20, 5], [10, 30]], "shape_type": "polygon"},
                {"label": "cat", "points": [[50, 25], [50, 35]], "shape_type": "circle"},
                {"label": "dog", "points": [[5, 5]], "shape_type": "point"}]}),
            ("b.json", {"imagePath": "b.png", "imageWidth": 40, "imageHeight": 40,
                        "shapes": [_rect("cat", 1, 1, 30, 30)]}),
            ("c.json", {"imagePath": "gone.png", "imageData": embedded, "imageWidth": 20,
                        "imageHeight": 30, "shapes": [_rect("dog", 1, 1, 10, 10)]})]
    for _ in range(int(rng.integers(1, 4))):
        mutate(rng, docs[int(rng.integers(len(docs)))][1])
    for name, doc in docs:
        (folder / "set" / name).write_text(json.dumps(doc))
    convert_labelme(str(folder / "set"), str(folder / "out"), out=io.StringIO())


def bdd(rng, folder):
    from pydarknet.datasets.bdd import convert_bdd
    _image(folder / "img" / "a.jpg", 128, 72)
    _image(folder / "img" / "b.jpg", 128, 72)
    frames = [{"name": "a.jpg", "attributes": {"weather": "clear"}, "labels": [
                  _bdd_box("car", 10, 20, 50, 40), _bdd_box("pedestrian", 100, 10, 140, 70),
                  {"category": "lane", "poly2d": [{"vertices": [[0, 0], [5, 5]]}]},
                  _bdd_box("trailer", 1, 1, 5, 5), _bdd_box("traffic light", 5, 5, 9, 15)]},
              {"name": "b.jpg", "labels": None},
              {"name": "missing.jpg", "labels": [_bdd_box("car", 1, 1, 2, 2)]}]
    for _ in range(int(rng.integers(1, 4))):
        mutate(rng, {"frames": frames})
    (folder / "labels.json").write_text(json.dumps(frames))
    convert_bdd(str(folder / "labels.json"), str(folder / "img"), str(folder / "out"),
                out=io.StringIO())


def _voc_xml(objects, size=(50, 40)):
    text = "<annotation><folder>VOC</folder>"
    if size:
        text += f"<size><width>{size[0]}</width><height>{size[1]}</height></size>"
    for name, difficult, box in objects:
        text += (f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox>"
                 + "".join(f"<{k}>{v}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"),
                                                             box)) + "</bndbox></object>")
    return text + "</annotation>"


def voc(rng, folder):
    from pydarknet.datasets.voc import convert_voc
    base = folder / "VOCdevkit" / "VOC2007"
    (base / "ImageSets" / "Main").mkdir(parents=True)
    (base / "Annotations").mkdir()
    xmls = {"000005": _voc_xml([("dog", 0, (1, 1, 25, 21)), ("person", 1, (5, 5, 10, 10)),
                                ("cat", 0, (40, 30, 60, 50))]),
            "000007": _voc_xml([("car", 0, (11, 11, 30, 20))]),
            "000009": _voc_xml([("bird", 0, (2, 2, 8, 8))], size=None)}
    (base / "ImageSets" / "Main" / "trainval.txt").write_text("\n".join(xmls) + "\n")
    trees = {k: ET.fromstring(v) for k, v in xmls.items()}
    for _ in range(int(rng.integers(1, 4))):
        tree = trees[list(trees)[int(rng.integers(len(trees)))]]
        parent = list(tree.iter())[int(rng.integers(len(list(tree.iter()))))]
        if not len(parent):
            continue
        element = parent[int(rng.integers(len(parent)))]
        roll = rng.random()
        if roll < 0.6:
            element.text = XML_TEXTS[int(rng.integers(len(XML_TEXTS)))]
        elif roll < 0.8:
            parent.remove(element)
        else:
            parent.append(copy.deepcopy(element))
    for k, tree in trees.items():
        _image(base / "JPEGImages" / f"{k}.jpg", 50, 40)
        text = ET.tostring(tree, encoding="unicode")
        if rng.random() < 0.05:
            text = text[:int(rng.integers(len(text)))]
        (base / "Annotations" / f"{k}.xml").write_text(text)
    convert_voc(str(folder / "VOCdevkit"), str(folder / "out"), sets="2007/trainval",
                valid_sets="none", out=io.StringIO())


def _mutate_lines(rng, lines):
    """Label text lines with one token changed to an edge text, deleted or repeated."""
    if not lines:
        return lines
    k = int(rng.integers(len(lines)))
    words = lines[k].split()
    roll = rng.random()
    if roll < 0.6 and words:
        words[int(rng.integers(len(words)))] = XML_TEXTS[int(rng.integers(len(XML_TEXTS)))]
        lines[k] = " ".join(words)
    elif roll < 0.8:
        del lines[k]
    else:
        lines.insert(k, lines[k])
    return lines


def yolo(rng, folder):
    import yaml
    from pydarknet.datasets.yolo import convert_yolo
    root = folder / "ds"
    _image(root / "images" / "train" / "a.jpg", 40, 30)
    _image(root / "images" / "train" / "b.png", 20, 20)
    _image(root / "images" / "val" / "v.jpg", 30, 30)
    labels = {"train/a.txt": ["0 0.5 0.5 0.2 0.4", "1 0.1 0.1 0.3 0.1 0.3 0.5 0.1 0.5",
                              "1 0.95 0.5 0.2 0.2"],
              "train/b.txt": ["1 0.5 0.5 1 1"], "val/v.txt": ["0 0.25 0.25 0.5 0.5"]}
    data = {"path": ".", "train": "images/train", "val": "images/val",
            "names": {0: "cat", 1: "dog"}}
    for _ in range(int(rng.integers(1, 4))):
        if rng.random() < 0.3:
            mutate(rng, {"yaml": data})
        else:
            key = list(labels)[int(rng.integers(len(labels)))]
            _mutate_lines(rng, labels[key])
    for key, lines in labels.items():
        path = root / "labels" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    (root / "data.yaml").write_text(yaml.safe_dump(data))
    convert_yolo(str(root / "data.yaml"), str(folder / "out"), out=io.StringIO())


def kitti(rng, folder):
    from pydarknet.datasets.kitti import convert_kitti
    root = folder / "training"
    for k, (w, h) in enumerate([(124, 37), (100, 50), (60, 30)]):
        _image(root / "image_2" / f"{k:06d}.png", w, h)
    labels = {"000000": ["Car 0.00 0 -1.58 10.00 5.00 50.00 25.00 1.48 1.60 3.69 3 1.7 46.7 -1",
                         "Pedestrian 0.00 0 0.21 100.00 2.00 130.00 30.00 1.9 0.6 0.8 1 1 9 0.1",
                         "DontCare -1 -1 -10 1.00 1.00 4.00 4.00 -1 -1 -1 -1000 -1000 -1000 -10"],
              "000001": ["Cyclist 0 0 0 0.0 0.0 50.0 25.0 1 1 1 1 1 1 0"]}
    for _ in range(int(rng.integers(1, 4))):
        key = list(labels)[int(rng.integers(len(labels)))]
        _mutate_lines(rng, labels[key])
    (root / "label_2").mkdir()
    for key, lines in labels.items():
        (root / "label_2" / f"{key}.txt").write_text("\n".join(lines) + "\n")
    convert_kitti(str(root), str(folder / "out"), valid_fraction=0.3, out=io.StringIO())


FORMATS = {"coco": coco, "voc": voc, "labelme": labelme, "bdd": bdd, "yolo": yolo,
           "kitti": kitti}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("format", choices=sorted(FORMATS))
    ap.add_argument("first", type=int)
    ap.add_argument("last", type=int)
    ap.add_argument("--folder", help="work folder (default: a temporary one)")
    a = ap.parse_args()
    from pydarknet.datasets.check import check_dataset
    warnings.simplefilter("ignore")
    work = pathlib.Path(a.folder or tempfile.mkdtemp(prefix="convert-fuzz-"))
    counts = {}
    for seed in range(a.first, a.last):
        folder = work / str(seed)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        try:
            FORMATS[a.format](np.random.default_rng(seed), folder)
            report = check_dataset(str(folder / "out" / "obj.data"))
            kind = "dirty" if report.problem_count() else "converted"
            if kind == "dirty":
                print(f"seed {seed}: the output has problems: "
                      f"{sorted(k for k in report.counts if report.counts[k])}", flush=True)
        except PydarknetError:
            kind = "refused"
        except Exception as e:  # noqa: BLE001 (the finding)
            kind = "exception"
            tb = traceback.extract_tb(e.__traceback__)[-1]
            print(f"seed {seed}: {type(e).__name__} at {pathlib.Path(tb.filename).name}:"
                  f"{tb.lineno}: {str(e)[:200]}", flush=True)
        if kind in ("converted", "refused"):
            shutil.rmtree(folder, ignore_errors=True)
        counts[kind] = counts.get(kind, 0) + 1
    print(", ".join(f"{v} {k}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
