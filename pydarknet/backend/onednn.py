"""Where the CPU backend's convolutions run: oneDNN (the ``onednn-cpu-gomp`` wheel's
libdnnl.so.3) or the C core's im2col + sgemm.

The extension is linked against libdnnl.so.3 with an rpath relative to an installed package
(``<prefix>/lib``, where pip puts the wheel's library). :func:`preload` also loads it from
wherever pip installed it before the extension is imported, so in-place builds and other
layouts find it without LD_LIBRARY_PATH. ``PYDARKNET_ONEDNN=0`` makes every convolution use
im2col + sgemm. At inference, 3x3 stride-1 convolutions with large outputs use Winograd's
F(4x4, 3x3) (src_c/winograd.c, its products through oneDNN): about 1e-5 of a layer's largest
output from the direct sum, as cuDNN's Winograd algorithms in Darknet's GPU build;
``PYDARKNET_WINOGRAD=0`` keeps the direct convolution there.
"""

import ctypes
import os

ENV = "PYDARKNET_ONEDNN"
WINOGRAD_ENV = "PYDARKNET_WINOGRAD"
FALLBACK = "im2col+sgemm"
WINOGRAD = "winograd-f4x4-3x3"


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


def _switch(name):
    return os.environ.get(name, "1").strip().lower() not in ("0", "false", "no", "off")


def requested():
    """False when PYDARKNET_ONEDNN is 0 / false / no / off (the fallback everywhere)."""
    return _switch(ENV)


def winograd_requested():
    """False when PYDARKNET_WINOGRAD is 0 / false / no / off (direct convolutions only)."""
    return _switch(WINOGRAD_ENV)
