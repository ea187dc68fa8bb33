"""A thin ctypes binding of cuDNN's legacy convolution API, for the CUDA backend.

cuDNN comes from NVIDIA's wheel on PyPI: ``pip install nvidia-cudnn-cu13`` (CUDA 13:
``nvidia/cudnn/lib/libcudnn.so.9``; it pulls in ``nvidia-cublas``) or ``nvidia-cudnn-cu12``
(CUDA 12); a system libcudnn (``ctypes.util.find_library``, LD_LIBRARY_PATH) is used when no
wheel is installed, and ``PYDARKNET_CUDNN_LIB`` names a library file to use instead of
searching. cuDNN 9 is required. Loading the library, the descriptors and
:func:`output_dim` need no GPU and no driver; :class:`Handle` (``cudnnCreate``) needs both.

The signatures and enum values below are those of cuDNN 9's headers (checked against the
``nvidia-cudnn-cu13`` 9.28.1 wheel's ``include/cudnn_graph.h``, ``cudnn_ops.h`` and
``cudnn_cnn.h``; ``tests/test_cuda_backend.py`` compares :data:`SYMBOLS` with the installed
headers wherever the wheel is there). The legacy convolution API is deprecated in cuDNN 9 but
still exported by ``libcudnn.so.9``, which loads its sub-libraries (``libcudnn_cnn`` and
friends, found through their own rpath) on first use.

Pointers are device addresses as Python ints; tensors are NCHW float32. Every call's status is
checked: a failure raises :class:`CudnnError` naming the function, the status and cuDNN's
last error message.
"""

import ctypes
from collections import namedtuple

from ..errors import PydarknetError
from . import nvlib as _nvlib

__all__ = [
    "CudnnError", "Handle", "TensorDescriptor", "FilterDescriptor", "ConvolutionDescriptor",
    "AlgoPerf", "output_dim", "load_library", "library_candidates", "library_path", "version",
    "status_name", "SYMBOLS", "STATUS_NAMES", "DATA_FLOAT", "TENSOR_NCHW", "CROSS_CORRELATION",
    "DEFAULT_MATH", "TENSOR_OP_MATH", "TENSOR_OP_MATH_ALLOW_CONVERSION", "FMA_MATH",
    "NON_DETERMINISTIC", "DETERMINISTIC", "FWD", "BWD_DATA", "BWD_FILTER",
]

# cudnn_graph.h
DATA_FLOAT, DATA_HALF = 0, 2                  # cudnnDataType_t
TENSOR_NCHW = 0                               # cudnnTensorFormat_t
CONVOLUTION, CROSS_CORRELATION = 0, 1         # cudnnConvolutionMode_t
# cudnnMathType_t. DEFAULT_MATH lets Ampere and newer GPUs run float32 convolutions on TF32
# tensor cores; FMA_MATH restricts them to FMA kernels (exact float32);
# TENSOR_OP_MATH_ALLOW_CONVERSION also lets cuDNN convert float32 tensors down for the tensor
# cores.
DEFAULT_MATH, TENSOR_OP_MATH, TENSOR_OP_MATH_ALLOW_CONVERSION, FMA_MATH = 0, 1, 2, 3
# cudnn_ops.h
NON_DETERMINISTIC, DETERMINISTIC = 0, 1       # cudnnDeterminism_t
FWD_ALGO_NAMES = ("IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT",
                  "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED")
BWD_DATA_ALGO_NAMES = ("ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED")
BWD_FILTER_ALGO_NAMES = ("ALGO_0", "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED",
                         "FFT_TILING")
# The three directions of a convolution (names used by this module and the backend).
FWD, BWD_DATA, BWD_FILTER = "forward", "backward_data", "backward_filter"

