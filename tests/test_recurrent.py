"""Darknet's recurrent layers ([rnn], [lstm], [gru]): time steps, the state carried between
passes, gradients through time, .weights I/O and training."""

import pathlib

import numpy as np
import pytest

import pydarknet
from pydarknet.cfg import parse_cfg_text
from pydarknet.network import load_cfg_text
from pydarknet.passes import backward_pass, forward_pass
from test_darknet_forward import fill_xorshift
from test_yolo_loss import xorshift_uniform

NET = "[net]\nbatch={batch}\nsubdivisions=1\ninputs=5\ntime_steps={steps}\n"
STEM = "[connected]\noutput=4\nactivation=linear\n"
# [crnn]'s input is an image: the stem's 36 outputs seen as 3 x 3 x 4
IMAGE = ("[net]\nbatch={batch}\nsubdivisions=1\nwidth=3\nheight=2\nchannels=2\n"
         "time_steps={steps}\n[convolutional]\nfilters=4\nsize=1\nactivation=linear\n")

CASES = {
    "rnn-leaky": "[rnn]\noutput=3\nhidden=4\nactivation=leaky\n",
    "rnn-bn-shortcut-logistic": "[rnn]\nbatch_normalize=1\noutput=3\nshortcut=1\nlogistic=1\n"
                                "activation=tanh\n",
    "rnn-mish": "[rnn]\noutput=3\nactivation=mish\n",
    "lstm": "[lstm]\noutput=3\n",
    "lstm-bn-two": "[lstm]\nbatch_normalize=1\noutput=3\n[lstm]\noutput=2\n",
    "gru": "[gru]\noutput=3\n",
    "gru-tanh-bn": "[gru]\nbatch_normalize=1\ntanh=1\noutput=3\n",
    "rnn-gru-lstm": "[rnn]\noutput=3\nactivation=leaky\n[gru]\noutput=3\n[lstm]\noutput=2\n",
    "all-bn": ("[rnn]\nbatch_normalize=1\noutput=3\nshortcut=1\nactivation=mish\n"
               "[gru]\nbatch_normalize=1\ntanh=1\noutput=3\n[lstm]\nbatch_normalize=1\noutput=2\n"),
    "crnn": "[crnn]\nsize=3\npad=1\nhidden=3\noutput=2\nactivation=tanh\n",
    "conv_lstm": "[conv_lstm]\nsize=3\npad=1\noutput=2\nactivation=leaky\n",
    "conv_lstm-peephole-bn-clamp": "[conv_lstm]\nbatch_normalize=1\nsize=3\npad=1\n"
                                   "output=2\npeephole=1\nstate_constrain=1\n"
                                   "lstm_activation=mish\n",
    # (a smooth activation: a 1x1 convolution's bias moves its few values past leaky's kink)
    "history-conv_lstm": "[history]\nhistory_size=3\n[conv_lstm]\nsize=1\noutput=2\n"
                         "activation=tanh\n",
    "crnn-bn-shortcut-groups": "[crnn]\nbatch_normalize=1\nsize=3\npad=1\nhidden=4\n"
                               "output=2\ngroups=2\nshortcut=1\nactivation=tanh\n",
}


def make(case, batch=2, steps=3, seed=3, device="cpu"):
    if "batch_normalize" in CASES[case]:
        # Darknet's batch-norm backward takes the variance as 1/N, its forward as 1/(N-1):
        # the gradient is exact only as N grows (the objective's float32 noise with it)
        batch = 256
    head = IMAGE if case.startswith(("crnn", "conv_lstm", "history")) else NET + STEM
    text = head.format(batch=batch, steps=steps) + CASES[case]
    net = pydarknet.Network(parse_cfg_text(text, f"{case}.cfg"), seed=seed, device=device)
    rng = np.random.default_rng(11)
    for layer in net.layers:           # non-trivial parameters everywhere
        for name, p in layer.params.items():
            if name.endswith(("rolling_variance", "scales")):
                p[...] = rng.uniform(0.5, 1.5, p.shape)
            else:
                p[...] += rng.uniform(-0.3, 0.3, p.shape).astype(np.float32)
    return net


