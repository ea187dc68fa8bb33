"""Whole networks' backward passes equal Darknet's, layer by layer: every delta as its layer
receives it, the input's delta, and every weight, bias and scale gradient.

The oracle is AB Darknet 59596d7's CPU build patched to the semantics of the reference data's
``-gpusem`` runs (tools/darknet_gpusem_patch.py: its CPU training bugs fixed, as AB's GPU build
and pydarknet have them), plus pydarknet's two deliberate differences in backward passes
([local_avgpool]'s true gradient, and a weight-sharing layer's own batch statistics; see
README). tests/data/darknet_backward.npz holds what that build computed: the training forward
on zero truths, the last layer's delta replaced by a fixed one, then Darknet's
backward_network; ``tools/darknet_forward_oracle.py --backward-oracle`` regenerates it and
``--fuzz-backward`` runs random cfgs the same way.

The cases cover each layer's backward that the fixed networks of the reference data leave out.
Not here: antialiasing (AB's CPU build has no backward for the blur; test_gradients checks
pydarknet's), [dropout] and [crop] (Darknet's rand()), the recurrent layers
(test_recurrent)."""

import pathlib

import numpy as np
import pytest

from pydarknet.heads import DETECTION_HEADS
from pydarknet.network import load_cfg_text
from pydarknet.passes import forward_pass
from test_darknet_forward import fill_xorshift
from test_yolo_loss import xorshift_uniform

ORACLE = pathlib.Path(__file__).parent / "data" / "darknet_backward.npz"
NET = "[net]\nbatch=2\nwidth={w}\nheight={h}\nchannels={c}\n"
GRADIENTS = ("weights", "biases", "scales")     # Darknet's weight_, bias_, scale_updates
INPUT_DELTA = 199999                            # the oracle's keys (the harness's indices)


def delta_key(i):
    return 200000 + i


def gradient_key(i, k):
    return 300000 + 3 * i + GRADIENTS.index(k)


