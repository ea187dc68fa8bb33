"""Ultralytics / Roboflow "YOLO" data sets (a ``data.yaml`` with ``images/`` and ``labels/``
folders) -> Darknet's detection layout.

    convert_yolo("datasets/coco128/data.yaml", "data/coco128")

The yaml names the classes (``names:`` a list, or a mapping from id to name) and the splits
(``train:``, ``val:``: an image folder, searched recursively, a text file listing images, or a
list of those; relative to ``path:``, itself relative to the yaml's folder, which is the
default; a ``../`` that leads nowhere is dropped, as Ultralytics does for Roboflow's exports).
Each image's labels are where Ultralytics looks: the last ``/images/`` of its path becomes
``/labels/`` and the extension ``.txt``; a missing label file is an image without objects.
Label lines are Darknet's (``class x y w h``, relative); a segmentation polygon
(``class x1 y1 x2 y2 ...``) becomes its bounding box, a pose line (the yaml has
``kpt_shape``) its box. Boxes are cut to the image; the same box twice is listed once.
"""

import math
import os

from ..errors import PydarknetError
from .layout import (OutputFolder, Summary, box_to_darknet, clip_box, read_label_lines,
                     readable_file, write_detection_set)

__all__ = ["convert_yolo", "read_yolo_yaml", "yolo_label_path", "parse_yolo_label"]

# Ultralytics' IMG_FORMATS: what its loaders take from a split's folder
IMAGE_EXTENSIONS = (".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp",
                    ".pfm")
_SPLITS = (("train", "train"), ("val", "valid"))     # yaml key -> Darknet list


def read_yolo_yaml(path):
    """The yaml as a dict, with ``names`` a list of class names (in id order)."""
    try:
        import yaml
    except ImportError:
        raise PydarknetError("reading a data.yaml needs PyYAML: pip install pyyaml") from None
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise PydarknetError(f"{path}: data yaml not found") from None
    except (OSError, yaml.YAMLError) as e:
        raise PydarknetError(f"{path}: cannot read it as yaml ({e})") from None
    if not isinstance(data, dict):
        raise PydarknetError(f"{path}: expected a mapping (names:, train:, val:), found "
                             f"{type(data).__name__}")
    names = data.get("names")
    if isinstance(names, dict):
        try:
            ids = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise PydarknetError(f"{path}: names: the keys must be class ids 0, 1, ...") \
                from None
        if ids != list(range(len(ids))):
            raise PydarknetError(f"{path}: names: class ids must run 0..{len(ids) - 1} without "
                                 f"gaps, found {ids}")
        names = [names[k] if k in names else names[str(k)] for k in ids]
    if not isinstance(names, list) or not names:
        raise PydarknetError(f"{path}: no class names (names: a list, or ids mapped to names)")
    names = [str(n).strip() for n in names]
    if any(not n for n in names):
        raise PydarknetError(f"{path}: names: an empty class name")
    nc = data.get("nc")
    if nc is not None and nc != len(names):
        raise PydarknetError(f"{path}: nc = {nc}, but names holds {len(names)} classes")
    data["names"] = names
    return data


def _root(yaml_path, data):
    here = os.path.dirname(os.path.abspath(yaml_path))
    root = data.get("path")
    if not root:
        return here
    return os.path.normpath(os.path.join(here, os.path.expanduser(str(root))))


def _entry_path(root, entry):
    p = os.path.normpath(os.path.join(root, os.path.expanduser(str(entry))))
    if not os.path.exists(p) and str(entry).startswith("../"):   # Roboflow's exports
        p = os.path.normpath(os.path.join(root, str(entry)[3:]))
    return p


