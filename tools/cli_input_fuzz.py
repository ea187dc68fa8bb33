"""Broken Darknet-layout inputs through the detector commands: each must run (skipping and
reporting what it cannot use) or stop with a message that says what to fix, never a Python
traceback or a hang.

    python tools/cli_input_fuzz.py 0 300 [--keep DIR]
    python tools/cli_input_fuzz.py 0 300 --classifier

Each seed makes a small valid detector set (shapes images, labels, train and valid lists,
.data and .names files, a tiny cfg with its weights), breaks one to three of its files (the
.data file: a key deleted, emptied or pointed at a folder, a missing file or a binary file,
classes not a number, CRLF, a BOM, non-UTF-8 bytes; the names and list files: emptied, cut,
lines doubled, blank, made non-UTF-8 or given a NUL byte or a '/', paths made relative or
missing; a label file: garbage, NaN, huge numbers; an image: truncated, empty, text, grey,
RGBA or 16-bit; the weights: cut or emptied; the cfg: cut; in 3 seeds of 10 also where
the outputs go: the backup folder a file, backup= or results= under a file) and runs one
command on them: detector map, valid, test (images on
standard input), recall, calc_anchors, data check, or one training iteration. A traceback,
a hang (60 s) or a crash is printed with the seed, the breakage and the end of the output.
`--classifier`: a classifier set (the class in each file name, a labels= file) through
classifier predict, valid, validcrop, label, data check or one training iteration.
"""

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import cv2
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent

sys.path.insert(0, str(ROOT / "tests"))
from test_recall import CFG as DETECTOR  # noqa: E402  (the tests' small [yolo] detector)

# ... with what one training iteration needs
CFG = DETECTOR.replace("[net]\n", "[net]\nbatch=2\nsubdivisions=1\nlearning_rate=0.001\n"
                                   "max_batches=1\npolicy=constant\n", 1)

from test_classifier_valid import CFG as CLASSIFIER  # noqa: E402  (a small classifier)

# ... for 3 classes, with a softmax and what one training iteration needs
CLASSIFIER_CFG = CLASSIFIER.replace("[net]\n", "[net]\nbatch=2\nsubdivisions=1\n"
                                    "learning_rate=0.001\nmax_batches=1\npolicy=constant\n",
                                    1).replace("filters=5\n", "filters=3\n") + "\n[softmax]\n"

COMMANDS = ["map", "valid", "test", "recall", "calc_anchors", "check", "train"]
CLASSIFIER_COMMANDS = ["predict", "valid", "validcrop", "label", "check", "train"]
EDGE_TEXTS = [b"", b"x", b"-1", b"0", b"1e9", b"nan", b"\xff\xfe\x00bad", b"2 3",
              b"/nonexistent/file", b"../up", b" 7 ", b"\x00"]


def make_set(folder):
    from pydarknet.data import make_shapes_detection
    info = make_shapes_detection(folder / "set", train=4, valid=3, size=(64, 48), classes=2,
                                 count=(1, 2), fmt="png")
    from darknet_map_fuzz import random_network
    (folder / "d.cfg").write_text(CFG)
    random_network(np.random.default_rng(0), CFG).save_weights(str(folder / "d.weights"))
    (folder / "backup").mkdir()
    data = (f"classes = 2\ntrain = {info['train']}\nvalid = {info['valid']}\n"
            f"names = {info['names']}\nbackup = {folder / 'backup'}\n")
    (folder / "obj.data").write_text(data)
    return info


def make_classifier_set(folder):
    from pydarknet.data import make_shapes_classifier
    from darknet_map_fuzz import random_network
    info = make_shapes_classifier(folder / "set", train=4, valid=3, size=40, classes=3)
    (folder / "d.cfg").write_text(CLASSIFIER_CFG)
    random_network(np.random.default_rng(0), CLASSIFIER_CFG).save_weights(
        str(folder / "d.weights"))
    (folder / "backup").mkdir()
    (folder / "obj.data").write_text(
        f"classes = 3\ntrain = {info['train']}\nvalid = {info['valid']}\n"
        f"labels = {info['labels']}\nnames = {info['names']}\nbackup = {folder / 'backup'}\n"
        "top = 2\n")
    return info


def _lines(path):
    return pathlib.Path(path).read_bytes().split(b"\n")


