"""CPU forward speed: pydarknet vs OpenCV DNN on the same cfg and weights, same machine, same run.

Batch-1 forward passes at 416x416 of cfg/yolov4-tiny.cfg and cfg/yolov4.cfg, 2 threads each:
one warm-up, then the median of N timed runs. Each measurement runs in its own process so that
its peak memory (max RSS) is its own. Prints a table and the ratio pydarknet / OpenCV.

    python bench/forward_cpu.py [--runs 5] [--threads 2] [--size 416]
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


def measure(framework, cfg, weights, runs, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
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
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=416)
    ap.add_argument("--nets", default="yolov4-tiny,yolov4")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import pydarknet
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="pydarknet-bench-"))
    print(f"batch 1, {args.size}x{args.size}, {args.threads} threads, median of {args.runs}")
    print(f"{'network':<14}{'BFLOPs':>8}{'pydarknet s':>13}{'OpenCV s':>10}{'ratio':>8}"
          f"{'pyd MB':>8}{'cv MB':>8}{'darknet s':>11}")
    for name in args.nets.split(","):
        text = (ROOT / "cfg" / f"{name}.cfg").read_text()
        text = re.sub(r"(?m)^width=\d+", f"width={args.size}", text)
        text = re.sub(r"(?m)^height=\d+", f"height={args.size}", text)
        cfg = tmp / f"{name}.cfg"
        cfg.write_text(text)
        net = pydarknet.load(cfg, batch=1)
        weights = tmp / f"{name}.weights"
        net.save_weights(weights)
        ours = measure("pydarknet", cfg, weights, args.runs, args.threads)
        theirs = measure("opencv", cfg, weights, args.runs, args.threads)
        ratio = ours["median_s"] / theirs["median_s"]
        print(f"{name:<14}{net.total_bflops:8.2f}{ours['median_s']:13.3f}{theirs['median_s']:10.3f}"
              f"{ratio:8.2f}{ours['peak_mb']:8.0f}{theirs['peak_mb']:8.0f}"
              f"{DARKNET_S.get(name, float('nan')) if args.size == 416 else float('nan'):11.3f}")


if __name__ == "__main__":
    main()
