"""Training data: Darknet data sets, Darknet's augmentations, parallel batch loading.

    from pydarknet.data import make_loader
    loader = make_loader(net, "train.txt", seed=1)      # detector or classifier, from the cfg
    images, truths = loader.next()                       # what Network.train_iteration takes
    loader.set_size(w, h); state = loader.get_state(); loader.set_state(state); loader.close()
"""

import functools

from ..labels import parse_labels, read_labels, read_list
from .classification import ClassificationDataset
from .detection import DetectionDataset, load_eval_image, read_truth_boxes
from ..errors import DataError, DataWarning, Problems
from .io import read_image
from .loader import BatchLoader, make_loader
from .synthetic import SHAPES, draw_shapes_image, make_shapes_classifier, make_shapes_detection

# label files read as training reads them (boxes cut to the image, Darknet's correct_boxes):
# pydarknet.labels.parse_labels / read_labels with clip=True, under their old names here
parse_label_lines = functools.partial(parse_labels, clip=True)
read_label_file = functools.partial(read_labels, clip=True, missing="image skipped")

__all__ = ["BatchLoader", "make_loader", "DetectionDataset", "ClassificationDataset",
           "load_eval_image", "read_truth_boxes", "DataError", "DataWarning", "Problems",
           "parse_label_lines", "read_image", "read_label_file", "read_list", "SHAPES",
           "draw_shapes_image", "make_shapes_detection", "make_shapes_classifier"]
