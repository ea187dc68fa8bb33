"""End-to-end detection speed on the CPU, pydarknet vs OpenCV DNN, and the speed of Darknet's mAP.

1. Images/s of the whole pipeline (read the JPEG, pre-process, forward, decode, NMS) for
   cfg/yolov4-tiny.cfg at 416x416, same weights, same images, same thread count:
   - pydarknet: Darknet's pipeline (its bilinear resize, per-class probabilities, the cfg's
     NMS), one image after the other; and `iter_detections`, which reads and pre-processes
     the next images in 2 threads while the network runs (what `pydarknet detect` does);
   - OpenCV DNN's own pipeline: cv2.imread, blobFromImage (cv2.resize), net.forward,
     best class per row, cv2.dnn.NMSBoxesBatched.
   The weights are Darknet's random initialisation with the heads' last convolution re-drawn
   so that a few dozen boxes per image pass the 0.25 threshold (random heads put every
   objectness at 0.5, which no trained network does and which makes NMS the whole cost).
   Each framework runs in its own process. "boxes/img": boxes whose best class is above the
   threshold (OpenCV's notion of a detection); "pairs/img": (box, class) pairs above it, one
   per class, which is what Darknet reports and evaluates.
2. Darknet's mAP (matching, ranking, AP) for 5,000 images x 100 detections, 80 classes,
   with every -points mode; `--coco` adds pycocotools on the same detections for scale.

    python bench/detect_cpu.py [--images 16] [--rounds 3] [--threads 2] [--coco]
"""

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
SIZE = 416
THRESH, NMS = 0.25, 0.45


def synthetic_images(folder, n, seed=0):
    import cv2
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        img = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), np.uint8), (9, 9), 0)
        for _ in range(6):
            x, y = rng.integers(0, 560), rng.integers(0, 400)
            w, h = rng.integers(30, 200, 2)
            cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)),
                          tuple(int(v) for v in rng.integers(0, 256, 3)), -1)
        p = os.path.join(folder, f"{i:06d}.jpg")
        cv2.imwrite(p, img)
        paths.append(p)
    return paths


def make_weights(cfg, weights, paths, target=0.02, seed=0):
    """Darknet-initialised yolov4-tiny whose head convolutions are standardised on the bench
    images, with the objectness bias set so that about ``target`` of the (cell, anchor)
    candidates pass the threshold."""
    import cv2

    import pydarknet
    from pydarknet.image import network_input
    net = pydarknet.load(cfg, batch=1)
    x = np.stack([network_input(cv2.imread(p), SIZE, SIZE) for p in paths[:4]])
    net.predict(x)
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if layer.layer_type != "yolo":
            continue
        conv = net.layers[layer.index - 1]
        f = net.outputs[layer.index - 2]
        mean = f.mean((0, 2, 3)).astype(np.float64)
        std = f.std((0, 2, 3)).astype(np.float64) + 1e-6
        e = layer.classes + 5
        spread = np.array([1, 1, 0.3, 0.3, 1.5] + [1.5] * layer.classes)
        w = rng.standard_normal((layer.n, e, len(mean))) * spread[None, :, None] / \
            (np.sqrt(len(mean)) * std)
        b = -(w * mean).sum(-1)
        z = {0.01: 2.33, 0.02: 2.05, 0.05: 1.64}.get(target, 2.05)
        b[:, 4] += np.log(THRESH / (1 - THRESH)) - z * 1.5     # objectness: ~target above
        b[:, 5:] -= 5.0                                    # mostly one class (or none) per box
        conv.params["weights"][...] = w.reshape(conv.params["weights"].shape)
        conv.params["biases"][...] = b.reshape(-1)
    net.save_weights(weights)


