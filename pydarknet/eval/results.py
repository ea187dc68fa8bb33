"""``detector valid``'s result files, as Darknet's ``validate_detector`` writes them, in the
format the .data file's ``eval=`` names:

- ``coco``: one COCO result json (``print_cocos``: boxes clipped to the image, category ids
  COCO's for an 80-class network, else the class index);
- ``voc`` (Darknet's default, and what it does with any other name): that json too, and a
  ``comp4_det_test_<name>.txt`` file a class (``print_detector_detections``): ``<image>
  <score> <xmin> <ymin> <xmax> <ymax>``, 1-based pixel corners clipped to [1, w] x [1, h];
- ``bdd`` (Berkeley DeepDrive): ``bdd_results.json``, one object a box and class: the image
  name without ``.jpg``, the BDD category of the class index, ``[xmin, ymin, xmax, ymax]``
  clipped to [0, w] x [0, h], the score (``print_bdd_detections``);
- ``kitti``: ``kitti_results/data/<image>.txt`` for each image, a KITTI object line a box and
  class (car, pedestrian, cyclist) with the same corners (``print_kitti_detections``);
- ``imagenet``: ``imagenet-detection.txt``, ``<image number from 1> <class + 1> <score>
  <xmin> <ymin> <xmax> <ymax>`` (``print_imagenet_detections``).
"""

import json
import os

import numpy as np

from .coco import COCO_IDS, basecfg, image_id_from_path, results_for_image

__all__ = ["ValidationResults", "voc_lines", "category_ids_from_data", "FORMATS"]

FORMATS = ("voc", "coco", "bdd", "kitti", "imagenet")
# AB's fixed category names of its bdd and kitti formats, by class index
BDD_NAMES = ("bike", "bus", "car", "motor", "person", "rider", "traffic light", "traffic sign",
             "train", "truck")
KITTI_NAMES = ("car", "pedestrian", "cyclist")


def category_ids_from_data(data, classes, datafile="<data>"):
    """The ``category_ids = 1,3,...`` line of a .data file (written by ``pydarknet data
    coco``; Darknet ignores it): one COCO category id per class, or None without the line."""
    from ..errors import DataError
    text = data.get("category_ids")
    if text is None:
        return None
    try:
        ids = [int(v) for v in str(text).replace(",", " ").split()]
    except ValueError:
        raise DataError(f"{datafile}: category_ids = {text}: expected integers separated by "
                        "commas") from None
    if len(ids) != classes:
        raise DataError(f"{datafile}: category_ids lists {len(ids)} ids but there are "
                        f"{classes} classes: one id per class, in the names file's order")
    return ids


def voc_lines(image_name, dets):
    """Darknet's per-class VOC lines of one image: [(class index, line), ...]."""
    w, h = dets.image_size
    rows, cls, score = dets.pairs(0)
    b = dets.boxes[rows].astype(np.float64) * [w, h, w, h]
    x0 = np.maximum(b[:, 0] - b[:, 2] / 2 + 1, 1)
    y0 = np.maximum(b[:, 1] - b[:, 3] / 2 + 1, 1)
    x1 = np.minimum(b[:, 0] + b[:, 2] / 2 + 1, w)
    y1 = np.minimum(b[:, 1] + b[:, 3] / 2 + 1, h)
    return [(int(cls[k]), f"{image_name} {score[k]:f} {x0[k]:f} {y0[k]:f} {x1[k]:f} {y1[k]:f}\n")
            for k in range(len(rows))]


def clipped_corners(dets):
    """(class index, score, xmin, ymin, xmax, ymax) of every class probability > 0, pixel
    corners clipped to [0, w] x [0, h] (the bdd, kitti and imagenet formats')."""
    w, h = dets.image_size
    rows, cls, score = dets.pairs(0)
    b = dets.boxes[rows].astype(np.float64) * [w, h, w, h]
    x0 = np.maximum(b[:, 0] - b[:, 2] / 2, 0)
    y0 = np.maximum(b[:, 1] - b[:, 3] / 2, 0)
    x1 = np.minimum(b[:, 0] + b[:, 2] / 2, w)
    y1 = np.minimum(b[:, 1] + b[:, 3] / 2, h)
    return [(int(cls[k]), float(score[k]), x0[k], y0[k], x1[k], y1[k]) for k in range(len(rows))]


