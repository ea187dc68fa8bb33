"""AB Darknet's own inference, every layer's output, as the oracle of
tests/test_darknet_forward.py, and a random-cfg comparison against pydarknet.

    # AB Darknet (commit 59596d7, as the reference data), CPU library:
    git clone https://github.com/AlexeyAB/darknet && cd darknet && make LIBSO=1
    # pjreddie's Darknet (the original) for the PJREDDIE_CASES: git clone
    #   https://github.com/pjreddie/darknet && cd darknet && make
    python tools/darknet_forward_oracle.py path/to/darknet --pjreddie path/to/pjreddie-darknet
    python tools/darknet_forward_oracle.py path/to/darknet --fuzz 0 500 [--keep DIR]
    python tools/darknet_forward_oracle.py path/to/darknet --fuzz-train 0 500
    # backward passes, against a copy of AB Darknet patched by tools/darknet_gpusem_patch.py:
    python tools/darknet_forward_oracle.py path/to/patched --backward-oracle
    python tools/darknet_forward_oracle.py path/to/patched --fuzz-backward 0 500

It compiles tools/darknet_forward_oracle.c against the library (gcc): that parses the cfg at
the given batch, loads the .weights file pydarknet wrote, runs ``network_predict`` and writes
every layer's output. ``--fuzz`` builds random cfgs (every layer pydarknet and Darknet's CPU
both run, with their options), random parameters and inputs, and prints each seed whose
layers differ by more than 1e-4 of the layer's largest value, with the first such layer; with
``--keep`` it keeps the cfg, weights and input of each. The generator leaves out what Darknet's
CPU build gets wrong or cannot run (each noted where it is left out): those are Darknet's
quirks, not pydarknet's. ``--more-layers`` (any --fuzz*) draws more layer kinds too (a global
[avgpool] or a [connected] inside the network, [reorg3d] reverse=1, a x4 [upsample], the
[detection] head): other networks for the same seeds.

A difference that pydarknet's own change explains, when its input and parameters move by
2^-20 (within 10 times), is printed as "rounding", not "differs" (``judge``): a layer
that cancels (normalize_channels of channels summing to about 0, an even-sized
[normalization]) magnifies float32's rounding, of which Darknet's order of operations is
another; every layer's output moves too, as each rounds on its own (a max-pool's
near-ties, a batch norm of a nearly constant map).
"""

import argparse
import functools
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import traceback

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from pydarknet.network import load, load_cfg_text  # noqa: E402
from pydarknet.errors import PydarknetError  # noqa: E402
from test_darknet_backward import (BACKWARD_CASES, GRADIENTS, INPUT_DELTA,  # noqa: E402
                                   backward_order, case_inputs, darknet_style_backward,
                                   describe)
from test_darknet_backward import ORACLE as BACKWARD_ORACLE  # noqa: E402
from oracle_inputs import box_truths, randomize  # noqa: E402,F401 (fuzzers import them)

from pydarknet.backend import ACTIVATIONS  # noqa: E402

# Darknet's CPU activate() has cases for these only; relu6 gives 0 everywhere, and mish,
# swish, hard_mish and normalize_channels* give 0 outside [convolutional] ([shortcut] runs
# mish and swish itself)
PLAIN_ACTS = ["logistic", "relu", "linear", "leaky", "tanh", "elu", "selu", "gelu", "relie",
              "ramp", "revleaky", "lhtan", "hardtan", "loggy", "plse", "stair"]
CONV_ACTS = [a for a in ACTIVATIONS if a != "relu6"]


def act(rng, where="plain"):
    pool = {"conv": CONV_ACTS, "shortcut": PLAIN_ACTS + ["mish", "swish"]}.get(where,
                                                                                PLAIN_ACTS)
    return rng.choice(pool)


def conv(rng, c, h, w):
    size = int(rng.choice([1, 1, 3, 3, 3, 5, 2, 4, 7]))
    groups = 1
    if rng.random() < 0.3:
        divs = [g for g in (2, 3, 4) if c % g == 0]
        groups = int(rng.choice(divs)) if divs else 1
    filters = int(rng.integers(1, 5)) * groups
    if groups > 1 and rng.random() < 0.3:
        filters = c
        groups = c  # depthwise
    sx = int(rng.choice([1, 1, 1, 2, 3]))
    sy = int(rng.choice([1, 2])) if rng.random() < 0.3 else sx
    opts = ""
    if rng.random() < 0.25:
        padding = int(rng.integers(0, 4))
        opts += f"padding={padding}\n"
    else:
        pad = int(rng.choice([0, 1, 1]))
        opts += f"pad={pad}\n"
        padding = size // 2 if pad else 0
    dilation = int(rng.choice([1, 1, 2])) if size > 1 else 1
    # Darknet's output size ignores dilation
    oh, ow = (h + 2 * padding - size) // sy + 1, (w + 2 * padding - size) // sx + 1
    if (size - 1) * dilation + 1 > h + 2 * padding * dilation:
        return None
    if oh < 1 or ow < 1:
        return None
    if dilation > 1 and 2 * padding != size - 1:
        return None     # Darknet's size ignores dilation; only "same" padding agrees
    if size == 1 and (padding or sx != sy):
        return None     # Darknet's CPU skips im2col for any 1x1 with stride=1 (a bug)
    stride = f"stride={sx}\n" if sx == sy else f"stride_x={sx}\nstride_y={sy}\n"
    aa = ""
    if rng.random() < 0.15:
        kind = int(rng.choice([1, 2]))
        aa = f"antialiasing={kind}\n"
        bs, bp = (2, 0) if kind == 2 else (3, 1)
        oh, ow = (h + 2 * padding - size) // 1 + 1, (w + 2 * padding - size) // 1 + 1
        oh, ow = (oh + 2 * bp - bs) // sy + 1, (ow + 2 * bp - bs) // sx + 1
        if oh < 1 or ow < 1:
            return None
    bn = int(rng.random() < 0.5)
    flipped = "flipped=1\n" if rng.random() < 0.1 else ""
    return (f"[convolutional]\nbatch_normalize={bn}\nfilters={filters}\nsize={size}\n{stride}"
            f"{opts}groups={groups}\ndilation={dilation}\n{aa}{flipped}"
            f"activation={act(rng, 'conv')}\n", (filters, oh, ow))


