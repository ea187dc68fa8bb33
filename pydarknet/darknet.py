"""AB Darknet's Python API (its ``darknet.py``) on pydarknet: scripts written for it, such as
AB's darknet_images.py and darknet_video.py, run with ``from pydarknet import darknet`` in
place of ``import darknet``, without building libdarknet.

    from pydarknet import darknet
    network, class_names, colors = darknet.load_network("yolov4.cfg", "coco.data",
                                                        "yolov4.weights")
    image = darknet.make_image(darknet.network_width(network),
                               darknet.network_height(network), 3)
    darknet.copy_image_from_bytes(image, resized_rgb.tobytes())
    detections = darknet.detect_image(network, class_names, image, thresh=0.25)
    # [(label, confidence as a string of percent, (x, y, w, h) in the image's pixels)]

As AB's: ``detect_image`` runs the network on the image (resized with Darknet's resize when it
is not the network's size), keeps every class above ``thresh`` of every box in pixels of the
image given, after Darknet's sort NMS (``nms``; ``hier_thresh`` changes nothing there either),
and returns them sorted by their confidence string. Images are :class:`IMAGE` (w, h, c and
``data``, float32 planes in [0, 1], RGB; or, as darknet_images.py's batch mode makes one, a
ctypes pointer to a batch of them). ``network_predict_batch`` returns, for each image, an
object with ``num`` and ``dets``: detections with ``bbox`` (x, y, w, h), ``prob``,
``objectness``, ``classes`` and ``best_class_idx``, which ``do_nms_obj``, ``do_nms_sort``,
``remove_negatives`` and ``remove_negatives_faster`` take as AB's do.
"""

import random
from ctypes import POINTER, c_float  # noqa: F401 (darknet_images.py builds its batch with them)

import numpy as np

from .errors import PydarknetError

__all__ = ["IMAGE", "load_network", "network_width", "network_height", "make_image",
           "copy_image_from_bytes", "load_image", "free_image", "free_network_ptr",
           "predict_image", "detect_image", "bbox2points", "class_colors", "print_detections",
           "draw_boxes", "decode_detection", "non_max_suppression_fast", "set_gpu",
           "network_predict_batch", "do_nms_obj", "do_nms_sort", "remove_negatives",
           "remove_negatives_faster", "free_detections", "free_batch_detections"]

_device = "cpu"


class IMAGE:
    """Darknet's image: ``w``, ``h``, ``c`` and ``data``, float32 [c, h, w] in [0, 1]."""

    def __init__(self, w, h, c, data=None):
        self.w, self.h, self.c = int(w), int(h), int(c)
        self.data = np.zeros((self.c, self.h, self.w), np.float32) if data is None else data


def set_gpu(index):
    """The GPU the next load_network runs on (AB's cuda_set_device)."""
    global _device
    _device = f"cuda:{int(index)}"


def load_network(config_file, data_file, weights, batch_size=1):
    """(network, class names from the .data file's names=, a random BGR colour per name)."""
    from .labels import read_data_file, read_names
    from .network import load
    network = load(_text(config_file), _text(weights), batch=batch_size, device=_device)
    data = read_data_file(_text(data_file))
    classes = int(data.get("classes", 0))
    names = read_names(data["names"]) if "names" in data else [str(k) for k in range(classes)]
    if classes and len(names) < classes:
        raise PydarknetError(f"{_text(data_file)}: classes = {classes} but its names file "
                             f"lists {len(names)}")
    names = names[:classes] if classes else names
    return network, names, class_colors(names)


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def network_width(net):
    return net.net.width


def network_height(net):
    return net.net.height


def make_image(w, h, c):
    return IMAGE(w, h, c)


def copy_image_from_bytes(im, pdata):
    """The h x w x c uint8 pixels of ``pdata`` (an RGB image's ``tobytes()``) into ``im``."""
    pixels = np.frombuffer(pdata, np.uint8)
    if pixels.size != im.w * im.h * im.c:
        raise PydarknetError(f"copy_image_from_bytes: {pixels.size} bytes for a {im.w}x{im.h}x"
                             f"{im.c} image ({im.w * im.h * im.c} needed)")
    im.data = pixels.reshape(im.h, im.w, im.c).transpose(2, 0, 1).astype(np.float32) / \
        np.float32(255)


def load_image(path, w=0, h=0):
    """AB's load_image_color: the file as an RGB IMAGE (resized to w x h when both given)."""
    from .image import read_bgr, resize, to_chw, to_rgb_float
    img = to_rgb_float(read_bgr(_text(path)))
    if w and h:
        img = resize(img, int(w), int(h))
    return IMAGE(img.shape[1], img.shape[0], 3, to_chw(img))


