"""The [yolo] training loss equals AlexeyAB Darknet's forward_yolo_layer; box helpers.

Oracles:
- ``mini/train/mini-yolo-a-gpusem`` and ``mini-yolo-a`` (Darknet's iteration-1 dumps): the yolo
  deltas and ``l.cost`` of layers 20 and 27 (ciou, scale_x_y, ignore_thresh), both
  subdivisions.
- an embedded Darknet result for the two [yolo] heads of ``mini-yolo-b`` (giou, iou_thresh,
  obj/cls normalizers) on deterministic inputs: every delta entry that is not plain background
  objectness, and ``l.cost``. It was produced by AB Darknet 59596d7's own ``forward_yolo_layer``
  (CPU build, one-[yolo] cfg, the inputs and truths below), so it needs no data files.
"""

import json
import math

import numpy as np
import pytest

import pydarknet
import reference_backend
from pydarknet import boxes
from pydarknet.errors import NotSupportedError
from pydarknet.layers.yolo_loss import class_multipliers, yolo_loss
from pydarknet.network import load_cfg_text

f32 = np.float32


def forward(layer, x):
    from pydarknet.passes import PassState
    return layer.forward(np.ascontiguousarray(x, f32), PassState(reference_backend, None))


def rel(a, b):
    return float(np.abs(np.asarray(a, np.float64) - b).max() / max(np.abs(b).max(), 1e-30))


# ======================================================================================
# boxes.py
# ======================================================================================

def test_box_iou_simple_values():
    a = np.array([0.0, 0.0, 2.0, 2.0])
    assert boxes.box_iou(a, a) == 1.0
    assert boxes.box_iou(a, [1.0, 0.0, 2.0, 2.0]) == pytest.approx(1 / 3)
    assert boxes.box_iou(a, [0.5, 0.5, 1.0, 1.0]) == pytest.approx(1 / 4)
    assert boxes.box_iou(a, [3.0, 0.0, 2.0, 2.0]) == 0.0          # disjoint
    assert boxes.box_iou(a, [2.0, 0.0, 2.0, 2.0]) == 0.0          # touching: I = 0
    assert boxes.box_iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0       # U = 0


def test_box_giou_diou_ciou_values():
    a, b = np.array([0.0, 0.0, 2.0, 2.0]), np.array([1.0, 0.0, 2.0, 2.0])
    # enclosing box 3 x 2, union 6
    assert boxes.box_giou(a, b) == pytest.approx(1 / 3 - (6 - 6) / 6)
    assert boxes.box_giou([0, 0, 1, 1], [2, 0, 1, 1]) == pytest.approx(0 - (3 - 2) / 3)
    # DIoU: Darknet's version raises d^2/c^2 to the power 0.6
    assert boxes.box_diou(a, b) == pytest.approx(1 / 3 - (1 / 13) ** 0.6)
    assert boxes.box_diounms(a, b, 1.0) == pytest.approx(1 / 3 - 1 / 13)
    # CIoU: same aspect ratio -> v = 0
    assert boxes.box_ciou(a, b) == pytest.approx(1 / 3 - 1 / 13)
    c = np.array([0.5, 0.5, 1.0, 3.0])  # pred a, truth c
    iou = boxes.box_iou(a, c)
    v = 4 / math.pi ** 2 * (math.atan(1 / 3) - math.atan(1.0)) ** 2
    alpha = v / (1 - iou + v + 1e-6)
    cw, ch = 2.0, 3.0  # enclosing box: x -1..1, y -1..2
    want = iou - ((0.5 ** 2 + 0.5 ** 2) / (cw ** 2 + ch ** 2) + alpha * v)
    assert boxes.box_ciou(a, c) == pytest.approx(want, rel=1e-12)
    assert boxes.box_iou_kind(a, c, "ciou") == boxes.box_ciou(a, c)
    assert boxes.box_iou_kind(a, c, "giou") == boxes.box_giou(a, c)
    assert boxes.box_iou_kind(a, c, "diou") == boxes.box_diou(a, c)
    assert boxes.box_iou_kind(a, c, "mse") == boxes.box_iou(a, c)   # Darknet's default


def test_box_functions_broadcast_keep_float32_and_matrix_equals_pairwise():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, (300, 4)).astype(f32)
    b = rng.uniform(0, 1, (25, 4)).astype(f32)
    a[:, 2:] *= 0.4
    b[:, 2:] *= 0.4
    a[3] = np.nan
    a[4, 2] = np.inf
    b[2] = [0.5, 0.5, 0, 0]
    m = boxes.box_iou_matrix(a, b)
    assert m.dtype == f32 and m.shape == (300, 25)
    pair = boxes.box_iou(a[:, None], b[None])
    assert np.array_equal(m, pair, equal_nan=True)
    assert np.array_equal(boxes.box_iou_matrix(b, a), pair.T, equal_nan=True)  # symmetric
    assert boxes.box_iou(a[5], b[5]) == pair[5, 5]
    for fn in (boxes.box_giou, boxes.box_diou, boxes.box_ciou):
        r = fn(a[:, None], b[None])
        assert r.dtype == f32 and r.shape == (300, 25)
        assert fn(a[7], b[9]) == r[7, 9]
    d = boxes.dx_box_iou(a[:, None], b[None], "ciou")
    assert d.shape == (300, 25, 4) and d.dtype == f32
    assert np.array_equal(d[7, 9], boxes.dx_box_iou(a[7], b[9], "ciou"))


