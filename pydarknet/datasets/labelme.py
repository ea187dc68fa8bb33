"""LabelMe annotations (one ``.json`` beside each labelled image, as the LabelMe tool saves
them) -> Darknet's detection layout.

    convert_labelme("photos/", "data/mine", valid_fraction=0.1)

Every ``.json`` under the folder (recursively) that holds LabelMe's ``shapes`` is one image:
its ``imagePath`` (relative to the json, Windows ``\\`` taken as ``/``; else the json's name
with an image extension beside it); where the image file is gone but the json embeds it
(``imageData``), that copy is written out. Shapes become boxes: a rectangle or a mask's
corners, a polygon's extent, a circle's square; points and lines have no box and are left
out. Coordinates are in the json's ``imageWidth`` x ``imageHeight`` (the image's own size
where the json has none), boxes are cut to the image, the same box twice listed once. The
classes are ``classes`` in that order (other labels left out) or every label found, sorted.
A json without shapes is an image without objects.

The valid list is a second folder (``valid``) or a share of the images (``valid_fraction``,
chosen by a hash of each json's path: the same images on every run).
"""

import base64
import json
import math
import os
import tempfile

from ..errors import PydarknetError
from ..image import IMAGE_EXTENSIONS
from .layout import (OutputFolder, Summary, annotation_frame, darknet_box, image_size,
                     in_valid_share, readable_file, write_detection_set)

__all__ = ["convert_labelme", "read_labelme", "shape_box"]

_NO_AREA = ("point", "points", "line", "linestrip")


def shape_box(shape):
    """Pixel corners (x0, y0, x1, y1) of one LabelMe shape, or why it has none."""
    kind = shape.get("shape_type") or "polygon"
    points = shape.get("points")
    if kind in _NO_AREA:
        return f"a {kind} has no box"
    try:
        pts = [(float(p[0]), float(p[1])) for p in points]
    except (TypeError, ValueError, IndexError, KeyError):
        return "its points are not pairs of numbers"
    if not all(math.isfinite(v) for p in pts for v in p):
        return "its points are not finite"
    if kind == "circle":
        if len(pts) != 2:
            return f"a circle has 2 points (centre, edge), found {len(pts)}"
        (cx, cy), (ex, ey) = pts
        r = ((ex - cx) ** 2 + (ey - cy) ** 2) ** 0.5
        return cx - r, cy - r, cx + r, cy + r
    if kind not in ("rectangle", "polygon", "mask"):
        return f"shape_type {kind!r} is not one LabelMe writes"
    if len(pts) < 2:
        return f"a {kind} of {len(pts)} point"
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return min(xs), min(ys), max(xs), max(ys)


