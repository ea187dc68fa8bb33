"""A Darknet data set checked before a long run: every list of a ``.data`` file, its images
and their label files, with a per-class table, a box-size histogram and (``fix=True``) cleaned
label files and lists.

    report = check_dataset("obj.data")              # images decoded (reduced), labels parsed
    report = check_dataset("obj.data", images="header")   # sizes from file headers only
    print(format_report(report))                    # problems as 'path:line: why: 'text''
    write_plot(report, "boxes.png")                 # histogram + width/height scatter
    report.problem_count()                          # 0: clean

Label lines are read by :mod:`pydarknet.labels`' rules (the same that training and mAP use);
this module adds what only a checker needs: boxes that reach beyond the image, duplicate boxes,
comment lines (Darknet's ``fscanf`` stops there), binary or non-UTF-8 label files, duplicate
list entries, images in both lists, the names file against ``classes``.

``fix=True`` never loses anything: a file it changes is first copied to ``FILE.orig`` (or
``FILE.orig.1``, ``.2``, ... when that exists) and then replaced atomically (a temporary file
renamed over it). Label files lose their unusable lines, comments and duplicate boxes, and
boxes that reach beyond the image are cut to it (as training cuts them); lists lose the
entries whose image is missing or unreadable, and repeated entries. A second run finds
nothing to fix and writes nothing.
"""

import collections
import concurrent.futures
import dataclasses
import os
import shutil
import tempfile
import time

import numpy as np

from ..errors import DataError, PydarknetError
from .image_header import image_size_from_header, read_header  # (the first in __all__)
from ..labels import (label_path, parse_label_line, read_data_file, read_list_lines, read_names,
                      replace_image_to_label)

__all__ = ["KINDS", "CheckReport", "Finding", "check_dataset", "format_report", "write_plot",
           "render_plot", "size_histogram", "image_size_from_header", "SIZE_BUCKETS"]

# kind -> (a problem (True) or a note (False), what it is, what --fix does or None)
KINDS = {
    "names_unreadable": (True, "names file missing or unusable", None),
    "names_count": (True, "names file line count differs from classes", None),
    "list_unreadable": (True, "image list missing or unreadable", None),
    "list_empty": (True, "image list without entries", None),
    "list_duplicate": (True, "image listed more than once in a list", "entry dropped"),
    "image_missing": (True, "image file not found", "entry dropped from the list"),
    "image_empty": (True, "image file empty (0 bytes)", "entry dropped from the list"),
    "image_truncated": (True, "JPEG file truncated", "entry dropped from the list"),
    "image_unreadable": (True, "image OpenCV cannot read", "entry dropped from the list"),
    "labels_missing": (True, "label file not found (the image trains without objects in "
                             "Darknet, and is skipped by pydarknet)", None),
    "labels_unreadable": (True, "label file unreadable", None),
    "labels_binary": (True, "label file holding binary data (NUL bytes)",
                      "unusable lines dropped"),
    "labels_not_utf8": (True, "label file with bytes that are not UTF-8",
                        "unusable lines dropped"),
    "label_line_malformed": (True, "label line not 'class x y w h' numbers", "line dropped"),
    "label_class_out_of_range": (True, "class id outside 0..classes-1", "line dropped"),
    "label_box_empty": (True, "box width or height <= 0", "line dropped"),
    "label_box_outside": (True, "box wholly outside the image", "line dropped"),
    "label_box_at_origin": (True, "box centred at x = 0, y = 0 (Darknet drops it as a wrong "
                                  "annotation)", "line dropped"),
    "label_box_out_of_range": (True, "box reaching beyond the image", "box cut to the image"),
    "label_duplicate": (True, "the same box twice in one label file", "repeat dropped"),
    "label_comment": (True, "comment line in a label file (Darknet stops reading there)",
                      "line dropped"),
    "labels_empty": (False, "empty label files (read as images without objects)", None),
    "list_in_both": (False, "images in more than one list (train and valid)", None),
    "labels_pjreddie_rule": (False, "label files found only by pjreddie's /images/ -> /labels/ "
                                    "rule (AlexeyAB's Darknet would not find them)", None),
    "names_absent": (False, "no names= line in the .data file", None),
    "image_exif_turned": (False, "images turned or mirrored by their EXIF orientation as "
                                 "they load (in Darknet too): their labels must be of the "
                                 "turned image", None),
}

