"""pydarknet's detector augmentation against AB Darknet's own load_data_detection (its OpenCV
build), both given the same random draws; with --classifier the classifier's against
load_image_augment_paths (random_augment_image, flip, random_distort_image, resize_image).

    git clone https://github.com/AlexeyAB/darknet dn-cv && cd dn-cv && make LIBSO=1 OPENCV=1
    python tools/darknet_augment_fuzz.py /path/to/dn-cv 0 500
    python tools/darknet_augment_fuzz.py /path/to/dn-cv 0 0 --store 1 3 5 ...   # test oracle

tools/darknet_augment_oracle.c scripts Darknet's random_float/random_gen (and the
rand_uniform_strong, rand_scale, rand_int and rand_uniform that call them); here a scripted
stand-in for numpy's Generator hands pydarknet's data set the same values in its own order,
and fails when pydarknet draws another kind, more or fewer. Each detector seed: a random
image (size, smooth noise), 1-6 boxes inside it, a random network size, jitter, resize,
hue, saturation, exposure, flip and letter_box, random draws. Compared: the truths (as sets,
to 1e-5: Darknet shuffles them) and the image (CHW floats). The image is not expected to be
equal: pydarknet crops and resizes in one cv2.warpAffine where Darknet copies the crop onto
its mean colour and calls cv2.resize, so pixels differ by a few levels where the window is
resized; the tool prints the largest and mean differences (8-bit levels) and flags a seed
whose mean difference exceeds --max-mean (a wrong window, flip or colour would). Blur
(`blur=` 1: the background, boxes kept sharp; more: the whole image, capped by the smallest
box) is drawn too, and mixup (a quarter of the seeds: a second pass over the same image with
its own draws, the two blended and their truths joined); gaussian_noise is not (Darknet draws
it with OpenCV's own generator), nor mosaic (pydarknet's tile window is its documented
choice).
The classifier's crop (rotated, aspect-jittered, scaled, shifted) is sampled in float by
Darknet and from the 8-bit image by pydarknet's warpAffine: a seed is flagged above
--max-mean on average or --max-pixel anywhere.
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile

import cv2
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))


def make_case(rng, folder):
    ih, iw = (int(v) for v in rng.integers(20, 200, 2))
    img = cv2.GaussianBlur(rng.integers(0, 256, (ih, iw, 3), np.uint8), (7, 7), 0)
    cv2.imwrite(str(folder / "a.png"), img)
    rows = []
    for _ in range(int(rng.integers(1, 7))):
        w, h = rng.uniform(0.05, 0.6, 2)
        x, y = rng.uniform(w / 2, 1 - w / 2), rng.uniform(h / 2, 1 - h / 2)
        rows.append(f"{int(rng.integers(3))} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n")
    (folder / "a.txt").write_text("".join(rows))
    opts = {"w": int(rng.integers(4, 17)) * 8, "h": int(rng.integers(4, 17)) * 8,
            "jitter": float(rng.choice([0.0, 0.1, 0.3, 0.5])),
            "resize": float(rng.choice([1.0, 1.0, 0.5, 1.5, 2.0])),
            "hue": float(rng.choice([0.0, 0.1, 0.5])),
            "saturation": float(rng.choice([1.0, 1.5, 2.0])),
            "exposure": float(rng.choice([1.0, 1.5, 0.7])),
            "flip": int(rng.integers(2)), "letter_box": int(rng.integers(2))}
    # Darknet's random_float draws: resize_r1, resize_r2, r1..r4, r_scale, hue, saturation,
    # exposure; its random_gen draws: the image index, mixup, the path, flip (only with
    # flip=1), the halves of the saturation and exposure scales, then the boxes' shuffle
    floats = [float(np.float32(v)) for v in rng.random(10)]
    gens = dict(zip(("index", "mixup", "path", "flip", "sat", "exp", "blur"),
                    (int(v) for v in rng.integers(0, 2 ** 31, 7))))
    blur = int(rng.choice([0, 0, 1, 5, 9]))
    if blur:          # (drawn last, so that the other draws of a seed stay as they were)
        opts["blur"] = blur
    if rng.random() < 0.25:     # mixup: a second pass of the same image, its own draws
        opts["mixup"] = 1
        gens["second"] = [int(v) for v in rng.integers(0, 2 ** 31, 7)]
        floats = floats + [float(np.float32(v)) for v in rng.random(10)]
    return opts, floats, gens


def _pass_keys(opts):
    """Darknet's random_gen draws of one augmentation pass, after the path's."""
    return (["flip"] if opts["flip"] else []) + ["sat", "exp"] + \
        (["blur"] if opts.get("blur") else [])


def darknet_gens(opts, gens, boxes):
    """Darknet's random_gen sequence: the image index, the mixup coin (odd: mixup), then each
    pass's path, its draws and its shuffle of the ``boxes`` labels."""
    if not opts.get("mixup"):
        return [gens[k] for k in ["index", "mixup", "path"] + _pass_keys(opts)] + [0] * 8
    second = dict(zip(("index", "mixup", "path", "flip", "sat", "exp", "blur"), gens["second"]))
    return ([gens["index"], 1] + [gens[k] for k in ["path"] + _pass_keys(opts)] + [0] * boxes +
            [second[k] for k in ["path"] + _pass_keys(opts)] + [0] * 8)


