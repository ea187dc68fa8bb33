"""[crop]: the centre crop of the input at inference; while training, Darknet's GPU build's
random crop (per image: place, flip, turn, saturation and exposure)."""

import numpy as np

from .base import Layer
from .registry import register

@register("crop")
class Crop(Layer):
    """At inference: the centre crop, scaled to [-1, 1] unless noadjust. While training,
    as Darknet's GPU build (``forward_crop_layer_gpu``): each image is recoloured in HSV
    (saturation and exposure scaled by a random factor in [1, x] or its inverse; 3 channels
    only), scaled, shifted by ``shift`` (one random shift per channel for the batch), then
    cropped at a random (sub-pixel) place, flipped with ``flip``, turned by up to ``angle``
    degrees, bilinearly; pixels outside the image are 0. Its backward passes nothing back
    (Darknet's is empty)."""
    type = "crop"
    layer_type = "crop"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.crop_height = s.get_int("crop_height", 1)
        self.crop_width = s.get_int("crop_width", 1)
        self.flip = s.get_int("flip", 0)
        self.angle = s.get_float("angle", 0)
        self.saturation = s.get_float("saturation", 1)
        self.exposure = s.get_float("exposure", 1)
        self.noadjust = s.get_int("noadjust", 0)
        self.shift = s.get_float("shift", 0)
        if not (ctx.w and ctx.h and ctx.c):
            raise s.error("the layer before a crop layer must output an image")
        self.w, self.h, self.c = ctx.w, ctx.h, ctx.c
        self.out_w, self.out_h, self.out_c = self.crop_width, self.crop_height, self.c
        if self.out_w > self.w or self.out_h > self.h or self.out_w < 1 or self.out_h < 1:
            raise s.error(f"crop {self.out_w}x{self.out_h} does not fit the {self.w}x{self.h} "
                          f"input", "crop_width")
        self.inputs = self.w * self.h * self.c
        self.outputs = self.out_w * self.out_h * self.out_c

    def forward(self, x, state):
        if state.train:
            return state.host_result(self, self._random_crop(state.backend.to_numpy(x),
                                                             state.rng))
        n = x.shape[0]
        dh, dw = (self.h - self.out_h) // 2, (self.w - self.out_w) // 2
        xs = state.backend.to_numpy(x).reshape(n, self.c, self.h, self.w)
        xs = xs[:, :, dh:dh + self.out_h, dw:dw + self.out_w]    # inference: the centre
        scale, trans = (np.float32(1), np.float32(0)) if self.noadjust else (np.float32(2),
                                                                              np.float32(-1))
        return state.host_result(self, xs * scale + trans)

    def backward(self, state):
        pass            # Darknet's backward_crop_layer is empty: no gradient reaches the input

    def _random_crop(self, x, rng):
        n, c, h, w = x.shape[0], self.c, self.h, self.w
        x = np.asarray(x, np.float32).reshape(n, c, h, w)
        r = rng.random((n, 8), dtype=np.float32)      # Darknet's 8 uniforms per image
        scale, trans = (1.0, 0.0) if self.noadjust else (2.0, -1.0)
        img = x
        if c == 3:
            sat = _random_factor(self.saturation, r[:, 0], r[:, 1])
            exp = _random_factor(self.exposure, r[:, 2], r[:, 3])
            img = _scale_saturation_exposure(x, sat, exp)
        img = img * np.float32(scale) + np.float32(trans)
        if c == 3 and self.shift:   # Darknet reads these three from the first image's numbers
            img = img + ((r[0, :3] - np.float32(0.5)) * np.float32(self.shift))[None, :, None, None]
        # where each output pixel samples its image: offset, flip, turn about the centre
        dw = (w - self.out_w) * r[:, 4, None, None]
        dh = (h - self.out_h) * r[:, 5, None, None]
        flip = (self.flip != 0) & (r[:, 6, None, None] > 0.5)
        radians = self.angle * 3.14159265 / 180.0
        angle = (2 * radians * r[:, 7] - radians)[:, None, None]
        j = np.arange(self.out_w, dtype=np.float32)[None, None, :]
        i = np.arange(self.out_h, dtype=np.float32)[None, :, None]
        xs = np.where(flip, w - dw - j - 1, j + dw)
        ys = i + dh
        cx, cy = w / 2.0, h / 2.0
        rx = np.cos(angle) * (xs - cx) - np.sin(angle) * (ys - cy) + cx
        ry = np.sin(angle) * (xs - cx) + np.cos(angle) * (ys - cy) + cy
        return _bilinear(img, rx.astype(np.float32), ry.astype(np.float32))


def _random_factor(limit, r_size, r_invert):
    """Darknet's r*(limit - 1) + 1, inverted where the second uniform is above 0.5."""
    f = r_size * np.float32(limit - 1) + np.float32(1)
    return np.where(r_invert > 0.5, np.float32(1) / f, f)


def _scale_saturation_exposure(x, sat, exp):
    """Darknet's rgb_to_hsv, S *= sat and V *= exp per image, hsv_to_rgb (clamped to [0, 1])."""
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    v = np.maximum(np.maximum(r, g), b)
    delta = v - np.minimum(np.minimum(r, g), b)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(v == 0, np.float32(0), delta / v)
        hue = np.where(r == v, (g - b) / delta,
                       np.where(g == v, 2 + (b - r) / delta, 4 + (r - g) / delta))
    hue = np.where(hue < 0, hue + 6, hue)
    s = s * sat[:, None, None]
    v = v * exp[:, None, None]
    index = np.floor(np.nan_to_num(hue, nan=0.0))
    f = hue - index
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    # sectors 0..5 of the hue circle: (r, g, b)
    table = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.empty_like(x)
    sectors = [index == m for m in range(5)]
    for k in range(3):
        channel = np.select(sectors, [row[k] for row in table[:5]], table[5][k])
        out[:, k] = np.where(s == 0, v, channel)
    return np.clip(out, 0, 1, out=out)


def _bilinear(img, rx, ry):
    """img [n, c, h, w] sampled at (rx, ry) [n, oh, ow] as Darknet's bilinear_interpolate
    (pixels outside the image are 0): [n, c, oh, ow]."""
    n, c, h, w = img.shape
    ix, iy = np.floor(rx), np.floor(ry)
    dx, dy = rx - ix, ry - iy
    ix, iy = ix.astype(np.int64), iy.astype(np.int64)
    b = np.arange(n)[:, None, None]
    out = np.zeros((n, c) + rx.shape[1:], np.float32)
    for oy, ox, weight in ((0, 0, (1 - dy) * (1 - dx)), (1, 0, dy * (1 - dx)),
                           (0, 1, (1 - dy) * dx), (1, 1, dy * dx)):
        yy, xx = iy + oy, ix + ox
        inside = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
        pixels = img[b, :, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]   # [n, oh, ow, c]
        out += np.moveaxis(np.where(inside[..., None], pixels, 0) * weight[..., None], -1, 1)
    return out
