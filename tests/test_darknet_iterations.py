"""Three training iterations equal AB Darknet's own, every parameter after each iteration.

The oracle is AB Darknet 59596d7's CPU build patched to its GPU build's training
(tools/darknet_gpusem_patch.py, built with OPTS=-O2) and trained by
tools/darknet_iteration_oracle.c: deltas zeroed every pass, backward_network_gpu's
stopbackward and update_network_gpu's loop. tests/data/darknet_iterations.npz holds what it
computed; ``tools/darknet_iteration_fuzz.py DARKNET --regenerate`` writes it again, and
``tools/darknet_iteration_fuzz.py DARKNET FIRST LAST`` compares random networks the same way.

Each case exercises the optimiser and the update options: subdivisions, momentum, decay,
burn_in and the policies, Adam, a layer's learning_rate= (read by [convolutional],
[connected], [batchnorm], [shortcut] and [implicit]; not by [local]), dont_update and
burnin_update (the skipped iterations' gradients kept for the first update), stopbackward=1
and =N, train_only_bn, onlyforward (passed through by [empty]), grad_centr and clip,
[net] loss_scale with a head's delta_normalizer, ema_alpha, and a network resized between
iterations (random=1's resize_network)."""

import pathlib

import numpy as np
import pytest

from pydarknet.network import load_cfg_text
from oracle_inputs import random_truths, randomize

ORACLE = pathlib.Path(__file__).parent / "data" / "darknet_iterations.npz"
ITERATIONS = 3
NET = ("[net]\nbatch={batch}\nsubdivisions={sub}\nwidth={w}\nheight={h}\nchannels={c}\n"
       "learning_rate={lr}\nmomentum={momentum}\ndecay={decay}\nburn_in={burn_in}\npower=2\n")
YOLO = ("[convolutional]\nfilters=21\nsize=1\nactivation=linear\n"
        "[yolo]\nmask=0,1,2\nanchors=4,5, 8,9, 14,10, 20,25\nclasses=2\nnum=4\n")

