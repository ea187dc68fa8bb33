"""AB Darknet's training iterations against pydarknet's: random networks trained on both,
every parameter compared after each iteration.

    git clone https://github.com/AlexeyAB/darknet /tmp/dn-gpusem
    python tools/darknet_gpusem_patch.py /tmp/dn-gpusem
    (cd /tmp/dn-gpusem && make LIBSO=1 OPTS=-O2)
    python tools/darknet_iteration_fuzz.py /tmp/dn-gpusem 0 500 [--keep DIR] [--more-layers]
    python tools/darknet_iteration_fuzz.py /tmp/dn-gpusem --regenerate   # the test's oracle

Each seed is a network of tools/darknet_forward_oracle.py's generator ending in a [yolo],
[Gaussian_yolo], [region] or classifier head, with random [net] optimiser options
(subdivisions, learning rate, momentum, decay, burn_in and power, the policies but random,
Adam in a fifth of them) and per-layer update options (learning_rate=, dont_update,
burnin_update, stopbackward, train_only_bn, onlyforward; grad_centr and clip on
convolutions, clip on [implicit]); with --loss-scale a [net] loss_scale and the heads'
delta_normalizer (``scaled_losses``); with --ema a [net] ema_alpha, the network trained
from where its moving average starts (``moving_average``); with --two-heads a second [yolo]
or [Gaussian_yolo] head (``second_head``); with --resize the network resized after the
first iteration (``resized_size``: AB's resize_network, random=1's). Darknet trains it with
tools/darknet_iteration_oracle.c: AB's CPU build patched to the semantics of its GPU build
(tools/darknet_gpusem_patch.py: the reference data's -gpusem runs, and the GPU build's
updates), which pydarknet implements.
After each iteration every weight, bias, scale and rolling statistic is compared, and the
loss and learning rate. Build it with OPTS=-O2: AB's default -Ofast compiles fix_nan_inf's
isinf away and turns a logistic of -inf into NaN (a [Gaussian_yolo] sigma delta of -inf
clipped to -max_delta where the GPU build's is 0), which the -O2 build does not.
No recurrent layers: their training is where pydarknet takes the true gradient and AB's own
backwards differ (README); a trial with the forward oracle's recurrent generator differed in
27 of 100 seeds.

A parameter passes where pydarknet's differs from Darknet's by at most 1e-3 of Darknet's
change of it since the start (the update's own size), 1e-4 of the largest change of the
layer's parameters and 6e-7 of its largest value (``parameter_error``; a rolling statistic
to 1e-3 of its change), the loss to 1e-3 (a run that diverges rounds its loss of 1e5 on)
and the roundings of Darknet's float32 sum of it (``cost_values``);
past that, "rounding" where pydarknet's own run, moved by 2^-20, differs as much.
Left out, as in the forward oracle's --fuzz-backward: [dropout] and [crop] (their draws are
Darknet's rand()), antialiasing (AB's CPU backward leaves the blur out), share_index (README:
deliberate difference, a pair of layers sharing weights is updated once), a training batch
norm of one value a channel (README: deliberate difference), AB's CPU [shortcut] reading
past a layer's output and a layer sending a delta to a frozen one (``reads_frozen_delta``:
AB crashes).
"""

import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import traceback

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from darknet_forward_oracle import (HEAD_SECTIONS, MARGIN,  # noqa: E402
                                    _one_value_batch_norm, _shortcut_reads_past,
                                    compile_against, head_options, move_outputs, move_values,
                                    moved, randomize, random_cfg)
from pydarknet.errors import PydarknetError  # noqa: E402
from pydarknet.network import load, load_cfg_text  # noqa: E402
from oracle_inputs import random_truths  # noqa: E402
from test_darknet_iterations import parameter_error  # noqa: E402

HEADS = ["yolo", "gauss", "region", "classifier"]
POLICIES = ["policy=constant\n", "policy=steps\nsteps=2,3\nscales=0.5,3\n",
            "policy=step\nstep=2\nscale=0.5\n", "policy=poly\nmax_batches=8\n",
            "policy=exp\ngamma=0.8\n", "policy=sigmoid\ngamma=0.7\nstep=2\n",
            "policy=sgdr\nsgdr_cycle=2\nsgdr_mult=2\nlearning_rate_min=0.0001\n"]