def break_data_file(rng, folder, info):
    path = folder / "obj.data"
    lines = [ln for ln in _lines(path) if ln]
    i = int(rng.integers(len(lines)))
    key = lines[i].split(b"=")[0].strip()
    how = int(rng.integers(7))
    if how == 0:
        del lines[i]
        what = f"obj.data: {key.decode()} deleted"
    elif how == 1:
        value = [b"", str(folder).encode(), b"/nonexistent/x.txt", str(folder / "d.weights")
                 .encode()][int(rng.integers(4))]
        lines[i] = key + b" = " + value
        what = f"obj.data: {key.decode()} = {value[:40]!r}"
    elif how == 2:
        value = EDGE_TEXTS[int(rng.integers(len(EDGE_TEXTS)))]
        lines[i] = key + b" = " + value
        what = f"obj.data: {key.decode()} = {value!r}"
    elif how == 3:
        lines = [ln + b"\r" for ln in lines]
        what = "obj.data: CRLF"
    elif how == 4:
        lines[0] = b"\xef\xbb\xbf" + lines[0]
        what = "obj.data: BOM"
    elif how == 5:
        lines.insert(int(rng.integers(len(lines) + 1)), lines[i])
        what = f"obj.data: {key.decode()} twice"
    else:
        lines[i] = lines[i].replace(b"=", b"")
        what = f"obj.data: '=' of {key.decode()} gone"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return what


def break_list(rng, path):
    lines = [ln for ln in _lines(path) if ln]
    how = int(rng.integers(9))
    name = pathlib.Path(path).name
    if how == 0:
        lines = []
        what = "emptied"
    elif how == 1:
        lines = lines[: int(rng.integers(len(lines)))] if lines else lines
        what = "cut"
    elif how == 2:
        lines = lines + lines
        what = "lines doubled"
    elif how == 3:
        lines.insert(int(rng.integers(len(lines) + 1)), [b"", b"   ", b"\t"][int(rng.integers(3))])
        what = "a blank line"
    elif how == 4:
        i = int(rng.integers(len(lines))) if lines else 0
        if lines:
            lines[i] = lines[i] + b"\xff"
        what = "a non-UTF-8 byte"
    elif how == 5:
        lines = [ln + b"\r" for ln in lines]
        what = "CRLF"
    elif how == 6:
        i = int(rng.integers(len(lines))) if lines else 0
        if lines:
            lines[i] = [b"missing.png", b"/nonexistent/a.png", os.path.dirname(lines[i]),
                        os.path.relpath(lines[i])][int(rng.integers(4))]
        what = "a path made relative, missing or a folder"
    elif how == 7:
        if lines:
            lines[int(rng.integers(len(lines)))] += b"\x00x"
        what = "a NUL byte"
    else:
        if lines:
            lines[int(rng.integers(len(lines)))] += b"/sub"
        what = "a '/' added to a line"
    pathlib.Path(path).write_bytes(b"\n".join(lines) + (b"\n" if lines else b""))
    return f"{name}: {what}"


def break_label(rng, image):
    path = pathlib.Path(image).with_suffix(".txt")
    lines = [ln for ln in _lines(path) if ln] if path.exists() else []
    choice = [b"0 0.5 0.5 nan 0.2", b"1 1e30 0.5 0.2 0.2", b"garbage", b"\xff\xfe",
              b"5 0.5 0.5 0.2 0.2", b"0 0.5 0.5 0.2", b"-1 0.5 0.5 0.2 0.2",
              b"0 0.5 0.5 0 0", b"0 2 2 0.1 0.1", b"0 0.5 0.5 0.2 0.2 0.9"]
    line = choice[int(rng.integers(len(choice)))]
    lines.insert(int(rng.integers(len(lines) + 1)), line)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return f"{path.name}: line {line!r}"


def break_image(rng, image):
    path = pathlib.Path(image)
    how = int(rng.integers(6))
    data = path.read_bytes()
    if how == 0:
        path.write_bytes(data[: int(rng.integers(1, max(len(data), 2)))])
        what = "truncated"
    elif how == 1:
        path.write_bytes(b"")
        what = "empty"
    elif how == 2:
        path.write_bytes(b"not an image\n")
        what = "text"
    else:
        img = cv2.imread(str(path))
        if img is None:         # broken already by an earlier breakage of this seed
            return f"{path.name}: (unreadable already)"
        if how == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            what = "grey"
        elif how == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
            what = "RGBA"
        else:
            img = img.astype(np.uint16) * 257
            what = "16-bit"
        cv2.imwrite(str(path), img)
    return f"{path.name}: {what}"


