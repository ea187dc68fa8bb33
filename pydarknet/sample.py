"""A built-in test image: coloured shapes on a gradient, made on demand (no files shipped)."""

import numpy as np


def sample_image(width=416, height=416, seed=0):
    """HxWx3 RGB float32 image in [0, 1] with a few filled rectangles and discs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([xx / max(width - 1, 1), yy / max(height - 1, 1),
                    np.full_like(xx, 0.35)], axis=-1)
    for k in range(6):
        colour = rng.uniform(0.1, 1.0, 3).astype(np.float32)
        cx, cy = rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.85) * height
        r = rng.uniform(0.05, 0.15) * min(width, height)
        if k % 2:
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        else:
            mask = (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= 0.7 * r)
        img[mask] = colour
    return np.ascontiguousarray(img, np.float32)