def maxpool(rng, c, h, w):
    if rng.random() < 0.1:
        oc = int(rng.integers(1, c + 1))
        return f"[maxpool]\nmaxpool_depth=1\nout_channels={oc}\nstride=1\nsize=1\n", (oc, h, w)
    size = int(rng.choice([1, 2, 3, 5]))
    sx = int(rng.choice([1, 2, 3]))
    sy = int(rng.choice([1, 2])) if rng.random() < 0.3 else sx
    pad = int(rng.choice([size - 1, 0, 1, 2]))
    oh, ow = (h + pad - size) // sy + 1, (w + pad - size) // sx + 1
    aa = ""
    if rng.random() < 0.15:
        kind = int(rng.choice([1, 2]))
        aa = f"antialiasing={kind}\n"
        bs, bp = (2, 0) if kind == 2 else (3, 1)
        oh, ow = (h + pad - size) + 1, (w + pad - size) + 1
        oh, ow = (oh + 2 * bp - bs) // sy + 1, (ow + 2 * bp - bs) // sx + 1
    if oh < 1 or ow < 1:
        return None
    st = f"stride={sx}\n" if sx == sy else f"stride_x={sx}\nstride_y={sy}\n"
    return f"[maxpool]\nsize={size}\n{st}padding={pad}\n{aa}", (c, oh, ow)


# layer kinds random_cfg draws only with more=True (a seed's network without them is as it
# was before they came): a global [avgpool] or a [connected] inside the network, a [reorg3d]
# back to space, a x4 [upsample]; and the [detection] head
MORE_KINDS = ["avgpool", "connected", "reorg3d_back", "upsample4"]
# the scale_x_y values of random_cfg's [yolo] heads (head_options gives [Gaussian_yolo] 1.05)
SCALES_X_Y = [1.0, 1.05, 2.0]


