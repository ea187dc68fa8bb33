"""An iteration that fails (a layer's output or the loss not finite, the wrong number of
images) raises an error that says where, and leaves the network as it was: parameters,
rolling statistics, momenta, iteration and images seen, the recurrent layers' carried state
and the random generator; the next iteration is the one it would have been."""

import numpy as np
import pytest

from pydarknet.errors import PydarknetError, ShapeError
from pydarknet.network import load_cfg_text
from test_train_oracle import CLASSIFIER

# a batch-normalised 3x3 convolution, a 1x1 one to 3 classes, [avgpool], [softmax], [cost]
CFG = CLASSIFIER.format(scale="")


def make_net():
    net = load_cfg_text(CFG)
    net.init_weights(seed=1)
    return net


def batch(seed):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 1, (4, 3, 8, 8)).astype(np.float32),
            np.eye(3, dtype=np.float32)[rng.integers(0, 3, 4)])


def state(net):
    return ({(l.index, k): np.array(v) for l in net.layers for k, v in l.params.items()},
            {(l.index, k): np.array(v) for l in net.layers
             for k, v in getattr(l, "momenta", {}).items()},
            net.iteration, net.seen)


def assert_same(a, b):
    for x, y in zip(a[:2], b[:2]):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=str(k))
    assert a[2:] == b[2:]


@pytest.mark.parametrize("bad_rows", [slice(0, 1), slice(3, 4)])   # first or second pass
def test_an_overflowing_layer_stops_the_iteration_and_changes_nothing(bad_rows):
    net, fresh = make_net(), make_net()
    for n in (net, fresh):
        n.train_iteration(*batch(0))
    before = state(net)
    x, t = batch(1)
    x[bad_rows] = 1e38          # the batch norm's variance of those sums overflows
    with pytest.raises(PydarknetError, match=r"layer 0 \(convolutional\) produced NaN or inf "
                                             r"at iteration 2; weights are left as they were"):
        net.train_iteration(x, t)
    assert_same(state(net), before)
    x, t = batch(2)
    assert net.train_iteration(x, t) == fresh.train_iteration(x, t)
    assert_same(state(net), state(fresh))


def test_the_wrong_number_of_images_is_refused_before_anything_runs():
    net = make_net()
    before = state(net)
    x, t = batch(0)
    with pytest.raises(ShapeError, match=r"one iteration takes batch=4 images \(2 "
                                         r"subdivisions of 2\), found 3"):
        net.train_iteration(x[:3], t[:3])
    with pytest.raises(ShapeError, match=r"truths must hold 4 rows"):
        net.train_iteration(x, t[:3])
    assert_same(state(net), before)


def test_an_infinite_loss_stops_the_iteration_and_changes_nothing():
    """A softmax whose truth class gets a probability of 0 (logits thousands apart): -log 0."""
    net = make_net()
    net.layers[1].params["weights"] *= np.float32(1e4)
    net.ensure_training()       # (the momenta, zero)
    before = state(net)
    x, _ = batch(0)
    least_likely = np.argmin(np.asarray(net.predict(x)).reshape(4, 3), axis=1)
    t = np.eye(3, dtype=np.float32)[least_likely]
    with pytest.raises(PydarknetError, match=r"the loss is inf at iteration 1; weights are "
                                             r"left as they were before it"):
        net.train_iteration(x, t)
    assert_same(state(net), before)


RECURRENT = """[net]
batch=2
subdivisions=2
inputs=5
time_steps=3
learning_rate=0.1
momentum=0.9
[connected]
output=4
activation=linear
[lstm]
output=3
[connected]
output=2
activation=linear
[softmax]
"""


@pytest.mark.parametrize("kind", ["dropout", "lstm"])
def test_what_the_passes_carry_is_put_back_too(kind):
    """The random generator a [dropout] draws from and the state an [lstm] carries from pass
    to pass: a failure in the second pass leaves them as they were before the iteration, so
    the next iteration equals an uninterrupted network's."""
    def make():
        if kind == "dropout":
            net = load_cfg_text(CFG.replace("[convolutional]\nfilters=3",
                                            "[dropout]\nprobability=0.3\n[convolutional]\n"
                                            "filters=3"))
            net.init_weights(seed=1)
        else:
            net = load_cfg_text(RECURRENT)
            net.init_weights(seed=1)
        return net

    def inputs(seed):
        rng = np.random.default_rng(seed)
        if kind == "dropout":
            return batch(seed)
        return (rng.uniform(0, 1, (6, 5)).astype(np.float32),
                np.eye(2, dtype=np.float32)[rng.integers(0, 2, 6)])
    net, fresh = make(), make()
    for n in (net, fresh):
        n.train_iteration(*inputs(0))
    x, t = inputs(1)
    x[len(x) // 2:] = 1e38 if kind == "dropout" else 3e38      # the second pass only
    with pytest.raises(PydarknetError, match="produced NaN or inf"):
        net.train_iteration(x, t)
    for _ in range(2):
        x, t = inputs(2)
        assert net.train_iteration(x, t) == fresh.train_iteration(x, t)
    assert_same(state(net), state(fresh))
