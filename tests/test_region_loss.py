"""The [region] (YOLOv2) training loss equals AlexeyAB Darknet's forward_region_layer.

No Darknet training run of a [region] layer is in the reference data, so the oracle here is
``darknet_region_loss``: AB's forward_region_layer (59596d7, src/region_layer.c, train path)
transcribed loop by loop, float by float. The vectorised loss must give its deltas bit for bit
on random heads with every option the loss reads. The layer tests check what surrounds it:
the layout of the delta, the backward, ``seen`` and the refusals.
"""

import math

import numpy as np
import pytest

from pydarknet.errors import CfgError
from pydarknet.host_math import logistic, softmax_rows
from pydarknet.layers.region_loss import region_loss
from pydarknet.network import load_cfg_text

from head_nets import REGION, darknet_box_iou, two_box_batch

f32 = np.float32


# ---- the transcription: scalar float32 arithmetic in Darknet's order ----------------------

def _logistic(x):
    return logistic(np.array([x], f32))[0]


def _exp(x):  # C's exp() of a float: double
    return float(np.exp(np.array([float(x)]))[0])




def _region_box(x, biases, n, index, i, j, w, h):
    return [(f32(i) + _logistic(x[index])) / f32(w),
            (f32(j) + _logistic(x[index + 1])) / f32(h),
            f32(_exp(x[index + 2]) * float(biases[2 * n]) / w),
            f32(_exp(x[index + 3]) * float(biases[2 * n + 1]) / h)]


def _delta_box(truth, x, biases, n, index, i, j, w, h, delta, scale):
    pred = _region_box(x, biases, n, index, i, j, w, h)
    iou = darknet_box_iou(pred, truth)
    tx = truth[0] * f32(w) - f32(i)
    ty = truth[1] * f32(h) - f32(j)
    tw = f32(math.log(float(truth[2] * f32(w) / biases[2 * n])))
    th = f32(math.log(float(truth[3] * f32(h) / biases[2 * n + 1])))
    lx, ly = _logistic(x[index]), _logistic(x[index + 1])
    delta[index] = scale * (tx - lx) * ((f32(1) - lx) * lx)
    delta[index + 1] = scale * (ty - ly) * ((f32(1) - ly) * ly)
    delta[index + 2] = scale * (tw - x[index + 2])
    delta[index + 3] = scale * (th - x[index + 3])
    return iou


def _delta_class(output, delta, index, class_id, classes, scale, focal_loss):
    cat = 0.0
    if focal_loss:
        pt = output[index + class_id] + f32(1e-15)
        with np.errstate(invalid="ignore"):
            grad = -(f32(1) - pt) * (f32(2) * pt * np.log(np.array([pt], f32))[0] + pt - f32(1))
    for n in range(classes):
        delta[index + n] = scale * (f32(n == class_id) - output[index + n])
        if focal_loss:
            delta[index + n] *= f32(0.5) * grad
        if n == class_id:
            cat += float(output[index + n])
    return cat


