"""COCO metrics through pycocotools, and COCO's result format (``detector valid``).

Ground truth comes from Darknet label files (converted in memory: one COCO image per evaluated
image, category id = class index, boxes clipped to the image) or from a COCO annotation json
(images matched by file name, categories by name, or by COCO's 80 ids for an 80-class
network). Detections become ``{"image_id", "category_id", "bbox": [x, y, w, h] (top-left,
pixels), "score"}``, boxes clipped to the image as Darknet's ``print_cocos`` does.
"""

import contextlib
import io
import json
import os
import re
import warnings

import numpy as np

__all__ = ["COCO_IDS", "COCO_NAMES", "STAT_NAMES", "image_id_from_path", "results_for_image",
           "CocoEvaluator", "coco_evaluate"]

# COCO's category ids of the 80 classes in Darknet's coco.names order (Darknet's coco_ids)
COCO_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
COCO_NAMES = (
    "person bicycle car motorbike aeroplane bus train truck boat traffic_light fire_hydrant "
    "stop_sign parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe "
    "backpack umbrella handbag tie suitcase frisbee skis snowboard sports_ball kite "
    "baseball_bat baseball_glove skateboard surfboard tennis_racket bottle wine_glass cup fork "
    "knife spoon bowl banana apple sandwich orange broccoli carrot hot_dog pizza donut cake "
    "chair sofa pottedplant bed diningtable toilet tvmonitor laptop mouse remote keyboard "
    "cell_phone microwave oven toaster sink refrigerator book clock vase scissors teddy_bear "
    "hair_drier toothbrush").split()
COCO_NAMES = [n.replace("_", " ") for n in COCO_NAMES]
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm",
              "ARl")
_LEADING = re.compile(r"^\d+")
_TRAILING = re.compile(r"_(\d+)$")


def basecfg(path):
    """Darknet's basecfg: the file name up to its first dot."""
    return os.path.basename(str(path).replace("\\", "/")).split(".", 1)[0]


def image_id_from_path(path):
    """Darknet's COCO image id: the number the file name (without extension) starts with
    (``000000000139.jpg`` -> 139); else the number after its last ``_``
    (``COCO_val2014_000000000042.jpg`` -> 42, where Darknet's ``atoi`` gives 0); else None."""
    base = basecfg(path)
    m = _LEADING.match(base) or _TRAILING.search(base)
    return int(m.group(m.lastindex or 0)) if m else None


def results_for_image(image_id, dets, category_ids, min_score=0.0):
    """COCO result dicts for one image's :class:`~pydarknet.eval.Detections` (after NMS):
    one per class probability > ``min_score``, box clipped to the image."""
    w, h = dets.image_size
    rows, cls, score = dets.pairs(min_score)
    if not len(rows):
        return []
    b = dets.boxes[rows].astype(np.float64) * np.array([w, h, w, h])
    x0 = np.maximum(b[:, 0] - b[:, 2] / 2, 0)
    y0 = np.maximum(b[:, 1] - b[:, 3] / 2, 0)
    x1 = np.minimum(b[:, 0] + b[:, 2] / 2, w)
    y1 = np.minimum(b[:, 1] + b[:, 3] / 2, h)
    out = []
    for k in range(len(rows)):
        out.append({"image_id": int(image_id), "category_id": int(category_ids[cls[k]]),
                    "bbox": [float(x0[k]), float(y0[k]), float(x1[k] - x0[k]),
                             float(y1[k] - y0[k])],
                    "score": float(score[k])})
    return out


def _quiet(fn, *a, **k):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*a, **k)


