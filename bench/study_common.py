"""Shared code of the Mish-paper studies (bench/activation_study.py, bench/depth_study.py):
the study's small CNN as a Darknet cfg, one training run through pydarknet's classifier path
(Trainer + make_loader, as `pydarknet classifier train`; top-1 by
pydarknet.eval.classify.validate, as `classifier valid`), a tiny generated data set for tests,
and the table / plot / JSON writers.

The network (the paper's CIFAR-10 CNN has six conv layers with batch norm): ``depth`` 3x3
convolutions with batch_normalize in three stages of widths w, 2w, 4w, a 2x2 maxpool after
the first two stages, then a 1x1 linear conv to the classes, [avgpool] and [softmax]. For
28x28 grey images (Fashion-MNIST) by default.
"""

import json
import math
import os
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Every activation of the paper's Table 1 that Darknet has. SoftPlus is not one: AB's darknet
# (include/darknet.h, enum ACTIVATION; src/activations.c get_activation) has softplus only as
# the helper inside mish, and pydarknet's ACTIVATIONS follow it.
TABLE1_ACTIVATIONS = ("mish", "swish", "gelu", "relu", "elu", "leaky", "selu", "tanh",
                      "logistic", "hard_mish")


def stage_depths(depth):
    """How ``depth`` conv layers split over the three stages (earlier stages get the rest)."""
    if depth < 3:
        raise ValueError("the study network needs at least 3 conv layers (one per stage)")
    base, extra = divmod(depth, 3)
    return [base + (1 if i < extra else 0) for i in range(3)]


def study_cfg(activation="mish", depth=6, width=16, classes=10, size=28, channels=1,
              batch=128, max_batches=500, learning_rate=0.05, momentum=0.9, decay=0.0005,
              burn_in=0, min_crop=None, max_crop=None, flip=1):
    """The study network as Darknet cfg text. Learning rate: poly (power 4) over max_batches,
    as Darknet's small classifier cfgs. Augmentation: a random crop of the image resized with
    its side in [min_crop, max_crop] (default [size, size + 4]: a shift of a few pixels) and a
    horizontal flip."""
    min_crop = size if min_crop is None else min_crop
    max_crop = size + 4 if max_crop is None else max_crop
    lines = ["[net]", f"batch={batch}", "subdivisions=1", f"width={size}", f"height={size}",
             f"channels={channels}", f"momentum={momentum}", f"decay={decay}",
             f"learning_rate={learning_rate}", "policy=poly", "power=4",
             f"max_batches={max_batches}", f"burn_in={burn_in}", f"min_crop={min_crop}",
             f"max_crop={max_crop}", "aspect=1", "angle=0", "hue=0", "saturation=1",
             "exposure=1", f"flip={flip}", ""]
    for stage, n in enumerate(stage_depths(depth)):
        for _ in range(n):
            lines += ["[convolutional]", "batch_normalize=1", f"filters={width << stage}",
                      "size=3", "stride=1", "pad=1", f"activation={activation}", ""]
        if stage < 2:
            lines += ["[maxpool]", "size=2", "stride=2", ""]
    lines += ["[convolutional]", f"filters={classes}", "size=1", "stride=1", "pad=1",
              "activation=linear", "", "[avgpool]", "", "[softmax]", "groups=1", ""]
    return "\n".join(lines)


def write_cfg(path, **kw):
    with open(path, "w") as f:
        f.write(study_cfg(**kw))
    return path


# -- data ------------------------------------------------------------------------------------

def read_data(datafile):
    """The .data file's train/valid lists and class names, paths read once."""
    from pydarknet.labels import read_data_file, read_list
    data = read_data_file(datafile)
    names = read_list(data.get("labels") or data["names"], what="labels file")
    return {"train": read_list(data["train"], "training image list"),
            "valid": read_list(data["valid"], "validation image list"), "names": names}


def subset(paths, n, seed=0):
    """``n`` of the paths (all when n is None or larger), the same ones for a seed."""
    if not n or n >= len(paths):
        return list(paths)
    idx = np.random.default_rng(seed).permutation(len(paths))[:n]
    return [paths[i] for i in sorted(idx)]


