"""Darknet's data-set files: ``.data``, ``.names``, image lists, label files, and the rule that
maps an image path to its label file.

    data = read_data_file("data/obj.data")        # {"classes": 2, "train": ..., "names": ...}
    names = read_names(data["names"])             # ["dog", "cat"]
    paths = read_list(data["valid"])              # image paths, one a line
    boxes = read_labels(label_path(paths[0]), classes=2)   # float64 [n, 5]: class x y w h

Everything that goes wrong names the file (and the line): a missing or empty list is a
``DataError``; a malformed label line, a class id out of range or a box of non-positive size is
reported through ``problems`` (warned once, counted) and the line skipped. Darknet itself reads
label files with ``fscanf`` and silently stops at the first line it cannot parse.
"""

import math
import os

import numpy as np

__all__ = ["read_data_file", "read_names", "check_names", "read_list", "replace_image_to_label",
           "label_path", "read_labels", "parse_labels", "class_from_path", "data_path"]

# AB's replace_image_to_label: these folders are swapped (first occurrence each, in this order)
_FOLDERS = (("/images/train2017/", "/labels/train2017/"), ("/images/val2017/", "/labels/val2017/"),
            ("/JPEGImages/", "/labels/"),
            ("\\images\\train2017\\", "\\labels\\train2017\\"),
            ("\\images\\val2017\\", "\\labels\\val2017\\"),
            ("\\images\\train2014\\", "\\labels\\train2014\\"),
            ("\\images\\val2014\\", "\\labels\\val2014\\"),
            ("/images/train2014/", "/labels/train2014/"), ("/images/val2014/", "/labels/val2014/"),
            ("\\JPEGImages\\", "\\labels\\"))
# ... and these extensions, case-sensitively, only at the end of the path
_EXTENSIONS = (".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".bmp", ".BMP", ".ppm", ".PPM",
               ".tiff", ".TIFF")


def _errors():
    from .data.io import DataError, Problems   # lazy: pydarknet.data may import this module
    return DataError, Problems


def _read_lines(path, what):
    DataError, _ = _errors()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read the {what}: {e.strerror or e}") from None