# sqrt(w * h) of a box, as a fraction of the image's: the text histogram's and plot's buckets
SIZE_BUCKETS = (0.0, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, float("inf"))
_KEEP_PER_KIND = 1000          # findings kept for the report; the counts are exact


@dataclasses.dataclass
class Finding:
    kind: str
    path: str
    line: int = None          # None: the whole file
    why: str = ""
    text: str = None          # the offending line, when there is one

    def __str__(self):
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        text = f": '{self.text[:80]}'" if self.text is not None else ""
        return f"{where}: {self.why}{text}"


@dataclasses.dataclass
class ListStats:
    split: str
    path: str
    entries: int = 0
    images_ok: int = 0
    boxes: int = 0
    no_objects: int = 0                 # images whose label file holds no usable box
    class_boxes: np.ndarray = None      # [classes] boxes per class
    class_images: np.ndarray = None     # [classes] images holding the class


class CheckReport:
    """What :func:`check_dataset` found: findings by kind (the first ``_KEEP_PER_KIND`` kept,
    every one counted), per-list statistics, every usable box (class, w, h as image fractions,
    image width and height in pixels or 0) and what ``fix`` wrote."""

    def __init__(self, datafile, classes, names=None, images="decode"):
        self.datafile, self.classes, self.names, self.images = datafile, classes, names, images
        self.counts = collections.Counter()
        self.findings = collections.defaultdict(list)
        self.lists = []
        self.boxes = np.zeros((0, 5))      # cls, w, h, image width, image height
        self.image_sizes = collections.Counter()
        self.fixed = []                    # (path, backup, what changed)

    def add(self, kind, path, line=None, why="", text=None):
        self.counts[kind] += 1
        if len(self.findings[kind]) < _KEEP_PER_KIND:
            self.findings[kind].append(Finding(kind, path, line, why or KINDS[kind][1], text))

    def problem_count(self):
        """How many problems (notes not counted): 0 means clean."""
        return sum(n for kind, n in self.counts.items() if KINDS[kind][0])

    def class_name(self, cls):
        return self.names[cls] if self.names and cls < len(self.names) else ""


# -- images ------------------------------------------------------------------------------------

def _image_info(path, mode):
    """(None, (width, height) as loaded or None, the ImageHeader where EXIF turns the image)
    for a usable image, else (kind, why, None). ``mode``: "decode" (OpenCV decodes it, at an
    eighth of its size where the format allows), "header" (the size from the header; other
    formats decoded), "exists" (not opened)."""
    import cv2

    from ..data.io import truncated_jpeg
    if not os.path.isfile(path):
        return "image_missing", ("image not found" if not os.path.exists(path)
                                 else "not a file"), None
    if mode == "exists":
        return None, None, None
    try:
        if os.path.getsize(path) == 0:
            return "image_empty", "the image file is empty (0 bytes)", None
        header = read_header(path)
        size = header.loaded if header else None
        if size is None or mode == "decode":
            flag = cv2.IMREAD_REDUCED_GRAYSCALE_8 if size is not None else cv2.IMREAD_GRAYSCALE
            try:
                img = cv2.imread(path, flag)
            except cv2.error:
                img = None
            if img is None or img.size == 0:
                return "image_unreadable", "OpenCV cannot decode the image (corrupt or not an " \
                                           "image)", None
            if size is None:
                size = (img.shape[1], img.shape[0])     # (as loaded: OpenCV turns it)
        if truncated_jpeg(path):
            return "image_truncated", "the JPEG file is truncated (no end-of-image marker)", None
    except OSError as e:
        return "image_unreadable", f"cannot read the image file ({e.strerror or e})", None
    return None, size, (header if header is not None and header.turned else None)


# -- label files -------------------------------------------------------------------------------