class ValidationResults:
    """The detections of a validation list, collected image by image, then written.

    ``names``: the class names; ``kind``: the format, one of :data:`FORMATS` (``coco=True``
    is ``kind="coco"``). Image ids come from the file names (Darknet's); a name without a
    number gets its index in the list, counted in ``unnumbered``. ``category_ids``: one
    category id per class (the .data file's ``category_ids``,
    :func:`category_ids_from_data`) instead of COCO's 80 or the class indexes.
    """

    def __init__(self, names, coco=False, category_ids=None, kind=None):
        from ..errors import DataError
        self.names = list(names)
        self.kind = kind or ("coco" if coco else "voc")
        if self.kind not in FORMATS:
            raise DataError(f"eval={self.kind}: the result formats are {', '.join(FORMATS)}")
        fixed = {"bdd": BDD_NAMES, "kitti": KITTI_NAMES}.get(self.kind)
        if fixed and len(self.names) > len(fixed):
            raise DataError(f"eval={self.kind} names {len(fixed)} classes ({', '.join(fixed)}) "
                            f"but the network has {len(self.names)}")
        self.coco = self.kind == "coco"
        self.mapped_ids = category_ids is not None
        self.coco_ids = self.coco and len(self.names) == 80 and not self.mapped_ids
        self.category_ids = (list(category_ids) if self.mapped_ids else
                             COCO_IDS if self.coco_ids else list(range(len(self.names))))
        self.results = []
        self.voc = [[] for _ in self.names]
        self.lines = {}            # bdd: its objects; kitti: image -> lines; imagenet: lines
        self.paths = {}            # image id -> the path it came from
        self.unnumbered = 0

    def add(self, index, path, dets, problems):
        """One image's detections; a second image with the same id goes to ``problems``."""
        image_id = image_id_from_path(path)
        if image_id is None:
            image_id = index
            self.unnumbered += 1
        if self.paths.get(image_id, path) != path:
            problems.report("image_id_duplicate", f"{path}: image id {image_id} also belongs to "
                            f"{self.paths[image_id]} (ids come from the file names)")
        self.paths[image_id] = path
        if self.kind in ("bdd", "kitti", "imagenet"):
            self._add_corners(index, path, clipped_corners(dets))
            return
        self.results.extend(results_for_image(image_id, dets, self.category_ids))
        if not self.coco:
            for k, line in voc_lines(basecfg(path), dets):
                self.voc[k].append(line)

    def _add_corners(self, index, path, corners):
        if self.kind == "bdd":
            name = os.path.basename(str(path)).replace(".jpg", "")   # (AB removes ".jpg")
            self.lines.setdefault("objects", []).extend(
                {"name": name, "category": BDD_NAMES[k], "bbox": [x0, y0, x1, y1],
                 "score": p} for k, p, x0, y0, x1, y1 in corners)
        elif self.kind == "kitti":
            self.lines[basecfg(path)] = [
                f"{KITTI_NAMES[k]} -1 -1 -10 {x0:f} {y0:f} {x1:f} {y1:f} -1 -1 -1 -1000 -1000 "
                f"-1000 -10 {p:f}\n" for k, p, x0, y0, x1, y1 in corners]
        else:
            self.lines.setdefault("rows", []).extend(
                f"{index + 1} {k + 1} {p:f} {x0:f} {y0:f} {x1:f} {y1:f}\n"
                for k, p, x0, y0, x1, y1 in corners)

    @property
    def images(self):
        return len(self.paths)

    def write(self, folder, outfile=None):
        """Write the files into ``folder`` (the data file's ``results=``); ``outfile`` is
        Darknet's ``-out`` (default coco_results / comp4_det_test_ / bdd_results /
        kitti_results / imagenet-detection). Returns the json's path and the VOC files' path
        prefix (None with eval=coco); for bdd, kitti and imagenet (what was written, None)."""
        os.makedirs(folder, exist_ok=True)
        if self.kind == "bdd":
            path = os.path.join(folder, (outfile or "bdd_results") + ".json")
            with _create(path) as f:
                json.dump(self.lines.get("objects", []), f, indent=1)
            return path, None
        if self.kind == "kitti":
            path = os.path.join(folder, outfile or "kitti_results", "data")
            os.makedirs(path, exist_ok=True)
            for name, lines in self.lines.items():
                with _create(os.path.join(path, name + ".txt")) as f:
                    f.writelines(lines)
            return path, None
        if self.kind == "imagenet":
            path = os.path.join(folder, (outfile or "imagenet-detection") + ".txt")
            with _create(path) as f:
                f.writelines(self.lines.get("rows", []))
            return path, None
        outfile = outfile or ("coco_results" if self.coco else "comp4_det_test_")
        json_path = os.path.join(folder, (outfile if self.coco else "coco_results") + ".json")
        with _create(json_path) as f:
            json.dump(self.results, f)
        if self.coco:
            return json_path, None
        prefix = os.path.join(folder, outfile)
        for name, lines in zip(self.names, self.voc):
            with _create(f"{prefix}{name}.txt") as f:
                f.writelines(lines)
        return json_path, prefix


def _create(path):
    """``open(path, "w")``; a file that cannot be made (a class name with a '/' or a NUL byte
    in a VOC file's name, a full disk) is a PydarknetError naming it."""
    from ..errors import PydarknetError
    try:
        return open(path, "w", encoding="utf-8")
    except (OSError, ValueError) as e:
        raise PydarknetError(f"{path!r}: cannot write this results file: "
                             f"{getattr(e, 'strerror', None) or e}") from None