def read_data_file(path):
    """A Darknet ``.data`` file (``key = value`` lines, ``#`` comments) as a dict of strings,
    ``classes`` (and ``top``) as ints. Errors name the file and line."""
    DataError, _ = _errors()
    out = {}
    for number, line in enumerate(_read_lines(path, ".data file"), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if "=" not in text:
            raise DataError(f"{path}:{number}: expected 'key = value', found '{text[:80]}'")
        key, value = (t.strip() for t in text.split("=", 1))
        out[key] = value
        if key in ("classes", "top"):
            try:
                out[key] = int(value)
            except ValueError:
                raise DataError(f"{path}:{number}: {key} = {value} is not an integer") from None
    return out


def data_path(data, key, datafile, default=None):
    """``data[key]`` (a path from a .data file) or ``default``; a ``DataError`` naming the
    .data file when neither exists."""
    DataError, _ = _errors()
    value = data.get(key, default)
    if value is None:
        raise DataError(f"{datafile}: no '{key} =' line")
    return value


def read_names(path):
    """Class names, one a line (Darknet's ``get_labels``); trailing blank lines are dropped,
    a blank line in the middle is an error with its line number."""
    DataError, _ = _errors()
    names = [ln.rstrip() for ln in _read_lines(path, "names file")]
    while names and not names[-1].strip():
        names.pop()
    for number, name in enumerate(names, 1):
        if not name.strip():
            raise DataError(f"{path}:{number}: empty class name")
    if not names:
        raise DataError(f"{path}: the names file is empty")
    return names


def check_names(names, classes, names_path="<names>", where="the network"):
    """A ``DataError`` when there are fewer names than classes (Darknet reads past the end of
    its array then); returns the names (a longer list is cut to ``classes``)."""
    DataError, _ = _errors()
    if len(names) < classes:
        raise DataError(f"{names_path}:{len(names)}: the names file ends after {len(names)} "
                        f"names, but {where} has classes={classes}: add one name per class")
    return list(names[:classes])


def read_list(path, what="image list"):
    """Non-empty, stripped lines of a list file (Darknet's ``train=`` / ``valid=`` files). A
    missing file or an empty list is a ``DataError``."""
    DataError, _ = _errors()
    items = [ln.strip() for ln in _read_lines(path, what)]
    items = [ln for ln in items if ln and not ln.startswith("#")]
    if not items:
        raise DataError(f"{path}: the {what} is empty")
    return items


def replace_image_to_label(image_path):
    """AB's ``replace_image_to_label`` as a pure string function: ``images/train2017`` (and
    val2017, train2014, val2014) -> ``labels/...``, ``JPEGImages`` -> ``labels``, then a
    trailing .jpg/.jpeg/.png/.bmp/.ppm/.tiff (lower or upper case) -> ``.txt``. Images beside
    their labels (the usual custom data set) therefore get ``<image>.txt``."""
    out = str(image_path)
    for old, new in _FOLDERS:
        out = out.replace(old, new, 1)
    out = out.strip(" \t")
    for ext in _EXTENSIONS:
        if out.endswith(ext):
            out = out[: -len(ext)] + ".txt"
    return out


def label_path(image_path):
    """The label file for an image: AB's :func:`replace_image_to_label`; when that file does
    not exist but pjreddie's rule (``/images/`` -> ``/labels/``, any image extension) gives one
    that does, that one. Never checks more than these two."""
    p = replace_image_to_label(image_path)
    if not p.endswith(".txt"):
        p = os.path.splitext(p)[0] + ".txt"
    if os.path.exists(p):
        return p
    q = str(image_path).replace("\\", "/")
    if "/images/" in q:
        q = os.path.splitext(q.replace("/images/", "/labels/", 1))[0] + ".txt"
        if os.path.exists(q):
            return q
    return p


def parse_labels(lines, path="<labels>", classes=None, problems=None):
    """Label lines ``class x y w h`` (relative centre and size) -> float64 [n, 5]. Bad lines
    (not 5 fields, not numbers, class id outside 0..classes-1, w or h <= 0, not finite) are
    reported as ``path:line: why`` and skipped. Boxes are kept as written (Darknet's mAP does
    not clip them)."""
    rows = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.split()
        why = None
        if len(parts) != 5:
            why = f"expected 5 values 'class x y w h', found {len(parts)}"
        else:
            try:
                cls = int(parts[0])
                x, y, w, h = (float(v) for v in parts[1:5])
            except ValueError:
                why = "the class id must be an integer and x, y, w, h numbers"
            else:
                if cls < 0 or (classes is not None and cls >= classes):
                    why = (f"class id {cls} is outside 0..{classes - 1} (classes={classes})"
                           if classes is not None else f"class id {cls} is negative")
                elif not all(map(math.isfinite, (x, y, w, h))):
                    why = "x, y, w, h must be finite numbers"
                elif w <= 0 or h <= 0:
                    why = f"width and height must be > 0 (w={w:g}, h={h:g})"
        if why:
            if problems is not None:
                problems.report("label_line_bad", f"{path}:{number}: {why}: '{text[:80]}'; "
                                                  f"line skipped")
            continue
        rows.append((cls, x, y, w, h))
    return np.array(rows, np.float64).reshape(-1, 5)


def read_labels(path, classes=None, problems=None):
    """A label file as :func:`parse_labels`; ``None`` (reported as ``labels_missing``) when
    the file does not exist."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as e:
        if problems is not None:
            why = "label file not found" if isinstance(e, FileNotFoundError) else \
                f"cannot read the label file ({e.strerror or e})"
            problems.report("labels_missing", f"{path}: {why}", key=path)
        return None
    return parse_labels(lines, path, classes, problems)


def class_from_path(path, names):
    """Darknet's classifier label rule: the index of the first class name (in names order)
    that occurs anywhere in the path, or None."""
    for i, name in enumerate(names):
        if name and name in path:
            return i
    return None