@dataclasses.dataclass
class LabelFile:
    path: str
    state: str = "ok"             # ok, missing, unreadable
    boxes: np.ndarray = None      # the usable boxes (cut to the image), [n, 5]
    lines: int = 0                # non-blank lines
    fixed_text: str = None        # the cleaned file when it differs from the file
    fix_note: str = ""            # what the cleaning changed


def _check_label_file(path, classes, tolerance, report):
    """Reads and checks one label file, adding its findings to ``report``."""
    result = LabelFile(path, boxes=np.zeros((0, 5)))
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        missing = isinstance(e, FileNotFoundError)
        result.state = "missing" if missing else "unreadable"
        report.add("labels_missing" if missing else "labels_unreadable", path,
                   why="label file not found" if missing else
                   f"cannot read the label file ({e.strerror or e})")
        return result
    binary = b"\0" in raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        text = raw.decode("utf-8", errors="replace")
        if not binary:
            report.add("labels_not_utf8", path, raw[:e.start].count(b"\n") + 1,
                       f"byte 0x{raw[e.start]:02x} is not UTF-8 text")
    kept, seen, boxes = [], {}, []
    bad = changed = 0

    def add(kind, number, why, line, dropped=True):
        nonlocal bad
        bad += dropped
        if not binary:            # a binary file is one finding, not a finding per line
            report.add(kind, path, number, why, line)

    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        result.lines += 1
        if line.startswith("#"):
            add("label_comment", number, "comment line (Darknet stops reading the file here)",
                line)
            continue
        kind, value = parse_label_line(line, classes)
        if kind is not None:
            add(kind, number, value, line)
            continue
        cls, x, y, w, h = value
        edges = {"left": x - w / 2, "top": y - h / 2, "right": x + w / 2, "bottom": y + h / 2}
        beyond = [f"{side} edge {v:.4g}" for side, v in edges.items()
                  if v < -tolerance or v > 1 + tolerance]
        if beyond:
            kind, cut = parse_label_line(line, classes, clip=True)
            if kind is not None:
                add(kind, number, cut, line)
                continue
            add("label_box_out_of_range", number,
                f"the box reaches beyond the image ({', '.join(beyond)})", line, dropped=False)
            cls, x, y, w, h = cut
            line = f"{cls} {x:.6f} {y:.6f} {w:.6f} {h:.6f}"
            changed += 1
        key = (cls,) + tuple(round(v, 5) for v in (x, y, w, h))
        if key in seen:
            add("label_duplicate", number, f"the same box as line {seen[key]}", line)
            continue
        seen[key] = number
        kept.append(line)
        boxes.append((cls, x, y, w, h))
    if binary:
        report.add("labels_binary", path, why=f"the file holds binary data (NUL bytes): {bad} of "
                                              f"{result.lines} lines unusable")
    result.boxes = np.array(boxes, np.float64).reshape(-1, 5)
    if bad or changed:
        result.fixed_text = "".join(ln + "\n" for ln in kept)
        result.fix_note = (f"{bad} lines dropped" if bad else "") + \
            (", " if bad and changed else "") + (f"{changed} boxes cut to the image"
                                                 if changed else "")
    return result


# -- writing fixes -----------------------------------------------------------------------------

def _backup_path(path):
    """The first free name among FILE.orig, FILE.orig.1, FILE.orig.2, ..."""
    candidate, n = path + ".orig", 0
    while os.path.lexists(candidate):
        n += 1
        candidate = f"{path}.orig.{n}"
    return candidate


