"""One module per layer type; importing this package fills the section -> class registry."""

from . import (activation, batchnorm, connected, convolutional, gaussian_yolo, local,  # noqa
               pooling, region, route, shortcut, simple, softmax, unsupported, yolo)
from .base import REGISTRY, BuildContext, Layer  # noqa: F401
