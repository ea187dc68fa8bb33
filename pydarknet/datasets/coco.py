"""COCO instance annotations (json) -> Darknet's detection layout.

    convert_coco("instances_train2017.json", "train2017/", "data/coco-darknet",
                 valid_json="instances_val2017.json", valid_images="val2017/")

Writes ``obj.names``, ``obj.data``, ``train.txt`` (and ``valid.txt``), and under
``images/train/`` (``images/valid/``) a link to every image (a copy with ``copy=True``) with
its label file beside it. Classes are the categories in id order (or ``classes``, a chosen
subset in the given order). The links are named so that Darknet's image id rule
(:func:`pydarknet.eval.coco.image_id_from_path`; AB's ``get_coco_image_id``) gives the COCO
image id back, and ``obj.data`` records ``eval = coco`` and ``category_ids = ...`` so that
``detector valid`` writes the original category ids: its results json evaluates against the
original annotations as it is.
"""

import contextlib
import io
import math
import os
import re

from ..errors import PydarknetError
from ..eval.coco import image_id_from_path
from .layout import (DetectionSplit, OutputFolder, Summary, annotation_frame, box_to_darknet,
                     clip_box, image_size, load_json, readable_file)

__all__ = ["convert_coco", "link_name_for_id", "darknet_coco_image_id"]

_ATOI = re.compile(r"^\s*([+-]?\d+)")


def darknet_coco_image_id(path):
    """AlexeyAB's ``get_coco_image_id``: ``atoi`` of what follows the path's last ``_`` (or,
    without one, its last ``/``)."""
    path = str(path)
    cut = max(path.rfind("_"), path.rfind("/")) if "_" not in path else path.rfind("_")
    m = _ATOI.match(path[cut + 1:])
    return int(m.group(1)) if m else 0


def link_name_for_id(file_name, image_id, folder):
    """The name of an image's link in ``folder``: its own name when both Darknet's and
    pydarknet's id rules read ``image_id`` from it (``000000000139.jpg``,
    ``COCO_val2014_000000000042.jpg``), else ``<stem>_<id><ext>``, else
    ``img_<stem>_<id><ext>`` (a stem starting with a number, or holding dots)."""
    base = os.path.basename(str(file_name).replace("\\", "/"))
    stem, ext = os.path.splitext(base)
    flat = re.sub(r"[^A-Za-z0-9_-]", "_", stem)
    for name in (base, f"{stem}_{image_id}{ext}", f"img_{flat}_{image_id}{ext}"):
        if (image_id_from_path(name) == image_id
                and darknet_coco_image_id(os.path.join(folder, name)) == image_id):
            return name
    return f"img_{flat}_{image_id}{ext}"         # not reached: the last always reads back


def _load_json(path):
    data = load_json(path, "annotation file")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("categories"), list):
        raise PydarknetError(f"{path}: not a COCO instances file (expected a json object with "
                             "'images', 'annotations' and 'categories' lists)")
    anns = data.get("annotations", [])
    if not isinstance(anns, list):
        raise PydarknetError(f"{path}: 'annotations' is not a list")
    return data


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _categories(data, path):
    """{category id: name} of a COCO file; malformed categories are errors (every box
    depends on them)."""
    out = {}
    for i, c in enumerate(data["categories"]):
        if not isinstance(c, dict) or not _is_int(c.get("id")) or \
                not isinstance(c.get("name"), str) or not c["name"].strip():
            raise PydarknetError(f"{path}: categories[{i}]: expected an integer 'id' and a "
                                 f"'name', found {str(c)[:80]}")
        if c["id"] in out:
            raise PydarknetError(f"{path}: categories[{i}]: category id {c['id']} appears "
                                 "twice")
        out[c["id"]] = c["name"].strip()
    if not out:
        raise PydarknetError(f"{path}: no categories")
    return out


