"""Reading training images without ever crashing on bad input.

Every problem (a missing, empty, truncated or undecodable image, a missing label file, a
malformed label line, a class id out of range) is warned once with its path (and line),
counted once in a ``Problems`` tally (:mod:`pydarknet.errors`), and the offending item
skipped; a list with no usable item at all is a ``DataError`` saying what to fix. Label
files, lists and the image -> label rules are :mod:`pydarknet.labels`.
"""

import os
import threading
import zlib

import cv2

# the error and tally types live in pydarknet.errors (no OpenCV there); importable from here
from ..errors import DataError, DataWarning, Problems  # noqa: F401
from ..labels import read_list  # noqa: F401  (pydarknet.data.loader imports it from here)


class BadIndexes:
    """The list positions found unusable, shared by a data set's loader threads."""

    def __init__(self, size):
        self.size = size
        self._bad = set()
        self._lock = threading.Lock()

    def mark(self, index):
        with self._lock:
            self._bad.add(index)

    def first_usable(self, rng, index, load, problems, tries=100):
        """``load(index)`` for ``index`` or, while it returns None (the item is marked bad),
        for random other positions, then for the rest of the list in order; a ``DataError``
        saying what to fix when no item of the list is usable (never an endless search)."""
        for _ in range(tries):
            if index not in self._bad:
                item = load(index)
                if item is not None:
                    return item
                self.mark(index)
            if len(self._bad) >= self.size:
                break
            index = int(rng.integers(self.size))
        for index in range(self.size):      # most of the list is bad: look at every item once
            if len(self._bad) >= self.size:
                break
            if index not in self._bad:
                item = load(index)
                if item is not None:
                    return item
                self.mark(index)
        raise DataError(unusable_list_message(self.size, problems))

    def __contains__(self, index):
        return index in self._bad

    def __len__(self):
        return len(self._bad)


# what to fix, by kind of problem, when a whole list is unusable
_FIXES = {
    "image_missing": "make every line of the list (train= in the .data file) the path of an "
                     "existing image (relative paths are read from the current folder)",
    "image_empty": "replace the empty (0-byte) image files",
    "image_truncated": "replace the truncated image files (copy them again)",
    "image_unreadable": "replace the files that are not images OpenCV can decode",
    "image_failed": "replace the images OpenCV cannot resize",
    "labels_missing": "put a label file beside each image (<image>.txt, AlexeyAB's rule)",
    "no_class_in_path": "name each image so that its file name holds its class name",
    "class_ambiguous_in_path": "name each image so that its file name holds one class name",
}


def unusable_list_message(size, problems):
    """The ``DataError`` text for a list none of whose ``size`` items can be used: what was
    found (counts by kind, the first message) and what to fix."""
    counts = problems.as_dict() if problems is not None else {}
    found = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(counts.items()))
    fixes = [_FIXES[k] for k in sorted(counts, key=counts.get, reverse=True) if k in _FIXES]
    first = next((problems.examples[k] for k in sorted(counts, key=counts.get, reverse=True)
                  if k in _FIXES), None) if problems is not None else None
    return (f"no usable image among the {size} in the list ({found or 'no details'})"
            + (f"; first: {first}" if first else "")
            + (": " + "; ".join(fixes) if fixes else ": check the list and its images"))


def truncated_jpeg(path):
    """True for a JPEG file without its end-of-image marker (cut short in a copy or download):
    OpenCV decodes it anyway, filling the missing part with grey, and would train on that."""
    with open(path, "rb") as f:
        if f.read(2) != b"\xff\xd8":
            return False
        f.seek(-2, os.SEEK_END)
        if f.read(2) == b"\xff\xd9":
            return False
        f.seek(0)
        return b"\xff\xd9" not in f.read()      # data after the marker (metadata) is fine


def read_image(path, channels=3, problems=None):
    """The image as uint8 RGB HxWx3 (channels >= 3) or grey HxW (channels == 1); None (warned
    once per file, counted) when it is missing, empty, truncated or cannot be decoded."""
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    img = None
    if not os.path.isfile(path):
        kind, why = "image_missing", ("image not found" if not os.path.exists(path)
                                      else "not a file")
    elif os.path.getsize(path) == 0:
        kind, why = "image_empty", "the image file is empty (0 bytes)"
    else:
        try:
            img = cv2.imread(path, flag)
        except cv2.error:
            img = None
        kind, why = "image_unreadable", "cannot decode the image (corrupt or not an image)"
        if img is not None and truncated_jpeg(path):
            img, kind, why = None, "image_truncated", ("the JPEG file is truncated (no "
                                                       "end-of-image marker)")
    if img is None or img.size == 0:
        if problems is not None:
            problems.report(kind, f"{path}: {why}; skipped", key=path)
        return None
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


def track_base(path):
    """Darknet's per-image track-id base: (hash(path) % 4000) * 4000."""
    return float((zlib.crc32(os.fsencode(path)) % 4000) * 4000)
