"""Where the CPU backend's convolutions run: oneDNN (the ``onednn-cpu-gomp`` wheel's
libdnnl.so.3) or the C core's im2col + sgemm.

The extension is linked against libdnnl.so.3 with an rpath relative to an installed package
(``<prefix>/lib``, where pip puts the wheel's library). :func:`preload` also loads it from
wherever pip installed it before the extension is imported, so in-place builds and other
layouts find it without LD_LIBRARY_PATH. ``PYDARKNET_ONEDNN=0`` makes every convolution use
im2col + sgemm.
"""

import ctypes
import os

ENV = "PYDARKNET_ONEDNN"
FALLBACK = "im2col+sgemm"


def library_path():
    """The installed onednn-cpu-gomp wheel's libdnnl.so.3, or None."""
    from importlib.metadata import PackageNotFoundError, distribution
    try:
        dist = distribution("onednn-cpu-gomp")
    except PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.name == "libdnnl.so.3":
            path = os.path.abspath(str(dist.locate_file(f)))
            if os.path.exists(path):
                return path
    return None


_preloaded = None


def preload():
    """Loads libdnnl.so.3 (global symbols) so that the extension's dependency resolves to it;
    silent when the wheel is absent (an extension built without oneDNN needs nothing, one
    built with it then says what is missing when it is imported)."""
    global _preloaded
    if _preloaded is None:
        path = library_path()
        if path:
            try:
                _preloaded = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError:
                _preloaded = False
        else:
            _preloaded = False
    return bool(_preloaded)


def requested():
    """False when PYDARKNET_ONEDNN is 0 / false / no / off (the fallback everywhere)."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")