def darknet_region_loss(layer, out, truths, seen):
    """forward_region_layer's train path on the flattened output; returns (delta in the input
    layout, sum of squared deltas, count, avg_iou sum)."""
    w, h, num, classes = layer.w, layer.h, layer.num, layer.classes
    size = 4 + classes + 1
    outputs = w * h * num * size
    x = out.reshape(-1).astype(f32)
    N = x.size // outputs
    biases = np.asarray(layer.anchors, f32)
    delta = np.zeros(x.size, f32)
    thresh = f32(layer.thresh)
    T = min(truths.shape[1], layer.max_boxes)
    count, iou_sum = 0, 0.0

    def grad(o):
        return (f32(1) - o) * o

    def truth_rows(b):
        for t in range(T):
            yield t, truths[b, t, :4].astype(f32), int(truths[b, t, 4])

    for b in range(N):
        for j in range(h):
            for i in range(w):
                for n in range(num):
                    index = size * (j * w * num + i * num + n) + b * outputs
                    pred = _region_box(x, biases, n, index, i, j, w, h)
                    best_iou, best_class = f32(0), -1
                    for t, truth, cid in truth_rows(b):
                        if cid >= classes:
                            continue
                        if not truth[0]:
                            break
                        iou = darknet_box_iou(pred, truth)
                        if iou > best_iou:
                            best_class, best_iou = cid, iou
                    o = x[index + 4]
                    delta[index + 4] = f32(layer.noobject_scale) * ((f32(0) - o) * grad(o))
                    if layer.classfix == -1:
                        delta[index + 4] = f32(layer.noobject_scale) * ((best_iou - o) * grad(o))
                    elif best_iou > thresh:
                        delta[index + 4] = 0
                        if layer.classfix > 0:
                            scale = f32(layer.class_scale) * (o if layer.classfix == 2 else f32(1))
                            _delta_class(x, delta, index + 5, best_class, classes, scale,
                                         layer.focal_loss)
                    if seen < 12800:
                        truth = [f32((i + .5) / w), f32((j + .5) / h),
                                 biases[2 * n] / f32(w), biases[2 * n + 1] / f32(h)]
                        _delta_box(truth, x, biases, n, index, i, j, w, h, delta, f32(.01))
        for t, truth, cid in truth_rows(b):
            if cid >= classes:
                continue
            if not truth[0]:
                break
            best_iou, best_index, best_n = f32(0), 0, 0
            i, j = int(truth[0] * f32(w)), int(truth[1] * f32(h))
            shift = [f32(0), f32(0), truth[2], truth[3]]
            for n in range(num):
                index = size * (j * w * num + i * num + n) + b * outputs
                pred = _region_box(x, biases, n, index, i, j, w, h)
                if layer.bias_match:
                    pred[2], pred[3] = biases[2 * n] / f32(w), biases[2 * n + 1] / f32(h)
                pred[0] = pred[1] = f32(0)
                iou = darknet_box_iou(pred, shift)
                if iou > best_iou:
                    best_index, best_iou, best_n = index, iou, n
            iou = _delta_box(truth, x, biases, best_n, best_index, i, j, w, h, delta,
                             f32(layer.coord_scale))
            iou_sum += float(iou)
            o = x[best_index + 4]
            delta[best_index + 4] = f32(layer.object_scale) * (f32(1) - o) * grad(o)
            if layer.rescore:
                delta[best_index + 4] = f32(layer.object_scale) * (iou - o) * grad(o)
            _delta_class(x, delta, best_index + 5, cid, classes, f32(layer.class_scale),
                         layer.focal_loss)
            count += 1
    flat = delta.reshape(N, w * h, num * size).transpose(0, 2, 1)
    return flat.reshape(N, num * size, h, w), float(np.square(delta, dtype=np.float64).sum()), \
        count, iou_sum


# ---- random heads -------------------------------------------------------------------------

def region_net(w, h, num, classes, options="", batch=1):
    c = num * (classes + 5)
    anchors = ",".join(f"{a:.3f}" for a in np.linspace(0.6, 3.5, 2 * num))
    return load_cfg_text(f"[net]\nbatch={batch}\nwidth={w}\nheight={h}\nchannels={c}\n"
                         f"[region]\nanchors={anchors}\nclasses={classes}\ncoords=4\nnum={num}\n"
                         f"{options}")


def head_output(rng, N, layer, spread, softmax):
    size = layer.classes + 5
    out = (rng.standard_normal((N, layer.w * layer.h * layer.num, size)) * spread).astype(f32)
    out[..., 4] = logistic(out[..., 4])
    if softmax:
        out[..., 5:] = softmax_rows(out[..., 5:])
    return out


def random_truths(rng, N, T, classes, crowded):
    t = np.zeros((N, T, 6), f32)
    for b in range(N):
        k = rng.integers(0, T + 1)
        xy = rng.uniform(0.02, 0.98, (k, 2))
        if crowded and k > 1:        # several truths in one cell
            xy[1:] = xy[0] + rng.uniform(-0.03, 0.03, (k - 1, 2))
        t[b, :k, 0:2] = np.clip(xy, 0.01, 0.99)
        t[b, :k, 2:4] = rng.uniform(0.03, 0.9, (k, 2))
        t[b, :k, 4] = rng.integers(0, classes, k)
        if k and rng.random() < 0.2:       # an out-of-range class is skipped
            t[b, rng.integers(0, k), 4] = classes + 1
    return t


