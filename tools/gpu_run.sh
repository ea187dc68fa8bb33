#!/usr/bin/env bash
# Build, check, test and benchmark the GPU path in ONE call on the GPU machine (no internet, no
# pycuda): run from the repository root there with .gpu/ carried (tools/gpu_prepare.sh fills it
# here first). The device call:  command "bash tools/gpu_run.sh", carry [".gpu"].
#
#   1. setup: the carried wheels into /tmp/site (PYTHONPATH), pydarknet's C extension built in
#      place for that Python, the carried fatbin (rebuilt with make cuda when cuda/ changed),
#      DARKNET_REF=.gpu/darknet-ref, nvidia-smi and versions
#   2. check:  bash tools/gpu_check.sh             (every kernel against numpy; Mish timings)
#   3. oracle: pytest -m gpu tests/test_gpu_oracle.py   (Darknet's oracles and CPU/GPU
#              agreement on the GPU; TF32 off: NVIDIA_TF32_OVERRIDE=0)
#   4. test:   pytest -m gpu tests (the other GPU tests, test_gpu_oracle.py left out; TF32 off)
#   5. bench:  python3 bench/gpu.py                 (writes $OUT/gpu_bench.json)
#   (fuzz: not in the default STEPS: tools/cuda_emulated_fuzz.py --real, random networks GPU
#    vs CPU for up to FUZZ_SECONDS (default 60): two thirds in float32, the rest with
#    set_precision("fp16") against the CPU's fp16 model; logs fuzz.log, fuzz16.log)
#
# Each step has its own time limit and may fail without stopping the next; the whole run ends
# within DEADLINE seconds (default 420: a session has 15 minutes of device time, machine starts
# of 1-2 minutes included, so one call of about 7 minutes leaves room for one rerun). Logs, flat in $OUT (default
# ./gpu-out; six files): run.log (setup and the summary), check.log, oracle.log, pytest.log,
# bench.log, gpu_bench.json. The summary is printed last.
# Environment: STEPS (default "check oracle test bench"; "fuzz" adds the random networks),
# PYTEST_ARGS (the test step's arguments; default "-m gpu tests
# --ignore=tests/test_gpu_oracle.py"), BENCH_ARGS, FUZZ_SECONDS, DEADLINE.
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
export OUT=${OUT:-$ROOT/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
STEPS=${STEPS:-check oracle test bench}
DEADLINE=${DEADLINE:-420}
SUMMARY=()
START=$SECONDS

log() { printf '%s\n' "$*" | tee -a "$OUT/run.log"; }
left() { echo $((DEADLINE - (SECONDS - START))); }

# run_step NAME LIMIT_S LOGFILE COMMAND...: at most LIMIT_S seconds (less if the deadline is
# nearer), output teed to $OUT/LOGFILE, status recorded for the summary.
run_step() {
    local name=$1 limit=$2 logfile=$3 t0=$SECONDS rc
    shift 3
    local budget
    budget=$(left)
    [ "$budget" -lt "$limit" ] && limit=$budget
    if [ "$limit" -lt 10 ]; then
        SUMMARY+=("$(printf '%-6s %-9s %5s s  %s' "$name" "no time" 0 "(deadline reached)")")
        return
    fi
    log ""
    log "=== $name (limit ${limit}s): $*"
    timeout -k 10 "$limit" "$@" 2>&1 | tee "$OUT/$logfile"
    rc=${PIPESTATUS[0]}
    local what="rc=$rc"
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then what="TIMEOUT"; fi
    SUMMARY+=("$(printf '%-6s %-9s %5d s  %s' "$name" "$what" $((SECONDS - t0)) "$OUT/$logfile")")
}

# ---------------------------------------------------------------------------------------------
# 1. setup
# ---------------------------------------------------------------------------------------------
: > "$OUT/run.log"
log "=== setup $(date -u +%FT%TZ) on $(hostname)"
nvidia-smi 2>&1 | tee -a "$OUT/run.log" || log "nvidia-smi failed"
SETUP_OK=1
if compgen -G ".gpu/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .gpu/*.whl 2>&1 | tee -a "$OUT/run.log"
    export PYTHONPATH=/tmp/site:$ROOT${PYTHONPATH:+:$PYTHONPATH}
else
    log "no .gpu/*.whl: run tools/gpu_prepare.sh here and carry .gpu"; SETUP_OK=0
    export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -f .gpu/darknet-ref/README.md ]; then
    export DARKNET_REF=$ROOT/.gpu/darknet-ref
else
    log "no .gpu/darknet-ref: the oracle tests will skip"
fi

