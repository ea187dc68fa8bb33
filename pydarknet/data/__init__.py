"""Training data: Darknet data sets, Darknet's augmentations, parallel batch loading.

    from pydarknet.data import make_loader
    loader = make_loader(net, "train.txt", seed=1)      # detector or classifier, from the cfg
    images, truths = loader.next()                       # what Network.train_iteration takes
    loader.set_size(w, h); state = loader.get_state(); loader.set_state(state); loader.close()
"""

from .classification import ClassificationDataset
from .detection import DetectionDataset, load_eval_image, read_truth_boxes
from .io import (DataError, DataWarning, Problems, parse_label_lines, read_image,
                 read_label_file, read_list)
from .loader import BatchLoader, make_loader
from .synthetic import SHAPES, draw_shapes_image, make_shapes_classifier, make_shapes_detection

__all__ = ["BatchLoader", "make_loader", "DetectionDataset", "ClassificationDataset",
           "load_eval_image", "read_truth_boxes", "DataError", "DataWarning", "Problems",
           "parse_label_lines", "read_image", "read_label_file", "read_list", "SHAPES",
           "draw_shapes_image", "make_shapes_detection", "make_shapes_classifier"]
