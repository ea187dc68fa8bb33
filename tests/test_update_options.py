"""The update options of AB's GPU build (update_convolutional_layer_gpu): ``grad_centr=1``
(with batch norm) centralises each filter's weight update before the step, where a filter
holds a multiple of 32 values; ``clip=C`` clamps the weights of [convolutional] and [implicit]
layers to [-C, C] after it. AB's CPU build does neither. A weighted [shortcut]'s update
(update_shortcut_layer_gpu) has no decay and clamps its update to [-1, 1]. And ``[net]
weights_reject_freq`` (train_network's reject_similar_weights after the update); the updates
that dont_update and burnin_update skip (update_network_gpu); a layer's learning_rate=; the
NaN and inf weight updates and weights AB's GPU updates set right before the step."""

import warnings

import numpy as np
import pytest

from pydarknet.network import load_cfg_text
from pydarknet.no_effect import NoEffectWarning
from pydarknet.train.sgd import update_layer

f32 = np.float32
NET = """[net]
batch=2
width=4
height=4
channels=8
{net}
[convolutional]
batch_normalize=1
filters=3
size=2
pad=1
activation=leaky
{conv}
[convolutional]
batch_normalize=1
filters=2
size=1
activation=linear
{conv}
[implicit]
filters=2
{others}
[connected]
output=2
{others}
"""


def network(conv="", net="", others=""):
    network = load_cfg_text(NET.format(conv=conv, net=net, others=others))
    network.ensure_training()
    rng = np.random.default_rng(5)
    for layer in network.layers:
        for d in (layer.grads, layer.momenta):
            for k in d:
                d[k][...] = rng.standard_normal(d[k].shape).astype(f32)
                if k.endswith("_v"):            # Adam's second moments
                    d[k][...] = np.abs(d[k])
    return network


def expected_sgd(p, u, g, lr=0.1, momentum=0.9, decay=0.0005, batch=2, centre=False):
    u = u + g
    if centre:
        u = u - u.reshape(u.shape[0], -1).mean(axis=1).reshape((-1,) + (1,) * (u.ndim - 1))
    u = u + f32(-decay * batch) * p
    return p + f32(lr / batch) * u, u * f32(momentum)


def test_grad_centr_centres_each_filters_update_where_it_holds_a_multiple_of_32_values():
    plain, centred = network(), network("grad_centr=1")
    for a, b in zip(plain.layers, centred.layers):
        b.params["weights"][...] = a.params["weights"]
    for i in range(2):
        a, b = plain.layers[i], centred.layers[i]
        before = (b.params["weights"].copy(), b.momenta["weights"].copy(),
                  b.grads["weights"].copy())
        update_layer(plain.backend, a, 0.1, 0.9, 0.0005, 2)
        update_layer(centred.backend, b, 0.1, 0.9, 0.0005, 2)
        p, u = expected_sgd(*before, centre=i == 0)      # 8 x 2 x 2 = 32 values; 2: not
        np.testing.assert_allclose(b.params["weights"], p, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b.momenta["weights"], u, rtol=1e-5, atol=1e-6)
        same = np.allclose(a.params["weights"], b.params["weights"], rtol=1e-6, atol=0)
        assert same == (i == 1)


