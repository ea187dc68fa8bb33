"""A thin ctypes binding of the few cuBLAS functions the CUDA backend needs.

cuBLAS comes from NVIDIA's wheel on PyPI: ``pip install nvidia-cublas`` (CUDA 13, driver >= 580:
``nvidia/cu13/lib/libcublas.so.13``) or ``pip install nvidia-cublas-cu12`` (CUDA 12:
``nvidia/cublas/lib/libcublas.so.12``); a system libcuBLAS (``ctypes.util.find_library``,
LD_LIBRARY_PATH) is used when no wheel is installed, and ``PYDARKNET_CUBLAS`` names a
library file to use instead of searching. Loading the library needs no GPU and no driver;
:class:`Handle` (``cublasCreate``) needs both.

Everything here is column-major, as cuBLAS is; pointers are device addresses as Python ints
(``int(gpuarray.gpudata)``). Every call's status is checked: a failure raises
:class:`CublasError` naming the function and the status. The row-major mapping lives in the
caller (``pydarknet.backend.cuda``).
"""

import ctypes
import glob
import os

from ..errors import PydarknetError
from . import nvlib as _nvlib

__all__ = [
    "CublasError", "Handle", "load_library", "library_candidates", "library_path", "version",
    "SYMBOLS", "STATUS_NAMES", "OP_N", "OP_T", "DEFAULT_MATH", "TENSOR_OP_MATH",
    "PEDANTIC_MATH", "TF32_TENSOR_OP_MATH", "R_32F", "R_16F", "COMPUTE_32F",
    "COMPUTE_32F_PEDANTIC", "GEMM_DEFAULT",
]

# cublas_api.h / library_types.h
OP_N, OP_T = 0, 1
DEFAULT_MATH, TENSOR_OP_MATH, PEDANTIC_MATH, TF32_TENSOR_OP_MATH = 0, 1, 2, 3
R_32F, R_16F = 0, 2                       # cudaDataType
COMPUTE_32F, COMPUTE_32F_PEDANTIC = 68, 69  # cublasComputeType_t
GEMM_DEFAULT = -1                         # cublasGemmAlgo_t

STATUS_NAMES = {
    0: "CUBLAS_STATUS_SUCCESS", 1: "CUBLAS_STATUS_NOT_INITIALIZED",
    3: "CUBLAS_STATUS_ALLOC_FAILED", 7: "CUBLAS_STATUS_INVALID_VALUE",
    8: "CUBLAS_STATUS_ARCH_MISMATCH", 11: "CUBLAS_STATUS_MAPPING_ERROR",
    13: "CUBLAS_STATUS_EXECUTION_FAILED", 14: "CUBLAS_STATUS_INTERNAL_ERROR",
    15: "CUBLAS_STATUS_NOT_SUPPORTED", 16: "CUBLAS_STATUS_LICENSE_ERROR",
}
_STATUS_HINTS = {
    1: "the CUDA driver or device could not be used (check nvidia-smi; libcublas.so.13 needs a "
       "driver for CUDA 13, >= 580: with an older driver `pip install nvidia-cublas-cu12` and "
       "uninstall nvidia-cublas, or set PYDARKNET_CUBLAS to a libcublas.so.12)",
    3: "out of GPU memory (lower the batch, subdivisions or network size)",
    7: "an argument is out of range (a bug in pydarknet: please report it with the layer "
       "shapes)",
    8: "this GPU lacks a feature the call needs (fp16 GEMMs need compute capability >= 5.3)",
    13: "the GPU failed to run the GEMM (an earlier kernel may have failed: run with "
        "CUDA_LAUNCH_BLOCKING=1 to find it)",
}

