"""A backend whose arrays allow only what a device array allows, over the CPU backend.

Its arrays expose ``shape``, ``dtype``, ``size``, ``ndim`` and ``reshape`` and nothing else:
no indexing, arithmetic, reductions or numpy conversion. ``to_numpy`` returns a copy, as a
GPU backend does. A network that runs on it therefore does all its array work through the
op API (pydarknet/backend/__init__.py), which is what lets the CUDA backend run every layer
unchanged. Ops reject numpy arrays where a backend array belongs.
"""

import functools

import numpy as np

from pydarknet.backend import OP_NAMES, get_backend

cpu = get_backend("cpu")        # the wrapped backend object

HOST_ARRAYS = False

# (op, argument position or name) that take host numpy arrays by design
HOST_ARGS = {("from_numpy", 0), ("copy_from_numpy", 1), ("shortcut_add", 4),
             ("shortcut_add", "weights")}


class DeviceArray:
    __slots__ = ("_a",)
    __array_ufunc__ = None      # numpy refuses arithmetic with it

    def __init__(self, a):
        self._a = a

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    size = property(lambda self: self._a.size)
    ndim = property(lambda self: self._a.ndim)

    def reshape(self, *shape):
        return DeviceArray(self._a.reshape(*shape))

    def __array__(self, *args, **kw):
        raise TypeError("a backend array was used as a numpy array: go through the op API "
                        "(backend.to_numpy for host-side work)")

    def __repr__(self):
        return f"<DeviceArray {self.shape} {self.dtype}>"


def _unwrap(op, key, v):
    if isinstance(v, DeviceArray):
        return v._a
    if isinstance(v, np.ndarray) and v.ndim > 0 and (op, key) not in HOST_ARGS:
        raise TypeError(f"{op}: argument {key!r} is a numpy array where a backend array "
                        f"belongs (move it with backend.from_numpy)")
    return v


def _wrap_op(name, fn):
    @functools.wraps(fn)
    def op(*args, **kw):
        args = [_unwrap(name, i, a) for i, a in enumerate(args)]
        kw = {k: _unwrap(name, k, v) for k, v in kw.items()}
        result = fn(*args, **kw)
        return DeviceArray(result) if isinstance(result, np.ndarray) else result
    return op


def empty(shape, dtype=np.float32):
    return DeviceArray(cpu.empty(shape, dtype))


def zeros(shape):
    return DeviceArray(cpu.zeros(shape))


def from_numpy(a):
    return DeviceArray(np.array(a, np.float32, order="C", copy=True))


def to_numpy(a):
    if not isinstance(a, DeviceArray):
        raise TypeError(f"to_numpy: expected a backend array, got {type(a).__name__}")
    return a._a.copy()


for _name in OP_NAMES:
    if _name not in globals():
        globals()[_name] = _wrap_op(_name, getattr(cpu, _name))
