"""Builds the C core: one extension, pydarknet.backend._cpu (Cython wrapper + src_c/*.c), and
where nvcc exists the CUDA kernels' fatbin, pydarknet/backend/kernels.fatbin (what `make cuda`
builds). The fatbin never fails the install: without nvcc, or when nvcc fails, one line says
so and the package installs without it. PYDARKNET_NO_CUDA=1 skips it; NVCC names the compiler."""
import glob
import os
import shutil
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# No -march (CI machines vary) and no -ffast-math (IEEE expf/logf, no reassociation).
# The extra flags change no result: -ffp-contract=off keeps a*b+c from fusing into an FMA
# on targets that have one; -fno-trapping-math / -fno-math-errno (we read neither FP
# exception flags nor errno) let gcc vectorize the branchy element-wise loops.
CFLAGS = ["-O3", "-fopenmp", "-ffp-contract=off", "-fno-trapping-math", "-fno-math-errno",
          "-fno-strict-aliasing"]
LDFLAGS = ["-fopenmp"]


def sanitizer_flags(spec):
    """PYDARKNET_SANITIZE=address,undefined (what `make asan` / tools/asan.py set): the
    extension built with those -fsanitize checks, -O1 -g and frame pointers for readable
    reports, and every finding fatal. -fno-wrapv undoes Python's -fwrapv so that signed
    overflow is reported, not wrapped. Empty: no flags (the normal build)."""
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if not names:
        return [], []
    flags = [f"-fsanitize={','.join(names)}", "-fno-sanitize-recover=all",
             "-fno-omit-frame-pointer", "-fno-wrapv", "-g", "-O1"]
    return flags, flags


SANITIZE_CFLAGS, SANITIZE_LDFLAGS = sanitizer_flags(os.environ.get("PYDARKNET_SANITIZE", ""))


def onednn_dirs():
    """(include dir, library dir) of oneDNN from the onednn-devel-cpu-gomp (dnnl.h) and
    onednn-cpu-gomp (libdnnl.so.3) wheels, wherever pip put them (this python's prefix, or the
    isolated build environment's); None when either is missing or PYDARKNET_NO_ONEDNN=1:
    the extension is then built without oneDNN and every convolution uses im2col + sgemm."""
    if os.environ.get("PYDARKNET_NO_ONEDNN", "") not in ("", "0"):
        print("pydarknet: PYDARKNET_NO_ONEDNN is set: building without oneDNN")
        return None
    from importlib.metadata import PackageNotFoundError, distribution

    def locate(dist_name, file_name, depth):
        try:
            dist = distribution(dist_name)
        except PackageNotFoundError:
            return None
        for f in dist.files or ():
            if f.as_posix().endswith(file_name):
                path = os.path.abspath(str(dist.locate_file(f)))
                for _ in range(depth):
                    path = os.path.dirname(path)
                return path
        return None

    include = locate("onednn-devel-cpu-gomp", "include/oneapi/dnnl/dnnl.h", 3)
    libdir = locate("onednn-cpu-gomp", "/libdnnl.so.3", 1)
    if not (include and libdir):
        print("pydarknet: oneDNN (onednn-cpu-gomp, onednn-devel-cpu-gomp) not found: "
              "convolutions use im2col + sgemm")
        return None
    return include, libdir


ONEDNN = onednn_dirs()
ONEDNN_ARGS = {}
if ONEDNN:
    # libdnnl.so.3 is found at run time through an rpath relative to the installed module
    # (<prefix>/lib/pythonX.Y/site-packages/pydarknet/backend -> <prefix>/lib, where the
    # onednn-cpu-gomp wheel puts it); pydarknet/backend/onednn.py also preloads it from
    # wherever pip installed it, which covers in-place builds and other layouts.
    ONEDNN_ARGS = dict(
        include_dirs=[ONEDNN[0]], library_dirs=[ONEDNN[1]], libraries=["dnnl"],
        define_macros=[("PDN_WITH_ONEDNN", "1")],
        runtime_library_dirs=["$ORIGIN/../../../.."])

ext = Extension(
    "pydarknet.backend._cpu",
    sources=["pydarknet/backend/_cpu.pyx"] + sorted(glob.glob("src_c/*.c")),
    depends=sorted(glob.glob("src_c/*.h")),
    include_dirs=["src_c", numpy.get_include()] + ONEDNN_ARGS.get("include_dirs", []),
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")] +
    ONEDNN_ARGS.get("define_macros", []),
    library_dirs=ONEDNN_ARGS.get("library_dirs", []),
    libraries=ONEDNN_ARGS.get("libraries", []),
    runtime_library_dirs=ONEDNN_ARGS.get("runtime_library_dirs", []),
    extra_compile_args=CFLAGS + SANITIZE_CFLAGS,   # later flags win: -O1 over -O3
    extra_link_args=LDFLAGS + SANITIZE_LDFLAGS,
)

def build_fatbin():
    """cuda/build_fatbin.py's fatbin (what `make cuda` builds), or None with one line said:
    skipped (PYDARKNET_NO_CUDA=1, no nvcc) or failed; the install goes on either way."""
    if os.environ.get("PYDARKNET_NO_CUDA", "") not in ("", "0"):
        print("pydarknet: PYDARKNET_NO_CUDA is set: CUDA kernels not built")
        return None
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "cuda"))
    try:
        from build_fatbin import build_fatbin as build
    except ImportError:        # an sdist without cuda/
        return None
    finally:
        sys.path.pop(0)
    fatbin, error = build()
    if error:
        print(f"pydarknet: {error.splitlines()[-1]}: CUDA kernels not built; the CPU backend "
              f"works (`make cuda` shows the whole error)")
    return fatbin


class BuildExt(build_ext):
    """The C extension, then the fatbin (into the source tree, where `make cuda` puts it and
    an editable install finds it, and into the build folder for a wheel)."""

    def run(self):
        super().run()
        fatbin = build_fatbin()
        if fatbin is not None and not self.inplace:
            # the fatbin and its kernels' signatures (an installed package has no cuda/*.cu)
            for src in (fatbin, os.path.join(os.path.dirname(fatbin), "kernel_signatures.json")):
                dst = os.path.join(self.build_lib, "pydarknet", "backend", os.path.basename(src))
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(src, dst)


setup(
    ext_modules=cythonize(
        [ext],
        compiler_directives={"language_level": 3, "boundscheck": False, "wraparound": False},
    ),
    cmdclass={"build_ext": BuildExt},
)
