"""Darknet's training augmentations (AB's data.c, image.c, image_opencv.cpp), with OpenCV + numpy.

Every random draw comes from a ``numpy.random.Generator`` handed in by the caller, so one seed
fixes a whole run. Images stay ``HxWxC`` (or ``HxW`` grey) ``uint8`` RGB until ``to_chw``, as in
Darknet's OpenCV path, where cropping, flipping, HSV, blur and noise all work on 8-bit pixels.

Detector path (``load_data_detection``): jitter crop (+ ``resize``, ``letter_box``) -> resize to
the network -> flip -> hue/saturation/exposure -> blur -> gaussian noise; boxes follow the crop
and flip (``correct_boxes``). Mosaic and mixup combine several such samples.
Classifier path (``load_data_augment``): rotated, aspect-jittered random crop of a side in
[min_crop, max_crop] (``random_augment_image``) -> flip -> HSV in float as Darknet's
``distort_image`` (the one step that leaves 8 bits: its classifier works on float images) ->
resize; then mixup, cutmix or mosaic of whole samples and an occasional blur.
"""

import math
from dataclasses import dataclass

import cv2
import numpy as np


# -- Darknet's random helpers (utils.c), on a numpy Generator --------------------------------
# Darknet draws and computes these in float: with doubles, a crop side of ow * (1 - 1 / (1 /
# 1.5)) / 2 truncates to another integer (-25 instead of -24.99999 -> -24), so float32 here.
_F = np.float32


def rand_uniform(rng, a, b):
    """Uniform in [min(a, b), max(a, b)) (``rand_uniform_strong``), a float32 value."""
    lo, hi = (_F(a), _F(b)) if a <= b else (_F(b), _F(a))
    return float(_F(rng.random()) * (hi - lo) + lo)


def rand_scale(rng, s):
    """A factor in [1, s] or its reciprocal, each half of the time (``rand_scale``; the
    reciprocal taken in double, returned as float)."""
    scale = rand_uniform(rng, 1.0, s)
    return scale if rng.integers(2) else float(_F(1.0 / scale))


def rand_int(rng, a, b):
    """An integer in [a, b], both included (``rand_int``)."""
    lo, hi = (a, b) if a <= b else (b, a)
    return int(rng.integers(lo, hi + 1))


def _precalc(a, b, r):
    """``rand_precalc_random``: a + r (b - a) in float."""
    lo, hi = (_F(a), _F(b)) if a <= b else (_F(b), _F(a))
    return _F(r) * (hi - lo) + lo


# -- geometry ----------------------------------------------------------------------------------

@dataclass
class Crop:
    """A crop window of the source image (pixels, may reach outside it) and a horizontal flip.

    ``pright``/``pbot`` are the margins cut from the right and bottom (negative: padding), as in
    Darknet; mosaic needs them to find where the image's content ends.
    """
    ow: int
    oh: int
    pleft: int
    ptop: int
    pright: int
    pbot: int
    flip: bool = False

    @property
    def swidth(self):
        return self.ow - self.pleft - self.pright

    @property
    def sheight(self):
        return self.oh - self.ptop - self.pbot

    @classmethod
    def full(cls, ow, oh, flip=False):
        return cls(ow, oh, 0, 0, 0, 0, flip)


