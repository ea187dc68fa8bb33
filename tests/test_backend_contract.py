"""Layers do all their array work through the backend op API.

The opaque backend (tests/opaque_backend.py) has arrays that allow only what a GPU array
allows and returns copies from ``to_numpy``; every network here must give on it exactly what
it gives on the CPU backend. This is what lets the CUDA backend run every layer unchanged.
"""

import numpy as np
import pytest

import opaque_backend
import pydarknet
from pydarknet import backend as backend_api
from pydarknet.backend import get_backend
from pydarknet.cfg import parse_cfg_text
from pydarknet.passes import backward_pass, forward_pass
from test_forward_oracle import NETS, run as run_forward_oracle
from test_gradients import CASES, NET, STEM
from test_train_oracle import RUNS, check_iteration_one, check_three_iterations

# forward-only layers (and heads) the gradient cases do not cover
FORWARD_CASES = {
    "region": ("[convolutional]\nfilters=30\nsize=1\nactivation=linear\n"
               "[region]\nanchors=1,1,2,2,3,3,4,4,5,5\nclasses=1\ncoords=4\nnum=5\nsoftmax=1\n"),
    "gaussian-yolo": ("[convolutional]\nfilters=30\nsize=1\nactivation=linear\n"
                      "[Gaussian_yolo]\nmask=0,1,2\nanchors=1,1,2,2,3,3\nclasses=1\nnum=3\n"),
    "yolo-new-coords": ("[convolutional]\nfilters=18\nsize=1\nactivation=logistic\n"
                        "[yolo]\nmask=0,1,2\nanchors=1,1,2,2,3,3\nclasses=1\nnum=3\n"
                        "new_coords=1\nscale_x_y=2.0\n"),
    "reorg-old": "[reorg]\nstride=2\n",
    "maxpool-depth": ("[convolutional]\nfilters=4\nsize=1\nactivation=linear\n"
                      "[maxpool]\nmaxpool_depth=1\nout_channels=2\nsize=1\nstride=1\n"),
    "crop": "[crop]\ncrop_width=6\ncrop_height=4\n",
    "local": "[local]\nfilters=2\nsize=3\nstride=1\npad=1\nactivation=leaky\n",
    "softmax-groups": "[avgpool]\n[softmax]\ngroups=2\n",
    "activation": "[activation]\nactivation=mish\n",
    "normalize-channels": ("[convolutional]\nfilters=4\nsize=1\n"
                           "activation=normalize_channels_softmax\n"),
    "upsample-scale": "[upsample]\nstride=2\nscale=0.5\n",
}


def build(case_text, device, w=8, h=8):
    text = NET.format(w=w, h=h) + STEM.format(c=4) + case_text
    return pydarknet.Network(parse_cfg_text(text, "case.cfg"), seed=3, device=device)


def forward_backward(net, x, r, delta_slots=None):
    """Outputs, deltas and gradients (as numpy) of one pass with objective sum(r * y); with
    ``delta_slots`` (shared deltas, given back as backward goes) no deltas."""
    B = net.backend
    net.ensure_training()
    for layer in net.layers:
        for g in layer.grads.values():
            B.fill(g, 0)
    net.rng = np.random.default_rng(7)
    state = forward_pass(net, B.from_numpy(x), train=True, delta_slots=delta_slots)
    B.copy_from_numpy(state.deltas[-1], r)
    backward_pass(net, state)
    grads = {(l.index, k): B.to_numpy(g) for l in net.layers for k, g in l.grads.items()}
    deltas = [] if delta_slots else [B.to_numpy(d) for d in state.deltas]
    return [B.to_numpy(o) for o in state.outputs], deltas, grads


def test_every_backend_has_every_op():
    for backend in (get_backend("cpu"), opaque_backend):
        missing = [op for op in backend_api.OP_NAMES if not callable(getattr(backend, op, None))]
        assert not missing, f"{backend!r} lacks {missing}"


def test_numpy_work_on_a_backend_array_fails_loudly():
    a = opaque_backend.zeros((2, 3))
    with pytest.raises(TypeError):
        a + 1
    with pytest.raises(TypeError):
        np.asarray(a)
    with pytest.raises(TypeError, match="backend array belongs"):
        opaque_backend.add_bias(a, np.zeros(3, np.float32))


@pytest.mark.parametrize("case", list(CASES))
def test_training_pass_is_the_same_on_an_opaque_backend(case):
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    nets = [build(CASES[case], device) for device in ("cpu", opaque_backend)]
    r = np.random.default_rng(1).standard_normal(nets[0].layers[-1].out_shape(2)).astype(
        np.float32)
    (out_a, d_a, g_a), (out_b, d_b, g_b) = (forward_backward(n, x, r) for n in nets)
    for i, (a, b) in enumerate(zip(out_a, out_b)):
        np.testing.assert_array_equal(a, b, err_msg=f"output of layer {i}")
    for i, (a, b) in enumerate(zip(d_a, d_b)):
        np.testing.assert_array_equal(a, b, err_msg=f"delta of layer {i}")
    assert g_a.keys() == g_b.keys()
    for k in g_a:
        np.testing.assert_array_equal(g_a[k], g_b[k], err_msg=f"gradient {k}")


@pytest.mark.parametrize("case", list(FORWARD_CASES))
def test_forward_is_the_same_on_an_opaque_backend(case):
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    outs = []
    for device in ("cpu", opaque_backend):
        net = build(FORWARD_CASES[case], device)
        net.forward(x)
        outs.append([np.array(o) for o in net.outputs])
    for i, (a, b) in enumerate(zip(*outs)):
        np.testing.assert_array_equal(a, b, err_msg=f"output of layer {i}")


@pytest.mark.parametrize("name", NETS)
def test_forward_oracle_on_an_opaque_backend(ref, name):
    errors = run_forward_oracle(ref, name, device=opaque_backend)
    bad = {k: v for k, v in errors.items() if v > 1e-5}
    assert not bad, f"layers off by more than 1e-5: {bad}"


@pytest.mark.parametrize("run", RUNS)
def test_training_oracle_on_an_opaque_backend(ref, run):
    check_three_iterations(ref, run, device=opaque_backend)


def test_iteration_one_deltas_on_an_opaque_backend(ref):
    check_iteration_one(ref, "mini-yolo-a-gpusem", 1, device=opaque_backend)


def test_weights_and_checkpoints_move_between_host_and_device(tmp_path):
    from pydarknet.train.checkpoint import load_checkpoint_state, save_checkpoint
    text = NET.format(w=8, h=8) + STEM.format(c=4) + CASES["conv-bn-mish"]
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    dev = pydarknet.Network(parse_cfg_text(text, "a.cfg"), seed=3, device=opaque_backend)
    dev.predict(x)                              # parameters now live on the "device"
    assert isinstance(dev.layers[0].params["weights"], opaque_backend.DeviceArray)
    dev.save_weights(tmp_path / "a.weights")    # ... and come back for the file
    host = pydarknet.Network(parse_cfg_text(text, "a.cfg"), seed=9)
    host.load_weights(tmp_path / "a.weights")
    np.testing.assert_array_equal(host.predict(x), dev.predict(x))
    dev.ensure_training()
    save_checkpoint(dev, str(tmp_path / "b.weights"), {"note": 1})
    dev.forward(x)
    assert load_checkpoint_state(dev, str(tmp_path / "b.weights"))["note"] == 1