CASES = {
    # SGD over subdivisions with momentum, decay, burn-in and steps; batch norm; a [yolo] head
    "sgd": NET.format(batch=4, sub=2, w=16, h=12, c=3, lr=0.005, momentum=0.9, decay=0.01,
                      burn_in=2) + (
        "policy=steps\nsteps=2\nscales=0.5\n"
        "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\nactivation=mish\n"
        "[maxpool]\nsize=2\nstride=2\n"
        "[convolutional]\nfilters=6\nsize=3\npad=1\nbatch_normalize=1\nactivation=swish\n"
        + YOLO),
    # Adam; grad_centr where a filter holds 32 values (4x4x2); clip
    "adam": NET.format(batch=2, sub=1, w=12, h=12, c=2, lr=0.002, momentum=0.9, decay=0.0005,
                       burn_in=0) + (
        "adam=1\nB1=0.8\nB2=0.99\neps=0.0001\n"
        "[convolutional]\nfilters=3\nsize=4\npad=1\nbatch_normalize=1\nactivation=mish\n"
        "grad_centr=1\n"
        "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=logistic\nclip=0.2\n"
        "[avgpool]\n[softmax]\n"),
    # a layer's learning_rate= where AB reads it and where it does not ([local]); a weighted
    # [shortcut] (no decay, its update clamped); [implicit]
    "rates": NET.format(batch=4, sub=2, w=8, h=8, c=2, lr=0.01, momentum=0.5, decay=0.1,
                        burn_in=0) + (
        "policy=poly\nmax_batches=6\n"
        "[local]\nfilters=3\nsize=3\npad=1\nactivation=logistic\nlearning_rate=3\n"
        "[convolutional]\nfilters=3\nsize=1\nbatch_normalize=1\nactivation=tanh\n"
        "learning_rate=0.5\n"
        "[shortcut]\nfrom=-2\nweights_type=per_channel\nweights_normalization=relu\n"
        "activation=linear\nlearning_rate=2\n"
        "[batchnorm]\nlearning_rate=2\n"
        "[implicit]\nfilters=3\nlearning_rate=1.5\n"
        "[scale_channels]\nfrom=-2\n"
        "[connected]\noutput=4\nbatch_normalize=1\nactivation=logistic\nlearning_rate=0.7\n"
        "[softmax]\n"),
    # dont_update and burnin_update: the skipped iterations' gradients applied at the first
    # update; onlyforward on an [empty] (its delta is its input's) and on a convolution (a
    # branch beside a [route])
    "skips": NET.format(batch=2, sub=1, w=10, h=10, c=3, lr=0.01, momentum=0.9, decay=0.0005,
                        burn_in=2) + (
        "policy=constant\n"
        "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=mish\ndont_update=2\n"
        "[empty]\nonlyforward=1\n"
        "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\nactivation=swish\n"
        "burnin_update=1\n"
        "[convolutional]\nfilters=4\nsize=1\nactivation=logistic\n"
        "[convolutional]\nfilters=4\nsize=1\nactivation=mish\nonlyforward=1\n"
        "[route]\nlayers=-1,-2\n"
        + YOLO),
    # stopbackward=1 freezes the layers before it (their forward as at inference),
    # stopbackward=2 holds the backward for two iterations, train_only_bn; a [Gaussian_yolo]
    "frozen": NET.format(batch=2, sub=2, w=12, h=12, c=3, lr=0.01, momentum=0.9,
                         decay=0.0005, burn_in=0) + (
        "policy=exp\ngamma=0.9\n"
        "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\nactivation=mish\n"
        "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\nactivation=mish\n"
        "stopbackward=1\n"
        "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\nactivation=swish\n"
        "train_only_bn=1\n"
        "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\nactivation=mish\n"
        "stopbackward=2\n"
        "[convolutional]\nfilters=4\nsize=1\nbatch_normalize=1\nactivation=logistic\n"
        "[convolutional]\nfilters=33\nsize=1\nactivation=linear\n"
        "[Gaussian_yolo]\nmask=0,1,2\nanchors=4,5, 8,9, 14,10, 20,25\nclasses=2\nnum=4\n"),
    # loss_scale (not a power of two) with a [yolo] delta_normalizer: the head's delta
    # multiplied by both, each layer kind's update undoing the scale its own way (the rate
    # and decay of [convolutional], [batchnorm], weighted [shortcut], [implicit]) or not
    # ([local])
    "scaled": NET.format(batch=4, sub=2, w=6, h=6, c=3, lr=0.01, momentum=0.9, decay=0.01,
                         burn_in=0) + (
        "loss_scale=1000\n"
        "[local]\nfilters=3\nsize=3\npad=1\nactivation=leaky\n"
        "[convolutional]\nfilters=3\nsize=3\npad=1\nbatch_normalize=1\nactivation=mish\n"
        "learning_rate=0.5\n"
        "[shortcut]\nfrom=-2\nweights_type=per_channel\nweights_normalization=softmax\n"
        "activation=linear\n"
        "[batchnorm]\n"
        "[implicit]\nfilters=3\n"
        "[scale_channels]\nfrom=-2\n"
        + YOLO.replace("[yolo]\n", "[yolo]\ndelta_normalizer=0.5\n")),
    # loss_scale with Adam (the rate divided by it, the moments not) and a batch-normalised
    # [connected] (its updates, momenta included, divided by it); a [softmax] head
    "scaled_adam": NET.format(batch=10, sub=2, w=8, h=8, c=2, lr=0.003, momentum=0.9,
                              decay=0.0005, burn_in=0) + (
        "loss_scale=8\nadam=1\nB1=0.9\nB2=0.999\neps=0.000001\n"
        "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\nactivation=swish\n"
        "[maxpool]\nsize=2\nstride=2\n"
        "[connected]\noutput=5\nbatch_normalize=1\nactivation=leaky\n"
        "[connected]\noutput=3\nactivation=linear\n"
        "[softmax]\n"),
    # ema_alpha from iteration 1001 (the weights file's images seen): the moving average
    # starts at 1002 (max_batches / 2) and replaces the convolutions' weights at 1004
    # (max_batches - 1000), but not those of the frozen layer before stopbackward=1
    "ema": NET.format(batch=2, sub=1, w=12, h=12, c=3, lr=0.01, momentum=0.9, decay=0.0005,
                      burn_in=0) + (
        "policy=steps\nsteps=1003\nscales=0.1\nmax_batches=2004\nema_alpha=0.9\n"
        "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\nactivation=mish\n"
        "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\nactivation=leaky\n"
        "stopbackward=1\n"
        "[convolutional]\nfilters=6\nsize=3\nstride=2\npad=1\nactivation=swish\n"
        + YOLO),
    # resized after the first iteration (random=1's resize_network, to a size no multiple
    # of 32): momenta, Adam's moments, rolling statistics and the burn-in go on; [route],
    # [shortcut], [upsample] and two [yolo] heads resized
    "resized": NET.format(batch=4, sub=2, w=32, h=24, c=3, lr=0.003, momentum=0.9,
                          decay=0.0005, burn_in=2) + (
        "adam=1\nB1=0.9\nB2=0.99\neps=0.0001\npolicy=steps\nsteps=2\nscales=0.5\n"
        "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\nactivation=mish\n"
        "[maxpool]\nsize=2\nstride=2\n"
        "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\nactivation=leaky\n"
        "[shortcut]\nfrom=-2\nactivation=linear\n"
        "[convolutional]\nfilters=6\nsize=3\nstride=2\npad=1\nactivation=swish\n"
        + YOLO +
        "[route]\nlayers=-3\n[upsample]\nstride=2\n[route]\nlayers=-1,-6\n"
        "[convolutional]\nfilters=7\nsize=1\nactivation=linear\n"
        "[yolo]\nmask=3\nanchors=4,5, 8,9, 14,10, 20,25\nclasses=2\nnum=4\n"),
}
# the iteration a case starts from (its weights file's images seen)
STARTS = {"ema": 1001}
# the (width, height) a case is resized to after its first iteration
RESIZED = {"resized": (40, 16)}


