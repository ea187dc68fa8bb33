"""One module per layer type, named after its section; importing this package fills the
section -> class registry (registry.py)."""

from . import (activation, avgpool, batchnorm, connected, contrastive, convolutional,  # noqa
               cost, crnn, crop, detection, dropout, empty, gaussian_yolo, gru, history,
               implicit, local, local_avgpool, lstm, maxpool, normalization, region, reorg, rnn,
               route, sam, scale_channels, shortcut, softmax, upsample, yolo)
from .base import BuildContext, Layer  # noqa: F401
from .registry import REGISTRY, SECTION_NAMES, canonical_name, layer_class  # noqa: F401