_I, _LL, _P, _F = ctypes.c_int, ctypes.c_longlong, ctypes.c_void_p, ctypes.c_float
_PF = ctypes.POINTER(ctypes.c_float)
# name -> argtypes (restype is cublasStatus_t, an int, for all of them)
SYMBOLS = {
    "cublasCreate_v2": [ctypes.POINTER(_P)],
    "cublasDestroy_v2": [_P],
    "cublasSetStream_v2": [_P, _P],
    "cublasSetMathMode": [_P, _I],
    "cublasGetMathMode": [_P, ctypes.POINTER(_I)],
    "cublasGetProperty": [_I, ctypes.POINTER(_I)],
    "cublasSgemm_v2": [_P, _I, _I, _I, _I, _I, _PF, _P, _I, _P, _I, _PF, _P, _I],
    "cublasSgemmStridedBatched": [_P, _I, _I, _I, _I, _I, _PF, _P, _I, _LL, _P, _I, _LL, _PF,
                                  _P, _I, _LL, _I],
    "cublasGemmEx": [_P, _I, _I, _I, _I, _I, _P, _P, _I, _I, _P, _I, _I, _P, _P, _I, _I, _I,
                     _I],
    "cublasGemmStridedBatchedEx": [_P, _I, _I, _I, _I, _I, _P, _P, _I, _I, _LL, _P, _I, _I,
                                   _LL, _P, _P, _I, _I, _LL, _I, _I, _I],
}

_INSTALL = ("Install cuBLAS with `pip install nvidia-cublas` (CUDA 13 drivers, >= 580) or "
            "`pip install nvidia-cublas-cu12` (CUDA 12 drivers), or set PYDARKNET_CUBLAS to the "
            "path of a libcublas.so")



class CublasError(PydarknetError, RuntimeError):
    """cuBLAS is missing, or one of its calls failed (the message says which and why)."""


def library_candidates():
    """The libcublas files and names tried, in order: $PYDARKNET_CUBLAS alone when set, else
    the nvidia-cublas wheels on sys.path (CUDA 13, then 12), then the system's library."""
    return _nvlib.library_candidates(
        "PYDARKNET_CUBLAS",
        ("cu13/lib/libcublas.so.13*", "cublas/lib/libcublas.so.13*",
         "cu12/lib/libcublas.so.12*", "cublas/lib/libcublas.so.12*",
         "cu*/lib/libcublas.so.*", "cublas/lib/libcublas.so.*"),
        "cublas", ("libcublas.so.13", "libcublas.so.12", "libcublas.so"))


def _load(path):
    # The wheels keep libcublasLt next to libcublas (found through its $ORIGIN rpath); load
    # it first anyway, globally, where it is there, for systems whose loader ignores rpath.
    folder = os.path.dirname(path)
    if folder:
        for lt in sorted(glob.glob(os.path.join(folder, "libcublasLt.so*"))):
            try:
                ctypes.CDLL(lt, mode=ctypes.RTLD_GLOBAL)
                break
            except OSError:
                pass
    return ctypes.CDLL(path)


def _bind(lib, path):
    for sym, argtypes in SYMBOLS.items():
        try:
            fn = getattr(lib, sym)
        except AttributeError:
            raise CublasError(f"{path} has no {sym}: cuBLAS 11.0 or newer is needed. "
                              f"{_INSTALL}") from None
        fn.argtypes = argtypes
        fn.restype = ctypes.c_int


_LIBRARY = _nvlib.CachedLibrary(library_candidates, _load, _bind, CublasError,
                                "cuBLAS (libcublas)", _INSTALL)


def load_library(candidates=None):
    """Load and bind libcublas (once; cached); returns the ctypes library. Raises
    :class:`CublasError` saying how to install it when no candidate loads."""
    return _LIBRARY.load(candidates)


def library_path():
    """The path or name libcublas was loaded from (loading it if needed)."""
    _LIBRARY.load()
    return _LIBRARY.path


def version():
    """cuBLAS's (major, minor, patch), read without a GPU (cublasGetProperty)."""
    lib = load_library()
    parts = []
    for prop in (0, 1, 2):
        v = ctypes.c_int()
        _check("cublasGetProperty", lib.cublasGetProperty(prop, ctypes.byref(v)))
        parts.append(v.value)
    return tuple(parts)


def _check(fn, status):
    if status != 0:
        name = STATUS_NAMES.get(status, f"status {status}")
        hint = _STATUS_HINTS.get(status)
        raise CublasError(f"{fn} failed: {name}" + (f": {hint}" if hint else ""))


