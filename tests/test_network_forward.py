"""Network.forward in training mode: Darknet's training-mode forward without a backward pass."""

import numpy as np
import pytest

import pydarknet
from pydarknet.passes import check_truths
from test_train_oracle import rel, setup

TINY_DETECTOR = """[net]
width=16
height=16
channels=3
batch=2
[convolutional]
filters=8
size=3
pad=1
batch_normalize=1
activation=mish
[dropout]
probability=0.5
[convolutional]
filters=14
size=1
activation=linear
[yolo]
mask=0,1
anchors=4,4, 8,8
classes=2
num=2
"""


def test_training_forward_with_truths_gives_darknet_outputs_and_loss_deltas(ref):
    """The first pass of Darknet's iteration 1, through forward(train=True, truths=...)."""
    net, _, folder = setup(ref, "mini-yolo-a-gpusem")
    x = np.load(folder / "input_iter1.npy")[0:2]
    t = np.load(folder / "truth_iter1.npy")[0:2]
    net.forward(x, train=True, truths=t)
    assert net.cost is not None and net.cost > 0
    heads = {l.index for l in net.layers if l.layer_type == "yolo"}
    checked = 0
    for f in sorted((folder / "iter1_sub0").glob("*.npy")):
        kind, index = f.stem.split("_")
        index = int(index)
        if kind == "delta" and index not in heads:
            continue             # no backward pass: only the loss layers' deltas are set
        want = np.load(f)
        got = (net.outputs if kind == "out" else net.deltas)[index].reshape(want.shape)
        assert rel(got, want) <= 1e-4, f.stem
        checked += 1
    assert checked > len(heads)


def test_training_forward_without_truths_uses_batch_statistics_and_dropout():
    net = pydarknet.network.load_cfg_text(TINY_DETECTOR)
    x = np.random.default_rng(0).uniform(0, 1, (2, 3, 16, 16)).astype(np.float32)
    inference = net.forward(x)
    before = net.layers[0].params["rolling_mean"].copy()
    trained = net.forward(x, train=True)
    assert trained.shape == inference.shape and not np.allclose(trained, inference)
    dropped = net.outputs[1]
    assert 0.3 < float((dropped == 0).mean()) < 0.7         # dropout's mask, from net.rng
    assert not np.array_equal(net.layers[0].params["rolling_mean"], before)
    assert net.cost is None                                   # no truths: no loss
    assert all(float(np.abs(d).max()) == 0 for d in net.deltas)


def test_truths_need_training_mode_and_are_checked():
    net = pydarknet.network.load_cfg_text(TINY_DETECTOR)
    x = np.zeros((2, 3, 16, 16), np.float32)
    truths = np.zeros((2, 4, 5), np.float32)
    with pytest.raises(ValueError, match="train=True"):
        net.forward(x, truths=truths)
    truths[0, 0] = (0.5, 0.5, 0.2, 0.2, 7)
    with pytest.raises(pydarknet.ShapeError, match="class 7"):
        net.forward(x, train=True, truths=truths)


def test_training_forward_cost_equals_the_iterations_first_pass():
    net = pydarknet.network.load_cfg_text(TINY_DETECTOR)
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (2, 3, 16, 16)).astype(np.float32)
    truths = np.zeros((2, 3, 5), np.float32)
    truths[:, 0] = (0.4, 0.6, 0.3, 0.25, 1)
    twin = pydarknet.network.load_cfg_text(TINY_DETECTOR)
    net.rng, twin.rng = np.random.default_rng(5), np.random.default_rng(5)
    net.forward(x, train=True, truths=truths)
    loss = twin.train_iteration(x, truths)                   # batch 2, one subdivision
    assert net.cost == pytest.approx(loss * 2, rel=1e-6)     # the iteration divides by batch
    assert check_truths(net, truths, 2).shape == (2, 3, 6)


def test_contrastive_layer_passes_its_input_on_at_inference():
    """yolov4-tiny_contrastive.cfg runs for detection: [contrastive] is AB's GPU copy at
    inference (test_contrastive: its training); one that does not point at a [yolo] layer
    is refused for training with the layer named."""
    from pydarknet.errors import CfgError
    from pydarknet.network import load_cfg_text
    net = load_cfg_text("[net]\nbatch=2\nwidth=8\nheight=8\nchannels=3\n"
                        "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n"
                        "[contrastive]\nclasses=1\nyolo_layer=-1\n")
    x = np.random.default_rng(0).random((2, 3, 8, 8), dtype=np.float32)
    out = net.forward(x)
    assert out.shape == (2, 4 * 8 * 8, 1, 1)         # Darknet's out_w/h/c stay 0
    np.testing.assert_array_equal(out.reshape(2, -1), net.outputs[0].reshape(2, -1))
    with pytest.raises(CfgError, match=r"layer 1: yolo_layer= must point to a \[yolo\]"):
        net.forward(x, train=True)
