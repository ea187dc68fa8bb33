"""[region], [detection] and [Gaussian_yolo] training forwards equal AB Darknet's own; so do
[yolo] and [Gaussian_yolo] with a class map (map=), [region] with a softmax tree
(tests/data/tiny.tree; with yolo9000's class map, classfix and classification-only images)
and [softmax] with one (its labels filled by fill_hierarchy), YOLOv1's [local] layer,
forward and backward (``LOCAL_CASES``), and [crnn] at inference over three frames
(``CRNN_CASES``).

tests/data/darknet_heads.npz holds what AB Darknet 59596d7 (CPU build, the reference data's
commit) computed for the cases below: each head's ``l.output``, ``l.delta`` and ``l.cost[0]``
after ``l.forward`` with ``state.train = 1`` (tools/darknet_heads_oracle.py regenerates it).
Darknet's [detection] reads a grid of truths: it gets the grid pydarknet builds from the boxes
(``truth_grid``, whose loop test_detection_loss checks). The inputs are the reference data's
xorshift32 values; the truths put two boxes in one cell.
"""

import pathlib

import numpy as np
import pytest

from pydarknet.layers.detection_loss import truth_grid
from pydarknet.tree import SECRET_NUM, load_tree
from pydarknet.network import load_cfg_text
from test_yolo_loss import xorshift_uniform

f32 = np.float32
ORACLE = pathlib.Path(__file__).parent / "data" / "darknet_heads.npz"
TREE = pathlib.Path(__file__).parent / "data" / "tiny.tree"     # 12 classes in 6 groups
MAP = pathlib.Path(__file__).parent / "data" / "tiny.map"       # 3 classes into the tree

REGION = """[net]
batch=2
width=5
height=4
channels={channels}
[region]
anchors=0.8,1.1, 1.9,1.4, 3.2,2.6
classes=3
coords=4
num=3
max=6
{options}
"""

DETECTION = """[net]
batch=2
width=3
height=3
channels=13
[detection]
classes=3
coords=4
side=3
num=2
max=6
{options}
"""

GAUSSIAN = """[net]
batch=2
width=6
height=6
channels={channels}
[Gaussian_yolo]
mask=0,1,2
anchors=6,8, 14,12, 20,26, 30,24, 40,44, 52,50
classes=3
num=6
max=6
{options}
"""

YOLO = """[net]
batch=2
width=6
height=6
channels={channels}
[yolo]
mask=0,1,2
anchors=6,8, 14,12, 20,26, 30,24, 40,44, 52,50
classes=3
num=6
max=6
{options}
"""

CASES = {
    "region_prior": dict(cfg=REGION.format(channels=24, options=(
        "softmax=1\nrescore=1\nbias_match=1\nobject_scale=5\nnoobject_scale=1\n"
        "class_scale=1\ncoord_scale=1\nthresh=.4")), seed=11, seen=100),
    "region": dict(cfg=REGION.format(channels=24, options=(
        "softmax=1\nrescore=1\nbias_match=1\nobject_scale=5\nnoobject_scale=1\n"
        "class_scale=1\ncoord_scale=1\nthresh=.4")), seed=11, seen=20000),
    "region_classfix": dict(cfg=REGION.format(channels=24, options=(
        "softmax=1\nclassfix=2\nfocal_loss=1\nthresh=.05\nobject_scale=2\nclass_scale=1.5")),
        seed=12, seen=50000),
    "detection": dict(cfg=DETECTION.format(options=(
        "rescore=1\nsoftmax=0\nsqrt=1\nobject_scale=1\nnoobject_scale=.5\nclass_scale=1\n"
        "coord_scale=5")), seed=13, seen=100000),
    "detection_softmax": dict(cfg=DETECTION.format(options=(
        "rescore=0\nsoftmax=1\nsqrt=0\nforced=1\nobject_scale=2\ncoord_scale=1.5")),
        seed=14, seen=100000),
    "gaussian": dict(cfg=GAUSSIAN.format(channels=36, options=(
        "iou_loss=giou\niou_normalizer=0.5\niou_thresh=0.213\nignore_thresh=.5\n"
        "truth_thresh=1\nuc_normalizer=1.0\nscale_x_y=1.05")), seed=15, seen=0),
    "region_tree": dict(cfg=REGION.format(channels=51, options="tree={tree}").replace(
        "classes=3", "classes=12"), seed=17, seen=20000),
    # yolo9000's: the truths' classes mapped into the tree (tiny.map: 0, 1, 2 -> terrier,
    # siamese, truck), so each trains its path to the root
    "region_tree_map": dict(cfg=REGION.format(channels=51, options=(
        "tree={tree}\nmap={map}\nrescore=1\nbias_match=1\nobject_scale=5\nthresh=.4")).replace(
        "classes=3", "classes=12"), seed=19, seen=20000),
    "region_tree_classfix": dict(cfg=REGION.format(channels=51, options=(
        "tree={tree}\nclassfix=1\nthresh=.05")).replace("classes=3", "classes=12"),
        seed=20, seen=50000),
    # image 1 is classification-only (a truth marked x, y > 100000: poodle)
    "region_tree_only_class": dict(cfg=REGION.format(channels=51, options=(
        "tree={tree}\nmap={map}")).replace("classes=3", "classes=12"), seed=23, seen=20000,
        truths={1: [0.55, 0.45, 0.35, 0.4, 2], 2: [200000, 200000, 1, 1, 9]}),
    # [yolo] and [Gaussian_yolo] with a class map (tiny.map: 0, 1, 2 -> 8, 10, 11 of 12), the
    # truth_thresh pass included
    "yolo_map": dict(cfg=YOLO.format(channels=51, options=(
        "map={map}\niou_loss=ciou\nignore_thresh=.3\ntruth_thresh=.6\niou_thresh=.2"
        "\ncounters_per_class=5,1,1,1,1,1,1,1,2,1,3,1")).replace("classes=3", "classes=12"),
        seed=24, seen=0),
    "gaussian_map": dict(cfg=GAUSSIAN.format(channels=63, options=(
        "map={map}\nignore_thresh=.3\ntruth_thresh=.6")).replace("classes=3", "classes=12"),
        seed=25, seen=0),
    "softmax_tree": dict(cfg="[net]\nbatch=2\nwidth=2\nheight=2\nchannels=3\n"
                             "[softmax]\ntree={tree}\n", seed=18, seen=0),
    "gaussian_mse": dict(cfg=GAUSSIAN.format(channels=36, options=(
        "iou_loss=mse\nyolo_point=left_top\nlabel_smooth_eps=0.1\nignore_thresh=.3\n"
        "obj_normalizer=1.5\nuc_normalizer=0.7")), seed=16, seen=0),
}

