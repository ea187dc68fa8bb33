"""Which layers are a network's heads: the layer types training, the data loader, decoding and
the command line ask about, named once."""

# Heads whose loss compares the output with box truths (Darknet's detector losses).
BOX_LOSS_HEADS = ("yolo", "gaussian_yolo", "region")
# Everything that makes a network a detector (its data are boxes, its output detections).
DETECTION_HEADS = BOX_LOSS_HEADS + ("detection",)


def detection_heads(network):
    """The network's detection layers, in order."""
    return [l for l in network.layers if l.layer_type in DETECTION_HEADS]


def is_detector(network):
    return any(l.layer_type in DETECTION_HEADS for l in network.layers)
