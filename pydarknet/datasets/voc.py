"""Pascal VOC annotations (xml, VOCdevkit layout) -> Darknet's detection layout.

    convert_voc("VOCdevkit", "data/voc", sets="2007/trainval,2012/trainval",
                valid_sets="2007/test")

``VOC_ROOT/VOC<year>/ImageSets/Main/<set>.txt`` lists the image ids; each has
``Annotations/<id>.xml`` and ``JPEGImages/<id>.jpg``. Boxes become Darknet's relative centre
and size as Darknet's ``scripts/voc_label.py`` computes them (1-based pixel corners, centre
``(min + max) / 2 - 1``, size ``max - min``), cut to the image; ``difficult`` objects are
skipped unless ``keep_difficult``.
"""

import os
import xml.etree.ElementTree as ET

from ..errors import PydarknetError
from .layout import (DetectionSplit, OutputFolder, Summary, annotation_frame, box_to_darknet,
                     clip_box, image_size, readable_file)

__all__ = ["VOC_CLASSES", "convert_voc", "read_voc_xml"]

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")
_DEFAULT_SETS = ("2007/trainval", "2012/trainval")
_DEFAULT_VALID = ("2007/test",)


def _year_folder(root, year):
    for name in (f"VOC{year}", os.path.join("VOCdevkit", f"VOC{year}")):
        if os.path.isdir(os.path.join(root, name)):
            return os.path.join(root, name)
    return os.path.join(root, f"VOC{year}")


def _parse_sets(text, root, option, defaults):
    """[(year, set, list file)] of ``--sets`` (missing files are errors) or, by default,
    those of ``defaults`` that exist."""
    given = text is not None
    items = [s.strip() for s in (text.split(",") if given else defaults)]
    if given and text.strip().lower() == "none":
        return []
    out = []
    for item in items:
        if item.count("/") != 1 or not all(item.split("/")):
            raise PydarknetError(f"{option} {text}: expected YEAR/SET items such as "
                                 "2007/trainval, separated by commas")
        year, name = item.split("/")
        path = os.path.join(_year_folder(root, year), "ImageSets", "Main", f"{name}.txt")
        if not os.path.isfile(path):
            if given:
                raise PydarknetError(f"{option}: {item}: {path} not found")
            continue
        out.append((year, name, path))
    return out


def _text(node, tag):
    child = node.find(tag)
    return None if child is None or child.text is None else child.text.strip()


