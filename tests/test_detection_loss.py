"""The [detection] (YOLOv1) training loss and box decoding equal AlexeyAB Darknet's.

No Darknet run of a [detection] layer is in the reference data, so the oracles are AB's
fill_truth_region, forward_detection_layer (train path) and get_detection_detections
(59596d7, src/data.c, src/detection_layer.c) transcribed loop by loop, float by float. The
vectorised code must give their values bit for bit on random heads with every option the
loss reads.
"""

import math

import numpy as np
import pytest

from pydarknet.errors import CfgError
from pydarknet.eval.decode import decode_layer
from pydarknet.host_math import softmax_rows
from pydarknet.layers.detection_loss import detection_loss, truth_grid
from pydarknet.network import load_cfg_text

from head_nets import YOLOV1, darknet_box_iou, two_box_batch

f32 = np.float32


# ---- the transcriptions ---------------------------------------------------------------------

def darknet_truth_grid(truths, side, classes):
    """fill_truth_region on boxes already read (and shuffled: pydarknet's loader does that)."""
    N = truths.shape[0]
    grid = np.zeros((N, side * side * (5 + classes)), f32)
    for b in range(N):
        for x, y, w, h, cid in truths[b, :, :5]:
            if x == 0:
                break
            if float(w) < .001 or float(h) < .001:
                continue
            col, row = int(x * f32(side)), int(y * f32(side))
            x, y = x * f32(side) - f32(col), y * f32(side) - f32(row)
            index = (col + row * side) * (5 + classes)
            if grid[b, index]:
                continue
            grid[b, index] = 1
            index += 1
            if int(cid) < classes:
                grid[b, index + int(cid)] = 1
            index += classes
            grid[b, index:index + 4] = x, y, w, h
    return grid




def _rmse(a, b):
    return f32(math.sqrt(sum(float(p - q) ** 2 for p, q in zip(a, b))))


def darknet_detection_loss(layer, out, grid):
    """forward_detection_layer's train path (random=0); returns (delta, sum of squares)."""
    side, n, classes = layer.side, layer.num, layer.classes
    locations = side * side
    x = out.reshape(out.shape[0], -1)
    N, inputs = x.shape
    truth = grid.reshape(-1)
    delta = np.zeros((N, inputs), f32)
    for b in range(N):
        for i in range(locations):
            t_index = (b * locations + i) * (1 + 4 + classes)
            is_obj = int(truth[t_index])
            for j in range(n):
                p = locations * classes + i * n + j
                delta[b, p] = f32(layer.noobject_scale) * (f32(0) - x[b, p])
            if not is_obj:
                continue
            c_index = i * classes
            for j in range(classes):
                delta[b, c_index + j] = f32(layer.class_scale) * (truth[t_index + 1 + j]
                                                                 - x[b, c_index + j])
            tb = truth[t_index + 1 + classes:t_index + 5 + classes].copy()
            tb[0] /= f32(side)
            tb[1] /= f32(side)

            def pred_box(j):
                bi = locations * (classes + n) + (i * n + j) * 4
                o = x[b, bi:bi + 4].copy()
                o[0] /= f32(side)
                o[1] /= f32(side)
                if layer.sqrt:
                    o[2], o[3] = o[2] * o[2], o[3] * o[3]
                return bi, o

            best_index, best_iou, best_rmse = -1, f32(0), f32(20)
            for j in range(n):
                _, o = pred_box(j)
                iou, rmse = darknet_box_iou(o, tb), _rmse(o, tb)
                if best_iou > 0 or iou > 0:
                    if iou > best_iou:
                        best_iou, best_index = iou, j
                elif rmse < best_rmse:
                    best_rmse, best_index = rmse, j
            if layer.forced:
                best_index = 1 if tb[2] * tb[3] < f32(.1) else 0
            bi, o = pred_box(best_index)
            iou = darknet_box_iou(o, tb)
            p = locations * classes + i * n + best_index
            delta[b, p] = f32(float(f32(layer.object_scale)) * (1. - float(x[b, p])))
            if layer.rescore:
                delta[b, p] = f32(layer.object_scale) * (iou - x[b, p])
            ti = t_index + 1 + classes
            for k in range(4):
                delta[b, bi + k] = f32(layer.coord_scale) * (truth[ti + k] - x[b, bi + k])
            if layer.sqrt:
                for k in (2, 3):
                    root = math.sqrt(float(truth[ti + k]))
                    delta[b, bi + k] = f32(float(f32(layer.coord_scale))
                                           * (root - float(x[b, bi + k])))
    return delta.reshape(out.shape), float(np.square(delta, dtype=np.float64).sum())


def darknet_detections(layer, out, thresh):
    """get_detection_detections with w = h = 1 (relative boxes)."""
    side, n, classes = layer.side, layer.num, layer.classes
    p = out.reshape(-1)
    boxes, scales, probs = [], [], []
    for i in range(side * side):
        row, col = i // side, i % side
        for k in range(n):
            scale = p[side * side * classes + i * n + k]
            bi = side * side * (classes + n) + (i * n + k) * 4
            power = 2 if layer.sqrt else 1
            boxes.append([(p[bi] + f32(col)) / f32(side), (p[bi + 1] + f32(row)) / f32(side),
                          f32(float(p[bi + 2]) ** power), f32(float(p[bi + 3]) ** power)])
            scales.append(scale)
            pr = [scale * p[i * classes + j] for j in range(classes)]
            probs.append([v if v > f32(thresh) else f32(0) for v in pr])
    return np.array(boxes, f32), np.array(scales, f32), np.array(probs, f32)


# ---- random heads ---------------------------------------------------------------------------