STATUS_NAMES = {
    0: "CUDNN_STATUS_SUCCESS",
    1001: "CUDNN_STATUS_NOT_INITIALIZED", 1002: "CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH",
    1003: "CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH", 1004: "CUDNN_STATUS_DEPRECATED",
    1005: "CUDNN_STATUS_LICENSE_ERROR", 1006: "CUDNN_STATUS_RUNTIME_IN_PROGRESS",
    1007: "CUDNN_STATUS_RUNTIME_FP_OVERFLOW", 1008: "CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED",
    2000: "CUDNN_STATUS_BAD_PARAM", 2001: "CUDNN_STATUS_INVALID_VALUE",
    2002: "CUDNN_STATUS_BAD_PARAM_NULL_POINTER",
    2003: "CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER",
    2004: "CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED", 2005: "CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND",
    2006: "CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT",
    2007: "CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH",
    2008: "CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH",
    2009: "CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES",
    2010: "CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE",
    2011: "CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH",
    2012: "CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE",
    3000: "CUDNN_STATUS_NOT_SUPPORTED", 3001: "CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN",
    3002: "CUDNN_STATUS_NOT_SUPPORTED_SHAPE", 3003: "CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE",
    3004: "CUDNN_STATUS_NOT_SUPPORTED_LAYOUT",
    3005: "CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER",
    3006: "CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART",
    3007: "CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH",
    3008: "CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING",
    3009: "CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE",
    3010: "CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT",
    3011: "CUDNN_STATUS_NOT_SUPPORTED_PADDING", 3012: "CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM",
    3013: "CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API",
    3014: "CUDNN_STATUS_NOT_SUPPORTED_INVALID_DYNAMIC_SHAPE",
    4000: "CUDNN_STATUS_INTERNAL_ERROR", 4001: "CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED",
    4002: "CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE",
    4003: "CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED",
    4004: "CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED",
    4005: "CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM",
    4006: "CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED",
    5000: "CUDNN_STATUS_EXECUTION_FAILED", 5001: "CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER",
    5002: "CUDNN_STATUS_EXECUTION_FAILED_CUBLAS", 5003: "CUDNN_STATUS_EXECUTION_FAILED_CUDART",
    5004: "CUDNN_STATUS_EXECUTION_FAILED_CURAND",
}
_CATEGORY_HINTS = {
    1000: "cuDNN could not start (no usable GPU or driver? check nvidia-smi; libcudnn.so.9 "
          "from nvidia-cudnn-cu13 needs a driver for CUDA 13: with an older driver install "
          "nvidia-cudnn-cu12 instead, or set PYDARKNET_CUDNN=0 to use the im2col path)",
    4000: "cuDNN failed inside (out of GPU memory? lower the batch or raise subdivisions)",
    5000: "the GPU failed to run the convolution (an earlier kernel may have failed: run with "
          "CUDA_LAUNCH_BLOCKING=1 to find it)",
}


class _Perf(ctypes.Structure):
    """cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t (the three share this layout)."""
    _fields_ = [("algo", ctypes.c_int), ("status", ctypes.c_int), ("time", ctypes.c_float),
                ("memory", ctypes.c_size_t), ("determinism", ctypes.c_int),
                ("mathType", ctypes.c_int), ("reserved", ctypes.c_int * 3)]


# One algorithm of a heuristics answer: algo, status, time (ms; -1 from the heuristics),
# memory (bytes of workspace), determinism, math (the cudnnMathType_t it was rated with).
AlgoPerf = namedtuple("AlgoPerf", "algo status time memory determinism math")

