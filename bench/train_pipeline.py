"""Full training pipeline speed: images/s of training (loading, augmentation, forward,
backward, update) for cfg/demo-shapes.cfg (128x128, batch 16) and cfg/yolov4-tiny.cfg at
416x416 (batch 8, subdivisions 1), each beside the loader's own ceiling (images/s it delivers
with no network attached), on the built-in shapes data set.

    python bench/train_pipeline.py [--iterations 5]
"""

import argparse
import pathlib
import re
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pydarknet  # noqa: E402
from data_loader import loader_rate, train_rate  # noqa: E402
from pydarknet.data import make_shapes_detection  # noqa: E402


def cfg_copy(name, folder, **values):
    text = (ROOT / "cfg" / f"{name}.cfg").read_text()
    for key, value in values.items():
        text = re.sub(rf"(?m)^{key}=\d+", f"{key}={value}", text)
    path = pathlib.Path(folder) / f"{name}.cfg"
    path.write_text(text)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=5)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        small = make_shapes_detection(f"{tmp}/small", train=200, valid=1, size=160, seed=0)
        large = make_shapes_detection(f"{tmp}/large", train=100, valid=1, size=500, seed=0)
        cases = [("demo-shapes 128", cfg_copy("demo-shapes", tmp), small),
                 ("yolov4-tiny 416", cfg_copy("yolov4-tiny", tmp, batch=8, subdivisions=1),
                  large)]
        print(f"{'network':<18}{'train img/s':>12}{'loader img/s':>14}")
        for label, cfg, ds in cases:
            net = pydarknet.load(cfg)
            ceiling = loader_rate(net, ds["train"], batches=max(args.iterations, 5), threads=None)
            rate = train_rate(net, ds["train"], args.iterations)
            print(f"{label:<18}{rate:12.1f}{ceiling:14.1f}")


if __name__ == "__main__":
    main()