def split_images(yaml_path, data, key):
    """The image paths of a split (sorted within each folder, in list order from list files);
    an error naming the entry that does not exist."""
    entries = data.get(key)
    if entries is None:
        return None
    entries = entries if isinstance(entries, list) else [entries]
    root = _root(yaml_path, data)
    images = []
    for entry in entries:
        p = _entry_path(root, entry)
        if os.path.isdir(p):
            found = []
            for folder, _, files in os.walk(p):
                found += [os.path.join(folder, f) for f in files
                          if f.lower().endswith(IMAGE_EXTENSIONS)]
            images += sorted(found)
        elif os.path.isfile(p):
            parent = os.path.dirname(p)
            with open(p, encoding="utf-8-sig", errors="replace") as f:
                for line in f:
                    line = line.strip()
                    if line:
                        images.append(os.path.join(parent, line[2:]) if line.startswith("./")
                                      else line if os.path.isabs(line)
                                      else os.path.join(parent, line))
        else:
            raise PydarknetError(f"{yaml_path}: {key}: {entry} ({p}) is neither an image "
                                 "folder nor a list file")
    return images


def yolo_label_path(image_path):
    """Ultralytics' img2label_paths: the last ``/images/`` -> ``/labels/``, extension ->
    ``.txt``."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    p = str(image_path)
    if sa in p:
        head, tail = p.rsplit(sa, 1)
        p = head + sb + tail
    return os.path.splitext(p)[0] + ".txt"


def parse_yolo_label(line, classes, pose=False):
    """One label line -> ((class, x, y, w, h) cut to the image, cut?) or a reason string."""
    parts = line.split()
    try:
        values = [float(v) for v in parts]
    except ValueError:
        return "not numbers"
    if not all(math.isfinite(v) for v in values):
        return "not finite"
    cls = values[0]
    if cls != int(cls) or not 0 <= cls < classes:
        return f"class {parts[0]} outside 0..{classes - 1}"
    rest = values[1:]
    if len(rest) == 4 or (pose and len(rest) > 4):
        x, y, w, h = rest[:4]
        x0, y0, x1, y1 = x - w / 2, y - h / 2, x + w / 2, y + h / 2
    elif len(rest) >= 6 and len(rest) % 2 == 0:         # a segmentation polygon
        xs, ys = rest[0::2], rest[1::2]
        x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
    else:
        return f"{len(parts)} values (expected class x y w h, or a polygon)"
    clipped = clip_box(x0, y0, x1, y1, 1.0, 1.0)       # relative: the image is 1 x 1
    if clipped is None:
        return "no width or height inside the image"
    *corners, cut = clipped
    return (int(cls), *box_to_darknet(*corners, 1.0, 1.0)), cut


def _read_labels(path, names, pose, summary):
    """The boxes of an image's label file ([] when there is none: a background image)."""
    boxes = []
    for number, line in enumerate(read_label_lines(path, summary), 1):
        if not line.strip():
            continue
        got = parse_yolo_label(line, len(names), pose)
        if isinstance(got, str):
            summary.skip("malformed label lines", f"{path}:{number}: {got}; line skipped")
            continue
        box, clipped = got
        if clipped:
            summary.note("boxes cut to the image")
        boxes.append(tuple(box))
    return boxes


def _items(key, images, names, pose, summary):
    """(image, boxes) of a split's readable images."""
    for image in images:
        why = readable_file(image)
        if why:
            summary.skip("missing or unreadable images", f"{image}: {why} ({key} split); "
                         "image skipped")
            continue
        yield image, _read_labels(yolo_label_path(image), names, pose, summary)


def convert_yolo(yaml_path, out_dir, *, copy=False, out=None):
    """Converts the yaml's train and val splits into ``out_dir``; returns the summary and
    the class names."""
    summary = Summary("yolo", out)
    data = read_yolo_yaml(yaml_path)
    names = data["names"]
    pose = data.get("kpt_shape") is not None
    splits = [(key, split, split_images(yaml_path, data, key)) for key, split in _SPLITS]
    splits = [(key, split, images) for key, split, images in splits if images is not None]
    if not any(key == "train" for key, _, _ in splits):
        raise PydarknetError(f"{yaml_path}: no 'train:' split")
    if data.get("test") is not None:
        summary.note("test split left out (Darknet's .data has train and valid)")
    with OutputFolder(out_dir, "yolo") as folder:
        write_detection_set(folder, names, [(split, _items(key, images, names, pose, summary))
                                            for key, split, images in splits],
                            summary, yaml_path, copy)
        folder.commit({"names": names, "yaml": os.path.abspath(yaml_path)})
    return summary, names
