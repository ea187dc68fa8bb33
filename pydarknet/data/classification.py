"""Classifier samples as AB's ``load_data_augment``: images float32 [C, H, W] RGB in [0, 1] and
truths [classes] (one-hot, or label-smoothed with ``label_smooth_eps``), the class being the
one class name found in the image's path, as Darknet (``pydarknet.labels.class_from_path``).

    ds = ClassificationDataset.from_network(net, read_list("train.list"), names)
    img, truth = ds.sample(np.random.default_rng(0), net.net.width, net.net.height)
"""

import threading

import cv2
import numpy as np

from . import augment as A
from ..labels import class_from_path, classes_in_path
from ..errors import DataError, Problems
from .io import BadIndexes, read_image

MAX_TRIES = 100


def _training_class(path, labels):
    """:func:`pydarknet.labels.class_from_path` as training uses it: a path that stays
    ambiguous names no class (the image is skipped)."""
    return class_from_path(path, labels, first=False)


class ClassificationDataset:
    """Image paths, class names and the classifier's augmentation options (Darknet's [net]:
    ``min_crop``, ``max_crop``, ``angle``, ``aspect``, ``hue``, ``saturation``, ``exposure``,
    ``flip``, ``mosaic_mixup`` (1 mixup, 2 cutmix, 3 mosaic, 4 cutmix or mosaic), ``blur``,
    ``label_smooth_eps``). ``augment=False``: a plain resize to the network."""

    kind = "classification"

    def __init__(self, paths, labels, channels=3, *, min_crop=None, max_crop=None, angle=0.0,
                 aspect=1.0, hue=0.0, saturation=1.0, exposure=1.0, flip=True, mosaic_mixup=0,
                 blur=0, label_smooth_eps=0.0, augment=True, class_from_path=None,
                 problems=None):
        self.paths = [str(p) for p in paths]
        self.labels = [str(n) for n in labels]
        if not self.paths:
            raise DataError("the classifier's image list is empty")
        if not self.labels:
            raise DataError("the classifier has no class names (labels= file empty)")
        if channels not in (1, 3):
            raise DataError(f"channels={channels}: the data loader reads 1 (grey) or 3 (RGB) "
                            "channel images")
        self.channels = channels
        self.min_crop, self.max_crop = min_crop, max_crop
        self.angle, self.aspect = float(angle), float(aspect or 1.0)
        self.hue, self.saturation = float(hue), float(saturation or 1.0)
        self.exposure, self.flip = float(exposure or 1.0), bool(flip)
        self.augment = bool(augment)
        self.mosaic_mixup = int(mosaic_mixup) if self.augment else 0
        self.blur = int(blur) if self.augment else 0
        self.label_smooth_eps = float(label_smooth_eps)
        self.class_from_path = class_from_path or _training_class
        self.problems = problems if problems is not None else Problems()
        self._classes = {}
        self._bad = BadIndexes(len(self.paths))
        self._lock = threading.Lock()

    @classmethod
    def from_network(cls, network, paths, labels, **overrides):
        n = network.net
        opts = dict(channels=n.channels or 3, min_crop=n.min_crop, max_crop=n.max_crop,
                    angle=n.angle, aspect=n.aspect, hue=n.hue, saturation=n.saturation,
                    exposure=n.exposure, flip=bool(n.flip), mosaic_mixup=n.mosaic_mixup,
                    blur=n.blur, label_smooth_eps=n.label_smooth_eps)
        opts.update(overrides)
        outputs = network.layers[-1].outputs
        if outputs != len(labels):
            raise DataError(f"{network.cfg_path}: the network outputs {outputs} classes but "
                            f"there are {len(labels)} class names")
        return cls(paths, labels, **opts)

    def __len__(self):
        return len(self.paths)

    @property
    def classes(self):
        return len(self.labels)

    @property
    def truth_shape(self):
        return (len(self.labels),)

    def class_of(self, index):
        """Class id of image ``index`` (cached), None (warned, counted) if its path names no
        class (``no_class_in_path``) or several (``class_ambiguous_in_path``)."""
        with self._lock:
            if index in self._classes:
                return self._classes[index]
        path = self.paths[index]
        cls = self.class_from_path(path, self.labels)
        if cls is None:
            found = [self.labels[i] for i in classes_in_path(path, self.labels)]
            if not found:
                self.problems.report("no_class_in_path", f"{path}: no class name from the "
                                     "names file occurs in the path; image skipped", key=path)
            else:
                self.problems.report("class_ambiguous_in_path",
                                     f"{path}: {len(found)} class names occur in the path "
                                     f"({', '.join(found[:5])}) and the file name does not "
                                     "single out one; image skipped", key=path)
        with self._lock:
            self._classes[index] = cls
        return cls

    def truth(self, cls):
        k = len(self.labels)
        eps = self.label_smooth_eps
        y = np.full(k, eps / (k - 1) if k > 1 else 0.0, np.float32)
        y[cls] = 1.0 - eps
        return y

    def _read(self, rng, index):
        def load(i):
            cls = self.class_of(i)
            if cls is None:
                return None
            img = read_image(self.paths[i], self.channels, self.problems)
            return None if img is None else (img, cls, i)
        return self._bad.first_usable(rng, index, load, self.problems, MAX_TRIES)

    def _single(self, rng, index, w, h):
        """One augmented image as float32 HxWxC in [0, 1] and its truth vector. An image
        OpenCV fails on is warned, counted and replaced by another."""
        for _ in range(MAX_TRIES):
            img, cls, index = self._read(rng, index)
            try:
                return self._augment(rng, img, cls, w, h)
            except (cv2.error, ValueError) as e:
                path = self.paths[index]
                self.problems.report("image_failed", f"{path}: cannot augment this image "
                                     f"({str(e).strip()[:200]}); skipped", key=path)
                self._bad.mark(index)
                index = int(rng.integers(len(self.paths)))
        raise DataError(f"no usable image: {self.problems.as_dict()}")

    def _augment(self, rng, img, cls, w, h):
        if not self.augment:
            out = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        else:
            size = max(w, h)
            low = self.min_crop if self.min_crop else size
            high = self.max_crop if self.max_crop else 2 * size
            out = A.random_augment(rng, img, self.angle, self.aspect, low, high, size, w, h)
            if self.flip and rng.integers(2):
                out = cv2.flip(out, 1)
            dhue, dsat, dexp = A.random_hsv(rng, self.hue, self.saturation, self.exposure)
            # Darknet's classifier: float HSV (its detector: OpenCV's 8-bit, hsv_distort)
            return A.distort_float(out, dhue, dsat, dexp), self.truth(cls)
        if out.ndim == 2:
            out = out[:, :, None]
        return out.astype(np.float32) * np.float32(1 / 255), self.truth(cls)

    def sample(self, rng, w, h, index=None, image_out=None, truth_out=None):
        """One training sample at w x h: (image float32 [C, h, w], truth float32 [classes])."""
        m = len(self.paths)
        if index is None:
            index = int(rng.integers(m))
        img, y = self._single(rng, index, w, h)
        mode = self.mosaic_mixup if (self.mosaic_mixup and rng.integers(2)) else 0
        if mode == 4:
            mode = A.rand_int(rng, 2, 3)
        if mode == 1:            # mixup: the average of two
            img2, y2 = self._single(rng, int(rng.integers(m)), w, h)
            img, y = (img + img2) * np.float32(0.5), (y + y2) * np.float32(0.5)
        elif mode == 2:          # cutmix: a rectangle of 30%..80% of each side from another
            img2, y2 = self._single(rng, int(rng.integers(m)), w, h)
            cw, ch = A.rand_int(rng, int(w * 0.3), int(w * 0.8)), \
                A.rand_int(rng, int(h * 0.3), int(h * 0.8))
            cx, cy = A.rand_int(rng, 0, w - cw - 1), A.rand_int(rng, 0, h - ch - 1)
            img[cy:cy + ch, cx:cx + cw] = img2[cy:cy + ch, cx:cx + cw]
            alpha = np.float32(cw * ch / (w * h))
            y = y * (1 - alpha) + y2 * alpha
        elif mode == 3:          # mosaic: four quadrants of four images, labels by area
            cut_x, cut_y = A.mosaic_cut(rng, w, h)
            parts = [self._single(rng, int(rng.integers(m)), w, h) for _ in range(3)]
            img[:cut_y, cut_x:] = parts[0][0][:cut_y, cut_x:]
            img[cut_y:, :cut_x] = parts[1][0][cut_y:, :cut_x]
            img[cut_y:, cut_x:] = parts[2][0][cut_y:, cut_x:]
            areas = np.array([cut_x * cut_y, (w - cut_x) * cut_y, cut_x * (h - cut_y),
                              (w - cut_x) * (h - cut_y)], np.float32) / np.float32(w * h)
            y = y * areas[0] + parts[0][1] * areas[1] + parts[1][1] * areas[2] + \
                parts[2][1] * areas[3]
        if self.blur and rng.integers(4) == 0:
            k = 15 if self.blur == 1 else (self.blur // 2) * 2 + 1
            img = cv2.GaussianBlur(img, (k, k), 0)
            if img.ndim == 2:
                img = img[:, :, None]
        chw = img.transpose(2, 0, 1)
        if image_out is None:
            image_out = np.empty(chw.shape, np.float32)
        image_out[...] = chw
        if truth_out is None:
            truth_out = np.empty(self.truth_shape, np.float32)
        truth_out[...] = y
        return image_out, truth_out
