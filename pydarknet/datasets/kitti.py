"""KITTI 2D object labels -> Darknet's detection layout.

    convert_kitti("kitti/training", "data/kitti", valid_fraction=0.2)

KITTI's ``training/`` folder holds ``image_2/<id>.png`` and ``label_2/<id>.txt``, a line an
object: ``type truncated occluded alpha left top right bottom h w l x y z rotation_y``, the
box in pixels. The classes are Car, Pedestrian and Cyclist, the three that AB Darknet's
``eval=kitti`` result format names in that order (``obj.data`` says ``eval = kitti``, so that
``detector valid`` writes KITTI's result files), or ``classes``: KITTI types in the order
given (Car, Van, Truck, Pedestrian, Person_sitting, Cyclist, Tram, Misc; then without
``eval = kitti``). DontCare regions and other types are left out; boxes are cut to the image.

The valid list is the image ids of a file (``valid_ids``, one a line, as the usual
train/val splits give them) or a share of the images (``valid_fraction``, the same ones on
every run).
"""

import math
import os

from ..errors import PydarknetError
from ..eval.results import KITTI_NAMES
from ..image import IMAGE_EXTENSIONS
from .layout import (OutputFolder, Summary, darknet_box, in_valid_share, read_label_lines,
                     usable_image_size, write_detection_set)

__all__ = ["convert_kitti", "KITTI_TYPES"]

KITTI_TYPES = ("Car", "Van", "Truck", "Pedestrian", "Person_sitting", "Cyclist", "Tram", "Misc")
RESULT_TYPES = ("Car", "Pedestrian", "Cyclist")       # eval=kitti's classes, in its order


def _image_ids(folder):
    images = os.path.join(folder, "image_2")
    if not os.path.isdir(images) or not os.path.isdir(os.path.join(folder, "label_2")):
        raise PydarknetError(f"{folder}: expected KITTI's image_2/ and label_2/ folders in it "
                             "(give the training/ folder)")
    ids = {}
    for name in sorted(os.listdir(images)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in IMAGE_EXTENSIONS:
            ids.setdefault(stem, os.path.join(images, name))
    return ids


def _boxes(label_file, names, summary, size):
    w, h = size
    boxes = []
    for number, line in enumerate(read_label_lines(label_file, summary), 1):
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "DontCare":
            continue
        if fields[0] not in names:
            summary.note("objects of other types")
            continue
        try:
            corners = [float(v) for v in fields[4:8]]
        except ValueError:
            corners = []
        if len(fields) < 8 or len(corners) != 4 or not all(map(math.isfinite, corners)):
            summary.skip("malformed label lines", f"{label_file}:{number}: expected type, "
                         "truncated, occluded, alpha and the box left top right bottom; "
                         "line skipped")
            continue
        box = darknet_box(corners, w, h, summary)
        if box is not None:
            boxes.append((names.index(fields[0]), *box))
    return boxes


def _items(training_dir, ids, chosen, types, summary):
    """(image, boxes) of the chosen ids' readable images."""
    for image_id in chosen:
        image = ids[image_id]
        size = usable_image_size(image, summary)
        if size is None:
            continue
        label = os.path.join(training_dir, "label_2", image_id + ".txt")
        yield image, _boxes(label, types, summary, size)


def convert_kitti(training_dir, out_dir, *, valid_ids=None, valid_fraction=0.0, classes=None,
                  copy=False, out=None):
    """Converts KITTI's ``training/`` folder into ``out_dir``; returns the summary and the
    class names."""
    summary = Summary("kitti", out)
    if valid_ids is not None and valid_fraction:
        raise PydarknetError("give a file of valid image ids or a valid fraction, not both")
    if not 0 <= valid_fraction < 1:
        raise PydarknetError(f"valid fraction {valid_fraction}: expected 0 <= f < 1")
    types = list(classes or RESULT_TYPES)
    unknown = [t for t in types if t not in KITTI_TYPES]
    if unknown:
        raise PydarknetError(f"--classes: {', '.join(unknown)} not among KITTI's types "
                             f"{', '.join(KITTI_TYPES)}")
    ids = _image_ids(training_dir)
    if not ids:
        raise PydarknetError(f"{training_dir}: no image in image_2/")
    held = set()
    if valid_ids is not None:
        try:
            with open(valid_ids, encoding="utf-8-sig") as f:
                held = {line.strip() for line in f if line.strip()}
        except OSError as e:
            raise PydarknetError(f"{valid_ids}: cannot read the valid ids "
                                 f"({e.strerror or e})") from None
        missing = sorted(held - set(ids))
        if missing:
            summary.skip("valid ids without an image", f"{valid_ids}: {len(missing)} ids have "
                         f"no image ({', '.join(missing[:3])}...)", count=len(missing))
    elif valid_fraction:
        held = {i for i in ids if in_valid_share(i, valid_fraction)}
    splits = [("train", [i for i in ids if i not in held])]
    if held & set(ids):
        splits.append(("valid", [i for i in ids if i in held]))
    # (Darknet's result files name the three classes in lower case)
    names = list(KITTI_NAMES) if types == list(RESULT_TYPES) else types
    with OutputFolder(out_dir, "kitti") as target:
        if names != list(KITTI_NAMES):
            summary.note("no eval = kitti (the classes are not Car, Pedestrian, Cyclist)")
        write_detection_set(target, names, [(split, _items(training_dir, ids, chosen, types,
                                                           summary))
                                            for split, chosen in splits],
                            summary, training_dir, copy,
                            [("eval", "kitti")] if names == list(KITTI_NAMES) else [])
        target.commit({"names": names, "folder": os.path.abspath(training_dir)})
    return summary, names
