"""Data-loader throughput: augmented training images per second, beside the network's own
training speed, so one can see whether the network ever waits for data.

Cases (all on the built-in shapes data set, generated into a temporary folder):
  demo        cfg/demo-shapes.cfg's options and size (160x160 JPEGs -> 128x128, batch 16)
  tiny416     cfg/yolov4-tiny.cfg's options at 416x416 (500x375 JPEGs, batch 64), with and
              without mosaic
For each, the loader's images/s with 1 thread and with the default thread count; with --train,
also the demo net's train_iteration images/s (forward + backward + update) on this CPU.

    python bench/data_loader.py [--batches 20] [--threads N] [--train]
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pydarknet  # noqa: E402
from pydarknet.data import make_loader, make_shapes_detection  # noqa: E402
from pydarknet.data.loader import default_threads  # noqa: E402


def loader_rate(net, train_list, batches, threads, **overrides):
    with make_loader(net, train_list, seed=0, threads=threads, **overrides) as loader:
        loader.next()                                  # warm-up (first prefetch)
        t0 = time.perf_counter()
        n = 0
        for _ in range(batches):
            images, _ = loader.next()
            n += images.shape[0]
        return n / (time.perf_counter() - t0)


def train_rate(net, train_list, iterations):
    with make_loader(net, train_list, seed=0) as loader:
        net.train_iteration(*loader.next())            # warm-up
        t0 = time.perf_counter()
        n = 0
        for _ in range(iterations):
            images, truths = loader.next()
            net.train_iteration(images, truths)
            n += images.shape[0]
        return n / (time.perf_counter() - t0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--threads", type=int, default=default_threads())
    p.add_argument("--train", action="store_true", help="also time the demo net's training")
    p.add_argument("--iterations", type=int, default=5)
    args = p.parse_args(argv)
    print(f"cpus: {os.cpu_count()}, loader threads: {args.threads}")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        small = make_shapes_detection(os.path.join(tmp, "s160"), train=200, valid=0, size=160)
        big = make_shapes_detection(os.path.join(tmp, "s500"), train=100, valid=0,
                                    size=(500, 375))
        print(f"generated 300 images in {time.perf_counter() - t0:.1f} s")
        rows = []
        demo = pydarknet.load(str(ROOT / "cfg" / "demo-shapes.cfg"))
        tiny = pydarknet.load(str(ROOT / "cfg" / "yolov4-tiny.cfg"), width=416, height=416)
        cases = [("demo 128x128", demo, small["train"], {}),
                 ("yolov4-tiny 416x416", tiny, big["train"], {}),
                 ("yolov4-tiny 416 mosaic", tiny, big["train"], {"mosaic_mixup": 3})]
        for name, net, lst, over in cases:
            batches = max(2, args.batches if net is demo else args.batches // 4)
            r1 = loader_rate(net, lst, batches, 1, **over)
            rn = loader_rate(net, lst, batches, args.threads, **over)
            rows.append((name, r1, rn))
        print(f"{'case':26s} {'1 thread':>12s} {f'{args.threads} threads':>12s}   (images/s)")
        for name, r1, rn in rows:
            print(f"{name:26s} {r1:12.0f} {rn:12.0f}")
        if args.train:
            rate = train_rate(demo, small["train"], args.iterations)
            print(f"demo net training (train_iteration, batch {demo.net.batch}): "
                  f"{rate:.1f} images/s -> the loader is {rows[0][2] / rate:.0f}x faster")


if __name__ == "__main__":
    main()
