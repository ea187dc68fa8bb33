"""Builds the C core: one extension, pydarknet.backend._cpu (Cython wrapper + src_c/*.c)."""
import glob

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

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

setup(
    ext_modules=cythonize(
        [ext],
        compiler_directives={"language_level": 3, "boundscheck": False, "wraparound": False},
    )
)
