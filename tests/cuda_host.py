"""The CUDA kernels' own source (cuda/*.cu) compiled for the CPU, so that tests without a GPU
run the code the GPU will run instead of a numpy rewrite of it.

g++ compiles every ``cuda/*.cu`` as one C++17 translation unit with tests/cuda_host/
pdn_host_cuda.h force-included (CUDA's built-ins: threadIdx, float4, __syncthreads, warp
shuffles, atomics) and tests/cuda_host/launch.cpp, which runs a launch's blocks one after
another and each block's threads as fibers that switch at barriers. One ``extern "C"``
wrapper a kernel, generated from its signature, unpacks 8-byte argument slots.

Used two ways:
- :func:`fake_cupy` stands in for cupy in tools/gpu_check.py, whose checks (every kernel
  against numpy float64) then run here exactly as they will on the GPU;
- :class:`HostKernels` launches kernels on host addresses for the fake pycuda device of
  tests/test_cuda_backend.py (``fake_device(..., kernels="host")``), so the backend's whole
  networks run on the real kernels.

The library is cached by the hash of its sources under ``PYDARKNET_TEST_CACHE`` (default
~/.cache/pydarknet-tests); the build takes about half a minute the first time.
"""

import ctypes
import functools
import hashlib
import os
import pathlib
import shutil
import struct
import subprocess
import tempfile
import types

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
CUDA_DIR = ROOT / "cuda"
HOST_DIR = pathlib.Path(__file__).resolve().parent / "cuda_host"

# launch.cpp's error bits
LAUNCH_ERRORS = {1: "__syncthreads or a warp shuffle in a block after block 0 ran without "
                    "one (the emulation ran those blocks without fibers)",
                 2: "divergent __syncthreads: some threads of a block returned while others "
                    "waited at a barrier",
                 4: "a block of more than 1024 threads",
                 8: "deadlock: threads wait at __syncthreads while others wait at a warp "
                    "shuffle"}


def signatures():
    from pydarknet.backend import kernel_signatures
    return kernel_signatures.parse_dir(CUDA_DIR)


def _wrappers(sigs):
    """C++ source, compiled after the kernels' own: for each kernel, ``int host_<name>(const
    unsigned *dims, const unsigned long long *args)`` calling it for every thread of the grid."""
    conv = {"P": "pdn_host_ptr{a[%d]}", "i": "pdn_host_int(a[%d])", "f": "pdn_host_float(a[%d])"}
    out = ['extern "C" int pdn_host_launch(void (*fn)(void *), void *arg, const unsigned *dims);',
           "struct pdn_host_ptr {",
           "    unsigned long long v;",
           "    template <class T> operator T *() const { return reinterpret_cast<T *>(v); }",
           "};",
           "static int pdn_host_int(unsigned long long v) { return (int)(unsigned)v; }",
           "static float pdn_host_float(unsigned long long v)",
           "{ unsigned u = (unsigned)v; float f; std::memcpy(&f, &u, 4); return f; }"]
    for name, fmt in sorted(sigs.items()):
        call = ", ".join(conv[k] % i for i, k in enumerate(fmt))
        out += [f'extern "C" int host_{name}(const unsigned *dims, const unsigned long long *a)',
                "{",
                f"    auto body = [a]() {{ {name}({call}); }};",
                "    using Body = decltype(body);",
                "    return pdn_host_launch([](void *b) { (*static_cast<Body *>(b))(); }, &body,",
                "                           dims);",
                "}"]
    return "\n".join(out) + "\n"


def _sources():
    files = sorted(CUDA_DIR.glob("*.cu")) + sorted(CUDA_DIR.glob("*.cuh"))
    files += sorted(HOST_DIR.glob("*.h")) + sorted(HOST_DIR.glob("*.cpp"))
    return files


def build(cache=None):
    """The path of the host kernel library, built when its sources changed; RuntimeError with
    the compiler's words when g++ is missing or fails."""
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        raise RuntimeError(f"no C++ compiler ({cxx}) to build the kernels for the host")
    sigs = signatures()
    digest = hashlib.sha256(_wrappers(sigs).encode())
    for path in _sources():
        digest.update(path.name.encode() + path.read_bytes())
    cache = pathlib.Path(cache or os.environ.get("PYDARKNET_TEST_CACHE")
                         or pathlib.Path.home() / ".cache" / "pydarknet-tests")
    lib = cache / f"cuda_host_{digest.hexdigest()[:16]}.so"
    if lib.is_file():
        return lib
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:                       # a read-only home: the temporary folder then
        cache = pathlib.Path(tempfile.gettempdir()) / "pydarknet-tests"
        lib = cache / lib.name
        if lib.is_file():
            return lib
        cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        tmp = pathlib.Path(tmp)
        unity = tmp / "kernels_all.cpp"
        unity.write_text("".join(f'#include "{p.name}"\n' for p in sorted(CUDA_DIR.glob("*.cu")))
                         + _wrappers(sigs))
        cmd = [cxx, "-std=c++17", "-O1", "-g0", "-fPIC", "-shared", "-ffp-contract=off",
               "-fno-fast-math", "-fno-strict-aliasing", "-w", "-I", str(CUDA_DIR), "-I", str(HOST_DIR),
               "-include", str(HOST_DIR / "pdn_host_cuda.h"),
               str(unity), str(HOST_DIR / "launch.cpp"),
               "-o", str(tmp / "lib.so")]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"building the kernels for the host failed:\n{r.stderr[-3000:]}")
        os.replace(tmp / "lib.so", lib)      # atomic: parallel test runs share the cache
    return lib