def atomic_write(path, text):
    """``text`` into ``path`` through a temporary file renamed over it (a crash leaves the old
    file or the new one, never half of one), keeping the old file's permissions."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(path):
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _rewrite(path, text, what, report):
    """Backs ``path`` up (a copy renamed into place) and writes ``text`` over it."""
    backup = _backup_path(path)
    try:
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp",
                                   dir=folder)
        os.close(fd)
        shutil.copy2(path, tmp)
        os.replace(tmp, backup)
        atomic_write(path, text)
    except OSError as e:
        raise PydarknetError(f"{path}: cannot write the fixed file ({e.strerror or e}); "
                             f"the file is unchanged") from None
    report.fixed.append((path, backup, what))


# -- the check ---------------------------------------------------------------------------------

def check_dataset(datafile, images="decode", fix=False, threads=None, tolerance=0.001,
                  progress=None):
    """Checks every list (train=, valid=) of a ``.data`` file; returns a :class:`CheckReport`.

    ``images``: "decode" (OpenCV decodes every image, at an eighth of its size where it can),
    "header" (JPEG/PNG/BMP sizes from their headers, other formats decoded), "exists" (only
    that the files exist). ``tolerance``: how far (as a fraction of the image) a box edge may
    reach beyond the image before it is reported. ``fix``: see the module's docstring.
    ``progress(text)``: called now and then with how far the check is. A .data file that cannot
    be read, or that names no list, is a ``DataError``; everything else is a finding."""
    if images not in ("decode", "header", "exists"):
        raise ValueError(f"images={images!r}: expected 'decode', 'header' or 'exists'")
    data = read_data_file(datafile)
    classes = data.get("classes")
    if not isinstance(classes, int) or classes <= 0:
        raise DataError(f"{datafile}: needs a 'classes = N' line with N > 0")
    splits = [(key, data[key]) for key in ("train", "valid") if data.get(key)]
    if not splits:
        raise DataError(f"{datafile}: no 'train =' or 'valid =' line: no image list to check")
    tolerance = max(float(tolerance), 1e-5)     # the 6 decimals --fix writes stay inside

    report = CheckReport(datafile, classes, images=images)
    if data.get("names"):
        try:
            report.names = read_names(data["names"])
        except DataError as e:
            report.add("names_unreadable", data["names"], why=str(e).split(": ", 1)[-1])
        else:
            if len(report.names) != classes:
                report.add("names_count", data["names"], why=(
                    f"{len(report.names)} names, but {datafile} has classes={classes}"))
    else:
        report.add("names_absent", datafile, why="no 'names =' line: classes shown by number")

    labels = {}                   # label path -> LabelFile (a file in two lists read once)
    listed = {}                   # image path -> the split that listed it first
    all_boxes = []
    workers = threads or min(16, (os.cpu_count() or 2) * 2)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for split, list_path in splits:
            stats = _check_list(split, list_path, report, pool, labels, listed, all_boxes,
                                images, tolerance, progress, fix)
            if stats is not None:
                report.lists.append(stats)
    if all_boxes:            # cls, w, h and the image's size, one row a box
        boxes = np.concatenate([b for b, _ in all_boxes])
        sizes = np.repeat([size for _, size in all_boxes], [len(b) for b, _ in all_boxes], 0)
        report.boxes = np.column_stack([boxes[:, 0], boxes[:, 3], boxes[:, 4], sizes])
    if fix:
        for lab in labels.values():
            if lab.fixed_text is not None:
                _rewrite(lab.path, lab.fixed_text, lab.fix_note, report)
    return report


def _check_list(split, list_path, report, pool, labels, listed, all_boxes, images, tolerance,
                progress, fix):
    try:
        entries = read_list_lines(list_path, f"{split} list")
    except DataError as e:
        report.add("list_unreadable", list_path, why=str(e).split(": ", 1)[-1])
        return None
    if not entries:
        report.add("list_empty", list_path, why=f"the {split} list has no image paths")
        return None
    stats = ListStats(split, list_path, len(entries), class_boxes=np.zeros(report.classes, int),
                      class_images=np.zeros(report.classes, int))
    first_line, drop = {}, set()
    unique = []
    for number, path in entries:
        if path in first_line:
            report.add("list_duplicate", list_path, number,
                       f"the same image as line {first_line[path]}", path)
            drop.add(number)
            continue
        first_line[path] = number
        unique.append((number, path))
        if listed.setdefault(path, split) != split:
            report.add("list_in_both", list_path, number, f"also in the {listed[path]} list",
                       path)
    futures = pool.map(lambda entry: _image_info(entry[1], images), unique)
    last = time.monotonic()
    for done, ((number, path), (kind, info, turned)) in enumerate(zip(unique, futures), 1):
        if progress is not None and time.monotonic() - last > 0.25:
            last = time.monotonic()
            progress(f"{split}: {done}/{len(unique)} images")
        if kind is not None:
            report.add(kind, list_path, number, _image_why(info, path, list_path), path)
            drop.add(number)
            continue
        stats.images_ok += 1
        if info is not None:
            report.image_sizes[info] += 1
        if turned is not None:
            report.add("image_exif_turned", list_path, number, turned.describe(), path)
        lp = label_path(path)
        if lp not in labels:
            if lp != replace_image_to_label(path):
                report.add("labels_pjreddie_rule", lp, why="found by pjreddie's rule only; "
                           f"AlexeyAB's Darknet looks for {replace_image_to_label(path)}")
            labels[lp] = _check_label_file(lp, report.classes, tolerance, report)
            if labels[lp].state == "ok" and labels[lp].lines == 0:
                report.add("labels_empty", lp, why="empty label file (an image without objects)")
        boxes = labels[lp].boxes
        if labels[lp].state == "ok" and len(boxes) == 0:
            stats.no_objects += 1
        stats.boxes += len(boxes)
        cls = boxes[:, 0].astype(int)
        np.add.at(stats.class_boxes, cls, 1)
        stats.class_images[np.unique(cls)] += 1
        if len(boxes):
            all_boxes.append((boxes, info or (0, 0)))
    if progress is not None:
        progress(f"{split}: {len(unique)}/{len(unique)} images")
    if fix and drop:
        _fix_list(list_path, drop, report)
    return stats


def _image_why(why, path, list_path):
    """The reason an image is unusable, with a hint when a relative path names a file relative
    to the list's folder instead of the working directory (where Darknet opens it)."""
    if not os.path.isabs(path) and not os.path.exists(path):
        beside = os.path.join(os.path.dirname(os.path.abspath(list_path)), path)
        if os.path.exists(beside):
            why += (f" (it is at {beside}: Darknet opens relative paths from the working "
                    "directory, not from the list's folder)")
    return why