def _label_count(folder):
    return len((folder / "a.txt").read_text().splitlines())


def darknet_sample(oracle, darknet, folder, opts, floats, gens, boxes=30):
    out = folder / "out.bin"
    args = [str(oracle), str(folder / "a.png"), str(opts["w"]), str(opts["h"]), "3", str(boxes),
            repr(opts["jitter"]), repr(opts["resize"]), repr(opts["hue"]),
            repr(opts["saturation"]), repr(opts["exposure"]), str(opts["flip"]),
            str(opts["letter_box"]), str(opts.get("blur", 0)), str(opts.get("mixup", 0)),
            ",".join(f"{v:.9g}" for v in floats),
            ",".join(str(v) for v in darknet_gens(opts, gens, _label_count(folder))), str(out)]
    run = subprocess.run(args, env=dict(os.environ, LD_LIBRARY_PATH=str(darknet)), check=True,
                         capture_output=True, text=True)
    if "can't augment image" in run.stderr:         # OpenCV threw inside Darknet
        raise RuntimeError(run.stderr.strip().splitlines()[-1])
    v = np.fromfile(out, np.float32)
    n = 3 * opts["w"] * opts["h"]
    image = v[:n].reshape(3, opts["h"], opts["w"])
    truth = v[n:].reshape(boxes, 6)[:, :5]
    return image, truth[truth[:, 2] > 0]


def _pass_script(opts, floats, gens):
    """One pass's values by their roles, in pydarknet's order: flip; the crop's (rr1, rr2)
    and (r1..r4); hue; saturation and its half; exposure and its half (no r_scale); blur."""
    return (([("i", gens["flip"])] if opts["flip"] else []) + [("f", v) for v in floats[:6]] +
            [("f", floats[7]), ("f", floats[8]), ("i", gens["sat"]), ("f", floats[9]),
             ("i", gens["exp"])] + ([("i", gens["blur"])] if opts.get("blur") else []))


def pydarknet_sample(folder, opts, floats, gens):
    from pydarknet.data import DetectionDataset
    ds = DetectionDataset([str(folder / "a.png")], 3, jitter=opts["jitter"],
                          resize=opts["resize"], flip=bool(opts["flip"]), hue=opts["hue"],
                          saturation=opts["saturation"], exposure=opts["exposure"],
                          letter_box=bool(opts["letter_box"]), blur=opts.get("blur", 0),
                          mosaic_mixup=opts.get("mixup", 0))
    script = _pass_script(opts, floats[:10], gens)
    if opts.get("mixup"):       # the coin (even: mixup here), pass one, the index, pass two
        second = dict(zip(("index", "mixup", "path", "flip", "sat", "exp", "blur"),
                          gens["second"]))
        script = [("i", 0)] + script + [("i", 0)] + _pass_script(opts, floats[10:], second)
    script = ScriptedGenerator(script)
    image, truth = ds.sample(script, opts["w"], opts["h"], index=0)
    script.check_used()
    truth = truth[truth[:, 2] > 0]
    return image, np.column_stack([truth[:, :4], truth[:, 4]])


