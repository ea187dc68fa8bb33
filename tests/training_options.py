"""AB's GPU-build training options on a given device (helpers, no tests): a few iterations of
small networks that use them, for the CUDA backend's tests to compare with the CPU's
(tests/test_cuda_emulated_networks.py on the emulated device, tests/test_gpu_oracle.py on a
GPU)."""

import numpy as np

import test_adversarial
import test_update_options
import test_yolo_reject
from pydarknet.network import load_cfg_text

f32 = np.float32


def _detector_batch():
    rng = np.random.default_rng(0)
    t = np.zeros((2, 4, 5), f32)
    t[:, 0] = [0.5, 0.5, 0.3, 0.4, 1]
    t[1, 1] = [0.2, 0.3, 0.2, 0.2, 2]
    return rng.random((2, 3, 8, 8)).astype(f32), t


def _update_cfg():
    return test_update_options.NET.format(conv="grad_centr=1\nclip=0.5",
                                          net="learning_rate=0.01", others="") + \
        "[cost]\ntype=sse\n"


def _update_batch():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((2, 8, 4, 4)).astype(f32),
            rng.standard_normal((2, 2)).astype(f32))


def _skipped_batch():
    rng = np.random.default_rng(0)
    return (rng.uniform(0, 1, (2, 2, 6, 6)).astype(f32),
            rng.standard_normal((2, 3 * 6 * 6)).astype(f32))


# name -> (cfg text, batch maker, iterations, starting iteration)
CASES = {
    "grad_centr_clip": (_update_cfg(), _update_batch, 3, 0),
    "weights_reject_freq": (test_update_options.REJECT, _detector_batch, 6, 0),
    "train_only_bn": (test_update_options.REJECT.replace("weights_reject_freq=5", "").replace(
        "batch_normalize=1\nfilters=5", "batch_normalize=1\ntrain_only_bn=1\nfilters=5"),
        _detector_batch, 3, 0),
    "adversarial_lr": (test_adversarial.CFG.format(extra="burn_in=0\n").replace(
        "burn_in=10\n", ""), test_adversarial.batch, 4, 1),
    # the skipped updates' gradients kept on the device for the first update
    "dont_update": (test_update_options.SKIPPED.format(option="dont_update=2", burn_in=0),
                    _skipped_batch, 4, 0),
}
REJECT_CASES = sorted(test_yolo_reject.CASES)


def train(name, device):
    """(losses, every parameter after the iterations) of CASES[name] on ``device``."""
    cfg, make_batch, iterations, start = CASES[name]
    net = load_cfg_text(cfg, device=device, seed=0)
    net.iteration = start
    x, t = make_batch()
    losses = [net.train_iteration(x, t) for _ in range(iterations)]
    net.params_to_host()
    return np.array(losses), [p.copy() for layer in net.layers for p in layer.params.values()]


def rejected_deltas(name, device):
    """The [yolo] deltas of test_yolo_reject's case over its passes on ``device`` (the
    rolling statistics carried)."""
    net = load_cfg_text(test_yolo_reject.cfg_text(name), device=device)
    net.iteration = test_yolo_reject.CASES[name]["iteration"]
    x, truths = test_yolo_reject.case_inputs(name)
    out = []
    for p in range(test_yolo_reject.PASSES):
        net.forward(x[p], train=True, truths=truths[p])
        out.append(np.array(net.backend.to_numpy(net.deltas[0])).reshape(-1))
    return out


def largest_difference(name, device):
    """The largest difference, relative to the CPU's largest value, between the CPU and
    ``device`` over the case's losses and parameters (or a rejection case's deltas)."""
    if name in CASES:
        (lc, pc), (ld, pd) = train(name, "cpu"), train(name, device)
        pairs = [(lc, ld)] + list(zip(pc, pd))
    else:
        pairs = list(zip(rejected_deltas(name, "cpu"), rejected_deltas(name, device)))
    return max(float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30)) for a, b in pairs)