def jitter_crop(rng, ow, oh, jitter, resize=1.0, flip=False, letter_box=False, net_w=None,
                net_h=None, mosaic_corner=None, sides_rng=None):
    """Darknet's detector crop: each side moves by up to ``jitter`` of the image (in or out),
    ``resize`` != 1 scales the window, ``letter_box`` pads it to the network's aspect.
    ``sides_rng``: the generator of the four jitter draws (default ``rng``; two contrastive
    views of an image share it).

    ``mosaic_corner`` (0..3) is the mosaic tile this sample is for; Darknet then, half the time,
    puts all the jitter on the sides away from the mosaic's centre so the content is visible.
    """
    one, two, fw, fh = _F(1), _F(2), _F(ow), _F(oh)      # Darknet's float arithmetic
    dw, dh = int(fw * _F(jitter)), int(fh * _F(jitter))
    resize_down = one / _F(resize) if resize > 1.0 else _F(resize)
    resize_up = one / _F(resize) if resize < 1.0 else _F(resize)
    min_rdw = int(fw * (one - one / resize_down) / two)   # <= 0
    min_rdh = int(fh * (one - one / resize_down) / two)
    max_rdw = int(fw * (one - one / resize_up) / two)     # >= 0
    max_rdh = int(fh * (one - one / resize_up) / two)
    rr1, rr2 = rng.random(2)
    r1, r2, r3, r4 = (rng if sides_rng is None else sides_rng).random(4)
    pleft = int(_precalc(-dw, dw, r1))
    pright = int(_precalc(-dw, dw, r2))
    ptop = int(_precalc(-dh, dh, r3))
    pbot = int(_precalc(-dh, dh, r4))
    hi_w, hi_h = (0, 0) if resize < 1 else (max_rdw, max_rdh)
    pleft = int(_F(pleft) + _precalc(min_rdw, hi_w, rr1))
    pright = int(_F(pright) + _precalc(min_rdw, hi_w, rr2))
    ptop = int(_F(ptop) + _precalc(min_rdh, hi_h, rr1))
    pbot = int(_F(pbot) + _precalc(min_rdh, hi_h, rr2))
    if letter_box and net_w and net_h:
        net_ar = _F(net_w) / _F(net_h)
        # AB's Makefile builds with -Ofast, which divides by net_ar as a product with its
        # reciprocal: a 1-pixel difference where the quotient is a whole number (44 / (64/112))
        inv_ar = one / net_ar
        if (fw / fh) * inv_ar > 1:          # too wide: pad top and bottom
            delta = (fw * inv_ar - fh) / two
            ptop, pbot = int(_F(ptop) - delta), int(_F(pbot) - delta)
        else:                               # too tall: pad left and right
            delta = (fh * net_ar - fw) / two
            pleft, pright = int(_F(pleft) - delta), int(_F(pright) - delta)
    if mosaic_corner is not None and rng.integers(2) == 0:
        left_side = (mosaic_corner in (0, 2)) != bool(flip)   # content kept at the right edge
        if left_side:
            pright, pleft = pright + pleft, 0
        else:
            pleft, pright = pleft + pright, 0
        if mosaic_corner in (0, 1):
            pbot, ptop = pbot + ptop, 0
        else:
            ptop, pbot = ptop + pbot, 0
    crop = Crop(ow, oh, pleft, ptop, pright, pbot, bool(flip))
    if crop.swidth <= 0 or crop.sheight <= 0 or ow - pleft <= 0 or oh - ptop <= 0:
        crop = Crop.full(ow, oh, bool(flip))          # Darknet's "invalid resize" fallback
    return crop


def crop_resize(img, crop, w, h):
    """The crop window resized (bilinear) to w x h; outside the image: its mean colour.
    Then the horizontal flip. One ``warpAffine`` instead of Darknet's crop + copy + resize."""
    sw, sh = crop.swidth, crop.sheight
    if crop.pleft == 0 and crop.ptop == 0 and sw == crop.ow and sh == crop.oh:
        out = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    else:
        sx, sy = sw / w, sh / h
        m = np.array([[sx, 0, 0.5 * sx - 0.5 + crop.pleft],
                      [0, sy, 0.5 * sy - 0.5 + crop.ptop]], np.float64)
        fill = tuple(float(round(v)) for v in cv2.mean(img))   # 4 values, unused ones 0
        out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    if crop.flip:
        out = cv2.flip(out, 1)
    return out


def crop_boxes(boxes, crop):
    """Darknet's ``correct_boxes``: [n, 4] x, y, w, h relative to the source image -> relative to
    the crop (flipped as it is), clipped to [0, 1]. Boxes that leave the crop get w or h 0."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    sw, sh = crop.swidth, crop.sheight
    left = ((boxes[:, 0] - boxes[:, 2] / 2) * crop.ow - crop.pleft) / sw
    right = ((boxes[:, 0] + boxes[:, 2] / 2) * crop.ow - crop.pleft) / sw
    top = ((boxes[:, 1] - boxes[:, 3] / 2) * crop.oh - crop.ptop) / sh
    bot = ((boxes[:, 1] + boxes[:, 3] / 2) * crop.oh - crop.ptop) / sh
    if crop.flip:
        left, right = 1 - right, 1 - left
    left, right = np.clip(left, 0, 1), np.clip(right, 0, 1)
    top, bot = np.clip(top, 0, 1), np.clip(bot, 0, 1)
    return np.stack([(left + right) / 2, (top + bot) / 2, right - left, bot - top], axis=1)


# -- photometric -------------------------------------------------------------------------------

_RAMP = np.arange(256, dtype=np.float64)


def _lut(values):
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def hsv_distort(img, dhue, dsat, dexp):
    """Hue shift (``dhue`` of the colour circle), saturation and value (exposure) scaling, in
    OpenCV's 8-bit HSV as Darknet's ``image_data_augmentation``; grey images get exposure only.
    The hue is Darknet's 8-bit add: below 0 it saturates at 0 (red), from 180 on it wraps."""
    if dsat == 1 and dexp == 1 and dhue == 0:
        return img
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.LUT(img, _lut(_RAMP * dexp))
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    h, s, v = cv2.split(hsv)
    hue_lut = _lut(_RAMP + 179.0 * dhue).astype(np.int64) % 180    # Darknet: 179 * dhue
    h = cv2.LUT(h, hue_lut.astype(np.uint8))
    s = cv2.LUT(s, _lut(_RAMP * dsat))
    v = cv2.LUT(v, _lut(_RAMP * dexp))
    return cv2.cvtColor(cv2.merge([h, s, v]), cv2.COLOR_HSV2RGB)


