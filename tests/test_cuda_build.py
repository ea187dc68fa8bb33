"""The CUDA kernels compile (no GPU needed): every cuda/*.cu to PTX for compute_80 alone,
and all of them together as the one translation unit `make cuda` builds. Skipped where nvcc
is not on PATH. Quick: about 10 s with two cores (no `slow` marker)."""

import concurrent.futures
import os
import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CUDA = ROOT / "cuda"
SOURCES = sorted(CUDA.glob("*.cu"))
NVCC = shutil.which(os.environ.get("NVCC", "nvcc"))

pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc not found on PATH: the CUDA kernels "
                                                      "cannot be compiled here")

# Every kernel the backend loads by name from kernels.fatbin (cuda/README.md documents them).
KERNELS = {
    "activations.cu": ["pdn_activate", "pdn_activate_copy", "pdn_activate_channels", "pdn_mish",
                       "pdn_mish_copy", "pdn_gradient", "pdn_gradient_channels",
                       "pdn_mish_gradient"],
    "batchnorm.cu": ["pdn_add_bias", "pdn_bias_activate", "pdn_batchnorm_inference",
                     "pdn_batchnorm_activate_inference", "pdn_batchnorm_stats",
                     "pdn_batchnorm_normalize_train", "pdn_batchnorm_backward_reduce",
                     "pdn_batchnorm_backward_delta", "pdn_backward_bias"],
    "im2col.cu": ["pdn_im2col", "pdn_col2im_add"],
    "pool.cu": ["pdn_maxpool", "pdn_maxpool_train", "pdn_maxpool_backward", "pdn_local_avgpool",
                "pdn_local_avgpool_backward", "pdn_global_avgpool",
                "pdn_global_avgpool_backward"],
    "resample.cu": ["pdn_upsample", "pdn_downsample_sum"],
    "shortcut.cu": ["pdn_shortcut_add"],
    "route.cu": ["pdn_copy_block"],
    "scale_channels.cu": ["pdn_scale_channels", "pdn_scale_channels_backward_src",
                          "pdn_scale_channels_backward_scale", "pdn_sam", "pdn_sam_backward"],
    "softmax.cu": ["pdn_softmax"],
    "yolo.cu": ["pdn_yolo_activate"],
    "sgd.cu": ["pdn_sgd_update"],
    "util.cu": ["pdn_axpy", "pdn_count_nonfinite", "pdn_mul_add", "pdn_index_add",
                "pdn_f32_to_f16"],
}


def _ptx(src, out):
    cmd = [NVCC, "-ptx", "-arch=compute_80", "-O3", "-I", str(CUDA), "-o", str(out), str(src)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return cmd, r


def _entries(ptx_text):
    return set(re.findall(r"\.entry\s+(\w+)\s*\(", ptx_text))


def test_sources_present():
    assert SOURCES, f"no .cu files in {CUDA}"
    assert sorted(KERNELS) == sorted(p.name for p in SOURCES), \
        "cuda/*.cu and the kernel table of this test differ: update KERNELS (and cuda/README.md)"


def test_every_file_compiles_to_ptx(tmp_path):
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        results = list(pool.map(lambda s: (s, *_ptx(s, tmp_path / (s.stem + ".ptx"))), SOURCES))
    failures = [f"{s.name}: {' '.join(cmd)}\n{r.stderr}" for s, cmd, r in results
                if r.returncode != 0]
    assert not failures, "nvcc failed:\n" + "\n".join(failures)
    for s, _, r in results:
        entries = _entries((tmp_path / (s.stem + ".ptx")).read_text())
        missing = set(KERNELS[s.name]) - entries
        assert not missing, f"{s.name}: kernels missing from the PTX: {sorted(missing)}"
        # extern "C": plain names (no C++ mangling), so any binding can load them by name
        mangled = [e for e in entries if e.startswith("_Z")]
        assert not mangled, f"{s.name}: mangled (not extern \"C\") kernels: {mangled}"
        assert "warning" not in r.stderr.lower(), f"{s.name}: nvcc warnings:\n{r.stderr}"


def test_all_sources_compile_as_one_unit(tmp_path):
    """`make cuda` compiles the files as one translation unit: no clashing names."""
    unity = tmp_path / "kernels_all.cu"
    unity.write_text("".join(f'#include "{s}"\n' for s in SOURCES))
    cmd, r = _ptx(unity, tmp_path / "all.ptx")
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
    entries = _entries((tmp_path / "all.ptx").read_text())
    expected = {k for names in KERNELS.values() for k in names}
    assert expected <= entries, f"missing: {sorted(expected - entries)}"