def read_voc_xml(path):
    """An annotation file: ((width, height) or None, [(name, difficult, (xmin, ymin, xmax,
    ymax) or why-not), ...]). A file that is not xml is a ``ValueError`` naming the line."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        line, col = e.position
        raise ValueError(f"{path}:{line}:{col}: not well-formed xml") from None
    size = None
    node = root.find("size")
    if node is not None:
        try:
            w, h = int(float(_text(node, "width"))), int(float(_text(node, "height")))
            size = (w, h) if w > 0 and h > 0 else None
        except (TypeError, ValueError, OverflowError):      # (int of inf overflows)
            size = None
    objects = []
    for obj in root.iter("object"):
        name = _text(obj, "name") or ""
        difficult = _text(obj, "difficult")
        difficult = difficult is not None and difficult not in ("0", "")
        box = obj.find("bndbox")
        try:
            corners = tuple(float(_text(box, k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError, AttributeError):
            corners = "no bndbox with numeric xmin, ymin, xmax, ymax"
        objects.append((name, difficult, corners))
    return size, objects


def _convert_set(root, year, set_name, list_file, split, lines, names, summary,
                 keep_difficult, seen):
    """The images of one ImageSets list into ``lines`` (a :class:`DetectionSplit`)."""
    folder = _year_folder(root, year)
    with open(list_file, encoding="utf-8-sig", errors="replace") as f:
        ids = [ln.split()[0] for ln in f if ln.strip()]
    for image_id in ids:
        xml = os.path.join(folder, "Annotations", f"{image_id}.xml")
        image = os.path.join(folder, "JPEGImages", f"{image_id}.jpg")
        why = readable_file(image)
        if why:
            summary.skip("missing or unreadable images", f"{image}: {why} ({list_file}); "
                         "image skipped")
            continue
        try:
            size, objects = read_voc_xml(xml)
        except FileNotFoundError:
            summary.skip("missing or malformed xml", f"{xml}: annotation file not found; "
                         "image skipped")
            continue
        except (ValueError, OSError) as e:
            summary.skip("missing or malformed xml", f"{e}; image skipped")
            continue
        given = size
        if size is None:
            size = image_size(image)
            if size is None:
                summary.skip("missing or malformed xml", f"{xml}: no <size> with width and "
                             f"height, and OpenCV cannot read {image}; image skipped")
                continue
            summary.note("sizes read from the image", f"{xml}: no <size> with width and "
                         f"height; {size[0]}x{size[1]} read from the image")
        frame, turn = annotation_frame(image, given, summary, f"{image} ({xml})")
        w, h = frame or size
        boxes = []
        for number, (name, difficult, corners) in enumerate(objects, 1):
            where = f"{xml}: object {number} ({name or 'no name'})"
            if name not in names:
                summary.skip("objects of other classes", f"{where}: '{name}' is not among the "
                             "classes; object skipped")
                continue
            if difficult and not keep_difficult:
                summary.skip("difficult objects", f"{where}: difficult; object skipped "
                             "(--keep-difficult keeps them)")
                continue
            if isinstance(corners, str):
                summary.skip("malformed objects", f"{where}: {corners}; object skipped")
                continue
            xmin, ymin, xmax, ymax = corners
            # voc_label.py: 1-based corners, centre (min + max) / 2 - 1, size max - min
            corners = (xmin - 1, ymin - 1, xmax - 1, ymax - 1)
            clipped = clip_box(*(turn.turn_box(*corners) if turn else corners), w, h)
            if clipped is None:
                summary.skip("degenerate boxes", f"{where}: box ({xmin:g}, {ymin:g}, "
                             f"{xmax:g}, {ymax:g}) has no width or height inside the {w}x{h} "
                             "image; object skipped")
                continue
            x0, y0, x1, y1, was_clipped = clipped
            if was_clipped:
                summary.note("boxes clipped to the image")
            k = names.index(name)
            boxes.append((k, *box_to_darknet(x0, y0, x1, y1, w, h)))
        link = f"{image_id}.jpg"
        if link in seen:
            if seen[link] == (year, image_id):
                summary.skip("images listed twice", f"{image} ({list_file}): already in the "
                             f"{split} list; listed once")
                continue
            link = f"VOC{year}_{image_id}.jpg"
        seen[link] = (year, image_id)
        boxes = lines.add(image, link, boxes)
        summary.image(split, [names[b[0]] for b in boxes])


def convert_voc(voc_root, out_dir, *, sets=None, valid_sets=None, classes=None,
                keep_difficult=False, copy=False, out=None):
    """Converts VOCdevkit lists into ``out_dir``; returns the summary and the class names."""
    summary = Summary("voc", out)
    if not os.path.isdir(voc_root):
        raise PydarknetError(f"{voc_root}: VOC folder not found")
    names = list(classes) if classes else list(VOC_CLASSES)
    train = _parse_sets(sets, voc_root, "--sets", _DEFAULT_SETS)
    if not train:
        raise PydarknetError(f"{voc_root}: none of {', '.join(_DEFAULT_SETS)} found (looked for "
                             f"VOC<year>/ImageSets/Main/<set>.txt); name the lists with --sets")
    valid = _parse_sets(valid_sets, voc_root, "--valid-sets", _DEFAULT_VALID)
    with OutputFolder(out_dir, "voc") as folder:
        entries = [("classes", len(names))]
        for split, lists in (("train", train), ("valid", valid)):
            if not lists:
                continue
            lines, seen = DetectionSplit(folder, split, copy, summary), {}
            for year, set_name, list_file in lists:
                _convert_set(voc_root, year, set_name, list_file, split, lines, names,
                             summary, keep_difficult, seen)
            if not lines.paths:
                raise PydarknetError(f"no image of the {split} lists "
                                     f"({', '.join(f'{y}/{s}' for y, s, _ in lists)}) could be "
                                     "converted (see the warnings above); nothing written")
            folder.write_list(f"{split}.txt", lines.paths)
            entries.append((split, folder.final(f"{split}.txt")))
        boxless = [n for n in names if not any(c[n] for c in summary.boxes.values())]
        if boxless:
            summary.note("classes without any box", f"no box of class {', '.join(boxless)} "
                         "in the converted lists (check the names given to --classes)",
                         count=len(boxless))
        folder.write_names("obj.names", names)
        entries += [("names", folder.final("obj.names")), ("backup", "backup/")]
        folder.write_data("obj.data", entries)
        folder.commit({"names": names,
                       "sets": {"train": [f"{y}/{s}" for y, s, _ in train],
                                "valid": [f"{y}/{s}" for y, s, _ in valid]}})
    return summary, names