class ScriptedGenerator:
    """The numpy Generator methods the data set calls, answering from one script of (kind,
    value): "f" for ``random``, "i" for ``integers`` (the value modulo the range, as Darknet's
    ``random_gen() % n``); a draw of the other kind, or one too many, is an error.
    ``permutation`` keeps the order (Darknet's shuffle is undone by comparing sets)."""

    def __init__(self, script):
        self.script = list(script)

    def permutation(self, n):
        return np.arange(n)

    def check_used(self):
        if self.script:
            raise AssertionError(f"pydarknet drew {len(self.script)} values fewer than Darknet")

    def _take(self, kind):
        if not self.script:
            raise AssertionError(f"pydarknet drew more than Darknet ({kind})")
        k, v = self.script.pop(0)
        if k != kind:
            raise AssertionError(f"pydarknet drew {kind} where Darknet draws {k}")
        return v

    def random(self, size=None):
        if size is None:
            return self._take("f")
        return np.array([self._take("f") for _ in range(int(np.prod(size)))]).reshape(size)

    def integers(self, low, high=None, size=None):
        lo, hi = (0, low) if high is None else (low, high)
        return lo + self._take("i") % (hi - lo)


def make_classifier_case(rng, folder):
    """A random image named for its class, the classifier's options and Darknet's draws:
    random_float: the aspect, the angle, dx, dy, hue, saturation, exposure; random_gen: the
    aspect's half, the crop size, flip (with flip=1), the halves of saturation and exposure."""
    ih, iw = (int(v) for v in rng.integers(20, 200, 2))
    img = cv2.GaussianBlur(rng.integers(0, 256, (ih, iw, 3), np.uint8), (7, 7), 0)
    cv2.imwrite(str(folder / "cat.png"), img)
    side = int(rng.integers(3, 13)) * 8
    opts = {"w": side, "h": side, "min": int(side * rng.choice([0.5, 1.0])),
            "max": int(side * rng.choice([1.0, 1.5, 2.0])),
            "angle": float(rng.choice([0.0, 7.0, 30.0])),
            "aspect": float(rng.choice([1.0, 0.75, 1.25])),
            "hue": float(rng.choice([0.0, 0.1, 0.5])),
            "saturation": float(rng.choice([1.0, 1.5])),
            "exposure": float(rng.choice([1.0, 1.5])), "flip": int(rng.integers(2))}
    floats = [float(np.float32(v)) for v in rng.random(7)]
    gens = dict(zip(("aspect", "size", "flip", "sat", "exp"),
                    (int(v) for v in rng.integers(0, 2 ** 31, 5))))
    return opts, floats, gens


def darknet_classifier_sample(oracle, darknet, folder, opts, floats, gens):
    out = folder / "cls.bin"
    order = ["aspect", "size"] + (["flip"] if opts["flip"] else []) + ["sat", "exp"]
    args = [str(oracle), "classifier", str(folder / "cat.png"), str(opts["w"]), str(opts["h"]),
            str(opts["min"]), str(opts["max"]), repr(opts["angle"]), repr(opts["aspect"]),
            repr(opts["hue"]), repr(opts["saturation"]), repr(opts["exposure"]),
            str(opts["flip"]), ",".join(f"{v:.9g}" for v in floats),
            ",".join(str(gens[k]) for k in order), str(out)]
    subprocess.run(args, env=dict(os.environ, LD_LIBRARY_PATH=str(darknet)), check=True,
                   capture_output=True)
    return np.fromfile(out, np.float32).reshape(3, opts["h"], opts["w"])


def pydarknet_classifier_sample(folder, opts, floats, gens):
    from pydarknet.data import ClassificationDataset
    ds = ClassificationDataset([str(folder / "cat.png")], ["cat"], min_crop=opts["min"],
                               max_crop=opts["max"], angle=opts["angle"],
                               aspect=opts["aspect"], hue=opts["hue"],
                               saturation=opts["saturation"], exposure=opts["exposure"],
                               flip=bool(opts["flip"]))
    script = ScriptedGenerator(
        [("f", floats[0]), ("i", gens["aspect"]), ("i", gens["size"]), ("f", floats[1]),
         ("f", floats[2]), ("f", floats[3])] + ([("i", gens["flip"])] if opts["flip"] else [])
        + [("f", floats[4]), ("f", floats[5]), ("i", gens["sat"]), ("f", floats[6]),
           ("i", gens["exp"])])
    image, _ = ds.sample(script, opts["w"], opts["h"], index=0)
    script.check_used()
    return image


def compare(ours, theirs, max_mean):
    (oi, ot), (ti, tt) = ours, theirs
    problems = []
    if len(ot) != len(tt):
        problems.append(f"{len(ot)} truths, Darknet {len(tt)}")
    else:
        a = ot[np.lexsort(ot.T[::-1])]
        b = tt[np.lexsort(tt.T[::-1])]
        if not np.allclose(a, b, atol=1e-5):
            problems.append(f"truths differ by {np.abs(a - b).max():.2e}")
    d = np.abs(oi.astype(np.float64) - ti) * 255
    if d.mean() > max_mean:
        problems.append(f"image: mean difference {d.mean():.2f} levels (largest {d.max():.0f})")
    return problems, d