def detection_net(side, num, classes, options="", batch=1):
    inputs = side * side * (5 * num + classes)
    return load_cfg_text(f"[net]\nbatch={batch}\nwidth=8\nheight=8\nchannels=3\n"
                         f"[connected]\noutput={inputs}\nactivation=linear\n"
                         f"[detection]\nclasses={classes}\ncoords=4\nnum={num}\nside={side}\n"
                         f"{options}")


def random_truths(rng, N, T, classes):
    t = np.zeros((N, T, 6), f32)
    for b in range(N):
        k = int(rng.integers(0, T + 1))
        t[b, :k, 0:2] = rng.uniform(0.01, 0.99, (k, 2))
        t[b, :k, 2:4] = rng.choice([0.0005, 0.05, 0.3, 0.8], (k, 2))
        t[b, :k, 4] = rng.integers(0, classes, k)
    return t


OPTIONS = ["", "sqrt=1", "rescore=1", "forced=1", "sqrt=1\nrescore=1\nsoftmax=1",
           "object_scale=1.3\nnoobject_scale=0.5\nclass_scale=1.5\ncoord_scale=5\nsqrt=1",
           "object_scale=0.7\ncoord_scale=1.1"]


@pytest.mark.parametrize("case", range(30))
def test_detection_loss_matches_darknet_transcription(case):
    rng = np.random.default_rng(case)
    side, num, classes = int(rng.integers(2, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 5))
    options = OPTIONS[case % len(OPTIONS)]
    layer = detection_net(side, num, classes, options).layers[-1]
    if layer.forced and num < 2:
        layer.num = num = 2
        layer = detection_net(side, 2, classes, options).layers[-1]
    N = int(rng.integers(1, 4))
    out = rng.uniform(-0.2, 1.2, (N, layer.inputs)).astype(f32)
    if layer.sqrt:
        cells = side * side
        out[:, cells * (classes + num):] = rng.uniform(0.05, 1, (N, cells * num * 4))
    if layer.softmax:
        k = side * side * classes
        out[:, :k] = softmax_rows(out[:, :k].reshape(N, -1, classes)).reshape(N, k)
    truths = random_truths(rng, N, int(rng.integers(1, 12)), classes)
    grid = truth_grid(truths, side, classes)
    np.testing.assert_array_equal(grid.reshape(N, -1), darknet_truth_grid(truths, side, classes))
    ref, ref_cost = darknet_detection_loss(layer, out, grid)
    delta, cost, stats = detection_loss(layer, out, truths, 10 ** 6)
    np.testing.assert_array_equal(delta, ref)
    assert cost == pytest.approx(ref_cost, rel=1e-12)
    assert stats["count"] == int(grid[..., 0].sum())


@pytest.mark.parametrize("sqrt", [0, 1])
def test_detection_decoding_matches_darknet(sqrt):
    rng = np.random.default_rng(sqrt)
    layer = detection_net(3, 2, 4, f"sqrt={sqrt}").layers[-1]
    out = rng.uniform(0, 1, layer.inputs).astype(f32)
    dets = decode_layer(layer, out, (8, 8), thresh=0.2)
    boxes, scales, probs = darknet_detections(layer, out, 0.2)
    np.testing.assert_array_equal(dets.boxes, boxes)
    np.testing.assert_array_equal(dets.objectness, scales)
    np.testing.assert_array_equal(dets.probs, probs)


def test_random_box_choice_early_in_training():
    """random=1: while fewer than 64000 images are seen the trained box is drawn at random."""
    layer = detection_net(2, 3, 1, "random=1").layers[-1]
    out = np.full((1, layer.inputs), 0.5, f32)
    truths = np.zeros((1, 1, 6), f32)
    truths[0, 0, :5] = [0.3, 0.3, 0.2, 0.2, 0]
    chosen = set()
    for seed in range(20):
        d, _, _ = detection_loss(layer, out, truths, 100, np.random.default_rng(seed))
        obj = d.reshape(-1)[4:4 + 12].reshape(4, 3)[0]    # the cell's 3 objectness deltas
        chosen.add(int(np.argmax(obj)))
    assert chosen == {0, 1, 2}
    d1, _, _ = detection_loss(layer, out, truths, 64000, np.random.default_rng(0))
    d2, _, _ = detection_loss(layer, out, truths, 64000, np.random.default_rng(1))
    np.testing.assert_array_equal(d1, d2)


# ---- the layer in a network ---------------------------------------------------------------





def test_yolov1_network_learns_and_its_delta_reaches_the_connected_layer():
    from pydarknet.passes import check_truths
    from pydarknet.train.iteration import train_pass
    net = load_cfg_text(YOLOV1.format(outputs=9 * 12, extra=""))
    x, t = two_box_batch(np.random.default_rng(0))
    net.ensure_training()
    truths = check_truths(net, t[:2], 2)
    train_pass(net, x[:2], truths, keep_deltas=True, seen=2)
    head = net.layers[-1]
    expected, cost, _ = detection_loss(head, net.outputs[head.index], truths, 2)
    np.testing.assert_array_equal(net.deltas[head.index], expected)
    np.testing.assert_array_equal(net.deltas[head.index - 1].reshape(expected.shape), expected)
    assert head.cost == cost
    losses = [net.train_iteration(x, t) for _ in range(60)]
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.3 * np.mean(losses[:5])


def test_detection_training_refuses_other_coords():
    net = load_cfg_text(YOLOV1.format(outputs=9 * 14, extra="").replace("coords=4", "coords=5"))
    with pytest.raises(CfgError, match="coords"):
        net.check_trainable()