def distort_float(img, dhue, dsat, dexp):
    """Darknet's distort_image (image.c), which its classifier training uses: float HSV of the
    image (uint8 RGB, HxWxC) in [0, 1], saturation and value scaled unclipped, the hue shifted
    round the circle, back to RGB, then each channel clipped to [0, 1]. Returns float32
    HxWxC; an image of fewer than 3 channels gets its first channel scaled by ``dexp``."""
    x = np.asarray(img, np.float32) * np.float32(1 / 255)
    if x.ndim == 2:
        x = x[:, :, None]
    if x.shape[2] < 3:
        x[..., 0] *= np.float32(dexp)
        return np.clip(x, 0, 1, out=x)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v = np.maximum(np.maximum(r, g), b)
    delta = v - np.minimum(np.minimum(r, g), b)
    grey = delta == 0               # s = 0: Darknet's hue there is 0 or NaN, and unused
    safe = np.where(grey, np.float32(1), delta)
    h = np.where(r == v, (g - b) / safe, np.where(g == v, 2 + (b - r) / safe,
                                                  4 + (r - g) / safe))
    h = np.where(h < 0, h + 6, h) / np.float32(6)
    s = np.where(v == 0, np.float32(0), delta / np.where(v == 0, np.float32(1), v))
    s, v = s * np.float32(dsat), v * np.float32(dexp)
    h = h + np.float32(dhue)
    h = np.where(h > 1, h - 1, h)
    h = np.where(h < 0, h + 1, h)
    h6 = 6 * h
    index = np.floor(h6)
    f = h6 - index
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    sectors = [index == k for k in range(5)]            # 6 (h = 1) falls in the last one
    rgb = [np.select(sectors, choice, default)
           for choice, default in (([v, q, p, p, t], v), ([t, v, v, q, p], p),
                                   ([p, p, t, v, v], q))]
    out = x.copy()
    for c, channel in enumerate(rgb):
        out[..., c] = np.where(s == 0, v, channel)
    return np.clip(out, 0, 1, out=out)


def random_hsv(rng, hue, saturation, exposure):
    """Darknet's draw: dhue uniform in [-hue, hue], dsat = rand_scale(saturation),
    dexp = rand_scale(exposure)."""
    dhue = rand_uniform(rng, -hue, hue)
    dsat = rand_scale(rng, saturation)
    dexp = rand_scale(rng, exposure)
    return dhue, dsat, dexp


def pick_blur(rng, use_blur):
    """0 none, 1 blur the background only, >1 blur the whole image with that kernel."""
    if not use_blur:
        return 0
    k = rand_int(rng, 0, 2)
    return 0 if k == 0 else 1 if k == 1 else int(use_blur)


