"""``stopbackward`` as AB's GPU build trains it (its training parse and backward_network_gpu):

- ``stopbackward=1``: every layer before the last such layer is frozen: no gradient, no update,
  and its convolutions run as at inference (batch norm on the rolling statistics, which do
  not move), as in AB's *-frozen.cfg;
- ``stopbackward=N`` (N > 1, yolov4-custom.cfg's 800): the backward stops there during the
  first N iterations only; the layers below are still updated (no gradient yet: decay and
  momentum alone) and train fully afterwards.
"""

import numpy as np
import pytest

from pydarknet.network import load_cfg_text

CFG = """[net]
batch=2
subdivisions=1
width=8
height=8
channels=3
learning_rate=0.1
momentum={momentum}
decay={decay}
burn_in=0
[convolutional]
batch_normalize=1
filters=4
size=3
pad=1
activation=leaky
[convolutional]
batch_normalize=1
filters=4
size=3
pad=1
activation=mish
stopbackward={stop}
[convolutional]
filters=3
size=1
activation=linear
[cost]
type=sse
"""


def network(stop, momentum=0.0, decay=0.0):
    net = load_cfg_text(CFG.format(stop=stop, momentum=momentum, decay=decay))
    net.init_weights(seed=1)
    rng = np.random.default_rng(2)
    for layer in net.layers[:2]:
        layer.params["rolling_mean"][...] = rng.uniform(-0.2, 0.2, 4)
        layer.params["rolling_variance"][...] = rng.uniform(0.5, 2.0, 4)
    return net


def data(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 1, (2, 3, 8, 8)).astype(np.float32),
            rng.standard_normal((2, 3 * 8 * 8)).astype(np.float32))


def snapshot(layer):
    return {k: v.copy() for k, v in layer.params.items()}


def changed(before, layer):
    return {k for k, v in layer.params.items() if not np.array_equal(v, before[k])}


def test_stopbackward_1_freezes_the_layers_before_it():
    net = network(stop=1, momentum=0.9, decay=0.0005)
    x, y = data()
    frozen, stop = snapshot(net.layers[0]), snapshot(net.layers[1])
    net.predict(x[:1].repeat(2, axis=0), keep=(0,))
    want = np.array(net.outputs[0], copy=True)
    net.forward(x[:1].repeat(2, axis=0), train=True)
    # the frozen convolution runs as at inference in a training pass
    np.testing.assert_array_equal(np.asarray(net.outputs[0]), want)
    for _ in range(3):
        net.train_iteration(x, y)
    assert changed(frozen, net.layers[0]) == set()      # not even the rolling statistics
    # the stopbackward layer itself: no gradient reaches it, but it is updated (decay) and
    # its batch norm trains
    assert changed(stop, net.layers[1]) == {"weights", "rolling_mean", "rolling_variance"}


@pytest.mark.parametrize("n", [2, 3])
def test_stopbackward_n_stops_the_backward_for_the_first_n_iterations(n):
    net, plain = network(stop=n), network(stop=0)
    x, y = data()
    for iteration in range(1, n + 3):
        before = [snapshot(l) for l in net.layers[:2]]
        net.train_iteration(x, y)
        plain.train_iteration(x, y)
        # without decay and momentum only a gradient moves weights, biases and scales; the
        # batch norms train throughout
        moved = [changed(b, l) - {"rolling_mean", "rolling_variance"}
                 for b, l in zip(before, net.layers[:2])]
        if iteration <= n:
            assert moved == [set(), set()], iteration
        else:
            assert moved == [{"weights", "biases", "scales"}] * 2, iteration
    assert net.iteration == n + 2
    # the layers above trained alike all along until the backbone started to move
    assert not np.array_equal(net.layers[2].params["weights"],
                              plain.layers[2].params["weights"])


def test_stopbackward_n_leaves_decay_to_the_layers_below():
    net = network(stop=5, momentum=0.9, decay=0.01)
    x, y = data()
    w = net.layers[0].params["weights"].copy()
    net.train_iteration(x, y)
    # no gradient: u = -decay*B*w; w += lr/B*u
    np.testing.assert_allclose(net.layers[0].params["weights"], w * np.float32(1 - 0.1 * 0.01),
                               rtol=1e-6)


ONLYFORWARD = """[net]
batch=2
width=8
height=8
channels=3
learning_rate=0.1
momentum=0
decay=0
[convolutional]
filters=4
size=3
pad=1
activation=leaky
[{kind}]
{body}
{option}
[convolutional]
filters=3
size=1
activation=linear
[cost]
type=sse
"""


@pytest.mark.parametrize("kind, body", [("empty", ""), ("dropout", "probability=0"),
                                        ("convolutional", "filters=4\nsize=1")])
def test_onlyforward_stops_the_delta_but_not_at_layers_that_share_their_inputs(kind, body):
    """onlyforward=1 skips a layer's backward: nothing passes it, except at [empty] and
    [dropout], whose delta is their input's in AB's builds (found by
    tools/darknet_iteration_fuzz.py: an [empty] with onlyforward=1)."""
    def trained(option):
        net = load_cfg_text(ONLYFORWARD.format(kind=kind, body=body, option=option))
        net.init_weights(seed=1)
        net.train_iteration(*data())
        return net.layers[0].params["weights"]
    start = load_cfg_text(ONLYFORWARD.format(kind=kind, body=body, option=""))
    start.init_weights(seed=1)
    start = start.layers[0].params["weights"]
    if kind == "convolutional":
        np.testing.assert_array_equal(trained("onlyforward=1"), start)
    else:
        assert not np.array_equal(trained("onlyforward=1"), start)
        np.testing.assert_array_equal(trained("onlyforward=1"), trained(""))
