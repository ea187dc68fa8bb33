"""bench/torch_model.py (the PyTorch peer of the GPU benchmarks) computes what pydarknet computes:
its [yolo] outputs equal pydarknet's CPU forward on random weights. Skipped without torch
(CI has none; `pip install torch==2.13.0` installs the local CPU build)."""

import pathlib
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch==2.13.0)")

import pydarknet  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from torch_model import TorchDarknet  # noqa: E402


def rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


@pytest.mark.parametrize("cfg,size", [("yolov4-tiny.cfg", 160), ("yolov4.cfg", 128)])
def test_yolo_outputs_equal_pydarknet_cpu(cfg, size):
    net = pydarknet.Network(ROOT / "cfg" / cfg, batch=1, width=size, height=size)
    x = np.random.default_rng(1).uniform(0, 1, (1, 3, size, size)).astype(np.float32)
    net.forward(x)
    ours = [net.outputs[l.index] for l in net.layers if l.layer_type == "yolo"]
    torch.set_num_threads(2)
    with torch.no_grad():
        theirs = [h.numpy() for h in TorchDarknet(net).eval()(torch.from_numpy(x))]
    assert len(ours) == len(theirs) > 0
    errors = [rel(t, o.reshape(t.shape)) for o, t in zip(ours, theirs)]
    assert max(errors) <= 1e-4, f"yolo heads off (max|a-b|/max|b|): {errors}"


def test_every_layer_equal_on_yolov4_tiny():
    """Each layer, not only the heads (a wrong route or maxpool shows where it is)."""
    net = pydarknet.Network(ROOT / "cfg" / "yolov4-tiny.cfg", batch=1, width=96, height=96)
    x = np.random.default_rng(2).uniform(0, 1, (1, 3, 96, 96)).astype(np.float32)
    net.forward(x)
    with torch.no_grad():
        outs = TorchDarknet(net).eval()(torch.from_numpy(x), every=True)
    bad = {}
    for l, t in zip(net.layers, outs):
        e = rel(t.numpy(), net.outputs[l.index].reshape(t.shape))
        if e > 1e-4:
            bad[(l.index, l.layer_type)] = e
    assert not bad, f"layers off by more than 1e-4: {bad}"


def test_unsupported_layer_is_named():
    cfg = """[net]
width=32
height=32
channels=3
[convolutional]
filters=4
size=3
pad=1
activation=leaky
[reorg]
stride=2
"""
    net = pydarknet.network.load_cfg_text(cfg, batch=1)
    with pytest.raises(NotImplementedError, match=r"layer 1 \[reorg"):
        TorchDarknet(net)
