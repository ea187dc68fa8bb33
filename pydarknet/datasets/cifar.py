"""CIFAR-10 (its binary or its Python version, as downloaded) -> Darknet's classifier layout,
as pjreddie's CIFAR-10 tutorial lays it out.

    convert_cifar("cifar-10-batches-bin", "data/cifar")      # or cifar-10-batches-py

``data_batch_1`` .. ``data_batch_5`` make the train list, ``test_batch`` the valid list:
``train/<number>_<class>.png`` and ``valid/...`` (Darknet's classifier finds an image's class
by the class name in its path), ``train.txt``, ``valid.txt``, ``obj.names`` (the names of
``batches.meta``) and ``obj.data``. The Python version's pickles are read with an unpickler
that builds only dicts, lists, bytes and numpy arrays (a pickle can run code otherwise).
"""

import io
import os
import pickle

import numpy as np

from ..errors import PydarknetError
from .idx import write_class_images
from .layout import OutputFolder, Summary, safe_file_name

__all__ = ["convert_cifar", "read_cifar_batch", "CIFAR10_NAMES"]

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck"]
_RECORD = 1 + 32 * 32 * 3          # the binary version: a label byte, then R, G and B planes
_TRAIN = [f"data_batch_{k}" for k in range(1, 6)]
_TEST = ["test_batch"]


class _ArraysOnly(pickle.Unpickler):
    """Builds what CIFAR's pickles hold (numpy arrays in dicts and lists), nothing else."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray",
                                                             "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("builtins", "bytes")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a CIFAR batch")


def _files(folder, names):
    """The batch files present: the binary (.bin) or the Python version of each name."""
    out = []
    for name in names:
        for candidate in (f"{name}.bin", name):
            p = os.path.join(folder, candidate)
            if os.path.isfile(p):
                out.append(p)
                break
    return out


def read_cifar_batch(path):
    """(images uint8 [n, 32, 32, 3] RGB, labels [n]) of one batch file, binary or pickled;
    a truncated binary file gives its complete records (and says how many bytes were left)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise PydarknetError(f"{path}: cannot read it ({e.strerror or e})") from None
    if path.endswith(".bin"):
        n = len(raw) // _RECORD
        if n == 0:
            raise PydarknetError(f"{path}: holds no complete {_RECORD}-byte record (a CIFAR-10 "
                                 "binary batch: a label byte, then 3072 pixel bytes)")
        records = np.frombuffer(raw, np.uint8, count=n * _RECORD).reshape(n, _RECORD)
        images = records[:, 1:].reshape(n, 3, 32, 32).transpose(0, 2, 3, 1)
        return np.ascontiguousarray(images), records[:, 0].astype(np.int64), len(raw) % _RECORD
    try:
        batch = _ArraysOnly(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:                     # a pickle fails in many ways
        raise PydarknetError(f"{path}: not a CIFAR-10 Python batch ({type(e).__name__}: "
                             f"{e})") from None
    if not isinstance(batch, dict):
        raise PydarknetError(f"{path}: not a CIFAR-10 Python batch (no dict)")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    data = np.asarray(data) if data is not None else None
    if data is None or labels is None or data.ndim != 2 or data.shape[1] != 3072 \
            or len(labels) != len(data):
        raise PydarknetError(f"{path}: expected 'data' (N x 3072 bytes) and N 'labels'")
    images = data.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), np.asarray(labels, np.int64), 0


def _names(folder):
    """The class names of batches.meta(.txt), else CIFAR-10's."""
    txt = os.path.join(folder, "batches.meta.txt")
    if os.path.isfile(txt):
        with open(txt, encoding="utf-8-sig", errors="replace") as f:
            names = [ln.strip() for ln in f if ln.strip()]
    elif os.path.isfile(os.path.join(folder, "batches.meta")):
        try:
            with open(os.path.join(folder, "batches.meta"), "rb") as f:
                meta = _ArraysOnly(f, encoding="bytes").load()
            names = [n.decode() if isinstance(n, bytes) else str(n)
                     for n in meta.get(b"label_names", meta.get("label_names", []))]
        except Exception:
            names = []
    else:
        names = []
    return [safe_file_name(n) for n in names] or list(CIFAR10_NAMES)


def convert_cifar(cifar_dir, out_dir, *, limit=None, out=None):
    """Converts a CIFAR-10 folder into ``out_dir``; returns the summary and the names."""
    summary = Summary("cifar", out)
    if not os.path.isdir(cifar_dir):
        raise PydarknetError(f"{cifar_dir}: CIFAR folder not found")
    if limit is not None and limit <= 0:
        raise PydarknetError(f"--limit {limit}: give a positive number of images")
    splits = [("train", _files(cifar_dir, _TRAIN)), ("valid", _files(cifar_dir, _TEST))]
    if not splits[0][1]:
        if _files(cifar_dir, ["train"]):
            raise PydarknetError(f"{cifar_dir}: looks like CIFAR-100 (train, test): only "
                                 "CIFAR-10 is converted (its 100 names include 'man' inside "
                                 "'woman', which Darknet's class-in-the-path rule confuses)")
        raise PydarknetError(f"{cifar_dir}: no data_batch_1..5 (.bin or Python) found: give "
                             "the folder cifar-10-batches-bin or cifar-10-batches-py")
    names = _names(cifar_dir)
    with OutputFolder(out_dir, "cifar") as folder:
        entries = [("classes", len(names))]
        for split, files in splits:
            if not files:
                continue
            parts = []
            for path in files:
                images, labels, left = read_cifar_batch(path)
                if left:
                    summary.skip("bytes of truncated records", f"{path}: ends {left} bytes "
                                 "into a record; that record skipped", left)
                parts.append((images, labels))
            images = np.concatenate([p[0] for p in parts])
            labels = np.concatenate([p[1] for p in parts])
            if limit is not None:
                images, labels = images[:limit], labels[:limit]
            paths = write_class_images(folder, split, images, labels, names, summary,
                                       os.path.join(cifar_dir, split))
            if not paths:
                raise PydarknetError(f"{cifar_dir}: no {split} image could be converted")
            folder.write_list(f"{split}.txt", paths)
            entries.append((split, folder.final(f"{split}.txt")))
        folder.write_names("obj.names", names)
        entries += [("labels", folder.final("obj.names")), ("top", 2), ("backup", "backup/")]
        folder.write_data("obj.data", entries)
        folder.commit({"names": names, "lists": {s: len(f) for s, f in splits}})
    return summary, names