def net_options(rng):
    """The [net] section's optimiser options: learning rate, momentum, decay, burn-in, a
    learning-rate policy (not "random": its draws are Darknet's rand()) and in a fifth of the
    cfgs Adam."""
    burn_in = int(rng.choice([0, 0, 2, 5]))
    text = (f"learning_rate={10 ** rng.uniform(-4, -2):.4g}\n"
            f"momentum={rng.choice([0.9, 0.9, 0.5, 0])}\n"
            f"decay={rng.choice([0.0005, 0.01, 0.1, 0])}\n"
            f"burn_in={burn_in}\npower={rng.choice([4, 1, 2])}\n"
            + str(rng.choice(POLICIES)))
    if rng.random() < 0.2:
        text += (f"adam=1\nB1={rng.choice([0.9, 0.8])}\nB2={rng.choice([0.999, 0.99])}\n"
                 f"eps={rng.choice([0.000001, 0.0001])}\n")
    return text


def layer_options(rng, section):
    """An update option for a quarter of the layers."""
    if rng.random() >= 0.25:
        return ""
    kinds = ["learning_rate", "learning_rate", "dont_update", "burnin_update", "stopbackward",
             "stopbackward1", "train_only_bn", "onlyforward"]
    if section.startswith("[convolutional]"):
        kinds += ["grad_centr", "grad_centr", "clip", "clip", "clip"]
    if section.startswith("[implicit]"):
        kinds += ["clip", "clip", "clip"]
    kind = rng.choice(kinds)
    if kind == "learning_rate":
        return f"learning_rate={rng.uniform(0.1, 3):.3g}\n"
    if kind == "dont_update":
        return f"dont_update={rng.integers(1, 4)}\n"
    if kind == "stopbackward":
        return f"stopbackward={rng.integers(2, 4)}\n"
    if kind == "stopbackward1":
        return "stopbackward=1\n"
    if kind == "clip":
        return f"clip={rng.uniform(0.05, 0.5):.3g}\n"
    return f"{kind}=1\n"


def random_training(rng, kind, more):
    """(cfg text, mini-batch, subdivisions, C, H, W) of a random trainable network."""
    text, mini, C, H, W = random_cfg(rng, head=kind, more=more)
    if kind in HEAD_SECTIONS:
        section = HEAD_SECTIONS[kind][0]
        classes = int(text.split(section)[1].split("classes=")[1].split("\n")[0])
        text = text.replace(section, section + head_options(rng, kind, classes))
    sub = int(rng.integers(1, 4))
    sections = re.split(r"\n(?=\[)", text)
    sections[0] = (f"[net]\nbatch={mini * sub}\nsubdivisions={sub}\nwidth={W}\nheight={H}\n"
                   f"channels={C}\n" + net_options(rng))
    heads = ("[yolo]", "[Gaussian_yolo]", "[region]", "[softmax]", "[cost]")
    for i in range(1, len(sections)):
        if not sections[i].startswith(heads):
            sections[i] = sections[i].rstrip("\n") + "\n" + layer_options(rng, sections[i])
    return "\n".join(sections), mini, sub, C, H, W


def scaled_losses(seed, text):
    """``text`` with a [net] loss_scale (AB's GPU build: the [yolo] and [softmax] deltas
    multiplied by it, the updates divided by it, each layer kind its own way) and in half the
    cfgs a delta_normalizer on the [yolo] or [Gaussian_yolo] head; drawn from their own
    generator, so that a seed's network is the one it is without them."""
    rng = np.random.default_rng([seed, 1])
    text = text.replace("[net]\n", f"[net]\nloss_scale={rng.choice([0.5, 4, 128, 1000])}\n", 1)
    for head in ("[yolo]\n", "[Gaussian_yolo]\n"):
        if head in text and rng.random() < 0.5:
            text = text.replace(head, f"{head}delta_normalizer={rng.uniform(0.3, 3):.3g}\n")
    return text


