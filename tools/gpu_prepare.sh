#!/usr/bin/env bash
# Prepare .gpu/ HERE (a machine with internet and the CUDA toolkit, no GPU) for one call on the
# GPU machine, which has no internet and no pycuda:  bash tools/gpu_prepare.sh   (make gpu-prepare)
#
#   .gpu/*.whl            cp312 x86_64 wheels of what the GPU machine lacks: pycuda (built here
#                         from its sdist with Python 3.12 against a stub libcuda.so.1, curand
#                         off), its requirements missing there, and pycocotools
#   .gpu/darknet-ref/     the part of ../shared/darknet-ref the GPU tests read (README.md, cfg/,
#                         shapes/, mini/*.cfg, mini/forward/, mini/train/*-gpusem*)
#   .gpu/kernels.fatbin   `make cuda`'s fatbin, and .gpu/kernels.sha256: the hash of the
#                         cuda/ sources it was built from (tools/gpu_run.sh rebuilds on a mismatch)
#
# Idempotent: what is already there is kept (delete a file to redo it; FORCE=1 redoes the wheels).
# Then, on the GPU machine: carry [".gpu"], command `bash tools/gpu_run.sh` (tools/GPU.md).
# Environment: PY312 (a Python 3.12 to build pycuda with; default: pyenv's 3.12.x),
# CUDA_ROOT (the CUDA toolkit; default: found from nvcc), DARKNET_REF (default ../shared/darknet-ref).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
GPU=$ROOT/.gpu
mkdir -p "$GPU"
T0=$SECONDS

# Versions carried (pinned so that the GPU run is reproducible). The GPU image already has
# numpy, typing-extensions and markupsafe (KINDS.md's package list), so they are not carried.
PYCUDA=pycuda==2026.1
DOWNLOADS=(pytools==2026.1.1 platformdirs==4.14.5 mako==1.4.3 siphash24==1.9 pycocotools==2.0.11)
# Requirements that the GPU image has (checked below against every carried wheel's Requires-Dist).
ON_DEVICE=" numpy typing-extensions typing_extensions markupsafe setuptools packaging "

say() { printf 'gpu_prepare: %s\n' "$*"; }

# ---------------------------------------------------------------------------------------------
# Python 3.12 and the CUDA toolkit
# ---------------------------------------------------------------------------------------------
find_py312() {
    if [ -n "${PY312:-}" ]; then echo "$PY312"; return; fi
    if command -v pyenv >/dev/null 2>&1; then
        local p
        for p in "$(pyenv root)"/versions/3.12*/bin/python3.12; do
            [ -x "$p" ] && { echo "$p"; return; }
        done
    fi
    command -v python3.12 || true
}

find_cuda_root() {
    if [ -n "${CUDA_ROOT:-}" ]; then echo "$CUDA_ROOT"; return; fi
    local nv real
    nv=$(command -v nvcc || true)
    [ -n "$nv" ] || return 0
    # /usr/local/bin/nvcc may be a wrapper script that execs the real one: follow it.
    real=$(grep -o '/[^ "]*/bin/nvcc' "$nv" 2>/dev/null | head -1 || true)
    [ -n "$real" ] && [ -x "$real" ] || real=$(readlink -f "$nv")
    dirname "$(dirname "$real")"
}

have() { compgen -G "$GPU/$1" >/dev/null; }

CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/pydarknet-gpu   # build helpers, never carried

# A stub libcuda.so.1 (the driver library is not here): a shared object with that soname
# exporting every cu* function that cuda.h and cudaProfiler.h declare, each returning
# CUDA_ERROR_NO_DEVICE (100).
# Linking against it records libcuda.so.1 as NEEDED; on the GPU machine the real driver
# library resolves the symbols. Prints the stub's folder.
make_stub() {
    local cuda=$1 dir=$CACHE/stub
    if [ ! -f "$dir/libcuda.so.1" ]; then
        [ -f "$cuda/include/cuda.h" ] || {
            say "no CUDA toolkit with include/cuda.h found (set CUDA_ROOT)" >&2; return 1; }
        mkdir -p "$dir"
        printf '#include <cuda.h>\n#include <cudaProfiler.h>\n' \
            | gcc -E -P -I"$cuda/include" -x c - \
            | grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | tr -d '( \t' | sort -u \
            | grep -vE '^cuGetError(String|Name)$' \
            | sed 's/.*/int &(void) { return 100; }/' > "$dir/stub.c"
        cat >> "$dir/stub.c" <<'CEOF'
int cuGetErrorString(int e, const char **s) { *s = "no CUDA-capable device is detected (stub libcuda.so.1)"; return 0; }
int cuGetErrorName(int e, const char **s) { *s = "CUDA_ERROR_NO_DEVICE"; return 0; }
CEOF
        gcc -shared -fPIC -o "$dir/libcuda.so.1" -Wl,-soname,libcuda.so.1 "$dir/stub.c"
        ln -sf libcuda.so.1 "$dir/libcuda.so"
        say "stub libcuda.so.1: $(wc -l < "$dir/stub.c") cu* functions, in $dir" >&2
    fi
    echo "$dir"
}