class CocoEvaluator:
    """Collects ground truth and detections image by image, then runs pycocotools' COCOeval.

    ``names``: the class names (index = class id). ``annotations``: a COCO annotation json
    (path or dict) to take the ground truth from; without it the Darknet truths passed to
    :meth:`add` are used.
    """

    def __init__(self, names, annotations=None):
        self.names = list(names)
        self.images, self.gt, self.dt = [], [], []
        self._ann = None
        self.unmatched = []
        if annotations is not None:
            data = annotations
            if not isinstance(data, dict):
                with open(annotations, encoding="utf-8-sig") as f:
                    data = json.load(f)
            self._ann = data
            self._by_file = {os.path.basename(im["file_name"]): im["id"] for im in data["images"]}
            self.category_ids = self._map_categories(data.get("categories", []))
        else:
            self.category_ids = list(range(len(self.names)))

    def _map_categories(self, cats):
        from ..data.io import DataError
        by_name = {c["name"]: c["id"] for c in cats}
        if all(n in by_name for n in self.names):
            return [by_name[n] for n in self.names]
        if len(self.names) == 80 and set(COCO_IDS) <= {c["id"] for c in cats}:
            return list(COCO_IDS)
        missing = [n for n in self.names if n not in by_name][:5]
        raise DataError(f"the annotation file's categories do not match the class names "
                        f"(not found: {', '.join(missing)}) and the network does not have COCO's "
                        "80 classes")

    def add(self, path, dets, truths, image_size):
        """One image: its detections (after NMS) and, without an annotation file, its Darknet
        truths [m, 5] (class, x, y, w, h relative)."""
        w, h = image_size
        if self._ann is not None:
            image_id = self._by_file.get(os.path.basename(str(path)))
            if image_id is None:      # a link made by `pydarknet data coco`: its target's name
                image_id = self._by_file.get(os.path.basename(os.path.realpath(str(path))))
            if image_id is None:
                self.unmatched.append(str(path))
                return
        else:
            image_id = len(self.images) + 1
            for t in np.asarray(truths, np.float64).reshape(-1, 5):
                # clipped to the image, as COCO's annotations are (and as the detections are)
                x0, y0 = max((t[1] - t[3] / 2) * w, 0.0), max((t[2] - t[4] / 2) * h, 0.0)
                x1, y1 = min((t[1] + t[3] / 2) * w, w), min((t[2] + t[4] / 2) * h, h)
                bw, bh = max(x1 - x0, 0.0), max(y1 - y0, 0.0)
                self.gt.append({"id": len(self.gt) + 1, "image_id": image_id,
                                "category_id": int(t[0]), "iscrowd": 0, "area": bw * bh,
                                "bbox": [x0, y0, bw, bh]})
        self.images.append({"id": image_id, "width": int(w), "height": int(h),
                            "file_name": os.path.basename(str(path))})
        self.dt.extend(results_for_image(image_id, dets, self.category_ids))

    def evaluate(self, verbose=False):
        """pycocotools' bbox evaluation over the added images: a dict with the 12 COCO stats
        (AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl), ``per_class``
        (AP and AP50 per class) and ``text`` (pycocotools' summary)."""
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
        if self.unmatched:
            warnings.warn(f"{len(self.unmatched)} images are not in the annotation file (first: "
                          f"{self.unmatched[0]}); left out of the COCO metrics", stacklevel=2)
        if self._ann is not None:
            gt_data = self._ann
        else:
            gt_data = {"images": self.images, "annotations": self.gt,
                       "categories": [{"id": i, "name": n} for i, n in enumerate(self.names)]}
        gt = COCO()
        gt.dataset = gt_data
        _quiet(gt.createIndex)
        img_ids = sorted({im["id"] for im in self.images})
        if not self.dt:
            stats = {k: 0.0 for k in STAT_NAMES}
            stats.update(per_class=[], text="no detections", images=len(img_ids))
            return stats
        dt = _quiet(gt.loadRes, self.dt)
        ev = COCOeval(gt, dt, "bbox")
        ev.params.imgIds = img_ids
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        if verbose:
            print(out.getvalue(), end="")
        stats = {k: float(v) for k, v in zip(STAT_NAMES, ev.stats)}
        prec = ev.eval["precision"]          # [iou, recall, class, area, maxdets]
        per_class = []
        for k, cat in enumerate(ev.params.catIds):
            p_all = prec[:, :, k, 0, -1]
            p50 = prec[0, :, k, 0, -1]
            name = next((n for i, n in zip(self.category_ids, self.names) if i == cat), str(cat))
            per_class.append({"category_id": int(cat), "name": name,
                              "AP": float(p_all[p_all > -1].mean()) if (p_all > -1).any() else -1,
                              "AP50": float(p50[p50 > -1].mean()) if (p50 > -1).any() else -1})
        stats.update(per_class=per_class, text=_summary_text(out.getvalue()),
                     images=len(img_ids))
        return stats


def _summary_text(text):
    return "\n".join(ln for ln in text.splitlines() if ln.lstrip().startswith("Average"))


def coco_evaluate(gt_truths, detections, names):
    """Convenience for tests and scripts: ``gt_truths`` and ``detections`` are lists (one item
    per image) of Darknet truths [m, 5] and Detections. Returns :meth:`CocoEvaluator.evaluate`."""
    ev = CocoEvaluator(names)
    for i, (t, d) in enumerate(zip(gt_truths, detections)):
        ev.add(f"image{i}.jpg", d, t, d.image_size)
    return ev.evaluate()
