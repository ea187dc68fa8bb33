"""tools/darknet_forward_oracle.py's judge of random cfgs against Darknet: a difference that
pydarknet's own change explains (its input, parameters and every layer's output moved by
2^-20) is rounding; one past it is an alarm. The fuzzer needs a Darknet build; its judge
does not."""

import sys

import numpy as np

from conftest import ROOT
from pydarknet.network import load_cfg_text

sys.path.insert(0, str(ROOT / "tools"))
import darknet_forward_oracle as oracle  # noqa: E402

BASE = np.linspace(-1, 1, 50, dtype=np.float32)


def runner(spread, values=BASE):
    """A run() of one layer whose moved output changes by ``spread`` (of its largest)."""
    def run(move):
        out = values if move is None else values + np.float32(spread) * move.uniform(-1, 1, 50)
        return [(0, "layer 0 conv", out.astype(np.float32), 0.0, 0)]
    return run


def test_a_difference_within_ten_times_the_spread_is_rounding():
    want = {0: BASE + np.float32(5e-4)}
    assert oracle.judge(runner(1e-4), want, 1e-4)[0] == "rounding"
    assert oracle.judge(runner(1e-6), want, 1e-4)[0] == "differs"
    assert oracle.judge(runner(0.0), {0: BASE + np.float32(1e-5)}, 1e-4) == ("ok", "")


def test_nan_where_darknet_has_none_is_rounding_only_where_the_move_moves_it():
    values = BASE.copy()
    values[3] = np.nan
    want = {0: BASE.copy()}

    def edge(move):         # the moved network's NaN falls elsewhere
        out = values.copy()
        if move is not None:
            out[3], out[4] = 0.5, np.nan
        return [(0, "layer 0 normalization", out, 0.0, 0)]
    assert oracle.judge(edge, want, 1e-4)[0] == "rounding"
    assert oracle.judge(runner(1e-3, values), want, 1e-4)[0] == "nan"


def test_nan_only_in_darknets_where_pydarknet_has_a_logistics_0_or_above_88_is_explained():
    values = BASE.copy()
    values[:3] = 0
    want = BASE.copy()
    want[:3] = np.nan

    def head(name, out):
        return lambda move: [(0, name, out, 0.0, 0)]
    assert oracle.judge(head("layer 0 yolo", values), {0: want}, 1e-4)[0] == "ofast nan"
    assert oracle.judge(head("layer 0 delta", values), {0: want}, 1e-4)[0] == "ofast nan"
    assert oracle.judge(head("layer 0 conv", values), {0: want}, 1e-4)[0] == "darknet nan"
    values[1] = 0.5     # a NaN where pydarknet has a number is no logistic's underflow
    assert oracle.judge(head("layer 0 yolo", values), {0: want}, 1e-4)[0] == "darknet nan"
    values[:3] = [90, 100, 1e4]     # AB's elu or selu of x above 88: 0 * inf
    assert oracle.judge(head("layer 0 shortcut", values), {0: want}, 1e-4)[0] == "elu nan"


def test_moved_moves_parameters_and_every_layers_output_by_rounding_sizes():
    text = ("[net]\nbatch=1\nwidth=6\nheight=5\nchannels=2\n"
            "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=leaky\n"
            "[activation]\nactivation=stair\n")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (1, 2, 5, 6)).astype(np.float32)
    plain = load_cfg_text(text, batch=1)
    oracle.randomize(plain, rng)
    params = {k: np.array(v) for k, v in plain.layers[0].params.items()}
    plain.forward(x)
    conv = np.array(plain.outputs[0])
    net = load_cfg_text(text, batch=1)
    net.layers[0].params.update({k: v.copy() for k, v in params.items()})
    x2 = oracle.moved(net, x, np.random.default_rng(1))
    assert 0 < np.abs(x2 - x).max() <= 2 ** -20
    w = np.asarray(net.layers[0].params["weights"])
    assert 0 < np.abs(w - params["weights"]).max() <= 2 ** -20 * np.abs(params["weights"]).max()
    net.forward(x)                  # the layers' outputs move even on the same input
    assert 0 < np.abs(np.array(net.outputs[0]) - conv).max() <= 2 ** -18 * np.abs(conv).max()
    # stair keeps x's bits above 2^-24 only: its output moves by up to 2^-23 as well
    stair = np.abs(np.array(net.outputs[1]) - np.array(plain.outputs[1])).max()
    assert 0 < stair <= 2 ** -23 + 2 ** -18