def make_tiny_dataset(folder, per_class=40, valid_per_class=10, size=28, seed=0):
    """A small grey classifier data set in Darknet's layout (for tests and development):
    three classes (a bar, a ring, a cross, drawn with noise and jitter), PNGs whose file names
    hold the class, train/valid lists, a labels file and a .data file. Returns the .data path."""
    import cv2
    names = ["bar", "ring", "cross"]
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(folder, "images"), exist_ok=True)
    lists = {"train": [], "valid": []}
    for split, count in (("train", per_class), ("valid", valid_per_class)):
        for k in range(count):
            for c, name in enumerate(names):
                img = rng.integers(0, 60, (size, size)).astype(np.uint8)
                cx, cy = (size // 2 + int(v) for v in rng.integers(-3, 4, 2))
                r = int(rng.integers(size // 5, size // 3))
                if c == 0:
                    cv2.rectangle(img, (cx - r, cy - 2), (cx + r, cy + 2), 220, -1)
                elif c == 1:
                    cv2.circle(img, (cx, cy), r, 220, 2)
                else:
                    cv2.line(img, (cx - r, cy - r), (cx + r, cy + r), 220, 2)
                    cv2.line(img, (cx - r, cy + r), (cx + r, cy - r), 220, 2)
                path = os.path.join(folder, "images", f"{split}{k:04d}_{name}.png")
                cv2.imwrite(path, img)
                lists[split].append(path)
    for split, paths in lists.items():
        with open(os.path.join(folder, f"{split}.list"), "w") as f:
            f.write("\n".join(paths) + "\n")
    with open(os.path.join(folder, "labels.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    datafile = os.path.join(folder, "tiny.data")
    with open(datafile, "w") as f:
        f.write(f"classes={len(names)}\ntrain={folder}/train.list\nvalid={folder}/valid.list\n"
                f"labels={folder}/labels.txt\nnames={folder}/labels.txt\ntop=2\n"
                f"backup={folder}/backup\n")
    return datafile


# -- one run ---------------------------------------------------------------------------------

def test_loss(network, paths, names, batch_size=100):
    """Mean cross-entropy of the network's softmax on labelled images (the classify module's
    pre-processing; the same images validate counts)."""
    from pydarknet.eval.classify import _channels, _scores, classifier_input
    from pydarknet.image import read_bgr
    from pydarknet.labels import class_from_path
    n, channels = network.net, _channels(network)
    total, count = 0.0, 0
    for i in range(0, len(paths), batch_size):
        chunk = [(p, class_from_path(p, names)) for p in paths[i:i + batch_size]]
        chunk = [(p, c) for p, c in chunk if c is not None]
        if not chunk:
            continue
        x = np.stack([classifier_input(read_bgr(p, channels), n.width, n.height, channels)
                      for p, _ in chunk])
        s = _scores(network, x)
        probs = s[np.arange(len(chunk)), [c for _, c in chunk]].astype(np.float64)
        total += float(-np.log(np.maximum(probs, 1e-12)).sum())
        count += len(chunk)
    return total / max(count, 1)


def train_and_test(cfg_options, data, out_dir, seed, train_images=None, valid_images=None,
                   epochs=1, iterations=None, eval_every=None, device="cpu", eval_batch=100,
                   log=None):
    """One study run through pydarknet's classifier training path: the study cfg
    (:func:`study_cfg` with ``cfg_options``; its max_batches, which the poly learning rate
    follows, is the run's length) trained by ``Trainer`` with ``make_loader`` (what
    `classifier train` runs) for ``iterations`` (default: ``epochs`` over the training subset)
    and, every ``eval_every`` iterations (default: once per epoch) and at the end, test top-1
    by ``pydarknet.eval.classify.validate`` (what `classifier valid` runs). ``data``:
    :func:`read_data`'s dict. Returns a JSON-able record of the run."""
    from pydarknet.data import make_loader
    from pydarknet.eval.classify import validate
    from pydarknet.train.loop import Trainer

    train = subset(data["train"], train_images, seed=0)     # one subset for every run
    valid = subset(data["valid"], valid_images, seed=0)
    names = data["names"]
    batch = int(cfg_options.get("batch", 128))
    per_epoch = max(1, math.ceil(len(train) / batch))
    total = iterations or per_epoch * epochs
    os.makedirs(out_dir, exist_ok=True)
    options = dict(cfg_options, max_batches=total, classes=len(names))
    cfg_path = write_cfg(os.path.join(out_dir, "study.cfg"), **options)
    curve = []

    def top1(net):
        r = validate(net, valid, names, top=1, threads=2, batch_size=eval_batch)
        curve.append({"iteration": net.iteration, "epoch": round(net.seen / len(train), 4),
                      "top1": r["top1"]})
        return r["top1"]

    def loader(net, loader_seed):
        return make_loader(net, train, seed=loader_seed, labels=names)

    t0 = time.time()
    trainer = Trainer(cfg_path, loader, backup=out_dir, seed=seed, map_fn=top1,
                      map_every=eval_every or per_epoch, log=log or (lambda *a, **k: None),
                      max_batches=total, device=device, last_every=10 ** 9)
    trainer.run()
    seconds = time.time() - t0
    net = trainer.net
    return {"options": {k: v for k, v in options.items()}, "seed": seed,
            "iterations": net.iteration, "batch": batch, "train_images": len(train),
            "test_images": len(valid), "epochs": round(net.seen / len(train), 4),
            "top1": curve[-1]["top1"] if curve else None,
            "test_loss": test_loss(net, valid, names, eval_batch),
            "train_avg_loss": float(trainer.avg_loss), "seconds": round(seconds, 1),
            "curve": curve, "device": device}