def _clean(data, path, summary, split):
    """The file's images and annotations with the unusable ones skipped (and reported), as a
    dataset pycocotools indexes."""
    images, seen = [], set()
    for i, im in enumerate(data["images"]):
        where = f"{path}: images[{i}]"
        if not isinstance(im, dict) or not _is_int(im.get("id")) or \
                not isinstance(im.get("file_name"), str) or not im["file_name"]:
            summary.skip("malformed image entries", f"{where}: expected an integer 'id' and "
                         f"a 'file_name', found {str(im)[:80]}; image skipped")
            continue
        if im["id"] < 0:
            summary.skip("malformed image entries", f"{where}: image id {im['id']} is "
                         "negative; image skipped")
            continue
        if im["id"] in seen:
            summary.skip("duplicate image ids", f"{where}: image id {im['id']} appears again; "
                         "image skipped")
            continue
        seen.add(im["id"])
        images.append(im)
    cats = {c["id"] for c in data["categories"]}
    anns = []
    for i, a in enumerate(data.get("annotations", [])):
        where = f"{path}: annotations[{i}]" + (f" (id {a['id']})" if isinstance(a, dict)
                                               and "id" in a else "")
        why = None
        if not isinstance(a, dict):
            why = "not an object"
        elif not _is_int(a.get("image_id")) or a["image_id"] not in seen:
            why = f"image_id {str(a.get('image_id'))[:40]} is not among the images"
        elif not _is_int(a.get("category_id")) or a["category_id"] not in cats:
            why = f"category_id {str(a.get('category_id'))[:40]} is not among the categories"
        else:
            b = a.get("bbox")
            if not (isinstance(b, list) and len(b) == 4 and
                    all(isinstance(v, (int, float)) and not isinstance(v, bool)
                        and math.isfinite(v) for v in b)):
                why = f"bbox {str(b)[:60]} is not 4 finite numbers [x, y, width, height]"
        if why:
            summary.skip("malformed annotations", f"{where}: {why}; box skipped")
            continue
        anns.append(dict(a, id=len(anns) + 1))       # pycocotools indexes by id: unique ones
    return {"images": images, "annotations": anns, "categories": data["categories"]}


def _index(dataset):
    from pycocotools.coco import COCO
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _choose_classes(cats, classes, path):
    """Class names in Darknet's order and {category id: class index}."""
    by_id = sorted(cats)
    known = [cats[i] for i in by_id]
    if classes is None:
        names = known
    else:
        unknown = [n for n in classes if n not in known]
        if unknown:
            raise PydarknetError(f"--classes: {', '.join(unknown)} not among the categories of "
                                 f"{path} ({', '.join(known)})")
        names = list(classes)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise PydarknetError(f"{path}: category names {', '.join(repeated)} are used by "
                             "several category ids; choose one set with --classes")
    return names