# x, y, w, h, class: two truths in one cell, a list ended by x == 0
TRUTHS = [
    [[0.3, 0.35, 0.25, 0.3, 0], [0.31, 0.36, 0.22, 0.28, 2], [0.7, 0.6, 0.6, 0.55, 1],
     [0.12, 0.85, 0.08, 0.12, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
    [[0.55, 0.45, 0.35, 0.4, 2], [0.2, 0.2, 0.15, 0.1, 0], [0.8, 0.75, 0.2, 0.3, 1],
     [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
]


def cfg_text(name):
    return CASES[name]["cfg"].replace("{tree}", str(TREE)).replace("{map}", str(MAP))


def case_inputs(name):
    """(the head layer's network, its input [2, ...], box truths [2, 6, 6], seen)."""
    case = CASES[name]
    net = load_cfg_text(cfg_text(name))
    shape = (2,) + net.input_shape
    x = ((xorshift_uniform(case["seed"], int(np.prod(shape))) - f32(0.5)) * f32(4)).reshape(shape)
    if net.layers[-1].layer_type == "softmax":      # a classifier's truths: one-hot
        return net, x, np.eye(12, dtype=f32)[[3, 10]], case["seen"]
    truths = np.zeros((2, 6, 6), f32)
    truths[:, :, :5] = np.array(TRUTHS, f32)
    for row, values in case.get("truths", {}).items():      # image 1's rows replaced
        truths[1, row - 1, :5] = values
    return net, x, truths, case["seen"]


def darknet_truths(net, truths):
    """What Darknet's layer reads as state.truth: the boxes, [detection]'s grid, or a tree
    classifier's labels after its data loader's fill_hierarchy."""
    head = net.layers[-1]
    if head.layer_type == "softmax" and head.tree:
        return load_tree(head).fill_hierarchy(truths)
    if head.layer_type == "detection":
        return truth_grid(truths, head.side, head.classes)
    return truths


@pytest.fixture(scope="module")
def oracle():
    return np.load(ORACLE)


@pytest.mark.parametrize("name", list(CASES))
def test_head_equals_darknet(oracle, name):
    net, x, truths, seen = case_inputs(name)
    net.seen = seen
    net.forward(x, train=True, truths=truths)
    head = net.layers[-1]
    out = np.array(net.outputs[head.index]).reshape(-1)
    delta = np.array(net.deltas[head.index]).reshape(-1)
    want_out, want_delta = oracle[f"{name}_output"], oracle[f"{name}_delta"]
    want_cost = float(oracle[f"{name}_cost"][0])
    if head.layer_type == "softmax" and head.tree:
        # the groups without a label: AB's GPU build leaves them out (its mask_gpu), the CPU
        # build computes t - p and -log(p) with t = SECRET_NUM there
        skip = darknet_truths(net, truths).reshape(-1) == SECRET_NUM
        assert skip.any() and not delta[skip].any()
        want_delta = np.where(skip, f32(0), want_delta)
        want_cost -= float(-np.log(want_out[skip]).sum(dtype=np.float32))
    scale = max(float(np.abs(want_delta).max()), 1e-6)
    np.testing.assert_allclose(out, want_out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(delta, want_delta, rtol=1e-4, atol=1e-5 * scale)
    assert head.cost == pytest.approx(want_cost, rel=1e-4)
    assert np.count_nonzero(want_delta) > 0


# [local] forward and backward: Darknet's forward_local_layer and backward_local_layer on given
# parameters and output gradient (Darknet's own init fills only the first position's weights)
LOCAL_CASES = {
    "local_pad": dict(cfg="[net]\nbatch=2\nwidth=6\nheight=5\nchannels=3\n[local]\nfilters=4\n"
                          "size=3\nstride=1\npad=1\nactivation=leaky\n", seed=21),
    "local_stride": dict(cfg="[net]\nbatch=2\nwidth=7\nheight=7\nchannels=2\n[local]\n"
                             "filters=3\nsize=3\nstride=2\npad=0\nactivation=logistic\n",
                         seed=22),
}


def local_inputs(name):
    """(the pydarknet network: [activation] linear, then the [local] layer, so that the
    layer's input gradient has a place; x; parameters; output gradient)"""
    case = LOCAL_CASES[name]
    net = load_cfg_text(case["cfg"].replace("[local]", "[activation]\nactivation=linear\n[local]"))
    layer = net.layers[1]
    rng = np.random.default_rng(case["seed"])
    x = rng.uniform(-2, 2, (2,) + net.input_shape).astype(f32)
    params = rng.uniform(-0.5, 0.5, layer.outputs + layer.params["weights"].size).astype(f32)
    delta = rng.standard_normal((2, layer.outputs)).astype(f32)
    return net, x, params, delta


@pytest.mark.parametrize("name", list(LOCAL_CASES))
def test_local_layer_equals_darknet(oracle, name):
    from pydarknet.passes import forward_pass
    net, x, params, delta = local_inputs(name)
    layer = net.layers[1]
    layer.params["biases"][...] = params[:layer.outputs]
    layer.params["weights"][...] = params[layer.outputs:].reshape(layer.params["weights"].shape)
    net.ensure_training()
    state = forward_pass(net, net.backend.from_numpy(x), train=True)
    state.deltas[1][...] = delta.reshape(state.deltas[1].shape)
    layer.backward(state)
    got = {"output": state.outputs[1], "delta": state.deltas[1], "dx": state.deltas[0],
           "weight_updates": layer.grads["weights"], "bias_updates": layer.grads["biases"]}
    for key, value in got.items():
        want = oracle[f"{name}_{key}"]
        np.testing.assert_allclose(np.asarray(value).reshape(-1), want, rtol=1e-5,
                                   atol=1e-5 * max(float(np.abs(want).max()), 1e-6),
                                   err_msg=key)


# [crnn] at inference: Darknet's forward_crnn_layer (state.train = 0) three times in a row, its
# parameters from a .weights file pydarknet writes
CRNN_CASES = {
    "crnn_bn": dict(cfg="[net]\nbatch=2\nwidth=6\nheight=5\nchannels=3\n[crnn]\n"
                        "batch_normalize=1\nsize=3\npad=1\noutput=4\nhidden=3\n"
                        "activation=leaky\n", seed=31),
    "crnn_shortcut": dict(cfg="[net]\nbatch=2\nwidth=6\nheight=5\nchannels=3\n[crnn]\n"
                              "size=3\npad=1\noutput=2\nhidden=4\nactivation=logistic\n"
                              "shortcut=1\n", seed=32),
}
FRAMES = 3


def crnn_inputs(name):
    """(the network with its random parameters set, the frames [FRAMES, 2, 3, 5, 6])"""
    case = CRNN_CASES[name]
    net = load_cfg_text(case["cfg"])
    rng = np.random.default_rng(case["seed"])
    for k, v in net.layers[0].params.items():
        v[...] = rng.uniform(0.5, 1.5, v.shape) if "variance" in k else \
            rng.uniform(-0.6, 0.6, v.shape)
    frames = rng.standard_normal((FRAMES, 2) + net.input_shape).astype(f32)
    return net, frames


@pytest.mark.parametrize("name", list(CRNN_CASES))
def test_crnn_equals_darknet(oracle, name):
    net, frames = crnn_inputs(name)
    want = oracle[f"{name}_outputs"].reshape(FRAMES, -1)
    for k, x in enumerate(frames):
        np.testing.assert_allclose(net.forward(x).reshape(-1), want[k], rtol=1e-5, atol=1e-5,
                                   err_msg=f"frame {k}")
