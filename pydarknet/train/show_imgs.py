"""Darknet's ``-show_imgs`` (with ``-dont_show``): every training image of each iteration, as
the network sees it after augmentation, written with its truth boxes as
``aug_<iteration>_<row>.jpg``, to check the labels and the augmentation."""

import os

import cv2
import numpy as np

from ..data.augment import from_chw
from ..image import class_color

__all__ = ["save_training_images"]


def _picture(chw):
    """float32 [C, H, W] RGB in [0, 1] -> uint8 BGR (grey for one channel; the first three of
    more)."""
    img = from_chw(chw[:3])
    return np.ascontiguousarray(img[..., 0] if img.shape[2] == 1 else img[..., ::-1])


def save_training_images(images, truths, iteration, folder=".", classes=None):
    """Write each row of ``images`` [N, C, H, W] with the boxes of ``truths`` (a detector's
    [N, boxes, 5+]: x, y, w, h relative, class; a box with x == 0 ends the list) into
    ``folder``; a classifier's truths [N, classes] name the row's classes in the file name.
    Returns the paths written."""
    truths = np.asarray(truths)
    paths = []
    for row, chw in enumerate(images):
        img = _picture(chw)
        h, w = img.shape[:2]
        name = f"aug_{iteration}_{row}"
        t = truths[row] if row < len(truths) else None
        if t is not None and t.ndim == 2:                  # a detector's boxes
            if img.ndim == 2:
                img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
            for x, y, bw, bh, cls in t[:, :5]:
                if x == 0:
                    break
                color = class_color(int(cls), classes or int(t[:, 4].max()) + 1)
                p1 = (int((x - bw / 2) * w), int((y - bh / 2) * h))
                p2 = (int((x + bw / 2) * w), int((y + bh / 2) * h))
                cv2.rectangle(img, p1, p2, color, 1)
                cv2.putText(img, str(int(cls)), (p1[0] + 1, max(p1[1] + 9, 9)),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.3, color, 1, cv2.LINE_AA)
        elif t is not None and t.ndim == 1 and t.any():    # a classifier's classes
            name += "_class" + "_".join(str(int(k)) for k in np.flatnonzero(t > 0))
        path = os.path.join(folder, name + ".jpg")
        if not cv2.imwrite(path, img):
            raise OSError(f"{path}: cannot write the image (-show_imgs)")
        paths.append(path)
    return paths
