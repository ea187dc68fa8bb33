"""Darknet's data-set files: ``.data``, ``.names``, image lists, label files, and the rules
that map an image path to its label file (detectors) or to its class (classifiers).

    data = read_data_file("data/obj.data")        # {"classes": 2, "train": ..., "names": ...}
    names = read_names(data["names"])             # ["dog", "cat"]
    paths = read_list(data["valid"])              # image paths, one a line
    boxes = read_labels(label_path(paths[0]), classes=2)   # float64 [n, 5]: class x y w h
    boxes = read_labels(label_path(paths[0]), 2, clip=True)  # as training reads them
    cls = class_from_path(paths[0], names)        # classifiers: the class name in the path

This is the one place these rules live: training (``pydarknet.data``) and evaluation
(``pydarknet.eval``) both read label files here, with ``clip=True`` and ``clip=False``.

Everything that goes wrong names the file (and the line): a missing or empty list is a
``DataError``; a label line that cannot be used is reported through ``problems`` (warned once,
counted under one key per kind of problem) as ``path:line: why: 'text'; line skipped``.
Darknet itself reads label files with ``fscanf`` and silently stops at the first line it
cannot parse.
"""

import math
import os

import numpy as np

from .errors import DataError

__all__ = ["read_data_file", "read_names", "check_names", "read_list", "read_list_lines",
           "replace_image_to_label", "label_path", "read_labels", "parse_labels",
           "parse_label_line", "classes_in_path", "class_from_path", "data_path"]

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


def _read_lines(path, what):
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    except ValueError:          # open() refuses a NUL byte in a path
        raise DataError(f"{path!r}: the {what}'s path holds a NUL byte") from None


def read_data_file(path):
    """A Darknet ``.data`` file (``key = value`` lines, ``#`` comments) as a dict of strings,
    ``classes`` (and ``top``) as ints. Errors name the file and line."""
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
    value = data.get(key, default)
    if value is None:
        raise DataError(f"{datafile}: no '{key} =' line")
    return value


def read_names(path):
    """Class names, one a line (Darknet's ``get_labels``); trailing blank lines are dropped,
    a blank line in the middle is an error with its line number."""
    names = [ln.rstrip() for ln in _read_lines(path, "names file")]
    while names and not names[-1].strip():
        names.pop()
    for number, name in enumerate(names, 1):
        if not name.strip():
            raise DataError(f"{path}:{number}: empty class name")
        if "\x00" in name:
            raise DataError(f"{path}:{number}: a class name holds a NUL byte: is this a text "
                            "file of class names, one a line?")
    if not names:
        raise DataError(f"{path}: the names file is empty")
    return names


def check_names(names, classes, names_path="<names>", where="the network"):
    """A ``DataError`` when there are fewer names than classes (Darknet reads past the end of
    its array then); returns the names (a longer list is cut to ``classes``)."""
    if len(names) < classes:
        raise DataError(f"{names_path}:{len(names)}: the names file ends after {len(names)} "
                        f"names, but {where} has classes={classes}: add one name per class")
    return list(names[:classes])


def read_list_lines(path, what="image list"):
    """(line number, item) for each item of a list file, as :func:`read_list` reads them (an
    empty list is ``[]`` here); a missing or unreadable file is a ``DataError``."""
    items = ((number, ln.strip()) for number, ln in enumerate(_read_lines(path, what), 1))
    return [(number, ln) for number, ln in items if ln and not ln.startswith("#")]


def read_list(path, what="image list"):
    """Non-empty, stripped lines of a list file (Darknet's ``train=`` / ``valid=`` files). A
    missing file or an empty list is a ``DataError``."""
    items = [item for _, item in read_list_lines(path, what)]
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


def label_path(image_path, problems=None):
    """The label file for an image, as AlexeyAB's Darknet finds it: :func:`replace_image_to_label`
    (``<image>.txt`` beside the image unless the path holds images/train2017 and the like, or
    JPEGImages). When that file does not exist but pjreddie's rule (``/images/`` ->
    ``/labels/``) gives one that does, that one - and, once per ``problems`` tally (once per
    run), a ``DataWarning`` that AlexeyAB's Darknet would not find it (it trains such images
    without objects). Any image extension becomes ``.txt`` (AB's list is case-sensitive and
    knows no .webp or .tif). When neither file exists, AB's path (the one Darknet would
    report). Checks no more than these two files."""
    p = replace_image_to_label(image_path)
    if not p.endswith(".txt"):
        p = os.path.splitext(p)[0] + ".txt"
    if os.path.exists(p):
        return p
    q = str(image_path).replace("\\", "/")
    if "/images/" in q:
        q = os.path.splitext(q.replace("/images/", "/labels/", 1))[0] + ".txt"
        if os.path.exists(q):
            if problems is not None:
                problems.warn_once("labels_pjreddie_rule", (
                    f"{q}: label file found by pjreddie's rule (/images/ -> /labels/), but "
                    f"AlexeyAB's Darknet looks for {p} (its rule: images/train2017, val2017, "
                    "train2014, val2014 and JPEGImages -> labels, extension -> .txt) and would "
                    "train this image, and any other like it, without objects; pydarknet uses "
                    "the labels/ file (warned once)"))
            return q
    return p