_I, _P, _SZ = ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t
_PI, _PP, _PSZ = ctypes.POINTER(_I), ctypes.POINTER(_P), ctypes.POINTER(_SZ)
_PPERF = ctypes.POINTER(_Perf)
# name -> (restype, argtypes); restype None means cudnnStatus_t (an int).
SYMBOLS = {
    "cudnnGetVersion": (ctypes.c_size_t, []),
    "cudnnGetErrorString": (ctypes.c_char_p, [_I]),
    "cudnnGetLastErrorString": ("void", [ctypes.c_char_p, _SZ]),
    "cudnnCreate": (None, [_PP]),
    "cudnnDestroy": (None, [_P]),
    "cudnnSetStream": (None, [_P, _P]),
    "cudnnCreateTensorDescriptor": (None, [_PP]),
    "cudnnSetTensor4dDescriptor": (None, [_P, _I, _I, _I, _I, _I, _I]),
    "cudnnDestroyTensorDescriptor": (None, [_P]),
    "cudnnCreateFilterDescriptor": (None, [_PP]),
    "cudnnSetFilter4dDescriptor": (None, [_P, _I, _I, _I, _I, _I, _I]),
    "cudnnDestroyFilterDescriptor": (None, [_P]),
    "cudnnCreateConvolutionDescriptor": (None, [_PP]),
    "cudnnSetConvolution2dDescriptor": (None, [_P, _I, _I, _I, _I, _I, _I, _I, _I]),
    "cudnnSetConvolutionGroupCount": (None, [_P, _I]),
    "cudnnSetConvolutionMathType": (None, [_P, _I]),
    "cudnnDestroyConvolutionDescriptor": (None, [_P]),
    "cudnnGetConvolution2dForwardOutputDim": (None, [_P, _P, _P, _PI, _PI, _PI, _PI]),
    "cudnnGetConvolutionForwardAlgorithmMaxCount": (None, [_P, _PI]),
    "cudnnGetConvolutionBackwardDataAlgorithmMaxCount": (None, [_P, _PI]),
    "cudnnGetConvolutionBackwardFilterAlgorithmMaxCount": (None, [_P, _PI]),
    "cudnnGetConvolutionForwardAlgorithm_v7": (None, [_P, _P, _P, _P, _P, _I, _PI, _PPERF]),
    "cudnnGetConvolutionBackwardDataAlgorithm_v7": (None, [_P, _P, _P, _P, _P, _I, _PI,
                                                           _PPERF]),
    "cudnnGetConvolutionBackwardFilterAlgorithm_v7": (None, [_P, _P, _P, _P, _P, _I, _PI,
                                                             _PPERF]),
    "cudnnGetConvolutionForwardWorkspaceSize": (None, [_P, _P, _P, _P, _P, _I, _PSZ]),
    "cudnnGetConvolutionBackwardDataWorkspaceSize": (None, [_P, _P, _P, _P, _P, _I, _PSZ]),
    "cudnnGetConvolutionBackwardFilterWorkspaceSize": (None, [_P, _P, _P, _P, _P, _I, _PSZ]),
    "cudnnConvolutionForward": (None, [_P, _P, _P, _P, _P, _P, _P, _I, _P, _SZ, _P, _P, _P]),
    "cudnnConvolutionBackwardData": (None, [_P, _P, _P, _P, _P, _P, _P, _I, _P, _SZ, _P, _P,
                                            _P]),
    "cudnnConvolutionBackwardFilter": (None, [_P, _P, _P, _P, _P, _P, _P, _I, _P, _SZ, _P, _P,
                                              _P]),
}

_INSTALL = ("Install cuDNN 9 with `pip install nvidia-cudnn-cu13` (CUDA 13 drivers, >= 580) or "
            "`pip install nvidia-cudnn-cu12` (CUDA 12 drivers), or set PYDARKNET_CUDNN_LIB to "
            "the path of a libcudnn.so.9; without it the CUDA backend convolves with im2col + "
            "cuBLAS")



class CudnnError(PydarknetError, RuntimeError):
    """cuDNN is missing, or one of its calls failed (the message says which and why).
    ``status`` is the cudnnStatus_t (None when the library could not be loaded)."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status

    @property
    def category(self):
        """The status's category: 1000 (library), 2000 (bad parameter), 3000 (not
        supported), 4000 (internal), 5000 (execution); None without a status."""
        return None if self.status is None else self.status // 1000 * 1000


def library_candidates():
    """The libcudnn files and names tried, in order: $PYDARKNET_CUDNN_LIB alone when set, else
    the nvidia-cudnn wheels on sys.path, then the system's library."""
    return _nvlib.library_candidates(
        "PYDARKNET_CUDNN_LIB",
        ("cudnn/lib/libcudnn.so.9*", "cu13/lib/libcudnn.so.9*", "cu12/lib/libcudnn.so.9*",
         "cu*/lib/libcudnn.so.9*"),
        "cudnn", ("libcudnn.so.9",))


def _bind(lib, path):
    for sym, (restype, argtypes) in SYMBOLS.items():
        try:
            fn = getattr(lib, sym)
        except AttributeError:
            raise CudnnError(f"{path} has no {sym}: cuDNN 9 is needed. {_INSTALL}") from None
        fn.argtypes = argtypes
        fn.restype = None if restype == "void" else (restype or ctypes.c_int)
    v = int(lib.cudnnGetVersion())
    if v < 90000:
        raise CudnnError(f"{path} is cuDNN {v // 10000}.{v // 100 % 100}.{v % 100}: cuDNN 9 is "
                         f"needed. {_INSTALL}")


_LIBRARY = _nvlib.CachedLibrary(library_candidates, ctypes.CDLL, _bind, CudnnError,
                                "cuDNN (libcudnn.so.9)", _INSTALL)


def load_library(candidates=None):
    """Load and bind libcudnn (once; cached); returns the ctypes library. Raises
    :class:`CudnnError` saying how to install it when no candidate loads."""
    return _LIBRARY.load(candidates)


def library_path():
    """The path or name libcudnn was loaded from (loading it if needed)."""
    _LIBRARY.load()
    return _LIBRARY.path