def second_head(seed, text):
    """``text`` with a second head beside its [yolo] or [Gaussian_yolo] one (as YOLOv3's and
    YOLOv4's): a [route] back to the layer the head reads, the head's convolution and head
    again for the fourth anchor alone (mask=3; the first head's 0,1,2), its options kept.
    Other heads, or a head right after [net]: ``text`` unchanged. (Nothing drawn: ``seed``
    is not read.)"""
    for head in ("[yolo]\n", "[Gaussian_yolo]\n"):
        if head in text:
            body, last = text.rsplit("\n[convolutional]\n", 1)
            if "\n[" not in body:
                return text
            copy = last.replace("mask=0,1,2\n", "mask=3\n", 1)
            filters = int(copy.split("filters=")[1].split("\n")[0])
            copy = copy.replace(f"filters={filters}\n", f"filters={filters // 3}\n", 1)
            return (f"{body}\n[convolutional]\n{last.rstrip()}\n\n[route]\nlayers=-3\n\n"
                    f"[convolutional]\n{copy}")
    return text


# --ema: the run's iterations (from the weights file's images seen, EMA_START x batch) cover
# the moving average's start (max_batches / 2: set to the weights, then averaged), an averaging
# and its apply point (max_batches - 1000: the weights replaced by the averages)
EMA_MAX_BATCHES, EMA_START = 2004, 1001


def moving_average(seed, text):
    """``text`` with a [net] ema_alpha and max_batches=EMA_MAX_BATCHES (its own generator,
    as ``scaled_losses``)."""
    rng = np.random.default_rng([seed, 2])
    text = re.sub(r"max_batches=\d+\n", "", text)
    return text.replace("[net]\n", f"[net]\nmax_batches={EMA_MAX_BATCHES}\n"
                        f"ema_alpha={rng.choice([0.9998, 0.99, 0.9, 0.5])}\n", 1)


# the options that change a seed's cfg (--loss-scale, --ema, --two-heads): name -> f(seed, text)
EXTRAS = {"loss_scale": scaled_losses, "ema": moving_average, "two_heads": second_head}

# the layers AB's resize_network resizes (any other ends it with "Cannot resize this type of
# layer": [connected], [local], [softmax], [implicit], [activation], [empty], ...)
AB_RESIZES = {"convolutional", "crnn", "conv_lstm", "crop", "maxpool", "local_avgpool",
              "batchnorm", "region", "yolo", "gaussian_yolo", "route", "shortcut",
              "scale_channels", "sam", "dropout", "upsample", "reorg", "reorg_old", "avgpool",
              "normalization", "cost"}


def resized_size(seed, net, mini):
    """(width, height) ``net`` takes after the first iteration with --resize (it is left at
    its size),
    or None where AB cannot resize it (a layer outside AB_RESIZES) or none of 12 sizes drawn
    from its own generator (as ``scaled_losses``) builds without what the fuzz skips (a
    [shortcut] reading past, a batch norm of one value, ``reorg3d_mixes_images``,
    ``resized_shortcut_resamples``): a size the width's and height's own multiples of 8 away
    half the time (where strided layers keep routes and shortcuts aligned), any from 4 to
    twice the size else (odd sizes: each layer's rounding of its output size)."""
    if any(l.layer_type not in AB_RESIZES for l in net.layers):
        return None
    rng = np.random.default_rng([seed, 3])
    W, H = net.net.width, net.net.height
    for _ in range(12):
        if rng.random() < 0.5:
            w, h = (max(8, d + 8 * int(rng.integers(-2, 4))) for d in (W, H))
        else:
            w, h = (int(rng.integers(4, 2 * d + 1)) for d in (W, H))
        if (w, h) == (W, H):
            continue
        try:
            net.resize(w, h)
        except PydarknetError:
            continue
        fits = not (_one_value_batch_norm(net, mini) or _shortcut_reads_past(net) or
                    reorg3d_mixes_images(net, mini) or resized_shortcut_resamples(net))
        net.resize(W, H)
        if fits:
            return w, h
    return None