# ---------------------------------------------------------------------------------------------
# (a1) pycuda, built from its sdist
# ---------------------------------------------------------------------------------------------
build_pycuda() {
    local py cuda work stub src whl
    py=$(find_py312)
    [ -n "$py" ] || { say "no Python 3.12 found (set PY312)"; return 1; }
    cuda=$(find_cuda_root)
    say "building $PYCUDA with $py ($("$py" --version)) against $cuda"
    work=$(mktemp -d /tmp/pydarknet-pycuda.XXXXXX)
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" RETURN

    stub=$(make_stub "$cuda")
    "$py" -m pip download -q --no-deps --no-binary=pycuda "$PYCUDA" -d "$work"
    tar -xzf "$work"/pycuda-*.tar.gz -C "$work"
    src=$(echo "$work"/pycuda-*/)
    # siteconf.py: the real toolkit, the stub as the driver library, no curand, no debug info.
    (cd "$src" && PATH="$cuda/bin:$PATH" "$py" configure.py --cuda-root="$cuda" \
        --no-cuda-enable-curand --cudadrv-lib-dir="$stub" --cudart-lib-dir="$cuda/lib64" \
        --cxxflags=-g0 --ldflags=-s >/dev/null)
    PATH="$cuda/bin:$PATH" "$py" -m pip wheel -q --no-deps -w "$work/dist" "$src"
    whl=$(echo "$work"/dist/pycuda-*.whl)
    [ -f "$whl" ] || { say "pip wheel made no pycuda wheel"; return 1; }
    cp "$whl" "$GPU/"
    say "built $(basename "$whl") ($(du -h "$whl" | cut -f1))"
}

