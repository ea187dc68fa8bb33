"""Detector samples as AB's ``load_data_detection``: images float32 [C, H, W] RGB in [0, 1] and
truths [max_boxes, 6] (x, y, w, h, class, track_id relative to the image; a row with x == 0
ends the list), exactly what ``Network.train_iteration`` takes.

    ds = DetectionDataset.from_network(net, read_list("train.txt"))
    img, truth = ds.sample(np.random.default_rng(0), net.net.width, net.net.height)
"""

import functools
import threading
import warnings

import cv2
import numpy as np

from . import augment as A
from ..heads import detection_heads
from ..image import network_input
from ..labels import label_path as _label_path, read_labels
from ..errors import DataError, DataWarning, Problems
from .io import BadIndexes, read_image, track_base

MAX_TRIES = 100


class DetectionDataset:
    """A list of image paths with Darknet label files and the detector's augmentation options.

    Options (Darknet's, from [net] and the last [yolo]): ``jitter``, ``resize``, ``flip``,
    ``hue``, ``saturation``, ``exposure``, ``letter_box``, ``mosaic_mixup`` (0 none, 1 mixup,
    2 cutmix - not for detectors, as Darknet - 3 mosaic, 4 mosaic+cutmix = mosaic),
    ``mosaic_bound``, ``blur``, ``gaussian_noise``. ``augment=False`` turns all of them off
    (plain resize, or letterbox with ``letter_box``).
    ``missing_labels``: "skip" (default: warn, count, skip the image) or "empty" (Darknet: an
    image without a label file is a background image).
    """

    kind = "detection"

    def __init__(self, paths, classes, max_boxes=200, channels=3, *, jitter=0.2, resize=1.0,
                 flip=True, hue=0.0, saturation=1.0, exposure=1.0, letter_box=False,
                 mosaic_mixup=0, mosaic_bound=False, blur=0, gaussian_noise=0, augment=True,
                 missing_labels="skip", label_path=None, problems=None):
        self.paths = [str(p) for p in paths]
        if not self.paths:
            raise DataError("the detector's image list is empty")
        if channels not in (1, 3):
            raise DataError(f"channels={channels}: the data loader reads 1 (grey) or 3 (RGB) "
                            "channel images")
        if missing_labels not in ("skip", "empty"):
            raise ValueError("missing_labels must be 'skip' or 'empty'")
        self.classes, self.max_boxes, self.channels = int(classes), int(max_boxes), channels
        self.jitter, self.resize, self.flip = float(jitter), float(resize), bool(flip)
        self.hue = float(hue)     # Darknet's load_thread: saturation/exposure 0 mean 1
        self.saturation, self.exposure = float(saturation or 1.0), float(exposure or 1.0)
        self.letter_box, self.mosaic_bound = bool(letter_box), bool(mosaic_bound)
        self.blur, self.gaussian_noise = int(blur), int(gaussian_noise)
        self.augment = bool(augment)
        mode = int(mosaic_mixup)
        if mode in (2, 4):
            warnings.warn("cutmix=1 is not supported for detectors (as in Darknet): "
                          + ("ignored" if mode == 2 else "mosaic only"), DataWarning,
                          stacklevel=2)
            mode = 0 if mode == 2 else 3
        if mode == 3 and self.letter_box:
            raise DataError("letter_box=1 together with mosaic=1 is not supported (as in "
                            "Darknet): use one of them")
        self.mosaic_mixup = mode if self.augment else 0
        self.missing_labels = missing_labels
        self.problems = problems if problems is not None else Problems()
        # the default rule warns (once) when only pjreddie's images/ -> labels/ finds a file
        self.label_path = label_path or functools.partial(_label_path, problems=self.problems)
        self._labels = {}
        self._bad = BadIndexes(len(self.paths))
        self._lock = threading.Lock()

    @classmethod
    def from_network(cls, network, paths, **overrides):
        """Options from a built network: [net] augmentation and the last detection layer's
        classes, max boxes, jitter and resize."""
        heads = detection_heads(network)
        if not heads:
            raise DataError(f"{network.cfg_path}: no [yolo]/[region] layer: not a detector")
        last, n = heads[-1], network.net
        opts = dict(classes=last.classes, max_boxes=getattr(last, "max_boxes", 90),
                    channels=n.channels or 3, jitter=getattr(last, "jitter", 0.2),
                    resize=getattr(last, "resize", 1.0), flip=bool(n.flip), hue=n.hue,
                    saturation=n.saturation or 1.0, exposure=n.exposure or 1.0,
                    letter_box=n.letter_box, mosaic_mixup=n.mosaic_mixup,
                    mosaic_bound=n.mosaic_bound, blur=n.blur, gaussian_noise=n.gaussian_noise)
        opts.update(overrides)
        return cls(paths, **opts)

    def __len__(self):
        return len(self.paths)

    @property
    def truth_shape(self):
        return (self.max_boxes, 6)

    # -- reading ------------------------------------------------------------------------------
    def labels(self, index):
        """Boxes [n, 5] (class, x, y, w, h) of image ``index``, parsed once; None if its label
        file is missing and ``missing_labels == "skip"``."""
        path = self.paths[index]
        with self._lock:
            if index in self._labels:
                return self._labels[index]
        lp = self.label_path(path)
        boxes = read_labels(lp, self.classes, self.problems, clip=True,
                            missing="image skipped" if self.missing_labels == "skip" else
                            "used as a background image (no objects)")
        if boxes is None and self.missing_labels == "empty":
            boxes = np.zeros((0, 5))
        with self._lock:
            self._labels[index] = boxes
        return boxes

    def _read(self, rng, index):
        """(image, boxes, index) of ``index`` or, when it is bad, of random other images."""
        def load(i):
            img = read_image(self.paths[i], self.channels, self.problems)
            if img is None:
                return None
            boxes = self.labels(i)
            return None if boxes is None else (img, boxes, i)
        return self._bad.first_usable(rng, index, load, self.problems, MAX_TRIES)

    # -- one augmented image ------------------------------------------------------------------
    def _single(self, rng, index, w, h, corner=None, aug_rng=None, shared=None):
        """One augmented w x h uint8 image, its boxes [k, 4], classes+track ids [k, 2], crop.
        An image OpenCV fails on is warned, counted and replaced by another. ``aug_rng``: the
        generator of the augmentation's draws (default ``rng``)."""
        for _ in range(MAX_TRIES):
            img, labels, index = self._read(rng, index)
            try:
                return self._augment(rng, img, labels, index, w, h, corner, aug_rng, shared)
            except (cv2.error, ValueError) as e:
                path = self.paths[index]
                self.problems.report("image_failed", f"{path}: cannot augment this image "
                                     f"({str(e).strip()[:200]}); skipped", key=path)
                self._bad.mark(index)
                index = int(rng.integers(len(self.paths)))
        raise DataError(f"no usable image: {self.problems.as_dict()}")

    def _augment(self, rng, img, labels, index, w, h, corner, aug_rng=None, shared=None):
        # Darknet shuffles the boxes (which matters when there are more than max_boxes); the
        # track id stays the box's line in its file
        order = rng.permutation(len(labels)) if len(labels) > 1 else np.arange(len(labels))
        labels = labels[order]
        ih, iw = img.shape[:2]
        aug = rng if aug_rng is None else aug_rng
        if not self.augment:
            crop = A.jitter_crop(aug, iw, ih, 0.0, 1.0, False, self.letter_box, w, h)
            out = A.crop_resize(img, crop, w, h)
            boxes, ids = self._boxes(labels, order, crop, index, w, h)
            return out, boxes, ids, crop
        jitter, colour = shared if shared is not None else (None, None)
        flip = self.flip and bool((aug if jitter is None else jitter).integers(2))
        crop = A.jitter_crop(aug, iw, ih, self.jitter, self.resize, flip, self.letter_box, w, h,
                             mosaic_corner=corner, sides_rng=jitter)
        dhue, dsat, dexp = A.random_hsv(aug if colour is None else colour, self.hue,
                                        self.saturation, self.exposure)
        blur = A.pick_blur(aug, self.blur)
        noise = self.gaussian_noise if self.gaussian_noise and aug.integers(2) else 0
        boxes, ids = self._boxes(labels, order, crop, index, w, h)
        if blur > 1:   # Darknet: no strong blur when an object is under 8 blur-widths
            min_wh = int(min((boxes[:, 2] * w).min(), (boxes[:, 3] * h).min())) if len(boxes) \
                else 0
            blur = min(blur, min_wh // 8)
        out = A.crop_resize(img, crop, w, h)
        out = A.hsv_distort(out, dhue, dsat, dexp)
        out = A.blur_image(out, blur, boxes)
        out = A.gaussian_noise(rng, out, noise)
        return out, boxes, ids, crop

    def _boxes(self, labels, order, crop, index, w, h):
        """Labels through the crop; too small (under a pixel) or outside: dropped."""
        if not len(labels):
            return np.zeros((0, 4)), np.zeros((0, 2))
        boxes = A.crop_boxes(labels[:, 1:5], crop)
        keep = (boxes[:, 2] >= 1.0 / w) & (boxes[:, 3] >= 1.0 / h) & (boxes[:, 0] > 0) & \
            (boxes[:, 1] > 0) & (boxes[:, 0] <= 1) & (boxes[:, 1] <= 1)
        ids = np.stack([labels[:, 0], track_base(self.paths[index]) + order], axis=1)
        return boxes[keep], ids[keep]

    # -- a training sample --------------------------------------------------------------------
    def sample(self, rng, w, h, index=None, image_out=None, truth_out=None, aug_rng=None,
               shared=None):
        """One training sample at w x h: (image float32 [C, h, w], truths [max_boxes, 6]).

        ``index`` picks the (first) image; None: a random one, as Darknet. Mosaic and mixup
        (each applied to half of the samples, as Darknet does per batch) draw their other
        images at random. Results go into ``image_out``/``truth_out`` when given.
        ``aug_rng``: the generator of the crop, flip, colour, blur and noise draws (default
        ``rng``); [net] track=1 gives every image of a pass the same one, as Darknet
        augments a video sequence alike (mosaic and mixup are refused there).
        ``shared``: (jitter, colour) generators, either None, that draw the flip and the
        crop's jitter, and the colour change, instead: AB's [net] contrastive=1 gives both
        views of an image the same ones unless contrastive_jit_flip / contrastive_color.
        """
        m = len(self.paths)
        if index is None:
            index = int(rng.integers(m))
        if aug_rng is not None or shared is not None:
            out, boxes, ids, _ = self._single(rng, index, w, h, aug_rng=aug_rng, shared=shared)
            return self._finish(A.to_chw(out, image_out), boxes, ids, truth_out)
        mode = self.mosaic_mixup if (self.mosaic_mixup and rng.integers(2) == 0) else 0
        if mode == 3:
            cut_x, cut_y = A.mosaic_cut(rng, w, h)
            shape = (h, w) if self.channels == 1 else (h, w, 3)
            canvas = np.empty(shape, np.uint8)
            all_boxes, all_ids = [], []
            for corner in range(4):
                idx = index if corner == 0 else int(rng.integers(m))
                out, boxes, ids, crop = self._single(rng, idx, w, h, corner)
                shift = A.mosaic_tile(canvas, out, crop, corner, cut_x, cut_y)
                boxes, keep = A.mosaic_boxes(boxes, shift, corner, cut_x, cut_y, w, h,
                                             self.mosaic_bound)
                all_boxes.append(boxes[keep])
                all_ids.append(ids[keep])
            boxes, ids = np.concatenate(all_boxes), np.concatenate(all_ids)
            image = A.to_chw(canvas, image_out)
        elif mode == 1:
            out1, b1, i1, _ = self._single(rng, index, w, h)
            out2, b2, i2, _ = self._single(rng, int(rng.integers(m)), w, h)
            image = A.to_chw(cv2.addWeighted(out1, 0.5, out2, 0.5, 0.0, dtype=cv2.CV_32F),
                             image_out)
            boxes, ids = np.concatenate([b1, b2]), np.concatenate([i1, i2])
        else:
            out, boxes, ids, _ = self._single(rng, index, w, h)
            image = A.to_chw(out, image_out)
        return self._finish(image, boxes, ids, truth_out)

    def _finish(self, image, boxes, ids, truth_out):
        """(image, truths [max_boxes, 6]: box, class, track id; the first max_boxes)."""
        truth = truth_out if truth_out is not None else np.empty(self.truth_shape, np.float32)
        truth.fill(0)
        k = min(len(boxes), self.max_boxes)
        if k:
            truth[:k, :4] = boxes[:k]
            truth[:k, 4:6] = ids[:k]
        return image, truth


def load_eval_image(path, w, h, letter_box=False, channels=3, problems=None):
    """An image for evaluation/detection at w x h, no augmentation: (float32 [C, h, w], (ow, oh))
    or None when unreadable (counted in ``problems``). Resized with Darknet's resize_image, or
    with ``letter_box`` letterboxed (the aspect kept, grey padding), as Darknet's detector and
    validate_detector_map prepare it (pydarknet.image.network_input, which `detect` and
    `detector map` use)."""
    img = read_image(str(path), channels, problems)
    if img is None:
        return None
    oh, ow = img.shape[:2]
    bgr = img[:, :, ::-1] if img.ndim == 3 else img     # (network_input takes OpenCV's order)
    return network_input(bgr, w, h, letter_box), (ow, oh)


def read_truth_boxes(image_path, classes=None, problems=None, label_path=None):
    """Ground-truth boxes [n, 5] (class, x, y, w, h relative) of an image, for mAP: as
    written, not clipped (as Darknet's validate_detector_map); an empty array when its label
    file is missing (warned)."""
    rule = label_path or functools.partial(_label_path, problems=problems)
    boxes = read_labels(rule(image_path), classes, problems, keep_empty=True)
    return np.zeros((0, 5)) if boxes is None else boxes
