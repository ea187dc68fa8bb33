"""The embedded default data set: coloured shapes on textured backgrounds with exact boxes.

Written on demand into a folder as a Darknet data set (images + labels + lists + .names +
.data), for detectors (``make_shapes_detection``) and classifiers (``make_shapes_classifier``):

    folder/images/train/000000.jpg   folder/labels/train/000000.txt   (and a copy of the label
    folder/images/valid/...          folder/labels/valid/...            beside the image, for
    folder/train.txt  folder/valid.txt  folder/shapes.names  folder/shapes.data    AB's rule)

Shape classes: circle, square, triangle (any rotation), diamond, cross, in that order; the
class is the shape, never the colour. Boxes are the exact extent of each shape's pixels; shapes
do not overlap and lie wholly inside the image. Everything follows from ``seed``.
"""

import functools
import json
import math
import os

import cv2
import numpy as np

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
_MANIFEST = ".pydarknet-shapes.json"
_VERSION = 1


# -- drawing -----------------------------------------------------------------------------------

def random_truths(rng, batch, classes=80, boxes=6, max_boxes=90):
    """Detector truths [batch, max_boxes, 5] (x, y, w, h, class; relative) with ``boxes``
    random boxes per image and the rest zero: inputs for timing and agreement runs."""
    t = np.zeros((batch, max_boxes, 5), np.float32)
    for i in range(batch):
        t[i, :boxes, 0:2] = rng.uniform(0.2, 0.8, (boxes, 2))
        t[i, :boxes, 2:4] = rng.uniform(0.05, 0.4, (boxes, 2))
        t[i, :boxes, 4] = rng.integers(0, classes, boxes)
    return t