def blur_image(img, blur, boxes=None):
    """blur == 1: 17x17 Gaussian on the background, boxes ([n, 4] relative) kept sharp;
    blur > 1: the whole image with an odd kernel of about ``blur`` pixels."""
    if blur <= 0:
        return img
    if blur == 1:
        out = cv2.GaussianBlur(img, (17, 17), 0)
        if boxes is not None and len(boxes):
            H, W = img.shape[:2]
            for x, y, bw, bh in np.asarray(boxes, np.float64):
                left, top = int((x - bw / 2) * W), int((y - bh / 2) * H)
                right, bot = left + int(bw * W), top + int(bh * H)
                left, top = max(left, 0), max(top, 0)
                right, bot = min(right, W), min(bot, H)
                if right > left and bot > top:
                    out[top:bot, left:right] = img[top:bot, left:right]
        return out
    k = (int(blur) // 2) * 2 + 1
    return cv2.GaussianBlur(img, (k, k), 0)


def gaussian_noise(rng, img, sigma):
    """Darknet's noise (sigma in 0..127, 8-bit units): N(0, sigma) drawn into an 8-bit image
    (cv::randn into the image's type: rounded, negatives 0), then added, saturating. So it
    only brightens, by about 0.4 sigma on average."""
    sigma = min(max(int(sigma), 0), 127)
    if sigma == 0:
        return img
    noise = _lut(rng.standard_normal(img.shape, dtype=np.float32) * sigma)
    return np.minimum(img.astype(np.int16) + noise, 255).astype(np.uint8)


def to_chw(img, out=None):
    """uint8 HxWxC (or HxW) -> float32 CxHxW in [0, 1], into ``out`` when given."""
    if img.ndim == 2:
        img = img[:, :, None]
    if out is None:
        out = np.empty((img.shape[2], img.shape[0], img.shape[1]), np.float32)
    np.multiply(img.transpose(2, 0, 1), np.float32(1 / 255), out=out, casting="unsafe")
    return out


def from_chw(x):
    """float32 CxHxW in [0, 1] -> uint8 HxWxC (for rendering)."""
    return np.clip(np.rint(np.asarray(x).transpose(1, 2, 0) * 255), 0, 255).astype(np.uint8)


# -- the classifier's crop ---------------------------------------------------------------------

def random_augment(rng, img, angle, aspect, low, high, size, w=None, h=None):
    """Darknet's ``random_augment_image`` + the final resize: a window whose shorter side is
    scaled to a random r in [low, high], aspect jittered by ``rand_scale(aspect)``, rotated by up
    to ``angle`` degrees and shifted randomly, sampled into ``size`` x ``size`` and then squeezed
    to w x h. Done as one bilinear ``warpAffine`` (outside the image: black, as Darknet)."""
    w, h = w or size, h or size
    ih, iw = img.shape[:2]
    aspect = _F(rand_scale(rng, aspect))
    r = rand_int(rng, int(low), int(high))
    # Darknet's types: the shorter side an int (im.w * aspect truncated), the scale, angle and
    # shifts floats
    smin = ih if ih < _F(iw) * aspect else int(_F(iw) * aspect)
    s = _F(r) / _F(smin)
    rad = float(_F(rand_uniform(rng, -angle, angle) * 2.0 * math.pi / 360.0))
    dx = max(float(_F((_F(iw) * s / aspect - _F(size)) / 2.0)), 0.0)
    dy = max(float(_F((_F(ih) * s - _F(size)) / 2.0)), 0.0)
    dx = rand_uniform(rng, -dx, dx)
    dy = rand_uniform(rng, -dy, dy)
    aspect, s = float(aspect), float(s)
    # Output pixel (u, v) of the w x h image samples crop pixel (x, y) = (u * size / w,
    # v * size / h) (pixel centres aligned), which samples the source at Darknet's
    # rotate_crop_image mapping:
    #   rx = cos*((x - size/2 + dx) * aspect / s) - sin*((y - size/2 + dy) / s) + iw/2
    #   ry = sin*((x - size/2 + dx) * aspect / s) + cos*((y - size/2 + dy) / s) + ih/2
    c, sn = math.cos(rad), math.sin(rad)
    kx, ky = size / w, size / h
    ox, oy = 0.5 * kx - 0.5 - size / 2 + dx, 0.5 * ky - 0.5 - size / 2 + dy
    ax, ay = aspect / s, 1.0 / s
    m = np.array([[c * ax * kx, -sn * ay * ky, c * ax * ox - sn * ay * oy + iw / 2],
                  [sn * ax * kx, c * ay * ky, sn * ax * ox + c * ay * oy + ih / 2]], np.float64)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))


# -- mixing ------------------------------------------------------------------------------------

def mosaic_cut(rng, w, h):
    """The mosaic centre: 20%..80% of each side."""
    lo, hi = _F(0.2), _F(1) - _F(0.2)           # Darknet's w * min_offset, w * (1 - it)
    return (rand_int(rng, int(_F(w) * lo), int(_F(w) * hi)),
            rand_int(rng, int(_F(h) * lo), int(_F(h) * hi)))


