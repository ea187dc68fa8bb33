"""What the converters (:mod:`.coco`, :mod:`.voc`, :mod:`.idx`) share: the output folder that
appears whole or not at all, Darknet's ``.data`` / ``.names`` / list files, image links with
their label files where Darknet looks for them, and the summary of what was converted and
what was skipped.

    with OutputFolder(out_dir, "coco") as out:        # builds in a temporary sibling folder
        split = DetectionSplit(out, "train", copy=False)
        split.add(source_image, "000000000139.jpg", [(0, 0.5, 0.5, 0.2, 0.3)])
        out.write_list("train.txt", split.paths)
        out.commit({"names": names})                   # renamed into place only here

A failure before ``commit`` leaves the old output (if any) as it was and removes the
temporary folder: never a half-written output. A run that could not clean up (killed, power
lost) is cleaned up after by the next one into the same folder (:func:`clean_after_killed`).
"""

import collections
import json
import os
import shutil
import struct
import sys
import zlib

from ..errors import PydarknetError
from ..labels import replace_image_to_label
from .image_header import image_size_from_header, read_header

__all__ = ["OutputFolder", "DetectionSplit", "Summary", "MARKER", "parse_names_option",
           "safe_file_name", "image_size", "annotation_frame"]

MARKER = ".pydarknet-data.json"     # what a converter leaves in its output: which one, names
_CLASSIFIER_COMMANDS = ("idx", "cifar")   # their summaries count images, not boxes
_SHOWN_PER_KIND = 5                  # messages printed per kind of skip; the rest are counted


class Summary:
    """Images and boxes per class written, and what was skipped and why, with counts.

    ``skip(kind, message)`` counts one skipped input and prints its message (the first few of
    each kind) as a warning naming the file; ``note(kind, message)`` counts something that
    was kept but changed (a box clipped to the image)."""

    def __init__(self, command, out=None):
        self.command = command
        self.out = out if out is not None else sys.stderr
        self.images = collections.Counter()          # split -> images listed
        self.negatives = collections.Counter()       # split -> images without objects
        self.boxes = collections.OrderedDict()       # split -> Counter(class name -> boxes)
        self.skipped = collections.Counter()
        self.notes = collections.Counter()
        self.kept = {}                               # split -> images kept from an older run
        self._shown = collections.Counter()

    def _message(self, kind, message):
        self._shown[kind] += 1
        if self._shown[kind] <= _SHOWN_PER_KIND:
            print(f"warning: {message}", file=self.out)
        elif self._shown[kind] == _SHOWN_PER_KIND + 1:
            print(f"warning: more '{kind}' ... (counted in the summary)", file=self.out)

    def skip(self, kind, message, count=1):
        self.skipped[kind] += count
        self._message(kind, message)

    def note(self, kind, message=None, count=1):
        self.notes[kind] += count
        if message:
            self._message(kind, message)

    def image(self, split, class_names):
        """One listed image of ``split`` with objects of these classes (names, may repeat)."""
        self.images[split] += 1
        per_class = self.boxes.setdefault(split, collections.Counter())
        if not class_names:
            self.negatives[split] += 1
        per_class.update(class_names)

    def text(self, out_dir, names):
        lines = [f"data {self.command}: {out_dir}"]
        for split in self.images:
            per_class = self.boxes.get(split, collections.Counter())
            total = sum(per_class.values())
            negatives = (f" ({self.negatives[split]} without objects)"
                         if self.negatives[split] else "")
            line = f"  {split}: {self.images[split]} images{negatives}"
            if self.command not in _CLASSIFIER_COMMANDS:
                line += f", {total} boxes"
            lines.append(line)
            counts = ", ".join(f"{n} {per_class[n]}" for n in names if per_class[n])
            if counts:
                what = "images" if self.command in _CLASSIFIER_COMMANDS else "boxes"
                lines.append(f"    {what} per class: "
                             f"{counts}")
        for split, count in self.kept.items():
            lines.append(f"  {split}: {count} images kept from the earlier run")
        if self.skipped:
            lines.append("  skipped: " + ", ".join(f"{k} {v}" for k, v in
                                                  sorted(self.skipped.items())))
        else:
            lines.append("  skipped: nothing")
        if self.notes:
            lines.append("  changed: " + ", ".join(f"{k} {v}" for k, v in
                                                  sorted(self.notes.items())))
        return "\n".join(lines)