def random_cfg(rng, head=None, more=False):
    """(cfg text, batch, channels, height, width) of a random network Darknet can run;
    ``head``: "yolo", "region", "classifier", "gauss", "detection" or "none" instead of a
    random one (the same draws: a seed's body does not change); ``more``: MORE_KINDS and the
    [detection] head drawn too."""
    W = int(rng.choice([8, 13, 16, 20, 24, 31, 32, 40]))
    H = int(rng.choice([8, 13, 16, 20, 24, 32])) if rng.random() < 0.5 else W
    C = int(rng.choice([1, 3, 3, 4]))
    batch = int(rng.choice([1, 1, 2]))
    secs = [f"[net]\nbatch={batch}\nsubdivisions=1\nwidth={W}\nheight={H}\nchannels={C}\n"]
    shapes = []
    c, h, w = C, H, W
    for _ in range(int(rng.integers(2, 14))):
        kind = rng.choice(["conv"] * 4 + ["maxpool", "maxpool", "route", "route", "shortcut",
                                          "shortcut", "upsample", "sam", "scale_channels",
                                          "dropout", "local_avgpool", "reorg3d", "reorg",
                                          "activation", "batchnorm", "local", "empty",
                                          "downsample", "scale_wh", "shared_conv", "crop",
                                          "normalization"] + (MORE_KINDS if more else []))
        made = None
        if kind == "conv":
            made = conv(rng, c, h, w)
        elif kind == "maxpool":
            made = maxpool(rng, c, h, w)
        elif kind == "local_avgpool":
            size = int(rng.choice([2, 3]))
            s = int(rng.choice([1, 2]))
            pad = size - 1
            made = (f"[local_avgpool]\nsize={size}\nstride={s}\n",
                    (c, (h + pad - size) // s + 1, (w + pad - size) // s + 1))
        elif kind == "route":
            same = [j for j, s in enumerate(shapes) if s[1:] == (h, w)]
            if same:
                picks = rng.choice(same, int(rng.integers(1, 4))).tolist()
                total, groups = sum(shapes[j][0] for j in picks), ""
                if rng.random() < 0.3 and all(shapes[j][0] % 2 == 0 for j in picks):
                    groups, total = f"groups=2\ngroup_id={rng.integers(0, 2)}\n", total // 2
                n = len(shapes)
                names = [str(j) if rng.random() < 0.5 else str(j - n) for j in picks]
                made = f"[route]\nlayers={','.join(names)}\n{groups}", (total, h, w)
        elif kind == "shortcut":
            same = [j for j, s in enumerate(shapes[:-1]) if s[1:] == (h, w)]
            if same:
                picks = rng.choice(same, int(rng.integers(1, 3))).tolist()
                n = len(shapes)
                # (Darknet refuses weights_type without weights_normalization)
                wt = rng.choice(["", "weights_type=per_channel\nweights_normalization=softmax\n",
                                 "weights_type=per_feature\nweights_normalization=relu\n"])
                if any(shapes[j][0] != c for j in picks):
                    wt = ""
                made = (f"[shortcut]\nfrom={','.join(str(j - n) for j in picks)}\n{wt}"
                        f"activation={act(rng, 'shortcut')}\n", (c, h, w))
        elif kind == "sam":
            same = [j for j, s in enumerate(shapes[:-1]) if s == (c, h, w)]
            if same:
                made = f"[sam]\nfrom={int(rng.choice(same))}\n", (c, h, w)
        elif kind == "scale_channels":
            same = [j for j, s in enumerate(shapes) if s[0] == c and s[1:] != (1, 1)]
            if same:      # the scales: this layer pooled, or YOLOR's learned [implicit]
                secs.append("[avgpool]\n" if rng.random() < 0.6 else
                            f"[implicit]\nfilters={c}\nmean=1\nstd=0.5\n")
                shapes.append((c, 1, 1))
                j = int(rng.choice(same))
                made = f"[scale_channels]\nfrom={j}\n", shapes[j]
        elif kind == "scale_wh":
            same = [j for j, s in enumerate(shapes) if s[1:] == (h, w) and s[0] > 1]
            if same and c == 1:     # a one-channel map scales every channel of the other
                j = int(rng.choice(same))
                made = f"[scale_channels]\nfrom={j}\nscale_wh=1\n", shapes[j]
            elif same:
                made = ("[convolutional]\nfilters=1\nsize=1\nactivation=logistic\n",
                        (1, h, w))
        elif kind == "shared_conv":
            convs = [j for j, t in enumerate(secs[1:]) if t.startswith("[convolutional]")
                     and shapes[j][0] == c and (shapes[j - 1][0] if j else C) == c
                     and "groups=1\n" in t and "antialiasing" not in t
                     and "size=1\n" not in t]
            if convs and shapes and min(h, w) >= 3:
                j = int(rng.choice(convs))     # the same weights again, at stride 1
                size = int(secs[1 + j].split("size=")[1].split("\n")[0])
                made = (f"[convolutional]\nshare_index={j}\nfilters={c}\nsize={size}\n"
                        f"stride=1\npad=1\nbatch_normalize="
                        f"{secs[1 + j].split('batch_normalize=')[1][0]}\nactivation=leaky\n",
                        (c, h + 2 * (size // 2) - size + 1, w + 2 * (size // 2) - size + 1))
        elif kind == "normalization":
            made = (f"[normalization]\nsize={rng.integers(1, 2 * c + 2)}\n"
                    f"alpha={rng.choice([0.0001, 0.1, 1.0])}\nbeta={rng.choice([0.75, 0.5])}\n"
                    f"kappa={rng.choice([1, 2])}\n", (c, h, w))
        elif kind == "crop" and min(h, w) >= 4 and shapes:    # at inference: the centre
            ch, cw = int(rng.integers(2, h)), int(rng.integers(2, w))
            made = f"[crop]\ncrop_height={ch}\ncrop_width={cw}\n", (c, ch, cw)
        elif kind == "upsample" and h * w <= 600:
            s = int(rng.choice([2, 2, 3]))
            sc = rng.choice(["", "scale=0.5\n"])
            made = f"[upsample]\nstride={s}\n{sc}", (c, s * h, s * w)
        elif kind == "downsample" and h % 2 == 0 and w % 2 == 0 and h >= 4:
            made = "[upsample]\nstride=-2\n", (c, h // 2, w // 2)
        elif kind == "activation":
            made = f"[activation]\nactivation={act(rng, 'plain')}\n", (c, h, w)
        elif kind == "dropout":
            if shapes:      # Darknet's first [dropout] or [empty] has no output to pass on
                made = f"[dropout]\nprobability={rng.choice([0.1, 0.5])}\n", (c, h, w)
        elif kind == "empty" and shapes:
            made = "[empty]\n", (c, h, w)
        elif kind == "batchnorm":
            made = "[batchnorm]\n", (c, h, w)
        elif kind == "local" and c * h * w <= 3000:
            f = int(rng.integers(1, 4))
            size, s = int(rng.choice([1, 3])), int(rng.choice([1, 2]))
            pad = int(rng.integers(0, 2)) if size == 3 else 0   # as test_cfg's "local pad"
            oh, ow = (h + 2 * pad - size) // s + 1, (w + 2 * pad - size) // s + 1
            if oh >= 1 and ow >= 1:
                made = (f"[local]\nfilters={f}\nsize={size}\nstride={s}\npad={pad}\n"
                        f"activation={act(rng, 'plain')}\n", (f, oh, ow))
        elif kind == "reorg3d" and h % 2 == 0 and w % 2 == 0 and h >= 4:
            made = "[reorg3d]\nstride=2\n", (4 * c, h // 2, w // 2)
        elif kind == "reorg" and h % 2 == 0 and w % 2 == 0 and h >= 4 and c % 4 == 0:
            if rng.random() < 0.3:
                made = "[reorg]\nstride=2\nreverse=1\n", (c // 4, h * 2, w * 2)
            else:
                made = "[reorg]\nstride=2\n", (4 * c, h // 2, w // 2)
        elif kind == "avgpool" and shapes:
            made = "[avgpool]\n", (c, 1, 1)
        elif kind == "connected" and shapes and c * h * w <= 4000:
            # (not first: AB's parser divides by the number of layers whose input is more
            # than 1x1, and a [connected] counts its input as 1x1)
            n = int(rng.integers(1, 9))
            made = (f"[connected]\noutput={n}\nbatch_normalize={rng.integers(0, 2)}\n"
                    f"activation={act(rng, 'plain')}\n", (n, 1, 1))
        elif kind == "reorg3d_back" and c % 16 == 0 and h * w <= 600:
            made = "[reorg3d]\nstride=2\nreverse=1\n", (c // 4, 2 * h, 2 * w)
        elif kind == "upsample4" and h * w <= 150:
            made = "[upsample]\nstride=4\n", (c, 4 * h, 4 * w)
        if made:
            secs.append(made[0])
            # Darknet's later layers see an antialiased layer's stride-1 size: only the next
            # layer may read it
            shapes.append((-1, -1, -1) if "antialiasing" in made[0] else made[1])
            c, h, w = made[1]
    head = head or rng.choice(["yolo", "yolo", "region", "classifier", "gauss", "none"] +
                              (["detection"] if more else []))
    classes = int(rng.integers(1, 4))
    if head == "yolo":
        nc = 1 if rng.random() < 0.5 else 0
        secs.append(f"[convolutional]\nfilters={3 * (classes + 5)}\nsize=1\nactivation="
                    f"{'logistic' if nc else 'linear'}\n")
        secs.append(f"[yolo]\nmask=0,1,2\nanchors=4,5, 8,9, 14,10, 20,25\nclasses={classes}\n"
                    f"num=4\nscale_x_y={rng.choice(SCALES_X_Y)}\nnew_coords={nc}\n")
    elif head == "gauss":
        secs.append(f"[convolutional]\nfilters={3 * (classes + 9)}\nsize=1\nactivation=linear\n")
        secs.append(f"[Gaussian_yolo]\nmask=0,1,2\nanchors=4,5, 8,9, 14,10, 20,25\n"
                    f"classes={classes}\nnum=4\n")
    elif head == "region":
        secs.append(f"[convolutional]\nfilters={3 * (classes + 5)}\nsize=1\nactivation=linear\n")
        secs.append(f"[region]\nanchors=1,1, 2,2, 3,1\nclasses={classes}\nnum=3\ncoords=4\n"
                    f"softmax={rng.integers(0, 2)}\n")
    elif head == "detection":     # YOLOv1: a [connected] of side x side cells
        side, num = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        if len(secs) == 1:      # (a [connected] first: AB's parser divides by zero)
            secs.append("[avgpool]\n")
        secs.append(f"[connected]\noutput={side * side * (5 * num + classes)}\n"
                    f"activation=linear\n")
        secs.append(f"[detection]\nclasses={classes}\ncoords=4\nside={side}\nnum={num}\n"
                    f"softmax={rng.integers(0, 2)}\nsqrt=1\nrescore=1\n")
    elif head == "classifier":
        groups = 1
        if rng.random() < 0.5 or len(secs) == 1:   # (Darknet needs a layer of w, h > 1)
            secs.append("[avgpool]\n")
        else:
            groups = int(rng.choice([1, 2]))
            for _ in range(int(rng.integers(1, 3))):
                secs.append(f"[connected]\noutput={int(rng.integers(1, 7)) * 2}\n"
                            f"batch_normalize={rng.integers(0, 2)}\n"
                            f"activation={act(rng, 'plain')}\n")
        secs.append(f"[softmax]\ngroups={groups}\n"
                    f"temperature={rng.choice([1, 1, 0.5])}\n")
        if rng.random() < 0.3:
            secs.append("[cost]\n")
    if len(secs) == 1:
        secs.append("[avgpool]\n")
    return "\n".join(secs), batch, C, H, W


def recurrent_cfg(rng):
    """(cfg text, batch) of a random recurrent network: a convolution, one to four of [rnn],
    [lstm], [gru], [crnn], [conv_lstm], [history] and [connected] with their options, a
    [connected] head and sometimes a [softmax]."""
    batch, steps = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    w, h, c = (int(v) for v in rng.integers(1, 6, 3))
    # (batch statistics of one or two values a step: their gradient is zero but for rounding)
    bn = lambda: int(batch > 2 and rng.random() < 0.4)     # noqa: E731
    secs = [f"[net]\nbatch={batch}\nsubdivisions=1\ntime_steps={steps}\nwidth={w}\n"
            f"height={h}\nchannels={c}\n",
            f"[convolutional]\nfilters={rng.integers(1, 5)}\nsize=1\nactivation={act(rng)}\n"]
    for _ in range(int(rng.integers(1, 5))):
        kind = rng.choice(["rnn", "lstm", "gru", "crnn", "conv_lstm", "history", "connected"])
        out = int(rng.integers(1, 6))
        size = int(rng.choice([1, 3]))
        if kind == "rnn":
            secs.append(f"[rnn]\nbatch_normalize={bn()}\nhidden={rng.integers(1, 6)}\n"
                        f"output={out}\nshortcut={int(rng.random() < 0.3)}\n"
                        f"logistic={int(rng.random() < 0.2)}\nactivation={act(rng)}\n")
        elif kind == "lstm":
            secs.append(f"[lstm]\nbatch_normalize={bn()}\noutput={out}\n")
        elif kind == "gru":
            secs.append(f"[gru]\nbatch_normalize={bn()}\ntanh={int(rng.random() < 0.5)}\n"
                        f"output={out}\n")
        elif kind == "crnn":
            groups = int(rng.choice([1, 1, 2]))
            secs.append(f"[crnn]\nbatch_normalize={bn()}\nsize={size}\npad=1\n"
                        f"hidden={2 * out if groups == 2 else out + 1}\n"
                        f"output={out * groups}\ngroups={groups}\n"
                        f"shortcut={int(rng.random() < 0.3)}\nactivation={act(rng)}\n")
        elif kind == "conv_lstm":
            secs.append(f"[conv_lstm]\nbatch_normalize={bn()}\nsize={size}\npad=1\n"
                        f"output={out}\npeephole={int(rng.random() < 0.5)}\n"
                        f"state_constrain={int(rng.random() < 0.3)}\n"
                        f"lstm_activation={rng.choice(['tanh', 'mish', 'logistic'])}\n"
                        f"activation={act(rng)}\n")
        elif kind == "history":
            secs.append(f"[history]\nhistory_size={rng.integers(2, 4)}\n")
        else:
            secs.append(f"[connected]\noutput={out}\nbatch_normalize={bn()}\n"
                        f"activation={act(rng)}\n")
    secs.append(f"[connected]\noutput={rng.integers(2, 6)}\nactivation=linear\n")
    if rng.random() < 0.5:
        secs.append("[softmax]\n")
    return "\n".join(secs), batch


def compile_against(darknet, source, exe, *flags):
    """gcc ``source`` (in tools/) into ``exe``, linked to the Darknet library in ``darknet``."""
    subprocess.run(["gcc", "-O0", *flags, "-I", str(darknet / "include"),
                    "-I", str(darknet / "src"), "-o", str(exe), str(ROOT / "tools" / source),
                    "-L", str(darknet), "-ldarknet", "-lm", "-lpthread"], check=True)
    return exe


def compile_harness(darknet, tmp, pjreddie=False):
    return compile_against(darknet, "darknet_forward_oracle.c",
                           tmp / ("forward-pjreddie" if pjreddie else "forward"),
                           *(["-DPJREDDIE"] if pjreddie else []))


def darknet_outputs(exe, darknet, tmp, cfg_text, net, x, truths=None, batch=None,
                    backward=None):
    """{layer index: Darknet's output (flat float32)} of ``cfg_text`` with ``net``'s
    parameters on ``x`` (with ``truths``: its training forward, and -1-i: [yolo] layer i's
    delta, -1000-i: its cost); a RuntimeError with Darknet's last words when it fails.
    ``batch``: the harness's ROWS:STEPS:PASSES (default: x's rows, one step, one pass).
    ``backward``: (the last layer's delta, [weights, biases, scales] gradient sizes of each
    layer): after the training forward (zero truths unless given) Darknet's backward, and
    200000+i: layer i's delta, 199999: the input's, 300000+3i+k: its gradients."""
    cfg = tmp / "n.cfg"
    cfg.write_text(cfg_text)
    net.save_weights(str(tmp / "n.weights"))
    np.ascontiguousarray(x, np.float32).tofile(tmp / "x.bin")
    extra = []
    if truths is not None:
        np.ascontiguousarray(truths, np.float32).tofile(tmp / "t.bin")
        extra = [str(tmp / "t.bin")]
    if backward is not None:
        np.ascontiguousarray(backward[0], np.float32).tofile(tmp / "d.bin")
        np.asarray(backward[1], np.int32).tofile(tmp / "counts.bin")
        extra = (extra or ["-"]) + [str(tmp / "d.bin"), str(tmp / "counts.bin")]
    r = subprocess.run([str(exe), str(cfg), str(tmp / "n.weights"), str(tmp / "x.bin"),
                        str(batch or x.shape[0]), str(tmp / "o.bin"), *extra],
                       capture_output=True,
                       env=dict(os.environ, LD_LIBRARY_PATH=str(darknet)), timeout=300)
    if r.returncode:
        lines = r.stderr.decode(errors="replace").strip().splitlines() or [""]
        raise RuntimeError(f"Darknet exited with {r.returncode}: {lines[-1][-200:]}")
    raw, out, offset = (tmp / "o.bin").read_bytes(), {}, 0
    while offset < len(raw):
        i, n = np.frombuffer(raw, np.int32, 2, offset)
        out[int(i)] = np.frombuffer(raw, np.float32, n, offset + 8)
        offset += 8 + 4 * int(n)
    return out


def regenerate(darknet, pjreddie):
    from test_darknet_forward import (CASES, ORACLE, PJREDDIE_CASES, TRAIN_CASES,
                                      case_network, case_truths)
    from test_recurrent import RECURRENT_CASES, recurrent_case
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for build, cases in ((darknet, CASES), (pjreddie, PJREDDIE_CASES),
                             (darknet, TRAIN_CASES)):
            exe = compile_harness(build, tmp, pjreddie=cases is PJREDDIE_CASES)
            for name, text in cases.items():
                net, x = case_network(name)
                truths = case_truths(net) if cases is TRAIN_CASES else None
                for i, values in darknet_outputs(exe, build, tmp, text, net, x,
                                                 truths).items():
                    out[f"{name}_{i}"] = values
                print(f"{name}: {len(net.layers)} layers")
        exe = compile_harness(darknet, tmp)
        for name in RECURRENT_CASES:
            net, x, spec, train = recurrent_case(name)
            truths = np.zeros(0, np.float32) if train else None
            for i, values in darknet_outputs(exe, darknet, tmp, RECURRENT_CASES[name][0], net,
                                             x, truths, spec).items():
                out[f"{name}_{i}"] = values
            print(f"{name}: {len(net.layers)} layers, {spec}")
    ORACLE.parent.mkdir(exist_ok=True)
    np.savez_compressed(ORACLE, **out)
    print(f"wrote {ORACLE}")


def _shortcut_reads_past(net):
    """A [shortcut] that AB's Darknet adds element by element (forward_shortcut_layer's fast
    path, taken when the from layer's w, h and c, its input's for a convolution, equal the
    shortcut's) though the from layer's output is of another size: a smaller one it reads
    past (seed 45537: a 1-filter convolution of the shortcut's own input shape; Darknet's
    values are its heap), a larger one it reads as if its images were the shortcut's size
    (backward seed 32526, batch 2: the second image gets the first's second channel).
    pydarknet adds each image's own channels, as Darknet's other path does."""
    def fast_path_differs(l):
        src = net.layers[l.layers[0]]
        return (l.n == 1 and not l.nweights and (src.w, src.h, src.c) == (l.w, l.h, l.c)
                and (src.outputs < l.outputs or src.outputs > l.outputs and net.batch > 1))
    return any(l.layer_type == "shortcut" and fast_path_differs(l) for l in net.layers)


def compare_forward(seed, exe, darknet, tmp, tol=1e-4, more=False):
    """(verdict, detail) of one random cfg's inference (``more``: random_cfg's more=True);
    cfgs of Darknet's out-of-bounds [shortcut] (``_shortcut_reads_past``) are skipped."""
    rng = np.random.default_rng(seed)
    text, batch, C, H, W = random_cfg(rng, more=more)
    net = load_cfg_text(text, batch=batch)
    if _shortcut_reads_past(net):
        return "skipped", ""
    randomize(net, rng)
    x = rng.uniform(0, 1, (batch, C, H, W)).astype(np.float32)
    try:
        want = darknet_outputs(exe, darknet, tmp, text, net, x)
    except RuntimeError as e:
        return "darknet failed", str(e)

    def run(move):
        # from the file, as Darknet (flipped=1 weights are stored transposed, saved plain)
        net = load(tmp / "n.cfg", tmp / "n.weights", batch=batch)
        net.forward(moved(net, x, move))
        return [(i, f"layer {i} {layer.type}", net.outputs[i], 0.0, i)
                for i, layer in enumerate(net.layers)]
    return judge(run, want, tol)


# a difference within MARGIN times pydarknet's own change when its input and parameters
# move by MOVE (relative) is rounding that the network magnifies, not a bug
MOVE, MARGIN = 2.0 ** -20, 10

# a detection head's output or delta that AB's -Ofast build makes NaN where pydarknet's is
# the logistic's 0 (a [yolo] x or y: 0 * scale_x_y - (scale_x_y - 1) / 2, of the generator's
# SCALES_X_Y): its logistic of x below -88.7 refines the reciprocal of exp(-x) = inf by a
# Newton step (0 * inf), and fix_nan_inf's isnan is compiled away
OFAST_NAN = re.compile(r"layer \d+ ((yolo|Gaussian_yolo|region|detection)( output)?|delta)")
LOGISTIC_ZEROS = np.float32([-(s - 1) / 2 for s in SCALES_X_Y])
RECURRENT = re.compile(r"layer \d+ (rnn|lstm|gru|crnn|conv_lstm)$")


def moved(net, x, rng):
    """``x``, and in place ``net``'s parameters and every layer's output as the forward
    makes it (each layer rounds on its own), each value moved by up to MOVE of itself at
    random (``rng``; None: ``x`` as it is). A stair activation's output moves by 2^-23 too:
    its (x - n) + floor(x/2) keeps only x's bits above 2^-24 however small x is (above 2^-23
    as AB's -Ofast build reassociates it: seeds 47936, 49037, backward 29863)."""
    if rng is None:
        return x
    for layer in net.layers:
        for name, arr in layer.params.items():
            layer.params[name] = move_values(arr, rng)
    move_outputs(net, rng)
    return move_values(x, rng)


def move_values(a, rng, by=0.0):
    """``a`` with each value moved by up to MOVE of itself (and ``by``) at random."""
    a = np.asarray(a)
    return (a * (1 + MOVE * rng.uniform(-1, 1, a.shape)) +
            by * rng.uniform(-1, 1, a.shape)).astype(a.dtype)


def move_outputs(net, rng):
    """``moved``'s moves of every layer's output, and the heads' -Ofast logistic
    (``ofast_logistic_ones``): again after a resize, whose layers are new."""
    move_each_output(net, lambda out, layer: move_values(
        out, rng, 2.0 ** -23 if getattr(layer, "activation", None) == "stair" else 0.0))
    ofast_logistic_ones(net)


def ofast_logistic_ones(net):
    """Each detection head's loss sees the outputs its logistic made 1 as 1 - 2^-24, as AB's
    -Ofast build makes them (1 / (1 + exp(-x)) by the reciprocal's Newton step): where the
    loss branches on a delta being 0, the branch can differ (training seed 9518 with
    --more-layers: after a focal-loss truth whose class output is 1, AB's delta_yolo_class
    takes its "delta already set" branch for the next truth of the same anchor)."""
    below_one = np.float32(1 - 2.0 ** -24)

    def ofast(run_loss):
        def run(state, loss, out, *args, **kwargs):
            out = np.where(np.asarray(out) == 1, below_one, out).astype(np.float32)
            return run_loss(state, loss, out, *args, **kwargs)
        return run
    for layer in net.layers:
        if layer.layer_type in ("yolo", "gaussian_yolo", "region"):
            layer.run_loss = ofast(layer.run_loss)


def move_each_output(net, move):
    """Every layer's forward of ``net`` returns ``move(its output, the layer)``: each layer
    of another implementation rounds on its own (tools/cuda_emulated_fuzz.py's judge too)."""
    def moving(layer, forward):
        return lambda x, state: move(forward(x, state), layer)
    for layer in net.layers:
        layer.forward = moving(layer, layer.forward)


def judge(run, want, tol):
    """(verdict, detail) of pydarknet's values against Darknet's ``want``. ``run(move)`` gives
    pydarknet's (key into want, name, values, floor, layer index) in the order computed, a
    layer's output under its index as key; with a generator as ``move``, of the moved
    network and input. A difference past ``tol`` is "rounding" where the moved network's
    own change explains it (within MARGIN): an ill-conditioned layer (a sum that cancels, a
    normalize_channels of channels summing to about 0) magnifies float32's rounding, and
    Darknet's order of operations is another rounding; a real error is far past its spread.
    NaN/inf in other places than Darknet's is "rounding" where the moved network's are in
    other places than pydarknet's too (a sum that cancels to 0 or not, then divided by).
    The values after a rounding are not judged: they carry it, magnified at random (backward
    seed 36092: a normalize_channels_softmax gradient's rounding, 1.6% of an upsample's
    delta summed, 12 times the moved network's). A detection head's output or delta that is
    NaN in Darknet's only where pydarknet's is the logistic's 0 is "ofast nan" (``OFAST_NAN``);
    NaN in Darknet's only where pydarknet's is above 88 is "elu nan" (README: AB's elu and
    selu of such x compute 0 * expf(x) = 0 * inf: forward seed 35381 with --more-layers)."""
    items, again = run(None), None
    for n, (key, name, values, floor, index) in enumerate(items):
        if key not in want:
            return "darknet has none", name
        verdict = difference(name, values, want[key], tol, floor)
        if verdict and verdict[0] == "darknet nan":
            there = np.asarray(values, np.float32).ravel()[~np.isfinite(want[key])]
            if OFAST_NAN.fullmatch(name) and \
                    (np.abs(there[:, None] - LOGISTIC_ZEROS).min(1) <= 1e-6).all():
                return "ofast nan", verdict[1]
            # README: elu and selu of x above 88 (0 * expf(x)); a recurrent layer carries
            # the NaN to its later steps
            if (there > 88).all() or (there > 88).any() and RECURRENT.search(name):
                return "elu nan", verdict[1]
        if verdict and verdict[0] in ("differs", "nan", "darknet nan"):
            again = again or run(np.random.default_rng(1))
            got = np.asarray(values, np.float32).ravel()
            other = np.asarray(again[n][2], np.float32).ravel()
            if verdict[0] == "differs":
                finite = np.isfinite(want[key])
                err = np.abs(got[finite] - want[key][finite]).max()
                explained = err <= MARGIN * np.abs(got[finite] - other[finite]).max()
            else:       # a value at the edge of the finite: x / 0, pow(0, -beta)
                explained = not np.array_equal(np.isfinite(got), np.isfinite(other))
            if explained:      # (a NaN spread is not)
                return "rounding", verdict[1]
        if verdict:
            return after_nan(verdict, want, index)
    return "ok", ""


def after_nan(verdict, want, i):
    """``verdict`` of layer i, or "after nan" where an earlier layer of Darknet's already had
    NaN/inf values in the same places as pydarknet's (what each makes of a NaN input then
    differs: AB's -Ofast build turns some into finite values)."""
    if verdict[0] in ("nan", "darknet nan", "differs") and \
            any(not np.isfinite(want[j]).all() for j in range(i)):
        return "after nan", verdict[1]
    return verdict


def difference(what, got, want, tol, floor=0.0):
    """None where ``got`` equals Darknet's ``want`` to ``tol`` of its largest value, else
    (verdict, detail): "size", "overflow" (Darknet's values reach 1e30: the -FLT_MAX of
    pooling windows wholly outside the image), "nan" (pydarknet has NaN/inf where Darknet's
    values are finite), "darknet nan" (only Darknet's are not finite: seen where AB's AVX
    max-pool reads past a padded row, its logistic of inputs below -88, its batch norm of
    one value), "differs"."""
    got = np.asarray(got, np.float32).ravel()
    if got.size != want.size:
        return "size", f"{what}: {got.size} values, Darknet {want.size}"
    finite = np.isfinite(want)
    if not (np.abs(want[finite]) < 1e30).all():
        return "overflow", what
    if not np.array_equal(finite, np.isfinite(got)):
        if (finite & ~np.isfinite(got)).any():
            return "nan", f"{what}: NaN/inf where Darknet's values are finite"
        return "darknet nan", f"{what}: Darknet has NaN/inf where pydarknet's are finite"
    if finite.any():
        scale = max(float(np.abs(want[finite]).max()), floor, 1e-6)
        err = float(np.abs(got[finite] - want[finite]).max()) / scale
        if err > tol:
            return "differs", f"{what}: max error {err:.3g} of the largest"
    return None


YOLO_OPTIONS = ["", "iou_loss=ciou\niou_normalizer=0.07\n", "iou_loss=giou\n",
                "iou_loss=diou\n", "iou_thresh=0.213\n", "focal_loss=1\n",
                "label_smooth_eps=0.1\n", "objectness_smooth=1\n", "max_delta=5\n",
                "truth_thresh=0.7\n", "ignore_thresh=0.5\n",
                "cls_normalizer=0.5\nobj_normalizer=2\n",
                "iou_thresh_kind=giou\niou_thresh=0.3\n"]


GAUSSIAN_OPTIONS = ["", "iou_loss=giou\n", "iou_loss=ciou\niou_normalizer=0.07\n",
                    "uc_normalizer=0.5\n", "cls_normalizer=0.5\nobj_normalizer=2\n",
                    "iou_thresh=0.213\n", "truth_thresh=0.7\n", "ignore_thresh=0.3\n",
                    "label_smooth_eps=0.1\n", "scale_x_y=1.05\n", "objectness_smooth=1\n",
                    "max_delta=5\n", "yolo_point=left_top\n"]
REGION_OPTIONS = ["", "rescore=1\n", "bias_match=1\n", "thresh=0.3\n", "absolute=1\n",
                  "object_scale=5\nnoobject_scale=0.5\n", "class_scale=2\ncoord_scale=0.5\n",
                  "focal_loss=1\n"]
TRAINING_HEADS = ["yolo", "gauss", "yolo", "region"]
# random_cfg's head kinds: their section and the options drawn for it
HEAD_SECTIONS = {"yolo": ("[yolo]\n", YOLO_OPTIONS),
                 "gauss": ("[Gaussian_yolo]\n", GAUSSIAN_OPTIONS),
                 "region": ("[region]\n", REGION_OPTIONS)}


def head_options(rng, kind, classes):
    """One to three options of the head ``kind`` together (no option twice); a [yolo] head
    has counters_per_class in a fifth of the cfgs (the class deltas' multipliers, capped by
    max_delta)."""
    options = HEAD_SECTIONS[kind][1]
    picks, keys = [], set()
    for option in rng.permutation(options)[:int(rng.integers(1, 4))]:
        names = {line.split("=")[0] for line in option.splitlines()}
        if not names & keys:
            picks.append(option)
            keys |= names
    if kind == "yolo" and rng.random() < 0.2:
        counts = ",".join(str(int(n)) for n in rng.integers(1, 50, classes))
        picks.append(f"counters_per_class={counts}\n")
    return "".join(picks)


def _one_value_batch_norm(net, batch):
    """A training batch norm over one value a channel: Darknet's variance divides by N - 1 =
    0 there (README: pydarknet's deliberate difference)."""
    return any((getattr(l, "batch_normalize", 0) or l.layer_type == "batchnorm") and
               batch * l.out_h * l.out_w == 1 for l in net.layers)


def compare_training(seed, exe, darknet, tmp, tol=1e-4, more=False):
    """(verdict, detail) of one random cfg's training forward: every layer's output (batch
    norm on batch statistics) and the head's delta and cost. Every cfg ends in a detection
    head with random options: [yolo] (half the seeds), [Gaussian_yolo] or [region]. Cfgs with
    [dropout] or [crop] (their draws are Darknet's rand()), a batch norm of one value a
    channel or Darknet's out-of-bounds [shortcut] are skipped. Known difference: AB's
    -Ofast build turns dx_box_iou's 0 into NaN for a box whose float32 C * C overflows (a
    predicted height of 1e11: AB's box.c at -O0 gives pydarknet's 0, 0, 0, -4.9e-23), keeps
    it through fix_nan_inf (its isnan compiled away) and clips it to -max_delta (training
    seed 73670, iou_loss=diou with max_delta=5: a delta of -5 where pydarknet's is 0)."""
    rng = np.random.default_rng(seed)
    kind = TRAINING_HEADS[seed % len(TRAINING_HEADS)]
    text, batch, C, H, W = random_cfg(rng, head=kind, more=more)
    if "[dropout]" in text or "[crop]" in text:
        return "skipped", ""
    section = HEAD_SECTIONS[kind][0]
    classes = int(text.split(section)[1].split("classes=")[1].split("\n")[0])
    text = text.replace(section, section + head_options(rng, kind, classes))
    net = load_cfg_text(text, batch=batch)
    if _one_value_batch_norm(net, batch) or _shortcut_reads_past(net):
        return "skipped", ""
    randomize(net, rng)
    x = rng.uniform(0, 1, (batch, C, H, W)).astype(np.float32)
    truths = box_truths(rng, net.layers[-1], batch)
    try:
        want = darknet_outputs(exe, darknet, tmp, text, net, x, truths)
    except RuntimeError as e:
        return "darknet failed", str(e)

    def run(move):
        net = load(tmp / "n.cfg", tmp / "n.weights")
        net.forward(moved(net, x, move), train=True, truths=truths)
        items = []
        for i, layer in enumerate(net.layers):
            items.append((i, f"layer {i} {layer.type} output", net.outputs[i], 0.0, i))
            if layer.layer_type in ("yolo", "gaussian_yolo", "region"):
                items += [(-1 - i, f"layer {i} delta", net.deltas[i], 0.0, i),
                          (-1000 - i, f"layer {i} cost", np.float32([layer.cost]), 1.0, i)]
        return items
    return judge(run, want, tol)


def compare_backward(seed, exe, darknet, tmp, tol=1e-4, more=False):
    """(verdict, detail) of one random cfg's backward pass against a Darknet patched by
    tools/darknet_gpusem_patch.py, as tests/test_darknet_backward.py runs its cases: the
    training forward on zero truths, a random delta in place of the last layer's, then every
    layer's delta as it arrives, the input's delta and every weight, bias and scale gradient.
    Cfgs with [dropout] or [crop] (Darknet's rand()), antialiasing (Darknet's CPU backward
    leaves the blur out; AB's GPU build, as pydarknet, goes back through it), a batch norm
    of one value a channel (Darknet's variance divides by N - 1 = 0) or Darknet's
    out-of-bounds [shortcut] (``_shortcut_reads_past``) are skipped."""
    rng = np.random.default_rng(seed)
    text, batch, C, H, W = random_cfg(rng, more=more)
    if "[dropout]" in text or "[crop]" in text or "antialiasing" in text:
        return "skipped", ""
    net = load_cfg_text(text, batch=batch)
    if _one_value_batch_norm(net, batch) or _shortcut_reads_past(net):
        return "skipped", ""
    randomize(net, rng)
    x = rng.uniform(0, 1, (batch, C, H, W)).astype(np.float32)
    r = rng.normal(0, 1, net.layers[-1].out_shape(batch)).astype(np.float32)
    try:
        want = darknet_outputs(exe, darknet, tmp, text, net, x, backward=(r, gradient_counts(net)))
    except RuntimeError as e:
        return "darknet failed", str(e)

    def run(move):
        net = load(tmp / "n.cfg", tmp / "n.weights")
        got, floors = darknet_style_backward(net, moved(net, x, move), r)
        after = len(net.layers)
        return [(i, f"layer {i} {layer.type} output", net.outputs[i], 0.0, i)
                for i, layer in enumerate(net.layers)] + \
               [(key, describe(net, key), got[key], floors[key], after)
                for key in sorted(got, key=backward_order)]
    return judge(run, want, tol)


def compare_recurrent(seed, exe, darknet, tmp, tol=1e-4):
    """(verdict, detail) of a random recurrent network (``recurrent_cfg``: [rnn], [lstm], [gru], [crnn], [conv_lstm], [history] and [connected]
    with their options) against AB's CPU build, every step and layer: two thirds of the seeds
    inference over 1 to 3 passes with the state carried, the others one training forward
    (batch norm on each step's batch). Left to AB's semantics: [gru] tanh=1 (pjreddie's) is
    set to 0, and [conv_lstm]'s lstm_activation to tanh (AB's CPU build computes the cell's
    activation as tanh whatever it says). Skipped: an input 1 wide or high (AB's parser
    divides by the number of layers whose input is more than 1x1), a [gru] followed by a
    layer that reads an image (AB's make_gru_layer leaves its output's w, h and c at 0: that
    layer has no values), and a [history] of one time step at more than one row (README's
    deliberate difference: AB copies the whole batch's inputs to the first image's output).
    Known: "darknet nan" in an [lstm] or [gru] a few passes on (seeds 14539, 15752) is AB's
    -Ofast logistic of a gate's input below -88.7 (NaN: an -O2 build of AB gives pydarknet's
    values there)."""
    rng = np.random.default_rng(seed)
    text = recurrent_cfg(rng)[0]
    text = re.sub(r"^tanh=1$", "tanh=0", text, flags=re.M)
    text = re.sub(r"^lstm_activation=\w+$", "lstm_activation=tanh", text, flags=re.M)
    try:
        net = load_cfg_text(text)
    except PydarknetError as e:
        return "refused", str(e).splitlines()[0]
    n, kinds = net.net, [layer.layer_type for layer in net.layers]
    image_after_gru = any(a == "gru" and b in ("crnn", "conv_lstm", "history", "convolutional")
                          for a, b in zip(kinds, kinds[1:]))
    one_step_history = "history" in kinds and n.time_steps == 1 and net.batch > 1
    if min(n.width, n.height) == 1 or image_after_gru or one_step_history:
        return "skipped", ""
    randomize(net, rng)
    train = rng.random() < 1 / 3
    passes, rows = 1 if train else int(rng.integers(1, 4)), net.batch
    x = rng.uniform(0, 1, (passes * rows, n.channels, n.height, n.width)).astype(np.float32)
    try:
        want = darknet_outputs(exe, darknet, tmp, text, net, x,
                               np.zeros(0, np.float32) if train else None,
                               f"{rows}:{n.time_steps}:{passes}")
    except RuntimeError as e:
        return "darknet failed", str(e)

    def run(move):
        net = load(tmp / "n.cfg", tmp / "n.weights")
        xs, items = moved(net, x, move), []
        for p in range(passes):
            net.forward(xs[p * rows:(p + 1) * rows], train=train)
            items += [(p * 100000 + i, f"pass {p} layer {i} {layer.type}",
                       np.array(net.outputs[i]), 0.0, i) for i, layer in enumerate(net.layers)]
        return items
    return judge(run, want, tol)


def gradient_counts(net):
    """The harness's COUNTS: each layer's weights, biases and scales gradient sizes."""
    net.ensure_training()
    return [[layer.grads[k].size if k in layer.grads else 0 for k in GRADIENTS]
            for layer in net.layers]


def regenerate_backward(darknet):
    """tests/data/darknet_backward.npz from a Darknet patched by darknet_gpusem_patch.py."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        exe = compile_harness(darknet, tmp)
        for name, text in BACKWARD_CASES.items():
            net, x, r = case_inputs(name)
            for i, values in darknet_outputs(exe, darknet, tmp, text, net, x,
                                             backward=(r, gradient_counts(net))).items():
                if i >= INPUT_DELTA:        # the backward's values, not the outputs
                    out[f"{name}_{i}"] = values
            print(f"{name}: {len(net.layers)} layers")
    np.savez_compressed(BACKWARD_ORACLE, **out)
    print(f"wrote {BACKWARD_ORACLE}")


def fuzz(darknet, first, last, keep, compare=None):
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        exe = compile_harness(darknet, tmp)
        for seed in range(first, last):
            try:
                verdict, detail = (compare or compare_forward)(seed, exe, darknet, tmp)
            except Exception:
                verdict, detail = "pydarknet failed", traceback.format_exc()[-400:]
            counts[verdict] = counts.get(verdict, 0) + 1
            if verdict not in ("ok", "overflow", "skipped", "refused"):
                print(f"seed {seed}: {verdict}: {detail}", flush=True)
                if keep:
                    folder = pathlib.Path(keep) / str(seed)
                    folder.mkdir(parents=True, exist_ok=True)
                    for f in ("n.cfg", "n.weights", "x.bin"):
                        if (tmp / f).exists():
                            (folder / f).write_bytes((tmp / f).read_bytes())
    print(counts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("darknet", help="AB Darknet's folder, built with make LIBSO=1")
    ap.add_argument("--pjreddie", help="pjreddie's Darknet's folder, built with make (the "
                    "oracle of test_darknet_forward's PJREDDIE_CASES)")
    ap.add_argument("--fuzz", nargs=2, type=int, metavar=("FIRST", "LAST"),
                    help="compare random cfgs of these seeds instead")
    ap.add_argument("--fuzz-train", nargs=2, type=int, metavar=("FIRST", "LAST"),
                    help="compare random cfgs' training forward ([yolo] deltas and costs)")
    ap.add_argument("--fuzz-backward", nargs=2, type=int, metavar=("FIRST", "LAST"),
                    help="compare random cfgs' backward pass (every delta and gradient) with "
                    "a Darknet patched by tools/darknet_gpusem_patch.py")
    ap.add_argument("--fuzz-recurrent", nargs=2, type=int, metavar=("FIRST", "LAST"),
                    help="compare random recurrent networks, every step and layer")
    ap.add_argument("--backward-oracle", action="store_true",
                    help="regenerate tests/data/darknet_backward.npz (DARKNET patched by "
                    "tools/darknet_gpusem_patch.py)")
    ap.add_argument("--keep", help="with --fuzz: keep the failing seeds' files here")
    ap.add_argument("--more-layers", action="store_true",
                    help="with --fuzz*: networks of more layer kinds too (random_cfg's more: "
                    "other networks for the same seeds)")
    a = ap.parse_args()
    darknet = pathlib.Path(a.darknet).resolve()

    def fuzzing(compare):
        return functools.partial(compare, more=a.more_layers)
    if a.fuzz:
        fuzz(darknet, *a.fuzz, a.keep, fuzzing(compare_forward))
    elif a.backward_oracle:
        regenerate_backward(darknet)
    elif a.fuzz_backward:
        fuzz(darknet, *a.fuzz_backward, a.keep, fuzzing(compare_backward))
    elif a.fuzz_train:
        fuzz(darknet, *a.fuzz_train, a.keep, fuzzing(compare_training))
    elif a.fuzz_recurrent:
        fuzz(darknet, *a.fuzz_recurrent, a.keep, compare_recurrent)
    elif not a.pjreddie:
        ap.error("regenerating the oracle needs --pjreddie too")
    else:
        regenerate(darknet, pathlib.Path(a.pjreddie).resolve())


if __name__ == "__main__":
    main()