def case_data(name, device="cpu"):
    """(network with random parameters, each iteration's images, truths: every iteration's
    rows). The images after the first are RESIZED's size where the case has one."""
    net = load_cfg_text(CASES[name], device=device)
    rng = np.random.default_rng(sum(map(ord, name)))
    randomize(net, rng)
    n = net.net
    rows = n.mini_batch * n.subdivisions
    sizes = [(n.width, n.height)] + [RESIZED.get(name, (n.width, n.height))] * (ITERATIONS - 1)
    x = [rng.uniform(0, 1, (rows, n.channels, h, w)).astype(np.float32) for w, h in sizes]
    truths = random_truths(rng, net, ITERATIONS * rows)
    net.iteration = STARTS.get(name, 0)
    net.seen = net.iteration * n.mini_batch * n.subdivisions
    return net, x, truths


def parameter_error(got, want, start, layer_change):
    """How far ``got`` is from Darknet's ``want``, as a multiple of what may differ: 1e-3 of
    Darknet's change since ``start``, 1e-4 of the largest change of the layer's parameters
    (a bias gradient that sums to about 0 rounds like its summands) and 6e-7 of the largest
    value (a few float32 roundings of the parameter itself, one or more an iteration)."""
    got, want, start = (np.asarray(a, np.float64).ravel() for a in (got, want, start))
    if not np.isfinite(want).all() or not np.isfinite(got).all():
        return np.inf if not np.array_equal(got, want, equal_nan=True) else 0.0
    allowed = (1e-3 * np.abs(want - start).max() + 1e-4 * layer_change +
               6e-7 * np.abs(want).max() + 1e-30)
    return float(np.abs(got - want).max() / allowed)


def load_oracle():
    """Darknet's values of the cases (a skip where the file is missing)."""
    if not ORACLE.exists():
        pytest.skip(f"{ORACLE} missing: tools/darknet_iteration_fuzz.py DARKNET --regenerate")
    return np.load(ORACLE)


@pytest.fixture(scope="module")
def oracle():
    return load_oracle()


def check_iterations(name, oracle, device="cpu", slack=1.0):
    """Train case ``name`` on ``device`` and check every iteration's rate, loss and parameters
    against Darknet's (``slack`` times what may differ)."""
    net, x, truths = case_data(name, device)
    start = [{k: np.array(v) for k, v in layer.params.items()} for layer in net.layers]
    rows = net.net.mini_batch * net.net.subdivisions
    for k in range(1, ITERATIONS + 1):
        if k == 2 and name in RESIZED:
            net.resize(*RESIZED[name])
        loss = net.train_iteration(x[k - 1], truths[(k - 1) * rows:k * rows])
        want_loss, want_rate = oracle[f"{name}_{k}_loss"]
        assert net.learning_rate == pytest.approx(want_rate, rel=1e-6), k
        assert loss == pytest.approx(want_loss, rel=1e-4 * slack), k
        net.params_to_host()
        for i, layer in enumerate(net.layers):
            change = max((np.abs(oracle[f"{name}_{k}_{i}_{n}"] - start[i][n]).max()
                          for n in layer.params if not n.startswith("rolling")), default=0.0)
            for n, value in layer.params.items():
                err = parameter_error(value, oracle[f"{name}_{k}_{i}_{n}"], start[i][n],
                                      0.0 if n.startswith("rolling") else change)
                assert err <= slack, f"iteration {k} layer {i} {layer.type} {n}: {err:.3g}"


@pytest.mark.filterwarnings("ignore:.*learning_rate.*has no effect")   # ([local]'s, meant)
@pytest.mark.parametrize("name", CASES)
def test_three_iterations_equal_darknets(name, oracle):
    check_iterations(name, oracle)