def free_image(im):
    """(Nothing to free.)"""


def free_network_ptr(net):
    """(Nothing to free.)"""


def predict_image(net, im):
    """AB's network_predict_image: the network on ``im``, resized to the network's size with
    Darknet's resize where it differs; returns the last layer's output, flat (a classifier's
    scores, indexed by class)."""
    from .image import resize, to_chw
    x = im.data
    if (im.w, im.h) != (net.net.width, net.net.height):
        x = to_chw(resize(x.transpose(1, 2, 0), net.net.width, net.net.height))
    return np.asarray(net.predict(np.ascontiguousarray(x[None], np.float32))).reshape(-1)


def detect_image(network, class_names, image, thresh=.5, hier_thresh=.5, nms=.45):
    """[(label, confidence as str(round(percent, 2)), (x, y, w, h))] of every class above
    ``thresh`` of every box, in pixels of ``image``, sorted by the confidence string (AB's)."""
    from .detector import postprocess
    from .eval.decode import detection_layers
    predict_image(network, image)
    dets = postprocess(network, [(image.w, image.h)], thresh, nms, False, "default", None,
                       detection_layers(network), pixel_nms=True)[0]   # relative=0, as AB
    rows, cls, score = dets.pairs(0)
    boxes = dets.boxes[rows] * np.array([image.w, image.h, image.w, image.h], np.float32)
    found = [(class_names[k], float(p), tuple(float(v) for v in b))
             for k, p, b in zip(cls, score, boxes)]
    return sorted(decode_detection(found), key=lambda d: d[1])


def decode_detection(detections):
    return [(str(label), str(round(confidence * 100, 2)), bbox)
            for label, confidence, bbox in detections]


def bbox2points(bbox):
    """(x, y, w, h) -> the corners (xmin, ymin, xmax, ymax), rounded."""
    x, y, w, h = bbox
    return round(x - w / 2), round(y - h / 2), round(x + w / 2), round(y + h / 2)


def class_colors(names):
    """A random BGR colour for each class name."""
    return {name: (random.randint(0, 255), random.randint(0, 255), random.randint(0, 255))
            for name in names}


def print_detections(detections, coordinates=False):
    print("\nObjects:")
    for label, confidence, (x, y, w, h) in detections:
        if coordinates:
            print(f"{label}: {confidence}%    (left_x: {x:.0f}   top_y:  {y:.0f}   width:   "
                  f"{w:.0f}   height:  {h:.0f})")
        else:
            print(f"{label}: {confidence}%")


def draw_boxes(detections, image, colors):
    """Each detection's box and label drawn into ``image`` (a uint8 array), as AB's."""
    import cv2
    for label, confidence, bbox in detections:
        left, top, right, bottom = bbox2points(bbox)
        cv2.rectangle(image, (left, top), (right, bottom), colors[label], 1)
        cv2.putText(image, f"{label} [{float(confidence):.2f}]", (left, top - 5),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, colors[label], 2)
    return image


def non_max_suppression_fast(detections, overlap_thresh):
    """AB's (Malisiewicz's) greedy NMS over (label, confidence, bbox) by the boxes' bottom
    edge: the detections kept."""
    if not detections:
        return []
    b = np.array([d[-1] for d in detections], np.float64)
    x1, y1 = b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2
    x2, y2 = b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    idxs, pick = np.argsort(y2), []
    while len(idxs):
        last, i = len(idxs) - 1, idxs[-1]
        pick.append(i)
        w = np.maximum(0, np.minimum(x2[i], x2[idxs[:last]]) -
                       np.maximum(x1[i], x1[idxs[:last]]) + 1)
        h = np.maximum(0, np.minimum(y2[i], y2[idxs[:last]]) -
                       np.maximum(y1[i], y1[idxs[:last]]) + 1)
        overlap = w * h / area[idxs[:last]]
        idxs = np.delete(idxs, np.concatenate(([last], np.flatnonzero(overlap > overlap_thresh))))
    return [detections[i] for i in pick]


class BOX:
    __slots__ = ("x", "y", "w", "h")

    def __init__(self, x, y, w, h):
        self.x, self.y, self.w, self.h = x, y, w, h


class DETECTION:
    """One candidate box as AB's ``detection``: ``bbox``, ``prob`` [classes], ``objectness``,
    ``classes``, ``best_class_idx`` (-1: no class above the threshold)."""

    def __init__(self, bbox, prob, objectness):
        self.bbox, self.prob, self.objectness = bbox, prob, objectness
        self.classes = len(prob)
        above = np.flatnonzero(prob > 0)
        self.best_class_idx = int(above[np.argmax(prob[above])]) if above.size else -1