def mosaic_tile(dst, src, crop, corner, cut_x, cut_y):
    """Copy the part of ``src`` (an augmented w x h sample made with ``crop``) that Darknet puts
    in mosaic tile ``corner`` (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) of ``dst``.
    Returns the (shift_x, shift_y) in pixels that maps src coordinates to dst coordinates."""
    h, w = dst.shape[:2]
    pleft, pright = (crop.pright, crop.pleft) if crop.flip else (crop.pleft, crop.pright)
    # The padding (in output pixels) around the image's content. Darknet scales the margins
    # by w / ow instead of w / swidth, which misplaces the window when the crop is larger than
    # the image and lets boxes run into the next tile; here the window ends at the content.
    left_shift = min(cut_x, max(0, int(-pleft * w / crop.swidth)))
    top_shift = min(cut_y, max(0, int(-crop.ptop * h / crop.sheight)))
    right_shift = min(w - cut_x, max(0, int(-pright * w / crop.swidth)))
    bot_shift = min(h - cut_y, max(0, int(-crop.pbot * h / crop.sheight)))
    if corner in (0, 2):     # left tiles: the content's right end
        sx0, dx0, tw = w - cut_x - right_shift, 0, cut_x
    else:
        sx0, dx0, tw = left_shift, cut_x, w - cut_x
    if corner in (0, 1):     # top tiles: the content's bottom end
        sy0, dy0, th = h - cut_y - bot_shift, 0, cut_y
    else:
        sy0, dy0, th = top_shift, cut_y, h - cut_y
    dst[dy0:dy0 + th, dx0:dx0 + tw] = src[sy0:sy0 + th, sx0:sx0 + tw]
    return dx0 - sx0, dy0 - sy0


def mosaic_boxes(boxes, shift, corner, cut_x, cut_y, w, h, bound):
    """Darknet's ``blend_truth_mosaic`` for one tile: shift the tile's boxes ([n, 4] relative)
    and clip them to the image (or to the tile with ``mosaic_bound``). Returns the clipped
    boxes and a mask of those to keep."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    x = b[:, 0] + shift[0] / w
    y = b[:, 1] + shift[1] / h
    left, right = (x - b[:, 2] / 2) * w, (x + b[:, 2] / 2) * w
    top, bot = (y - b[:, 3] / 2) * h, (y + b[:, 3] / 2) * h
    if bound:
        lb, rb = (0, cut_x) if corner in (0, 2) else (cut_x, w)
        tb, bb = (0, cut_y) if corner in (0, 1) else (cut_y, h)
    else:
        lb, rb, tb, bb = 0, w, 0, h
    left, right = np.clip(left, lb, rb), np.clip(right, lb, rb)
    top, bot = np.clip(top, tb, bb), np.clip(bot, tb, bb)
    out = np.stack([(left + right) / 2 / w, (top + bot) / 2 / h, (right - left) / w,
                    (bot - top) / h], axis=1)
    keep = (out[:, 2] > 1.0 / w) & (out[:, 3] > 1.0 / h) & (out[:, 2] < 1) & (out[:, 3] < 1) & \
        (out[:, 0] > 0) & (out[:, 0] < 1) & (out[:, 1] > 0) & (out[:, 1] < 1)
    return out, keep


# -- looking at samples (Darknet's -show_imgs) -------------------------------------------------

def draw_truths(image, truths, path=None, scale=1):
    """The sample (float32 [C, H, W]) with its truth boxes drawn, as uint8 RGB HxWx3; written to
    ``path`` (PNG/JPEG by extension) when given. Classes get distinct colours."""
    img = from_chw(image)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    if scale != 1:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    img = np.ascontiguousarray(img)
    H, W = img.shape[:2]
    truths = np.asarray(truths).reshape(-1, np.asarray(truths).shape[-1])
    for row in truths:
        if row[0] == 0:
            break
        x, y, w, h = (float(v) for v in row[:4])
        cls = int(row[4]) if len(row) > 4 else 0
        colour = tuple(int(c) for c in cv2.cvtColor(
            np.uint8([[[(cls * 47) % 180, 255, 255]]]), cv2.COLOR_HSV2RGB)[0, 0])
        p0 = (int(round((x - w / 2) * W)), int(round((y - h / 2) * H)))
        p1 = (int(round((x + w / 2) * W)) - 1, int(round((y + h / 2) * H)) - 1)
        cv2.rectangle(img, p0, p1, colour, 1)
        cv2.putText(img, str(cls), (p0[0] + 1, p0[1] + 9), cv2.FONT_HERSHEY_PLAIN, 0.7, colour)
    if path is not None:
        cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return img