@pytest.mark.parametrize("K,M", [(1, 1), (3, 17), (40, 1000), (0, 5), (4, 0)])
def test_best_iou_is_the_matrix_reduction_bit_for_bit(K, M):
    """The C core's best IoU per box equals numpy's IoU matrix reduced with fmax, on boxes
    with NaN, inf, zero and negative sizes and exactly coinciding edges."""
    rng = np.random.default_rng(K * 1000 + M)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -0.1, 0.25, 0.5, 1e-30, 3e38], f32)
    t = rng.uniform(0, 1, (K, 4)).astype(f32)
    p = rng.uniform(0, 1, (M, 4)).astype(f32)
    t[:, 2:] *= 0.6
    p[:, 2:] *= 0.6
    for a in (t, p):
        if a.size:
            hit = rng.random(a.shape) < 0.08
            a[hit] = rng.choice(special, int(hit.sum()))
    if K and M:
        p[0] = t[0]                   # the same box: IoU 1
        p[-1, :2], p[-1, 2:] = t[-1, :2], t[-1, 2:] * f32(2)
    got = boxes.best_iou(t, p)
    assert got.dtype == f32 and got.shape == (M,)
    with np.errstate(all="ignore"):
        want = np.zeros(M, f32) if not K else \
            np.fmax(np.fmax.reduce(boxes.box_iou_matrix(t, p), axis=0), f32(0))
    assert np.array_equal(got, want)


# --- dx_box_iou against finite differences ----------------------------------------------

def fd(f, box, k, h=1e-6):
    p, m = np.array(box, np.float64), np.array(box, np.float64)
    p[k] += h
    m[k] -= h
    return (f(p) - f(m)) / (2 * h)


def _dist(pred, truth):
    """R = d^2 / c^2 (centre distance over the enclosing box's diagonal), S and C."""
    cw = max(pred[0] + pred[2] / 2, truth[0] + truth[2] / 2) - \
        min(pred[0] - pred[2] / 2, truth[0] - truth[2] / 2)
    ch = max(pred[1] + pred[3] / 2, truth[1] + truth[3] / 2) - \
        min(pred[1] - pred[3] / 2, truth[1] - truth[3] / 2)
    s = (pred[0] - truth[0]) ** 2 + (pred[1] - truth[1]) ** 2
    return s / (cw * cw + ch * ch), s, cw * cw + ch * ch


def _v(pred, truth):
    return 4 / math.pi ** 2 * (math.atan(truth[2] / truth[3]) - math.atan(pred[2] / pred[3])) ** 2


TRUTH = [0.52, 0.47, 0.30, 0.26]
OVERLAP = [0.45, 0.50, 0.28, 0.33]   # overlaps TRUTH, sticks out on the left and the bottom
NESTED = [0.55, 0.45, 0.12, 0.10]    # inside TRUTH, off-centre


@pytest.mark.parametrize("kind", ["iou", "giou"])
@pytest.mark.parametrize("pred", [OVERLAP, NESTED])
def test_dx_iou_giou_exact_in_xy_and_twice_the_derivative_in_wh(kind, pred):
    """AB's IoU/GIoU gradient is exact for x, y and 2x the derivative for w, h ("we do not
    divide by 2") when the boxes overlap."""
    f = (lambda q: boxes.box_iou(q, TRUTH)) if kind == "iou" else \
        (lambda q: boxes.box_giou(q, TRUTH))
    d = boxes.dx_box_iou(np.array(pred), np.array(TRUTH), kind)
    assert d[0] == pytest.approx(fd(f, pred, 0), rel=1e-6, abs=1e-8)
    assert d[1] == pytest.approx(fd(f, pred, 1), rel=1e-6, abs=1e-8)
    assert d[2] == pytest.approx(2 * fd(f, pred, 2), rel=1e-6, abs=1e-8)
    assert d[3] == pytest.approx(2 * fd(f, pred, 3), rel=1e-6, abs=1e-8)


def test_dx_diou_relation_to_the_exact_derivative():
    """AB's DIoU gradient is that of IoU - d^2/c^2 (no 0.6 power, unlike box_diou), with the
    IoU part doubled in w, h as above, and the enclosing-box part of d/dx, d/dy of the wrong
    sign: exact only where the enclosing box does not move with x (resp. y)."""
    iou = lambda q: boxes.box_iou(q, TRUTH)                       # noqa: E731
    R = lambda q: _dist(q, TRUTH)[0]                              # noqa: E731
    for pred in (OVERLAP, NESTED):
        d = boxes.dx_box_iou(np.array(pred), np.array(TRUTH), "diou")
        _, S, C = _dist(pred, TRUTH)
        Cx = lambda q: _dist(q, TRUTH)[2]                         # noqa: E731
        for k in (0, 1):
            want = fd(iou, pred, k) - fd(R, pred, k) - 2 * S * fd(Cx, pred, k) / C ** 2
            assert d[k] == pytest.approx(want, rel=1e-6, abs=1e-9)
        for k in (2, 3):
            assert d[k] == pytest.approx(2 * fd(iou, pred, k) - fd(R, pred, k), rel=1e-6, abs=1e-8)
    # nested boxes: the enclosing box is the truth, the x, y gradient is exact
    d = boxes.dx_box_iou(np.array(NESTED), np.array(TRUTH), "diou")
    exact = lambda q: boxes.box_iou(q, TRUTH) - _dist(q, TRUTH)[0]  # noqa: E731
    assert d[0] == pytest.approx(fd(exact, NESTED, 0), rel=1e-6, abs=1e-8)
    assert d[1] == pytest.approx(fd(exact, NESTED, 1), rel=1e-6, abs=1e-8)