def _label_line(text, classes, clip):
    """(problem key, why) for a label line that cannot be used, else (None, (cls, x, y, w, h))
    with the box cut to the image when ``clip``."""
    parts = text.split()
    if len(parts) != 5:
        return "label_line_malformed", f"expected 5 values 'class x y w h', found {len(parts)}"
    try:
        cls = int(parts[0])
        x, y, w, h = (float(v) for v in parts[1:5])
    except ValueError:
        return "label_line_malformed", "the class id must be an integer and x, y, w, h numbers"
    if not all(map(math.isfinite, (x, y, w, h))):
        return "label_line_malformed", "x, y, w, h must be finite numbers"
    if cls < 0 or (classes is not None and cls >= classes):
        return "label_class_out_of_range", (
            f"class id {cls} is outside 0..{classes - 1} (classes={classes})"
            if classes is not None else f"class id {cls} is negative")
    if w <= 0 or h <= 0:
        return "label_box_empty", f"width and height must be > 0 (w={w:g}, h={h:g})"
    if not clip:
        return None, (cls, x, y, w, h)
    if x == 0 and y == 0:      # Darknet's correct_boxes: a wrong annotation
        return "label_box_at_origin", ("a box centred at x = 0, y = 0 is taken for a wrong "
                                       "annotation and dropped, as Darknet does")
    if x + w / 2 <= 0 or y + h / 2 <= 0 or x - w / 2 >= 1 or y - h / 2 >= 1:
        return "label_box_outside", (f"the box (x={x:g}, y={y:g}, w={w:g}, h={h:g}) lies "
                                     "wholly outside the image")
    left, right = max(x - w / 2, 0.0), min(x + w / 2, 1.0)
    top, bottom = max(y - h / 2, 0.0), min(y + h / 2, 1.0)
    return None, (cls, (left + right) / 2, (top + bottom) / 2, right - left, bottom - top)


def parse_label_line(text, classes=None, clip=False):
    """One stripped label line by :func:`parse_labels`' rules: ``(None, (cls, x, y, w, h))``
    (the box cut to the image when ``clip``), or ``(kind, why)`` when the line cannot be used
    (for checkers that report every line themselves)."""
    return _label_line(text, classes, clip)


def parse_labels(lines, path="<labels>", classes=None, problems=None, clip=False,
                 keep_empty=False):
    """Label lines ``class x y w h`` (relative centre and size) -> float64 [n, 5].

    ``clip=False`` (mAP, anchors): boxes as written, as Darknet's validate_detector_map and
    calc_anchors use ``read_boxes``. ``clip=True`` (training, Darknet's ``correct_boxes``): a
    box wholly outside the image is dropped and the others are cut to the image.
    ``keep_empty=True`` (mAP, recall): a box of width or height <= 0 is still reported but
    kept, as a truth no detection can match: Darknet's ``read_boxes`` keeps it, so its recall
    and AP count it among the truths.

    A line that cannot be used is reported through ``problems`` as ``path:line: why: 'text';
    line skipped`` and skipped, counted under its kind: ``label_line_malformed`` (not 5
    fields, not numbers, not finite), ``label_class_out_of_range`` (outside 0..classes-1),
    ``label_box_empty`` (w or h <= 0), ``label_box_outside`` and ``label_box_at_origin``
    (``clip=True`` only; Darknet drops a box centred at 0, 0 as a wrong annotation). Blank lines
    and ``#`` comments are passed over."""
    rows = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        kind, result = _label_line(text, classes, clip)
        if kind is None:
            rows.append(result)
            continue
        kept = keep_empty and kind == "label_box_empty"
        if kept:
            rows.append([float(v) for v in text.split()])
        if problems is not None:
            fate = "kept as a truth no detection can find, as Darknet" if kept else \
                "line skipped"
            problems.report(kind, f"{path}:{number}: {result}: '{text[:80]}'; {fate}",
                            key=f"{path}:{number}")
    return np.array(rows, np.float64).reshape(-1, 5)


def read_labels(path, classes=None, problems=None, clip=False,
                missing="read as an image without objects", keep_empty=False):
    """A label file as :func:`parse_labels`; ``None`` when it cannot be read, reported (once
    per file, key ``labels_missing``) as ``path: label file not found; <missing>``, where
    ``missing`` says what the caller does then (mAP and anchors: the image has no objects, as
    Darknet's ``read_boxes``; training: ``"image skipped"``)."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as e:
        if problems is not None:
            why = "label file not found" if isinstance(e, FileNotFoundError) else \
                f"cannot read the label file ({e.strerror or e})"
            problems.report("labels_missing", f"{path}: {why}; {missing}", key=path)
        return None
    return parse_labels(lines, path, classes, problems, clip, keep_empty)


def classes_in_path(path, names):
    """Indexes of the class names that occur in ``path``, in names order (Darknet's classifier
    ``strstr(path, labels[i])`` over all names)."""
    return [i for i, name in enumerate(names) if name and name in path]


def class_from_path(path, names, first=True):
    """A classifier image's class: the class names found in its file name or, when the file
    name holds none, in the whole path (Darknet looks at the whole path only); one name ->
    its index, none -> None. Several: ``first=True`` gives the first in names order (Darknet's
    ``classifier valid`` takes the first match), ``first=False`` None (training skips the
    image; Darknet's ``fill_truth`` warns "Too many or too few labels" and trains a multi-hot
    truth). Looking at the file name first keeps a folder such as ``square-things/`` from
    confusing the lookup, in training and in evaluation alike."""
    hits = classes_in_path(path, names)
    in_file = [i for i in hits if names[i] in os.path.basename(path)]
    hits = in_file or hits
    if len(hits) == 1 or (hits and first):
        return hits[0]
    return None
