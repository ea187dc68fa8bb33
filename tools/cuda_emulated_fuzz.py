"""Random networks on the CUDA backend's emulated device against the CPU backend.

    python tools/cuda_emulated_fuzz.py 0 500 [--kernels host|numpy] [--conv both|cudnn|gemm]
                                             [--precision fp32|fp16] [--keep DIR] [--tol 1e-3]
                                             [--real] [--budget S] [--resize]

Each seed takes a random network of tools/darknet_forward_oracle.py's generator (every layer
type Darknet's forward oracle runs; every fifth seed a recurrent network of [rnn], [lstm],
[gru], [crnn], [conv_lstm] and [history] instead) with random weights, and runs it twice: on the CPU backend
and on ``cuda:0`` of tests/test_cuda_backend.py's fake device, whose kernels are the CUDA
sources of cuda/ compiled for the CPU (tests/cuda_host.py; ``--kernels numpy``: their numpy
transcriptions). Convolutions go to the emulated cuDNN on even seeds and to the im2col
kernels + cuBLAS on odd ones (``--conv``); [yolo] heads get one of the training oracle's loss
options (CIoU, focal loss, label smoothing, ...). Compared, layer by layer: the inference forward; a training pass's outputs,
deltas and gradients (objective sum(r * y)); and two training iterations' losses and weights
(detectors on random boxes, other networks on one-hot rows). The fixed cases of
tests/test_cuda_emulated_networks.py check the same plumbing on Darknet's oracles; this finds
the layer sequences and options they do not have, before a GPU session spends its minutes on
them. A difference names the seed, the stage and the first layer; ``--keep`` writes its cfg.
``--real`` runs on a real GPU instead (tools/gpu_run.sh's optional ``fuzz`` step, TF32 off);
``--budget`` stops after that many seconds. ``--resize``: the networks are resized between
the two training iterations (random=1's Network.resize) to a size of the seed's own generator,
the second iteration on new images of that size (seeds whose network cannot take another size,
a [connected] sized by its input, train as without it).

``--precision fp16`` runs the device with ``set_precision("fp16")``: its convolutions read fp16
copies of their operands (x and w forward, delta with x for dw and with w for dx) and sum in
float32. The CPU side is then :class:`Fp16Model`, the CPU backend with the same operands
rounded to fp16, so fp16's own rounding is on both sides (a random network can amplify it a
hundredfold, or make it a gradient's whole value where that gradient is zero but for rounding).
What stays apart is a value the device's float32 rounding puts on the other side of the middle
between two fp16 numbers; the judge below measures what the network makes of that with a second
model whose operands are moved by a quarter fp16 step before the rounding (seeds 0-400: where
the device's error passes ``--tol`` it is at most half that spread; a wrong offset in the fp16
GEMMs' operands is found within 150 seeds). On a real GPU cuDNN may run an fp16 setting in
float32 (an algorithm without tensor cores), so there ``--real --precision fp16`` takes the
im2col + cuBLAS path, whose GemmEx always rounds.

The judge: the device's results may differ from the CPU's by rounding (its reductions sum in
another order than Darknet's CPU loops), which ill-conditioned random networks amplify. So the
CPU runs twice more with the input and every parameter moved by about 2^-20 of themselves,
the first time with every layer's output as its forward makes it moved too (``move_outputs``:
the device rounds each layer on its own), and an item differs only where the device is
further from the CPU than ``--tol`` (relative to the largest value) and than a hundred times
the larger spread. (Two runs: a gradient that is all rounding, a bias before a batch norm,
takes few values, steps of 2^-21 in seeds 1339 and 1604, which one moved run can give as the
plain run did; the other then shows the spread.) Networks whose training is rounding noise
on either side are skipped (batch statistics of one or two values; a layer whose output is
one value, as a softmax over one channel); Adam runs only on networks without batch norm (a
bias before a batch norm has no gradient but noise, and Adam's first steps turn its sign
into +-learning_rate); a CPU result near FLT_MAX ends the comparison ("overflow": a max-pool window wholly in the padding gives -FLT_MAX, as in
Darknet). Moving the outputs took in what the judge let through before, about once in 3,000
seeds: rounding at a kink (seed 5845: a batch-norm output of about 1e-7 on either side of
zero takes revleaky's gradient of 1 on one side and 10 on the other), and gradients that are
zero or nearly so but for rounding, a bias whose shift a batch norm further on removes (seed
27833: 0.12 summed from 768 deltas of up to 38; seed 30279: a one-step batch-normalised
[crnn]'s self layer, 0 on the CPU and 1.3e-5 on the device against gradients of up to 300),
where the CPU's own spread had kept the cancellation. It costs little: the device off by
0.5% in one value of backward_bias is found in 55 of seeds 0-199 (58 without the output
moves), in one value of shortcut_add in 9 (9). Where the iterations differ after an output
the device put on the other side of its activation's kink than the CPU did, the verdict is
"kink" (``crosses_kink``: an iteration's rounding can carry a value across where the 2^-20
moves do not; seed 5115 with --resize); the backward_bias mutant is still found in 55 of
seeds 0-199, with and without --resize, none called a kink.
"""