def test_grad_centr_under_adam_centres_the_gradient():
    net = network("grad_centr=1", "adam=1")
    layer = net.layers[0]
    g, m0, p0 = (a["weights"].copy() for a in (layer.grads, layer.momenta, layer.params))
    update_layer(net.backend, layer, 0.1, 0.9, 0.0005, 2, adam=(0.8, 0.999, 1e-6, 1))
    centred = g - g.reshape(3, -1).mean(axis=1)[:, None, None, None]
    want = f32(0.8) * m0 + f32(0.2) * (centred + f32(-0.0005 * 2) * p0)    # the first moment
    np.testing.assert_allclose(layer.momenta["weights"], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("index, clipped", [(0, True), (2, True), (3, False)])
def test_clip_clamps_the_weights_of_convolutional_and_implicit_layers(index, clipped):
    plain, clip = network(), network("clip=0.05", others="clip=0.05")
    a, b = plain.layers[index], clip.layers[index]
    b.params["weights"][...] = a.params["weights"]
    update_layer(plain.backend, a, 0.1, 0.9, 0.0005, 2)
    update_layer(clip.backend, b, 0.1, 0.9, 0.0005, 2)
    want = np.clip(a.params["weights"], -0.05, 0.05) if clipped else a.params["weights"]
    np.testing.assert_array_equal(b.params["weights"], want)
    assert clipped == (np.abs(a.params["weights"]).max() > 0.05 >= np.abs(
        b.params["weights"]).max())


@pytest.mark.parametrize("index, reset, adam", [(0, True, False), (2, True, False),
                                               (0, True, True), (3, False, False)])
def test_nan_and_inf_weight_updates_and_weights_are_reset_as_abs_gpu_update(index, reset, adam):
    """reset_nan_and_inf (the weight update: the momentum buffer plus the gradient with SGD,
    the gradient with Adam) and fix_nan_and_inf (a weight becomes 1 / (index + 1)) at the
    start of update_convolutional_layer_gpu and update_implicit_layer_gpu; not in
    [connected]'s. The other values update as they would have."""
    net = network(net="adam=1" if adam else "")
    layer = net.layers[index]
    clean = network(net="adam=1" if adam else "").layers[index]
    clean.params["weights"][...] = layer.params["weights"]
    g, u, w = (a["weights"].reshape(-1) for a in (layer.grads, layer.momenta, layer.params))
    last = w.size - 1               # ([implicit] filters=2: two weights)
    g[0], w[last] = np.nan, -np.inf
    (g if adam else u)[last] = np.inf           # (Adam's moments are not AB's weight_updates)
    overflow = w.size > 4 and not adam
    if overflow:
        g[2], u[2] = f32(3e38), f32(3e38)       # finite each, inf added up
    kw = {"adam": (0.9, 0.999, 1e-6, 1)} if adam else {}
    with warnings.catch_warnings():
        warnings.simplefilter("error" if reset else "ignore")   # (no RuntimeWarning)
        update_layer(net.backend, layer, 0.1, 0.9, 0.0005, 2, **kw)
    if not reset:
        assert np.isnan(layer.params["weights"].reshape(-1)[0])
        return
    cg, cu, cw = (a["weights"].reshape(-1) for a in (clean.grads, clean.momenta, clean.params))
    zeroed = [0, 2, last] if overflow else [0, last]
    cg[zeroed] = 0
    if not adam:
        cu[zeroed] = 0
    cw[last] = f32(1) / f32(last + 1)
    update_layer(net.backend, clean, 0.1, 0.9, 0.0005, 2, **kw)
    np.testing.assert_array_equal(layer.params["weights"], clean.params["weights"])
    assert np.isfinite(layer.params["weights"]).all()


SHORTCUT = """[net]
batch=2
width=4
height=4
channels=3
[convolutional]
filters=3
size=1
activation=linear
[convolutional]
filters=3
size=1
activation=linear
[shortcut]
from=-2
weights_type={kind}
activation=linear
"""


@pytest.mark.parametrize("kind", ["per_channel", "per_feature"])
def test_shortcut_weights_update_as_abs_gpu_build_without_decay_and_clamped(kind):
    """update_shortcut_layer_gpu: no weight decay; momentum plus gradient clamped to
    [-1, 1] before the step."""
    net = load_cfg_text(SHORTCUT.format(kind=kind))
    net.ensure_training()
    layer = net.layers[2]
    shape = layer.grads["weights"].shape
    g = np.linspace(-2.5, 0.5, int(np.prod(shape)), dtype=f32).reshape(shape)
    u = np.full(shape, 0.1, f32)
    layer.grads["weights"][...], layer.momenta["weights"][...] = g, u
    p = layer.params["weights"].copy()
    update_layer(net.backend, layer, 0.1, 0.9, 0.0005, 2, loss_scale=4.0)
    clamped = np.clip(u + g, -1, 1)
    assert (np.abs(u + g) > 1).any() and (np.abs(u + g) < 1).any()
    np.testing.assert_allclose(layer.params["weights"], p + f32(0.1 / 4 / 2) * clamped,
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(layer.momenta["weights"], f32(0.9) * clamped, rtol=1e-6)


def test_a_network_with_both_trains():
    net = load_cfg_text(NET.format(conv="grad_centr=1\nclip=0.5", net="learning_rate=0.01",
                                   others="") + "[cost]\ntype=sse\n")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 4, 4)).astype(f32)
    t = rng.standard_normal((2, 2)).astype(f32)
    for _ in range(3):
        net.train_iteration(x, t)
    assert np.abs(net.layers[0].params["weights"]).max() <= 0.5


