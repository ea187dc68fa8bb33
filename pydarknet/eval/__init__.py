"""Evaluation: decoding detector outputs to boxes, NMS, Darknet's mAP, COCO metrics through
pycocotools (``eval.coco``), anchors by k-means (``eval.anchors``), classifier top-k
(``eval.classify``).

    from pydarknet.eval import decode_network, nms, MapAccumulator, evaluate_network_map
"""

from .darknet_map import MapAccumulator, average_precision, evaluate_network_map, format_report
from .decode import Detections, correct_boxes, decode_layer, decode_network, detection_layers
from .nms import NMS_KINDS, nms, nms_keep

__all__ = ["Detections", "correct_boxes", "decode_layer", "decode_network", "detection_layers",
           "NMS_KINDS", "nms", "nms_keep", "MapAccumulator", "average_precision",
           "evaluate_network_map", "format_report"]
