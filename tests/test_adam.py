"""[net] adam=1: AB's GPU build updates [convolutional] layers by Adam (adam_update_gpu, every
parameter with weight decay, bias-corrected with the update's number t, the rate not divided
by the batch) and every other layer by its SGD with momentum, as without adam."""

import numpy as np

from pydarknet.network import load_cfg_text
from pydarknet.train.checkpoint import load_checkpoint_state, save_checkpoint

f32 = np.float32
CFG = """[net]
batch=4
subdivisions=2
width=8
height=8
channels=3
learning_rate=0.01
momentum=0.9
decay=0.0005
adam=1
B1=0.8
B2=0.99
eps=0.0001
burn_in=2
power=2
[convolutional]
filters=4
size=3
pad=1
batch_normalize=1
activation=leaky
[convolutional]
filters=3
size=1
activation=linear
learning_rate=0.5
[avgpool]
[connected]
output=2
activation=linear
[softmax]
[cost]
type=sse
"""


def batch(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 3, 8, 8)).astype(f32)
    t = np.eye(2, dtype=f32)[rng.integers(0, 2, 4)]
    return x, t


def expected_adam(p, g, m, v, rate, t, decay=0.0005, batch=4, b1=0.8, b2=0.99, eps=0.0001):
    b1, b2, eps = f32(b1), f32(b2), f32(eps)
    g = g + f32(-f32(decay) * batch) * p
    m = m * b1 + (f32(1) - b1) * g
    v = v * b2 + (f32(1) - b2) * (g * g)
    mhat = m / (f32(1) - np.power(b1, f32(t)))
    vhat = v / (f32(1) - np.power(b2, f32(t)))
    return p + f32(rate) * mhat / (np.sqrt(vhat) + eps), m, v


def test_adam_updates_convolutional_layers_and_sgd_the_others():
    net = load_cfg_text(CFG)
    net.ensure_training()
    state = {}                                  # (layer, name) -> (m, v)
    for it in (1, 2, 3):
        before = {(l.index, k): np.array(v) for l in net.layers for k, v in l.params.items()}
        old_momenta = {(l.index, k): np.array(v) for l in net.layers
                       for k, v in getattr(l, "momenta", {}).items()}
        net.train_iteration(*batch(it))
        rate = 0.01 * (it / 2) ** 2 if it < 2 else 0.01          # burn_in=2, power=2
        for layer in net.layers:
            for name, grad in getattr(layer, "grads", {}).items():
                p0 = before[layer.index, name]
                if layer.layer_type == "convolutional":
                    m, v = state.get((layer.index, name), (np.zeros_like(p0),) * 2)
                    lr = f32(f32(rate) * f32(layer.learning_rate_scale))
                    p, m, v = expected_adam(p0, np.array(grad), m, v, lr, it)
                    state[layer.index, name] = (m, v)
                    np.testing.assert_allclose(layer.params[name], p, rtol=2e-6, atol=1e-7,
                                               err_msg=f"iteration {it}, {layer.index} {name}")
                    np.testing.assert_allclose(layer.momenta[f"{name}_v"], v, rtol=1e-6)
                else:    # [connected]: SGD with momentum
                    u = old_momenta[layer.index, name] + np.array(grad)
                    if name == "weights":
                        u = u + f32(-0.0005 * 4) * p0
                    np.testing.assert_allclose(layer.params[name], p0 + f32(rate / 4) * u,
                                               rtol=2e-6, atol=1e-7)


def test_adam_moments_survive_a_checkpoint(tmp_path):
    net = load_cfg_text(CFG)
    for it in (1, 2):
        net.train_iteration(*batch(it))
    path = str(tmp_path / "a.weights")
    save_checkpoint(net, path, {})
    resumed = load_cfg_text(CFG)
    resumed.load_weights(path)
    load_checkpoint_state(resumed, path)
    for a, b in zip(net.layers, resumed.layers):
        for k, v in getattr(a, "momenta", {}).items():
            np.testing.assert_array_equal(b.momenta[k], v)
    x, t = batch(3)
    assert net.train_iteration(x, t) == resumed.train_iteration(x, t)
    for a, b in zip(net.layers, resumed.layers):
        for k, v in a.params.items():
            np.testing.assert_array_equal(b.params[k], v)
