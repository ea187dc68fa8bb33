"""Box decoding of [yolo] (scale_x_y, new_coords, masks), [Gaussian_yolo] and [region] heads,
and the letterbox correction, against straight loop transcriptions of AB's
get_yolo_detections / get_gaussian_yolo_detections / get_region_boxes + correct_yolo_boxes."""

import math

import numpy as np
import pytest

from pydarknet.eval import correct_boxes, decode_layer, decode_network
from pydarknet.network import load_cfg_text

NET = """
[net]
width={w}
height={h}
channels=3
letter_box={lb}

[convolutional]
filters=8
size=3
stride=2
pad=1
activation=leaky

[convolutional]
filters={filters}
size=1
stride=1
pad=1
activation={act}
"""

YOLO = """
[yolo]
mask={mask}
anchors=10,14, 23,27, 37,58, 81,82, 135,169, 344,319
classes={classes}
num=6
scale_x_y={sxy}
new_coords={nc}
"""

GAUSS = """
[Gaussian_yolo]
mask=3,4,5
anchors=10,14, 23,27, 37,58, 81,82, 135,169, 344,319
classes={classes}
num=6
yolo_point={point}
"""

REGION = """
[region]
anchors=1.08,1.19, 3.42,4.41, 6.63,11.38
classes={classes}
num=3
softmax=1
coords=4
classfix={classfix}
"""


def build(head, entries, n, classes=3, w=64, h=48, lb=0, act="linear", seed=0, **kw):
    text = NET.format(w=w, h=h, lb=lb, filters=n * (entries + classes), act=act) + \
        head.format(classes=classes, **kw)
    net = load_cfg_text(text, batch=1)
    rng = np.random.default_rng(seed)
    conv = net.layers[1]
    conv.params["weights"][...] = rng.normal(0, 0.6, conv.params["weights"].shape)
    conv.params["biases"][...] = rng.normal(0, 0.5, conv.params["biases"].shape)
    x = rng.uniform(0, 1, (1, 3, h, w)).astype(np.float32)
    net.predict(x)
    return net


def ref_correct(b, iw, ih, netw, neth, letter):
    if letter:
        if netw / iw < neth / ih:
            new_w, new_h = netw, (ih * netw) // iw
        else:
            new_w, new_h = (iw * neth) // ih, neth
    else:
        new_w, new_h = netw, neth
    x, y, w, h = b
    return ((x - (netw - new_w) / 2 / netw) / (new_w / netw),
            (y - (neth - new_h) / 2 / neth) / (new_h / neth), w * netw / new_w, h * neth / new_h)


def ref_yolo(layer, out, netw, neth, iw, ih, thresh, letter, gaussian=False):
    e = layer.classes + (9 if gaussian else 5)
    o = out.reshape(layer.n, e, layer.h * layer.w).astype(np.float64)
    ob = 8 if gaussian else 4
    boxes, probs = [], []
    for i in range(layer.h * layer.w):
        row, col = divmod(i, layer.w)
        for a in range(layer.n):
            obj = o[a, ob, i]
            if not obj > thresh:
                continue
            m = layer.mask[a]
            aw, ah = layer.anchors[2 * m], layer.anchors[2 * m + 1]
            if gaussian:
                tx, ty, tw, th = o[a, 0, i], o[a, 2, i], o[a, 4, i], o[a, 6, i]
            else:
                tx, ty, tw, th = o[a, 0, i], o[a, 1, i], o[a, 2, i], o[a, 3, i]
            if getattr(layer, "new_coords", 0):
                bw, bh = tw * tw * 4 * aw / netw, th * th * 4 * ah / neth
            else:
                bw, bh = math.exp(tw) * aw / netw, math.exp(th) * ah / neth
            bx, by = (col + tx) / layer.w, (row + ty) / layer.h
            p = [obj * o[a, ob + 1 + k, i] for k in range(layer.classes)]
            if gaussian:
                if layer.yolo_point == "left_top":
                    bx, by = bx + bw / 2, by + bh / 2
                elif layer.yolo_point == "right_bottom":
                    bx, by = bx - bw / 2, by - bh / 2
                uc = (o[a, 1, i] + o[a, 3, i] + o[a, 5, i] + o[a, 7, i]) / 4
                p = [v * (1 - uc) for v in p]
            boxes.append(ref_correct((bx, by, bw, bh), iw, ih, netw, neth, letter))
            probs.append([v if v > thresh else 0 for v in p])
    return np.array(boxes).reshape(-1, 4), np.array(probs).reshape(-1, layer.classes)


def logistic(v):
    return 1 / (1 + math.exp(-v))