def parse_names_option(text, option="--classes"):
    """A comma-separated list of names (``a,b,c``); empty items and repeats are errors."""
    names = [n.strip() for n in str(text).split(",")]
    if any(not n for n in names):
        raise PydarknetError(f"{option} {text}: an empty name (give names separated by commas)")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise PydarknetError(f"{option}: {', '.join(repeated)} given more than once")
    return names


def safe_file_name(name):
    """A name usable in file names and Darknet's files: letters, digits, ``-``, ``.`` and
    ``_`` kept, anything else (spaces, ``/``) becomes ``_``."""
    out = "".join(c if c.isalnum() or c in "-._" else "_" for c in name.strip())
    return out.strip("._") or "_"


def image_size(source):
    """(width, height) of an image (a path or the file's bytes) as OpenCV loads it for
    training (EXIF orientation applied), or None when it cannot be read: from the header of a
    JPEG, PNG or BMP file, else decoded."""
    import cv2
    import numpy as np
    try:
        size = image_size_from_header(source)
        if size is not None:
            return size
        data = np.frombuffer(source, np.uint8) if isinstance(source, bytes) else \
            np.fromfile(source, np.uint8)
    except (OSError, struct.error):
        return None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        return None
    return img.shape[1], img.shape[0]


def annotation_frame(image, annotated, summary, where):
    """Which pixels an annotation's boxes were drawn on, for an image (a path or its bytes)
    that OpenCV, Darknet and pydarknet load turned by its EXIF orientation. Returns (the size
    to make the boxes relative to, or ``annotated`` where nothing changes; the
    :class:`~.image_header.ImageHeader` to turn the boxes with, or None).

    ``annotated``: the (width, height) the annotation gives, or None.
    - neither the image's stored nor its loaded size (a resized image, a wrong size): kept,
      read at the annotation's size, noted;
    - the turned image's size (a quarter turn): drawn on the image as loaded (labelme turns it
      as it loads), kept;
    - the stored pixels' size (a quarter turn; labelImg draws on those): the boxes are turned
      with the image, noted;
    - otherwise (a half turn or a mirror keeps the size, or no size given): kept as drawn, and
      the image named in a note to check."""
    try:
        header = read_header(image)
    except (OSError, struct.error):
        header = None
    if header is None:
        return annotated, None
    if annotated is not None and tuple(annotated) not in (header.stored, header.loaded):
        w, h = header.loaded
        summary.note("images whose size differs from the annotation's (its coordinates read "
                     "at the annotation's size)", f"{where}: the image is {w}x{h}, the "
                     f"annotation says {annotated[0]:g}x{annotated[1]:g}")
        return annotated, None
    if not header.turned:
        return annotated, None
    if annotated is not None and tuple(annotated) == header.loaded != header.stored:
        return annotated, None
    if annotated is not None and tuple(annotated) == header.stored != header.loaded:
        summary.note("boxes turned with their image's EXIF orientation",
                     f"{where}: {header.describe()}; the annotation is of the stored "
                     f"{annotated[0]}x{annotated[1]} pixels: its boxes are turned with the "
                     "image")
        return header.loaded, header
    summary.note("images turned by their EXIF orientation (boxes kept as drawn: check them)",
                 f"{where}: {header.describe()}; its boxes are kept as drawn, as on the image "
                 "so loaded: check that they fit it (pydarknet data check lists these images)")
    return annotated or header.loaded, None


# how image files start (JPEG, PNG, BMP, GIF, TIFF, WebP/RIFF, PPM/PGM): a cheap check that
# catches text and empty files without decoding every image of a large data set
_IMAGE_MAGIC = (b"\xff\xd8", b"\x89PNG", b"BM", b"GIF8", b"II*\x00", b"MM\x00*", b"RIFF",
                b"P1", b"P2", b"P3", b"P4", b"P5", b"P6")


def load_json(path, what):
    """A json file's content; a PydarknetError naming the file (and where its json breaks)
    when it is missing, unreadable or not json. ``what``: the file's kind, for the message."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            return json.load(f)
    except FileNotFoundError:
        raise PydarknetError(f"{path}: {what} not found") from None
    except json.JSONDecodeError as e:
        raise PydarknetError(f"{path}:{e.lineno}:{e.colno}: not valid json ({e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PydarknetError(f"{path}: cannot read the {what} ({e})") from None


def read_label_lines(path, summary):
    """The lines of an image's label file; [] (noted in ``summary``) when there is none (an
    image without objects) or it cannot be read (the image kept without objects)."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        summary.note("images without a label file (no objects)")
    except OSError as e:
        summary.note("unreadable label files", f"{path}: cannot read it ({e.strerror or e}); "
                     "image kept without objects")
    return []