def _hsv_colour(rng, s_range, v_range):
    hsv = np.uint8([[[rng.integers(180), rng.uniform(*s_range) * 255,
                      rng.uniform(*v_range) * 255]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def textured_background(rng, width, height):
    """Muted (low saturation) texture: a smooth colour field, faint stripes, grain."""
    base = _hsv_colour(rng, (0.0, 0.3), (0.3, 0.8))
    g = rng.integers(3, 7)
    field = rng.normal(0, 28, (g, g, 3)).astype(np.float32)
    field = cv2.resize(field, (width, height), interpolation=cv2.INTER_CUBIC)
    yy, xx = _grid(width, height)
    theta = rng.uniform(0, math.pi)
    freq = rng.uniform(0.05, 0.4)
    stripes = np.sin((xx * math.cos(theta) + yy * math.sin(theta)) * freq) * rng.uniform(0, 18)
    img = base + field + stripes[:, :, None]
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(2, 8))
    return np.clip(img, 0, 255)


@functools.lru_cache(maxsize=8)
def _grid(width, height):
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy.flags.writeable = xx.flags.writeable = False
    return yy, xx


def shape_mask(shape, cx, cy, r, angle, width, height):
    """uint8 mask of one shape with centre (cx, cy) and outer radius r (pixels)."""
    mask = np.zeros((height, width), np.uint8)
    c = (int(round(cx)), int(round(cy)))
    if shape == "circle":
        cv2.circle(mask, c, int(round(r)), 1, -1)
        return mask
    if shape == "square":
        pts = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
        scale, angle = r / math.sqrt(2), 0.0
    elif shape == "diamond":
        pts = [(0, -1), (1, 0), (0, 1), (-1, 0)]
        scale, angle = r, 0.0
    elif shape == "triangle":
        pts = [(math.cos(a), math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
        scale = r
    elif shape == "cross":
        t = 0.33
        pts = [(-t, -1), (t, -1), (t, -t), (1, -t), (1, t), (t, t), (t, 1), (-t, 1), (-t, t),
               (-1, t), (-1, -t), (-t, -t)]
        scale, angle = r / math.sqrt(1 + t * t), 0.0
    else:
        raise ValueError(f"unknown shape '{shape}': expected one of {', '.join(SHAPES)}")
    ca, sa = math.cos(angle), math.sin(angle)
    poly = np.array([[cx + scale * (x * ca - y * sa), cy + scale * (x * sa + y * ca)]
                     for x, y in pts])
    cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
    return mask


def draw_shapes_image(rng, width=160, height=160, classes=SHAPES[:3], count=(1, 4),
                      radius=(0.08, 0.22), colours=None, background=None):
    """One image: uint8 RGB HxWx3 and boxes float64 [n, 5] (class, x, y, w, h relative),
    plus each shape's fill colour [n, 3]. ``colours``: a fixed RGB per shape (for tests);
    ``background``: a fixed RGB background instead of the texture."""
    if background is None:
        img = textured_background(rng, width, height)
    else:
        img = np.empty((height, width, 3), np.float32)
        img[...] = np.asarray(background, np.float32)
    n = int(rng.integers(count[0], count[1] + 1))
    boxes, fills, taken = [], [], []
    side = min(width, height)
    for _ in range(n):
        for _try in range(40):
            cls = int(rng.integers(len(classes)))
            r = rng.uniform(*radius) * side
            cx = rng.uniform(r + 1, width - r - 1)
            cy = rng.uniform(r + 1, height - r - 1)
            mask = shape_mask(classes[cls], cx, cy, r, rng.uniform(0, 2 * math.pi), width,
                              height)
            ys, xs = np.nonzero(mask)
            if len(xs) < 9:
                continue
            x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
            if any(x0 < b[1] + 2 and b[0] < x1 + 2 and y0 < b[3] + 2 and b[2] < y1 + 2
                   for b in taken):
                continue
            break
        else:
            continue
        if colours is not None:
            colour = np.asarray(colours[len(boxes) % len(colours)], np.float32)
            shade = np.zeros((height, width, 1), np.float32)
        else:
            colour = _hsv_colour(rng, (0.65, 1.0), (0.7, 1.0))
            gx, gy = rng.normal(0, 0.25, 2)
            yy, xx = _grid(width, height)
            shade = ((xx - cx) * gx + (yy - cy) * gy)[:, :, None] / max(r, 1) * 20
        m = mask.astype(bool)
        img[m] = np.clip(colour[None, :] + shade[m], 0, 255)
        taken.append((x0, x1, y0, y1))
        boxes.append((cls, (x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width,
                      (y1 - y0) / height))
        fills.append(colour)
    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out, np.array(boxes, np.float64).reshape(-1, 5), np.array(fills).reshape(-1, 3)


# -- writing a data set ------------------------------------------------------------------------

def _write_image(path, rgb, fmt):
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if fmt == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]
    if not cv2.imwrite(path, bgr, params):
        raise OSError(f"cannot write {path}")


def _label_text(boxes):
    return "".join(f"{int(c)} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in boxes)


def _up_to_date(folder, params):
    try:
        with open(os.path.join(folder, _MANIFEST)) as f:
            return json.load(f) == params
    except (OSError, ValueError):
        return False


def _finish(folder, params):
    tmp = os.path.join(folder, _MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        json.dump(params, f)
    os.replace(tmp, os.path.join(folder, _MANIFEST))


def _result(folder, name, params):
    return {"folder": folder, "data": os.path.join(folder, f"{name}.data"),
            "train": os.path.join(folder, "train.txt"),
            "valid": os.path.join(folder, "valid.txt"),
            "names": os.path.join(folder, f"{name}.names"), "classes": len(params["classes"]),
            "class_names": list(params["classes"])}


def make_shapes_detection(folder, train=300, valid=100, size=160, seed=0, classes=3,
                          count=(1, 4), fmt="jpg", force=False, colours=None, background=None):
    """Write (or reuse, when the folder already holds the same set) the detector data set.

    ``size``: side, or (width, height), of the images. ``classes``: how many of SHAPES (or a
    list of their names). ``colours``/``background``: fixed RGB fills instead of random ones
    (for tests). Returns a dict of paths: folder, data, train, valid, names, classes,
    class_names."""
    names = list(SHAPES[:classes]) if isinstance(classes, int) else list(classes)
    folder = os.path.abspath(os.fspath(folder))
    width, height = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    params = {"kind": "detection", "version": _VERSION, "train": train, "valid": valid,
              "size": [width, height], "seed": seed, "classes": names, "count": list(count),
              "fmt": fmt, "colours": None if colours is None else np.asarray(colours).tolist(),
              "background": None if background is None else list(background)}
    if not force and _up_to_date(folder, params):
        return _result(folder, "shapes", params)
    ss = np.random.SeedSequence(seed)
    lists = {}
    for split, n, child in zip(("train", "valid"), (train, valid), ss.spawn(2)):
        img_dir = os.path.join(folder, "images", split)
        lab_dir = os.path.join(folder, "labels", split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(lab_dir, exist_ok=True)
        rng = np.random.default_rng(child)
        lists[split] = []
        for i in range(n):
            img, boxes, _ = draw_shapes_image(rng, width, height, names, count,
                                              colours=colours, background=background)
            stem = f"{i:06d}"
            path = os.path.join(img_dir, f"{stem}.{fmt}")
            _write_image(path, img, fmt)
            text = _label_text(boxes)
            for lp in (os.path.join(lab_dir, stem + ".txt"), os.path.join(img_dir, stem + ".txt")):
                with open(lp, "w") as f:
                    f.write(text)
            lists[split].append(path)
        with open(os.path.join(folder, f"{split}.txt"), "w") as f:
            f.write("".join(p + "\n" for p in lists[split]))
    with open(os.path.join(folder, "shapes.names"), "w") as f:
        f.write("".join(n + "\n" for n in names))
    with open(os.path.join(folder, "shapes.data"), "w") as f:
        f.write(f"classes = {len(names)}\n"
                f"train = {os.path.join(folder, 'train.txt')}\n"
                f"valid = {os.path.join(folder, 'valid.txt')}\n"
                f"names = {os.path.join(folder, 'shapes.names')}\n"
                f"backup = {os.path.join(folder, 'backup')}\n")
    _finish(folder, params)
    return _result(folder, "shapes", params)


def make_shapes_classifier(folder, train=300, valid=100, size=64, seed=0, classes=3,
                           fmt="png", force=False):
    """Write (or reuse) the classifier data set: one shape per image, the class name in the
    file name (``images/train/000000_circle.png``), a labels file (``shapes.labels``, also
    given as names=) and ``shapes.data`` with classes, train, valid, labels, names, backup."""
    names = list(SHAPES[:classes]) if isinstance(classes, int) else list(classes)
    folder = os.path.abspath(os.fspath(folder))
    params = {"kind": "classification", "version": _VERSION, "train": train, "valid": valid,
              "size": size, "seed": seed, "classes": names, "fmt": fmt}
    if not force and _up_to_date(folder, params):
        return _result(folder, "shapes", params) | {
            "labels": os.path.join(folder, "shapes.labels")}
    ss = np.random.SeedSequence(seed)
    for split, n, child in zip(("train", "valid"), (train, valid), ss.spawn(2)):
        img_dir = os.path.join(folder, "images", split)
        os.makedirs(img_dir, exist_ok=True)
        rng = np.random.default_rng(child)
        paths = []
        for i in range(n):
            cls = i % len(names)
            img, boxes, _ = draw_shapes_image(rng, size, size, [names[cls]], (1, 1),
                                              radius=(0.2, 0.4))
            path = os.path.join(img_dir, f"{i:06d}_{names[cls]}.{fmt}")
            _write_image(path, img, fmt)
            paths.append(path)
        with open(os.path.join(folder, f"{split}.txt"), "w") as f:
            f.write("".join(p + "\n" for p in paths))
    for fname in ("shapes.labels", "shapes.names"):
        with open(os.path.join(folder, fname), "w") as f:
            f.write("".join(n + "\n" for n in names))
    with open(os.path.join(folder, "shapes.data"), "w") as f:
        f.write(f"classes = {len(names)}\n"
                f"train = {os.path.join(folder, 'train.txt')}\n"
                f"valid = {os.path.join(folder, 'valid.txt')}\n"
                f"labels = {os.path.join(folder, 'shapes.labels')}\n"
                f"names = {os.path.join(folder, 'shapes.names')}\n"
                f"backup = {os.path.join(folder, 'backup')}\n"
                f"top = 1\n")
    _finish(folder, params)
    return _result(folder, "shapes", params) | {"labels": os.path.join(folder, "shapes.labels")}
