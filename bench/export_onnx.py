"""ONNX export speed check: the exported yolov4-tiny and yolov4 (416x416, random weights) in
onnxruntime (CPU) next to pydarknet itself and OpenCV DNN (cv2.dnn.readNetFromDarknet), all
with 2 threads. Each framework runs in its own process (so that their thread pools never
compete), the frameworks alternate over rounds, and the median forward time is reported.

    python bench/export_onnx.py [--rounds 3] [--runs 5] [--threads 2] [--size 416]
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
FRAMEWORKS = ("pydarknet", "onnxruntime", "opencv")


def _worker(framework, cfg, weights, onnx_path, size, threads, runs):
    """In a child process: load, warm up, time ``runs`` forward passes; print the times."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    sys.path.insert(0, str(ROOT))
    import numpy as np
    x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    if framework == "pydarknet":
        import pydarknet
        from pydarknet.backend import get_backend
        get_backend("cpu").set_num_threads(threads)
        net = pydarknet.load(cfg, weights, batch=1, width=size, height=size)
        step = lambda: net.predict(x)            # noqa: E731
    elif framework == "onnxruntime":
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        s = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        step = lambda: s.run(None, {"images": x})   # noqa: E731
    else:
        import cv2
        cv2.setNumThreads(threads)
        net = cv2.dnn.readNetFromDarknet(cfg, weights)
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        names = net.getUnconnectedOutLayersNames()

        def step():
            net.setInput(x)
            net.forward(names)
    step()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps(times))


def _prepare(name, size, folder):
    """A cfg at ``size``, random weights saved for OpenCV, and the ONNX export."""
    sys.path.insert(0, str(ROOT))
    import pydarknet
    from pydarknet.network import Network
    net = Network(ROOT / "cfg" / f"{name}.cfg", batch=1, width=size, height=size)
    weights = os.path.join(folder, f"{name}.weights")
    net.save_weights(weights)
    cfg = os.path.join(folder, f"{name}.cfg")     # OpenCV reads width/height from the cfg
    text = (ROOT / "cfg" / f"{name}.cfg").read_text()
    lines = [f"width={size}" if l.strip().startswith("width=") else
             f"height={size}" if l.strip().startswith("height=") else l
             for l in text.splitlines()]
    pathlib.Path(cfg).write_text("\n".join(lines) + "\n")
    onnx_path = os.path.join(folder, f"{name}.onnx")
    pydarknet.load(cfg, weights, batch=1).export_onnx(onnx_path, opset=18, check=False)
    return cfg, weights, onnx_path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=5, help="timed passes per process")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=416)
    ap.add_argument("--nets", default="yolov4-tiny,yolov4")
    ap.add_argument("--worker", nargs=7, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        fw, cfg, weights, onnx_path, size, threads, runs = args.worker
        return _worker(fw, cfg, weights, onnx_path, int(size), int(threads), int(runs))
    with tempfile.TemporaryDirectory() as folder:
        print(f"{'network':<14}" + "".join(f"{fw:>14}" for fw in FRAMEWORKS)
              + "   (median ms per 1x3x%dx%d forward, %d threads)" % (args.size, args.size,
                                                                     args.threads))
        for name in args.nets.split(","):
            cfg, weights, onnx_path = _prepare(name, args.size, folder)
            times = {fw: [] for fw in FRAMEWORKS}
            for _ in range(args.rounds):
                for fw in FRAMEWORKS:
                    cmd = [sys.executable, __file__, "--worker", fw, cfg, weights, onnx_path,
                           str(args.size), str(args.threads), str(args.runs)]
                    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
                    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
                    if res.returncode:
                        print(f"{fw} failed: {res.stderr.strip().splitlines()[-1:]}")
                        continue
                    times[fw] += json.loads(res.stdout.strip().splitlines()[-1])
            cells = [f"{1000 * statistics.median(t):14.1f}" if t else f"{'-':>14}"
                     for t in times.values()]
            print(f"{name:<14}" + "".join(cells), flush=True)


if __name__ == "__main__":
    main()
