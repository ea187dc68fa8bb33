"""Which layers are a network's heads: the layer types training, the data loader, decoding and
the command line ask about, named once."""

# Every detection head: its truths are boxes, its output detections.
DETECTION_HEADS = ("yolo", "gaussian_yolo", "region", "detection")
# Heads whose random= asks for multi-scale training (on [detection] it picks boxes at random).
MULTISCALE_HEADS = ("yolo", "gaussian_yolo", "region")


def detection_heads(network):
    """The network's detection layers, in order."""
    return [l for l in network.layers if l.layer_type in DETECTION_HEADS]


def is_detector(network):
    return any(l.layer_type in DETECTION_HEADS for l in network.layers)
