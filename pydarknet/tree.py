"""Darknet's softmax trees (``tree=`` of [softmax] and [region], e.g. yolo9000's data/9k.tree).

A tree file has one line per class: its name and its parent's index (-1 for a root). Classes
whose parent is the same and which follow each other form a group: the softmax runs within
each group, so a class's value is its probability given its parent; the product along the
path to the root (``hierarchy_predictions``) is its probability. This is AB's ``read_tree``
(which, unlike pjreddie's, keeps no child links).
"""

import os

import numpy as np

from .errors import CfgError
from .host_math import softmax_rows


# Darknet's mark of a truth value the loss leaves out
SECRET_NUM = np.float32(-1234)


class SoftmaxTree:
    def __init__(self, names, parent):
        self.names = list(names)
        self.parent = np.asarray(parent, np.int64)
        n = len(self.parent)
        # groups: runs of equal parents, as AB's read_tree forms them
        offsets, sizes = [], []
        start, last = 0, -1
        for i, p in enumerate(self.parent):
            if p != last:
                offsets.append(start)
                sizes.append(i - start)
                start, last = i, p
        offsets.append(start)
        sizes.append(n - start)
        self.group_offset = np.array(offsets, np.int64)
        self.group_size = np.array(sizes, np.int64)
        # each class's group (AB's hier->group)
        self.group_of = np.repeat(np.arange(len(sizes)), sizes)
        self.leaf = np.ones(n, bool)
        self.leaf[self.parent[self.parent >= 0]] = False

    @property
    def n(self):
        return len(self.parent)

    @classmethod
    def read(cls, path):
        names, parent = [], []
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            for k, line in enumerate(f, 1):
                parts = line.split()
                if not parts:
                    continue
                try:
                    parent.append(int(parts[1]) if len(parts) > 1 else -1)
                except ValueError:
                    raise CfgError(f"line {k}: expected 'name parent_index', found "
                                   f"{line.strip()!r}", path) from None
                if not -1 <= parent[-1] < len(parent) - 1:
                    raise CfgError(f"line {k}: parent {parent[-1]} must be -1 or an earlier "
                                   f"line's index", path)
                names.append(parts[0])
        return cls(names, parent)

    def softmax(self, x, temperature=1.0):
        """The softmax within each group along the last axis (x: [..., n]), float32."""
        x = np.asarray(x, np.float32)
        out = np.empty_like(x)
        for offset, size in zip(self.group_offset, self.group_size):
            if size:
                out[..., offset:offset + size] = softmax_rows(x[..., offset:offset + size],
                                                              temperature)
        return out

    def fill_hierarchy(self, truth):
        """Darknet's fill_hierarchy on class labels [..., n] (a float32 copy): every labelled
        class's ancestors set to 1, and each group holding no label marked SECRET_NUM, so
        that the loss leaves it out."""
        t = np.array(truth, np.float32)
        flat = t.reshape(-1, self.n)
        rows, cls = np.nonzero(flat)
        parent = self.parent[cls]
        while parent.size:              # one level up per step, every label at once
            up = parent >= 0
            rows, parent = rows[up], parent[up]
            flat[rows, parent] = 1
            parent = self.parent[parent]
        live = self.group_size > 0
        offsets, sizes = self.group_offset[live], self.group_size[live]
        labelled = np.add.reduceat(flat != 0, offsets, axis=1) > 0     # [rows, groups]
        empty = np.repeat(~labelled, sizes, axis=1)
        flat[:, offsets[0]:offsets[-1] + sizes[-1]][empty] = SECRET_NUM
        return t

    def path_probability(self, values, c):
        """get_hierarchy_probability: the product of ``values[..., k]`` over class c and its
        ancestors (float32, one per leading index)."""
        p = np.ones(np.shape(values)[:-1], np.float32)
        while c >= 0:
            p = p * values[..., c]
            c = int(self.parent[c])
        return p

    def hierarchy_predictions(self, p):
        """Each class's probability: the product along its path (a float32 copy of p)."""
        p = np.array(p, np.float32)
        for j, parent in enumerate(self.parent):
            if parent >= 0:
                p[..., j] *= p[..., parent]
        return p


def find_beside_cfg(layer, name, option, what):
    """The path of a file a layer names (``tree=``, ``map=``): as written (from the working
    directory, as Darknet opens it), else beside the cfg or one folder up (Darknet's cfgs in
    cfg/ name data/9k.tree); a CfgError listing the places tried."""
    s = layer.section
    cfg_dir = os.path.dirname(os.path.abspath(s.path)) if s.path and s.path[0] != "<" else None
    tried = [name]
    if cfg_dir and not os.path.isabs(name):
        tried += [os.path.join(cfg_dir, name), os.path.join(cfg_dir, "..", name)]
    for path in tried:
        if os.path.isfile(path):
            return path
    raise s.error(f"cannot find the {what} {name} (tried "
                  f"{', '.join(os.path.normpath(p) for p in tried)})", option)


def load_tree(layer):
    """The layer's ``tree=`` file (:func:`find_beside_cfg`), read once."""
    tree = getattr(layer, "_tree", None)
    if tree is not None:
        return tree
    path = find_beside_cfg(layer, layer.tree, "tree", "softmax tree file")
    tree = SoftmaxTree.read(path)
    want = getattr(layer, "classes", layer.inputs)
    if tree.n != want:
        raise layer.section.error(f"the tree {path} has {tree.n} classes but the layer has "
                                  f"{want}", "tree")
    layer._tree = tree
    return tree


def load_class_map(layer):
    """The layer's ``map=`` file (yolo9000's coco9k.map: one class index per line, the
    training data's class k becomes line k's), read once, as AB's read_map."""
    mapping = getattr(layer, "_class_map", None)
    if mapping is not None:
        return mapping
    path = find_beside_cfg(layer, layer.map_file, "map", "class map file")
    values = []
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for k, line in enumerate(f, 1):
            if line.strip():
                try:
                    values.append(int(line.split()[0]))
                except ValueError:
                    raise CfgError(f"line {k}: expected a class index, found {line.strip()!r}",
                                   path) from None
    mapping = np.asarray(values, np.int64)
    bad = (mapping < 0) | (mapping >= layer.classes)
    if bad.any():
        raise CfgError(f"line {int(np.argmax(bad)) + 1}: class {int(mapping[bad][0])} is not "
                       f"one of the layer's {layer.classes}", path)
    layer._class_map = mapping
    return mapping
