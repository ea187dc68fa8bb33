"""Edits of a cfg file's text that keep the rest as written (comments, blank lines, the order
of options): an option's line replaced (an inline ``#`` comment kept), a line added under its
section's header, or a line left out."""

import os

from .cfg import parse_cfg_text
from .errors import CfgError

__all__ = ["CfgText"]


class CfgText:
    """A cfg's lines and its parsed sections (``sections[0]`` is [net]; layer ``i`` is
    ``sections[i + 1]``), edited in place and read back with :meth:`text`."""

    def __init__(self, text, path="<cfg>"):
        self.path = path
        self.lines = text.splitlines()
        self.sections = parse_cfg_text(text, path)
        self._added = {}          # line number -> lines to add after it
        self._removed = set()

    @classmethod
    def read(cls, path):
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8-sig", errors="replace") as f:
                return cls(f.read(), path)
        except OSError as e:
            raise CfgError(f"cannot read the cfg file: {e.strerror}", path) from None

    def layer(self, index):
        """The section of layer ``index``."""
        return self.sections[index + 1]

    def set(self, section, key, value):
        """``key=value`` in ``section``: its line replaced, or added under the header."""
        opt = section.options.get(key)
        if opt is None:
            self._added.setdefault(section.line, []).append(f"{key}={value}")
            return
        old = self.lines[opt.line - 1]
        hash_at = old.find("#", old.find("=") + 1)
        comment = "  " + old[hash_at:] if hash_at >= 0 else ""
        self.lines[opt.line - 1] = f"{key}={value}{comment}"
        self._removed.discard(opt.line)

    def remove(self, section, key):
        """Leave out ``key``'s line; whether it was there."""
        opt = section.options.get(key)
        if opt is not None:
            self._removed.add(opt.line)
        return opt is not None

    def text(self):
        out = []
        for number, line in enumerate(self.lines, start=1):
            if number not in self._removed:
                out.append(line)
            out.extend(self._added.get(number, ()))
        return "\n".join(out) + "\n"
