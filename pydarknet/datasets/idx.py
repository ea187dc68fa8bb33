"""idx files (MNIST, Fashion-MNIST; gzipped or not) -> Darknet's classifier layout.

    convert_idx("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "data/fashion",
                names="fashion-mnist", split="train")
    convert_idx("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "data/fashion",
                names="fashion-mnist", split="valid")     # keeps the train list

Writes ``<split>/<number>_<class>.png`` (Darknet's classifier finds an image's class by the
class name in its path: :func:`pydarknet.labels.class_from_path`), ``<split>.txt``,
``obj.names`` and ``obj.data`` (classes, train, valid, labels, top, backup). Class names are
made file-name safe (``T-shirt/top`` -> ``T-shirt_top``) and checked to be unambiguous: every
file name holds its own class name and no other.
"""

import os
import struct
import zlib

import numpy as np

from ..errors import PydarknetError
from ..labels import classes_in_path
from .layout import OutputFolder, Summary, parse_names_option, safe_file_name

__all__ = ["read_idx", "convert_idx", "NAME_PRESETS"]

NAME_PRESETS = {
    "mnist": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
}
_TYPES = {0x08: ("unsigned bytes", np.uint8), 0x09: ("signed bytes", np.int8),
          0x0B: ("16-bit integers", ">i2"), 0x0C: ("32-bit integers", ">i4"),
          0x0D: ("32-bit floats", ">f4"), 0x0E: ("64-bit floats", ">f8")}


def _read_bytes(path):
    """The file's bytes, gunzipped when it is gzip (a truncated stream gives what it holds)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise PydarknetError(f"{path}: idx file not found") from None
    except OSError as e:
        raise PydarknetError(f"{path}: cannot read the idx file ({e.strerror or e})") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    # zlib rather than gzip: a truncated stream still gives the bytes before the cut
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw)
    except zlib.error as e:
        raise PydarknetError(f"{path}: not a readable gzip file ({e})") from None


def read_idx(path):
    """An idx file as (array [n, ...] holding the complete records, the count its header
    promises). Errors name the file; a truncated file gives the records it holds."""
    data = _read_bytes(path)
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in _TYPES or data[3] == 0:
        raise PydarknetError(f"{path}: not an idx file (expected 0x00 0x00, a type byte and a "
                             "dimension count; MNIST's files start 00 00 08 03 and 00 00 08 01)")
    what, dtype = _TYPES[data[2]]
    rank = data[3]
    header = 4 + 4 * rank
    if len(data) < header:
        raise PydarknetError(f"{path}: truncated inside its header")
    dims = struct.unpack(f">{rank}I", data[4:header])
    dtype = np.dtype(dtype)
    record = int(np.prod(dims[1:], dtype=np.int64)) * dtype.itemsize
    body = data[header:]
    complete = min(dims[0], len(body) // record) if record else dims[0]
    array = np.frombuffer(body, dtype, count=complete * record // dtype.itemsize)
    array = array.reshape((complete,) + tuple(dims[1:]))
    return array, dims[0]


def _class_names(option, labels, labels_path):
    """File-name safe class names from ``--names`` (a preset, or names by commas) or
    ``class_0``, ...; fewer names than labels need is an error."""
    classes = int(labels.max()) + 1 if len(labels) else 1
    if option is None:
        width = len(str(classes - 1))
        raw = [f"class_{k:0{width}d}" for k in range(classes)]
    elif option.strip().lower() in NAME_PRESETS:
        raw = NAME_PRESETS[option.strip().lower()]
    else:
        raw = parse_names_option(option, "--names")
    names = [safe_file_name(n) for n in raw]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise PydarknetError(f"--names: {', '.join(repeated)} appear more than once once made "
                             "file-name safe")
    for a in names:
        inside = [b for b in names if b != a and a in b]
        if inside:
            raise PydarknetError(f"--names: '{a}' is part of '{inside[0]}': Darknet finds a "
                                 "class by its name in the image path, so no name may be part "
                                 "of another")
    return names


def _check_previous(folder, names, split):
    prev = folder.previous
    if prev is None:
        return None
    other = "valid" if split == "train" else "train"
    if other not in prev.get("lists", {}):
        return None
    if prev.get("names") != names:
        raise PydarknetError(f"{folder.root}: its {other} list was made with the classes "
                             f"{', '.join(prev.get('names', []))}; give the same --names (or "
                             "another output folder)")
    return other


def write_class_images(folder, split, images, labels, names, summary, source):
    """Images [n, H, W] (grey) or [n, H, W, 3] (RGB) with their labels written as
    ``<split>/<number>_<class>.png`` into ``folder`` (an OutputFolder); returns their final
    paths. Labels outside the classes are skipped (counted); a file name in which Darknet
    would find another class's name is an error."""
    import cv2
    list_folder = folder.final(split)
    darknet_hits = [names[i] for i in classes_in_path(list_folder + os.sep, names)]
    if darknet_hits:
        summary.note("class names in the output folder's path",
                     f"{list_folder}: holds the class name {', '.join(darknet_hits)}: "
                     "Darknet looks for class names in the whole path and would find it "
                     "in every image (pydarknet looks at the file name first); choose "
                     "another output folder for Darknet")
    width = len(str(len(images) - 1))
    paths = []
    for i, image in enumerate(images):
        k = int(labels[i])
        if not 0 <= k < len(names):
            summary.skip("labels outside the classes", f"{source}: record {i}: label {k} is "
                         f"outside 0..{len(names) - 1} ({len(names)} names); image skipped")
            continue
        name = f"{i:0{width}d}_{names[k]}.png"
        if classes_in_path(name, names) != [k]:
            found = [names[j] for j in classes_in_path(name, names) if j != k]
            raise PydarknetError(f"the file name {name} (class {names[k]}) also holds the "
                                 f"class name {found[0]}: choose names that are not numbers "
                                 "or parts of 'png' (e.g. --names mnist)")
        if image.ndim == 3 and image.shape[2] == 3:
            image = image[:, :, ::-1]           # RGB records, OpenCV writes BGR
        target = folder.path(os.path.join(split, name))
        if not cv2.imwrite(target, np.ascontiguousarray(image)):
            raise PydarknetError(f"{target}: OpenCV could not write the image")
        paths.append(os.path.join(list_folder, name))
        summary.image(split, [names[k]])
    return paths


