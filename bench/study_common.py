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
    curve, losses = [], []

    def top1(net):
        r = validate(net, valid, names, top=1, threads=2, batch_size=eval_batch)
        curve.append({"iteration": net.iteration, "epoch": round(net.seen / len(train), 4),
                      "top1": r["top1"]})
        losses.append(r["loss"])
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
    if net.iteration < total:      # the Trainer stops early on SIGINT/SIGTERM and returns
        raise RuntimeError(f"{out_dir}: stopped at iteration {net.iteration} of {total}; "
                           "the run is not recorded")
    return {"options": {k: v for k, v in options.items()}, "seed": seed,
            "iterations": net.iteration, "batch": batch, "train_images": len(train),
            "test_images": len(valid), "epochs": round(net.seen / len(train), 4),
            "top1": curve[-1]["top1"] if curve else None,
            "test_loss": losses[-1] if losses else None,   # validate's, with the top-1
            "train_avg_loss": float(trainer.avg_loss), "seconds": round(seconds, 1),
            "curve": curve, "device": device}


# -- many runs -------------------------------------------------------------------------------

def _run_job(job):
    """One run in a worker process (``job``: train_and_test's arguments and the thread count)."""
    from pydarknet.backend import get_backend
    if job["device"] == "cpu":
        get_backend("cpu").set_num_threads(job["threads"])
    record = train_and_test(job["cfg_options"], read_data(job["datafile"]), job["out_dir"],
                            job["seed"], train_images=job["train_images"],
                            valid_images=job["test_images"], epochs=job["epochs"],
                            device=job["device"])
    record["key"] = job["key"]
    return record


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def run_jobs(jobs, json_path, settings, jobs_at_once=1, log=print, report_only=False):
    """Runs ``jobs`` (dicts for :func:`_run_job`, each with a unique ``key``) in worker
    processes, ``jobs_at_once`` at a time, appending each finished run to the JSON at
    ``json_path`` as it comes (a run already there under the same settings is not run again:
    a stopped study resumes).
    ``report_only``: run nothing, return what the JSON holds. Returns every record of the
    JSON."""
    records = []
    if os.path.exists(json_path):
        with open(json_path) as f:
            old = json.load(f)
        if old.get("settings") == settings:
            records = old["runs"]
    done = {r["key"] for r in records}
    todo = [j for j in jobs if j["key"] not in done]
    if done:
        log(f"{len(done)} runs already in {json_path}; {len(todo)} to go")
    if report_only:
        return records

    def save():
        tmp = json_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"settings": settings, "runs": records}, f, indent=1)
        os.replace(tmp, json_path)

    def finished(record):
        records.append(record)
        save()
        log(f"{record['key']}: top-1 {record['top1'] * 100:.2f}%, test loss "
            f"{record['test_loss']:.4f}, {record['seconds']:.0f} s")

    if not todo:
        return records
    # Runs go to worker processes started after the thread limits are set: OpenBLAS reads
    # them once, when loaded, and threads spinning for a busy core make a run several times
    # slower (without threadpoolctl nothing else limits BLAS).
    threads = str(max(j["threads"] for j in todo))
    saved = {k: os.environ.get(k) for k in THREAD_VARIABLES}
    os.environ.update({k: threads for k in THREAD_VARIABLES})
    try:
        import concurrent.futures as cf
        import multiprocessing as mp
        with cf.ProcessPoolExecutor(max(1, jobs_at_once),
                                    mp_context=mp.get_context("spawn")) as pool:
            for fut in cf.as_completed([pool.submit(_run_job, j) for j in todo]):
                finished(fut.result())
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return records


def group_stats(records, key):
    """{group: {mean/std of top-1, mean test loss, runs, mean curve}} grouped by ``key(r)``."""
    groups = {}
    for r in records:
        groups.setdefault(key(r), []).append(r)
    out = {}
    for g, rs in groups.items():
        top1 = np.array([r["top1"] for r in rs], np.float64)
        curves = [r["curve"] for r in rs]
        n = min(len(c) for c in curves)
        acc = np.array([[p["top1"] for p in c[:n]] for c in curves], np.float64)
        out[g] = {"top1_mean": float(top1.mean()),
                  "top1_std": float(top1.std(ddof=1)) if len(rs) > 1 else 0.0,
                  "loss_mean": float(np.mean([r["test_loss"] for r in rs])), "runs": len(rs),
                  "epochs": [float(np.mean([c[i]["epoch"] for c in curves])) for i in range(n)],
                  "curve_mean": acc.mean(0).tolist(), "curve_min": acc.min(0).tolist(),
                  "curve_max": acc.max(0).tolist(),
                  "seconds_mean": float(np.mean([r["seconds"] for r in rs]))}
    return out


def machine_note():
    """One line about the machine the numbers came from."""
    import platform
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f} when the "
            f"table was written, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


# -- plots (OpenCV + numpy; matplotlib is not a dependency) ----------------------------------

PALETTE = [(180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148),
           (75, 86, 140), (194, 119, 227), (127, 127, 127), (34, 189, 188), (207, 190, 23),
           (0, 0, 0)]      # BGR


