"""binary=1 and xnor=1 convolutions (XNOR-Net; tiny-yolo_xnor.cfg, yolov3-tiny_xnor.cfg,
darknet53_448_xnor.cfg) as AB's GPU build runs them, forward and backward.

AB's CPU build cannot be the oracle here: its forward passes the whole weight count as each
filter's size to binarize_weights (reading past the weights from the second filter on) and
its backward ignores xnor. The GPU build (forward_convolutional_layer_gpu,
backward_convolutional_layer_gpu): each filter's weights become +-(the mean of their absolute
values), xnor inputs +-1 (x >= 0: +1); the weights' gradient comes from the binarized input, the
input's through the binarized weights, times hardtan's gradient at the real input. So the
oracle is the plain convolution of the binarized tensors.
"""

import numpy as np
import pytest

from pydarknet.host_math import binarize_weights
from pydarknet.network import load_cfg_text
from pydarknet.passes import PassState, forward_pass

f32 = np.float32
NET = ("[net]\nbatch=2\nwidth=9\nheight=7\nchannels=3\n"
       "[convolutional]\nfilters=4\nsize=1\nactivation=relu\n"
       "[convolutional]\nfilters=5\nsize=3\nstride={stride}\npad=1\nbatch_normalize={bn}\n"
       "activation=leaky\n{binary}\n")




def pair(kind, stride=1, bn=1):
    """The binary/xnor network and the same network with a plain convolution, same weights."""
    nets = [load_cfg_text(NET.format(stride=stride, bn=bn, binary=b))
            for b in (f"{kind}=1", "")]
    nets[0].layers[1].params["weights"][0, 0, :2, :2] = 0     # a zero weight gives -mean
    for a, b in zip(*(n.layers for n in nets)):
        for k in a.params:
            b.params[k] = a.params[k].copy()
    return nets


@pytest.mark.parametrize("kind", ["binary", "xnor"])
@pytest.mark.parametrize("stride", [1, 2])
def test_forward_is_the_plain_convolution_of_the_binarized_tensors(kind, stride):
    """(The relu before it gives zeros, which xnor binarizes to +1.)"""
    net, plain = pair(kind, stride)
    rng = np.random.default_rng(stride)
    x = rng.standard_normal((2, 3, 7, 9)).astype(f32)
    plain.layers[1].params["weights"][...] = binarize_weights(net.layers[1].params["weights"])
    net.forward(x)
    h = np.array(net.outputs[0])
    hin = np.where(h >= 0, f32(1), f32(-1)) if kind == "xnor" else h
    expected = np.array(plain.layers[1].forward(hin, PassState(plain.backend, hin,
                                                                network=plain)))
    np.testing.assert_allclose(np.array(net.outputs[1]), expected, rtol=1e-5, atol=1e-6)
    # the real weights are left as they were
    assert not np.array_equal(net.layers[1].params["weights"],
                              plain.layers[1].params["weights"])


@pytest.mark.parametrize("kind", ["binary", "xnor"])
def test_backward_uses_the_binarized_tensors_and_hardtan(kind):
    net, plain = pair(kind, bn=0)
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((2, 3, 7, 9)) * 2).astype(f32)
    r = rng.standard_normal((2, 5, 7, 9)).astype(f32)
    for n in (net, plain):
        n.ensure_training()
    plain.layers[1].params["weights"][...] = binarize_weights(net.layers[1].params["weights"])

    state = forward_pass(net, x, train=True)
    h = np.array(state.outputs[0])
    state.deltas[1][...] = r
    net.layers[1].backward(state)       # (layer 0's backward would apply relu's gradient)

    # the plain layer on the binarized input, by hand: one pass of layer 1 alone
    hin = np.where(h >= 0, f32(1), f32(-1)) if kind == "xnor" else h
    ps = PassState(plain.backend, hin, train=True, network=plain)
    out = plain.layers[1].forward(hin, ps)
    ps.outputs = [hin, out]
    ps.deltas[1][...] = r
    plain.layers[1].backward(ps)
    np.testing.assert_allclose(net.layers[1].grads["weights"],
                               plain.layers[1].grads["weights"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.layers[1].grads["biases"], plain.layers[1].grads["biases"],
                               rtol=1e-5, atol=1e-6)
    dx = np.array(ps.deltas[0])
    if kind == "xnor":
        dx = dx * ((h > -1) & (h < 1))
    np.testing.assert_allclose(np.array(state.deltas[0]), dx, rtol=1e-5, atol=1e-6)


def test_xnor_network_trains():
    net = load_cfg_text(NET.format(stride=1, bn=1, binary="xnor=1").replace(
        "batch=2", "batch=2\nlearning_rate=0.01\nmomentum=0.9\ndecay=0.0005")
        + "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n[avgpool]\n"
          "[softmax]\n[cost]\ntype=sse\n")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 9)).astype(f32)
    t = np.array([[1, 0], [0, 1]], f32)
    losses = [net.train_iteration(x, t) for _ in range(30)]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_binarization_values():
    from pydarknet.host_math import binarize_signs
    w = np.array([[[[1, -2], [0, 3]]], [[[-0.5, 0.5], [0.25, -0.25]]]], f32)
    np.testing.assert_array_equal(binarize_weights(w).reshape(2, 4),
                                  [[1.5, -1.5, -1.5, 1.5], [-0.375, 0.375, 0.375, -0.375]])
    np.testing.assert_array_equal(binarize_signs(np.array([-1, -0.0, 0, 2, np.nan], f32)),
                                  [-1, 1, 1, 1, -1])