@functools.lru_cache(maxsize=None)
def shared_kernels():
    """One HostKernels for the test session (built on first use)."""
    return HostKernels()


def _slot(kind, value):
    if kind == "P":
        return int(value) & 0xFFFFFFFFFFFFFFFF
    if kind == "i":
        v = int(value)
        if not -2**31 <= v < 2**31:
            raise OverflowError(f"int argument {v} does not fit 32 bits")
        return v & 0xFFFFFFFF
    return struct.unpack("<I", struct.pack("<f", float(value)))[0]


class HostKernels:
    """Launches the compiled kernels: ``launch(name, grid, block, args)`` with pointers as
    host addresses. Raises AssertionError when the emulation saw a barrier misused."""

    def __init__(self, lib=None):
        self.sigs = signatures()
        self.lib = ctypes.CDLL(str(lib or build()))
        self.funcs = {}

    def fmt(self, name):
        if name not in self.sigs:
            raise KeyError(f"{name}: no such extern \"C\" kernel in cuda/*.cu")
        return self.sigs[name]

    def launch(self, name, grid, block, args):
        fmt = self.fmt(name)
        if len(args) != len(fmt):
            raise TypeError(f"{name}: takes {len(fmt)} arguments ({fmt}), got {len(args)}")
        fn = self.funcs.get(name)
        if fn is None:
            fn = self.funcs[name] = getattr(self.lib, f"host_{name}")
            fn.restype = ctypes.c_int
            fn.argtypes = [ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_ulonglong)]
        grid = tuple(grid) + (1,) * (3 - len(grid))
        block = tuple(block) + (1,) * (3 - len(block))
        dims = (ctypes.c_uint * 6)(*grid, *block)
        slots = (ctypes.c_ulonglong * max(1, len(args)))(*[_slot(k, a) for k, a in zip(fmt, args)])
        err = fn(dims, slots)
        if err:
            raise AssertionError(f"{name}: " + "; ".join(
                msg for bit, msg in LAUNCH_ERRORS.items() if err & bit))


# ---------------------------------------------------------------------------------------------
# cupy, as much of it as tools/gpu_check.py's checks use, on numpy arrays
# ---------------------------------------------------------------------------------------------
class _HostFunction:
    def __init__(self, kernels, name):
        kernels.fmt(name)
        self.kernels, self.name = kernels, name

    def __call__(self, grid, block, args):
        fmt = self.kernels.fmt(self.name)
        values = []
        for kind, a in zip(fmt, args):
            if kind == "P":
                assert isinstance(a, np.ndarray) and a.flags.c_contiguous, \
                    f"{self.name}: a pointer argument must be a contiguous array"
                values.append(a.ctypes.data)
            else:
                # cupy passes numpy scalars at their own width: the checks must give int32
                # and float32 (a Python int or float would reach the kernel as 64 bits)
                want = np.int32 if kind == "i" else np.float32
                assert isinstance(a, want), (f"{self.name}: a {'n int' if kind == 'i' else ' float'}"
                                             f" argument passed as {type(a).__name__}")
                values.append(a)
        self.kernels.launch(self.name, grid, block, values)


class _HostModule:
    def __init__(self, kernels):
        self.kernels = kernels

    def get_function(self, name):
        return _HostFunction(self.kernels, name)


def fake_cupy(kernels=None, sms=2):
    """A module with the parts of cupy that tools/gpu_check.py's Kernels and Checker use,
    its arrays numpy arrays on the host and its RawModule the host-compiled kernels."""
    kernels = kernels or shared_kernels()
    cp = types.ModuleType("cupy")
    cp.__version__ = "host emulation"
    cp.ndarray = np.ndarray
    cp.float32 = np.float32
    cp.asarray = lambda a, dtype=None: np.array(a, dtype=dtype, copy=True, order="C")
    cp.asnumpy = lambda a: np.array(a, copy=True)
    for name in ("zeros", "zeros_like", "full", "empty_like", "abs"):
        setattr(cp, name, getattr(np, name))
    cp.RawModule = lambda **kw: _HostModule(kernels)

    class Device:
        id = 0

        @staticmethod
        def synchronize():
            pass

    runtime = types.SimpleNamespace(
        getDeviceProperties=lambda i: {"multiProcessorCount": sms, "name": "the CPU (host "
                                       "emulation)", "major": 0, "minor": 0,
                                       "totalGlobalMem": 0},
        runtimeGetVersion=lambda: 0, driverGetVersion=lambda: 0)
    cp.cuda = types.SimpleNamespace(Device=Device, runtime=runtime)
    return cp