def version(lib=None):
    """cuDNN's (major, minor, patch), read without a GPU (cudnnGetVersion)."""
    v = int((lib or load_library()).cudnnGetVersion())
    return v // 10000, v // 100 % 100, v % 100


def status_name(status, lib=None):
    """The name of a cudnnStatus_t (this table, else cudnnGetErrorString)."""
    name = STATUS_NAMES.get(status)
    if name is None and lib is not None:
        try:
            text = lib.cudnnGetErrorString(status)
            name = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
        except Exception:
            name = None
    return name or f"status {status}"


def _check(lib, fn, status):
    if status == 0:
        return
    name = status_name(status, lib)
    detail = ""
    try:
        buf = ctypes.create_string_buffer(512)
        lib.cudnnGetLastErrorString(buf, 512)
        detail = buf.value.decode(errors="replace").strip()
    except Exception:
        pass
    hint = _CATEGORY_HINTS.get(status // 1000 * 1000)
    raise CudnnError(f"{fn} failed: {name}" + (f" ({detail})" if detail else "") +
                     (f": {hint}" if hint else ""), status)


class _Descriptor:
    """A cuDNN descriptor (an opaque pointer) with its settings, destroyed by
    :meth:`destroy`."""
    _create = _destroy = None

    def __init__(self, lib=None):
        self.lib = lib or load_library()
        self._d = ctypes.c_void_p()
        _check(self.lib, self._create, getattr(self.lib, self._create)(ctypes.byref(self._d)))
        self.settings = None

    @property
    def handle(self):
        if self._d is None:
            raise CudnnError(f"a {type(self).__name__} was used after destroy()")
        return self._d

    def _set(self, fn, *args):
        try:
            _check(self.lib, fn, getattr(self.lib, fn)(self.handle, *args))
        except CudnnError:
            self.destroy()
            raise

    def destroy(self):
        if self._d is not None:
            d, self._d = self._d, None
            _check(self.lib, self._destroy, getattr(self.lib, self._destroy)(d))


class _Descriptor4d(_Descriptor):
    _setter = _head = None

    def __init__(self, n, c, h, w, lib=None):
        super().__init__(lib)
        self.settings = (int(n), int(c), int(h), int(w))
        self._set(self._setter, *self._head, *self.settings)


class TensorDescriptor(_Descriptor4d):
    """A packed NCHW float32 tensor of shape (n, c, h, w)."""
    _create, _destroy = "cudnnCreateTensorDescriptor", "cudnnDestroyTensorDescriptor"
    _setter, _head = "cudnnSetTensor4dDescriptor", (TENSOR_NCHW, DATA_FLOAT)


class FilterDescriptor(_Descriptor4d):
    """NCHW float32 filters (k outputs, c inputs per group, h, w). cudnnSetFilter4dDescriptor
    takes the data type before the format (the tensor's setter the other way round)."""
    _create, _destroy = "cudnnCreateFilterDescriptor", "cudnnDestroyFilterDescriptor"
    _setter, _head = "cudnnSetFilter4dDescriptor", (DATA_FLOAT, TENSOR_NCHW)


class ConvolutionDescriptor(_Descriptor):
    """A 2-D cross-correlation (what Darknet and every framework call convolution) with
    float32 compute, ``groups`` groups and the math type ``math``."""
    _create, _destroy = ("cudnnCreateConvolutionDescriptor",
                         "cudnnDestroyConvolutionDescriptor")

    def __init__(self, pad_h, pad_w, stride_h, stride_w, dilation_h, dilation_w, groups=1,
                 math=FMA_MATH, lib=None):
        super().__init__(lib)
        self.settings = tuple(int(v) for v in (pad_h, pad_w, stride_h, stride_w, dilation_h,
                                               dilation_w, groups))
        self._set("cudnnSetConvolution2dDescriptor", *self.settings[:6], CROSS_CORRELATION,
                  DATA_FLOAT)
        self._set("cudnnSetConvolutionGroupCount", self.settings[6])
        self.math = None
        self.set_math_type(math)

    def set_math_type(self, math):
        if math != self.math:
            self._set("cudnnSetConvolutionMathType", int(math))
            self.math = int(math)


def output_dim(conv, x, w):
    """cuDNN's output shape (n, c, h, w) of ``conv`` on tensor ``x`` with filters ``w``."""
    fn = "cudnnGetConvolution2dForwardOutputDim"
    dims = [ctypes.c_int() for _ in range(4)]
    _check(conv.lib, fn, getattr(conv.lib, fn)(conv.handle, x.handle, w.handle,
                                              *(ctypes.byref(d) for d in dims)))
    return tuple(d.value for d in dims)


# direction -> (cuDNN name part, the descriptor order of its _v7 / workspace calls)
_DIRECTIONS = {
    FWD: ("Forward", ("x", "w", "conv", "y")),
    BWD_DATA: ("BackwardData", ("w", "y", "conv", "x")),
    BWD_FILTER: ("BackwardFilter", ("x", "y", "conv", "w")),
}


class Handle:
    """One cuDNN handle, created in the calling thread's current CUDA context (the CUDA
    backend pushes the device's primary context first), and the calls on it. Descriptors are
    passed as :class:`TensorDescriptor` / :class:`FilterDescriptor` /
    :class:`ConvolutionDescriptor`, device pointers as ints."""

    def __init__(self, lib=None):
        self.lib = lib or load_library()
        self._h = ctypes.c_void_p()
        status = self.lib.cudnnCreate(ctypes.byref(self._h))
        if status != 0:
            self._h = None
            _check(self.lib, "cudnnCreate", status)
        self._max_count = {}

    def destroy(self):
        if self._h is not None:
            h, self._h = self._h, None
            _check(self.lib, "cudnnDestroy", self.lib.cudnnDestroy(h))

    def _handle(self):
        if self._h is None:
            raise CudnnError("the cuDNN handle was destroyed (the CUDA backend was shut down at "
                             "exit)")
        return self._h

    def set_stream(self, stream=None):
        """Run on ``stream`` (an int CUstream handle); None: the legacy default stream."""
        _check(self.lib, "cudnnSetStream", self.lib.cudnnSetStream(self._handle(), stream))

    def _call(self, fn, *args):
        _check(self.lib, fn, getattr(self.lib, fn)(self._handle(), *args))

    @staticmethod
    def _descs(direction, x, w, conv, y):
        named = {"x": x, "w": w, "conv": conv, "y": y}
        return [named[k].handle for k in _DIRECTIONS[direction][1]]

    def algorithms(self, direction, x, w, conv, y):
        """cuDNN's heuristics (the _v7 query) for one direction (:data:`FWD`,
        :data:`BWD_DATA`, :data:`BWD_FILTER`) of ``conv`` with input tensor ``x``, filters
        ``w`` and output tensor ``y``: :class:`AlgoPerf` entries, best first."""
        part = _DIRECTIONS[direction][0]
        count = self._max_count.get(direction)
        if count is None:
            c = ctypes.c_int()
            self._call(f"cudnnGetConvolution{part}AlgorithmMaxCount", ctypes.byref(c))
            count = self._max_count[direction] = max(1, c.value)
        perf = (_Perf * count)()
        got = ctypes.c_int()
        self._call(f"cudnnGetConvolution{part}Algorithm_v7",
                   *self._descs(direction, x, w, conv, y), count, ctypes.byref(got), perf)
        return [AlgoPerf(p.algo, p.status, p.time, p.memory, p.determinism, p.mathType)
                for p in perf[:max(0, min(got.value, count))]]

    def workspace_size(self, direction, x, w, conv, y, algo):
        """Bytes of workspace ``algo`` needs for this direction (with conv's math type)."""
        part = _DIRECTIONS[direction][0]
        size = ctypes.c_size_t()
        self._call(f"cudnnGetConvolution{part}WorkspaceSize",
                   *self._descs(direction, x, w, conv, y), int(algo), ctypes.byref(size))
        return int(size.value)

    def convolve(self, direction, alpha, a, ap, b, bp, conv, algo, ws, ws_bytes, beta, out,
                 outp):
        """out = alpha * result + beta * out (out is not read when beta is 0), the result of
        cudnnConvolutionForward (a, b, out = x, w, y), cudnnConvolutionBackwardData (w, dy,
        dx) or cudnnConvolutionBackwardFilter (x, dy, dw): descriptors a, b, out with device
        pointers ap, bp, outp; ``ws``: the workspace's address (0 with none) of ws_bytes."""
        al, be = ctypes.c_float(alpha), ctypes.c_float(beta)
        self._call(f"cudnnConvolution{_DIRECTIONS[direction][0]}", ctypes.byref(al), a.handle,
                   ap, b.handle, bp, conv.handle, int(algo), ws or None, int(ws_bytes),
                   ctypes.byref(be), out.handle, outp)
