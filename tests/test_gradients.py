"""Finite-difference checks of every trainable layer's backward pass.

Each case is a tiny network: a 1x1 linear conv (so that the tested layer's input gradient is
checked through the conv's weight gradient), the tested layer(s), and the scalar objective
L = sum(r * y) over the last output. Darknet's deltas are -dLoss/d.; with Loss = -L they are dL/d.,
so every accumulated gradient must equal the numerical derivative of L.
"""

import numpy as np
import pytest

import pydarknet
import reference_backend
from pydarknet.backend import get_backend
from pydarknet.cfg import parse_cfg_text
from pydarknet.passes import backward_pass, forward_pass

NET = "[net]\nbatch=2\nsubdivisions=1\nwidth={w}\nheight={h}\nchannels=3\n"
STEM = "[convolutional]\nfilters={c}\nsize=1\nstride=1\nactivation=linear\n"

CASES = {
    "conv-bn-mish": "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\nactivation=mish\n",
    "conv-swish-stride2": "[convolutional]\nfilters=4\nsize=3\nstride=2\npad=1\nactivation=swish\n",
    "conv-groups-dilation-leaky": "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\ngroups=2\ndilation=2\nactivation=leaky\n",
    "conv-stride-xy-logistic": "[convolutional]\nfilters=3\nsize=3\nstride_x=2\nstride_y=1\npad=1\nactivation=logistic\n",
    "conv-hard-mish": "[convolutional]\nfilters=3\nsize=1\nactivation=hard_mish\n",
    "conv-tanh-relu6": "[convolutional]\nfilters=3\nsize=3\nactivation=tanh\n[convolutional]\nfilters=2\nsize=1\nactivation=relu6\n",
    "shortcut": "[convolutional]\nfilters=4\nsize=1\nactivation=mish\n[shortcut]\nfrom=-2\nactivation=swish\n",
    "shortcut-per-channel": "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n[shortcut]\nfrom=-2\nweights_type=per_channel\nactivation=linear\n",
    "shortcut-per-feature": "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n[shortcut]\nfrom=-2\nweights_type=per_feature\nactivation=leaky\n",
    # Darknet's gradient of normalised shortcut weights is not the normalisation's derivative
    # (AB's GPU build scales it by w or w(1 - w)): only the input gradients are exact there
    # (weights are skipped below)
    "shortcut-per-channel-softmax": "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n[shortcut]\nfrom=-2\nweights_type=per_channel\nweights_normalization=softmax\nactivation=linear\n",
    "shortcut-per-feature-relu": "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n[shortcut]\nfrom=-2\nweights_type=per_feature\nweights_normalization=relu\nactivation=linear\n",
    "route-groups": "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n[route]\nlayers=-1,-2\n[route]\nlayers=-1\ngroups=2\ngroup_id=1\n",
    "maxpool": "[maxpool]\nsize=3\nstride=2\n",
    "maxpool-stride1": "[maxpool]\nsize=2\nstride=1\n",
    "avgpool": "[avgpool]\n",
    "local-avgpool": "[local_avgpool]\nsize=2\nstride=2\n",
    "upsample": "[upsample]\nstride=2\n",
    "upsample-reverse": "[upsample]\nstride=-2\n",
    "reorg3d": "[reorg3d]\nstride=2\n",
    "scale-channels": "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n[avgpool]\n[convolutional]\nfilters=4\nsize=1\nactivation=logistic\n[scale_channels]\nfrom=-3\n",
    "sam": "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n[convolutional]\nfilters=4\nsize=1\nactivation=logistic\n[sam]\nfrom=-2\n",
    "batchnorm": "[batchnorm]\n",
    "dropout": "[dropout]\nprobability=0.3\n",
    "connected": "[connected]\noutput=5\nactivation=leaky\n[connected]\noutput=3\nactivation=logistic\n",
    # activations whose gradient needs the pre-activation, outside [convolutional]
    # (logistic before it: values away from hard_mish's kink at -2)
    "shortcut-hard-mish": "[convolutional]\nfilters=4\nsize=1\nactivation=logistic\n[shortcut]\nfrom=-2\nactivation=hard_mish\n",
    "sam-mish": "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n[convolutional]\nfilters=4\nsize=1\nactivation=logistic\n[sam]\nfrom=-2\nactivation=mish\n",
    "scale-channels-swish": "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n[avgpool]\n[convolutional]\nfilters=4\nsize=1\nactivation=logistic\n[scale_channels]\nfrom=-3\nactivation=swish\n",
    "activation-leaky-mish": "[activation]\nactivation=leaky\n[activation]\nactivation=mish\n",
    "connected-mish-hard-mish": "[connected]\noutput=5\nactivation=mish\n[connected]\noutput=3\nactivation=hard_mish\n",
    "local-pad-leaky": "[local]\nfilters=3\nsize=3\npad=1\nactivation=leaky\n",
    "local-stride2-mish": "[local]\nfilters=2\nsize=3\nstride=2\nactivation=mish\n",
    # antialiasing: the layer at stride 1, then a fixed blur with the layer's strides
    "conv-antialiasing-bn": "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\nstride=2\npad=1\nantialiasing=1\nactivation=mish\n",
    "conv-antialiasing2-xy": "[convolutional]\nfilters=3\nsize=3\nstride_x=2\nstride_y=1\npad=1\nantialiasing=2\nactivation=leaky\n",
    "maxpool-antialiasing": "[maxpool]\nsize=2\nstride=2\nantialiasing=1\n",
    # pjreddie's shortcuts between spatial sizes (ResNet cfgs): subsampled, then spread out
    "shortcut-resampled": "[convolutional]\nfilters=6\nsize=3\nstride=2\npad=1\nactivation=leaky\n[shortcut]\nfrom=-2\nactivation=leaky\n[upsample]\nstride=2\n[shortcut]\nfrom=-3\nactivation=linear\n",
    # YOLOR's implicit knowledge: a learned tensor, here scaling the stem's channels
    "implicit-scale-channels": "[implicit]\nfilters=4\nmean=1\n[scale_channels]\nfrom=-2\n",
}


