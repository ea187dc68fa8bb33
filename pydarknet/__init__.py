"""pydarknet: Darknet-compatible networks in Python (cfg parser, builder, .weights I/O, CPU core).

    import pydarknet
    net = pydarknet.load("cfg/yolov4-tiny.cfg", "yolov4-tiny.weights", batch=1)
    out = net.predict(images)          # float32 [N, 3, H, W] in [0, 1]
"""

from .cfg import CfgWarning, parse_cfg, parse_cfg_text
from .errors import (CfgError, NotSupportedError, PydarknetError, ShapeError, WeightsError,
                     WeightsWarning)
from .network import Network, load

__version__ = "0.1.0"

__all__ = ["load", "Network", "parse_cfg", "parse_cfg_text", "CfgError", "CfgWarning",
           "WeightsError", "WeightsWarning", "ShapeError", "NotSupportedError", "PydarknetError",
           "__version__"]