def resized_shortcut_resamples(net):
    """Whether a [shortcut] adds a layer of another size than its own: AB builds such a
    shortcut (shortcut_cpu samples the larger), but its resize_shortcut_layer asserts equal
    sizes (--more-layers --resize seeds 22524, 22768)."""
    return any(l.layer_type == "shortcut" and
               any((net.layers[i].out_w, net.layers[i].out_h) != (l.w, l.h) for i in l.layers)
               for l in net.layers)


def reorg3d_mixes_images(net, mini):
    """Whether a [reorg3d] of an input not a multiple of its stride wide or high meets a
    mini-batch of more than one image: Darknet reads each image after the first partly from
    the one before, pydarknet each image's own (README: deliberate difference; --resize seeds
    730, 890, 1517: a reorg3d resized to 41x10)."""
    return mini > 1 and any(l.layer_type == "reorg" and not l.reverse and
                            (l.w % l.stride or l.h % l.stride) for l in net.layers)


def reads_frozen_delta(net):
    """Whether a layer after the last stopbackward=1 sends a delta to one before it (a
    [route], [shortcut], [sam] or [scale_channels] reading it, or the next layer when the
    stopbackward one is an [empty] or [dropout], whose delta is its input's): AB's training
    parse gives the frozen layer no delta buffer, and the backward writes through NULL."""
    last = max((l.index for l in net.layers if l.stopbackward == 1), default=-1)
    return last > 0 and net.layers[last].shares_input_delta or \
        any(i < last for l in net.layers[last + 1:] if not l.onlyforward
            for i in list(getattr(l, "layers", [])) + [getattr(l, "from_index", last)])


def write_case(tmp, text, net, x, truths):
    """The oracle's inputs: tmp/n.cfg, n.weights (``net``'s parameters), x.bin (``x``: the
    images, or a list of each iteration's), t.bin."""
    (tmp / "n.cfg").write_text(text)
    net.save_weights(str(tmp / "n.weights"))
    np.concatenate([np.ravel(a) for a in x]).astype(np.float32).tofile(tmp / "x.bin")
    np.ascontiguousarray(truths, np.float32).tofile(tmp / "t.bin")


def darknet_parameters(tmp, text, k):
    """A network of ``text`` with Darknet's parameters after iteration k. (Darknet transposes
    a flipped=1 layer's weights when it loads them, not when it saves them: its file holds
    them as trained.)"""
    ab = load_cfg_text(text.replace("flipped=1", "flipped=0"))
    ab.load_weights(tmp / f"ab.{k}.weights")
    return ab


def darknet_iterations(exe, darknet, tmp, iterations, size=None):
    """Darknet's (loss, rate) of each iteration; its weights are in tmp/ab.K.weights.
    ``size``: (width, height) the network is resized to after the first iteration."""
    r = subprocess.run([str(exe), str(tmp / "n.cfg"), str(tmp / "n.weights"),
                        str(tmp / "x.bin"), str(tmp / "t.bin"), str(iterations),
                        str(tmp / "ab")] + [str(d) for d in size or ()],
                       capture_output=True, timeout=600,
                       env=dict(os.environ, LD_LIBRARY_PATH=str(darknet)))
    if r.returncode:
        lines = r.stderr.decode(errors="replace").strip().splitlines() or [""]
        raise RuntimeError(f"Darknet exited with {r.returncode}: {lines[-1][-200:]}")
    return np.fromfile(tmp / "ab.loss", np.float32).reshape(-1, 2)


def pydarknet_training(tmp, images, truths, rows, iterations, move=None, size=None):
    """pydarknet's run of tmp/n.cfg from tmp/n.weights on each iteration's ``images``:
    (None, None, the starting parameters, None, {}) then each iteration's (loss, learning
    rate, every layer's parameters, every layer's gradients, the known differences met so
    far: ``watch_known_differences``), or (the error, None, None, None, known) where it
    stopped. ``move``: an rng to move its input, parameters and every layer's output by 2^-20
    of themselves (the forward oracle's ``moved``: how far its own rounding carries).
    ``size``: (width, height) the network is resized to after the first iteration."""
    pd = load(tmp / "n.cfg", tmp / "n.weights")
    x = [moved(pd, images[0], move)] + [a if move is None else move_values(a, move)
                                        for a in images[1:]]
    known = watch_known_differences(pd)

    def copies(arrays):
        return [{n: np.array(v) for n, v in getattr(l, arrays, {}).items()} for l in pd.layers]
    runs = [(None, None, copies("params"), None, set())]
    for k in range(iterations):
        part = slice(k * rows, (k + 1) * rows)
        if k == 1 and size:     # its layers rebuilt: the watches and moves again
            pd.resize(*size)
            if move is not None:
                move_outputs(pd, move)
            watch_known_differences(pd, known)
        try:
            loss = pd.train_iteration(x[k], truths[part])
        except PydarknetError as e:
            runs.append((e, None, None, None, set(known)))
            break
        runs.append((loss, pd.learning_rate, copies("params"), copies("grads"), set(known)))
    return runs


