"""Image -> label rules the data loaders need (Darknet's ``replace_image_to_label`` and the
classifier's class-name-in-path ``fill_truth``).

Written here because ``pydarknet/labels.py`` (planned to own .data/.names/list parsing and
these rules) did not exist yet; the datasets also take ``label_path=`` / ``class_from_path=``
arguments, so another implementation can be passed in.
"""

import os
import re

_DIRS = ("/images/train2017/", "/images/val2017/", "/images/train2014/", "/images/val2014/",
         "/JPEGImages/", "/images/")
_EXT = re.compile(r"\.(jpe?g|png|bmp|ppm|tiff?|webp)$", re.IGNORECASE)


def label_path(image_path):
    """The label file Darknet reads for an image: the first of images/train2017, ...,
    JPEGImages, images in the path replaced by labels (pjreddie's rules) and the image
    extension by .txt. When that file does not exist but a .txt beside the image does (AB's
    rule for custom data sets), that one."""
    p = str(image_path).replace("\\", "/")
    mapped = p
    for d in _DIRS:
        if d in mapped:
            mapped = mapped.replace(d, d.replace("images", "labels").replace("JPEGImages",
                                                                           "labels"), 1)
            break
    mapped = _EXT.sub(".txt", mapped)
    if not mapped.endswith(".txt"):
        mapped = os.path.splitext(mapped)[0] + ".txt"
    if not os.path.exists(mapped):
        beside = os.path.splitext(p)[0] + ".txt"
        if os.path.exists(beside):
            return beside
    return mapped


def class_from_path(path, labels):
    """Index of the one class name found in ``path`` (Darknet: ``strstr`` on the path); when
    the full path holds none or several, the file name alone decides. None if still not one."""
    hits = [i for i, name in enumerate(labels) if name and name in path]
    if len(hits) == 1:
        return hits[0]
    base = os.path.basename(path)
    hits = [i for i, name in enumerate(labels) if name and name in base]
    return hits[0] if len(hits) == 1 else None


def read_data_file(path):
    """A Darknet .data file (``key = value`` lines, ``#`` comments) as a dict of strings;
    ``classes`` as an int when present. Missing file: ``DataError``."""
    from .io import DataError
    out = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError as e:
        raise DataError(f"{path}: cannot read the .data file: {e.strerror or e}") from None
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if "=" not in text:
            raise DataError(f"{path}:{number}: expected 'key = value', found '{text[:80]}'")
        key, value = (t.strip() for t in text.split("=", 1))
        out[key] = value
    if "classes" in out:
        try:
            out["classes"] = int(out["classes"])
        except ValueError:
            raise DataError(f"{path}: classes = {out['classes']} is not an integer") from None
    return out