import argparse
import contextlib
import pathlib
import sys
import tempfile
import time
import traceback
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from cfg_mutation_fuzz import random_truths  # noqa: E402
from darknet_iteration_fuzz import KINKS  # noqa: E402
from darknet_forward_oracle import (YOLO_OPTIONS, act, move_each_output,  # noqa: E402
                                    random_cfg, randomize, recurrent_cfg)
from pydarknet.backend import get_backend  # noqa: E402
from pydarknet.backend.base import Backend  # noqa: E402
from pydarknet.backend.cpu import CpuBackend  # noqa: E402
from pydarknet.errors import PydarknetError  # noqa: E402
from pydarknet.heads import detection_heads  # noqa: E402
from pydarknet.network import load_cfg_text  # noqa: E402
from pydarknet.passes import backward_pass, forward_pass  # noqa: E402

NET_OPTIONS = ["", "momentum=0.9\ndecay=0.0005\n",
               "momentum=0.5\ndecay=0.01\nlearning_rate=0.01\n",
               "learning_rate=0.1\nburn_in=2\n", "adam=1\nlearning_rate=0.01\n"]


def relative(a, b, floor=1e-3):
    """max |a - b| over max |b| (at least ``floor``); NaN where both have it counts as equal."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return np.inf
    if not a.size:
        return 0.0
    both_nan = np.isnan(a) & np.isnan(b)
    d = np.where(both_nan, 0, np.abs(a - b))
    return float(np.nanmax(d) / max(float(np.nanmax(np.abs(b))), floor)) \
        if not np.isnan(d).any() else np.inf


def one_pass(net, x, train, r=None):
    """Outputs (and with ``r``, deltas and gradients) of one pass, as numpy."""
    B = net.backend
    if train:
        net.ensure_training()
        for layer in net.layers:
            for g in layer.grads.values():
                B.fill(g, 0)
    net.rng = np.random.default_rng(7)
    state = forward_pass(net, B.from_numpy(x), train=train)
    outputs = [B.to_numpy(o).copy() for o in state.outputs]
    if r is None:
        return outputs, [], []
    B.copy_from_numpy(state.deltas[-1], r)
    backward_pass(net, state)
    deltas = [B.to_numpy(d).copy() for d in state.deltas]
    grads = [B.to_numpy(g).copy() for l in net.layers for _, g in sorted(l.grads.items())]
    return outputs, deltas, grads


def params_of(net):
    net.params_to_host()
    out = {f"{l.index} {l.layer_type} {k}": np.array(a) for l in net.layers
           for k, a in sorted(l.params.items())}
    net.params_to_device()
    return out


def few_value_batch_norm(net, batch):
    """Whether a training batch norm of ``net`` normalises one or two values a channel."""
    return any((getattr(l, "batch_normalize", 0) or l.layer_type == "batchnorm") and
               batch * l.out_h * l.out_w <= 2 for l in net.layers)


class Fp16Model(CpuBackend):
    """The CPU backend with the convolutions' operands rounded to fp16 (round to nearest even;
    beyond 65504: inf), as the CUDA backend's ``set_precision("fp16")`` rounds them: the model
    an fp16 device is judged against. ``moved``: each operand is first moved by a quarter of
    an fp16 step (2^-12 of itself), so that a good part of them round to the neighbouring
    fp16 number: the device's float32 rounding does that to a few values near the middle
    between two, and the moved model's spread shows how much the network makes of it (a
    perturbation of the input and the parameters alone vanishes in the rounding)."""

    def __init__(self, moved=False):
        super().__init__()
        self.moved = np.random.default_rng(11) if moved else None

    def _half(self, a):
        if self.moved is not None:
            a = perturbed(a, self.moved, 2.0 ** -12)
        with np.errstate(over="ignore"):
            return a.astype(np.float16).astype(np.float32)

    def _conv2d(self, x, w, out, geo):
        return super()._conv2d(self._half(x), self._half(w), out, geo)

    # unfused, the base class's (the CPU's fused paths would convolve the unrounded operands)
    _conv2d_activate_inference = Backend._conv2d_activate_inference

    def _conv2d_backward(self, x, w, delta, dx, dw, geo):
        return super()._conv2d_backward(self._half(x), self._half(w), self._half(delta), dx,
                                        dw, geo)


def cpu_side(moved=False):
    """What the device is compared with: the CPU backend, or :class:`Fp16Model` where the
    device runs fp16."""
    return Fp16Model(moved) if get_backend("cuda:0").get_precision() == "fp16" else "cpu"


def build_nets(text, batch, params):
    """The network on the CPU, moved twice on the CPU and on the device, with ``params`` (four
    lists of per-layer dicts: the second and third perturbed), the first moved one moving
    every layer's output too (``move_outputs``): fresh ones for each stage, as training passes
    move batch-norm averages."""
    nets = [load_cfg_text(text, batch=batch, path="fuzz.cfg", device=device, init=False)
            for device in (cpu_side(), cpu_side(moved=True), cpu_side(moved=True), "cuda:0")]
    for net, values_of in zip(nets, params):
        net.params_to_host()
        for layer, values in zip(net.layers, values_of):
            for k, v in values.items():
                layer.params[k] = np.array(v)
        net.params_to_device()
    move_outputs(nets[1])
    return nets


def move_outputs(net, step=2.0 ** -20):
    """Every layer's output of ``net`` (a CPU one) moved by ``step`` of itself at random as
    its forward makes it: the device rounds each layer on its own, so its spread shows in
    what a layer makes of its input's rounding (a sum that cancels, a max-pool's near-ties, a
    batch norm of nearly equal values) beyond what moving the input and parameters shows
    (seed 30279: a bias gradient the CPU sums to exactly 0 with and without those moves)."""
    rng = np.random.default_rng(0)

    def move(out, layer):
        if isinstance(out, np.ndarray) and out.dtype == np.float32 and out.flags.writeable:
            out *= 1 + rng.choice(np.float32([-step, step]), out.shape)
        return out
    move_each_output(net, move)


class Overflow(Exception):
    """The CPU's own result holds inf, NaN or values near FLT_MAX (a max-pool window wholly in
    the padding gives -FLT_MAX, as Darknet's): nothing further to compare."""


