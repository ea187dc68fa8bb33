"""[net] adversarial_lr (AB's GPU build's adversarial training, pydarknet.train.adversarial):
after burn_in, half of the passes train on images moved against the network by a pass with
zero truths."""

import numpy as np

from pydarknet.network import load_cfg_text
from pydarknet.passes import backward_pass, forward_pass
from pydarknet.train.adversarial import adversarial_images

f32 = np.float32
CFG = """[net]
batch=4
width=8
height=8
channels=3
max_batches=100
burn_in=10
adversarial_lr=0.5
{extra}
[convolutional]
batch_normalize=1
filters=4
size=3
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[connected]
output=3
activation=linear
[softmax]
"""


class Heads:
    """A generator stand-in whose coin always says 1 (the adversarial half)."""
    def integers(self, *a, **k):
        return 1


def network(extra=""):
    net = load_cfg_text(CFG.format(extra=extra))
    net.ensure_training()
    net.iteration = 50
    return net


def batch():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (4, 3, 8, 8)).astype(f32)
    t = np.eye(3, dtype=f32)[rng.integers(0, 3, 4)]
    return x, t


def test_the_images_move_by_the_zero_truth_pass_delta_within_0_1():
    net, plain = network(), network()
    for a, b in zip(net.layers, plain.layers):
        for k in a.params:
            b.params[k][...] = a.params[k]
    x, t = batch()
    net.rng = Heads()
    moved = adversarial_images(net, x, t, seen=4)
    assert moved.dtype == f32 and 0 <= moved.min() and moved.max() <= 1
    assert not np.array_equal(moved, x)
    # the delta as a separate pass computes it, times 0.5 * 50 / 100
    delta = plain.backend.zeros(x.shape)
    state = forward_pass(plain, x, True, np.zeros_like(t), input_delta=delta)
    backward_pass(plain, state)
    np.testing.assert_allclose(moved, np.clip(x + f32(0.25) * delta, 0, 1), atol=1e-6)


def test_the_pass_keeps_the_convolutions_weight_gradients_only():
    net = network()
    net.rng = Heads()
    for layer in net.layers:
        for g in layer.grads.values():
            g.fill(0)
    x, t = batch()
    adversarial_images(net, x, t, seen=4)
    assert not net.layers[0].grads["weights"].any()
    assert net.layers[0].grads["biases"].any() and net.layers[2].grads["weights"].any()


def test_nothing_moves_before_burn_in_or_on_the_other_half():
    net = network()
    x, t = batch()
    net.iteration = 10
    net.rng = Heads()
    assert adversarial_images(net, x, t, seen=4) is x

    class Tails:
        def integers(self, *a, **k):
            return 0
    net.iteration, net.rng = 50, Tails()
    assert adversarial_images(net, x, t, seen=4) is x


def test_contrastive_keeps_the_second_views():
    net = network("contrastive=1")
    net.rng = Heads()
    x, t = batch()
    moved = adversarial_images(net, x, t, seen=4)
    np.testing.assert_array_equal(moved[1::2], x[1::2])
    assert not np.array_equal(moved[0::2], x[0::2])


def test_a_network_trains_with_it():
    net = load_cfg_text(CFG.format(extra="burn_in=0\n").replace("burn_in=10\n", ""))
    x, t = batch()
    net.iteration = 1
    losses = [net.train_iteration(x, t) for _ in range(4)]
    assert all(np.isfinite(losses))