# the outputs where an activation's gradient jumps (Darknet's gradients read the output)
KINKS = {"relu": (0,), "relie": (0,), "ramp": (0,), "leaky": (0,), "revleaky": (0,),
         "selu": (0,), "lhtan": (0, 1), "hardtan": (-1, 1), "plse": (0, 1), "relu6": (0, 6)}


def watch_known_differences(net, found=None):
    """A set that gets "region exp" when a [region] layer's w or h input is beyond exp's
    float32 range (above 88 or below -104: README's deliberate difference, a truth no
    anchor's box overlaps trains its own cell where AB's deltas go to the batch's first
    anchor), "elu" when an elu or selu layer outputs more than 88 (README: AB's compute
    0 * expf(x) = NaN there) and "kink" when an output is within 1e-6 of the layer's largest
    of a point where its activation's gradient jumps (each implementation's rounding picks
    a side: lhtan's gradient is 1 or 0.001; a moved run, scaling every value, keeps the
    side). ``found``: a set to add to instead (the same network's, resized)."""
    found = set() if found is None else found

    def watched(layer, forward):
        def run(x, state):
            if layer.layer_type == "region":
                size = layer.coords + layer.classes + 1
                a = np.asarray(x).reshape(x.shape[0], layer.num, size, -1)[:, :, 2:4]
                if (a > 88).any() or (a < -104).any():
                    found.add("region exp")
            out = forward(x, state)
            y = np.asarray(out)
            if layer.activation in ("elu", "selu") and (y > 88).any():
                found.add("elu")
            if layer.activation in KINKS and y.size:
                near = 1e-6 * np.abs(y).max()
                if any((np.abs(y - k) <= near).any() for k in KINKS[layer.activation]):
                    found.add("kink")
            return out
        return run
    for layer in net.layers:
        layer.forward = watched(layer, layer.forward)
    return found


def cancelling(runs, k, i, name, adam=False):
    """Where layer i's gradient of ``name`` was, in one of the iterations up to k + 1
    (pydarknet's ``runs`` of them), below 1e-5 of the layer's largest gradient or of the
    network's: a sum that cancels, each implementation's own rounding (a batch norm whose
    incoming delta is alike at every position passes back only rounding: --more-layers seed
    68894, a whole layer's gradients of 3e-6 where the network's reach 5). Adam makes that
    noise a full step (seed 1109 with --more-layers: the bias gradient of a convolution before
    a batch-normalised 1x1 one sums to about 0, 1e-6 of its scales' gradient), and with
    ``adam`` the bound is 1e-2 of the layer's largest: Adam's later steps divide moments of
    such sums, whose float32 order (AB's loops, pydarknet's) moves them by 1e-3 of their
    value (--more-layers seed 68524: a 1x1 convolution's bias gradient 3e-3 of its weights',
    7e-4 apart)."""
    where = False
    for run in runs[:k + 1]:
        grads = run[3][i]
        if name in grads:
            top = max(np.abs(g).max(initial=0) for g in grads.values())
            network = max(np.abs(g).max(initial=0) for layer in run[3] for g in layer.values())
            g = np.abs(grads[name])
            where = where | (g < (1e-2 if adam else 1e-5) * top) | (g < 1e-5 * network)
    return where