def perturbed(x, rng, step=2.0 ** -20):
    """``x`` with every value moved by ``step`` of itself, up or down at random: how far the
    CPU's own results move with the input and the parameters moved by 2^-20 is the network's
    sensitivity to rounding, which the device may show too."""
    return (x * (1 + rng.choice([-1, 1], x.shape) * step)).astype(np.float32)


def first_difference(label, device, cpu, moved, tol):
    """The first item where the device is further from the CPU than ``tol`` and than a
    hundred times the CPU's own spread under the perturbations (``moved``: each moved CPU
    run's results; the largest spread counts). An item is measured against its own largest
    value, but at least 1e-4 of the stage's largest (all items): a gradient that is all
    rounding (the biases before a batch norm) may be exactly 0 on the CPU, moved or not, and
    1e-6 on the device (seed 9179: an [rnn]'s batch-normalised self layer, against gradients
    of up to 43)."""
    named = (lambda v: v.items()) if isinstance(device, dict) else enumerate
    largest = max((float(np.nanmax(np.abs(np.asarray(c, np.float64))))
                   for _, c in named(cpu) if np.size(c)), default=0.0)
    floor = max(1e-3, 1e-4 * largest) if np.isfinite(largest) else 1e-3
    for (i, d), (_, c), *ms in zip(named(device), named(cpu), *(named(m) for m in moved)):
        if not np.isfinite(c).all() or np.abs(c).max(initial=0) > 1e30:
            raise Overflow(f"{label} {i}")
        e, spread = relative(d, c, floor), max(relative(m[1], c, floor) for m in ms)
        if e > max(tol, 100 * spread):
            return f"{label} {i}: off by {e:.3g} (the CPU's spread {spread:.2g})"
    return None