# the fatbin: the carried one when it was built from these sources, else make cuda here
FATBIN=pydarknet/backend/kernels.fatbin
hash_now=$(cat cuda/*.cu cuda/*.cuh Makefile | sha256sum | cut -d' ' -f1)
if [ -f .gpu/kernels.fatbin ] && [ "$(cat .gpu/kernels.sha256 2>/dev/null)" = "$hash_now" ]; then
    cp .gpu/kernels.fatbin "$FATBIN" && log "fatbin: the carried one (sources unchanged)"
else
    log "fatbin: carried one missing or stale: make cuda"
    rm -f "$FATBIN"
    timeout 240 make --no-print-directory cuda 2>&1 | tee -a "$OUT/run.log"
fi
[ -f "$FATBIN" ] || { log "fatbin: NONE ($FATBIN missing)"; SETUP_OK=0; }

# pydarknet's C extension for this Python (offline: no build isolation; the fatbin is above)
t0=$SECONDS
PYDARKNET_NO_CUDA=1 timeout 300 "$PY" setup.py -q build_ext --inplace -j "$(nproc)" \
    > /tmp/build_ext.log 2>&1
rc=$?
tail -5 /tmp/build_ext.log | tee -a "$OUT/run.log"
log "build_ext: rc=$rc in $((SECONDS - t0)) s"
[ $rc -eq 0 ] || { cat /tmp/build_ext.log >> "$OUT/run.log"; SETUP_OK=0; }

"$PY" - <<'EOF' 2>&1 | tee -a "$OUT/run.log"
import importlib, sys
print("python", sys.version.split()[0], sys.executable)
for name in ("numpy", "torch", "cupy", "pycuda", "pycocotools", "cv2"):
    try:
        m = importlib.import_module(name)
        print(f"  {name:<12} {getattr(m, '__version__', getattr(m, 'VERSION_TEXT', '?'))}")
    except Exception as e:
        print(f"  {name:<12} NOT IMPORTABLE: {type(e).__name__}: {e}")
try:
    import pycuda.driver as drv
    drv.init()
    print(f"  CUDA driver API {drv.get_driver_version()}, device 0: {drv.Device(0).name()}")
except Exception as e:
    print(f"  pycuda driver: {type(e).__name__}: {e}")
try:
    from pydarknet.backend import get_backend
    get_backend("cuda:0")
    print("  pydarknet get_backend('cuda:0'): ok")
except Exception as e:
    print(f"  pydarknet get_backend('cuda:0'): {type(e).__name__}: {e}")
EOF
log "setup: $([ $SETUP_OK = 1 ] && echo ok || echo INCOMPLETE) in $((SECONDS - START)) s"
SUMMARY+=("$(printf '%-6s %-9s %5d s  %s' setup "$([ $SETUP_OK = 1 ] && echo ok || echo INCOMPLETE)" \
    $((SECONDS - START)) "$OUT/run.log")")

# ---------------------------------------------------------------------------------------------
# 2-5. the steps
# ---------------------------------------------------------------------------------------------
# pytest-timeout (on the GPU image) fails one hung test instead of the whole step
TIMEOUT_FLAG=""
"$PY" -c "import pytest_timeout" 2>/dev/null && TIMEOUT_FLAG="--timeout=100"
for step in $STEPS; do
    case $step in
        check)  # OUT unset: gpu_check.py's own copies (gpu_check.txt, nvidia-smi.txt) would
                # only repeat check.log and run.log
                run_step check 50 check.log env -u OUT bash tools/gpu_check.sh ;;
        oracle) # shellcheck disable=SC2086
                run_step oracle 110 oracle.log env NVIDIA_TF32_OVERRIDE=0 "$PY" -m pytest -q \
                    -rfEs -p no:cacheprovider --durations=8 $TIMEOUT_FLAG -m gpu \
                    tests/test_gpu_oracle.py ;;
        test)   # shellcheck disable=SC2086
                run_step test 110 pytest.log env NVIDIA_TF32_OVERRIDE=0 "$PY" -m pytest -q \
                    -rfEs -p no:cacheprovider --durations=8 $TIMEOUT_FLAG \
                    ${PYTEST_ARGS:--m gpu tests --ignore=tests/test_gpu_oracle.py} ;;
        bench)  # the benchmark's own budget ends before the step's limit: its table prints
                lim=$(left); [ "$lim" -gt 180 ] && lim=180
                # shellcheck disable=SC2086
                run_step bench "$lim" bench.log "$PY" bench/gpu.py --budget $((lim - 15)) \
                    ${BENCH_ARGS:-} ;;
        fuzz)   fs=${FUZZ_SECONDS:-60}
                run_step fuzz $((fs * 2 / 3 + 20)) fuzz.log env NVIDIA_TF32_OVERRIDE=0 "$PY" \
                    tools/cuda_emulated_fuzz.py 0 1000000 --real --budget $((fs * 2 / 3))
                run_step fuzz16 $((fs / 3 + 20)) fuzz16.log env NVIDIA_TF32_OVERRIDE=0 "$PY" \
                    tools/cuda_emulated_fuzz.py 0 1000000 --real --precision fp16 \
                    --budget $((fs / 3)) ;;
        *) log "unknown step '$step' (check, oracle, test, bench, fuzz)" ;;
    esac
done

# ---------------------------------------------------------------------------------------------
# summary (last: the device tool's reply shows the end of the output)
# ---------------------------------------------------------------------------------------------
{
    echo ""
    echo "=== summary ($((SECONDS - START)) s; logs in $OUT)"
    printf '%s\n' "${SUMMARY[@]}"
    [ -f "$OUT/check.log" ] && { echo "--- check: failures and the last lines";
        grep -E "FAIL|Error" "$OUT/check.log" | head -20; tail -3 "$OUT/check.log"; }
    for f in oracle pytest; do
        [ -f "$OUT/$f.log" ] && { echo "--- $f.log: failures and the result";
            grep -E "^(FAILED|ERROR)" "$OUT/$f.log" | cut -c1-300 | head -25
            tail -1 "$OUT/$f.log"; }
    done
    for f in fuzz fuzz16; do
        [ -f "$OUT/$f.log" ] && { echo "--- $f: differences and counts";
            grep -E "^(seed|counts|budget)|Error" "$OUT/$f.log" | cut -c1-300 | head -15; }
    done
    [ -f "$OUT/bench.log" ] && { echo "--- bench: the table"; sed -n '/^=== table/,$p' "$OUT/bench.log"; }
} | tee -a "$OUT/run.log"
