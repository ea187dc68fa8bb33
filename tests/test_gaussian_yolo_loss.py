"""The [Gaussian_yolo] training loss equals AlexeyAB Darknet's forward_gaussian_yolo_layer.

No Darknet run of a [Gaussian_yolo] layer is in the reference data, so the oracle is
``darknet_gaussian_loss``: AB's forward_gaussian_yolo_layer (59596d7,
src/gaussian_yolo_layer.c, train path) transcribed loop by loop, float by float (the box
functions are pydarknet.boxes', which test_yolo_loss checks against Darknet's). The
vectorised loss must give its deltas bit for bit on random heads with the options it reads.
"""

import math

import numpy as np
import pytest

from pydarknet import boxes
from pydarknet.host_math import logistic
from pydarknet.layers.gaussian_yolo_loss import gaussian_yolo_loss
from pydarknet.layers.yolo_loss import class_multipliers
from pydarknet.network import load_cfg_text

from head_nets import GAUSSIAN

f32 = np.float32
FLT_MAX = float(np.finfo(np.float32).max)


def _exp(v):
    return float(np.exp(np.array([float(v)]))[0])


def darknet_gaussian_loss(layer, out, truths, net_w, net_h):
    """forward_gaussian_yolo_layer's train path; returns (delta, sum of squares)."""
    lw, lh, n, classes = layer.w, layer.h, layer.n, layer.classes
    stride = lw * lh
    size = classes + 9
    outputs = n * size * stride
    x = out.reshape(-1).astype(f32)
    N = x.size // outputs
    biases = np.asarray(layer.anchors, f32)
    mask = list(layer.mask)
    delta = np.zeros(x.size, f32)
    mult = class_multipliers(layer)
    eps = f32(layer.label_smooth_eps)
    obj_norm, iou_norm = f32(layer.obj_normalizer), f32(layer.iou_normalizer)
    uc_norm, cls_norm = f32(layer.uc_normalizer), f32(layer.cls_normalizer)
    max_delta = f32(layer.max_delta)
    point = layer.yolo_point
    T = min(truths.shape[1], layer.max_boxes)

    def entry(b, loc, e):
        return b * outputs + (loc // stride) * stride * size + e * stride + loc % stride

    def get_box(bias_n, index, i, j):
        bw = f32(_exp(x[index + 4 * stride]) * float(biases[2 * bias_n]) / net_w)
        bh = f32(_exp(x[index + 6 * stride]) * float(biases[2 * bias_n + 1]) / net_h)
        bx = (f32(i) + x[index]) / f32(lw)
        by = (f32(j) + x[index + 2 * stride]) / f32(lh)
        if point == "left_top":
            bx, by = bx + bw / f32(2), by + bh / f32(2)
        elif point == "right_bottom":
            bx, by = bx - bw / f32(2), by - bh / f32(2)
        return np.array([bx, by, bw, bh], f32)

    def y_true(hot):
        y = f32(hot)
        if eps:
            y = f32(float(y * (f32(1) - eps)) + 0.5 * float(eps))
        return y

    def delta_class(index, class_id):
        if delta[index]:
            delta[index + stride * class_id] = y_true(1) - x[index + stride * class_id]
            if mult is not None:
                delta[index + stride * class_id] *= mult[class_id]
            return
        for c in range(classes):
            delta[index + stride * c] = y_true(c == class_id) - x[index + stride * c]
            if mult is not None and c == class_id:
                delta[index + stride * c] *= mult[class_id] * cls_norm

    def delta_box(truth, bias_n, index, i, j, scale, normalizer):
        pred = get_box(bias_n, index, i, j)
        iou = f32(boxes.box_iou(pred, truth))
        giou = f32(boxes.box_giou(pred, truth))
        if pred[2] == 0:
            pred[2] = 1
        if pred[3] == 0:
            pred[3] = 1
        sc, epsi = f32(0.3), f32(1e-9)
        tx, ty = truth[0] * f32(lw) - f32(i), truth[1] * f32(lh) - f32(j)
        with np.errstate(divide="ignore"):
            tw = f32(np.log(np.float64(truth[2] * f32(net_w) / biases[2 * bias_n])))
            th = f32(np.log(np.float64(truth[3] * f32(net_h) / biases[2 * bias_n + 1])))
        if point == "left_top":
            tx = (truth[0] - truth[2] / f32(2)) * f32(lw) - f32(i)
            ty = (truth[1] - truth[3] / f32(2)) * f32(lh) - f32(j)
        elif point == "right_bottom":
            tx = (truth[0] + truth[2] / f32(2)) * f32(lw) - f32(i)
            ty = (truth[1] + truth[3] / f32(2)) * f32(lh) - f32(j)
        d = [tx - x[index], ty - x[index + 2 * stride], tw - x[index + 4 * stride],
             th - x[index + 6 * stride]]
        means, sigmas = [], []
        for k in range(4):
            s = x[index + (2 * k + 1) * stride]
            ie = d[k] / s
            ie2 = f32(float(ie) ** 2)
            nd = f32(_exp(float(ie2) * -0.5) / (math.sqrt(math.pi * 2.0) * float(s + sc)))
            temp = f32(0.5 * 1. / float(nd + epsi) * float(nd) * float(scale))
            means.append(f32(float(temp * ie) * (1. / float(s))))
            sigmas.append(f32(float(temp) * (float(ie2 / s) - 1. / float(s + sc))))
        if layer.iou_loss != "mse":
            iou = giou
            g = boxes.dx_box_iou(pred, truth, layer.iou_loss).astype(f32)
            gx, gy, gw, gh = g
            if point == "left_top":
                gx, gy = gx - gw / f32(2), gy - gh / f32(2)
            elif point == "right_bottom":
                gx, gy = gx + gw / f32(2), gy + gh / f32(2)
            gw = f32(float(gw) * _exp(x[index + 4 * stride]))
            gh = f32(float(gh) * _exp(x[index + 6 * stride]))
            means = [gx, gy, gw, gh]
        for k in range(4):
            m = means[k] * normalizer
            u = sigmas[k] * uc_norm
            m = f32(0) if not np.isfinite(m) else m
            u = f32(0) if not np.isfinite(u) else u
            if float(max_delta) != FLT_MAX:
                m = min(max(m, -max_delta), max_delta)
                u = min(max(u, -max_delta), max_delta)
            delta[index + 2 * k * stride] += m
            delta[index + (2 * k + 1) * stride] += u
        return iou

    for b in range(N):
        rows = [(truths[b, t, :4].astype(f32), int(truths[b, t, 4])) for t in range(T)]
        for j in range(lh):
            for i in range(lw):
                for a in range(n):
                    loc = a * stride + j * lw + i
                    ci, oi, bi = entry(b, loc, 9), entry(b, loc, 8), entry(b, loc, 0)
                    pred = get_box(mask[a], bi, i, j)
                    best_match, best_iou, best_t = f32(0), f32(0), 0
                    for t, (truth, cid) in enumerate(rows):
                        if cid >= classes:
                            continue
                        if not truth[0]:
                            break
                        match = any(x[ci + stride * c] > f32(0.25) for c in range(classes))
                        iou = f32(boxes.box_iou(pred, truth))
                        if iou > best_match and match:
                            best_match = iou
                        if iou > best_iou:
                            best_iou, best_t = iou, t
                    delta[oi] = obj_norm * (f32(0) - x[oi])
                    if best_match > f32(layer.ignore_thresh):
                        if layer.objectness_smooth:
                            delta[oi] = obj_norm * (best_match * best_match - x[oi])
                            delta_class(ci, rows[best_t][1])
                        else:
                            delta[oi] = 0
                    if best_iou > f32(layer.truth_thresh):
                        m2 = best_iou * best_iou
                        delta[oi] = obj_norm * ((m2 if layer.objectness_smooth else f32(1))
                                                - x[oi])
                        cid = rows[best_t][1]
                        delta_class(ci, cid)
                        cm = f32(1) if mult is None else mult[cid]
                        if layer.objectness_smooth:
                            delta[ci + stride * cid] = cm * (m2 - x[ci + stride * cid])
                        truth = rows[best_t][0]
                        delta_box(truth, mask[a], bi, i, j, f32(2) - truth[2] * truth[3],
                                  iou_norm * cm)
        for truth, cid in rows:
            if not truth[0]:
                break
            if point == "center":
                i, j = int(truth[0] * f32(lw)), int(truth[1] * f32(lh))
            else:
                sign = f32(-1) if point == "left_top" else f32(1)
                i = int(min(f32(lw - 1), max(f32(0), (truth[0] + sign * truth[2] / f32(2))
                                             * f32(lw))))
                j = int(min(f32(lh - 1), max(f32(0), (truth[1] + sign * truth[3] / f32(2))
                                             * f32(lh))))
            shift = np.array([0, 0, truth[2], truth[3]], f32)
            best_iou, best_n = f32(0), 0
            for a in range(layer.total):
                anchor = np.array([0, 0, biases[2 * a] / f32(net_w),
                                   biases[2 * a + 1] / f32(net_h)], f32)
                iou = f32(boxes.box_iou(anchor, shift))
                if iou > best_iou:
                    best_iou, best_n = iou, a
            picks = [best_n] if best_n in mask else []
            if layer.iou_thresh < 1:
                for a in range(layer.total):
                    anchor = np.array([0, 0, biases[2 * a] / f32(net_w),
                                       biases[2 * a + 1] / f32(net_h)], f32)
                    if a in mask and a != best_n and f32(boxes.box_iou_kind(
                            anchor, shift, layer.iou_thresh_kind)) > f32(layer.iou_thresh):
                        picks.append(a)
            for a in picks:
                loc = mask.index(a) * stride + j * lw + i
                cm = f32(1) if mult is None else mult[cid]
                delta_box(truth, a, entry(b, loc, 0), i, j, f32(2) - truth[2] * truth[3],
                          iou_norm * cm)
                oi = entry(b, loc, 8)
                delta[oi] = cm * obj_norm * (f32(1) - x[oi])
                delta_class(entry(b, loc, 9), cid)
        for loc in range(n * stride):
            ci, bi = entry(b, loc, 9), entry(b, loc, 0)
            k = sum(1 for c in range(classes) if delta[ci + stride * c] > 0)
            if k:
                for e in range(8):
                    delta[bi + e * stride] /= f32(k)
    return delta.reshape(out.shape), float(np.square(delta, dtype=np.float64).sum())


def gaussian_net(w, h, classes, mask, total, options=""):
    filters = len(mask) * (classes + 9)
    anchors = ",".join(f"{v:.1f}" for v in np.linspace(4, 60, 2 * total))
    return load_cfg_text(f"[net]\nwidth={w * 8}\nheight={h * 8}\nchannels=3\n"
                         f"[convolutional]\nfilters={filters}\nsize=1\nstride=8\n"
                         f"activation=linear\n"
                         f"[Gaussian_yolo]\nmask={','.join(map(str, mask))}\nanchors={anchors}\n"
                         f"classes={classes}\nnum={total}\n{options}")


def head_output(rng, layer, N):
    raw = rng.standard_normal((N, layer.n, layer.classes + 9, layer.h * layer.w)).astype(f32)
    out = raw.copy()
    for k in (0, 1, 2, 3, 5, 7):
        out[:, :, k] = logistic(raw[:, :, k])
    out[:, :, 8:] = logistic(raw[:, :, 8:])
    a, b = f32(layer.scale_x_y), f32(-0.5 * (layer.scale_x_y - 1))
    out[:, :, 0] = out[:, :, 0] * a + b
    out[:, :, 2] = out[:, :, 2] * a + b
    return out.reshape(N, -1, layer.h, layer.w)


def random_truths(rng, N, T, classes, crowded):
    t = np.zeros((N, T, 6), f32)
    for b in range(N):
        k = int(rng.integers(0, T + 1))
        xy = rng.uniform(0.02, 0.98, (k, 2))
        if crowded and k > 1:
            xy[1:] = xy[0] + rng.uniform(-0.04, 0.04, (k - 1, 2))
        t[b, :k, :2] = np.clip(xy, 0.01, 0.99)
        t[b, :k, 2:4] = rng.uniform(0.05, 0.9, (k, 2))
        t[b, :k, 4] = rng.integers(0, classes, k)
    return t


OPTIONS = ["", "iou_loss=giou\niou_normalizer=0.5", "iou_thresh=0.213",
           "iou_loss=ciou\niou_thresh=0.3\niou_thresh_kind=giou",
           "ignore_thresh=0.2\nobjectness_smooth=1", "truth_thresh=0.3\nignore_thresh=0.1",
           "truth_thresh=0.3\nobjectness_smooth=1\nignore_thresh=0.1\nlabel_smooth_eps=0.1",
           "yolo_point=left_top\niou_thresh=0.2", "yolo_point=right_bottom\niou_loss=diou",
           "counters_per_class={counters}\ncls_normalizer=2\nmax_delta=0.5",
           "uc_normalizer=0.3\nobj_normalizer=2\nscale_x_y=1.1\ndelta_normalizer=0.5"]


@pytest.mark.parametrize("case", range(44))
def test_gaussian_loss_matches_darknet_transcription(case):
    rng = np.random.default_rng(case)
    w, h = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    classes, total = int(rng.integers(1, 4)), int(rng.integers(2, 6))
    mask = sorted(rng.choice(total, int(rng.integers(1, total + 1)), replace=False).tolist())
    counters = ",".join(str(int(v)) for v in rng.integers(1, 50, classes))
    options = OPTIONS[case % len(OPTIONS)].format(counters=counters)
    layer = gaussian_net(w, h, classes, mask, total, options).layers[-1]
    N = int(rng.integers(1, 3))
    out = head_output(rng, layer, N)
    truths = random_truths(rng, N, int(rng.integers(1, 7)), classes, crowded=case % 3 == 0)
    net_w, net_h = w * 8, h * 8
    ref, ref_cost = darknet_gaussian_loss(layer, out, truths, net_w, net_h)
    delta, cost, stats = gaussian_yolo_loss(layer, out, truths, net_w, net_h)
    np.testing.assert_array_equal(delta, ref)
    assert cost == pytest.approx(ref_cost, rel=1e-12)


# ---- the layer in a network ---------------------------------------------------------------



def test_gaussian_delta_reaches_the_input_scaled_by_delta_normalizer():
    from pydarknet.passes import check_truths
    from pydarknet.train.iteration import train_pass
    net = load_cfg_text(GAUSSIAN.format(extra=""))
    net.ensure_training()
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 32, 32), dtype=np.float32)
    t = np.zeros((2, 3, 5), f32)
    t[:, :2] = [[0.3, 0.4, 0.3, 0.2, 0], [0.7, 0.6, 0.5, 0.5, 1]]
    truths = check_truths(net, t, 2)
    train_pass(net, x, truths, keep_deltas=True)
    head = net.layers[-1]
    expected, cost, _ = gaussian_yolo_loss(head, net.outputs[head.index], truths, 32, 32)
    np.testing.assert_array_equal(net.deltas[head.index], expected)
    np.testing.assert_array_equal(net.deltas[head.index - 1], expected * f32(0.5))
    assert head.cost == cost