def network(seed, more=False):
    """(rng, cfg text, batch) of one seed: a random network with [net] options; every fifth
    seed a recurrent one. ``more``: random_cfg's more layer kinds."""
    rng = np.random.default_rng(seed)
    if seed % 5 == 4:
        text, batch = recurrent_cfg(rng)
    else:
        text, batch = random_cfg(rng, more=more)[:2]
    options = str(rng.choice(NET_OPTIONS))
    if "adam" in options and ("batch_normalize=1" in text or "[batchnorm]" in text):
        # a bias before a batch norm has no gradient but rounding noise, whose sign Adam's
        # first steps turn into +-learning_rate
        options = NET_OPTIONS[1]
    text = text.replace("[net]\n", "[net]\n" + options, 1)
    text = text.replace("[yolo]\n", "[yolo]\n" + str(rng.choice(YOLO_OPTIONS)))
    return rng, text, batch


def record_kinked_outputs(net, store):
    """Each pass's output of every layer of ``net`` whose activation's gradient jumps
    (KINKS), appended to ``store[layer index]`` as (activation, host copy)."""
    for layer in net.layers:
        if getattr(layer, "activation", None) in KINKS:
            def recording(x, state, layer=layer, forward=layer.forward):
                y = forward(x, state)
                store.setdefault(layer.index, []).append(
                    (layer.activation, np.array(net.backend.to_numpy(y))))
                return y
            layer.forward = recording


def crosses_kink(cpu, device):
    """Whether an output the device made lies on the other side of its activation's kink
    than the CPU's (``record_kinked_outputs``' stores): the gradient there is another one
    (seed 5115 with --resize: one ramp output of 2.2e-5 on the CPU, -2.7e-6 on the device,
    5e-6 of the layer's largest, after an iteration whose rounding the 2^-20 moves did not
    reach), and what follows differs by the jump, not by an error."""
    for index, outputs in cpu.items():
        for (activation, a), (_, b) in zip(outputs, device.get(index, [])):
            if a.shape == b.shape and any(((a > k) != (b > k)).any() for k in KINKS[activation]):
                return True
    return False


def new_size(seed, net):
    """A (width, height) ``net`` resizes to, drawn from the seed's own generator (the network
    stays the seed's), or None: of 12 sizes from 4 to twice the cfg's, the first that
    builds. ``net`` is left at its size."""
    rng = np.random.default_rng([seed, 3])
    W, H = net.net.width, net.net.height
    for _ in range(12):
        w, h = (int(rng.integers(4, max(2 * d, 4) + 1)) for d in (W, H))
        try:
            net.resize(w, h)
        except PydarknetError:
            continue
        finally:
            net.resize(W, H)
        if (w, h) != (W, H):
            return w, h
    return None


