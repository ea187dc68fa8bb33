"""Detection from Python: images in, boxes out, with Darknet's pre-processing, decoding and NMS.

    import cv2, pydarknet
    from pydarknet.detector import detect
    net = pydarknet.load("cfg/yolov4-tiny.cfg", "yolov4-tiny.weights", batch=1)
    for class_id, score, (x, y, w, h) in detect(net, cv2.imread("dog.jpg")):
        ...                                   # x, y: box centre in pixels; w, h in pixels

Pre-processing is Darknet's (``test_detector``): BGR -> RGB, u8/255, its own bilinear resize
to the network size, or its letterbox when the cfg says ``letter_box=1``. NMS is the cfg's
``nms_kind`` (the last detection layer's) unless ``nms_kind`` is given.
"""

import concurrent.futures as cf
import os
import time

import numpy as np

from .eval.decode import Detections, decode_network, detection_layers
from .eval.nms import nms as _nms
from .eval.nms import nms_kind_name
from .image import ImageReadError, as_channels, draw_detections, network_input, read_bgr

__all__ = ["detect", "detect_batch", "detect_detections", "iter_detections", "detect_and_draw",
           "nms_settings", "prepare_batch", "postprocess", "Detections"]


def nms_settings(network):
    """(kind, beta) from the last detection layer, as Darknet's detector picks them."""
    last = detection_layers(network)[-1]
    return nms_kind_name(int(getattr(last, "nms_kind", 0))), float(getattr(last, "beta_nms", 0.6))


def prepare_batch(network, images_bgr, letter_box=None, out=None):
    """Images (uint8 BGR) -> (float32 [N, C, H, W], [(w, h), ...])."""
    n = network.net
    letter_box = bool(n.letter_box) if letter_box is None else bool(letter_box)
    channels = n.channels or 3
    if out is None or out.shape[0] != len(images_bgr):
        out = np.empty((len(images_bgr), channels, n.height, n.width), np.float32)
    sizes = []
    for i, img in enumerate(images_bgr):
        img = as_channels(img, channels)
        network_input(img, n.width, n.height, letter_box, out=out[i])
        sizes.append((img.shape[1], img.shape[0]))
    return out, sizes


def postprocess(network, sizes, thresh, nms, letter_box, nms_kind, beta_nms, heads, batch0=0,
                pixel_nms=False):
    """The last forward pass's detections: one Detections per image of ``sizes`` ((w, h)
    each), decoded from ``heads`` and after NMS (the cfg's kind unless ``nms_kind``; on the
    boxes in pixels with ``pixel_nms``, as Darknet's ``detector valid``)."""
    kind, beta = nms_settings(network)
    kind = nms_kind_name(nms_kind) if nms_kind is not None else kind
    beta = beta if beta_nms is None else float(beta_nms)
    results = []
    for b, size in enumerate(sizes):
        dets = decode_network(network, size, thresh, letter_box, batch0 + b, heads)
        results.append(_nms(dets, nms, kind, beta, inplace=True, pixels=pixel_nms) if nms
                       else dets)
    return results


def detect_detections(network, images_bgr, thresh=0.25, nms=0.45, letter_box=None,
                      nms_kind=None, beta_nms=None):
    """Images -> one :class:`~pydarknet.eval.Detections` per image (after NMS), all images in
    one forward pass."""
    if letter_box is None:
        letter_box = bool(network.net.letter_box)
    x, sizes = prepare_batch(network, images_bgr, letter_box)
    network.predict(x)
    return postprocess(network, sizes, thresh, nms, letter_box, nms_kind, beta_nms,
                        detection_layers(network))


def detect(network, image_bgr, thresh=0.25, nms=0.45, **kw):
    """Detect objects in one uint8 BGR image (as ``cv2.imread`` returns it).

    Returns [(class_id, score, (x, y, w, h))], highest score first: one entry per class whose
    probability (objectness x class) exceeds ``thresh`` after NMS, boxes in pixels of
    ``image_bgr`` with (x, y) the box centre (Darknet's convention). Keywords:
    ``letter_box`` (default: the cfg's), ``nms_kind`` ('default', 'greedynms', 'diounms';
    default: the cfg's), ``beta_nms``; ``nms=0`` turns NMS off."""
    return detect_detections(network, [image_bgr], thresh, nms, **kw)[0].to_list(thresh)


