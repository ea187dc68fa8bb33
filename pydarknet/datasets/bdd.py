"""Berkeley DeepDrive (BDD100K) detection labels -> Darknet's detection layout.

    convert_bdd("bdd100k_labels_images_train.json", "bdd100k/images/100k/train", "data/bdd",
                valid_json="bdd100k_labels_images_val.json",
                valid_images="bdd100k/images/100k/val")

The labels file is a json list of frames (``name``, ``labels`` with ``category`` and
``box2d`` {x1, y1, x2, y2} in pixels), as BDD100K's 2018 release and its ``det_20`` files
write it, or an object with such a ``frames`` list (Scalabel's). The classes are the ten that
AB Darknet's ``eval=bdd`` result format names, in its order (bike, bus, car, motor, person,
rider, traffic light, traffic sign, train, truck; det_20's bicycle, motorcycle and pedestrian
are the same classes), so that ``detector valid`` writes results in BDD's categories; or
``classes``, a subset of them in the order given (then without ``eval = bdd``). Labels without
a box (lanes, drivable area) and other categories are left out; boxes are cut to the image.
"""

import os

from ..errors import PydarknetError
from ..eval.results import BDD_NAMES
from .layout import (OutputFolder, Summary, darknet_box, load_json, usable_image_size,
                     write_detection_set)

__all__ = ["convert_bdd", "BDD_SYNONYMS"]

# det_20's names of AB's (BDD 2018's) categories
BDD_SYNONYMS = {"bicycle": "bike", "motorcycle": "motor", "pedestrian": "person"}


def _frames(path):
    data = load_json(path, "labels file")
    frames = data.get("frames") if isinstance(data, dict) else data
    if not isinstance(frames, list) or not all(isinstance(f, dict) and "name" in f
                                               for f in frames):
        raise PydarknetError(f"{path}: not BDD100K labels (expected a list of frames with "
                             "'name' and 'labels', or an object with such a 'frames' list)")
    return frames


def _boxes(frame, where, names, summary, size):
    w, h = size
    boxes = []
    labels = frame.get("labels") or []
    if not isinstance(labels, list):    # (kept, its objects would train as background: skipped)
        summary.skip("malformed labels", f"{where}: 'labels' is not a list; image skipped")
        return None
    for k, label in enumerate(labels):
        if not isinstance(label, dict):
            summary.skip("malformed labels", f"{where}: label {k} is not an object; left out")
            continue
        box = label.get("box2d")
        if box is None:
            continue                                   # a lane or the drivable area
        category = str(label.get("category", ""))
        category = BDD_SYNONYMS.get(category, category)
        if category not in names:
            summary.note("objects of other categories")
            continue
        try:
            corners = [float(box[key]) for key in ("x1", "y1", "x2", "y2")]
        except (TypeError, KeyError, ValueError):
            summary.skip("malformed labels", f"{where}: label {k} ({category}): box2d needs "
                         f"numbers x1, y1, x2, y2; left out")
            continue
        box = darknet_box(corners, w, h, summary)
        if box is not None:
            boxes.append((names.index(category), *box))
    return boxes


def _items(split, path, folder, frames, names, summary):
    """(image, boxes) of a split's frames whose image is there."""
    for frame in frames:
        image = os.path.join(folder, str(frame["name"]))
        size = usable_image_size(image, summary, split)
        if size is None:
            continue
        boxes = _boxes(frame, f"{path}: {frame['name']}", names, summary, size)
        if boxes is not None:
            yield image, boxes


def convert_bdd(labels_json, image_dir, out_dir, *, valid_json=None, valid_images=None,
                classes=None, copy=False, out=None):
    """Converts BDD100K labels (and the valid split's) into ``out_dir``; returns the summary
    and the class names."""
    summary = Summary("bdd", out)
    if (valid_json is None) != (valid_images is None):
        raise PydarknetError("the valid split needs both its labels json and its image folder")
    names = list(BDD_NAMES)
    if classes:
        wanted = [BDD_SYNONYMS.get(c, c) for c in classes]
        unknown = [c for c, w in zip(classes, wanted) if w not in BDD_NAMES]
        if unknown:
            raise PydarknetError(f"--classes: {', '.join(unknown)} not among BDD's "
                                 f"{', '.join(BDD_NAMES)}")
        names = wanted
    splits = [("train", labels_json, image_dir)]
    if valid_json is not None:
        splits.append(("valid", valid_json, valid_images))
    loaded = [(split, path, folder, _frames(path)) for split, path, folder in splits]
    with OutputFolder(out_dir, "bdd") as target:
        if names != list(BDD_NAMES):
            summary.note("no eval = bdd (the classes are not BDD's ten in its order)")
        write_detection_set(target, names, [(split, _items(split, path, folder, frames, names,
                                                           summary))
                                            for split, path, folder, frames in loaded],
                            summary, labels_json, copy,
                            [("eval", "bdd")] if names == list(BDD_NAMES) else [])
        target.commit({"names": names, "labels": os.path.abspath(labels_json)})
    return summary, names
