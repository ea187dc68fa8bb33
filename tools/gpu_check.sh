#!/usr/bin/env bash
# Check the CUDA kernels on the GPU machine: bash tools/gpu_check.sh [gpu_check.py options]
#
# Run from anywhere; works in the repository root. Needs pydarknet/backend/kernels.fatbin:
# built here with `make cuda` where nvcc exists, else carried from the machine that built it
# (the device tool: carry ["pydarknet/backend/kernels.fatbin"], *.fatbin is gitignored).
# Needs python3 with numpy and cupy (torch for the Mish comparison). With $OUT set, writes
# $OUT/gpu_check.txt (the table and timings) and $OUT/nvidia-smi.txt.
set -u
cd "$(dirname "$0")/.." || exit 2
FATBIN=pydarknet/backend/kernels.fatbin
PY=${PYTHON:-python3}

if [ ! -f "$FATBIN" ]; then
    if command -v nvcc >/dev/null 2>&1; then
        make cuda || exit 2
    else
        echo "gpu_check.sh: $FATBIN is missing and nvcc is not here: build it with" \
             "'make cuda' on a machine with nvcc and bring it along" >&2
        exit 2
    fi
fi
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem \
    --format=csv 2>/dev/null || true
exec "$PY" tools/gpu_check.py "$@"
