"""``detector valid``'s result files, as Darknet's ``validate_detector`` writes them.

Every image's detections (after NMS) go to one COCO result json (``print_cocos``: boxes clipped
to the image, category ids COCO's for an 80-class ``eval=coco`` network, else the class index).
With ``eval=voc`` (Darknet's default) each class also gets a ``comp4_det_test_<name>.txt`` file
(``print_detector_detections``): ``<image> <score> <xmin> <ymin> <xmax> <ymax>``, 1-based pixel
corners clipped to [1, w] x [1, h].
"""

import json
import os

import numpy as np

from .coco import COCO_IDS, image_id_from_path, results_for_image

__all__ = ["ValidationResults", "voc_lines", "category_ids_from_data"]


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


class ValidationResults:
    """The detections of a validation list, collected image by image, then written.

    ``names``: the class names; ``coco``: the data file says ``eval=coco`` (no VOC files).
    Image ids come from the file names (Darknet's); a name without a number gets its index
    in the list, counted in ``unnumbered``. ``category_ids``: one category id per class (the
    .data file's ``category_ids``, :func:`category_ids_from_data`) instead of COCO's 80 or
    the class indexes.
    """

    def __init__(self, names, coco=False, category_ids=None):
        self.names = list(names)
        self.coco = coco
        self.mapped_ids = category_ids is not None
        self.coco_ids = coco and len(self.names) == 80 and not self.mapped_ids
        self.category_ids = (list(category_ids) if self.mapped_ids else
                             COCO_IDS if self.coco_ids else list(range(len(self.names))))
        self.results = []
        self.voc = [[] for _ in self.names]
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
        self.results.extend(results_for_image(image_id, dets, self.category_ids))
        if not self.coco:
            for k, line in voc_lines(os.path.basename(path).split(".", 1)[0], dets):
                self.voc[k].append(line)

    @property
    def images(self):
        return len(self.paths)

    def write(self, folder, outfile=None):
        """Write the files into ``folder`` (the data file's ``results=``); ``outfile`` is
        Darknet's ``-out`` (default coco_results / comp4_det_test_). Returns the json's path
        and the VOC files' path prefix (None with eval=coco)."""
        os.makedirs(folder, exist_ok=True)
        outfile = outfile or ("coco_results" if self.coco else "comp4_det_test_")
        json_path = os.path.join(folder, (outfile if self.coco else "coco_results") + ".json")
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(self.results, f)
        if self.coco:
            return json_path, None
        prefix = os.path.join(folder, outfile)
        for name, lines in zip(self.names, self.voc):
            with open(f"{prefix}{name}.txt", "w") as f:
                f.writelines(lines)
        return json_path, prefix