def test_dx_ciou_relation_to_the_exact_derivative():
    """CIoU = DIoU's gradient plus alpha * (8/pi^2)(atan(wt/ht) - atan(w/h)) * h for w (and
    the mirror for h): the aspect term's derivative without its 1/(w^2+h^2) factor, alpha
    held constant (as the CIoU paper does)."""
    iou = lambda q: boxes.box_iou(q, TRUTH)                       # noqa: E731
    R = lambda q: _dist(q, TRUTH)[0]                              # noqa: E731
    v = lambda q: _v(q, TRUTH)                                    # noqa: E731
    pred = NESTED
    d = boxes.dx_box_iou(np.array(pred), np.array(TRUTH), "ciou")
    dd = boxes.dx_box_iou(np.array(pred), np.array(TRUTH), "diou")
    assert d[0] == dd[0] and d[1] == dd[1]
    i = iou(pred)
    alpha = v(pred) / (1 - i + v(pred) + 1e-6)
    w2h2 = pred[2] ** 2 + pred[3] ** 2
    for k in (2, 3):
        want = 2 * fd(iou, pred, k) - fd(R, pred, k) - alpha * fd(v, pred, k) * w2h2
        assert d[k] == pytest.approx(want, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("kind", ["diou", "ciou"])
def test_dx_without_overlap_pulls_towards_the_truth(kind):
    """Without overlap AB's DIoU/CIoU gradient is the distance term alone: towards the truth."""
    truth = np.array([0.5, 0.5, 0.1, 0.1])
    for px, py in ((0.2, 0.5), (0.8, 0.5), (0.5, 0.1), (0.5, 0.9), (0.2, 0.85)):
        d = boxes.dx_box_iou(np.array([px, py, 0.1, 0.12]), truth, kind)
        assert np.sign(d[0]) == np.sign(0.5 - px)
        assert np.sign(d[1]) == np.sign(0.5 - py)


def test_dx_giou_without_overlap_is_not_the_giou_derivative():
    """AB's GIoU gradient for disjoint boxes keeps I = Iw*Ih < 0 in U: for a box straight
    above the truth with the same width it has no y component, though GIoU's has."""
    truth = [0.5, 0.5, 0.1, 0.1]
    pred = [0.5, 0.1, 0.1, 0.12]
    d = boxes.dx_box_iou(np.array(pred), np.array(truth), "giou")
    assert d[1] == 0
    assert fd(lambda q: boxes.box_giou(q, truth), pred, 1) > 0.1


# ======================================================================================
# yolo_loss against Darknet: mini-yolo-a training dumps
# ======================================================================================

A_RUNS = ["mini-yolo-a-gpusem", "mini-yolo-a"]


@pytest.fixture(scope="module")
def net_a(ref):
    return pydarknet.Network(ref / "mini" / "mini-yolo-a-train.cfg")


@pytest.mark.parametrize("run", A_RUNS)
@pytest.mark.parametrize("sub", [0, 1])
@pytest.mark.parametrize("index,cost_k", [(20, 0), (27, 1)])
def test_delta_and_cost_equal_darknet(ref, net_a, run, sub, index, cost_k):
    folder = ref / "mini" / "train" / run
    dump = folder / f"iter1_sub{sub}"
    layer = net_a.layers[index]
    assert layer.type == "yolo" and layer.iou_loss == "ciou"
    out = forward(layer, np.load(dump / f"out_{index - 1:03d}.npy"))
    want_out = np.load(dump / f"out_{index:03d}.npy")
    assert rel(out, want_out) <= 1e-5
    truths = np.load(folder / "truth_iter1.npy")[2 * sub:2 * sub + 2]
    delta, cost, stats = yolo_loss(layer, out, truths, net_a.net.width, net_a.net.height)
    want = np.load(dump / f"delta_{index:03d}.npy")
    assert delta.shape == want.shape and delta.dtype == f32
    err = rel(delta, want)
    assert err <= 1e-4, f"delta off by {err:.2e}"
    # the box entries alone (small: iou_normalizer 0.07), too
    n, c5 = layer.n, layer.classes + 5
    db = delta.reshape(2, n, c5, -1)[:, :, :4]
    wb = want.reshape(2, n, c5, -1)[:, :, :4]
    assert np.count_nonzero(wb) > 0 and rel(db, wb) <= 1e-4
    log = json.loads((folder / "train_log.json").read_text())
    want_cost = log["iterations"][0]["cost_layers_per_subdivision"][sub][cost_k]
    assert cost == pytest.approx(want_cost, rel=1e-5)
    assert stats["count"] == stats["total_bbox"] >= 1
    assert 0 <= stats["avg_iou"] <= 1 and 0 < stats["avg_anyobj"] < 1


# ======================================================================================
# yolo_loss against Darknet: mini-yolo-b's heads (embedded oracle)
# ======================================================================================

YOLO_B = """[net]
batch=2
subdivisions=1
width={g}
height={g}
channels=24

[yolo]
mask = {mask}
anchors = 8,10, 14,20, 24,18, 30,40, 48,36, 70,64
classes=3
num=6
max=6
jitter=0
scale_x_y = 1.1
iou_loss=giou
iou_normalizer=0.5
cls_normalizer=0.8
obj_normalizer=0.9
iou_thresh=0.213
ignore_thresh = .5
truth_thresh = 1
random=0
"""

# x, y, w, h, class: two truths in one cell (classes 0 and 2: their box deltas are averaged),
# a class id out of range (skipped), a list ended by x == 0, a truth planted on a predicted
# box of layer 20 (image 1, anchor 2, cell 1,9) so that an objectness delta is ignored.
B_TRUTHS = [
    [[0.3, 0.35, 0.25, 0.3, 0], [0.31, 0.36, 0.22, 0.28, 2], [0.7, 0.6, 0.6, 0.55, 1],
     [0.5, 0.5, 0.1, 0.1, 5], [0.12, 0.85, 0.08, 0.12, 1], [0, 0, 0, 0, 0]],
    [[0.55, 0.45, 0.35, 0.4, 2], [0.2, 0.2, 0.15, 0.1, 0], [0.138, 0.8035, 0.211, 0.1657, 2],
     [0.0, 0.9, 0.1, 0.1, 1], [0.8, 0.8, 0.2, 0.2, 1], [0, 0, 0, 0, 0]],
]

# layer: (grid, mask, input seed, Darknet's l.cost[0], {flat index: l.delta value} for every
# entry that differs from the background objectness 0.9 * (0 - o))
B_ORACLE = {
    14: (3, "3,4,5", 777, 20.8933868, {
        3: 0.38381112, 12: -0.57918459, 14: 0.71976668, 21: 0.36274707, 23: 0.23094396,
        30: 0.26305404, 32: -0.50397813, 39: 0.15373993, 41: 0.40919185, 48: 0.31577212,
        50: -0.7862823, 57: -0.83845508, 59: 0.47962552, 66: 0.82892179, 68: -0.36581257,
        84: -0.78343856, 93: -0.16368257, 95: 0.86011672, 102: 0.7569316, 104: -1.2031752,
        111: 0.11567342, 113: 0.63341725, 120: 0.44535226, 122: -0.54684955,
        129: -0.29194018, 131: 0.69945145, 138: 0.78509545, 140: -0.17112584,
        158: 0.67128986, 167: 0.37031755, 176: -0.014453009, 185: 0.55774832,
        194: -0.4910343, 203: 0.31113821, 212: -0.14609911, 231: -1.4414568,
        238: -0.92178583, 240: -0.76865917, 247: 1.2294613, 249: 0.86972898,
        256: 0.21439706, 258: 0.1569906, 265: -0.18869126, 267: -0.25803721,
        274: -0.35560217, 276: -0.67195004, 283: 0.3314814, 285: 0.34975535,
        292: 1.3623636, 301: 0.98079777, 310: 0.30975026, 319: -0.2608479,
        328: 0.16915727, 337: -0.26892519, 346: -0.63448268, 355: 0.85973418,
        373: -1.1653279, 382: -0.55941957, 391: 0.36092395, 400: 0.68635672,
        409: -0.30235305, 418: -0.4029021, 427: 0.13830459}),
    20: (12, "0,1,2", 778, 203.075729, {
        121: -6.5121503, 409: 2.5216858, 553: -4.1825299, 680: 0, 697: 0.15650421,
        841: -0.87973827, 985: 0.18744785, 1129: -0.53996575, 1273: 8.177393,
        1491: -1.1417921, 1561: 0.75004643, 1635: -0.7992543, 1705: -3.2782006,
        1779: 0.21358311, 1849: 0.75073683, 1923: 0.83624405, 1993: -0.53263921,
        2067: -0.1727545, 2137: 0.34717625, 2211: 0.12682384, 2281: -0.80452871,
        2643: -0.34534597, 2787: -0.46046135, 2931: 0.70260996, 3075: 0.15061164,
        3219: -0.85795939, 3363: 0.1943723, 3709: -2.6295016, 3770: 0.90695995,
        3853: 0.78360683, 3914: 0.72556788, 3997: -3.4403946, 4058: 0.18887477,
        4141: 0.73536581, 4202: 0.50418741, 4285: -0.48448893, 4346: -0.19856912,
        4429: -0.79483765, 4490: -0.15963246, 4573: 0.87393117, 4634: -2.1965382,
        4922: 2.9279554, 4962: 2.9731123, 5005: -1.7557944, 5066: -0.39011332,
        5106: -1.6680268, 5149: 1.4347545, 5210: 0.6546644, 5250: 0.75606847,
        5293: 0.67989397, 5354: 0.53638232, 5394: -0.30127954, 5437: -0.7873199,
        5498: -0.52370924, 5538: -0.65801799, 5581: -0.74912661, 5642: -0.67022043,
        5682: 0.17594373, 5725: 0.27044731, 5869: 3.9955721, 6013: -4.8335552,
        6074: -1.4147863, 6114: -2.194993, 6157: 0.17222233, 6218: -1.8863815,
        6258: 1.5472225, 6301: 0.24345316, 6362: 0.43889764, 6402: 0.42607275,
        6445: 0.44831765, 6506: 0.59551466, 6546: -0.85696435, 6589: -0.22489731,
        6650: -0.17828564, 6690: -0.31871575, 6733: -0.34935978, 6794: -0.84781981,
        6834: 0.13297778, 6877: 0.36178601}),
}


def xorshift_uniform(seed, n):
    """The reference data's generator: xorshift32, value (x >> 8) / 2^24."""
    x, out = seed, []
    for _ in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out.append((x >> 8) / 16777216.0)
    return np.array(out, f32)


def b_truths(cols=6):
    t = np.zeros((2, 6, cols), f32)
    t[:, :, :5] = np.array(B_TRUTHS, f32)
    return t


def b_case(index):
    g, mask, seed, cost, entries = B_ORACLE[index]
    layer = load_cfg_text(YOLO_B.format(g=g, mask=mask)).layers[0]
    pre = (xorshift_uniform(seed, 2 * 24 * g * g) - f32(0.5)) * f32(4)
    return layer, forward(layer, pre.reshape(2, 24, g, g)), cost, entries


@pytest.mark.parametrize("index", [14, 20])
def test_mini_yolo_b_heads_equal_darknet(index):
    layer, out, want_cost, entries = b_case(index)
    delta, cost, stats = yolo_loss(layer, out, b_truths(), 96, 96)
    want = np.zeros((2, 3, 8, out.shape[2] * out.shape[3]), f32)
    want[:, :, 4] = f32(0.9) * (f32(0) - out.reshape(want.shape)[:, :, 4])
    flat = want.reshape(-1)
    for k, v in entries.items():
        flat[k] = v
    assert rel(delta, want.reshape(delta.shape)) <= 1e-4
    d = delta.reshape(-1)
    keys = np.array(sorted(entries))
    vals = np.array([entries[k] for k in keys])
    assert np.abs(d[keys] - vals).max() <= 1e-4 * np.abs(vals).max()
    assert cost == pytest.approx(want_cost, rel=1e-5)
    # 5-column truths (no track id) give the same
    d5, c5, _ = yolo_loss(layer, out, b_truths(5), 96, 96)
    assert np.array_equal(d5, delta) and c5 == cost


@pytest.fixture(scope="module")
def net_b(ref):
    return pydarknet.Network(ref / "mini" / "mini-yolo-b-train.cfg")


def test_embedded_heads_are_mini_yolo_b(net_b):
    for index, (g, mask, *_rest) in B_ORACLE.items():
        mine = load_cfg_text(YOLO_B.format(g=g, mask=mask)).layers[0]
        theirs = net_b.layers[index]
        assert theirs.type == "yolo" and (theirs.w, theirs.h) == (g, g)
        assert mine.fields() == theirs.fields()
    assert (net_b.net.width, net_b.net.height) == (96, 96)


# ======================================================================================
# self-consistency (mini-yolo-b's options: giou, iou_thresh, normalizers)
# ======================================================================================

def _assignments(layer, truths, net_w, net_h):
    """Independently: the (image, mask slot, cell, truth) a [yolo] layer trains for each truth."""
    anchors = layer.anchors.reshape(-1, 2) / np.array([net_w, net_h], np.float64)
    out = []
    for b in range(truths.shape[0]):
        for t in range(truths.shape[1]):
            x, y, w, h, c = truths[b, t, :5]
            if x == 0:
                break
            if not 0 <= int(c) < layer.classes:
                continue
            ious = [boxes.box_iou([0, 0, aw, ah], [0, 0, w, h]) for aw, ah in anchors]
            best = int(np.argmax(ious))
            cell = int(y * layer.h) * layer.w + int(x * layer.w)
            for a in range(layer.total):
                if a in layer.mask and (a == best or (layer.iou_thresh < 1
                                                      and ious[a] > layer.iou_thresh)):
                    out.append((b, layer.mask.index(a), cell, t, int(c)))
    return out


@pytest.mark.parametrize("index", [14, 20])
def test_mini_yolo_b_self_consistency(index):
    layer, out, _, _ = b_case(index)
    truths = b_truths()
    delta, cost, stats = yolo_loss(layer, out, truths, 96, 96)
    n, c5, hw = layer.n, layer.classes + 5, layer.w * layer.h
    d = delta.reshape(2, n, c5, hw)
    o = out.reshape(2, n, c5, hw)
    jobs = _assignments(layer, truths, 96, 96)
    assert stats["count"] == len(jobs) > 0
    assert any(j[:4] != k[:4] and j[:3] == k[:3] for j in jobs for k in jobs)  # shared cells
    cells = {j[:3] for j in jobs}
    # positives: objectness 0.9 * (1 - o); class targets 1/0 (cls_normalizer only acts
    # together with counters_per_class in AB's delta_yolo_class)
    for b, m, loc in cells:
        assert d[b, m, 4, loc] == pytest.approx(0.9 * (1 - o[b, m, 4, loc]), rel=1e-6, abs=1e-8)
        classes = {j[4] for j in jobs if j[:3] == (b, m, loc)}
        for c in range(layer.classes):
            target = 1.0 if c in classes else 0.0
            want = target - o[b, m, 5 + c, loc]
            assert d[b, m, 5 + c, loc] == pytest.approx(want, rel=1e-6, abs=1e-8)
    # everything else: objectness pushed to 0 or ignored, no box or class delta
    bg = np.ones((2, n, hw), bool)
    for b, m, loc in cells:
        bg[b, m, loc] = False
    assert not d[:, :, :4][np.broadcast_to(bg[:, :, None], d[:, :, :4].shape)].any()
    assert not d[:, :, 5:][np.broadcast_to(bg[:, :, None], d[:, :, 5:].shape)].any()
    obj_bg = d[:, :, 4][bg]
    ok = (obj_bg == 0) | np.isclose(obj_bg, -0.9 * o[:, :, 4][bg], rtol=1e-6)
    assert ok.all()
    # the cost: obj_normalizer * ||non-box deltas||^2 + iou_normalizer * sum(1 - GIoU) / count
    anchors = layer.anchors.reshape(-1, 2)
    giou_loss = 0.0
    for b, m, loc, t, _ in jobs:
        i, j = loc % layer.w, loc // layer.w
        aw, ah = anchors[layer.mask[m]]
        pred = [(i + o[b, m, 0, loc]) / layer.w, (j + o[b, m, 1, loc]) / layer.h,
                math.exp(o[b, m, 2, loc]) * aw / 96, math.exp(o[b, m, 3, loc]) * ah / 96]
        giou_loss += 1 - boxes.box_giou(np.array(pred), truths[b, t, :4].astype(np.float64))
    sq = float(np.square(d[:, :, 4:].astype(np.float64)).sum())
    assert cost == pytest.approx(0.9 * sq + 0.5 * giou_loss / len(jobs), rel=1e-5)
    # swapping the images swaps the deltas
    d2, c2, _ = yolo_loss(layer, out[::-1].copy(), truths[::-1].copy(), 96, 96)
    assert np.array_equal(d2, delta[::-1]) and c2 == pytest.approx(cost, rel=1e-6, abs=1e-8)


def test_two_classes_in_one_cell_average_their_box_deltas():
    """iou_thresh < 1: a cell trained for truths of k classes gets its summed box deltas / k."""
    layer, out, _, _ = b_case(14)
    t = b_truths()
    both, _, _ = yolo_loss(layer, out, t, 96, 96)
    only = []
    for keep in (0, 1):   # truths 0 (class 0) and 1 (class 2) share a cell
        t1 = t.copy()
        t1[1] = 0
        t1[0, :, :5] = np.array(B_TRUTHS[0], f32)[[keep, 2, 3, 4, 5, 5]]
        only.append(yolo_loss(layer, out, t1, 96, 96)[0])
    n, c5 = layer.n, layer.classes + 5
    sh = (2, n, c5, -1)
    cell = int(0.35 * 3) * 3 + int(0.3 * 3)
    m = [k for k in range(n) if both.reshape(sh)[0, k, 0, cell] != 0]
    assert m
    for k in m:
        a, b1, b2 = (x.reshape(sh)[0, k, :4, cell] for x in (both, only[0], only[1]))
        assert np.allclose(a, (b1 + b2) / 2, rtol=1e-5, atol=1e-7)
        classes = both.reshape(sh)[0, k, 5:, cell]
        assert (classes > 0).sum() == 2


def test_truths_after_the_terminator_and_bad_classes_are_ignored():
    layer, out, _, _ = b_case(20)
    t = b_truths()
    d0, c0, s0 = yolo_loss(layer, out, t, 96, 96)
    t2 = t.copy()
    t2[1, 4] = [0.6, 0.6, 0.3, 0.3, 0, 0]   # after image 1's x == 0 row (row 3)
    t2[1, 5] = [0.4, 0.4, 0.3, 0.3, 1, 0]
    t2[0, 3, 4] = -1                        # another out-of-range class
    d1, c1, s1 = yolo_loss(layer, out, t2, 96, 96)
    assert np.array_equal(d0, d1) and c0 == c1 and s0["count"] == s1["count"]


# ======================================================================================
# options
# ======================================================================================

def _layer(opts, g=6, mask="0,1,2"):
    """mini-yolo-b's [yolo] on a g x g grid with some options replaced or added."""
    lines = YOLO_B.format(g=g, mask=mask).splitlines()
    for key, value in opts.items():
        lines = [ln for ln in lines if ln.split("=")[0].strip() != key] + [f"{key}={value}"]
    return load_cfg_text("\n".join(lines) + "\n").layers[0]


def _input(layer, seed=5):
    g = layer.w
    pre = (xorshift_uniform(seed, 2 * 24 * g * g) - f32(0.5)) * f32(4)
    return forward(layer, pre.reshape(2, 24, g, g))


def test_mse_cost_is_the_squared_delta_and_deltas_are_targets_minus_outputs():
    layer = _layer({"iou_loss": "mse", "iou_thresh": 1})
    out = _input(layer)
    t = b_truths()
    delta, cost, stats = yolo_loss(layer, out, t, 96, 96)
    assert cost == pytest.approx(float(np.square(delta.astype(np.float64)).sum()), rel=1e-6)
    # box target of truth 4 of image 0: (x*w - i, y*h - j, log(w*net/anchor_w), ...)
    x, y, w, h = t[0, 4, :4].astype(np.float64)
    anchors = layer.anchors.reshape(-1, 2)
    best = int(np.argmax([boxes.box_iou([0, 0, aw / 96, ah / 96], [0, 0, w, h])
                          for aw, ah in anchors]))
    assert best in layer.mask
    m = layer.mask.index(best)
    i, j = int(x * 6), int(y * 6)
    o = out[0].reshape(3, 8, 6, 6)[m, :, j, i].astype(np.float64)
    target = [x * 6 - i, y * 6 - j, math.log(w * 96 / anchors[best][0]),
              math.log(h * 96 / anchors[best][1])]
    want = (2 - w * h) * 0.5 * (np.array(target) - o[:4])
    got = delta[0].reshape(3, 8, 6, 6)[m, :4, j, i]
    assert np.allclose(got, want, rtol=1e-5)


def test_counters_per_class_label_smoothing_and_max_delta():
    layer = _layer({"iou_loss": "ciou", "counters_per_class": "100,20,0",
                    "label_smooth_eps": 0.1, "max_delta": 50})
    assert list(class_multipliers(layer)) == [1.0, 5.0, 50.0]  # 100/0 -> 100/1, capped at 50
    out = _input(layer)
    truths = b_truths()
    delta, cost, stats = yolo_loss(layer, out, truths, 96, 96)
    assert np.isfinite(delta).all() and np.isfinite(cost)
    assert np.abs(delta).max() <= 50
    mult = [1.0, 5.0, 50.0]
    d = delta.reshape(2, 3, 8, -1)
    o = out.reshape(d.shape).astype(np.float64)
    jobs = _assignments(layer, truths, 96, 96)
    checked = 0
    for b, m, loc, t, c in jobs:
        if sum(j[:3] == (b, m, loc) for j in jobs) > 1:
            continue
        # label smoothing: targets 1 * (1 - eps) + eps / 2 and eps / 2; the truth's class
        # delta and the objectness scaled by the class multiplier (and cls_normalizer 0.8)
        assert d[b, m, 4, loc] == pytest.approx(mult[c] * 0.9 * (1 - o[b, m, 4, loc]), rel=1e-5)
        for k in range(3):
            want = (0.95 if k == c else 0.05) - o[b, m, 5 + k, loc]
            if k == c:
                want *= mult[c] * 0.8
            assert d[b, m, 5 + k, loc] == pytest.approx(want, rel=1e-5)
        checked += 1
    assert checked >= 3


def test_a_map_shorter_than_the_classes_stops_at_the_first_truth_past_it(tmp_path):
    # (AB reads past the end of its map: garbage class ids)
    short = tmp_path / "short.map"
    short.write_text("2\n0\n")
    layer = _layer({"iou_loss": "ciou", "map": short})
    with pytest.raises(ValueError, match=r"class 2 is past the 2 lines of .*short.map"):
        yolo_loss(layer, _input(layer), b_truths(), 96, 96)


def test_a_map_only_renames_the_classes(tmp_path):
    # the truths of class k train class map[k]: a map of the identity changes nothing, and a
    # permuted one gives what the permuted labels give
    same, turn = tmp_path / "same.map", tmp_path / "turn.map"
    same.write_text("0\n1\n2\n")
    turn.write_text("2\n0\n1\n")
    plain = _layer({"iou_loss": "ciou"})
    out, t = _input(plain), b_truths()
    want, cost, _ = yolo_loss(plain, out, t, 96, 96)
    got, got_cost, _ = yolo_loss(_layer({"iou_loss": "ciou", "map": same}), out, t, 96, 96)
    np.testing.assert_array_equal(got, want)
    relabelled = t.copy()
    known = (t[..., 4] >= 0) & (t[..., 4] < 3)
    relabelled[..., 4][known] = np.array([2, 0, 1], f32)[t[..., 4][known].astype(int)]
    want, cost, _ = yolo_loss(plain, out, relabelled, 96, 96)
    got, got_cost, _ = yolo_loss(_layer({"iou_loss": "ciou", "map": turn}), out, t, 96, 96)
    np.testing.assert_array_equal(got, want)
    assert got_cost == cost


@pytest.mark.parametrize("head", ["yolo", "Gaussian_yolo"])
def test_a_missing_map_stops_training_before_it_starts(head):
    from pydarknet.errors import CfgError
    entries = 5 if head == "yolo" else 9
    net = load_cfg_text(f"[net]\nwidth=16\nheight=16\nchannels={2 * (2 + entries)}\n[{head}]\n"
                        f"mask=0,1\nanchors=4,4, 8,8\nclasses=2\nnum=2\nmap=data/coco9k.map\n")
    with pytest.raises(CfgError, match=r"cannot find the class map file data/coco9k.map"):
        net.check_trainable()


def test_no_truths_only_push_objectness_down():
    layer = _layer({"iou_loss": "ciou"})
    out = _input(layer)
    delta, cost, stats = yolo_loss(layer, out, np.zeros((2, 6, 6), f32), 96, 96)
    d = delta.reshape(2, 3, 8, -1)
    o = out.reshape(d.shape)
    assert not d[:, :, :4].any() and not d[:, :, 5:].any()
    assert np.array_equal(d[:, :, 4], f32(0.9) * (f32(0) - o[:, :, 4]))
    assert stats["count"] == 0
    assert cost == pytest.approx(0.9 * float(np.square(d[:, :, 4].astype(np.float64)).sum()))


# ======================================================================================
# the vectorised path (jobs alone in their cell) against the one-by-one path
# ======================================================================================

def _random_head(rng):
    """A [yolo] head with random options, its activated output and truths that crowd some
    cells (several truths a cell, early terminators, bad classes, NaN and inf outputs)."""
    classes, total = int(rng.integers(1, 6)), int(rng.integers(3, 9))
    mask = sorted(rng.choice(total, int(rng.integers(1, min(total, 4) + 1)), replace=False))
    g = int(rng.integers(2, 12))
    opts = {"iou_loss": rng.choice(["mse", "iou", "giou", "diou", "ciou"]),
            "iou_normalizer": rng.choice([0.07, 0.5]), "cls_normalizer": rng.choice([1, 0.8]),
            "obj_normalizer": rng.choice([1, 0.9]), "ignore_thresh": rng.choice([0.3, 0.7]),
            "truth_thresh": rng.choice([1, 0.5, 0.2]), "iou_thresh": rng.choice([1, 0.213, 0.05]),
            "iou_thresh_kind": rng.choice(["iou", "giou", "diou", "ciou"]),
            "new_coords": rng.choice([0, 1]), "objectness_smooth": rng.choice([0, 1]),
            "focal_loss": rng.choice([0, 0, 1]), "label_smooth_eps": rng.choice([0, 0.1]),
            "max_delta": rng.choice([5, 1e30]),
            "counters_per_class": ",".join(str(c) for c in rng.integers(0, 50, classes))}
    cfg = (f"[net]\nwidth={g}\nheight={g}\nchannels={len(mask) * (classes + 5)}\n\n"
           f"[yolo]\nmask={','.join(map(str, mask))}\nclasses={classes}\nnum={total}\n"
           f"anchors={','.join(f'{a:.1f}' for a in rng.uniform(4, 90, 2 * total))}\n"
           + "".join(f"{k}={v}\n" for k, v in opts.items()))
    layer = load_cfg_text(cfg, batch=1).layers[0]
    N = int(rng.integers(1, 4))
    out = 1 / (1 + np.exp(-rng.normal(0, 1.5, (N, layer.c, g, g)).astype(f32)))
    out.reshape(N, layer.n, -1, g * g)[:, :, 2:4] = rng.normal(0, 1, (N, layer.n, 2, g * g))
    out.flat[rng.integers(0, out.size, 4)] = [np.nan, np.inf, -np.inf, np.nan]
    truths = np.zeros((N, 40, 6), f32)
    for b in range(N):
        k = int(rng.integers(1, 38))
        centre = rng.uniform(0.1, 0.9, 2)
        near = rng.random((k, 1)) < 0.5
        truths[b, :k, :2] = np.where(near, centre + rng.normal(0, 0.02, (k, 2)),
                                     rng.uniform(0.01, 0.99, (k, 2)))
        truths[b, :k, 2:4] = rng.uniform(0.01, 0.6, (k, 2))
        truths[b, :k, 4] = rng.integers(-1, classes + 1, k)
    truths[0, 30, 0] = 0
    return layer, out, truths, g * 8


@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # the NaN and inf outputs
@pytest.mark.parametrize("seed", range(40))
def test_cells_alone_and_shared_give_the_same_deltas(seed, monkeypatch):
    """Every job through the one-by-one loop (as if every cell were shared) gives the deltas,
    cost and console numbers of the vectorised path, bit for bit."""
    from pydarknet.layers import yolo_loss as module
    layer, out, truths, size = _random_head(np.random.default_rng(seed))
    fast = yolo_loss(layer, out, truths, size, size)
    monkeypatch.setattr(module, "_in_shared_cells", lambda cells: np.ones(cells.shape, bool))
    slow = yolo_loss(layer, out, truths, size, size)
    assert np.array_equal(fast[0], slow[0], equal_nan=True)
    assert fast[1] == slow[1] or (math.isnan(fast[1]) and math.isnan(slow[1]))
    assert fast[2].keys() == slow[2].keys()
    for key in fast[2]:
        a, b = fast[2][key], slow[2][key]
        if isinstance(a, np.ndarray):             # the cells' track ids and classes
            assert np.array_equal(a, b), key
            continue
        assert a == b or (a != a and b != b), key


def test_a_mask_past_the_anchors_is_refused_for_training():
    """Darknet builds a mask entry >= num (and trains it with what lies past its anchors);
    pydarknet builds it with a warning and refuses to train it, naming the fix."""
    from pydarknet.errors import CfgError
    from pydarknet.network import load_cfg_text
    text = ("[net]\nbatch=2\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=16\n"
            "size=1\nactivation=linear\n[yolo]\nmask=1,3\nanchors=2,3, 4,5, 6,7\nclasses=3\n"
            "num=3\n")
    with pytest.warns(Warning, match=r"mask entries \[3\]"):
        net = load_cfg_text(text)
    with pytest.raises(CfgError, match=r"mask: layer 1: mask entries \[3\] are not anchor "
                                       r"indexes 0..2 \(num=3\).*fix mask= or num="):
        net.check_trainable()


def test_a_mask_past_num_takes_the_anchors_listed_beyond_it():
    """cspx-p7-mish.cfg lists 20 anchors with num=16 and masks 16..19 in its last [yolo]:
    Darknet reads past its anchors there; pydarknet uses the listed ones (its layer table
    keeps num's), trains and decodes."""
    from pydarknet.network import load_cfg_text
    text = ("[net]\nbatch=2\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=16\n"
            "size=1\nactivation=linear\n[yolo]\nmask=2,3\nanchors=2,3, 4,5, 6,7, 3,2\n"
            "classes=3\nnum=2\n")
    with pytest.warns(Warning, match=r"mask entries \[2, 3\] .*takes them from the 4 anchors"):
        net = load_cfg_text(text)
    yolo = net.layers[1]
    assert yolo.summary()["anchors"] == [2, 3, 4, 5]
    np.testing.assert_array_equal(yolo.anchors, [2, 3, 4, 5, 6, 7, 3, 2])
    net.check_trainable()
    t = np.zeros((2, 4, 6), np.float32)
    t[:, 0] = [0.5, 0.5, 0.5, 0.6, 1, 0]
    assert np.isfinite(net.train_iteration(np.full((2, 3, 8, 8), 0.5, np.float32), t))
