"""[crnn] at inference: AB's forward_crnn_layer with one time step, the state carried from one
pass to the next; its parameters in the .weights file as Darknet's three convolutions.
(Its training through time: tests/test_recurrent.py.)"""

import numpy as np
import pytest

from pydarknet.errors import CfgError
from pydarknet.network import load_cfg_text

f32 = np.float32
NET = "[net]\nbatch=2\nwidth=6\nheight=5\nchannels=3\n"
CRNN = ("[crnn]\nbatch_normalize={bn}\nsize=3\npad=1\noutput=4\nhidden=3\n"
        "activation=leaky\nshortcut={shortcut}\n")


def conv(params, part, x, bn):
    """One of the three convolutions, by a [convolutional] layer with the same parameters."""
    cin, cout = x.shape[1], params[f"{part}_weights"].shape[0]
    net = load_cfg_text(f"[net]\nbatch={x.shape[0]}\nwidth=6\nheight=5\nchannels={cin}\n"
                        f"[convolutional]\nbatch_normalize={bn}\nfilters={cout}\nsize=3\n"
                        f"pad=1\nactivation=leaky\n")
    for k in net.layers[0].params:
        net.layers[0].params[k][...] = params[f"{part}_{k}"]
    return np.array(net.forward(x))


@pytest.mark.parametrize("bn, shortcut", [(1, 0), (0, 1)])
def test_crnn_carries_its_state(bn, shortcut):
    net = load_cfg_text(NET + CRNN.format(bn=bn, shortcut=shortcut))
    layer = net.layers[0]
    rng = np.random.default_rng(bn)
    for k, v in layer.params.items():
        v[...] = rng.uniform(0.5, 1.5, v.shape) if "variance" in k else \
            rng.uniform(-0.5, 0.5, v.shape)
    state = np.zeros((2, 3, 5, 6), f32)
    for frame in range(3):
        x = rng.standard_normal((2, 3, 5, 6)).astype(f32)
        got = net.forward(x)
        new = conv(layer.params, "input", x, bn) + conv(layer.params, "self", state, bn)
        if shortcut:
            new = new + state
        state = new
        np.testing.assert_allclose(got, conv(layer.params, "output", state, bn), rtol=1e-5,
                                   atol=1e-5, err_msg=f"frame {frame}")
    layer.reset_state()
    x = rng.standard_normal((2, 3, 5, 6)).astype(f32)
    first = conv(layer.params, "input", x, bn) + conv(layer.params, "self",
                                                      np.zeros_like(state), bn)
    np.testing.assert_allclose(net.forward(x), conv(layer.params, "output", first, bn),
                               rtol=1e-5, atol=1e-5)


def test_crnn_weights_are_three_convolutions(tmp_path):
    net = load_cfg_text(NET + CRNN.format(bn=1, shortcut=0))
    names = [name for name, _ in net.layers[0].param_shapes()]
    assert names == [f"{p}_{k}" for p in ("input", "self", "output")
                     for k in ("biases", "scales", "rolling_mean", "rolling_variance", "weights")]
    path = str(tmp_path / "c.weights")
    net.save_weights(path)
    other = load_cfg_text(NET + CRNN.format(bn=1, shortcut=0))
    other.load_weights(path)
    for k, v in net.layers[0].params.items():
        np.testing.assert_array_equal(other.layers[0].params[k], v)
    # Darknet's order: input, self, output; each bias, scales, mean, variance, weights
    raw = np.fromfile(path, np.float32, offset=20)
    p = net.layers[0].params
    assert np.array_equal(raw[:3], p["input_biases"])
    assert np.array_equal(raw[12:12 + 81], p["input_weights"].reshape(-1))


def test_crnn_refuses_a_size_changing_convolution_when_run():
    net = load_cfg_text(NET + CRNN.format(bn=0, shortcut=0).replace("pad=1", "pad=0"))
    with pytest.raises(CfgError, match=r"keep the size"):
        net.forward(np.zeros((2, 3, 5, 6), f32))


def test_crnn_export_refuses_a_size_changing_crnn():
    """The exported state (tests/test_export_onnx.py) needs the size kept, as the forward."""
    from pydarknet.errors import NotSupportedError
    from pydarknet.export import build_onnx_model
    net = load_cfg_text(NET + CRNN.format(bn=0, shortcut=0).replace("pad=1", "pad=0"), batch=1)
    with pytest.raises(NotSupportedError, match=r"\[crnn\].*keep the size"):
        build_onnx_model(net)