def break_binary(rng, path):
    data = pathlib.Path(path).read_bytes()
    cut = [0, 3, 20, len(data) // 2, len(data) - 4][int(rng.integers(5))]
    pathlib.Path(path).write_bytes(data[:cut])
    return f"{pathlib.Path(path).name}: cut to {cut} bytes"


def break_outputs(rng, folder):
    """Where a command writes made unusable: the backup folder a file, or the .data file's
    backup= or results= under a file (a folder that cannot be made)."""
    blocker = folder / "a_file"
    blocker.write_text("")
    how = int(rng.integers(3))
    if how == 0:
        shutil.rmtree(folder / "backup")
        (folder / "backup").write_text("")
        return "backup folder: a file"
    key = ["backup", "results"][how - 1]
    path = folder / "obj.data"
    lines = [ln for ln in _lines(path) if ln and not ln.startswith(key.encode())]
    lines.append(f"{key} = {blocker / key}".encode())
    path.write_bytes(b"\n".join(lines) + b"\n")
    return f"obj.data: {key} under a file"


def break_something(rng, folder, info, classifier=False):
    images = [ln.strip().decode(errors="replace") for name in ("train.txt", "valid.txt")
              for ln in (folder / "set" / name).read_bytes().split(b"\n")]
    images = [p for p in images if p and os.path.isfile(p)] or [info["train"]]
    kind = int(rng.integers(7))
    if kind == 0:
        return break_data_file(rng, folder, info)
    if kind == 1:
        return break_list(rng, [info["train"], info["valid"], info["names"]]
                          [int(rng.integers(3))])
    if kind == 2:
        if classifier:         # no label files: the class is in the file name
            return break_list(rng, info["labels"])
        return break_label(rng, images[int(rng.integers(len(images)))])
    if kind == 3:
        return break_image(rng, images[int(rng.integers(len(images)))])
    if kind == 4:
        return break_binary(rng, folder / "d.weights")
    if kind == 5:
        cfg = CLASSIFIER_CFG if classifier else CFG
        text = cfg[: int(rng.integers(10, len(cfg)))]
        (folder / "d.cfg").write_text(text)
        return f"d.cfg cut to {len(text)} characters"
    return break_list(rng, info["names"])


def command_line(command, folder, classifier=False):
    """(argv, standard input) of a command on the set in ``folder``."""
    base = [sys.executable, "-m", "pydarknet"]
    files = [str(folder / "obj.data"), str(folder / "d.cfg"), str(folder / "d.weights")]
    if command == "check":
        return base + ["data", "check", str(folder / "obj.data")], None
    if classifier:
        if command == "train":
            return base + ["classifier", "train", *files[:2], "-dont_show"], None
        images = sorted((folder / "set").rglob("*.png"))[:2] if command == "predict" else []
        return base + ["classifier", command, *files, *map(str, images)], None
    if command == "train":
        return base + ["train", str(folder / "d.cfg"), str(folder / "obj.data"),
                       "--max-batches", "1", "--dont_show"], None
    if command == "calc_anchors":
        return base + ["detector", "calc_anchors", str(folder / "obj.data"), "-num_of_clusters",
                       "3", "-width", "64", "-height", "64", "-dont_show"], None
    if command == "test":
        valid = folder / "set" / "valid.txt"
        stdin = valid.read_bytes() if valid.exists() else b""
        return base + ["detector", "test", *files, "-dont_show", "-ext_output"], stdin
    return base + ["detector", command, *files], None


VERBOSE = False


def run_seed(seed, keep=None, classifier=False):
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(keep or tmp)
        if keep and folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        info = make_classifier_set(folder) if classifier else make_set(folder)
        broken = [break_something(rng, folder, info, classifier)
                  for _ in range(int(rng.integers(1, 4)))]
        # (drawn apart, so that a seed's other breakages stay the ones they were)
        outputs = np.random.default_rng([seed, 1])
        if outputs.random() < 0.3:
            broken.append(break_outputs(outputs, folder))
        commands = CLASSIFIER_COMMANDS if classifier else COMMANDS
        command = commands[int(rng.integers(len(commands)))]
        argv, stdin = command_line(command, folder, classifier)
        try:
            run = subprocess.run(argv, input=stdin, cwd=folder, capture_output=True,
                                 timeout=60)
        except subprocess.TimeoutExpired:
            return command, broken, "hang (60 s)"
        err = run.stderr.decode(errors="replace")
        if VERBOSE:
            last = (err.strip().splitlines() or [""])[-1][:160]
            print(f"  seed {seed} {command} [{'; '.join(broken)}]: rc {run.returncode} {last}")
        if "Traceback" in err or run.returncode < 0 or run.returncode not in (0, 1, 2):
            return command, broken, f"rc {run.returncode}:\n{err[-1500:]}"
        return command, broken, None


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("first", type=int)
    p.add_argument("last", type=int)
    p.add_argument("--keep", type=pathlib.Path, help="keep the last seed's files here")
    p.add_argument("--verbose", action="store_true", help="a line for every seed")
    p.add_argument("--classifier", action="store_true",
                   help="a classifier set (class in the file name, labels= file) through "
                        "classifier predict/valid/validcrop/label, data check and training")
    args = p.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    bad = 0
    for seed in range(args.first, args.last):
        command, broken, problem = run_seed(seed, args.keep, args.classifier)
        if problem:
            bad += 1
            print(f"seed {seed} {command} [{'; '.join(broken)}]: {problem}", flush=True)
    print(f"{args.last - args.first} seeds, {bad} failing")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