def plot_lines(path, series, title, xlabel, ylabel, size=(960, 600)):
    """A line plot: ``series`` = {label: (xs, ys, lows or None, highs or None)}; a band is
    drawn between lows and highs. Written as PNG at ``path``."""
    import cv2
    w, h = size
    left, right, top, bottom = 80, 200, 50, 60
    img = np.full((h, w, 3), 255, np.uint8)
    xs_all = np.concatenate([np.asarray(s[0], float) for s in series.values()])
    ys_all = np.concatenate([np.asarray(v, float) for s in series.values()
                             for v in (s[1], s[2], s[3]) if v is not None])
    x0, x1 = float(xs_all.min()), float(xs_all.max())
    if x1 == x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    y0, y1 = float(ys_all.min()), float(ys_all.max())
    pad = max((y1 - y0) * 0.08, 1e-3)
    y0, y1 = y0 - pad, y1 + pad

    def px(x, y):
        return (int(round(left + (x - x0) / (x1 - x0) * (w - left - right))),
                int(round(h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom))))

    font = cv2.FONT_HERSHEY_SIMPLEX
    for i in range(6):                                  # grid and tick labels
        yv = y0 + (y1 - y0) * i / 5
        a, b = px(x0, yv), px(x1, yv)
        cv2.line(img, a, b, (225, 225, 225), 1)
        cv2.putText(img, f"{yv:.3g}", (5, a[1] + 5), font, 0.45, (60, 60, 60), 1, cv2.LINE_AA)
    ticks = sorted(set(np.round(xs_all, 3)))
    if len(ticks) > 12:
        ticks = list(np.linspace(x0, x1, 7))
    for xv in ticks:
        a, b = px(xv, y0), px(xv, y1)
        cv2.line(img, a, b, (235, 235, 235), 1)
        cv2.putText(img, f"{xv:.3g}", (a[0] - 12, h - bottom + 20), font, 0.45, (60, 60, 60), 1,
                    cv2.LINE_AA)
    cv2.rectangle(img, px(x0, y1), px(x1, y0), (0, 0, 0), 1)
    for k, (label, (xs, ys, lo, hi)) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        if lo is not None and hi is not None and len(xs) > 1:
            poly = [px(x, y) for x, y in zip(xs, hi)] + [px(x, y) for x, y in
                                                           zip(xs[::-1], lo[::-1])]
            band = img.copy()
            cv2.fillPoly(band, [np.array(poly, np.int32)], color)
            img = cv2.addWeighted(band, 0.18, img, 0.82, 0)
        pts = np.array([px(x, y) for x, y in zip(xs, ys)], np.int32)
        cv2.polylines(img, [pts], False, color, 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(img, tuple(int(v) for v in p), 3, color, -1, cv2.LINE_AA)
        ly = top + 10 + 22 * k
        cv2.line(img, (w - right + 15, ly), (w - right + 45, ly), color, 3)
        cv2.putText(img, str(label), (w - right + 52, ly + 5), font, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
    cv2.putText(img, title, (left, 30), font, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, xlabel, (left + (w - left - right) // 2 - 40, h - 15), font, 0.5,
                (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, ylabel, (5, top - 12), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(path, img)
    return path


def add_common_arguments(p, default_out, train_images, test_images, epochs, seeds):
    """The flags both studies share."""
    p.add_argument("--data", default="data/fashion-mnist/obj.data",
                   help="a classifier .data file (train, valid, labels); `make fashion-mnist` "
                        "makes the default")
    p.add_argument("--train-images", type=int, default=train_images,
                   help="a fixed random subset of the training list (0: all)")
    p.add_argument("--test-images", type=int, default=test_images,
                   help="a fixed random subset of the valid list (0: all)")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--seeds", type=int, default=seeds, help="runs per setting (seeds 1..N)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--width", type=int, default=16, help="filters of the first stage")
    p.add_argument("--learning-rate", type=float, default=0.1)
    p.add_argument("--jobs", type=int, default=2, help="runs at once (processes)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    p.add_argument("--gpu", type=int, help="train on this CUDA device (one job at a time)")
    p.add_argument("--out", default=default_out,
                   help="results: OUT.md, OUT.json, OUT.png (OUT.json also resumes a study)")
    p.add_argument("--work", default="backup/study", help="checkpoints and logs of the runs")
    p.add_argument("--note", default="", help="a line about the machine for the table")
    p.add_argument("--report-only", action="store_true",
                   help="write the table and plot from the runs OUT.json holds; run nothing")


def settings_of(a, **extra):
    """The settings a study's JSON is valid for (a rerun with others starts over)."""
    return dict({"data": os.path.abspath(a.data), "train_images": a.train_images,
                 "test_images": a.test_images, "epochs": a.epochs, "batch": a.batch,
                 "width": a.width, "learning_rate": a.learning_rate,
                 "device": "cpu" if a.gpu is None else f"cuda:{a.gpu}"}, **extra)


def job(a, key, cfg_options, seed):
    device = "cpu" if a.gpu is None else f"cuda:{a.gpu}"
    return {"key": key, "cfg_options": dict(cfg_options, batch=a.batch, width=a.width,
                                            learning_rate=a.learning_rate),
            "datafile": a.data, "out_dir": os.path.join(a.work, key), "seed": seed,
            "train_images": a.train_images or None, "test_images": a.test_images or None,
            "epochs": a.epochs, "device": device, "threads": a.threads}


BEGIN, END = "<!-- study table: written by the script -->", "<!-- end of study table -->"


def write_markdown(path, table):
    """Writes ``table`` into ``path`` between the BEGIN/END markers, keeping the text around
    them (the notes that compare with the paper); a new file gets the table alone."""
    block = f"{BEGIN}\n{table.rstrip()}\n{END}"
    text = block + "\n"
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
        if BEGIN in old and END in old:
            text = old[:old.index(BEGIN)] + block + old[old.index(END) + len(END):]
    with open(path, "w") as f:
        f.write(text)
    return path
