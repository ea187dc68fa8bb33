"""Three training iterations equal Darknet's (-gpusem runs: Darknet's formulas, CPU bugs fixed)."""

import json

import numpy as np
import pytest

import pydarknet
from pydarknet.network import load_cfg_text
from pydarknet.passes import check_truths
from pydarknet.train.iteration import train_pass

RUNS = ["mini-classifier-gpusem", "mini-classifier-gpusem-burnin", "mini-yolo-a-gpusem",
        "mini-yolo-a-gpusem-burnin"]


def rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def setup(ref, run, device="cpu"):
    name = run.split("-gpusem")[0]
    cfg = ref / "mini" / f"{name}-train{'-burnin' if run.endswith('burnin') else ''}.cfg"
    net = pydarknet.load(cfg, ref / "mini" / "forward" / name / "init.weights", device=device)
    return net, cfg, ref / "mini" / "train" / run


def check_three_iterations(ref, run, device="cpu", tol=1e-5):
    """Train 3 iterations on ``device``; losses and weights must equal Darknet's within tol."""
    net, cfg, folder = setup(ref, run, device)
    log = json.loads((folder / "train_log.json").read_text())
    for k in (1, 2, 3):
        loss = net.train_iteration(np.load(folder / f"input_iter{k}.npy"),
                                   np.load(folder / f"truth_iter{k}.npy"))
        want = log["iterations"][k - 1]
        assert abs(loss - want["loss"]) <= tol * abs(want["loss"]), (k, loss, want["loss"])
        assert net.seen == want["seen"] and net.iteration == k
        assert abs(net.learning_rate - want["learning_rate_used"]) <= 1e-6 * want[
            "learning_rate_used"]
        darknet = pydarknet.load(cfg, folder / f"iter{k}.weights")
        assert darknet.seen == want["seen"]
        net.params_to_host()
        bad = {(a.index, p): rel(a.params[p], b.params[p]) for a, b in zip(net.layers,
                                                                           darknet.layers)
               for p in b.params if rel(a.params[p], b.params[p]) > tol}
        assert not bad, f"iteration {k}: weights off by more than {tol}: {bad}"


@pytest.mark.parametrize("run", RUNS)
def test_three_iterations_match_darknet(ref, run):
    check_three_iterations(ref, run)


@pytest.mark.parametrize("run", ["mini-classifier-gpusem", "mini-yolo-a-gpusem"])
@pytest.mark.parametrize("sub", [0, 1])
def test_iteration_one_outputs_and_deltas_match_darknet(ref, run, sub):
    check_iteration_one(ref, run, sub)


def check_iteration_one(ref, run, sub, device="cpu", tol=1e-4):
    """Layer outputs and deltas of subdivision ``sub`` of iteration 1 equal Darknet's."""
    net, cfg, folder = setup(ref, run, device)
    net.ensure_training()
    x = np.load(folder / "input_iter1.npy")
    t = check_truths(net, np.load(folder / "truth_iter1.npy"), 4)
    if sub == 1:   # the second pass runs after the first (rolling statistics moved)
        train_pass(net, x[0:2], t[0:2])
    train_pass(net, x[2 * sub:2 * sub + 2], t[2 * sub:2 * sub + 2], keep_deltas=True)
    bad = {}
    dump = folder / f"iter1_sub{sub}"
    for f in sorted(dump.glob("*.npy")):
        kind, index = f.stem.split("_")
        want = np.load(f)
        got = (net.outputs if kind == "out" else net.deltas)[int(index)].reshape(want.shape)
        if rel(got, want) > tol:
            bad[f.stem] = rel(got, want)
    assert not bad, f"subdivision {sub}: off by more than {tol}: {bad}"


def test_loss_scale_leaves_the_update_unchanged(ref, tmp_path):
    """Darknet's GPU loss_scale: yolo deltas times S, rate / S, decay * S: with a power of two
    the weights after three iterations are the unscaled ones, bit for bit."""
    run = "mini-yolo-a-gpusem"
    _, cfg, folder = setup(ref, run)
    scaled = tmp_path / "scaled.cfg"
    scaled.write_text(cfg.read_text().replace("[net]", "[net]\nloss_scale=128", 1))
    weights = ref / "mini" / "forward" / "mini-yolo-a" / "init.weights"
    nets = [pydarknet.load(c, weights) for c in (cfg, scaled)]
    assert nets[1].net.loss_scale == 128
    for k in (1, 2, 3):
        x, t = np.load(folder / f"input_iter{k}.npy"), np.load(folder / f"truth_iter{k}.npy")
        losses = [n.train_iteration(x, t) for n in nets]
        assert losses[0] == losses[1]
    for a, b in zip(*(n.layers for n in nets)):
        for p in a.params:
            np.testing.assert_array_equal(a.params[p], b.params[p], err_msg=f"{a.index} {p}")
        for p in getattr(a, "momenta", {}):   # ... while the momenta carry the scale
            np.testing.assert_array_equal(b.momenta[p], np.float32(128) * a.momenta[p])
    assert any(np.abs(m).max() > 0 for l in nets[0].layers for m in l.momenta.values()
               if hasattr(l, "momenta"))


CLASSIFIER = """[net]
batch=4
subdivisions=2
width=8
height=8
channels=3
learning_rate=0.1
momentum=0.9
decay=0.0005
{scale}
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
[cost]
"""


def test_loss_scale_leaves_a_classifiers_update_unchanged():
    """AB's GPU build scales the [softmax] delta by loss_scale too: the update is the
    unscaled one, bit for bit."""
    nets = [load_cfg_text(CLASSIFIER.format(scale=s))
            for s in ("", "loss_scale=64")]
    rng = np.random.default_rng(0)
    for net in nets:
        net.init_weights(seed=3)
    for _ in range(3):
        x = rng.uniform(0, 1, (4, 3, 8, 8)).astype(np.float32)
        t = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 4)]
        assert nets[0].train_iteration(x, t) == nets[1].train_iteration(x, t)
    for a, b in zip(*(n.layers for n in nets)):
        for p in a.params:
            np.testing.assert_array_equal(a.params[p], b.params[p], err_msg=f"{a.index} {p}")
    assert np.abs(nets[1].layers[0].momenta["weights"]).max() > 0


def test_loss_scale_in_a_connected_layer_divides_its_updates():
    """Darknet's update_connected_layer_gpu: updates (gradient + momentum) / S, plain rate."""
    from types import SimpleNamespace

    from pydarknet.backend import get_backend
    from pydarknet.train.sgd import update_layer
    g = np.random.default_rng(0)
    w, u, d = (g.standard_normal(6).astype(np.float32) for _ in range(3))
    layer = SimpleNamespace(layer_type="connected", loss_scale_undone="updates",
                            learning_rate_scale=1.0,
                            decayed=("w",), params={"w": w.copy()}, grads={"w": d.copy()},
                            momenta={"w": u.copy()})
    update_layer(get_backend("cpu"), layer, 0.1, 0.9, 0.0005, 4, loss_scale=8.0)
    upd = (u + d) / np.float32(8) - np.float32(0.0005 * 4) * w
    np.testing.assert_allclose(layer.params["w"], w + np.float32(0.1 / 4) * upd, rtol=1e-6)
    np.testing.assert_allclose(layer.momenta["w"], np.float32(0.9) * upd, rtol=1e-6)
