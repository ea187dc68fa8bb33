"""Reading images and label files without ever crashing on bad input.

Every problem (a missing or unreadable image, a missing label file, a malformed label line, a
class id out of range) is warned once with its path (and line), counted in a ``Problems``
tally, and the offending item skipped.
"""

import collections
import math
import os
import threading
import warnings
import zlib

import cv2
import numpy as np

from ..errors import PydarknetError


class DataError(PydarknetError, ValueError):
    """A data set that cannot be trained on at all (an empty list, no readable image)."""


class DataWarning(UserWarning):
    """A bad image, label file or label line that was skipped."""


class Problems:
    """Thread-safe tally of skipped inputs, with each path warned about once."""

    def __init__(self):
        self._lock = threading.Lock()
        self.counts = collections.Counter()
        self._seen = set()
        self.messages = []          # the first 1000 warnings, for reports and tests

    def report(self, kind, message, key=None):
        """Count ``kind``; warn ``message`` unless ``key`` was warned about before."""
        key = (kind, message if key is None else key)
        with self._lock:
            self.counts[kind] += 1
            if key in self._seen:
                return
            self._seen.add(key)
            if len(self.messages) < 1000:
                self.messages.append(message)
        warnings.warn(message, DataWarning, stacklevel=3)

    def as_dict(self):
        with self._lock:
            return dict(self.counts)

    def __repr__(self):
        return f"Problems({self.as_dict()})"


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
        for random other positions; a ``DataError`` when none is usable."""
        for _ in range(tries):
            if index not in self._bad:
                item = load(index)
                if item is not None:
                    return item
                self.mark(index)
            if len(self._bad) >= self.size:
                break
            index = int(rng.integers(self.size))
        raise DataError(f"no usable image among {self.size} in the list: {len(self._bad)} "
                        f"skipped ({problems.as_dict()})")

    def __contains__(self, index):
        return index in self._bad

    def __len__(self):
        return len(self._bad)


def read_list(path, problems=None, what="image list"):
    """Non-empty, stripped lines of a list file (Darknet's train=/valid= files). A missing file
    or an empty list is a ``DataError`` naming the file."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [ln.strip() for ln in f]
    except OSError as e:
        raise DataError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    items = [ln for ln in lines if ln and not ln.startswith("#")]
    if not items:
        raise DataError(f"{path}: the {what} is empty")
    return items


def read_image(path, channels=3, problems=None):
    """The image as uint8 RGB HxWx3 (channels >= 3) or grey HxW (channels == 1); None (warned,
    counted) when it is missing or unreadable."""
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    img = None
    if not os.path.isfile(path):
        kind, why = "image_missing", "image not found"
    else:
        try:
            img = cv2.imread(path, flag)
        except cv2.error:
            img = None
        kind, why = "image_unreadable", "cannot decode image"
    if img is None or img.size == 0:
        if problems is not None:
            problems.report(kind, f"{path}: {why}; skipped", key=path)
        return None
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


def parse_label_lines(lines, path, classes=None, problems=None):
    """Darknet label lines ``class x_center y_center width height`` (relative) -> float64
    [n, 5] (class, x, y, w, h). Malformed lines, class ids outside 0..classes-1 and boxes
    outside the image are warned (path:line), counted and skipped; boxes reaching past an edge
    are clipped to the image."""
    rows = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.split()
        why = None
        if len(parts) != 5:
            why = f"expected 5 fields 'class x y w h', found {len(parts)}"
        else:
            try:
                cls = int(parts[0])
                x, y, w, h = (float(v) for v in parts[1:])
            except ValueError:
                why = "class must be an integer and x, y, w, h numbers"
            else:
                if cls < 0 or (classes is not None and cls >= classes):
                    hi = f"0..{classes - 1}" if classes is not None else ">= 0"
                    why = f"class id {cls} is outside {hi}"
                elif not all(math.isfinite(v) for v in (x, y, w, h)):
                    why = "x, y, w, h must be finite"
                elif w <= 0 or h <= 0:
                    why = f"width and height must be > 0 (w={w:g}, h={h:g})"
                elif x + w / 2 <= 0 or y + h / 2 <= 0 or x - w / 2 >= 1 or y - h / 2 >= 1:
                    why = f"box x={x:g} y={y:g} w={w:g} h={h:g} lies outside the image"
        if why:
            if problems is not None:
                problems.report("label_line_malformed",
                                f"{path}:{number}: {why}: '{text[:80]}'; line skipped")
            continue
        left, right = max(x - w / 2, 0.0), min(x + w / 2, 1.0)
        top, bot = max(y - h / 2, 0.0), min(y + h / 2, 1.0)
        rows.append((cls, (left + right) / 2, (top + bot) / 2, right - left, bot - top))
    return np.array(rows, np.float64).reshape(-1, 5)


def read_label_file(path, classes=None, problems=None):
    """A label file's boxes as ``parse_label_lines``; None (warned, counted) when missing."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        if problems is not None:
            problems.report("labels_missing", f"{path}: label file not found; image skipped",
                            key=path)
        return None
    return parse_label_lines(lines, path, classes, problems)


def track_base(path):
    """Darknet's per-image track-id base: (hash(path) % 4000) * 4000."""
    return float((zlib.crc32(os.fsencode(path)) % 4000) * 4000)