def read_labelme(path):
    """The json as a dict, or why it is not a LabelMe annotation."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        return f"cannot read it as json ({e})"
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        return "not a LabelMe annotation (no 'shapes' list)"
    return data


def _image_of(json_path, data):
    """The image file the json annotates, or None."""
    folder = os.path.dirname(json_path)
    given = str(data.get("imagePath") or "").replace("\\", "/")
    candidates = []
    if given:
        candidates += [os.path.normpath(os.path.join(folder, given)),
                       os.path.join(folder, os.path.basename(given))]
    stem = os.path.splitext(json_path)[0]
    candidates += [stem + ext for ext in IMAGE_EXTENSIONS]
    return next((c for c in candidates if os.path.isfile(c)), None)


def _files(folder, extensions):
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(extensions)]
    return found


class _Image:
    __slots__ = ("json", "image", "embedded", "size", "shapes")


def _collect(folder, summary):
    """The annotated images of a folder (in path order); what cannot be used is skipped."""
    if not os.path.isdir(folder):
        raise PydarknetError(f"{folder}: not a folder of LabelMe annotations")
    images, seen = [], {}
    for path in _files(folder, (".json",)):
        data = read_labelme(path)
        if isinstance(data, str):
            summary.skip("json files that are not LabelMe's", f"{path}: {data}; skipped")
            continue
        item = _Image()
        item.json, item.shapes = path, data["shapes"]
        item.image, item.embedded = _image_of(path, data), None
        if item.image is None and data.get("imageData"):
            try:
                item.embedded = base64.b64decode(data["imageData"], validate=True)
            except (ValueError, TypeError):
                pass
        if item.image is None and item.embedded is None:
            summary.skip("annotations whose image is missing",
                         f"{path}: its image {data.get('imagePath')!r} is not there and the "
                         f"json does not embed it; skipped")
            continue
        if item.image is not None:
            why = readable_file(item.image)
            if why:
                summary.skip("missing or unreadable images", f"{item.image}: {why}; skipped")
                continue
            key = os.path.realpath(item.image)
            if key in seen:
                summary.skip("images annotated twice", f"{path}: annotates {item.image} as "
                             f"{seen[key]} does; the first is kept")
                continue
            seen[key] = path
        w, h = data.get("imageWidth"), data.get("imageHeight")
        item.size = (w, h) if all(isinstance(v, int) and v > 0 for v in (w, h)) else None
        images.append(item)
    unlabelled = [p for p in _files(folder, IMAGE_EXTENSIONS)
                  if os.path.realpath(p) not in seen]
    if unlabelled:
        summary.note("images without a LabelMe json (not listed)", count=len(unlabelled))
    return images


def _boxes(item, names, summary):
    """The image's boxes (class, x, y, w, h) relative, in its shapes' order."""
    size, actual = item.size, _actual_size(item)
    if actual is None:
        summary.skip("images that do not decode", f"{item.image or item.json}: the image "
                     "does not decode; skipped")
        return None
    frame, turn = annotation_frame(item.image or item.embedded, size, summary,
                                   item.image or item.json)
    w, h = frame or actual
    boxes = []
    for k, shape in enumerate(item.shapes):
        label = str(shape.get("label", "")).strip() if isinstance(shape, dict) else ""
        if label not in names:
            summary.note("objects of classes not converted" if label else "shapes without a "
                         "label")
            continue
        corners = shape_box(shape)
        if isinstance(corners, str):
            if "has no box" in corners:
                summary.note("points and lines (no box)")
            else:
                summary.note("malformed shapes", f"{item.json}: shape {k} ({label}): "
                             f"{corners}; left out")
            continue
        if turn is not None:
            corners = turn.turn_box(*corners)
        box = darknet_box(corners, w, h, summary, f"{item.json}: shape {k} ({label})")
        if box is None:
            continue
        boxes.append((names.index(label), *box))
    return boxes


def _actual_size(item):
    """(width, height) of the image file or of the json's embedded copy as loaded (EXIF
    orientation applied); None if it does not decode."""
    return image_size(item.image if item.image is not None else item.embedded)


def convert_labelme(folder, out_dir, *, valid=None, valid_fraction=0.0, classes=None,
                    copy=False, out=None):
    """Converts the LabelMe annotations of ``folder`` (and ``valid``) into ``out_dir``;
    returns the summary and the class names."""
    summary = Summary("labelme", out)
    if valid is not None and valid_fraction:
        raise PydarknetError("give a valid folder or a valid fraction, not both")
    if not 0 <= valid_fraction < 1:
        raise PydarknetError(f"valid fraction {valid_fraction}: expected 0 <= f < 1")
    train = _collect(folder, summary)
    if valid is not None:
        held = _collect(valid, summary)
        kept = {os.path.realpath(i.json) for i in held}
        both = [i for i in train if os.path.realpath(i.json) in kept]
        if both:          # the valid folder inside the training one: each image in one list
            summary.note("images of the valid folder left out of train", count=len(both))
            train = [i for i in train if os.path.realpath(i.json) not in kept]
        splits = [("train", train), ("valid", held)]
    elif valid_fraction:
        root = os.path.abspath(folder)
        picked = [i for i in train
                  if in_valid_share(os.path.relpath(i.json, root), valid_fraction)]
        chosen = {id(i) for i in picked}
        splits = [("train", [i for i in train if id(i) not in chosen])]
        if picked:
            splits.append(("valid", picked))
        else:
            summary.note("no image fell in the valid share (no valid list)")
    else:
        splits = [("train", train)]
    if not train:
        raise PydarknetError(f"{folder}: no LabelMe annotation with its image found (see the "
                             "warnings above); nothing written")
    found = sorted({str(s.get("label", "")).strip() for _, items in splits for i in items
                    for s in i.shapes if isinstance(s, dict)} - {""})
    names = list(classes) if classes else found
    if not names:
        raise PydarknetError(f"{folder}: no shape has a label: no classes to write")
    with OutputFolder(out_dir, "labelme") as target:
        write_detection_set(target, names, [(split, _items(items, names, summary))
                                            for split, items in splits], summary, folder, copy)
        target.commit({"names": names, "folder": os.path.abspath(folder)})
    return summary, names


def _items(items, names, summary):
    """(image, boxes) of the annotations, or (a written-out copy, boxes, its name) where the
    json embeds its image."""
    for item in items:
        boxes = _boxes(item, names, summary)
        if boxes is None:
            continue
        if item.image is not None:
            yield item.image, boxes
            continue
        summary.note("images written from the json (imageData)")
        ext = ".png" if item.embedded.startswith(b"\x89PNG") else ".jpg"
        with tempfile.NamedTemporaryFile(suffix=ext, delete=False) as f:
            f.write(item.embedded)
        try:
            yield f.name, boxes, os.path.splitext(item.json)[0] + ext
        finally:
            os.unlink(f.name)
