"""Darknet's weight tools (pydarknet.weight_tools, ``pydarknet average|denormalize|normalize|
reset|rgbgr|rescale``): each new network computes what the old one did on the matching input."""

import numpy as np
import pytest

from pydarknet.cli import main
from pydarknet.errors import PydarknetError
from pydarknet.network import load
from pydarknet.weight_tools import batchnorm_layers, swap_first_rgb

CFG = """[net]
width=12
height=10
channels=3
time_steps=1
# comments survive
[convolutional]
batch_normalize=1
filters=4
size=3
pad=1
activation=leaky

[convolutional]
filters=6
size=1
activation=mish

[connected]
output=5
batch_normalize=1
activation=linear

[lstm]
output=3
batch_normalize=1

[rnn]
output=4
hidden=4
activation=leaky
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "n.cfg").write_text(CFG)
    net = load(tmp_path / "n.cfg", batch=1)
    rng = np.random.default_rng(3)
    for layer in net.layers:
        for k, v in layer.params.items():
            v[...] = (rng.uniform(0.5, 1.5, v.shape) if k.endswith(("scales", "variance"))
                      else rng.normal(0, 0.5, v.shape))
    net.save_weights(tmp_path / "n.weights")
    return tmp_path, rng.random((2, 3, 10, 12), np.float32)


def run(*argv):
    assert main([str(a) for a in argv]) == 0


def outputs(cfg, weights, x):
    return load(cfg, weights, batch=2).predict(x)


def test_denormalize_and_normalize_keep_the_function(files):
    d, x = files
    want = outputs(d / "n.cfg", d / "n.weights", x)
    run("denormalize", d / "n.cfg", d / "n.weights", d / "d.weights", "--cfg-out", d / "d.cfg")
    text = (d / "d.cfg").read_text()
    assert text.count("batch_normalize=0") == 3 and "# comments survive" in text
    np.testing.assert_allclose(outputs(d / "d.cfg", d / "d.weights", x), want, rtol=1e-5,
                               atol=1e-5)
    denorm = load(d / "d.cfg", d / "d.weights")
    assert not batchnorm_layers(denorm, True)
    run("normalize", d / "d.cfg", d / "d.weights", d / "b.weights", "--cfg-out", d / "b.cfg")
    assert (d / "b.cfg").read_text().count("batch_normalize=1") == 5   # every layer that can
    np.testing.assert_allclose(outputs(d / "b.cfg", d / "b.weights", x), want, rtol=1e-5,
                               atol=1e-5)
    run("reset", d / "n.cfg", d / "n.weights", d / "r.weights")        # the same cfg
    r = load(d / "n.cfg", d / "r.weights")
    assert np.all(r.layers[0].params["scales"] == 1)
    np.testing.assert_allclose(outputs(d / "n.cfg", d / "r.weights", x), want, rtol=1e-5,
                               atol=1e-5)


def test_first_layer_input_conversions(files):
    d, x = files
    want = outputs(d / "n.cfg", d / "n.weights", x)
    run("rgbgr", d / "n.cfg", d / "n.weights", d / "g.weights")
    np.testing.assert_allclose(outputs(d / "n.cfg", d / "g.weights", x[:, ::-1].copy()), want,
                               rtol=1e-5, atol=1e-6)
    # rescale: the first layer on [0, 1] inputs is the old one on [-1, 1], away from the zero
    # padding (which stands for -1 after the change); with batch norm and without
    (d / "p.cfg").write_text(CFG.replace("batch_normalize=1\nfilters=4", "filters=4"))
    plain = load(d / "p.cfg", batch=1)             # no batch norm first: the bias takes it
    plain.layers[0].params["biases"][...] = [0.3, -0.2, 0.1, 0.5]
    plain.save_weights(d / "p.weights")
    for cfg, weights in (("n.cfg", "n.weights"), ("p.cfg", "p.weights")):
        run("rescale", d / cfg, d / weights, d / "s.weights")
        old, new = load(d / cfg, d / weights, batch=2), load(d / cfg, d / "s.weights", batch=2)
        old.forward(x * 2 - 1)
        new.forward(x)
        np.testing.assert_allclose(new.outputs[0][..., 1:-1, 1:-1],
                                   old.outputs[0][..., 1:-1, 1:-1], rtol=1e-5, atol=1e-5)
    grey = load(d / "n.cfg", batch=1)
    grey.layers[0].c = 1
    assert swap_first_rgb(grey) is None


def test_average(files, capsys):
    d, _ = files
    run("reset", d / "n.cfg", d / "n.weights", d / "r.weights")
    run("average", d / "n.cfg", d / "a.weights", d / "n.weights", d / "r.weights")
    a, n, r = (load(d / "n.cfg", d / f) for f in ("a.weights", "n.weights", "r.weights"))
    for la, ln, lr in zip(a.layers, n.layers, r.layers):
        for k in la.params:
            np.testing.assert_allclose(la.params[k], (ln.params[k] + lr.params[k]) / 2,
                                       rtol=1e-6, atol=1e-7)
    assert "the mean of 2 files" in capsys.readouterr().out


def test_shared_weights_are_refused(tmp_path):
    cfg = CFG.replace("[connected]", "[convolutional]\nfilters=4\nsize=1\n\n"
                      "[convolutional]\nfilters=6\nsize=1\nshare_index=1\n\n[connected]")
    (tmp_path / "s.cfg").write_text(cfg)
    net = load(tmp_path / "s.cfg", batch=1)
    with pytest.raises(PydarknetError, match=r"layer 1 \[convolutional\] shares its weights"):
        batchnorm_layers(net, True)