# Each layer whose Darknet CPU backward overwrote the previous layer's delta (conv, batchnorm,
# activation, sam's `from`, upsample reverse, reorg, normalization) follows one that a later
# route or shortcut also sends a delta to: both must arrive.
BACKWARD_CASES = {
    # every activation gradient of a convolution, batch norm, groups, dilation, strides x/y,
    # and a layer sharing the first one's weights
    "conv": NET.format(w=14, h=11, c=3) + (
        "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\nactivation=mish\n"
        "[convolutional]\nfilters=4\nsize=3\nstride_x=2\nstride_y=1\npad=1\ngroups=2\n"
        "dilation=2\nbatch_normalize=1\nactivation=swish\n"
        "[convolutional]\nfilters=4\nsize=1\nactivation=hard_mish\n"
        "[convolutional]\nshare_index=1\nfilters=4\nsize=3\nstride_x=2\nstride_y=1\npad=1\n"
        "groups=2\ndilation=2\nbatch_normalize=1\nactivation=leaky\n"
        "[convolutional]\nfilters=6\nsize=2\nstride=2\nactivation=normalize_channels_softmax\n"
        "[convolutional]\nfilters=3\nsize=1\nactivation=logistic\n"),
    # weighted shortcuts of several inputs, routes with groups, standalone batch norm and
    # activation layers, [empty]
    "skips": NET.format(w=9, h=8, c=3) + (
        "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"
        "[convolutional]\nfilters=4\nsize=1\nactivation=tanh\n"
        "[shortcut]\nfrom=-2,0\nweights_type=per_channel\nweights_normalization=softmax\n"
        "activation=linear\n"
        "[route]\nlayers=-1,1\n"
        "[route]\nlayers=-1\ngroups=2\ngroup_id=1\n"
        "[shortcut]\nfrom=1\nweights_type=per_feature\nweights_normalization=relu\n"
        "activation=swish\n"
        "[batchnorm]\n"
        "[activation]\nactivation=elu\n"
        "[empty]\n"
        "[shortcut]\nfrom=-4,-3\nactivation=mish\n"),
    "pooling": NET.format(w=17, h=11, c=3) + (
        "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"
        "[maxpool]\nsize=3\nstride_x=2\nstride_y=1\npadding=1\n"
        "[local_avgpool]\nsize=3\nstride=2\n"
        "[maxpool]\nmaxpool_depth=1\nout_channels=2\nsize=1\nstride=1\n"
        "[upsample]\nstride=3\nscale=0.5\n"
        "[upsample]\nstride=-3\n"
        "[maxpool]\nsize=2\nstride=1\n"
        "[upsample]\nstride=3\n"
        "[shortcut]\nfrom=4\nactivation=linear\n"),
    # attention layers and YOLOR's learned tensor
    "attention": NET.format(w=10, h=9, c=3) + (
        "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"
        "[convolutional]\nfilters=4\nsize=1\nactivation=logistic\n"
        "[sam]\nfrom=-2\n"
        "[avgpool]\n"
        "[scale_channels]\nfrom=-2\n"
        "[convolutional]\nfilters=1\nsize=1\nactivation=logistic\n"
        "[scale_channels]\nfrom=-2\nscale_wh=1\n"
        "[implicit]\nfilters=4\n"
        "[scale_channels]\nfrom=-2\n"
        "[shortcut]\nfrom=0\nactivation=linear\n"),
    # reorgs, [local], [normalization] (Darknet's approximate backward)
    "reorg-local-lrn": NET.format(w=12, h=8, c=3) + (
        "[convolutional]\nfilters=8\nsize=3\npad=1\nactivation=leaky\n"
        "[reorg]\nstride=2\n"
        "[reorg]\nstride=2\nreverse=1\n"
        "[shortcut]\nfrom=0\nactivation=linear\n"
        "[reorg3d]\nstride=2\n"
        "[local]\nfilters=3\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
        "[normalization]\nsize=3\nalpha=0.1\nbeta=0.75\nkappa=2\n"
        "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n"
        "[route]\nlayers=-1,1,5\n"),
    # a classifier's head: [connected] with and without batch norm, grouped softmax, cost
    "classifier": NET.format(w=8, h=8, c=3) + (
        "[convolutional]\nfilters=6\nsize=3\nstride=2\npad=1\nbatch_normalize=1\n"
        "activation=relu\n"
        "[connected]\noutput=8\nbatch_normalize=1\nactivation=leaky\n"
        "[connected]\noutput=6\nactivation=linear\n"
        "[softmax]\ngroups=2\ntemperature=0.5\n"
        "[cost]\n"),
    "yolo": NET.format(w=16, h=16, c=3) + (
        "[convolutional]\nfilters=8\nsize=3\npad=1\nbatch_normalize=1\nactivation=mish\n"
        "[convolutional]\nfilters=21\nsize=1\nactivation=linear\n"
        "[yolo]\nmask=0,1,2\nanchors=4,5, 8,9, 14,10, 20,25\nclasses=2\nnum=4\n"),
}


def zero_truths(net, batch):
    """Truths without a box or label, the oracle's (Darknet's training forward reads them)."""
    heads = [l for l in net.layers if l.layer_type in DETECTION_HEADS]
    if heads:
        return np.zeros((batch, max(l.max_boxes for l in heads), 6), np.float32)
    return np.zeros((batch, net.layers[-1].outputs), np.float32)


