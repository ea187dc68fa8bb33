"""A thin ctypes binding of the few NCCL functions data-parallel training needs on GPUs.

NCCL comes from NVIDIA's wheel on PyPI (``pip install nvidia-nccl-cu13``:
``nvidia/nccl/lib/libnccl.so.2``); a system libnccl is used when no wheel is installed and
``PYDARKNET_NCCL`` names a library file to use instead of searching. Loading needs no GPU;
creating a communicator needs the CUDA driver and a device.

The communicator's unique id is made on rank 0 and broadcast over MPI; the all-reduce runs on
the backend's stream, on device memory (pointers are device addresses as Python ints).
Every call's status is checked: a failure raises :class:`NcclError` naming the call.
"""

import ctypes

from ..backend import nvlib
from ..errors import PydarknetError

UNIQUE_ID_BYTES = 128          # nccl.h NCCL_UNIQUE_ID_BYTES
FLOAT32 = 7                    # ncclFloat32
SUM = 0                        # ncclSum


class NcclError(PydarknetError):
    pass


class UniqueId(ctypes.Structure):
    _fields_ = [("internal", ctypes.c_char * UNIQUE_ID_BYTES)]


_P, _I, _SZ = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
# name -> (restype, argtypes), as nccl.h declares them (ncclResult_t is an int)
SYMBOLS = {
    "ncclGetVersion": (_I, [ctypes.POINTER(_I)]),
    "ncclGetUniqueId": (_I, [ctypes.POINTER(UniqueId)]),
    "ncclCommInitRank": (_I, [ctypes.POINTER(_P), _I, UniqueId, _I]),
    "ncclCommDestroy": (_I, [_P]),
    "ncclCommAbort": (_I, [_P]),
    "ncclAllReduce": (_I, [_P, _P, _SZ, _I, _I, _P, _P]),
    "ncclGetErrorString": (ctypes.c_char_p, [_I]),
}


def library_candidates():
    return nvlib.library_candidates("PYDARKNET_NCCL", ["nccl/lib/libnccl.so.2"], "nccl",
                                    ["libnccl.so.2"])


def _bind(lib, path):
    for name, (restype, argtypes) in SYMBOLS.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes


_LIBRARY = nvlib.CachedLibrary(library_candidates, ctypes.CDLL, _bind, NcclError, "NCCL",
                               "Install it with `pip install nvidia-nccl-cu13` (or set "
                               "PYDARKNET_NCCL to a libnccl.so.2)")


def load_library(candidates=None):
    return _LIBRARY.load(candidates)


def _check(name, status):
    if status != 0:
        text = load_library().ncclGetErrorString(status)
        raise NcclError(f"{name} failed: NCCL error {status} "
                        f"({text.decode() if text else 'unknown'})")


def version():
    v = _I()
    _check("ncclGetVersion", load_library().ncclGetVersion(ctypes.byref(v)))
    return v.value


def new_unique_id():
    """A fresh communicator id (bytes), made on one rank and sent to the others."""
    uid = UniqueId()
    _check("ncclGetUniqueId", load_library().ncclGetUniqueId(ctypes.byref(uid)))
    return bytes(uid)            # the raw 128 bytes (.internal would stop at a NUL)


class Communicator:
    """One rank of an NCCL communicator over ``size`` ranks (the current CUDA device)."""

    def __init__(self, unique_id, size, rank):
        if len(unique_id) != UNIQUE_ID_BYTES:
            raise ValueError(f"an NCCL unique id has {UNIQUE_ID_BYTES} bytes, got "
                             f"{len(unique_id)}")
        uid = UniqueId()
        ctypes.memmove(ctypes.addressof(uid), unique_id, UNIQUE_ID_BYTES)
        self._comm = _P()
        _check("ncclCommInitRank",
               load_library().ncclCommInitRank(ctypes.byref(self._comm), size, uid, rank))
        self.size, self.rank = size, rank

    def allreduce_sum(self, pointer, count, stream=0):
        """In-place sum of ``count`` float32 values at device address ``pointer`` over the
        ranks, queued on ``stream`` (a CUstream handle as an int; 0 = the default stream)."""
        _check("ncclAllReduce", load_library().ncclAllReduce(
            _P(pointer), _P(pointer), count, FLOAT32, SUM, self._comm, _P(stream or None)))

    def close(self, abort=False):
        if self._comm:
            fn = "ncclCommAbort" if abort else "ncclCommDestroy"
            _check(fn, getattr(load_library(), fn)(self._comm))
            self._comm = _P()


def communicator_for(world):
    """An NCCL communicator over the MPI ``world``'s ranks: the id made on rank 0 and
    broadcast over MPI."""
    unique_id = world.broadcast(new_unique_id() if world.is_root else None)
    return Communicator(unique_id, world.size, world.rank)
