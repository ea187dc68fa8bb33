"""Finding and loading NVIDIA's libraries (cuBLAS, cuDNN) for the ctypes bindings: the files
of the nvidia-* wheels on sys.path first, then the system's, or one path from an environment
variable."""

import ctypes
import ctypes.util
import glob
import os
import sys


def library_candidates(env_var, patterns, short_name, names):
    """Paths and names to try, in order: ``$env_var`` alone when set; else every file under an
    ``nvidia/`` folder on sys.path that matches ``patterns`` (in pattern order); then what
    ctypes.util.find_library(short_name) gives, then ``names``."""
    env = os.environ.get(env_var)
    if env:
        return [env]
    found = []
    for base in sys.path:
        root = os.path.join(base or os.curdir, "nvidia")
        if not os.path.isdir(root):
            continue
        for pattern in patterns:
            for path in sorted(glob.glob(os.path.join(root, pattern))):
                if path not in found:
                    found.append(path)
    name = ctypes.util.find_library(short_name)
    for n in ([name] if name else []) + list(names):
        if n not in found:
            found.append(n)
    return found


class CachedLibrary:
    """One NVIDIA library, loaded and bound on first use and kept: ``load()`` tries
    ``candidates()`` in order (an explicit list is tried without touching the cache)."""

    def __init__(self, candidates, open_library, bind, error, what, install):
        self.candidates, self.open_library, self.bind = candidates, open_library, bind
        self.error, self.what, self.install = error, what, install
        self.lib = self.path = None

    def load(self, candidates=None):
        if candidates is not None:
            return load_first(candidates, self.open_library, self.bind, self.error,
                              self.what, self.install)[0]
        if self.lib is None:
            self.lib, self.path = load_first(self.candidates(), self.open_library, self.bind,
                                             self.error, self.what, self.install)
        return self.lib


def load_first(candidates, open_library, bind, error, what, install):
    """(library, path) of the first candidate that ``open_library`` opens, bound by
    ``bind(lib, path)``; raises ``error`` naming what was tried and how to install."""
    tried = []
    for path in candidates:
        try:
            lib = open_library(path)
        except OSError as exc:
            tried.append(f"{path} ({exc})" if os.sep in path else path)
            continue
        bind(lib, path)
        return lib, path
    raise error(f"{what} not found" + (f"; tried: {'; '.join(tried)}" if tried else "") +
                f". {install}")
