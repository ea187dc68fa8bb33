"""Whole networks at inference equal AB Darknet's, layer by layer, on cases the reference
data's mini networks leave out: antialiasing (conv and maxpool, both blurs), the old and
reverse reorgs, pooling geometries, weighted multi-input shortcuts, [local], [normalization]
(Darknet's LRN, window quirk included), [implicit] (YOLOR), and every activation Darknet's CPU
computes in a convolution; and (``TRAIN_CASES``) its training forward: batch statistics and
the [yolo] deltas and cost with CIoU, label smoothing, new_coords, focal loss and the rest.

tests/data/darknet_forward.npz holds every layer's output as AB Darknet 59596d7 (CPU build,
the reference data's commit) computed it (``network_predict`` after ``load_weights`` of the
.weights file pydarknet writes from ``case_network``), and for ``PJREDDIE_CASES`` as
pjreddie's original Darknet (f6afaab, its last commit) did; tools/darknet_forward_oracle.py
regenerates it. Inputs and parameters come from the reference data's xorshift32 generator.
(A random-cfg comparison in the same harness, tools/darknet_forward_oracle.py --fuzz, found
the geometries Darknet itself cannot run, which pydarknet refuses; see test_cfg's BROKEN.)
"""

import pathlib

import numpy as np
import pytest

from pydarknet.network import load_cfg_text
from test_yolo_loss import xorshift_uniform

ORACLE = pathlib.Path(__file__).parent / "data" / "darknet_forward.npz"
NET = "[net]\nbatch=2\nwidth={w}\nheight={h}\nchannels={c}\n"

# Darknet's CPU activate() has no case for relu6 (it gives 0); mish, swish, hard_mish and the
# normalize_channels family run in [convolutional] only
CONV_ACTIVATIONS = ["logistic", "loggy", "relu", "elu", "selu", "gelu", "relie", "ramp",
                    "linear", "tanh", "plse", "leaky", "revleaky", "stair", "hardtan", "lhtan",
                    "mish", "swish", "hard_mish", "normalize_channels",
                    "normalize_channels_softmax", "normalize_channels_softmax_maxval"]

CASES = {
    "antialiasing": NET.format(w=19, h=14, c=3) + (
        "[convolutional]\nfilters=6\nsize=3\nstride=2\npad=1\nbatch_normalize=1\n"
        "antialiasing=1\nactivation=mish\n"
        "[convolutional]\nfilters=4\nsize=3\nstride_x=2\nstride_y=1\npad=1\nantialiasing=2\n"
        "activation=leaky\n"
        "[maxpool]\nsize=2\nstride=2\nantialiasing=1\n"
        "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n"
        "[maxpool]\nsize=3\nstride=1\nantialiasing=2\n"),
    "reorgs": NET.format(w=12, h=8, c=3) + (
        "[convolutional]\nfilters=8\nsize=3\npad=1\nactivation=leaky\n"
        "[reorg]\nstride=2\n"
        "[reorg]\nstride=2\nreverse=1\n"
        "[reorg3d]\nstride=2\n"
        "[reorg3d]\nstride=2\nreverse=1\n"
        "[route]\nlayers=-1,0\n"),
    "pooling": NET.format(w=17, h=11, c=3) + (
        "[maxpool]\nsize=3\nstride_x=2\nstride_y=1\npadding=1\n"
        "[maxpool]\nsize=2\nstride=1\n"
        "[local_avgpool]\nsize=3\nstride=2\n"
        "[maxpool]\nmaxpool_depth=1\nout_channels=2\nsize=1\nstride=1\n"
        "[upsample]\nstride=3\nscale=0.5\n"
        "[upsample]\nstride=-3\n"),
    "shortcuts": NET.format(w=10, h=9, c=3) + (
        "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"
        "[convolutional]\nfilters=4\nsize=1\nactivation=tanh\n"
        "[convolutional]\nfilters=4\nsize=3\npad=1\ngroups=2\nactivation=logistic\n"
        "[shortcut]\nfrom=-2,-3\nweights_type=per_feature\nweights_normalization=relu\n"
        "activation=swish\n"
        "[shortcut]\nfrom=0\nweights_type=per_channel\nweights_normalization=softmax\n"
        "activation=mish\n"
        "[route]\nlayers=-1,-4,1\ngroups=2\ngroup_id=1\n"
        "[avgpool]\n"
        "[scale_channels]\nfrom=-2\n"),
    "local": NET.format(w=9, h=8, c=2) + (
        "[local]\nfilters=3\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
        "[local]\nfilters=2\nsize=3\nstride=2\npad=0\nactivation=logistic\n"
        "[connected]\noutput=5\nbatch_normalize=1\nactivation=tanh\n"
        "[softmax]\ngroups=1\ntemperature=0.5\n"),
    "normalization": NET.format(w=7, h=5, c=3) + (
        "[convolutional]\nfilters=9\nsize=3\npad=1\nactivation=leaky\n"
        "[normalization]\n"
        "[lrn]\nsize=3\nalpha=0.5\nbeta=0.6\nkappa=2\n"
        "[normalization]\nsize=4\nalpha=0.01\n"
        "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n"
        "[normalization]\nsize=5\nalpha=0.3\n"),
    "implicit": NET.format(w=6, h=5, c=3) + (
        "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"
        "[implicit]\nfilters=4\nmean=1\nstd=0.1\n"
        "[scale_channels]\nfrom=0\n"
        "[implicit]\nfilters=4\natoms=3\n"
        "[connected]\noutput=5\nactivation=linear\n"),
    "activations": NET.format(w=6, h=5, c=3) + "".join(
        f"[convolutional]\nfilters=3\nsize=3\npad=1\nbatch_normalize={i % 2}\n"
        f"activation={a}\n" for i, a in enumerate(CONV_ACTIVATIONS)),
}

