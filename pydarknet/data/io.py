"""Reading images without ever crashing on bad input, and the ``Problems`` tally.

Every problem (a missing or unreadable image, a missing label file, a malformed label line, a
class id out of range) is warned once with its path (and line), counted in a ``Problems``
tally, and the offending item skipped. Label files, lists and the image -> label rules are
:mod:`pydarknet.labels`.
"""

import collections
import os
import threading
import warnings
import zlib

import cv2
import numpy as np

from ..errors import PydarknetError
from ..labels import read_list  # noqa: F401  (pydarknet.data.loader imports it from here)


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


def track_base(path):
    """Darknet's per-image track-id base: (hash(path) % 4000) * 4000."""
    return float((zlib.crc32(os.fsencode(path)) % 4000) * 4000)
