"""Every layer's output equals Darknet's on the reference mini networks."""

import json

import numpy as np
import pytest

import pydarknet
import reference_backend

NETS = ["mini-yolo-a", "mini-yolo-b", "mini-classifier"]


def run(ref, name, backend=None, device="cpu"):
    folder = ref / "mini" / "forward" / name
    net = pydarknet.load(ref / "mini" / f"{name}.cfg", folder / "init.weights", batch=1,
                         device=device)
    if backend is not None:
        net._backend = backend
    net.forward(np.load(folder / "input.npy"))
    manifest = json.loads((folder / "manifest.json").read_text())
    errors = {}
    for entry in manifest["layers"]:
        want = np.load(folder / entry["file"])
        got = net.outputs[entry["index"]].reshape(want.shape)
        errors[(entry["index"], entry["type"])] = float(
            np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))
    return errors


@pytest.mark.parametrize("name", NETS)
def test_every_layer_matches_darknet(ref, name):
    errors = run(ref, name)
    bad = {k: v for k, v in errors.items() if v > 1e-5}
    assert not bad, f"layers off by more than 1e-5 (max|a-b|/max|b|): {bad}"


@pytest.mark.parametrize("name", NETS)
def test_layers_match_darknet_on_the_numpy_reference_backend(ref, name):
    """The layer logic alone (no C core) is right: an independent check of the layers."""
    errors = run(ref, name, reference_backend)
    bad = {k: v for k, v in errors.items() if v > 1e-5}
    assert not bad, f"layers off by more than 1e-5: {bad}"