# pjreddie's Darknet (the original): the shortcut between spatial sizes of its ResNet cfgs,
# which AB's asserts against (from a larger layer every stride-th value; into a larger output
# every sample-th place; over the fewer channels; odd sizes give stride 1)
PJREDDIE_CASES = {
    "resampled-shortcuts": NET.format(w=12, h=8, c=3) + (
        "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"
        "[convolutional]\nfilters=6\nsize=3\nstride=2\npad=1\nactivation=leaky\n"
        "[shortcut]\nfrom=-2\nactivation=leaky\n"
        "[upsample]\nstride=2\n"
        "[convolutional]\nfilters=5\nsize=1\nactivation=linear\n"
        "[shortcut]\nfrom=1\nactivation=linear\n"),
    "odd-shortcut": NET.format(w=13, h=9, c=3) + (
        "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"
        "[convolutional]\nfilters=3\nsize=3\nstride=2\npad=1\nactivation=leaky\n"
        "[shortcut]\nfrom=-2\nactivation=linear\n"),
}

# Darknet's training forward (batch norm on the batch's statistics, the YOLO loss): every
# layer's output, and each [yolo] layer's delta and cost
YOLO_HEAD = ("[convolutional]\nfilters=21\nsize=1\nactivation={act}\n"
             "[yolo]\nmask=0,1,2\nanchors=4,5, 8,9, 14,10, 20,25\nclasses=2\nnum=4\n"
             "max=6\n{options}")
TRAIN_CASES = {
    "train-ciou": NET.format(w=24, h=20, c=3) + (
        "[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nbatch_normalize=1\n"
        "antialiasing=1\nactivation=mish\n"
        "[convolutional]\nfilters=8\nsize=3\npad=1\nbatch_normalize=1\nactivation=leaky\n"
        "[convolutional]\nfilters=8\nsize=1\nbatch_normalize=1\nactivation=leaky\n"
        "[shortcut]\nfrom=-2\nactivation=linear\n") + YOLO_HEAD.format(act="linear", options=(
            "iou_loss=ciou\niou_normalizer=0.07\ncls_normalizer=1.0\niou_thresh=0.213\n"
            "scale_x_y=1.05\nlabel_smooth_eps=0.1\nignore_thresh=0.5\n")),
    "train-new-coords": NET.format(w=16, h=16, c=3) + (
        "[convolutional]\nfilters=8\nsize=3\npad=1\nbatch_normalize=1\nactivation=swish\n"
        "[maxpool]\nsize=2\nstride=2\n"
        "[normalization]\nsize=5\nalpha=0.01\n") + YOLO_HEAD.format(act="logistic", options=(
            "new_coords=1\nscale_x_y=2.0\niou_loss=giou\nobjectness_smooth=1\n"
            "max_delta=5\nfocal_loss=1\n")),
}


