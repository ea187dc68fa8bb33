"""Builds the C core: one extension, pydarknet.backend._cpu (Cython wrapper + src_c/*.c), and
where nvcc exists the CUDA kernels' fatbin, pydarknet/backend/kernels.fatbin (what `make cuda`
builds). The fatbin never fails the install: without nvcc, or when nvcc fails, one line says
so and the package installs without it. PYDARKNET_NO_CUDA=1 skips it; NVCC names the compiler."""
import glob
import os
import shutil
import subprocess
import time

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

ext = Extension(
    "pydarknet.backend._cpu",
    sources=["pydarknet/backend/_cpu.pyx"] + sorted(glob.glob("src_c/*.c")),
    depends=sorted(glob.glob("src_c/*.h")),
    include_dirs=["src_c", numpy.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=CFLAGS,
    extra_link_args=["-fopenmp"],
)

# The fatbin, built as the Makefile's `cuda` target builds it (keep the two in step): every
# cuda/*.cu as one translation unit, SASS for sm_80 and sm_90 plus compute_90 PTX.
FATBIN = os.path.join("pydarknet", "backend", "kernels.fatbin")
GENCODE = ["-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90",
           "-gencode", "arch=compute_90,code=compute_90"]


def build_fatbin():
    """Build FATBIN when a cuda/ source is newer; returns its path, or None (with one line
    printed) when skipped or failed."""
    here = os.path.dirname(os.path.abspath(__file__))
    sources = sorted(glob.glob(os.path.join(here, "cuda", "*.cu")))
    headers = sorted(glob.glob(os.path.join(here, "cuda", "*.cuh")))
    out = os.path.join(here, FATBIN)
    if os.environ.get("PYDARKNET_NO_CUDA", "") not in ("", "0"):
        print("pydarknet: PYDARKNET_NO_CUDA is set: CUDA kernels not built")
        return None
    if not sources:
        return None
    nvcc = shutil.which(os.environ.get("NVCC", "nvcc"))
    if nvcc is None:
        print("pydarknet: nvcc not found: CUDA kernels not built (the CPU backend works; "
              "`make cuda` builds them where nvcc exists)")
        return None
    if os.path.exists(out) and os.path.getmtime(out) >= max(
            os.path.getmtime(f) for f in sources + headers):
        return out
    unity = os.path.join(here, "build", "cuda", "kernels_all.cu")
    os.makedirs(os.path.dirname(unity), exist_ok=True)
    with open(unity, "w") as f:
        f.writelines(f'#include "{src}"\n' for src in sources)
    cmd = [nvcc, "-O3", "--threads", "0", "--fatbin", *GENCODE, "-o", out, unity]
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"pydarknet: nvcc failed ({e}): CUDA kernels not built; the CPU backend works")
        return None
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no message"])[-1]
        print(f"pydarknet: nvcc failed (exit {r.returncode}: {last}): CUDA kernels not built; "
              f"the CPU backend works (`make cuda` shows the whole error)")
        if os.path.exists(out):
            os.remove(out)
        return None
    print(f"pydarknet: built {FATBIN} in {time.perf_counter() - t0:.1f} s")
    return out


class BuildExt(build_ext):
    """The C extension, then the fatbin (into the source tree, where `make cuda` puts it and
    an editable install finds it, and into the build folder for a wheel)."""

    def run(self):
        super().run()
        fatbin = build_fatbin()
        if fatbin is not None and not self.inplace:
            dst = os.path.join(self.build_lib, FATBIN)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(fatbin, dst)


setup(
    ext_modules=cythonize(
        [ext],
        compiler_directives={"language_level": 3, "boundscheck": False, "wraparound": False},
    ),
    cmdclass={"build_ext": BuildExt},
)