STORE = ROOT / "tests" / "data" / "darknet_augment.json"


def block_means(image, block=8):
    """[C, H/block, W/block] means of a CHW image (the network sizes are multiples of 8):
    a crop, flip or colour change shows there, warpAffine's few levels at edges do not."""
    c, h, w = image.shape
    return image.reshape(c, h // block, block, w // block, block).mean((2, 4))


def store(oracle, darknet, seeds, classifier=False):
    """Darknet's cases of ``seeds`` added to STORE: detector ones keyed by the seed, with the
    truths; classifier ones keyed 'classifier/<seed>'."""
    import json
    out = json.loads(STORE.read_text()) if STORE.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        for seed in seeds:
            rng = np.random.default_rng(seed)
            if classifier:
                opts, floats, gens = make_classifier_case(rng, folder)
                image = darknet_classifier_sample(oracle, darknet, folder, opts, floats, gens)
                out[f"classifier/{seed}"] = {"opts": opts,
                                             "blocks": block_means(image).round(5).tolist()}
                continue
            opts, floats, gens = make_case(rng, folder)
            image, truth = darknet_sample(oracle, darknet, folder, opts, floats, gens)
            out[str(seed)] = {"opts": opts, "truth": truth.round(6).tolist(),
                              "blocks": block_means(image).round(5).tolist()}
    STORE.write_text(json.dumps(out) + "\n")
    print(f"wrote {STORE} ({len(out)} cases)")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("darknet", type=pathlib.Path, help="AB Darknet folder built with OPENCV=1")
    p.add_argument("first", type=int)
    p.add_argument("last", type=int)
    p.add_argument("--max-mean", type=float, default=1.0,
                   help="largest mean pixel difference (8-bit levels) taken as equal")
    p.add_argument("--classifier", action="store_true",
                   help="the classifier's augmentation (load_image_augment_paths) instead")
    p.add_argument("--max-pixel", type=float, default=8.0,
                   help="with --classifier: the largest pixel difference (8-bit levels) taken "
                        "as equal (the detector's crop edges differ more: not checked there)")
    p.add_argument("--store", nargs="+", type=int, metavar="SEED",
                   help=f"write Darknet's truths and 8x8 block means of these seeds to {STORE}"
                        " (the oracle of tests/test_darknet_augment.py)")
    args = p.parse_args()
    from darknet_forward_oracle import compile_against
    darknet = args.darknet.resolve()
    bad, worst = 0, []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        oracle = compile_against(darknet, "darknet_augment_oracle.c", tmp / "augment",
                                 "-rdynamic")
        if args.store:
            return store(oracle, darknet, args.store, args.classifier)
        for seed in range(args.first, args.last):
            rng = np.random.default_rng(seed)
            folder = tmp / "case"
            folder.mkdir(exist_ok=True)
            if args.classifier:
                opts, floats, gens = make_classifier_case(rng, folder)
                theirs = darknet_classifier_sample(oracle, darknet, folder, opts, floats, gens)
                d = np.abs(pydarknet_classifier_sample(folder, opts, floats, gens) - theirs) * 255
                worst.append((d.mean(), d.max()))
                if d.mean() > args.max_mean or d.max() > args.max_pixel:
                    bad += 1
                    print(f"seed {seed} {opts}: image: mean difference {d.mean():.2f} levels "
                          f"(largest {d.max():.0f})", flush=True)
                continue
            opts, floats, gens = make_case(rng, folder)
            try:
                theirs = darknet_sample(oracle, darknet, folder, opts, floats, gens)
                ours = pydarknet_sample(folder, opts, floats, gens)
            except (AssertionError, RuntimeError) as e:
                bad += 1
                print(f"seed {seed} {opts}: {e}", flush=True)
                continue
            problems, d = compare(ours, theirs, args.max_mean)
            worst.append((d.mean(), d.max()))
            if problems:
                bad += 1
                print(f"seed {seed} {opts}: {'; '.join(problems)}", flush=True)
    means = np.array(worst)
    print(f"{args.last - args.first} seeds, {bad} differing; image differences: mean "
          f"{means[:, 0].mean():.3f} levels (worst seed {means[:, 0].max():.2f}), largest "
          f"{means[:, 1].max():.0f}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