def _convert_split(coco_data, path, image_dir, names, split, out, summary, copy, keep_crowd):
    """One annotation file into ``images/<split>/`` and its list; returns the split and the
    category ids of ``names`` in this file."""
    cats = _categories(coco_data, path)
    dataset = _clean(coco_data, path, summary, split)
    index = _index(dataset)
    class_of = {}
    for cid, name in cats.items():
        if name in names:
            class_of[cid] = names.index(name)
    ids_by_name = {name: cid for cid, name in cats.items() if name in names}
    folder = out.final(os.path.join("images", split))
    lines = DetectionSplit(out, split, copy, summary)
    for im in sorted(dataset["images"], key=lambda im: im["id"]):
        image_id, file_name = im["id"], im["file_name"]
        source = os.path.join(image_dir, file_name)
        if readable_file(source) and readable_file(os.path.join(image_dir,
                                                                os.path.basename(file_name))) \
                is None:
            source = os.path.join(image_dir, os.path.basename(file_name))
        why = readable_file(source)
        if why:
            summary.skip("missing or unreadable images", f"{source}: {why} ({path}: image id "
                         f"{image_id}); image skipped")
            continue
        w, h = im.get("width"), im.get("height")
        given = (w, h) if all(isinstance(v, (int, float)) and not isinstance(v, bool)
                              and math.isfinite(v) and v > 0 for v in (w, h)) else None
        if given is None:
            size = image_size(source)
            if size is None:
                summary.skip("missing or unreadable images", f"{source}: no width/height in "
                             f"{path} (image id {image_id}) and OpenCV cannot read the image; "
                             "image skipped")
                continue
            summary.note("sizes read from the image", f"{path}: image id {image_id}: no "
                         f"width/height; {size[0]}x{size[1]} read from {source}")
        frame, turn = annotation_frame(source, given, summary,
                                       f"{source} ({path}: image id {image_id})")
        w, h = frame or given or size
        boxes = []
        for a in index.imgToAnns.get(image_id, []):
            where = f"{path}: annotation id {a.get('id')} of image id {image_id}"
            if a["category_id"] not in class_of:
                summary.skip("boxes of other classes", f"{where}: category "
                             f"{cats[a['category_id']]} is not among the chosen classes; box "
                             "skipped")
                continue
            if a.get("iscrowd") and not keep_crowd:
                summary.skip("crowd boxes", f"{where}: iscrowd=1; box skipped "
                             "(--keep-crowd keeps them)")
                continue
            x, y, bw, bh = (float(v) for v in a["bbox"])
            corners = (x, y, x + bw, y + bh)
            clipped = clip_box(*(turn.turn_box(*corners) if turn else corners), w, h)
            if clipped is None:
                summary.skip("degenerate boxes", f"{where}: bbox {a['bbox']} has no width or "
                             f"height inside the {w}x{h} image; box skipped")
                continue
            x0, y0, x1, y1, was_clipped = clipped
            if was_clipped:
                summary.note("boxes clipped to the image")
            k = class_of[a["category_id"]]
            boxes.append((k, *box_to_darknet(x0, y0, x1, y1, w, h)))
        boxes = lines.add(source, link_name_for_id(file_name, image_id, folder), boxes)
        summary.image(split, [names[b[0]] for b in boxes])
    return lines, ids_by_name


def convert_coco(instances, image_dir, out_dir, *, valid_json=None, valid_images=None,
                 classes=None, keep_crowd=False, copy=False, out=None):
    """Converts a COCO instances json (and optionally a validation json) into ``out_dir``;
    returns the :class:`~.layout.Summary` (printed by the CLI)."""
    summary = Summary("coco", out)
    if not os.path.isdir(image_dir):
        raise PydarknetError(f"{image_dir}: image folder not found")
    if valid_images is not None and valid_json is None:
        raise PydarknetError("--valid-images needs --valid-json")
    if valid_json is not None:
        valid_images = valid_images or image_dir
        if not os.path.isdir(valid_images):
            raise PydarknetError(f"{valid_images}: validation image folder not found")
    train = _load_json(instances)
    names = _choose_classes(_categories(train, instances), classes, instances)
    valid = _load_json(valid_json) if valid_json else None
    if valid is not None:
        missing = [n for n in names if n not in _categories(valid, valid_json).values()]
        if missing:
            summary.note("classes missing from the validation file",
                         f"{valid_json}: no category named {', '.join(missing)}")
    with OutputFolder(out_dir, "coco") as folder:
        splits = [("train", train, instances, image_dir)]
        if valid is not None:
            splits.append(("valid", valid, valid_json, valid_images))
        entries = [("classes", len(names))]
        category_ids = None
        for split, data, path, images in splits:
            lines, ids = _convert_split(data, path, images, names, split, folder, summary,
                                        copy, keep_crowd)
            if not lines.paths:
                raise PydarknetError(f"{path}: none of its images could be converted (see the "
                                     "warnings above); nothing written")
            folder.write_list(f"{split}.txt", lines.paths)
            entries.append((split, folder.final(f"{split}.txt")))
            # the ids detector valid must write: the validation file's, where it has them
            category_ids = _merge_ids(category_ids, ids)
        folder.write_names("obj.names", names)
        ids = [category_ids.get(n) for n in names]
        entries += [("names", folder.final("obj.names")), ("backup", "backup/"),
                    ("eval", "coco")]
        if all(i is not None for i in ids):
            entries.append(("category_ids", ",".join(str(i) for i in ids)))
        folder.write_data("obj.data", entries)
        folder.commit({"names": names, "category_ids": ids})
    return summary, names


def _merge_ids(previous, ids):
    """Category ids by name, the later split's (the validation file's) winning."""
    merged = dict(previous or {})
    merged.update(ids)
    return merged