def compare(seed, tol, more=False, resize=False):
    """(verdict, detail) of one seed: 'ok', 'skipped', 'differs' or, where the iterations
    differ after an output on the other side of an activation's kink, 'kink'
    (``crosses_kink``). ``resize``: the networks resized between the two iterations
    (``new_size``)."""
    rng, text, batch = network(seed, more)
    master = load_cfg_text(text, batch=batch, path="fuzz.cfg")
    randomize(master, rng)
    params = [dict(layer.params) for layer in master.layers]
    moved = [{k: perturbed(v, rng) for k, v in p.items()} for p in params]
    params = (params, moved, moved, params)
    x = rng.uniform(0, 1, (master.batch,) + tuple(master.input_shape)).astype(np.float32)
    x2 = perturbed(x, rng)
    inputs = (x, x2, x2, x)
    c, m, m2, d = (one_pass(n, v, False)[0]
                   for n, v in zip(build_nets(text, batch, params), inputs))
    bad = first_difference("inference output of layer", d, c, (m, m2), tol)
    if bad:
        return "differs", bad
    if few_value_batch_norm(master, batch) or any(
            o.size > 1 and np.ptp(o) <= 1e-3 * np.abs(o).max() for o in c) or any(
            l.layer_type == "softmax" and l.inputs == l.groups for l in master.layers):
        # batch statistics of one or two values (normalised to 0 or +-1 whatever the input),
        # or a layer whose output is (nearly) one value, or 1 whatever the input (a softmax
        # over one channel, of one value a group): their gradients are zero but for rounding
        # noise, on either side. (Nearly: normalize_channels_softmax over one channel gives
        # 1 - 1e-4 or so, whose float32 steps a batch norm further on blows up to a tenth of its
        # output, seed 21093; the CPU's own spread does not show another rounding's steps.)
        return "skipped", ""
    if detection_heads(master):
        truths = random_truths(master, rng)
    else:
        r = rng.standard_normal(c[-1].shape).astype(np.float32)
        c, m, m2, d = (one_pass(n, v, True, r)
                       for n, v in zip(build_nets(text, batch, params), inputs))
        for k, label in enumerate(("training output of layer", "delta of layer", "gradient")):
            bad = first_difference(label, d[k], c[k], (m[k], m2[k]), tol)
            if bad:
                return "differs", bad
        # one-hot rows, one an image and time step
        truths = np.zeros((master.batch, master.layers[-1].outputs), np.float32)
        truths[np.arange(master.batch), rng.integers(0, truths.shape[1], master.batch)] = 1
    nets = build_nets(text, batch, params)
    size = resize and new_size(seed, master)
    kinked = ({}, {})       # the CPU's and the device's outputs at kinks
    record_kinked_outputs(nets[0], kinked[0])
    record_kinked_outputs(nets[3], kinked[1])
    for k in (1, 2):
        if k == 2 and size:
            for n in nets:
                n.resize(*size)
            move_outputs(nets[1])       # (its layers are new)
            record_kinked_outputs(nets[0], kinked[0])
            record_kinked_outputs(nets[3], kinked[1])
            x = rng.uniform(0, 1, (master.batch, master.input_shape[0], size[1],
                                   size[0])).astype(np.float32)
            x2 = perturbed(x, rng)
            inputs = (x, x2, x2, x)
            if truths.ndim == 2 and truths.shape[1] != nets[0].layers[-1].outputs:
                truths = np.zeros((master.batch, nets[0].layers[-1].outputs), np.float32)
                truths[np.arange(master.batch),
                       rng.integers(0, truths.shape[1], master.batch)] = 1
        losses = [[n.train_iteration(v, truths)] for n, v in zip(nets, inputs)]
        bad = first_difference(f"iteration {k}: loss", losses[3], losses[0], losses[1:3], tol)
        state = [params_of(n) for n in nets]
        bad = bad or first_difference(f"iteration {k}: parameter of layer", state[3], state[0],
                                      state[1:3], tol)
        if bad:
            return ("kink" if crosses_kink(*kinked) else "differs"), bad
    return "ok", ""