OPTIONS = ["", "rescore=1", "bias_match=1", "classfix=-1", "classfix=1\nthresh=0.2",
           "classfix=2\nthresh=0.1", "focal_loss=1", "thresh=0.05\nrescore=1\nbias_match=1",
           "object_scale=5\nnoobject_scale=0.5\nclass_scale=2\ncoord_scale=1.5", "max=3"]


@pytest.mark.parametrize("case", range(40))
def test_region_loss_matches_darknet_transcription(case):
    rng = np.random.default_rng(case)
    w, h = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    num, classes = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    softmax = int(rng.random() < 0.7)
    options = OPTIONS[case % len(OPTIONS)] + f"\nsoftmax={softmax}\n"
    layer = region_net(w, h, num, classes, options).layers[0]
    N = int(rng.integers(1, 4))
    out = head_output(rng, N, layer, float(rng.choice([0.5, 1.0, 3.0])), softmax)
    truths = random_truths(rng, N, int(rng.integers(1, 7)), classes, crowded=case % 3 == 0)
    seen = int(rng.choice([0, 12799, 12800, 50000]))
    ref_delta, ref_cost, count, iou_sum = darknet_region_loss(layer, out, truths, seen)
    delta, cost, stats = region_loss(layer, out, truths, seen)
    assert delta.shape == ref_delta.shape
    np.testing.assert_array_equal(delta, ref_delta)
    assert cost == pytest.approx(ref_cost, rel=1e-12, nan_ok=True)  # focal, no softmax: NaN
    assert stats["count"] == count
    if count:
        assert stats["avg_iou"] == pytest.approx(iou_sum / count, rel=1e-9)


def test_truth_no_anchor_overlaps_trains_its_own_cell():
    """Outputs whose exp overflows: every anchor's box is infinite, its IoU with the truth 0.
    Darknet then writes the truth's deltas at best_index 0, the batch's first anchor, with the
    truth's cell offsets; pydarknet writes them at the first anchor of the truth's cell.
    Everything else is Darknet's."""
    rng = np.random.default_rng(7)
    layer = region_net(3, 3, 2, 2, "softmax=1").layers[0]
    size = layer.classes + 5
    out = head_output(rng, 2, layer, 1.0, True)
    out[0, :, 2] = 200.0
    truths = np.zeros((2, 2, 6), f32)
    truths[0, 0, :5] = [0.5, 0.5, 0.3, 0.3, 1]               # cell (1, 1) = 4 of image 0
    truths[1, 0, :5] = [0.2, 0.7, 0.3, 0.4, 0]
    with np.errstate(over="ignore"):
        ref, _, _, _ = darknet_region_loss(layer, out, truths, 50000)
    delta, _, stats = region_loss(layer, out, truths, 50000)
    assert stats["count"] == 2
    d = delta.reshape(2, 2, size, 9)        # [N, anchor, entries, cell]
    r = ref.reshape(2, 2, size, 9)
    mine = np.ones(d.shape, bool)
    mine[0, 0, :, 0] = mine[0, 0, :, 4] = False
    np.testing.assert_array_equal(d[mine], r[mine])
    o = out[0, 4 * 2 + 0, 4]
    assert d[0, 0, 4, 4] == (f32(1) - o) * ((f32(1) - o) * o)        # objectness 1
    assert d[0, 0, 5 + 1, 4] == f32(1) - out[0, 8, 5 + 1]             # class 1


def test_truth_on_the_far_edge_trains_the_last_cell():
    layer = region_net(4, 4, 1, 1, "softmax=1").layers[0]
    out = head_output(np.random.default_rng(1), 1, layer, 1.0, True)
    truths = np.zeros((1, 2, 6), f32)
    truths[0, 0, :5] = [1.0, 1.0, 0.2, 0.2, 0]      # Darknet would index past the grid
    delta, _, stats = region_loss(layer, out, truths, 50000)
    assert stats["count"] == 1
    d = delta.reshape(6, 4, 4)
    assert d[0, 3, 3] != 0 and d[5, 3, 3] == 0      # a single class: softmax is 1 already
    assert np.count_nonzero(d[:4]) == 4             # one box delta, no prior (seen >= 12800)