def recurrent_layers(net):
    return [layer for layer in net.layers if hasattr(layer, "state_shapes")]


def set_states(net, states):
    for layer in net.layers:
        if layer.layer_type == "history":
            layer.reset_state()
    for layer, arrays in zip(recurrent_layers(net), states):
        layer._state = [a.copy() for a in arrays]
        layer._backend_of_state = net.backend


def objective(net, x, r, states, backward=False):
    set_states(net, states)
    state = forward_pass(net, x, train=True)
    L = float((r.astype(np.float64) * state.outputs[-1].reshape(r.shape)).sum())
    if backward:
        for layer in net.layers:
            for g in layer.grads.values():
                g[...] = 0
        state.deltas[-1][...] = r.reshape(state.deltas[-1].shape)
        backward_pass(net, state)
    return L


@pytest.mark.parametrize("case", list(CASES))
def test_backward_through_time_matches_finite_differences(case):
    net = make(case)
    net.ensure_training()
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (net.batch,) + net.input_shape).astype(np.float32)
    r = rng.uniform(-1, 1, net.layers[-1].out_shape(net.batch)).astype(np.float32)
    # the pass starts from a state an earlier pass left (it gets no gradient; [rnn] and
    # [crnn] start training passes from zero, as AB's)
    streams = net.batch // net.net.time_steps
    states = [[rng.uniform(-0.5, 0.5, s).astype(np.float32) for s in l.state_shapes(streams)]
              for l in recurrent_layers(net)]
    objective(net, x, r, states, backward=True)
    grads = {(l.index, k): g.copy() for l in net.layers for k, g in l.grads.items()}
    checked = kinks = 0
    for (index, name), grad in grads.items():
        p = net.layers[index].params[name]
        scale = max(np.abs(grad).max(), 1e-3)
        for flat in rng.choice(p.size, size=min(5, p.size), replace=False):
            idx = np.unravel_index(flat, p.shape)
            estimates = []
            for eps in (2e-3, 5e-4):
                old = p[idx].copy()
                p[idx] = old + np.float32(eps)
                up = objective(net, x, r, states)
                p[idx] = old - np.float32(eps)
                down = objective(net, x, r, states)
                p[idx] = old
                estimates.append((up - down) / (2 * float(np.float32(eps))))
            tol = 2e-2 * scale + (5e-3 if net.batch > 100 else 1e-3)
            if abs(estimates[0] - estimates[1]) > tol:
                kinks += 1
                continue
            assert abs(estimates[0] - grad[idx]) <= tol, (
                f"{case}: layer {index} {name}{idx}: analytic {grad[idx]:.5f}, numeric "
                f"{estimates[0]:.5f}")
            checked += 1
    assert checked >= 4 * kinks and checked > 10


# AB Darknet's inference and training forward of recurrent layers, every step and layer
# (tests/data/darknet_forward.npz, written by tools/darknet_forward_oracle.py). AB builds a
# recurrent network only after an image layer (it divides by zero otherwise), hence the stem.
# (cfg, passes, training forward): inference runs several passes with the state carried
RNET = ("[net]\nbatch=2\nsubdivisions=1\ntime_steps={steps}\nwidth=4\nheight=3\n"
        "channels=2\n[convolutional]\nfilters=2\nsize=1\nactivation=leaky\n")
RECURRENT_LAYERS = (
    "[rnn]\nbatch_normalize={bn}\nhidden=5\noutput=4\nactivation=leaky\n"
    "[lstm]\nbatch_normalize={bn}\noutput=3\n"
    "[gru]\nbatch_normalize={bn}\noutput=4\n"
    "[rnn]\nhidden=4\noutput=3\nshortcut=1\nlogistic=1\nactivation=tanh\n"
    "[connected]\noutput=5\nactivation=linear\n")
CRNN_LAYERS = ("[crnn]\nbatch_normalize=1\nsize=3\npad=1\nhidden=3\noutput=4\n"
               "activation=leaky\n"
               "[crnn]\nsize=1\nhidden=2\noutput=3\nshortcut=1\nactivation=logistic\n")
