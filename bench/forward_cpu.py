"""CPU forward speed: pydarknet vs OpenCV DNN on the same cfg and weights, same machine, same run.

Batch-1 forward passes at 416x416 of cfg/yolov4-tiny.cfg and cfg/yolov4.cfg, 2 threads each:
one warm-up, then the median of N timed runs. Each measurement runs in its own process so that
its peak memory (max RSS) is its own, and the frameworks alternate over R rounds (this machine
is shared and noisy). pydarknet runs twice: as installed (oneDNN convolutions) and with
PYDARKNET_ONEDNN=0 (im2col + sgemm, "fallback"). Prints a table with the median ratio
pydarknet / OpenCV over the rounds and its spread [min, max].

    python bench/forward_cpu.py [--runs 5] [--rounds 3] [--threads 2] [--size 416]
"""

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Darknet's own CPU build on this kind of machine (darknet-ref/timing.json), for reference.
DARKNET_S = {"yolov4-tiny": 0.188, "yolov4": 1.88}


def worker(framework, cfg, weights, runs, threads):
    import resource
    import time

    import numpy as np
    sys.path.insert(0, str(ROOT))      # this checkout's pydarknet
    x = np.random.default_rng(0).uniform(0, 1, (1, 3) + _size(cfg)).astype(np.float32)
    if framework == "opencv":
        import cv2
        cv2.setNumThreads(threads)
        net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        names = net.getUnconnectedOutLayersNames()

        def run():
            net.setInput(x)
            net.forward(names)
    else:
        import pydarknet
        net = pydarknet.load(cfg, weights, batch=1)
        net.backend.set_num_threads(threads)

        def run():
            net.predict(x)
    run()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    times.sort()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"median_s": times[len(times) // 2], "min_s": times[0], "peak_mb": peak_mb}))


def _size(cfg):
    text = pathlib.Path(cfg).read_text()
    h = int(re.search(r"(?m)^height=(\d+)", text).group(1))
    w = int(re.search(r"(?m)^width=(\d+)", text).group(1))
    return (h, w)


# what each column runs: the worker's framework and its environment
FRAMEWORKS = {"pydarknet": ("pydarknet", {}),
              "fallback": ("pydarknet", {"PYDARKNET_ONEDNN": "0"}),
              "opencv": ("opencv", {})}


def measure(column, cfg, weights, runs, threads):
    framework, extra_env = FRAMEWORKS[column]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), **extra_env)
    out = subprocess.run([sys.executable, __file__, "--worker", framework, str(cfg), str(weights),
                          str(runs), str(threads)], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{framework} on {cfg} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        fw, cfg, weights, runs, threads = sys.argv[2:7]
        return worker(fw, cfg, weights, int(runs), int(threads))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds; each runs every framework once, in its own process")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=416)
    ap.add_argument("--nets", default="yolov4-tiny,yolov4")
    ap.add_argument("--no-fallback", action="store_true",
                    help="skip the PYDARKNET_ONEDNN=0 column")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import pydarknet
    columns = ["pydarknet"] + ([] if args.no_fallback else ["fallback"]) + ["opencv"]
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="pydarknet-bench-"))
    print(f"batch 1, {args.size}x{args.size}, {args.threads} threads, median of {args.runs} runs "
          f"per process, {args.rounds} rounds; ratio: median over the rounds [min, max]")
    print(f"{'network':<13}{'BFLOPs':>7}{'pydarknet s':>12}{'fallback s':>11}{'OpenCV s':>9}"
          f"{'ratio':>19}{'fallback ratio':>20}{'pyd MB':>7}{'fb MB':>6}{'cv MB':>6}"
          f"{'darknet s':>10}")
    for name in args.nets.split(","):
        text = (ROOT / "cfg" / f"{name}.cfg").read_text()
        text = re.sub(r"(?m)^width=\d+", f"width={args.size}", text)
        text = re.sub(r"(?m)^height=\d+", f"height={args.size}", text)
        cfg = tmp / f"{name}.cfg"
        cfg.write_text(text)
        net = pydarknet.load(cfg, batch=1)
        weights = tmp / f"{name}.weights"
        net.save_weights(weights)
        rounds = {c: [] for c in columns}
        for _ in range(args.rounds):
            for c in columns:               # alternate: the machine's load hits all alike
                rounds[c].append(measure(c, cfg, weights, args.runs, args.threads))
        med = {c: _median([r["median_s"] for r in rounds[c]]) for c in columns}
        peak = {c: max(r["peak_mb"] for r in rounds[c]) for c in columns}

        def ratio(c):
            rs = [a["median_s"] / b["median_s"] for a, b in zip(rounds[c], rounds["opencv"])]
            return f"{_median(rs):.2f} [{min(rs):.2f}, {max(rs):.2f}]"
        fb = "fallback" in columns
        nan = float("nan")
        print(f"{name:<13}{net.total_bflops:7.2f}{med['pydarknet']:12.3f}"
              f"{med['fallback'] if fb else nan:11.3f}{med['opencv']:9.3f}{ratio('pydarknet'):>19}"
              f"{ratio('fallback') if fb else '-':>20}{peak['pydarknet']:7.0f}"
              f"{peak['fallback'] if fb else nan:6.0f}{peak['opencv']:6.0f}"
              f"{DARKNET_S.get(name, nan) if args.size == 416 else nan:10.3f}")


def _median(values):
    values = sorted(values)
    return values[len(values) // 2] if len(values) % 2 else (
        values[len(values) // 2 - 1] + values[len(values) // 2]) / 2


if __name__ == "__main__":
    main()