REJECT = """[net]
batch=2
width=8
height=8
channels=3
max_batches=40
weights_reject_freq=5
learning_rate=0.001
[convolutional]
filters=4
size=3
pad=1
activation=leaky
[convolutional]
batch_normalize=1
filters=5
size=3
pad=1
activation=leaky
[convolutional]
filters=4
size=1
activation=linear
[convolutional]
filters=4
size=1
activation=mish
[convolutional]
batch_normalize=1
filters=6
size=1
activation=leaky
[convolutional]
filters=24
size=1
activation=linear
[yolo]
mask=0,1,2
anchors=2,3, 4,5, 6,7
classes=3
num=3
"""


def test_weights_reject_freq_draws_the_first_of_the_most_alike_filters_again():
    """Every weights_reject_freq iterations before 3/4 of max_batches: in layer 1 (not layer
    0, not a linear one, not one of the three before the [yolo]) the first filter of the most
    alike pair is drawn again, its bias 0 and its scale 1."""
    from pydarknet.train.reject_weights import most_alike, weights_reject_step
    net = load_cfg_text(REJECT)
    conv = net.layers[1]
    w = conv.params["weights"]
    w[3] = w[1] * 2 + 1e-3                       # filters 1 and 3 alike (similarity ~1)
    conv.params["biases"][...] = 0.5
    conv.params["scales"][...] = 2.0
    assert most_alike(w)[:2] == (1, 3)
    for layer in (net.layers[0], *net.layers[2:6]):   # alike too, but never checked
        layer.params["weights"][1] = layer.params["weights"][0]
    before = {l.index: l.params["weights"].copy() for l in net.layers if l.params}
    net.iteration = 7                                  # not a multiple of 5: nothing
    assert weights_reject_step(net) == []
    net.iteration = 10
    rejected = weights_reject_step(net)
    assert [r[:3] for r in rejected] == [(1, 1, 3)] and rejected[0][3] > 0.99
    bound = np.sqrt(2 / (3 * 3 * 4))
    assert np.abs(w[1]).max() <= bound and not np.array_equal(w[1], before[1][1])
    np.testing.assert_array_equal(np.delete(w, 1, axis=0), np.delete(before[1], 1, axis=0))
    assert conv.params["biases"][1] == 0 and conv.params["scales"][1] == 1
    assert conv.params["biases"][0] == 0.5 and conv.params["scales"][0] == 2
    for index in (0, 2, 3, 4, 5):
        np.testing.assert_array_equal(net.layers[index].params["weights"], before[index])
    net.iteration = 30                                 # 3/4 of max_batches: no more
    w[3] = w[1]
    assert weights_reject_step(net) == []


def test_weights_reject_freq_runs_in_training():
    net = load_cfg_text(REJECT)
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 8, 8), dtype=np.float32)
    t = np.zeros((2, 4, 6), np.float32)
    t[:, 0] = [0.5, 0.5, 0.3, 0.4, 1, 0]
    net.layers[1].params["weights"][2] = net.layers[1].params["weights"][0]
    for _ in range(5):
        net.train_iteration(x, t)
    assert [r[:2] for r in net.rejected_filters] == [(1, 0)]


SKIPPED = """[net]
batch=2
subdivisions=2
width=6
height=6
channels=2
learning_rate=0.1
momentum=0
decay=0
burn_in={burn_in}
power=1
[convolutional]
batch_normalize=1
filters=3
size=3
pad=1
activation=leaky
{option}
[cost]
type=sse
"""


@pytest.mark.parametrize("option, burn_in, skipped", [("dont_update=2", 0, 2),
                                                      ("burnin_update=1", 3, 2)])