def _fix_list(list_path, drop, report):
    """The list without the lines in ``drop`` (missing or unreadable images, repeats)."""
    with open(list_path, encoding="utf-8-sig", errors="surrogateescape") as f:
        lines = f.read().splitlines()
    kept = [ln for number, ln in enumerate(lines, 1) if number not in drop]
    _rewrite(list_path, "".join(ln + "\n" for ln in kept), f"{len(drop)} entries dropped", report)


# -- the report --------------------------------------------------------------------------------

def _bucket_label(low, high):
    if high == float("inf"):
        return f">= {low * 100:g}%"
    return f"{low * 100:g}-{high * 100:g}%"


def size_histogram(report):
    """Boxes per :data:`SIZE_BUCKETS` bucket of sqrt(w * h) (fractions of the image)."""
    side = np.sqrt(report.boxes[:, 1] * report.boxes[:, 2])
    counts, _ = np.histogram(side, bins=np.array(SIZE_BUCKETS[:-1] + (np.inf,)))
    return counts


def _summary_lines(report):
    mode = {"decode": "images decoded by OpenCV",
            "header": "image sizes read from their headers (--quick)",
            "exists": "images not opened (--no-images)"}[report.images]
    names = f", {len(report.names)} names" if report.names else ""
    out = [f"{report.datafile}: classes={report.classes}{names}; {mode}"]
    for st in report.lists:
        out.append(f"  {st.split}: {st.path}: {st.entries} entries, {st.images_ok} usable "
                   f"images, {st.boxes} boxes; images without objects: {st.no_objects}")
    if report.image_sizes:
        common = report.image_sizes.most_common(3)
        total = sum(report.image_sizes.values())
        widths = [w for w, _ in report.image_sizes]
        heights = [h for _, h in report.image_sizes]
        sizes = ", ".join(f"{w}x{h} ({n * 100 / total:.0f}%)" for (w, h), n in common)
        out.append(f"  image sizes: {len(report.image_sizes)} distinct, most common {sizes}; "
                   f"widths {min(widths)}..{max(widths)}, heights {min(heights)}..{max(heights)}")
    return out