def small_batch_norm(net, mini, i):
    """Whether layer i or a later one batch-normalises 4 values a channel or fewer: its
    backward (the delta less its mean and its projection on the normalised values, over
    N values) cancels, and both implementations' float32 results stray from the exact
    gradient by up to 1% (--more-layers seed 22837: a [connected] of 2 values a channel,
    pydarknet and AB each 0.9% off a float64 transcription of Darknet's formulas, in other
    elements)."""
    return any((getattr(l, "batch_normalize", 0) or l.layer_type == "batchnorm") and
               mini * l.out_h * l.out_w <= 4 for l in net.layers[i:])


def cost_values(net, mini):
    """How many values a loss layer of ``net`` sums its cost over (the most of any): Darknet
    sums them in float32, one after another (mag_array, sum_array), pydarknet in float64, and
    the float32 sum may be off by that many roundings of the total (--more-layers --resize
    seed 47196: 1.07 million [yolo] outputs, AB's loss 1.7e-4 above the exact one, which a
    float32 sum in AB's order gives to the last bit)."""
    return max((l.outputs * mini for l in net.layers if l.layer_type in
                ("yolo", "gaussian_yolo", "region", "detection", "softmax", "cost")),
               default=1)


def compare_iterations(seed, exe, darknet, tmp, iterations=3, more=False, extras=(),
                       resize=False):
    """(verdict, detail) of one random network's training: "ok", "differs" (the first
    parameter, loss or rate past its tolerance that pydarknet's own rounding does not
    explain), "rounding" (one it explains: MARGIN times its change when moved, or where the
    gradient cancels), "kink", "elu nan" and "region exp" (``watch_known_differences``),
    "small batch norm" (``small_batch_norm``),
    "overflow" (pydarknet stopped at a non-finite output or loss, or both have parameters
    not finite or above 1e20: -FLT_MAX from a pooling window wholly in the padding),
    "darknet nan" (Darknet's parameters or loss not finite where pydarknet's are),
    "skipped", "darknet failed". ``extras``: names of EXTRAS, the cfg's changes ("ema"
    also trains from iteration EMA_START); ``resize``: the network resized after the first
    iteration (``resized_size``; skipped where it has none)."""
    rng = np.random.default_rng(seed)
    kind = HEADS[seed % len(HEADS)]
    text, mini, sub, C, H, W = random_training(rng, kind, more)
    for extra in extras:
        text = EXTRAS[extra](seed, text)
    if "[dropout]" in text or "[crop]" in text or "antialiasing" in text or \
            "share_index" in text:
        return "skipped", ""
    net = load_cfg_text(text)
    if _one_value_batch_norm(net, mini) or _shortcut_reads_past(net) or \
            reads_frozen_delta(net):
        return "skipped", ""
    size = resize and resized_size(seed, net, mini)
    if resize and not size:
        return "skipped", ""
    randomize(net, rng)
    rows = mini * sub
    if "ema" in extras:
        net.seen = EMA_START * rows
    x = rng.uniform(0, 1, (iterations * rows, C, H, W)).astype(np.float32)
    truths = random_truths(rng, net, iterations * rows)
    images = [x[k * rows:(k + 1) * rows] for k in range(iterations)]
    if size:    # the later iterations' images: their own generator's, at the new size
        later = np.random.default_rng([seed, 4])
        images[1:] = [later.uniform(0, 1, (rows, C, size[1], size[0])).astype(np.float32)
                      for _ in images[1:]]
    net.forward(x[:mini], train=True, truths=truths[:mini])
    if any(np.abs(np.asarray(out)).max(initial=0) >= 1e30 for out in net.outputs):
        return "overflow", "a layer's output reaches 1e30 (-FLT_MAX: a pooling window " \
                           "wholly in the padding)"
    summed = cost_values(net, mini)
    if size:    # (the new size can put a pooling window wholly in the padding too)
        net.resize(*size)
        net.forward(images[1][:mini], train=True, truths=truths[rows:rows + mini])
        over = any(np.abs(np.asarray(out)).max(initial=0) >= 1e30 for out in net.outputs)
        summed = max(summed, cost_values(net, mini))
        net.resize(W, H)
        if over:
            return "overflow", "at the new size a layer's output reaches 1e30"
    write_case(tmp, text, net, images, truths)
    try:
        darknet_runs = darknet_iterations(exe, darknet, tmp, iterations, size or None)
    except RuntimeError as e:
        return "darknet failed", str(e)
    runs, again = pydarknet_training(tmp, images, truths, rows, iterations, size=size), None
    start = runs.pop(0)[2]

    def verdict(k, got, want, detail, key, first, layer_index=0):
        """"rounding" where the moved run's own change explains ``got - want``: a parameter's
        change since the start (``first``: pydarknet's unmoved start) against pydarknet's,
        the loss (``first`` None) itself."""
        nonlocal again
        again = again or pydarknet_training(tmp, images, truths, rows, iterations,
                                            np.random.default_rng(1), size)
        if len(again) > k + 1 and again[k + 1][1] is not None:
            other = np.asarray(key(again[k + 1]), np.float64)
            if first is not None:
                other = other - np.asarray(key(again[0]), np.float64) + first
            if np.abs(got - want).max() <= MARGIN * np.abs(got - other).max():
                return "rounding", detail
        if "kink" in runs[k][4]:
            return "kink", detail
        return ("small batch norm" if small_batch_norm(net, mini, layer_index) else "differs",
                detail)

    for k, ((loss, rate, params, _, known), (ab_loss, ab_rate)) in \
            enumerate(zip(runs, darknet_runs)):
        if "region exp" in known:
            return "region exp", (f"iteration {k + 1}: a [region] w or h input beyond exp's "
                                  f"range")
        if rate is None:
            # pydarknet stops at a non-finite output or loss, where Darknet goes on
            return ("overflow" if "NaN or inf" in str(loss) or not np.isfinite(ab_loss)
                    else "pydarknet failed"), f"iteration {k + 1}: {loss}"
        if abs(rate - ab_rate) > 1e-6 * abs(ab_rate) + 1e-12:
            return "differs", (f"iteration {k + 1} learning rate {rate:.7g}, Darknet's "
                               f"{ab_rate:.7g}")
        ab = darknet_parameters(tmp, text, k + 1)
        # (pydarknet sums the loss in float64: past float32's range Darknet's is inf)
        finite = np.isfinite(np.float32(loss)) and all(np.isfinite(v).all() for p in params
                                                       for v in p.values())
        finite_ab = np.isfinite(ab_loss) and all(np.isfinite(np.asarray(v)).all()
                                                 for l in ab.layers for v in l.params.values())
        if finite and not finite_ab and "elu" in known:
            return "elu nan", f"iteration {k + 1}: Darknet's parameters or loss not finite"
        if not finite or not finite_ab:     # (a pooling window wholly in the padding)
            return ("overflow" if finite == finite_ab else "darknet nan" if finite
                    else "differs",
                    f"iteration {k + 1}: {'pydarknet' if finite_ab else 'Darknet'}'s "
                    f"parameters or loss not finite")
        if max((np.abs(np.asarray(v)).max(initial=0) for l in ab.layers
                for v in l.params.values()), default=0) > 1e20:
            return "overflow", f"iteration {k + 1}: Darknet's parameters above 1e20"
        for i, (theirs, first) in enumerate(zip(ab.layers, start)):
            change = max((np.abs(np.asarray(v, np.float64) - first[n]).max()
                          for n, v in theirs.params.items() if not n.startswith("rolling")),
                         default=0.0)
            for name, value in params[i].items():
                want = np.asarray(theirs.params[name], np.float64)
                # (a rolling statistic moves with the batch's, not with the layer's update)
                layer_change = 0.0 if name.startswith("rolling") else change
                err = parameter_error(value, want, first[name], layer_change)
                if err > 1 and parameter_error(
                        np.where(cancelling(runs, k, i, name, net.net.adam), want, value),
                        want, first[name], layer_change) <= 1:
                    return "rounding", (f"iteration {k + 1} layer {i} {theirs.type} {name}: "
                                        f"{err:.3g} times what may differ where its gradient "
                                        f"cancels")
                if err > 1:
                    return verdict(k, np.asarray(value, np.float64), want,
                                   f"iteration {k + 1} layer {i} {theirs.type} {name}: "
                                   f"{err:.3g} times what may differ",
                                   lambda run: run[2][i][name], first[name], i)
        if abs(loss - ab_loss) > (1e-3 + summed * 2.0 ** -24) * abs(ab_loss) + 1e-6:
            return verdict(k, np.float64(loss), np.float64(ab_loss),
                           f"iteration {k + 1} loss {loss:.7g}, Darknet's {ab_loss:.7g}",
                           lambda run: run[0], None)
    return "ok", ""