if [ -n "${FORCE:-}" ]; then rm -f "$GPU"/*.whl; fi
if have 'pycuda-*-cp312-*.whl'; then
    say "pycuda wheel present: $(cd "$GPU" && ls pycuda-*.whl)"
else
    build_pycuda
fi

# ---------------------------------------------------------------------------------------------
# (a2) the other wheels: downloaded as cp312 manylinux x86_64 wheels (or pure-Python ones)
# ---------------------------------------------------------------------------------------------
PIP=${PYTHON:-python3}
for req in "${DOWNLOADS[@]}"; do
    name=${req%%==*}
    file=$(echo "$name" | tr - _)
    if have "${file}-${req##*==}-*.whl"; then continue; fi
    say "downloading $req"
    "$PIP" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$GPU" "$req"
done

# Every wheel's requirements must be carried too or be on the GPU machine already.
missing=""
for w in "$GPU"/*.whl; do
    while read -r dep; do
        dep=$(echo "$dep" | sed -E 's/^Requires-Dist: *//; s/[ ;<>=!~\[(].*//' \
              | tr '[:upper:]' '[:lower:]')
        [ -n "$dep" ] || continue
        if [[ "$ON_DEVICE" == *" $dep "* ]]; then continue; fi
        if compgen -G "$GPU/$(echo "$dep" | tr - _)-*.whl" >/dev/null; then continue; fi
        missing="$missing $(basename "$w" | cut -d- -f1)->$dep"
    done < <(unzip -p "$w" '*.dist-info/METADATA' | grep '^Requires-Dist:' | grep -v 'extra ==')
done
if [ -n "$missing" ]; then
    say "WARNING: requirements neither carried nor on the GPU machine:$missing"
fi
# One version of each (two stop the whole install there).
dups=$(for w in "$GPU"/*.whl; do basename "$w" | cut -d- -f1; done | sort | uniq -d)
[ -z "$dups" ] || { say "two versions of: $dups (remove the older)"; exit 1; }

# The wheels install as the GPU machine installs them, and pycuda imports with Python 3.12 up to
# where it needs a driver: with the stub libcuda.so.1, cuInit answers "no device". (numpy,
# typing-extensions and markupsafe for this check only: the GPU machine has its own.)
check_wheels() {
    local py site out
    py=$(find_py312)
    [ -n "$py" ] || { say "check skipped: no Python 3.12"; return 0; }
    site=$CACHE/site-check
    rm -rf "$site"
    mkdir -p "$CACHE/check"
    for req in "numpy>=2,<2.6" typing-extensions markupsafe; do
        compgen -G "$CACHE/check/$(echo "${req%%[<>=]*}" | tr - _)-*.whl" >/dev/null \
            || "$PIP" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
                --implementation cp --platform manylinux_2_28_x86_64 \
                --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
                -d "$CACHE/check" "$req" 2>/dev/null
    done
    "$py" -m pip install -q --no-index --no-deps --no-compile --target "$site" \
        "$GPU"/*.whl "$CACHE"/check/*.whl 2>&1 | grep -v '^WARNING' || true
    out=$(cd /tmp && LD_LIBRARY_PATH="$(make_stub "$(find_cuda_root)")" PYTHONPATH="$site" \
        "$py" - <<'PYEOF' 2>&1
import sys, importlib
print("python", sys.version.split()[0])
import pycuda, pycuda.driver as drv
print("pycuda", pycuda.VERSION_TEXT, "imports;", "driver module", drv.__file__.rsplit("/", 1)[-1])
for name in ("pytools", "mako", "platformdirs", "siphash24", "pycocotools.coco"):
    importlib.import_module(name)
print("pytools, mako, platformdirs, siphash24, pycocotools import")
try:
    drv.init()
    print("cuInit: succeeded (a real driver is here?)")
except Exception as e:
    print(f"cuInit with the stub driver: {type(e).__module__}.{type(e).__name__}: {e}")
PYEOF
    ) || { say "FAILED: the wheels do not import with $py:"; echo "$out"; return 1; }
    while IFS= read -r line; do echo "    $line"; done <<< "$out"
}
check_wheels

# ---------------------------------------------------------------------------------------------
# (b) the Darknet reference data the GPU tests read
# ---------------------------------------------------------------------------------------------
REF=${DARKNET_REF:-$ROOT/../shared/darknet-ref}
DST=$GPU/darknet-ref
if [ -f "$REF/README.md" ]; then
    mkdir -p "$DST/mini/train"
    cp -u "$REF/README.md" "$DST/"
    cp -ru "$REF/cfg" "$REF/shapes" "$DST/"
    cp -u "$REF"/mini/*.cfg "$DST/mini/"
    cp -ru "$REF/mini/forward" "$DST/mini/"
    for d in "$REF"/mini/train/*-gpusem*; do cp -ru "$d" "$DST/mini/train/"; done
else
    say "WARNING: no Darknet reference data at $REF: the GPU oracle tests will skip"
fi

# ---------------------------------------------------------------------------------------------
# (c) the fatbin (make cuda; rebuilt only when a cuda/ source changed)
# ---------------------------------------------------------------------------------------------
cuda_hash() { cat cuda/*.cu cuda/*.cuh Makefile | sha256sum | cut -d' ' -f1; }
if [ "$(cat "$GPU/kernels.sha256" 2>/dev/null)" != "$(cuda_hash)" ] || [ ! -f "$GPU/kernels.fatbin" ]
then
    if command -v nvcc >/dev/null 2>&1; then
        make --no-print-directory cuda
        cp pydarknet/backend/kernels.fatbin "$GPU/kernels.fatbin"
        cuda_hash > "$GPU/kernels.sha256"
    else
        say "WARNING: nvcc not here: no fatbin carried (gpu_run.sh builds it with the GPU" \
            "machine's nvcc)"
    fi
fi

# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------
say "contents:"
(cd "$GPU" && du -sh ./*.whl darknet-ref kernels.fatbin 2>/dev/null | sed 's/^/    /')
total=$(du -sm "$GPU" | cut -f1)
repo=$(git ls-files -z -co --exclude-standard | du -cm --files0-from=- 2>/dev/null | tail -1 \
       | cut -f1)
say ".gpu/ ${total} MiB + the working tree that travels ${repo} MiB (the device tool's limit:" \
    "64 MiB in all); took $((SECONDS - T0)) s"
if [ "$total" -gt 40 ]; then say "WARNING: .gpu/ is over 40 MiB"; fi
say "next, on the GPU machine: the device tool's run with command 'bash tools/gpu_run.sh'," \
    "carry [\".gpu\"], timeout_s 480 (gpu_run.sh stops itself at 420 s; tools/GPU.md)"