def run(net, x, r):
    """L and the gradients (as accumulated by the layers) for objective sum(r*y)."""
    for layer in net.layers:
        for g in layer.grads.values():
            g[...] = 0
    net.rng = np.random.default_rng(7)     # the same dropout mask every time
    state = forward_pass(net, x, train=True)
    L = float((r.astype(np.float64) * state.outputs[-1].reshape(r.shape)).sum())
    state.deltas[-1][...] = r.reshape(state.deltas[-1].shape)
    backward_pass(net, state)
    return L


def loss_only(net, x, r):
    net.rng = np.random.default_rng(7)
    out = forward_pass(net, x, train=True).outputs[-1]
    return float((r.astype(np.float64) * out.reshape(r.shape)).sum())


def numeric_derivative(net, x, r, p, idx, eps):
    old = p[idx].copy()
    p[idx] = old + np.float32(eps)
    up = loss_only(net, x, r)
    p[idx] = old - np.float32(eps)
    down = loss_only(net, x, r)
    p[idx] = old
    return (up - down) / (2 * float(np.float32(eps)))


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("case", list(CASES))
def test_backward_matches_finite_differences(case, backend):
    w = h = 8
    text = NET.format(w=w, h=h) + STEM.format(c=4) + CASES[case]
    net = pydarknet.Network(parse_cfg_text(text, f"{case}.cfg"), seed=3)
    net._backend = reference_backend if backend == "reference" else get_backend("cpu")
    rng = np.random.default_rng(11)
    for layer in net.layers:           # non-trivial parameters everywhere
        for name, p in layer.params.items():
            if name == "rolling_variance" or name == "scales":
                p[...] = rng.uniform(0.5, 1.5, p.shape)
            elif name == "weights" and layer.layer_type == "shortcut":
                p[...] = rng.uniform(0.5, 1.5, p.shape)
            else:
                p[...] += rng.uniform(-0.2, 0.2, p.shape).astype(np.float32)
    net.ensure_training()
    x = rng.uniform(-1, 1, (2, 3, h, w)).astype(np.float32)
    r = rng.uniform(-1, 1, net.layers[-1].out_shape(2)).astype(np.float32)
    run(net, x, r)
    checked = kinks = 0
    for layer in net.layers:
        for name, grad in layer.grads.items():
            if layer.layer_type == "shortcut" and layer.weights_normalization:
                continue
            p = layer.params[name]
            scale = max(np.abs(grad).max(), 1e-3)
            for flat in rng.choice(p.size, size=min(6, p.size), replace=False):
                idx = np.unravel_index(flat, p.shape)
                estimates = [numeric_derivative(net, x, r, p, idx, e) for e in (2e-3, 5e-4)]
                tol = 2e-2 * scale + 1e-3
                if abs(estimates[0] - estimates[1]) > tol:
                    kinks += 1   # a kink (leaky at 0, a max-pool near-tie) inside the step
                    continue
                assert abs(estimates[0] - grad[idx]) <= tol, (
                    f"{case}: layer {layer.index} {name}{idx}: analytic {grad[idx]:.5f}, "
                    f"numeric {estimates[0]:.5f}")
                checked += 1
    assert checked >= 4 * kinks and checked > 0


@pytest.mark.parametrize("groups", [1, 2])
def test_softmax_cross_entropy_delta_is_the_logit_gradient(groups):
    text = (NET.format(w=4, h=4) + "[avgpool]\n[connected]\noutput=6\nactivation=linear\n"
            f"[softmax]\ngroups={groups}\n")
    net = pydarknet.Network(parse_cfg_text(text, "softmax.cfg"), seed=1)
    net.ensure_training()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 3, 4, 4)).astype(np.float32)
    truth = np.zeros((2, 6), np.float32)
    truth[0, 1] = truth[1, 4] = 1
    if groups == 2:
        truth[0, 4] = truth[1, 0] = 1

    def cost():
        return forward_pass(net, x, train=True, truth=truth)

    backward_pass(net, cost())
    fc = net.layers[1]
    w = fc.params["weights"]
    for idx in [(0, 0), (3, 2), (5, 1)]:
        old = w[idx].copy()
        w[idx] = old + np.float32(1e-3)
        up = net.layers[2].cost if cost() else None
        w[idx] = old - np.float32(1e-3)
        down = net.layers[2].cost if cost() else None
        w[idx] = old
        numeric = -(up - down) / 2e-3     # deltas are -dLoss/d.
        assert abs(numeric - fc.grads["weights"][idx]) < 2e-3