def fuzz(darknet, first, last, keep, more, iterations, extras, resize):
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        exe = compile_against(darknet, "darknet_iteration_oracle.c", tmp / "iterate")
        for seed in range(first, last):
            try:
                verdict, detail = compare_iterations(seed, exe, darknet, tmp, iterations, more,
                                                     extras, resize)
            except Exception:
                verdict, detail = "pydarknet failed", traceback.format_exc()[-600:]
            counts[verdict] = counts.get(verdict, 0) + 1
            if verdict not in ("ok", "skipped", "overflow"):
                print(f"seed {seed}: {verdict}: {detail}", flush=True)
                if keep:
                    folder = pathlib.Path(keep) / str(seed)
                    folder.mkdir(parents=True, exist_ok=True)
                    for f in ("n.cfg", "n.weights", "x.bin", "t.bin"):
                        if (tmp / f).exists():
                            (folder / f).write_bytes((tmp / f).read_bytes())
    print(counts)


def regenerate(darknet):
    """tests/data/darknet_iterations.npz: Darknet's parameters after each iteration of the
    test's cases, and each iteration's loss and learning rate."""
    from test_darknet_iterations import CASES, ITERATIONS, ORACLE, RESIZED, case_data
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        exe = compile_against(darknet, "darknet_iteration_oracle.c", tmp / "iterate")
        for name, text in CASES.items():
            write_case(tmp, text, *case_data(name))
            for k, loss_rate in enumerate(darknet_iterations(exe, darknet, tmp, ITERATIONS,
                                                             RESIZED.get(name)), 1):
                out[f"{name}_{k}_loss"] = loss_rate
                for i, layer in enumerate(darknet_parameters(tmp, text, k).layers):
                    for n, v in layer.params.items():
                        out[f"{name}_{k}_{i}_{n}"] = np.asarray(v, np.float32)
            print(name)
    np.savez_compressed(ORACLE, **out)
    print(f"wrote {ORACLE}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("darknet", help="AB Darknet's folder patched by "
                    "tools/darknet_gpusem_patch.py, built with make LIBSO=1")
    ap.add_argument("first", type=int, nargs="?")
    ap.add_argument("last", type=int, nargs="?")
    ap.add_argument("--regenerate", action="store_true",
                    help="write tests/data/darknet_iterations.npz (its cases) instead")
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--keep", help="keep the failing seeds' files here")
    ap.add_argument("--more-layers", action="store_true",
                    help="networks of more layer kinds (the forward oracle's --more-layers)")
    ap.add_argument("--loss-scale", action="store_true",
                    help="a [net] loss_scale in every cfg, a delta_normalizer on half the "
                    "[yolo] and [Gaussian_yolo] heads")
    ap.add_argument("--ema", action="store_true",
                    help="a [net] ema_alpha in every cfg, trained from iteration %d, where the "
                    "moving average starts (and is applied two iterations later)" % EMA_START)
    ap.add_argument("--two-heads", action="store_true",
                    help="a second [yolo] or [Gaussian_yolo] head beside the first")
    ap.add_argument("--resize", action="store_true",
                    help="resize the network after the first iteration (random=1's "
                    "resize_network), to a size of its own generator")
    a = ap.parse_args()
    if a.regenerate:
        return regenerate(pathlib.Path(a.darknet).resolve())
    if a.last is None:
        ap.error("give FIRST and LAST seeds, or --regenerate")
    fuzz(pathlib.Path(a.darknet).resolve(), a.first, a.last, a.keep, a.more_layers,
         a.iterations, [name for name in EXTRAS if getattr(a, name)], a.resize)


if __name__ == "__main__":
    main()