def case_truths(net):
    """Two or three boxes an image, rows x y w h class id, as many rows as the head keeps."""
    head = net.layers[-1]
    u = xorshift_uniform(777, 2 * head.max_boxes * 6).reshape(2, head.max_boxes, 6)
    truths = np.zeros_like(u)
    for b, k in ((0, 3), (1, 2)):
        truths[b, :k, :2] = 0.1 + 0.8 * u[b, :k, :2]
        truths[b, :k, 2:4] = 0.1 + 0.5 * u[b, :k, 2:4]
        truths[b, :k, 4] = np.floor(u[b, :k, 4] * head.classes)
    return truths


def fill_xorshift(net):
    """Parameters from xorshift32: weights (any ``*weights``) scaled by fan-in, positive
    scales and variances, small biases and means."""
    net.params_to_host()
    seed = 1
    for layer in net.layers:
        for key, shape in layer.param_shapes():
            seed += 7919
            u = xorshift_uniform(seed, int(np.prod(shape))).reshape(shape)
            if key.endswith("weights"):
                v = (u - 0.5) * (3.4 / np.sqrt(int(np.prod(shape[1:]))))
            elif key.endswith(("scales", "rolling_variance")):
                v = 0.5 + u
            else:
                v = (u - 0.5) * 0.4
            layer.params[key][...] = v


def case_network(name, device="cpu"):
    """The case's network with parameters from xorshift32 (weights scaled by fan-in, positive
    variances), and its input."""
    net = load_cfg_text({**CASES, **PJREDDIE_CASES, **TRAIN_CASES}[name], batch=2,
                        device=device)
    fill_xorshift(net)
    n = net.net
    x = xorshift_uniform(12345, 2 * n.channels * n.height * n.width)
    return net, x.reshape(2, n.channels, n.height, n.width)


@pytest.fixture(scope="module")
def oracle():
    return np.load(ORACLE)


@pytest.mark.parametrize("name", list(CASES))
def test_every_layer_matches_darknet(oracle, name):
    check_case(oracle, name)


@pytest.mark.parametrize("name", list(PJREDDIE_CASES))
def test_every_layer_matches_pjreddies_darknet(oracle, name):
    check_case(oracle, name)


@pytest.mark.parametrize("name", list(TRAIN_CASES))
def test_training_forward_matches_darknet(oracle, name):
    check_training_case(oracle, name)


def check_training_case(oracle, name, device="cpu"):
    """Outputs with batch statistics, and the [yolo] delta and cost, as Darknet's training
    forward computes them."""
    net, x = case_network(name, device)
    net.forward(x, train=True, truths=case_truths(net))
    head = net.layers[-1]
    for i in range(len(net.layers)):
        want = oracle[f"{name}_{i}"]
        np.testing.assert_allclose(np.asarray(net.outputs[i]).ravel(), want, rtol=1e-4,
                                   atol=2e-5 * float(np.abs(want).max()), err_msg=f"layer {i}")
    want = oracle[f"{name}_{-1 - head.index}"]
    np.testing.assert_allclose(np.asarray(net.deltas[head.index]).ravel(), want, rtol=1e-4,
                               atol=2e-5 * float(np.abs(want).max()))
    assert np.count_nonzero(want[np.abs(want) > 1e-3]) > 10
    assert head.cost == pytest.approx(float(oracle[f"{name}_{-1000 - head.index}"][0]),
                                      rel=1e-4)


def check_case(oracle, name, device="cpu", tol=2e-5):
    net, x = case_network(name, device)
    net.forward(x)
    bad = {}
    for i, layer in enumerate(net.layers):
        want = oracle[f"{name}_{i}"]
        got = np.asarray(net.outputs[i], np.float32).ravel()
        assert got.size == want.size, (i, layer.type, got.size, want.size)
        err = float(np.abs(got - want).max()) / max(float(np.abs(want).max()), 1e-6)
        if err > tol:
            bad[(i, layer.type, getattr(layer, "activation", None))] = err
    assert not bad, f"layers off by more than {tol} (max|a-b|/max|b|): {bad}"