def ref_region(layer, out, netw, neth, iw, ih, thresh, letter, classfix=0):
    o = out.reshape(layer.h * layer.w * layer.num, layer.classes + 5).astype(np.float64)
    boxes, probs = [], []
    for idx in range(len(o)):
        i, a = divmod(idx, layer.num)
        row, col = divmod(i, layer.w)
        v = o[idx]
        b = ((col + logistic(v[0])) / layer.w, (row + logistic(v[1])) / layer.h,
             math.exp(v[2]) * layer.anchors[2 * a] / layer.w,
             math.exp(v[3]) * layer.anchors[2 * a + 1] / layer.h)
        boxes.append(ref_correct(b, iw, ih, netw, neth, letter))
        scale = 0 if classfix == -1 and v[4] < 0.5 else v[4]
        probs.append([scale * c if scale * c > thresh else 0 for c in v[5:]])
    return np.array(boxes), np.array(probs)


def check(dets, boxes, probs):
    assert len(dets) == len(boxes) > 0
    np.testing.assert_allclose(dets.boxes, boxes, rtol=2e-6, atol=2e-7)
    np.testing.assert_allclose(dets.probs, probs, rtol=2e-6, atol=2e-7)


@pytest.mark.parametrize("image,letter", [((64, 48), 0), ((200, 90), 1), ((45, 130), 1),
                                          ((200, 90), 0)])
@pytest.mark.parametrize("nc,sxy", [(0, 1.0), (0, 1.1), (1, 2.0)])
def test_yolo(image, letter, nc, sxy):
    net = build(YOLO, 5, 3, mask="1,3,5", sxy=sxy, nc=nc, lb=letter,
                act="logistic" if nc else "linear")
    layer = net.layers[-1]
    out = net.outputs[-1][0]
    thresh = 0.3
    dets = decode_network(net, image, thresh)          # letter_box from the cfg
    check(dets, *ref_yolo(layer, out, 64, 48, *image, thresh, letter))
    assert (dets.layer == layer.index).all()
    # Darknet's order: cell-major, anchor-minor; index = cell * n + anchor
    assert (np.diff(dets.index) > 0).all()
    assert dets.objectness.min() > thresh


@pytest.mark.parametrize("point", ["center", "left_top", "right_bottom"])
def test_gaussian_yolo(point):
    net = build(GAUSS, 9, 3, point=point, lb=1)
    layer = net.layers[-1]
    dets = decode_network(net, (120, 70), 0.2)
    check(dets, *ref_yolo(layer, net.outputs[-1][0], 64, 48, 120, 70, 0.2, 1, gaussian=True))
    assert dets.uncertainty.shape == (len(dets), 4)


@pytest.mark.parametrize("image,letter,classfix", [((64, 48), 0, 0), ((90, 200), 1, 0),
                                                   ((64, 48), 0, -1)])
def test_region(image, letter, classfix):
    """(classfix=-1: Darknet's get_region_boxes counts scales below 0.5 as 0.)"""
    net = build(REGION, 5, 3, lb=letter, classfix=classfix)
    layer = net.layers[-1]
    dets = decode_network(net, image, 0.1)
    check(dets, *ref_region(layer, net.outputs[-1][0], 64, 48, *image, 0.1, letter, classfix))
    assert (dets.objectness == 1).all()       # Darknet sets objectness 1 for [region]
    assert len(dets) == layer.h * layer.w * layer.num


def test_letterbox_correction_by_hand():
    # a 200x100 image letterboxed into 100x100: new size 100x50, 25 px bars top and bottom
    b = np.array([[0.5, 0.25, 0.2, 0.5], [0.5, 0.75, 1.0, 0.1]], np.float32)
    out = correct_boxes(b.copy(), (200, 100), (100, 100), letter_box=True)
    np.testing.assert_allclose(out, [[0.5, 0.0, 0.2, 1.0], [0.5, 1.0, 1.0, 0.2]], atol=1e-7)
    # plain resize: nothing to correct
    np.testing.assert_array_equal(correct_boxes(b.copy(), (200, 100), (100, 100)), b)


def test_batch_index_and_layer_order():
    net = build(YOLO, 5, 3, mask="0,1,2", sxy=1.0, nc=0)
    x = np.random.default_rng(5).uniform(0, 1, (3, 3, 48, 64)).astype(np.float32)
    net.predict(x)
    each = [decode_network(net, (64, 48), 0.25, batch_index=b) for b in range(3)]
    for b in range(3):
        single = net.layers[-1]
        d = decode_layer(single, net.outputs[-1][b], (64, 48), None, 0.25)
        np.testing.assert_array_equal(d.boxes, each[b].boxes)
    assert len({len(d) for d in each}) > 1     # three different images