# ---- the layer in a network ---------------------------------------------------------------





def test_region_delta_is_the_loss_in_the_input_layout_and_backward_adds_it():
    from pydarknet.train.iteration import train_pass
    net = load_cfg_text(REGION.format(extra=""))
    net.ensure_training()
    x, t = two_box_batch(np.random.default_rng(0))
    from pydarknet.passes import check_truths
    truths = check_truths(net, t[:2], 2)
    train_pass(net, x[:2], truths, keep_deltas=True, seen=2)
    region = net.layers[-1]
    out = net.outputs[region.index]
    expected, cost, _ = region_loss(region, out, truths, 2)
    np.testing.assert_array_equal(net.deltas[region.index], expected)
    assert region.cost == cost
    # the conv before it received exactly the region's delta (times its linear gradient)
    np.testing.assert_array_equal(net.deltas[region.index - 1], expected)


def test_prior_follows_the_images_seen():
    """Darknet pulls every box to its anchor while *net.seen < 12800, seen counting the
    current mini-batch: the same weights and images give other deltas on either side."""
    from pydarknet.passes import check_truths
    from pydarknet.train.iteration import train_pass
    net = load_cfg_text(REGION.format(extra=""))
    net.ensure_training()
    x, t = two_box_batch(np.random.default_rng(1))
    truths = check_truths(net, t[:2], 2)
    region = net.layers[-1]
    costs = {}
    for seen in (12798, 12800):
        train_pass(net, x[:2], truths, keep_deltas=True, seen=seen)
        costs[seen] = region.cost
        out = net.outputs[region.index]
        np.testing.assert_array_equal(net.deltas[region.index],
                                      region_loss(region, out, truths, seen)[0])
    assert costs[12798] != costs[12800]


def test_train_iteration_passes_the_running_seen(monkeypatch):
    import pydarknet.layers.region_loss as rl
    net = load_cfg_text(REGION.format(extra=""))
    net.seen = 100
    got = []
    real = rl.region_loss
    monkeypatch.setattr(rl, "region_loss", lambda *a, **k: (got.append(a[3]), real(*a, **k))[1])
    x, t = two_box_batch(np.random.default_rng(2))
    net.train_iteration(x, t)
    assert got == [102, 104] and net.seen == 104


def test_region_network_learns():
    """A tiny YOLOv2 net overfits one batch: the loss falls and the boxes move to the truths."""
    net = load_cfg_text(REGION.format(extra="object_scale=5\nrescore=1").replace(
        "learning_rate=0.001", "learning_rate=0.01"))
    x, t = two_box_batch(np.random.default_rng(3))
    losses = [net.train_iteration(x, t) for _ in range(60)]
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.3 * np.mean(losses[:5])
    assert net.layers[-1].stats["avg_iou"] > net.layers[-1].stats["avg_anyobj"]


def test_region_training_refuses_what_it_does_not_implement():
    text = REGION.format(extra="coords=5").replace("coords=4\n", "").replace("filters=14",
                                                                            "filters=16")
    with pytest.raises(CfgError, match="coords"):
        load_cfg_text(text).check_trainable()


def test_a_missing_class_map_stops_training_at_once():
    net = load_cfg_text(REGION.format(extra="map=some.map"))
    with pytest.raises(CfgError, match=r"map: cannot find the class map file some.map"):
        net.check_trainable()


def test_region_network_trains_after_a_resize():
    """random=1 resizes YOLOv2 networks between iterations: the head takes the new grid."""
    net = load_cfg_text(REGION.format(extra="random=1"))
    x, t = two_box_batch(np.random.default_rng(4))
    net.train_iteration(x, t)
    net.resize(64, 48)
    head = net.layers[-1]
    assert (head.w, head.h) == (16, 12)
    big = np.random.default_rng(5).random((4, 3, 48, 64), dtype=np.float32)
    assert np.isfinite(net.train_iteration(big, t))
    assert head.stats["count"] == 4          # the last mini-batch: 2 images, 2 boxes each
    assert net.outputs[head.index].shape == (2, 14, 12, 16)