def convert_idx(images_path, labels_path, out_dir, *, names=None, split="train", limit=None,
                out=None):
    """Converts an idx image file and its labels into ``out_dir``'s ``split`` list; returns the
    summary and the class names."""
    summary = Summary("idx", out)
    if split not in ("train", "valid"):
        raise PydarknetError(f"list {split}: expected train or valid")
    if limit is not None and limit <= 0:
        raise PydarknetError(f"--limit {limit}: give a positive number of images")
    images, promised = read_idx(images_path)
    labels, promised_labels = read_idx(labels_path)
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] not in (1, 3)):
        raise PydarknetError(f"{images_path}: holds {images.ndim - 1}-dimensional records; "
                             "expected images (N x H x W, or N x H x W x 1|3)")
    if images.dtype != np.uint8:
        raise PydarknetError(f"{images_path}: holds {images.dtype} values; expected unsigned "
                             "bytes (0..255) as MNIST's image files")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise PydarknetError(f"{labels_path}: expected one integer label per image (a "
                             "1-dimensional idx file of bytes)")
    for path, held, want in ((images_path, len(images), promised),
                             (labels_path, len(labels), promised_labels)):
        if held < want:
            summary.skip("records missing from truncated idx files", f"{path}: truncated: its "
                         f"header promises {want} records, the file holds {held}", want - held)
    n = min(len(images), len(labels))
    if len(images) != len(labels):
        longer = images_path if len(images) > len(labels) else labels_path
        summary.skip("records without a partner", f"{longer}: {max(len(images), len(labels))}"
                     f" records but the other file holds {n}; the last "
                     f"{abs(len(images) - len(labels))} skipped",
                     abs(len(images) - len(labels)))
    if limit is not None:
        n = min(n, limit)
    if n == 0:
        raise PydarknetError(f"{images_path}: no image to convert")
    labels = labels[:n].astype(np.int64)
    names = _class_names(names, labels[labels >= 0], labels_path)
    with OutputFolder(out_dir, "idx") as folder:
        other = _check_previous(folder, names, split)
        lists = {}
        if other and folder.keep_previous(other) and folder.keep_previous(f"{other}.txt"):
            lists[other] = folder.previous["lists"][other]
            summary.kept[other] = lists[other]
        paths = write_class_images(folder, split, images[:n], labels, names, summary,
                                   labels_path)
        if not paths:
            raise PydarknetError(f"{images_path}: no image could be converted; nothing written")
        folder.write_list(f"{split}.txt", paths)
        lists[split] = len(paths)
        folder.write_names("obj.names", names)
        entries = [("classes", len(names))]
        entries += [(s, folder.final(f"{s}.txt")) for s in ("train", "valid") if s in lists]
        entries += [("labels", folder.final("obj.names")), ("top", min(5, len(names))),
                    ("backup", "backup/")]
        folder.write_data("obj.data", entries)
        folder.commit({"names": names, "lists": lists})
    return summary, names