def test_an_update_skipped_keeps_its_gradients_for_the_first_update(option, burn_in, skipped):
    """dont_update=N and burnin_update=K skip a layer's update (AB's update_network_gpu);
    its weight_updates keep the skipped iterations' gradients and the first update applies
    them all (found by tools/darknet_iteration_fuzz.py: such a layer moved half as far as
    AB's at its first update)."""
    def network(text):
        net = load_cfg_text(text)
        net.init_weights(seed=3)
        return net
    text = SKIPPED.format(option=option, burn_in=burn_in)
    net = network(text)
    start = {k: v.copy() for k, v in net.layers[0].params.items()}
    rng = np.random.default_rng(4)
    batches = [(rng.uniform(0, 1, (2, 2, 6, 6)).astype(f32),
                rng.standard_normal((2, 3 * 6 * 6)).astype(f32)) for _ in range(skipped + 1)]
    gradients = []
    for x, t in batches:      # each batch's gradients at the starting weights
        alone = network(SKIPPED.format(option="", burn_in=burn_in))
        alone.train_iteration(x, t)
        gradients.append({k: g.copy() for k, g in alone.layers[0].grads.items()})
    for k, (x, t) in enumerate(batches):
        net.train_iteration(x, t)
        if k < skipped:
            assert all(np.array_equal(v, start[n]) for n, v in net.layers[0].params.items()
                       if not n.startswith("rolling"))
    for name, grad in net.layers[0].grads.items():
        total = sum(g[name] for g in gradients)
        want = start[name] + f32(net.learning_rate / 2) * total
        np.testing.assert_allclose(net.layers[0].params[name], want, rtol=1e-5, atol=1e-6)


def test_skipped_gradients_survive_a_checkpoint(tmp_path):
    from pydarknet.train.checkpoint import load_checkpoint_state, save_checkpoint
    text = SKIPPED.format(option="dont_update=3", burn_in=0)
    net = load_cfg_text(text)
    net.init_weights(seed=3)
    rng = np.random.default_rng(6)
    batches = [(rng.uniform(0, 1, (2, 2, 6, 6)).astype(f32),
                rng.standard_normal((2, 3 * 6 * 6)).astype(f32)) for _ in range(4)]
    for x, t in batches[:2]:
        net.train_iteration(x, t)
    before = net.layers[0].params["weights"].copy()
    path = str(tmp_path / "s.weights")
    save_checkpoint(net, path, {})
    resumed = load_cfg_text(text)
    resumed.load_weights(path)
    load_checkpoint_state(resumed, path)
    for x, t in batches[2:]:
        assert net.train_iteration(x, t) == resumed.train_iteration(x, t)
    for name, value in net.layers[0].params.items():
        np.testing.assert_array_equal(resumed.layers[0].params[name], value)
    assert not np.array_equal(net.layers[0].params["weights"], before)   # (updated at 4)


RATE = """[net]
batch=2
width=6
height=6
channels=2
learning_rate=0.1
[{kind}]
filters=3
size=3
activation=leaky
{option}
[cost]
type=sse
"""


@pytest.mark.parametrize("kind, scaled", [("convolutional", True), ("local", False)])
def test_a_layers_learning_rate_scales_its_update_where_abs_does(kind, scaled):
    """AB's GPU updates of [convolutional], [connected], [batchnorm], [shortcut] and
    [implicit] multiply the rate by the layer's learning_rate=; update_local_layer_gpu and
    the recurrent layers' updates do not (found by tools/darknet_iteration_fuzz.py: a [local]
    with learning_rate=2.84)."""
    def trained(option):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            net = load_cfg_text(RATE.format(kind=kind, option=option))
        net.init_weights(seed=2)
        start = net.layers[0].params["weights"].copy()
        rng = np.random.default_rng(0)
        net.train_iteration(rng.uniform(0, 1, (2, 2, 6, 6)).astype(f32),
                            rng.standard_normal((2, net.layers[-1].outputs)).astype(f32))
        return net.layers[0].params["weights"] - start, caught
    plain, _ = trained("")
    scaled_step, caught = trained("learning_rate=3")
    if scaled:
        np.testing.assert_allclose(scaled_step, 3 * plain, rtol=1e-4, atol=1e-9)
    else:
        np.testing.assert_array_equal(scaled_step, plain)
        assert any(issubclass(w.category, NoEffectWarning) and "learning_rate" in str(w.message)
                   for w in caught)