# (AB's CPU build computes the cell's activation as tanh whatever lstm_activation says)
CONV_LSTM_LAYERS = ("[conv_lstm]\nbatch_normalize=1\nsize=3\npad=1\noutput=3\npeephole=1\n"
                    "state_constrain=1\nactivation=leaky\n"
                    "[history]\nhistory_size=3\n"
                    "[conv_lstm]\nsize=1\noutput=2\n")
RECURRENT_CASES = {
    "recurrent-inference": (RNET.format(steps=3) + RECURRENT_LAYERS.format(bn=1) +
                            "[softmax]\n", 3, False),
    "recurrent-one-step": (RNET.format(steps=1) + RECURRENT_LAYERS.format(bn=0), 4, False),
    "recurrent-train": (RNET.format(steps=3) + RECURRENT_LAYERS.format(bn=1), 1, True),
    "crnn-inference": (RNET.format(steps=2) + CRNN_LAYERS, 3, False),
    "crnn-train": (RNET.format(steps=2) + CRNN_LAYERS, 1, True),
    "conv_lstm-inference": (RNET.format(steps=2) + CONV_LSTM_LAYERS, 3, False),
    "conv_lstm-train": (RNET.format(steps=2) + CONV_LSTM_LAYERS, 1, True),
    # one time step a pass: [history] passes the image's own input, then zeros (AB's at batch 1)
    "history-one-step": (RNET.replace("batch=2", "batch=1").format(steps=1) +
                         "[history]\nhistory_size=2\n[conv_lstm]\nsize=1\noutput=2\n", 3,
                         False),
}
ORACLE = pathlib.Path(__file__).parent / "data" / "darknet_forward.npz"


def recurrent_case(name, device="cpu"):
    """(network with xorshift32 parameters, input of every pass, the harness's
    ROWS:STEPS:PASSES, training forward?)"""
    text, passes, train = RECURRENT_CASES[name]
    net = load_cfg_text(text, device=device)       # the cfg's rows and time steps
    fill_xorshift(net)
    if name.startswith("conv_lstm"):
        # forget little, write much: cells grow past state_constrain=1, which clamps them
        for g in ("uf", "ui", "ug"):
            net.layers[1].params[f"{g}_biases"][...] += 3
    n = net.net
    x = xorshift_uniform(12345, passes * net.batch * n.channels * n.height * n.width)
    x = x.reshape(passes * net.batch, n.channels, n.height, n.width)
    return net, x, f"{net.batch}:{n.time_steps}:{passes}", train