def darknet_style_backward(net, x, last_delta):
    """Darknet's training forward on zero truths, ``last_delta`` in place of the last
    layer's delta, then the backward pass. Returns ({oracle key: values}, {oracle key: floor}):
    every delta as its layer receives it (before its own backward, which Darknet runs in
    place), the input's delta and every gradient; a floor is the least scale of the value's
    error: a delta is a sum of the later deltas' products, which may cancel (a batch norm's
    delta sums to 0 a channel), so its rounding scales with the largest later delta, and a
    gradient's with the sum of its delta's sizes (each at least its delta's floor) times the
    input's largest value."""
    net.ensure_training()
    B, batch = net.backend, x.shape[0]
    dx = B.zeros(x.shape)
    state = forward_pass(net, B.from_numpy(x), True, zero_truths(net, batch), input_delta=dx)
    B.copy_from_numpy(state.deltas[-1], last_delta.reshape(B.to_numpy(state.deltas[-1]).shape))
    got, floors, received, later_max, later = {}, {}, {}, {}, 0.0
    for i, layer in reversed(list(enumerate(net.layers))):
        received[i], later_max[i] = B.to_numpy(state.deltas[i]).copy(), later
        if layer.layer_type != "empty":     # (Darknet's [empty] shares the previous delta)
            got[delta_key(i)], floors[delta_key(i)] = received[i], later
        later = max(later, float(np.abs(received[i]).max()))
        if not layer.onlyforward:
            layer.backward(state)
    got[INPUT_DELTA], floors[INPUT_DELTA] = B.to_numpy(dx), later
    for i, layer in enumerate(net.layers):
        d = np.maximum(np.abs(received[i]), later_max[i]).reshape(
            batch, max(layer.out_c, 1), -1).sum(axis=(0, 2)).max()
        inputs = float(np.abs(B.to_numpy(state.outputs[i - 1])).max()) if i else 1.0
        for k in GRADIENTS:
            if k in layer.grads:
                got[gradient_key(i, k)] = B.to_numpy(layer.grads[k])
                floors[gradient_key(i, k)] = float(d) * max(1.0, inputs)
    return got, floors


def case_inputs(name, device="cpu"):
    """The case's network (xorshift32 parameters, as test_darknet_forward's), input and
    last-layer delta."""
    net = load_cfg_text(BACKWARD_CASES[name], batch=2, device=device)
    fill_xorshift(net)
    n = net.net
    x = xorshift_uniform(12345, 2 * n.channels * n.height * n.width)
    r = xorshift_uniform(4242, 2 * net.layers[-1].outputs) - 0.5
    return net, x.reshape(2, n.channels, n.height, n.width), r


def backward_order(key):
    """Keys in the order the backward computes them: from the last layer down, each layer's
    delta before its gradients, the input's delta last."""
    if key == INPUT_DELTA:
        return (1, 0, 0)
    if key < 300000:
        return (0, -(key - 200000), 0)
    return (0, -((key - 300000) // 3), 1)


def describe(net, key):
    if key == INPUT_DELTA:
        return "the input's delta"
    if key < 300000:
        i = key - 200000
        return f"layer {i} [{net.layers[i].type}]'s delta"
    i, k = divmod(key - 300000, 3)
    return f"layer {i} [{net.layers[i].type}]'s {GRADIENTS[k]} gradient"


@pytest.fixture(scope="module")
def oracle():
    return np.load(ORACLE)


@pytest.mark.parametrize("name", list(BACKWARD_CASES))
def test_backward_matches_darknet(oracle, name):
    check_backward_case(oracle, name)


def check_backward_case(oracle, name, device="cpu", tol=1e-4):
    net, x, r = case_inputs(name, device)
    got, floors = darknet_style_backward(net, x, r)
    prefix = f"{name}_"
    keys = {int(k[len(prefix):]) for k in oracle.files if k.startswith(prefix)}
    assert not set(got) - keys, [describe(net, k) for k in sorted(set(got) - keys)]
    assert not {k for k in keys if k >= 300000} - set(got)   # a gradient only Darknet has
    for key in sorted(got, key=backward_order):
        want = oracle[f"{prefix}{key}"]
        value = np.asarray(got[key], np.float32).ravel()
        scale = max(float(np.abs(want).max()), floors[key], 1e-6)
        err = float(np.abs(value - want).max()) / scale
        assert err <= tol, f"{describe(net, key)}: max error {err:.3g} of {scale:.3g}"
    # the cases are not degenerate: most values are well above rounding
    assert np.count_nonzero(np.abs(got[INPUT_DELTA]) > 1e-4 * floors[INPUT_DELTA]) > \
        got[INPUT_DELTA].size // 4