def judge(seed, tol=1e-3, conv="both", precision="fp32", more=False, resize=False):
    """(verdict, detail) of one seed on an initialised (emulated) device: 'ok', 'skipped',
    'overflow', 'refused' (a PydarknetError, as on the CPU), 'differs' or 'error'. ``conv``:
    "cudnn", "gemm" or "both" (cuDNN on even seeds); ``precision``: the device's, "fp32" or
    "fp16" (judged against :class:`Fp16Model`); ``more``: random_cfg's more layer kinds;
    ``resize``: compare's."""
    dev = get_backend("cuda:0")
    dev.set_cudnn(conv == "cudnn" or (conv == "both" and seed % 2 == 0))
    saved = dev.get_precision()
    dev.set_precision(precision)
    try:
        return compare(seed, tol, more, resize)
    except Overflow as e:
        return "overflow", str(e)
    except PydarknetError as e:
        return "refused", str(e).splitlines()[0]
    except Exception:
        return "error", traceback.format_exc(limit=-3).strip()
    finally:
        dev.set_precision(saved)


def device(tmp, args):
    """The emulated device (tests/test_cuda_backend.py's), or nothing to set up for a real one."""
    if args.real:
        get_backend("cuda:0")       # fails here, naming why, where the GPU does not start
        return contextlib.nullcontext()
    from test_cuda_backend import fake_device
    return fake_device(tmp, kernels=args.kernels)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("first", type=int)
    ap.add_argument("last", type=int)
    ap.add_argument("--kernels", choices=["host", "numpy"], default="host")
    ap.add_argument("--conv", choices=["both", "cudnn", "gemm"])
    ap.add_argument("--precision", choices=["fp32", "fp16"], default="fp32")
    ap.add_argument("--keep", type=pathlib.Path)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--real", action="store_true", help="cuda:0 is a real GPU")
    ap.add_argument("--budget", type=float, default=float("inf"), help="seconds")
    ap.add_argument("--more-layers", action="store_true",
                    help="random networks of more layer kinds (random_cfg's more)")
    ap.add_argument("--resize", action="store_true",
                    help="resize the networks between the two training iterations")
    args = ap.parse_args()
    if args.real and args.precision == "fp16":
        if args.conv not in (None, "gemm"):
            ap.error("--real --precision fp16 runs the im2col + cuBLAS path only (cuDNN may "
                     "keep an fp16 setting in float32, which the fp16 model would call a "
                     "difference): leave out --conv or give --conv gemm")
        args.conv = "gemm"
    args.conv = args.conv or "both"
    warnings.simplefilter("ignore")
    counts = {}
    end = time.monotonic() + args.budget
    with tempfile.TemporaryDirectory() as tmp, device(tmp, args):
        for seed in range(args.first, args.last):
            if time.monotonic() > end:
                print(f"budget spent: seeds {args.first}..{seed - 1}")
                break
            try:
                verdict, detail = judge(seed, args.tol, args.conv, args.precision,
                                        args.more_layers, args.resize)
            except KeyboardInterrupt:
                print(f"interrupted: seeds {args.first}..{seed - 1}")
                break
            counts[verdict] = counts.get(verdict, 0) + 1
            if verdict in ("differs", "error"):
                print(f"seed {seed}: {verdict}: {detail}", flush=True)
                if args.keep:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    (args.keep / f"seed{seed}.cfg").write_text(
                        network(seed, args.more_layers)[1])
    print("counts: " + " ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 1 if counts.get("differs") or counts.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
