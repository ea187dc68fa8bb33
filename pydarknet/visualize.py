"""Darknet's ``visualize``: the filters of every [convolutional] layer as one image a layer.

As AB's visualize_network: each filter (``size x size x c/groups``) is scaled to [0, 1] on its
own (normalize_image), the filters are stacked top to bottom one pixel apart, a filter of
other than 3 channels laid out channel by channel left to right (grey), one of 3 in colour
(its channels R, G, B, as the network reads an image); the whole is scaled to [0, 1] again and
written as ``Layer <index>.jpg`` (quality 80), the pixels ``(uint8)(255 * v)``. (AB also
writes each layer's output as ``Layer <index>: Output.jpg``; without a forward pass it is
black, and it is left out here.)
"""

import os

import numpy as np

__all__ = ["filter_montage", "visualize_network"]


def _normalized(a):
    """normalize_image: to [0, 1] by its minimum and maximum (as it is when they meet)."""
    lo, hi = float(a.min()), float(a.max())
    if hi - lo < 1e-9:
        lo, hi = 0.0, 1.0
    return ((a - np.float32(lo)) / np.float32(hi - lo)).astype(np.float32)


def filter_montage(weights):
    """AB's collapse_images_vert of the normalised filters of ``weights`` [n, c, k, k]:
    float32 HxWx3 (c == 3, RGB) or HxW (otherwise), in [0, 1]."""
    w = np.asarray(weights, np.float32)
    n, c, kh, kw = w.shape
    filters = [_normalized(f) for f in w]
    if c == 3:
        out = np.zeros(((kh + 1) * n - 1, kw, 3), np.float32)
        for i, f in enumerate(filters):
            out[i * (kh + 1):i * (kh + 1) + kh] = f.transpose(1, 2, 0)
    else:
        out = np.zeros(((kh + 1) * n - 1, (kw + 1) * c - 1), np.float32)
        for i, f in enumerate(filters):
            for j in range(c):
                out[i * (kh + 1):i * (kh + 1) + kh, j * (kw + 1):j * (kw + 1) + kw] = f[j]
    return _normalized(out)


def visualize_network(network, folder="."):
    """Write ``Layer <index>.jpg`` into ``folder`` for each [convolutional] layer that has
    weights of its own; returns the paths written."""
    import cv2

    from .errors import PydarknetError
    os.makedirs(folder, exist_ok=True)
    network.params_to_host()
    paths = []
    for layer in network.layers:
        if layer.layer_type != "convolutional" or "weights" not in layer.params:
            continue
        img = filter_montage(layer.params["weights"])
        pixels = np.clip(255 * img, 0, 255).astype(np.uint8)          # (truncated, as AB)
        if pixels.ndim == 3:
            pixels = pixels[:, :, ::-1]                                # RGB -> OpenCV's BGR
        path = os.path.join(folder, f"Layer {layer.index}.jpg")
        if not cv2.imwrite(path, pixels, [cv2.IMWRITE_JPEG_QUALITY, 80]):
            raise PydarknetError(f"cannot write {path}")
        paths.append(path)
    return paths