class DETNUMPAIR:
    __slots__ = ("num", "dets")

    def __init__(self, num, dets):
        self.num, self.dets = num, dets


def network_predict_batch(net, im, batch_size, w, h, thresh, hier=.5, map=None, relative=0,
                          letter=0):
    """AB's network_predict_batch: the network on ``batch_size`` network-sized images (``im``'s
    data, one after the other), each image's boxes in pixels of a ``w`` x ``h`` original
    (``relative``: in [0, 1]), every box of every head, probabilities above ``thresh``."""
    from .eval.decode import decode_network, detection_layers
    size = batch_size * 3 * net.net.height * net.net.width
    data = im.data
    if not isinstance(data, np.ndarray):
        data = np.ctypeslib.as_array(data, shape=(size,))
    data = np.ascontiguousarray(np.asarray(data, np.float32).reshape(-1)[:size])
    if data.size != size:
        raise PydarknetError(f"network_predict_batch: {data.size} values for {batch_size} "
                             f"images of {net.net.width}x{net.net.height}x3 ({size} needed)")
    net.predict(data.reshape(batch_size, 3, net.net.height, net.net.width))
    heads, pairs = detection_layers(net), []
    k = np.array([1, 1, 1, 1] if relative else [w, h, w, h], np.float32)
    for b in range(batch_size):
        dets = decode_network(net, (w, h), thresh, bool(letter), b, heads)
        pairs.append(DETNUMPAIR(len(dets), [
            DETECTION(BOX(*(float(v) for v in box * k)), dets.probs[r].copy(),
                      float(dets.objectness[r]))
            for r, box in enumerate(dets.boxes)]))
    return pairs


def _suppress(dets, total, thresh, keys):
    """Darknet's greedy NMS on a list of DETECTIONs, in place: the boxes of objectness 0 to
    the end, then for each key (a detection -> its score) the others sorted by it, and each
    one's score zeroed (``zero``) where an earlier one with a score left overlaps it by more
    than ``thresh``. The list ends in the last key's order, as Darknet's qsort leaves it."""
    from .eval.nms import greedy_keep, suppression_matrix
    live = [d for d in dets[:total] if d.objectness != 0]
    dets[:total] = live + [d for d in dets[:total] if d.objectness == 0]
    if not live:
        return
    xywh = np.array([[d.bbox.x, d.bbox.y, d.bbox.w, d.bbox.h] for d in live], np.float32)
    overlaps = suppression_matrix(xywh, thresh, "default", 0.6)
    order = np.arange(len(live))
    for get, zero in keys:
        scores = np.array([get(d) for d in live], np.float64)
        order = order[np.argsort(-scores[order], kind="stable")]
        scored = order[scores[order] > 0]
        for j in scored[~greedy_keep(overlaps, scored)]:
            zero(live[j])
    dets[:len(live)] = [live[i] for i in order]


def _zero_all(d):
    d.objectness = 0
    d.prob[:] = 0


def do_nms_obj(dets, total, classes, thresh):
    """Darknet's do_nms_obj: greedy NMS by objectness, whatever the class (a box overlapped
    loses its objectness and every probability)."""
    _suppress(dets, total, thresh, [(lambda d: d.objectness, _zero_all)])


def do_nms_sort(dets, total, classes, thresh):
    """Darknet's do_nms_sort: greedy NMS class by class, by that class's probability."""
    _suppress(dets, total, thresh, [
        (lambda d, k=k: d.prob[k], lambda d, k=k: d.prob.__setitem__(k, 0))
        for k in range(classes)])


def remove_negatives(detections, class_names, num):
    """(name, probability, (x, y, w, h)) of every class above 0 of every detection."""
    return [(name, float(d.prob[k]), (d.bbox.x, d.bbox.y, d.bbox.w, d.bbox.h))
            for d in detections[:num] for k, name in enumerate(class_names) if d.prob[k] > 0]


def remove_negatives_faster(detections, class_names, num):
    """(name, probability, bbox) of each detection's best class."""
    return [(class_names[d.best_class_idx], float(d.prob[d.best_class_idx]),
             (d.bbox.x, d.bbox.y, d.bbox.w, d.bbox.h))
            for d in detections[:num] if d.best_class_idx != -1]


def free_detections(dets, num):
    """(Nothing to free.)"""


def free_batch_detections(pairs, batch_size):
    """(Nothing to free.)"""