def detect_batch(network, images_bgr, thresh=0.25, nms=0.45, batch_size=None, **kw):
    """:func:`detect` for a list of images: a list of result lists, in order. Images go
    through the network ``batch_size`` at a time (default: all at once, at most 16)."""
    images_bgr = list(images_bgr)
    step = batch_size or min(max(len(images_bgr), 1), 16)
    out = []
    for i in range(0, len(images_bgr), step):
        for d in detect_detections(network, images_bgr[i:i + step], thresh, nms, **kw):
            out.append(d.to_list(thresh))
    return out


def _load(path, network, letter_box, keep_image):
    n = network.net
    img = read_bgr(path, 1 if n.channels == 1 else 3)
    x = network_input(img, n.width, n.height, letter_box)
    return x, (img.shape[1], img.shape[0]), (img if keep_image else None)


def iter_detections(network, paths, thresh=0.25, nms=0.45, letter_box=None, nms_kind=None,
                    beta_nms=None, batch_size=1, threads=2, problems=None, keep_images=False,
                    timings=None, pixel_nms=False):
    """Run the detector over image paths, reading and pre-processing ahead in ``threads``
    threads. Yields ``(index, path, image_or_None, Detections)`` for every image that could be
    read; the others are reported to ``problems`` (a ``pydarknet.data.Problems``: warned once,
    counted as image_missing / image_unreadable) and skipped. ``timings``, a list, receives
    the seconds of each forward pass (one per batch) before that batch's images are yielded.
    ``pixel_nms``: NMS on the boxes in pixels (Darknet's ``detector valid``)."""
    if letter_box is None:
        letter_box = bool(network.net.letter_box)
    heads = detection_layers(network)
    paths = list(paths)
    batch_size = max(1, int(batch_size))
    window = max(2 * batch_size, 2 * threads, 4)
    with cf.ThreadPoolExecutor(max(1, threads)) as pool:
        futures = {}

        def submit(i):
            if i < len(paths) and i not in futures:
                futures[i] = pool.submit(_load, paths[i], network, letter_box, keep_images)

        for i in range(min(window, len(paths))):
            submit(i)
        pending = []
        for i in range(len(paths)):
            submit(i + window)
            try:
                x, size, img = futures.pop(i).result()
            except ImageReadError as e:
                if problems is not None:
                    kind = "image_missing" if "not found" in e.reason else "image_unreadable"
                    problems.report(kind, f"{e.path}: {e.reason}; skipped", key=e.path)
                continue
            pending.append((i, x, size, img))
            if len(pending) == batch_size or i == len(paths) - 1:
                yield from _run(network, pending, thresh, nms, letter_box, nms_kind, beta_nms,
                                heads, paths, timings, pixel_nms)
                pending = []
        if pending:
            yield from _run(network, pending, thresh, nms, letter_box, nms_kind, beta_nms, heads,
                            paths, timings, pixel_nms)


def _run(network, pending, thresh, nms, letter_box, nms_kind, beta_nms, heads, paths, timings,
         pixel_nms):
    x = np.stack([p[1] for p in pending])
    t0 = time.perf_counter()
    network.predict(x)
    if timings is not None:
        timings.append(time.perf_counter() - t0)
    dets = postprocess(network, [p[2] for p in pending], thresh, nms, letter_box, nms_kind,
                        beta_nms, heads, pixel_nms=pixel_nms)
    for (i, _, _, img), d in zip(pending, dets):
        yield i, paths[i], img, d


def detect_and_draw(network, image_path, out_path, names=None, thresh=0.25, nms=0.45):
    """Detect in an image file and write it with the boxes drawn to ``out_path``; returns
    the detections (as :func:`detect`)."""
    import cv2
    img = read_bgr(image_path, 3)
    dets = detect(network, img, thresh, nms)
    draw_detections(img, dets, names, detection_layers(network)[-1].classes)
    folder = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    if not cv2.imwrite(str(out_path), img):
        raise OSError(f"{out_path}: cannot write the image")
    return dets

