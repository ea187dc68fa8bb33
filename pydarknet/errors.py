"""Errors that tell a person what to fix: every one names where the problem is.

The data-set errors and the ``Problems`` tally live here too (not in :mod:`pydarknet.data`,
which needs OpenCV), so that reading .data, list and label files imports no image library.
"""

import collections
import threading
import warnings


class PydarknetError(Exception):
    """Base class of every error pydarknet raises on purpose."""


class CfgError(PydarknetError, ValueError):
    """A .cfg file that cannot be built: names file, line, section and option."""

    def __init__(self, message, path=None, line=None, section=None, option=None):
        self.path, self.line, self.section, self.option = path, line, section, option
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        what = ""
        if section is not None:
            what = f"[{section}]" + (f" {option}: " if option else ": ")
        super().__init__(f"{where}{what}{message}")


class WeightsError(PydarknetError, ValueError):
    """A .weights file that does not fit the network it is loaded into."""


class WeightsWarning(UserWarning):
    """A .weights file that loads, with floats left unread (past trailing dontload=1 layers,
    as Darknet leaves them), or a checkpoint whose .state.npz sidecar cannot be read (the run
    resumes from the weights alone)."""


class ShapeError(PydarknetError, ValueError):
    """An array of the wrong shape or dtype handed to the network."""


class NotSupportedError(PydarknetError, NotImplementedError):
    """A layer or option pydarknet recognises but does not run (yet)."""


class DataError(PydarknetError, ValueError):
    """A data set that cannot be trained on or evaluated at all (an empty list, no readable
    image, a .data file without a needed line)."""


class DataWarning(UserWarning):
    """A bad image, label file or label line that was skipped, or a data-set rule that differs
    from Darknet's."""


class Problems:
    """Thread-safe tally of skipped inputs, each warned about once.

    ``report(kind, message, key)`` counts one problem of ``kind`` and warns ``message`` the
    first time its key is seen; a report repeating an explicit ``key`` (the same file read
    again by another thread or in a later epoch) is neither warned nor counted again, so the
    counts are how many files (or lines) were skipped. ``warn_once(key, message)`` warns
    without counting (a note, not a skip). Kept free of OpenCV and numpy so that reading
    label files (:mod:`pydarknet.labels`) imports neither."""

    def __init__(self):
        self._lock = threading.Lock()
        self.counts = collections.Counter()
        self._seen = set()
        self.messages = []          # the first 1000 warnings, for reports and tests
        self.examples = {}          # kind -> the first message of that kind

    def report(self, kind, message, key=None):
        """Count ``kind`` and warn ``message``, once per explicit ``key``; without a key,
        every report counts and each distinct message is warned once."""
        seen_key = (kind, message if key is None else key)
        with self._lock:
            if seen_key in self._seen:
                if key is None:
                    self.counts[kind] += 1
                return
            self._seen.add(seen_key)
            self.counts[kind] += 1
            self.examples.setdefault(kind, message)
            if len(self.messages) < 1000:
                self.messages.append(message)
        self._warn(message)

    def warn_once(self, key, message):
        """Warn ``message`` the first time ``key`` is seen; nothing is counted."""
        with self._lock:
            if ("note", key) in self._seen:
                return
            self._seen.add(("note", key))
            if len(self.messages) < 1000:
                self.messages.append(message)
        self._warn(message)

    @staticmethod
    def _warn(message):
        warnings.warn(message, DataWarning, stacklevel=4)

    def total(self):
        """How many inputs (files and label lines) were skipped, all kinds together."""
        with self._lock:
            return sum(self.counts.values())

    def as_dict(self):
        with self._lock:
            return dict(self.counts)

    def __repr__(self):
        return f"Problems({self.as_dict()})"