@pytest.mark.parametrize("name", list(RECURRENT_CASES))
def test_every_step_and_layer_matches_darknet(name, device="cpu"):
    oracle = np.load(ORACLE)
    net, x, _, train = recurrent_case(name, device)
    rows = net.batch
    for p in range(x.shape[0] // rows):
        net.forward(x[p * rows:(p + 1) * rows], train=train)
        for i, layer in enumerate(net.layers):
            want = oracle[f"{name}_{p * 100000 + i}"]
            np.testing.assert_allclose(np.asarray(net.outputs[i]).ravel(), want, rtol=1e-4,
                                       atol=2e-5 * float(np.abs(want).max()),
                                       err_msg=f"pass {p} layer {i} ({layer.type})")


def test_a_training_pass_runs_alike_on_the_emulated_device(tmp_path):
    """Recurrent layers run through the backend's ops only ([history] on the host): a device
    runs them unchanged."""
    from test_backend_contract import forward_backward
    from test_cuda_backend import fake_device
    rng = np.random.default_rng(0)
    with fake_device(tmp_path):
        cases = ("rnn-gru-lstm", "all-bn", "crnn-bn-shortcut-groups",
                 "conv_lstm-peephole-bn-clamp", "history-conv_lstm")
        for case in cases:
            a, b = (make(case, batch=4, device=device) for device in ("cpu", "cuda:0"))
            x = rng.standard_normal((a.batch,) + a.input_shape).astype(np.float32)
            r = rng.standard_normal(a.layers[-1].out_shape(a.batch)).astype(np.float32)
            for _ in range(2):             # the second pass from the state the first left
                (out_a, d_a, g_a), (out_b, d_b, g_b) = (forward_backward(n, x, r)
                                                        for n in (a, b))
                # (sums over steps, streams and batch norm's 256 rows, in another order)
                for what, xs, ys in (("output", out_a, out_b), ("delta", d_a, d_b)):
                    for i, (u, v) in enumerate(zip(xs, ys)):
                        np.testing.assert_allclose(v, u, rtol=1e-3,
                                                   atol=1e-5 * max(np.abs(u).max(), 1),
                                                   err_msg=f"{case}: {what} of layer {i}")
                for k in g_a:
                    np.testing.assert_allclose(g_b[k], g_a[k], rtol=1e-3,
                                               atol=1e-5 * max(np.abs(g_a[k]).max(), 1),
                                               err_msg=f"{case}: gradient {k}")


def test_rnn_and_crnn_start_training_passes_from_zero_the_others_go_on():
    """AB's forward_rnn_layer and forward_crnn_layer clear the state of a training pass;
    its [lstm], [gru] and [conv_lstm] carry it. At inference every one carries it."""
    rng = np.random.default_rng(2)
    for case, carries in (("rnn-leaky", False), ("crnn", False), ("lstm", True),
                          ("gru", True), ("conv_lstm", True)):
        net = make(case)
        x = rng.uniform(-1, 1, (net.batch,) + net.input_shape).astype(np.float32)
        first = net.forward(x, train=True)
        again = net.forward(x, train=True)
        assert np.array_equal(first, again) != carries, case
        a, b = net.forward(x), net.forward(x)
        assert not np.array_equal(a, b), case


def test_pjreddies_gate_order_loads_and_converts(tmp_path, capsys):
    """pjreddie's Darknet writes [lstm] gates as wi, wf, wo, wg, ui, uf, uo, ug and [gru]'s
    as wz, wr, wh, uz, ur, uh (AB: wf, wi, wg, wo, uf, ui, ug, uo and uz, ur, uh, wz, wr,
    wh). Its own run of such a file (batch norm, tanh=1) equalled pydarknet's every layer to
    1e-6 (checked with pjreddie's build, f6afaab)."""
    from pydarknet import weights as W
    from pydarknet.cli import main
    text = ("[net]\nbatch=2\ninputs=6\n[lstm]\nbatch_normalize=1\noutput=5\n"
            "[gru]\noutput=4\ntanh=1\n[rnn]\noutput=3\n[connected]\noutput=6\n"
            "activation=linear\n[softmax]\n")
    cfg = tmp_path / "pj.cfg"
    cfg.write_text(text)
    net = load_cfg_text(text, batch=2)
    rng = np.random.default_rng(1)
    for layer in net.layers:
        for value in layer.params.values():
            value[...] = rng.uniform(0.5, 1.5, value.shape)
    net.save_weights(str(tmp_path / "ab.weights"))
    header = (tmp_path / "ab.weights").read_bytes()[:20]
    order = [name for layer in net.layers for name in W._load_order(layer, "pjreddie")]
    assert order[:2] == ["wi_biases", "wi_weights"] and "wz_biases" in order
    blocks = [np.ascontiguousarray(net.layers[i].params[name]).tobytes()
              for i, layer in enumerate(net.layers) for name in W._load_order(layer, "pjreddie")]
    (tmp_path / "pj.weights").write_bytes(header + b"".join(blocks))
    assert main(["from_pjreddie", str(cfg), str(tmp_path / "pj.weights"),
                 str(tmp_path / "out.weights")]) == 0
    assert "0 [lstm], 1 [gru]" in capsys.readouterr().out
    assert (tmp_path / "out.weights").read_bytes() == (tmp_path / "ab.weights").read_bytes()
    other = load_cfg_text(text, batch=2)
    other.load_weights(str(tmp_path / "pj.weights"), gates="pjreddie")
    for a, b in zip(net.layers, other.layers):
        for name, value in a.params.items():
            np.testing.assert_array_equal(b.params[name], value)