def worker(kind, cfg, weights, paths, rounds, threads):
    import cv2
    cv2.setNumThreads(threads)
    times = {"read": 0.0, "pre": 0.0, "forward": 0.0, "post": 0.0}
    n_det, boxes = 0, [0]
    if kind == "opencv":
        net = cv2.dnn.readNetFromDarknet(cfg, weights)
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        names = net.getUnconnectedOutLayersNames()

        def one(path):
            t0 = time.perf_counter()
            img = cv2.imread(path)
            t1 = time.perf_counter()
            blob = cv2.dnn.blobFromImage(img, 1 / 255.0, (SIZE, SIZE), swapRB=True, crop=False)
            t2 = time.perf_counter()
            net.setInput(blob)
            outs = net.forward(names)
            t3 = time.perf_counter()
            rows = np.concatenate(outs)
            scores = rows[:, 5:]
            cls = scores.argmax(1)
            conf = scores[np.arange(len(rows)), cls]
            keep = conf > THRESH
            h, w = img.shape[:2]
            b = rows[keep, :4] * [w, h, w, h]
            xywh = np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 2], b[:, 3]], 1)
            idx = cv2.dnn.NMSBoxesBatched(xywh.tolist(), conf[keep].tolist(),
                                          cls[keep].tolist(), THRESH, NMS)
            t4 = time.perf_counter()
            for k, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                times[k] += dt
            boxes[0] += len(idx)
            return len(idx)
    else:
        import pydarknet
        from pydarknet.detector import iter_detections
        net = pydarknet.load(cfg, weights, batch=1)
        net.backend.set_num_threads(threads)
        if kind == "pydarknet-pipelined":
            list(iter_detections(net, paths[:1], THRESH, NMS))     # warm-up
            t0 = time.perf_counter()
            for _ in range(rounds):
                for _, _, _, d in iter_detections(net, paths, THRESH, NMS, threads=2):
                    n_det += len(d.pairs(THRESH)[0])
                    boxes[0] += len(d.best_class(THRESH)[0])
            total = time.perf_counter() - t0
            n = rounds * len(paths)
            print(json.dumps({"images_per_s": n / total, "ms": 1000 * total / n,
                              "detections": n_det / n, "boxes": boxes[0] / n}))
            return
        # detector.detect_detections, spelled out to time each stage
        from pydarknet.detector import _postprocess, prepare_batch
        from pydarknet.eval.decode import detection_layers
        heads = detection_layers(net)

        def one(path):
            t0 = time.perf_counter()
            img = cv2.imread(path)
            t1 = time.perf_counter()
            x, sizes = prepare_batch(net, [img])
            t2 = time.perf_counter()
            net.predict(x)
            t3 = time.perf_counter()
            d = _postprocess(net, sizes, THRESH, NMS, False, None, None, heads)[0]
            t4 = time.perf_counter()
            for k, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                times[k] += dt
            boxes[0] += len(d.best_class(THRESH)[0])
            return len(d.pairs(THRESH)[0])
    one(paths[0])                        # warm-up
    for k in times:
        times[k] = 0.0
    boxes[0] = 0
    t0 = time.perf_counter()
    for _ in range(rounds):
        for p in paths:
            n_det += one(p)
    total = time.perf_counter() - t0
    n = rounds * len(paths)
    print(json.dumps({"images_per_s": n / total, "ms": 1000 * total / n,
                      "detections": n_det / n, "boxes": boxes[0] / n,
                      **{f"{k}_ms": 1000 * v / n for k, v in times.items()}}))


