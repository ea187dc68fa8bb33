"""Darknet .cfg text -> sections with typed options.

Reads cfg files the way Darknet's ``read_cfg`` does (every blank, tab and CR is removed from a
line; ``#`` and ``;`` start comment lines; ``[name]`` starts a section; ``key=value`` adds an
option; the first occurrence of a key wins) but keeps the file and line of everything, so that
every error and warning can say where to look.
"""

import math
import os
import re
import warnings

from .errors import CfgError

# The names of the network-wide section that must come first. Layer section names and their
# aliases live with the layers (pydarknet.layers.registry).
NET_SECTIONS = ("net", "network")

_REQUIRED = object()


class CfgWarning(UserWarning):
    """An option no layer reads, or a repeated key: Darknet's "Unused field"."""


class Option:
    __slots__ = ("key", "value", "line", "used")

    def __init__(self, key, value, line):
        self.key, self.value, self.line, self.used = key, value, line, False


class Section:
    """One ``[name]`` block: the name as written, where it starts, and its options."""

    def __init__(self, name, path, line):
        self.name = name
        self.path = path
        self.line = line
        self.options = {}

    @property
    def is_net(self):
        """Whether this is the [net] / [network] section."""
        return self.name in NET_SECTIONS

    def __repr__(self):
        return f"<Section [{self.name}] {self.path}:{self.line}>"

    # -- error helpers -------------------------------------------------------------------
    def error(self, message, option=None):
        """A CfgError pointing at ``option``'s line (or the section's)."""
        line = self.line
        if option is not None and option in self.options:
            line = self.options[option].line
        return CfgError(message, self.path, line, self.name, option)

    # -- typed look-ups; each marks the option used --------------------------------------
    def has(self, key):
        return key in self.options

    def raw(self, key, default=None):
        opt = self.options.get(key)
        if opt is None:
            return default
        opt.used = True
        return opt.value

    def _missing(self, key, default, kind):
        if default is _REQUIRED:
            raise self.error(f"missing required option '{key}' ({kind})", key)
        return default

    def get_str(self, key, default=_REQUIRED):
        value = self.raw(key)
        return self._missing(key, default, "a name") if value is None else value

    def get_int(self, key, default=_REQUIRED):
        value = self.raw(key)
        if value is None:
            return self._missing(key, default, "an integer")
        return self._to_int(key, value)

    def get_float(self, key, default=_REQUIRED):
        value = self.raw(key)
        if value is None:
            return self._missing(key, default, "a number")
        return self._to_float(key, value)

    def get_ints(self, key, default=_REQUIRED):
        value = self.raw(key)
        if value is None:
            return self._missing(key, default, "a comma-separated list of integers")
        return [self._to_int(key, v) for v in _split_list(value)]

    def get_floats(self, key, default=_REQUIRED):
        value = self.raw(key)
        if value is None:
            return self._missing(key, default, "a comma-separated list of numbers")
        return [self._to_float(key, v) for v in _split_list(value)]

    def _to_int(self, key, text):
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            raise self.error(f"expected an integer, found '{text}'", key) from None
        if not math.isfinite(number) or number != int(number):
            raise self.error(f"expected an integer, found '{text}'", key)
        digits = re.match(r"\s*[+-]?\d*", text).group()
        atoi = int(digits) if digits.strip().lstrip("+-") else 0
        if atoi != int(number):     # "1e5": Darknet's atoi stops at the 'e'
            opt = self.options.get(key)
            warnings.warn(f"{self.path}:{opt.line if opt else self.line}: [{self.name}] "
                          f"{key}={text} is read as {int(number)}; Darknet's atoi reads "
                          f"{atoi}", CfgWarning, stacklevel=4)
        return int(number)

    def _to_float(self, key, text):
        try:
            number = float(text)
        except ValueError:
            raise self.error(f"expected a number, found '{text}'", key) from None
        if math.isnan(number):
            raise self.error(f"expected a number, found '{text}'", key)
        return number

    def unused(self):
        return [opt for opt in self.options.values() if not opt.used]

    def warn_unused(self):
        for opt in self.unused():
            warnings.warn(f"{self.path}:{opt.line}: [{self.name}] unused option "
                          f"'{opt.key}={opt.value}' (no layer reads it)", CfgWarning, stacklevel=3)


def _split_list(value):
    # empty items (a trailing comma) carry nothing
    return [v for v in value.split(",") if v != ""]


def parse_cfg_text(text, path="<cfg>"):
    """Parse cfg text into a list of Sections."""
    sections = []
    current = None
    text = text[1:] if text.startswith("\ufeff") else text    # a byte-order mark (Notepad)
    for number, line in enumerate(text.splitlines(), start=1):
        line = "".join(line.split())  # Darknet's strip(): every blank goes, inside too
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            if not line.endswith("]") or len(line) < 3:
                raise CfgError(f"malformed section header '{line}': expected [name]", path, number)
            current = Section(line[1:-1], path, number)
            sections.append(current)
            continue
        if current is None:
            raise CfgError(f"option '{line}' before the first [section]", path, number)
        key, sep, value = line.partition("=")
        value = value.split("#", 1)[0]  # Darknet's atoi/atof stop at an inline '#' comment
        if not sep or not key or value == "":
            raise CfgError(f"cannot parse '{line}': expected key=value", path, number,
                           current.name)
        if key in current.options:
            first = current.options[key].line
            warnings.warn(f"{path}:{number}: [{current.name}] '{key}' repeated; Darknet "
                          f"uses the first value (line {first})", CfgWarning, stacklevel=2)
            continue
        current.options[key] = Option(key, value, number)
    if not sections:
        raise CfgError("no sections: a cfg starts with [net]", path)
    if not sections[0].is_net:
        raise CfgError(f"the first section must be [net] or [network], found [{sections[0].name}]",
                       path, sections[0].line)
    return sections


def parse_cfg(path):
    """Read and parse a .cfg file."""
    path = os.fspath(path)
    try:
        with open(path, "r", encoding="utf-8-sig", errors="replace") as f:
            text = f.read()
    except OSError as e:
        raise CfgError(f"cannot read the cfg file: {e.strerror}", path) from None
    return parse_cfg_text(text, path)