def _class_table(report):
    if not report.lists:
        return []
    head = "".join(f"{st.split + ' boxes':>14}{st.split + ' images':>14}" for st in report.lists)
    width = max([5] + [len(report.class_name(c)) for c in range(report.classes)])
    out = ["", f"per class{'':{width - 3}}{head}"]
    for cls in range(report.classes):
        row = "".join(f"{st.class_boxes[cls]:>14}{st.class_images[cls]:>14}"
                      for st in report.lists)
        empty = "   <- no boxes" if all(st.class_boxes[cls] == 0 for st in report.lists) else ""
        out.append(f"  {cls:>4} {report.class_name(cls):<{width}}{row}{empty}")
    return out


def _histogram_lines(report):
    if len(report.boxes) == 0:
        return []
    counts = size_histogram(report)
    out = ["", "box size, sqrt(w*h) as a fraction of the image side:"]
    top = max(counts.max(), 1)
    for low, high, n in zip(SIZE_BUCKETS[:-1], SIZE_BUCKETS[1:], counts):
        bar = "#" * int(round(40 * n / top))
        out.append(f"  {_bucket_label(low, high):>10} {n:>8} {n * 100 / len(report.boxes):5.1f}% "
                   f"{bar}")
    known = report.boxes[:, 3] > 0
    if known.any():
        b = report.boxes[known]
        area = b[:, 1] * b[:, 3] * b[:, 2] * b[:, 4]
        small, large = int((area < 32 ** 2).sum()), int((area >= 96 ** 2).sum())
        out.append(f"  in pixels (COCO's sizes): small (< 32x32) {small}, medium "
                   f"{len(b) - small - large}, large (>= 96x96) {large}")
    return out


def format_report(report, show=10):
    """The report as text: a summary per list, the per-class table, the box-size histogram,
    then problems and notes by kind (the first ``show`` of each kind as ``path:line: why:
    'text'``, then "... and M more"), what --fix wrote and a closing verdict."""
    out = _summary_lines(report) + _class_table(report) + _histogram_lines(report)
    for problems in (True, False):
        kinds = [k for k in KINDS if report.counts[k] and KINDS[k][0] == problems]
        if not kinds:
            continue
        total = sum(report.counts[k] for k in kinds)
        out += ["", (f"problems: {total}" if problems else f"notes: {total}")]
        for kind in kinds:
            fixes = KINDS[kind][2]
            fixes = f"; --fix: {fixes}" if fixes and problems else ""
            out.append(f"  {kind} ({report.counts[kind]}): {KINDS[kind][1]}{fixes}")
            shown = report.findings[kind][:show]
            out += [f"    {f}" for f in shown]
            if report.counts[kind] > len(shown):
                out.append(f"    ... and {report.counts[kind] - len(shown)} more")
    if report.fixed:
        out += ["", f"fixed {len(report.fixed)} files (the old ones kept):"]
        shown = report.fixed[:show]
        out += [f"  {path}: {what} (was kept as {backup})" for path, backup, what in shown]
        if len(report.fixed) > len(shown):
            out.append(f"  ... and {len(report.fixed) - len(shown)} more")
    n = report.problem_count()
    out += ["", f"{n} problems found" if n else "no problems found"]
    return "\n".join(out) + "\n"


# -- the plot ----------------------------------------------------------------------------------

def _class_colours(classes):
    import cv2
    hues = np.linspace(0, 180, max(classes, 1), endpoint=False).astype(np.uint8)
    hsv = np.stack([hues, np.full_like(hues, 200), np.full_like(hues, 200)], -1)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0].astype(int)


