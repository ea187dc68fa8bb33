"""[net] ema_alpha: Darknet's moving average of the convolutional weights (pydarknet.train.ema),
started at max_batches / 2, applied at max_batches - 1000, saved as _ema.weights and resumed."""

import numpy as np
import pytest

import pydarknet
from pydarknet.cli.train import run_training
from pydarknet.data import make_shapes_detection
from test_train_loop import small_cfg

CLASSIFIER = """[net]
batch=4
subdivisions=2
width=8
height=8
channels=3
learning_rate=0.1
momentum=0.9
decay=0.0005
max_batches={max_batches}
ema_alpha=0.75
[convolutional]
batch_normalize=1
filters=4
size=3
pad=1
activation=mish
[convolutional]
filters=3
size=1
activation=linear
[avgpool]
[softmax]
"""


def _iterate(net, rng):
    x = rng.random((4, 3, 8, 8), dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 4)]
    net.train_iteration(x, y)


def _conv_params(net):
    return {(l.index, k): l.params[k].copy() for l in net.layers
            if l.layer_type == "convolutional" for k in ("weights", "biases", "scales")
            if k in l.params}


def test_darknet_rule_start_average_apply():
    net = pydarknet.network.load_cfg_text(CLASSIFIER.format(max_batches=2004))
    rng = np.random.default_rng(0)
    net.iteration = 1000
    _iterate(net, rng)                                # 1001: before max_batches / 2
    assert net.ema is None
    _iterate(net, rng)                                # 1002: starts from these weights
    assert net.ema.event == "EMA initialization"
    start = _conv_params(net)
    assert set(net.ema.arrays) == set(start)
    _iterate(net, rng)                                # 1003: averaged, Darknet's float32 formula
    alpha = np.float32(0.75)
    expected = {k: alpha * v + (np.float32(1) - alpha) * net.layers[k[0]].params[k[1]]
                for k, v in start.items()}
    for k, v in expected.items():
        np.testing.assert_array_equal(net.ema.arrays[k], v)
    rolling = net.layers[0].params["rolling_mean"].copy()
    _iterate(net, rng)                                # 1004 = max_batches - 1000: applied
    assert net.ema.event == "ema_apply()"
    for k, v in expected.items():
        np.testing.assert_array_equal(net.layers[k[0]].params[k[1]], v)
    assert not np.array_equal(net.layers[0].params["rolling_mean"], rolling)   # not averaged
    _iterate(net, rng)                                # past it: nothing more
    assert net.ema.event is None
    for k, v in expected.items():
        np.testing.assert_array_equal(net.ema.arrays[k], v)


def test_frozen_layers_keep_their_weights():
    """AB's training parse gives the layers before the last stopbackward=1 no averages:
    ema_apply leaves them as they are (an average of a constant could round an ulp off)."""
    cfg = CLASSIFIER.format(max_batches=2004).replace(
        "[convolutional]\nfilters=3", "[convolutional]\nstopbackward=1\nfilters=3")
    net = pydarknet.network.load_cfg_text(cfg.replace("ema_alpha=0.75", "ema_alpha=0.9"))
    rng = np.random.default_rng(0)
    net.iteration = 1001
    frozen = net.layers[0].params["weights"].copy()
    for _ in range(3):                                # 1002 start, 1003, 1004 applied
        _iterate(net, rng)
    assert net.ema.event == "ema_apply()"
    assert {k[0] for k in net.ema.arrays} == {1}
    np.testing.assert_array_equal(net.layers[0].params["weights"], frozen)


def test_without_ema_alpha_nothing_is_kept():
    net = pydarknet.network.load_cfg_text(CLASSIFIER.format(max_batches=2).replace(
        "ema_alpha=0.75", ""))
    _iterate(net, np.random.default_rng(0))
    _iterate(net, np.random.default_rng(1))
    assert net.ema is None


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shapes")
    return make_shapes_detection(str(folder / "shapes"), train=32, valid=8, size=160, seed=1)


def test_ema_weights_are_saved_beside_last_and_resume_exactly(tmp_path, shapes):
    cfg = small_cfg(tmp_path, batch=2)
    text = cfg.read_text()
    cfg.write_text(text.replace("[net]", "[net]\nema_alpha=0.9\n", 1)
                   .replace(_line(text, "max_batches"), "max_batches=4")
                   .replace(_line(text, "width"), "width=96")
                   .replace(_line(text, "height"), "height=96"))
    quiet = lambda line: None  # noqa: E731
    a, b = tmp_path / "a", tmp_path / "b"
    run_training(cfg, shapes["data"], seed=5, backup=str(a), log=quiet)
    run_training(cfg, shapes["data"], seed=5, backup=str(b), max_batches=2, log=quiet)
    at_two = pydarknet.load(cfg, b / "demo-shapes_final.weights")
    run_training(cfg, shapes["data"], str(b / "demo-shapes_final.weights"), seed=5,
                 backup=str(b), log=quiet)
    ema_a = pydarknet.load(cfg, a / "demo-shapes_ema.weights")
    ema_b = pydarknet.load(cfg, b / "demo-shapes_ema.weights")
    final = pydarknet.load(cfg, a / "demo-shapes_final.weights")
    # started at iteration 2 (max_batches / 2); max_batches - 1000 < 2: never updated again
    for la, lb, l2, lf in zip(ema_a.layers, ema_b.layers, at_two.layers, final.layers):
        for name in la.params:
            np.testing.assert_array_equal(la.params[name], lb.params[name])
            averaged = la.layer_type == "convolutional" and name in ("weights", "biases",
                                                                      "scales")
            np.testing.assert_array_equal(la.params[name],
                                          (l2 if averaged else lf).params[name])


def _line(text, key):
    return next(line for line in text.splitlines() if line.replace(" ", "").startswith(key + "="))
