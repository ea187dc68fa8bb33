"""Build pydarknet/backend/kernels.fatbin from cuda/*.cu: every file as ONE translation unit
(build/cuda/kernels_all.cu #includes them; a fatbin holds one module), SASS for sm_80 and sm_90
plus compute_90 PTX. Rebuilt only when a cuda/ source is newer than the fatbin. Beside it,
kernel_signatures.json: every kernel's argument types (pydarknet/backend/kernel_signatures.py
reads them from it where an installed package has no cuda/*.cu), written whenever the sources
are there, with or without nvcc.

Used by `make cuda` (``python3 cuda/build_fatbin.py``: fails when nvcc fails) and by setup.py
during `pip install` (never fails the install: one line says what happened). NVCC names the
compiler (default: nvcc on PATH)."""

import glob
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FATBIN = os.path.join("pydarknet", "backend", "kernels.fatbin")
SIGNATURES = os.path.join("pydarknet", "backend", "kernel_signatures.json")
GENCODE = ["-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90",
           "-gencode", "arch=compute_90,code=compute_90"]


def write_signatures(root=ROOT):
    """kernel_signatures.json from cuda/*.cu (the parser of the package, loaded from its file:
    the package itself may not import before its C core is built); an error text or None."""
    import importlib.util
    path = os.path.join(root, "pydarknet", "backend", "kernel_signatures.py")
    spec = importlib.util.spec_from_file_location("_pdn_kernel_signatures", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        module.write_json(os.path.join(root, SIGNATURES), os.path.join(root, "cuda"))
    except (OSError, ValueError) as e:
        return f"cannot write {SIGNATURES}: {e}"
    return None


def build_fatbin(root=ROOT, log=print):
    """(path of the up-to-date fatbin or None, error text or None). None without an error:
    no sources or no nvcc, said in one line."""
    sources = sorted(glob.glob(os.path.join(root, "cuda", "*.cu")))
    headers = sorted(glob.glob(os.path.join(root, "cuda", "*.cuh")))
    out = os.path.join(root, FATBIN)
    if not sources:
        log("pydarknet: no cuda/*.cu sources: CUDA kernels not built")
        return None, None
    error = write_signatures(root)
    if error:
        return None, error
    nvcc = shutil.which(os.environ.get("NVCC", "nvcc"))
    if nvcc is None:
        log("pydarknet: nvcc not found: CUDA kernels not built (the CPU backend works; "
            "`make cuda` builds them where nvcc exists)")
        return None, None
    if os.path.exists(out) and os.path.getmtime(out) >= max(
            os.path.getmtime(f) for f in sources + headers):
        return out, None
    unity = os.path.join(root, "build", "cuda", "kernels_all.cu")
    os.makedirs(os.path.dirname(unity), exist_ok=True)
    with open(unity, "w") as f:
        f.writelines(f'#include "{src}"\n' for src in sources)
    cmd = [nvcc, "-O3", "--threads", "0", "--fatbin", *GENCODE, "-o", out, unity]
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"nvcc failed ({e})"
    if r.returncode != 0:
        if os.path.exists(out):
            os.remove(out)
        return None, f"nvcc failed (exit {r.returncode}):\n{r.stderr.strip() or 'no message'}"
    log(f"pydarknet: built {FATBIN} in {time.perf_counter() - t0:.1f} s")
    return out, None


if __name__ == "__main__":
    _, error = build_fatbin()
    if error:
        print(f"make cuda: {error}", file=sys.stderr)
    sys.exit(1 if error else 0)