def render_plot(report):
    """A BGR image: the box-size histogram (left) and every box's width against its height as
    fractions of the image, coloured by class (right). Drawn with OpenCV alone."""
    import cv2
    canvas = np.full((460, 960, 3), 255, np.uint8)
    black, grey, font = (0, 0, 0), (200, 200, 200), cv2.FONT_HERSHEY_SIMPLEX

    def text(s, x, y, scale=0.45):
        cv2.putText(canvas, s, (x, y), font, scale, black, 1, cv2.LINE_AA)

    text(f"{os.path.basename(report.datafile)}: {len(report.boxes)} boxes", 20, 24, 0.6)
    # histogram: 8 bars
    x0, y0, w0, h0 = 60, 60, 380, 330
    counts = size_histogram(report) if len(report.boxes) else np.zeros(len(SIZE_BUCKETS) - 1)
    top = max(int(counts.max()), 1)
    cv2.rectangle(canvas, (x0, y0), (x0 + w0, y0 + h0), grey, 1)
    bar = w0 // len(counts)
    for i, n in enumerate(counts):
        height = int(h0 * n / top)
        cv2.rectangle(canvas, (x0 + i * bar + 4, y0 + h0 - height),
                      (x0 + (i + 1) * bar - 4, y0 + h0), (180, 120, 40), -1)
        text(str(int(n)), x0 + i * bar + 4, y0 + h0 - height - 4, 0.35)
        low, high = SIZE_BUCKETS[i], SIZE_BUCKETS[i + 1]
        text(f"{low * 100:g}" if high != float("inf") else f">{low * 100:g}",
             x0 + i * bar + 8, y0 + h0 + 18, 0.4)
    text("sqrt(w*h), % of the image side", x0 + 60, y0 + h0 + 42)
    # scatter: w against h
    x1, side = 540, 330
    cv2.rectangle(canvas, (x1, y0), (x1 + side, y0 + side), grey, 1)
    for f in (0.25, 0.5, 0.75):
        p = int(f * side)
        cv2.line(canvas, (x1 + p, y0), (x1 + p, y0 + side), (235, 235, 235), 1)
        cv2.line(canvas, (x1, y0 + side - p), (x1 + side, y0 + side - p), (235, 235, 235), 1)
    if len(report.boxes):
        colours = _class_colours(report.classes)
        b = report.boxes
        px = x1 + np.clip((b[:, 1] * side).astype(int), 0, side - 1)
        py = y0 + side - 1 - np.clip((b[:, 2] * side).astype(int), 0, side - 1)
        cls = np.clip(b[:, 0].astype(int), 0, report.classes - 1)
        if len(b) <= 20000:
            for x, y, c in zip(px, py, cls):
                cv2.circle(canvas, (int(x), int(y)), 2, tuple(int(v) for v in colours[c]), -1,
                           cv2.LINE_AA)
        else:                       # a pixel a box: COCO's 860k boxes in a second
            canvas[py, px] = colours[cls]
        for c in range(min(report.classes, 12)):
            y = y0 + 12 + 18 * c
            cv2.circle(canvas, (x1 + side + 16, y - 4), 4, tuple(int(v) for v in colours[c]), -1)
            text(report.class_name(c)[:10] or str(c), x1 + side + 26, y)
    text("box width (fraction of the image)", x1 + 40, y0 + side + 42)
    text("0", x1 - 14, y0 + side + 4)
    text("1", x1 + side - 4, y0 + side + 18)
    text("1", x1 - 14, y0 + 10)
    text("h", x1 - 30, y0 + side // 2)
    return canvas


def write_plot(report, path):
    """:func:`render_plot` written to ``path`` (PNG unless its extension names another format
    OpenCV writes), atomically."""
    import cv2
    ext = os.path.splitext(path)[1].lower() or ".png"
    try:
        ok, buf = cv2.imencode(ext, render_plot(report))
    except cv2.error:
        ok = False
    if not ok:
        raise PydarknetError(f"{path}: OpenCV cannot write {ext} images; name a .png file")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp",
                                   dir=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(buf.tobytes())
        os.replace(tmp, path)
    except OSError as e:
        raise PydarknetError(f"{path}: cannot write the plot ({e.strerror or e})") from None
