"""Images as Darknet reads, resizes and draws them.

OpenCV reads and writes the files; the arithmetic is Darknet's:

- pixels become float32 ``u8 / 255.0f`` in RGB order (``load_image`` -> ``mat_to_image``);
- :func:`resize` is Darknet's ``resize_image``: bilinear with aligned corners
  (``scale = (in - 1) / (out - 1)``), a horizontal pass then a vertical one, in float32, with
  its quirk on the last output row (only the ``(1 - dy)`` term). It is *not* ``cv2.resize``
  (half-pixel centres), which is what OpenCV DNN's ``blobFromImage`` uses;
- :func:`letterbox` is ``letterbox_image``: integer-rounded aspect-keeping size, grey (0.5)
  padding, centred with integer offsets;
- :func:`resize_min` + :func:`crop` are the classifier's ``resize_min`` and ``crop_image``.

Images are HxWxC numpy arrays (channels last) until :func:`to_chw` makes the network's CHW.
"""

import os

import cv2
import numpy as np

from .errors import PydarknetError

__all__ = ["ImageReadError", "IMAGE_EXTENSIONS", "read_bgr", "to_rgb_float", "resize",
           "resize_planes", "letterbox", "letterbox_planes", "letterbox_geometry", "resize_min",
           "crop", "to_chw", "network_input", "class_color", "draw_detections"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


class ImageReadError(PydarknetError, OSError):
    """An image that does not exist or cannot be decoded; ``path`` and ``reason`` say which."""

    def __init__(self, path, reason):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def read_bgr(path, channels=3):
    """The file as OpenCV decodes it: uint8 HxWx3 BGR (``channels`` 3) or HxW grey
    (``channels`` 1). Raises :class:`ImageReadError` (missing file, not an image)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ImageReadError(path, "image not found" if not os.path.exists(path)
                             else "not a file")
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    try:
        img = cv2.imread(path, flag)
    except cv2.error:
        img = None
    if img is None or img.size == 0:
        raise ImageReadError(path, "cannot decode the image (corrupt or not an image format "
                                   "OpenCV reads)")
    return img


def as_channels(img, channels):
    """A uint8 image from OpenCV (HxW grey, HxWx3 BGR or HxWx4 BGRA) with the channels a
    network reads: BGR turned grey for ``channels`` 1 (as ``cv2.imread`` in grey would), grey
    repeated for 3, alpha dropped. Anything else is a ValueError saying what was found."""
    img = np.asarray(img)
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)) \
            or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"expected an HxWx3 BGR image (as cv2.imread returns), found an array "
                         f"of shape {list(img.shape)}")
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    if channels == 1 and img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    elif channels == 3 and (img.ndim == 2 or img.shape[2] == 1):
        img = np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2)
    return img


def _hwc(img):
    return img[:, :, None] if img.ndim == 2 else img


def to_rgb_float(img_bgr):
    """uint8 BGR (or grey) -> float32 HxWxC RGB in [0, 1], Darknet's values. Float input is
    taken as already in [0, 1] and only has its channels reversed."""
    img = _hwc(np.asarray(img_bgr))
    if img.shape[2] == 3:
        img = img[:, :, ::-1]
    return _to_float(img)


def _axis(n_in, n_out):
    """Darknet's source index, next index and weight for each output position along an axis."""
    if n_out == 1 or n_in == 1:
        idx = np.full(n_out, n_in - 1 if n_out == 1 else 0, np.intp)
        return idx, idx, np.zeros(n_out, np.float32)
    scale = np.float32(n_in - 1) / np.float32(n_out - 1)
    s = np.arange(n_out, dtype=np.float32) * scale
    i0 = s.astype(np.intp)
    d = s - i0.astype(np.float32)
    np.minimum(i0, n_in - 1, out=i0)
    return i0, np.minimum(i0 + 1, n_in - 1), d


def _to_float(a):
    """uint8 -> float32 u8 / 255.0f (Darknet's values); float input as float32."""
    if a.dtype == np.uint8:
        out = a.astype(np.float32)
        out /= np.float32(255)
        return out
    return a.astype(np.float32)


def resize_planes(planes, w, h):
    """Darknet's ``resize_image`` on planar data: [C, H, W] (uint8 or float) -> float32
    [C, h, w]. The work is done plane by plane along contiguous rows, which is what makes it
    fast in numpy."""
    planes = np.asarray(planes)
    _, ih, iw = planes.shape
    if (iw, ih) == (w, h):
        return _to_float(planes)
    # horizontal pass: part[r, c] = (1 - dx) * im[r, ix] + dx * im[r, ix + 1]
    ix0, ix1, dx = _axis(iw, w)
    part = _to_float(planes.take(ix0, axis=2))
    part *= np.float32(1) - dx
    right = _to_float(planes.take(ix1, axis=2))
    right *= dx
    part += right
    if iw > 1:
        part[:, :, w - 1] = _to_float(planes[:, :, iw - 1])
    # vertical pass: (1 - dy) * part[iy] (+ dy * part[iy + 1] except on the last row)
    iy0, iy1, dy = _axis(ih, h)
    out = part.take(iy0, axis=1)
    out *= (np.float32(1) - dy)[:, None]
    if ih > 1 and h > 1:
        below = part.take(iy1[:h - 1], axis=1)
        below *= dy[:h - 1, None]
        out[:, :h - 1] += below
    return out


def _planes(img, rgb=False):
    """HxWxC (or HxW) -> contiguous [C, H, W], channels reversed when ``rgb`` (BGR -> RGB)."""
    img = _hwc(np.asarray(img))
    p = img.transpose(2, 0, 1)
    if rgb and p.shape[0] == 3:
        p = p[::-1]
    return np.ascontiguousarray(p)


def resize(img, w, h):
    """Darknet's ``resize_image`` to w x h: float32 HxWxC (uint8 input is scaled to [0, 1]
    on the way, exactly as Darknet's loader does; channel order is left as it is)."""
    return resize_planes(_planes(img), w, h).transpose(1, 2, 0)


def letterbox_geometry(iw, ih, w, h):
    """Where an iw x ih image lands in a w x h letterbox: (new_w, new_h, dx, dy), Darknet's
    integer arithmetic (``letterbox_image`` and ``correct_yolo_boxes`` agree on it)."""
    if np.float32(w) / np.float32(iw) < np.float32(h) / np.float32(ih):
        nw, nh = w, (ih * w) // iw
    else:
        nw, nh = (iw * h) // ih, h
    return nw, nh, (w - nw) // 2, (h - nh) // 2


def letterbox_planes(planes, w, h):
    """:func:`letterbox` on planar data [C, H, W] -> float32 [C, h, w]."""
    c, ih, iw = planes.shape
    nw, nh, dx, dy = letterbox_geometry(iw, ih, w, h)
    out = np.full((c, h, w), 0.5, np.float32)
    out[:, dy:dy + nh, dx:dx + nw] = resize_planes(planes, nw, nh)
    return out


def letterbox(img, w, h):
    """Darknet's ``letterbox_image``: aspect-keeping :func:`resize` centred in a w x h canvas
    of 0.5 grey. float32 HxWxC."""
    return letterbox_planes(_planes(img), w, h).transpose(1, 2, 0)


def resize_min(img, size):
    """Darknet's ``resize_min``: the shorter side becomes ``size`` (integer arithmetic)."""
    img = _hwc(np.asarray(img))
    ih, iw = img.shape[:2]
    if iw < ih:
        w, h = size, (ih * size) // iw
    else:
        w, h = (iw * size) // ih, size
    if (w, h) == (iw, ih):
        return _to_float(img)
    return resize(img, w, h)


def crop(img, dx, dy, w, h):
    """Darknet's ``crop_image``: a w x h window at (dx, dy), edge pixels repeated outside."""
    img = _hwc(np.asarray(img))
    ih, iw = img.shape[:2]
    rows = np.clip(np.arange(h) + dy, 0, ih - 1)
    cols = np.clip(np.arange(w) + dx, 0, iw - 1)
    return img[rows][:, cols]


def to_chw(img):
    """HxWxC -> contiguous float32 CxHxW (the network's layout)."""
    return np.ascontiguousarray(_hwc(img).transpose(2, 0, 1), np.float32)


def network_input(img_bgr, w, h, letter_box=False, out=None):
    """One image (uint8 BGR from OpenCV, or float BGR in [0, 1]) -> float32 CxHxW RGB in
    [0, 1] at w x h, resized (or letterboxed) the way Darknet's detector does."""
    planes = _planes(img_bgr, rgb=True)
    sized = letterbox_planes(planes, w, h) if letter_box else resize_planes(planes, w, h)
    if out is None:
        return sized
    out[...] = sized
    return out


# -- drawing -------------------------------------------------------------------------------------

_PALETTE = np.array([[1, 0, 1], [0, 0, 1], [0, 1, 1], [0, 1, 0], [1, 1, 0], [1, 0, 0]],
                    np.float32)   # Darknet's colour ramp (RGB)


def class_color(class_id, classes):
    """Darknet's colour for a class (a ramp magenta-blue-cyan-green-yellow-red, classes
    spread over it by ``id * 123457 % classes``), as an OpenCV BGR tuple of ints."""
    classes = max(int(classes), 1)
    offset = (int(class_id) * 123457) % classes
    ratio = offset / classes * 5
    i, j = int(np.floor(ratio)), int(np.ceil(ratio))
    t = ratio - i
    rgb = (1 - t) * _PALETTE[i] + t * _PALETTE[min(j, 5)]
    return tuple(int(round(255 * v)) for v in rgb[::-1])


def draw_detections(img_bgr, detections, names=None, classes=None):
    """Draw boxes and ``name: score`` labels onto a uint8 BGR image, in place, lowest score
    first (as Darknet). ``detections``: (class_id, score, (x, y, w, h)) with x, y the box
    centre in pixels. Returns the image."""
    h, w = img_bgr.shape[:2]
    classes = classes or (len(names) if names else 1 + max((d[0] for d in detections),
                                                            default=0))
    thick = max(1, int(round(h * 0.003)))
    scale = max(0.35, h / 1000.0)
    for cls, score, (bx, by, bw, bh) in sorted(detections, key=lambda d: d[1]):
        color = class_color(cls, classes)
        left, right = int(bx - bw / 2), int(bx + bw / 2)
        top, bot = int(by - bh / 2), int(by + bh / 2)
        left, top = max(left, 0), max(top, 0)
        right, bot = min(right, w - 1), min(bot, h - 1)
        cv2.rectangle(img_bgr, (left, top), (right, bot), color, thick)
        name = names[cls] if names and cls < len(names) else str(cls)
        label = f"{name}: {score:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = top - th - base - 2 if top - th - base - 2 >= 0 else top
        cv2.rectangle(img_bgr, (left, ty), (left + tw + 2, ty + th + base + 2), color, -1)
        luma = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
        cv2.putText(img_bgr, label, (left + 1, ty + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0) if luma > 128 else (255, 255, 255), 1, cv2.LINE_AA)
    return img_bgr