def usable_image_size(path, summary, where=""):
    """(width, height) of an image file (from its header where the format allows); None, the
    image skipped in ``summary`` with why, when it is missing, unreadable or does not
    decode. ``where``: added to the message (the split)."""
    why = readable_file(path)
    size = None if why else image_size(path)
    if size is None:
        summary.skip("missing or unreadable images", f"{path}: {why or 'does not decode'}"
                     f"{f' ({where})' if where else ''}; skipped")
    return size


def readable_file(path):
    """None when ``path`` is a readable file that starts as an image file does, else why
    not."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            if not head:
                return "image file is empty"
            if not head.startswith(_IMAGE_MAGIC):
                return "not an image file (its first bytes are no known image format's)"
    except FileNotFoundError:
        return "image file not found"
    except IsADirectoryError:
        return "is a folder, not an image file"
    except OSError as e:
        return f"cannot read the image file ({e.strerror or e})"
    return None


def _alive(pid):
    """Whether process ``pid`` runs on this machine (elsewhere than POSIX: assumed so, as
    Windows' os.kill would stop it)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):   # none, or a number no PID can be
        return False
    except OSError:            # another user's process
        return True
    return True


def clean_after_killed(parent, name):
    """Removes what converter runs into ``parent/name`` that no longer run left beside it
    (their temporary ``.NAME.tmp-PID`` folders). A run killed between commit's two renames
    left the older output as ``.NAME.tmp-PID.old`` and none in place: that comes back as
    ``NAME``, as if the run had not started. Runs still going (their PID alive here) are left
    alone."""
    root, prefix = os.path.join(parent, name), f".{name}.tmp-"
    try:
        entries = sorted(os.listdir(parent))
    except OSError:
        return
    stale = []
    for entry in entries:
        if not entry.startswith(prefix):
            continue
        pid = entry[len(prefix):]
        old = pid.endswith(".old")
        pid = pid[:-len(".old")] if old else pid
        if pid.isdigit() and not _alive(int(pid)):
            stale.append((old, os.path.join(parent, entry)))
    for old, path in sorted(stale, reverse=True):     # the older outputs first
        if old and not os.path.lexists(root):
            try:
                os.rename(path, root)
            except OSError as e:
                raise PydarknetError(
                    f"{path}: holds the older output of {root}, moved aside by a run that was "
                    f"killed, and cannot be put back ({e.strerror or e}); rename it to {root} "
                    "yourself") from None
            print(f"pydarknet: {root}: put back the older output that a killed run had moved "
                  f"to {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


class OutputFolder:
    """An output folder built in a temporary sibling and renamed into place by :meth:`commit`.

    ``out_dir`` may be missing, an empty folder, or an older output of the same converter
    (its marker file says which); anything else is an error before any work is done. Paths
    written into the files (lists, .data) are the final absolute ones (:meth:`final`)."""

    def __init__(self, out_dir, converter):
        self.converter = converter
        self.root = os.path.abspath(os.path.expanduser(str(out_dir)))
        parent, name = os.path.split(self.root)
        if not name:
            raise PydarknetError(f"{out_dir}: give a folder to write into, not the file "
                                 "system's root")
        self.previous = None        # the older output's marker (a dict), when there is one
        if os.path.isdir(parent):
            clean_after_killed(parent, name)
        if os.path.lexists(self.root):
            if not os.path.isdir(self.root) or os.path.islink(self.root):
                raise PydarknetError(f"{out_dir}: exists and is not a folder; choose another "
                                     "output folder")
            marker = os.path.join(self.root, MARKER)
            if os.path.exists(marker):
                try:
                    with open(marker, encoding="utf-8-sig") as f:
                        self.previous = json.load(f)
                except (OSError, ValueError) as e:
                    raise PydarknetError(f"{marker}: cannot read it ({e}); remove {out_dir} "
                                         "or choose another output folder") from None
                if self.previous.get("converter") != converter:
                    raise PydarknetError(
                        f"{out_dir}: holds the output of 'pydarknet data "
                        f"{self.previous.get('converter')}', not of 'data {converter}'; "
                        "choose another output folder")
            elif os.listdir(self.root):
                raise PydarknetError(f"{out_dir}: exists, is not empty and was not written by "
                                     f"'pydarknet data {converter}'; choose another (new or "
                                     "empty) output folder")
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as e:
            raise PydarknetError(f"{parent}: cannot create the folder ({e.strerror or e})") \
                from None
        self.temp = os.path.join(parent, f".{name}.tmp-{os.getpid()}")
        self._committed = False

    def __enter__(self):
        shutil.rmtree(self.temp, ignore_errors=True)
        try:
            os.makedirs(self.temp)
        except OSError as e:
            raise PydarknetError(f"{os.path.dirname(self.temp)}: cannot write here "
                                 f"({e.strerror or e})") from None
        return self

    def __exit__(self, *exc):
        if not self._committed:
            shutil.rmtree(self.temp, ignore_errors=True)
        return False

    # -- paths --------------------------------------------------------------------------------
    def final(self, rel):
        """Where ``rel`` will be once committed (absolute)."""
        return os.path.join(self.root, rel)

    def path(self, rel):
        """Where ``rel`` is written now (in the temporary folder), its folder created."""
        p = os.path.join(self.temp, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def rel_of_final(self, final_path):
        """``final_path``'s place inside the output folder; an error when a path rule (the
        label file Darknet looks for) would leave it."""
        rel = os.path.relpath(final_path, self.root)
        if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
            raise PydarknetError(
                f"Darknet would look for a label file at {final_path}, outside the output "
                f"folder {self.root} (its rule replaces JPEGImages and images/train2017-like "
                "folders with labels): choose an output folder whose path holds none of them")
        return rel

    # -- files --------------------------------------------------------------------------------
    def write_text(self, rel, text):
        with open(self.path(rel), "w", encoding="utf-8", newline="\n") as f:
            f.write(text)

    def write_list(self, rel, paths):
        self.write_text(rel, "".join(f"{p}\n" for p in paths))

    def write_names(self, rel, names):
        self.write_list(rel, names)

    def write_data(self, rel, entries):
        """A Darknet ``.data`` file: ``key = value`` lines in the given order."""
        self.write_text(rel, "".join(f"{k} = {v}\n" for k, v in entries))

    def keep_previous(self, rel):
        """Carries ``rel`` (a file or a folder) over from the older output, hard-linked where
        the file system allows (copied elsewhere); False when the older output has none."""
        src = os.path.join(self.root, rel)
        if self.previous is None or not os.path.lexists(src):
            return False
        dst = os.path.join(self.temp, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)

        def link(s, d):
            try:
                os.link(s, d)
            except OSError:
                shutil.copy2(s, d)
        if os.path.isdir(src):
            shutil.copytree(src, dst, copy_function=link, symlinks=True)
        else:
            link(src, dst)
        return True

    def commit(self, meta):
        """Writes the marker (``meta`` + the converter) and renames the folder into place,
        replacing the older output only now."""
        meta = dict(meta, converter=self.converter)
        self.write_text(MARKER, json.dumps(meta, indent=1, sort_keys=True) + "\n")
        old = None
        if os.path.lexists(self.root):
            old = f"{self.temp}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.rename(self.root, old)
        try:
            os.rename(self.temp, self.root)
        except OSError:
            if old is not None:
                os.rename(old, self.root)
            raise
        self._committed = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


class DetectionSplit:
    """One list of a detection data set: image links (or copies) under ``images/<split>/``
    with their label files where Darknet finds them (beside the images, by
    :func:`pydarknet.labels.replace_image_to_label`), the final absolute paths in ``paths``."""

    def __init__(self, out, split, copy=False, summary=None):
        self.out, self.split, self.copy, self.summary = out, split, copy, summary
        self.paths = []
        self._names = set()

    def add(self, source, name, boxes, copy=None):
        """Links ``source`` as ``name`` (copies it with ``copy``, by default the split's
        choice) and writes its label file; ``boxes``: (class, x, y, w, h) relative, a box
        the file would hold twice written once (noted in the summary). Returns the boxes
        written."""
        if name in self._names:
            raise PydarknetError(f"internal: two images named {name} in the {self.split} list")
        self._names.add(name)
        final = self.out.final(os.path.join("images", self.split, name))
        dst = self.out.path(self.out.rel_of_final(final))
        if self.copy if copy is None else copy:
            shutil.copyfile(source, dst)
        else:
            os.symlink(os.path.abspath(source), dst)
        label = replace_image_to_label(final)
        if not label.endswith(".txt"):       # an extension Darknet's rule does not know
            label = os.path.splitext(label)[0] + ".txt"
        lines, kept = {}, []        # (a dict: the lines in order, each once)
        for box in boxes:
            line = "{} {:.6f} {:.6f} {:.6f} {:.6f}\n".format(*box)
            if line in lines:       # (data check counts a repeated box as a problem)
                if self.summary is not None:
                    self.summary.note("the same box twice (listed once)")
                continue
            lines[line] = None
            kept.append(box)
        self.out.write_text(self.out.rel_of_final(label), "".join(lines))
        self.paths.append(final)
        return kept


def write_detection_set(target, names, splits, summary, where, copy=False, extra=()):
    """Darknet's detection layout into ``target`` (an :class:`OutputFolder`): for each
    ``(split, items)`` of ``splits`` the images and their label files and ``<split>.txt``,
    then ``obj.names`` and ``obj.data`` (classes, the lists, names, backup and the ``extra``
    entries). An item is ``(image path, boxes)``, or ``(image path, boxes, name)`` for an
    image written out for the set (copied, linked under the name ``name``'s). A split
    without an image is an error naming ``where``."""
    entries = [("classes", len(names))]
    for split, items in splits:
        lines, taken = DetectionSplit(target, split, copy, summary), set()
        for image, boxes, *named in items:
            boxes = lines.add(image, link_name(named[0] if named else image, taken), boxes,
                              copy=True if named else None)
            summary.image(split, [names[b[0]] for b in boxes])
        if not lines.paths:
            raise PydarknetError(f"{where}: no image of the {split} list could be converted "
                                 "(see the warnings above); nothing written")
        target.write_list(f"{split}.txt", lines.paths)
        entries.append((split, target.final(f"{split}.txt")))
    target.write_names("obj.names", names)
    entries += [("names", target.final("obj.names")), ("backup", "backup/"), *extra]
    target.write_data("obj.data", entries)


def link_name(path, taken):
    """The image's file name, or (taken already by another image) its parent folder's name
    and a number before it; added to ``taken``."""
    base = os.path.basename(path)
    name, k = base, 1
    while name in taken:
        name = f"{os.path.basename(os.path.dirname(path))}_{k}_{base}"
        k += 1
    taken.add(name)
    return name


def in_valid_share(key, fraction):
    """Whether the item named ``key`` (a relative path) falls in a ``fraction`` of a data set
    held out for validation: by a hash of the name, so the same items on every run."""
    return zlib.crc32(str(key).replace(os.sep, "/").encode()) % 10000 < fraction * 10000


def darknet_box(corners, width, height, summary, where=None):
    """Pixel corners (x0, y0, x1, y1) -> Darknet's relative (x, y, w, h), cut to the image
    (noted in ``summary``); None, noted (with ``where`` in a warning), when nothing of the
    box is inside."""
    clipped = clip_box(*corners, float(width), float(height))
    if clipped is None:
        summary.note("boxes without width or height inside the image",
                     f"{where}: no width or height inside the image; left out" if where
                     else None)
        return None
    *c, cut = clipped
    if cut:
        summary.note("boxes cut to the image")
    return box_to_darknet(*c, width, height)


def box_to_darknet(x0, y0, x1, y1, width, height):
    """Pixel corners (0-based, already inside the image) -> Darknet's relative centre and
    size."""
    return ((x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width,
            (y1 - y0) / height)


def clip_box(x0, y0, x1, y1, width, height):
    """Pixel corners cut to the image: (x0, y0, x1, y1, clipped?) or None when nothing of
    positive width and height is left (a size that rounds to 0 in a label file's 6 decimals
    counts as none)."""
    c = (min(max(x0, 0.0), width), min(max(y0, 0.0), height),
         min(max(x1, 0.0), width), min(max(y1, 0.0), height))
    if not (c[2] - c[0] >= 5e-7 * width and c[3] - c[1] >= 5e-7 * height):
        return None
    return (*c, c != (x0, y0, x1, y1))