def measure(kind, cfg, weights, paths, rounds, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, __file__, "--worker", kind, cfg, weights,
                          str(rounds), str(threads), *paths], env=env, capture_output=True,
                         text=True)
    if out.returncode:
        raise SystemExit(f"{kind} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_map(n_images=5000, per_image=100, classes=80, coco=False, seed=0):
    from pydarknet.eval import Detections
    from pydarknet.eval.darknet_map import MapAccumulator
    rng = np.random.default_rng(seed)
    truths, dets = [], []
    for _ in range(n_images):
        m = int(rng.integers(1, 15))
        t = np.concatenate([rng.integers(0, classes, (m, 1)), rng.uniform(0.2, 0.8, (m, 2)),
                            rng.uniform(0.05, 0.3, (m, 2))], 1)
        src = t[rng.integers(0, m, per_image)]
        jitter = rng.normal(0, 0.05, (per_image, 4)) * [1, 1, 0.3, 0.3]
        boxes = np.abs(src[:, 1:] + jitter).astype(np.float32)
        probs = np.zeros((per_image, classes), np.float32)
        cls = np.where(rng.uniform(size=per_image) < 0.7, src[:, 0].astype(int),
                       rng.integers(0, classes, per_image))
        probs[np.arange(per_image), cls] = rng.uniform(0.005, 1, per_image)
        dets.append(Detections(boxes, probs.max(1), probs, np.zeros(per_image, np.int32),
                               np.arange(per_image), (640, 480)))
        truths.append(t)
    t0 = time.perf_counter()
    acc = MapAccumulator(classes, 0.5, 0.25)
    for d, t in zip(dets, truths):
        acc.add_detections(d, t)
    out = {"match": time.perf_counter() - t0}
    for points in (0, 11, 101):
        t0 = time.perf_counter()
        r = acc.result(points)
        out[points] = (time.perf_counter() - t0, r["map"], r["detections"])
    if coco:
        from pydarknet.eval.coco import coco_evaluate
        t0 = time.perf_counter()
        c = coco_evaluate(truths, dets, [str(i) for i in range(classes)])
        out["coco"] = (time.perf_counter() - t0, c["AP50"])
    return out


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        kind, cfg, weights, rounds, threads = sys.argv[2:7]
        return worker(kind, cfg, weights, sys.argv[7:], int(rounds), int(threads))
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--coco", action="store_true", help="also time pycocotools on the mAP data")
    ap.add_argument("--skip-pipeline", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import warnings
    warnings.simplefilter("ignore")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="pydarknet-detect-bench-"))
    if not args.skip_pipeline:
        paths = synthetic_images(str(tmp), args.images)
        text = (ROOT / "cfg" / "yolov4-tiny.cfg").read_text()
        text = re.sub(r"(?m)^width=\d+", f"width={SIZE}", text)
        text = re.sub(r"(?m)^height=\d+", f"height={SIZE}", text)
        cfg = tmp / "yolov4-tiny.cfg"
        cfg.write_text(text)
        weights = tmp / "yolov4-tiny.weights"
        make_weights(cfg, weights, paths)
        print(f"yolov4-tiny {SIZE}x{SIZE}, {args.images} JPEGs 640x480 x {args.rounds} rounds, "
              f"{args.threads} threads, thresh {THRESH}, nms {NMS}")
        print(f"{'pipeline':<22}{'images/s':>9}{'ms/img':>8}{'read':>7}{'pre':>7}{'fwd':>7}"
              f"{'post':>7}{'boxes/img':>10}{'pairs/img':>10}")
        res = {}
        for kind in ("pydarknet", "pydarknet-pipelined", "opencv"):
            r = measure(kind, str(cfg), str(weights), paths, args.rounds, args.threads)
            res[kind] = r
            parts = "".join(f"{r[k]:7.1f}" if k in r else f"{'-':>7}"
                            for k in ("read_ms", "pre_ms", "forward_ms", "post_ms"))
            print(f"{kind:<22}{r['images_per_s']:9.2f}{r['ms']:8.1f}{parts}"
                  f"{r['boxes']:10.1f}{r['detections'] if kind != 'opencv' else float('nan'):10.1f}")
        cv_rate = res["opencv"]["images_per_s"]
        print(f"pydarknet / OpenCV images/s: sequential "
              f"{res['pydarknet']['images_per_s'] / cv_rate:.2f}, "
              f"pipelined {res['pydarknet-pipelined']['images_per_s'] / cv_rate:.2f}")
    print("\nDarknet mAP, 5000 images x 100 detections, 80 classes:")
    r = bench_map(coco=args.coco)
    print(f"  matching detections to truths, TP/FP at 0.25 (all images): {r['match']:.2f} s")
    for points in (0, 11, 101):
        t, m, n = r[points]
        print(f"  -points {points:<3}: ranking + AP {t:.2f} s, total {r['match'] + t:.2f} s "
              f"(mAP {m:.4f}, {n} ranked detections)")
    if "coco" in r:
        print(f"  pycocotools COCOeval (all 12 metrics): {r['coco'][0]:.2f} s "
              f"(AP50 {r['coco'][1]:.4f})")


if __name__ == "__main__":
    main()