class Handle:
    """One cuBLAS handle, created in the calling thread's current CUDA context (the CUDA
    backend pushes the device's primary context first). Column-major calls on device
    pointers given as ints."""

    def __init__(self, lib=None):
        self.lib = lib or load_library()
        self._h = ctypes.c_void_p()
        status = self.lib.cublasCreate_v2(ctypes.byref(self._h))
        if status != 0:
            self._h = None
            _check("cublasCreate", status)
        self._one = ctypes.c_float(1.0)

    def destroy(self):
        if self._h is not None:
            h, self._h = self._h, None
            _check("cublasDestroy", self.lib.cublasDestroy_v2(h))

    def _handle(self):
        if self._h is None:
            raise CublasError("the cuBLAS handle was destroyed (the CUDA backend was shut "
                              "down at exit)")
        return self._h

    def set_stream(self, stream=None):
        """Run on ``stream`` (an int CUstream handle); None: the legacy default stream."""
        _check("cublasSetStream", self.lib.cublasSetStream_v2(self._handle(), stream))

    def set_math_mode(self, mode):
        _check("cublasSetMathMode", self.lib.cublasSetMathMode(self._handle(), int(mode)))

    def get_math_mode(self):
        m = ctypes.c_int()
        _check("cublasGetMathMode", self.lib.cublasGetMathMode(self._handle(), ctypes.byref(m)))
        return m.value

    def sgemm(self, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        """C = alpha op(A) op(B) + beta C (column-major float32; A, B, C device pointers)."""
        al, be = ctypes.c_float(alpha), ctypes.c_float(beta)
        _check("cublasSgemm", self.lib.cublasSgemm_v2(
            self._handle(), transa, transb, m, n, k, ctypes.byref(al), a, lda, b, ldb,
            ctypes.byref(be), c, ldc))

    def sgemm_strided_batched(self, transa, transb, m, n, k, alpha, a, lda, stride_a, b, ldb,
                              stride_b, beta, c, ldc, stride_c, batch):
        """``batch`` sgemms, the i-th on A + i*stride_a, B + i*stride_b, C + i*stride_c
        (strides in elements; 0 reuses the same matrix)."""
        al, be = ctypes.c_float(alpha), ctypes.c_float(beta)
        _check("cublasSgemmStridedBatched", self.lib.cublasSgemmStridedBatched(
            self._handle(), transa, transb, m, n, k, ctypes.byref(al), a, lda, stride_a, b, ldb,
            stride_b, ctypes.byref(be), c, ldc, stride_c, batch))

    def gemm_ex(self, transa, transb, m, n, k, alpha, a, atype, lda, b, btype, ldb, beta, c,
                ctype, ldc, compute=COMPUTE_32F, algo=GEMM_DEFAULT):
        """cublasGemmEx with float alpha/beta (compute type 32F): e.g. fp16 A and B, fp32 C."""
        al, be = ctypes.c_float(alpha), ctypes.c_float(beta)
        _check("cublasGemmEx", self.lib.cublasGemmEx(
            self._handle(), transa, transb, m, n, k, ctypes.byref(al), a, atype, lda, b, btype,
            ldb, ctypes.byref(be), c, ctype, ldc, compute, algo))

    def gemm_strided_batched_ex(self, transa, transb, m, n, k, alpha, a, atype, lda, stride_a,
                                b, btype, ldb, stride_b, beta, c, ctype, ldc, stride_c, batch,
                                compute=COMPUTE_32F, algo=GEMM_DEFAULT):
        al, be = ctypes.c_float(alpha), ctypes.c_float(beta)
        _check("cublasGemmStridedBatchedEx", self.lib.cublasGemmStridedBatchedEx(
            self._handle(), transa, transb, m, n, k, ctypes.byref(al), a, atype, lda, stride_a,
            b, btype, ldb, stride_b, ctypes.byref(be), c, ctype, ldc, stride_c, batch, compute,
            algo))
