"""Random networks train alike on the C core and on the numpy reference backend.

The second test varies the head ([region], [Gaussian_yolo], [detection] after [connected])
and adds [local] and DropBlock. (Not xnor: the signs of a computed input flip with rounding
between backends, and on the image they are all +1, which leaves batch norm nothing to
normalise; tests/test_xnor_conv.py checks it.)

Each case is a random cfg (convolutions of every geometry the parser takes: sizes, strides
x/y, padding, groups, dilation, batch norm, the activations the reference backend has; max
and local average pools; routes with groups; shortcuts with and without weights; upsample,
sam, scale_channels, dropout, reorg3d, activation) ending in a [yolo] head. The third adds
the rarer layers (antialiasing, [normalization], maxpool_zero_nonmax, shortcuts between
spatial sizes, [implicit]). Two training iterations
(subdivisions 1 or 2) run on both backends from the same weights; the losses and every
parameter afterwards must agree. This covers layer sequences and shapes the fixed cases of
test_gradients.py and the Darknet oracles do not.
"""

import numpy as np
import pytest

import pydarknet
import reference_backend
from pydarknet.cfg import parse_cfg_text

ACTIVATIONS = ["linear", "leaky", "mish", "swish", "logistic", "relu", "tanh", "relu6",
               "hard_mish", "elu", "revleaky", "ramp"]
SHORTCUT_WEIGHTS = ["", "weights_type=per_channel\n", "weights_type=per_feature\n",
                    "weights_type=per_channel\nweights_normalization=softmax\n",
                    "weights_type=per_feature\nweights_normalization=relu\n"]


def _conv(rng, c, h, w):
    size = int(rng.choice([1, 3, 3, 5]))
    groups = int(rng.choice([1, 1, 2])) if c % 2 == 0 else 1
    filters = int(rng.integers(1, 5)) * groups * int(rng.choice([1, 2]))
    sx = int(rng.choice([1, 1, 2]))
    sy = int(rng.choice([1, 2])) if rng.random() < 0.3 else sx
    pad = int(rng.choice([0, 1, 1]))
    dilation = int(rng.choice([1, 1, 2])) if size > 1 else 1
    span = (size - 1) * dilation + 1
    padding = size // 2 if pad else 0
    oh, ow = (h + 2 * padding - span) // sy + 1, (w + 2 * padding - span) // sx + 1
    if oh < 2 or ow < 2:
        return None
    stride = f"stride={sx}\n" if sx == sy else f"stride_x={sx}\nstride_y={sy}\n"
    return (f"[convolutional]\nbatch_normalize={int(rng.integers(0, 2))}\nfilters={filters}\n"
            f"size={size}\n{stride}pad={pad}\ngroups={groups}\ndilation={dilation}\n"
            f"activation={rng.choice(ACTIVATIONS)}\n"), (filters, oh, ow)


def _maxpool(rng, c, h, w):
    size, sx = int(rng.choice([2, 3])), int(rng.choice([1, 2]))
    sy = int(rng.choice([1, 2])) if rng.random() < 0.3 else sx
    pad = int(rng.choice([size - 1, 0, 1, 2]))
    oh, ow = (h + pad - size) // sy + 1, (w + pad - size) // sx + 1
    if oh < 2 or ow < 2:
        return None
    return (f"[maxpool]\nsize={size}\nstride_x={sx}\nstride_y={sy}\npadding={pad}\n",
            (c, oh, ow))


def random_cfg(rng):
    """(cfg text, classes) of a random trainable network with a [yolo] head."""
    sections, c, h, w = random_trunk(rng)
    classes = int(rng.integers(1, 4))
    sections.append(f"[convolutional]\nfilters={3 * (classes + 5)}\nsize=1\nactivation=linear\n")
    sections.append(f"[yolo]\nmask=0,1,2\nanchors=4,5, 8,9, 14,10, 20,25\nclasses={classes}\n"
                    f"num=4\niou_loss={rng.choice(['mse', 'ciou', 'giou'])}\nignore_thresh=0.7\n"
                    f"iou_thresh={rng.choice([1, 0.213])}\nscale_x_y={rng.choice([1.0, 1.05])}\n"
                    f"objectness_smooth={rng.integers(0, 2)}\n")
    return "\n".join(sections), classes


def random_trunk(rng, extra_kinds=()):
    """The [net] section and random layers: (sections, c, h, w of the last output)."""
    W, H = int(rng.choice([16, 20, 24, 28, 32, 40])), int(rng.choice([16, 20, 24, 32]))
    sections = [f"[net]\nbatch=4\nsubdivisions={rng.choice([1, 2])}\nwidth={W}\nheight={H}\n"
                f"channels=3\nlearning_rate=0.01\nmomentum=0.9\ndecay=0.0005\nburn_in=0\n"
                f"max_batches=10\npolicy=constant\n"]
    shapes = []                  # (c, h, w) of each layer's output
    c, h, w = 3, H, W
    for _ in range(int(rng.integers(3, 12))):
        kind = rng.choice(["conv", "conv", "conv", "maxpool", "route", "shortcut", "upsample",
                           "sam", "scale_channels", "dropout", "local_avgpool", "reorg3d",
                           "activation", *extra_kinds])
        made = None
        if kind == "local" and c * h * w <= 4096:
            filters = int(rng.integers(1, 5))
            made = (f"[local]\nfilters={filters}\nsize=3\nstride=1\npad=1\n"
                    f"activation={rng.choice(ACTIVATIONS)}\n", (filters, h, w))
        elif kind == "dropblock" and min(h, w) >= 4:
            made = (f"[dropout]\nprobability={rng.choice([0.1, 0.5])}\ndropblock=1\n"
                    f"dropblock_size_abs={rng.integers(1, 4)}\n", (c, h, w))
        elif kind == "conv":
            made = _conv(rng, c, h, w)
        elif kind == "maxpool" and min(h, w) >= 4:
            made = _maxpool(rng, c, h, w)
        elif kind == "local_avgpool" and min(h, w) >= 4:
            made = "[local_avgpool]\nsize=2\nstride=2\n", (c, (h + 1) // 2, (w + 1) // 2)
        elif kind == "route":
            same = [j for j, s in enumerate(shapes) if s[1:] == (h, w)]
            if same:
                picks = sorted(set(rng.choice(same, int(rng.integers(1, 3))).tolist()))
                total, groups = sum(shapes[j][0] for j in picks), ""
                if rng.random() < 0.3 and all(shapes[j][0] % 2 == 0 for j in picks):
                    groups, total = f"groups=2\ngroup_id={rng.integers(0, 2)}\n", total // 2
                made = (f"[route]\nlayers={','.join(map(str, picks))}\n{groups}", (total, h, w))
        elif kind in ("shortcut", "sam"):
            same = [j for j, s in enumerate(shapes[:-1]) if s == (c, h, w)]
            if same:
                j = int(rng.choice(same))
                extra = (f"{rng.choice(SHORTCUT_WEIGHTS)}" if kind == "shortcut" else "")
                made = (f"[{kind}]\nfrom={j}\n{extra}activation={rng.choice(ACTIVATIONS)}\n",
                        (c, h, w))
        elif kind == "aa_conv" and min(h, w) >= 4:      # antialiasing: stride 1, then the blur
            blur = int(rng.choice([1, 2]))
            size, pad = (2, 0) if blur == 2 else (3, 1)
            filters = int(rng.integers(1, 5))
            # (with batch norm: a plain bias feeding later batch norm through the blur has a
            # gradient of rounding noise; test_gradients checks the bias case)
            made = (f"[convolutional]\nbatch_normalize=1\nfilters={filters}\n"
                    f"size=3\nstride=2\npad=1\nantialiasing={blur}\n"
                    f"activation={rng.choice(ACTIVATIONS)}\n",
                    (filters, (h + 2 * pad - size) // 2 + 1, (w + 2 * pad - size) // 2 + 1))
        elif kind == "lrn":
            made = (f"[normalization]\nsize={int(rng.integers(1, 2 * c + 2))}\nalpha=0.001\n"
                    f"beta=0.75\nkappa=1\n", (c, h, w))
        elif kind == "nonmax":
            made = "[maxpool]\nsize=3\nstride=1\nmaxpool_zero_nonmax=1\n", (c, h, w)
        elif kind == "resampled":      # pjreddie's shortcut from a layer twice the size
            big = [j for j, s in enumerate(shapes[:-1]) if s[1:] == (2 * h, 2 * w)]
            if big:
                made = (f"[shortcut]\nfrom={int(rng.choice(big))}\n"
                        f"activation={rng.choice(ACTIVATIONS)}\n", (c, h, w))
        elif kind == "scale_channels":
            same = [j for j, s in enumerate(shapes) if s[0] == c and s[1:] != (1, 1)]
            if same:           # the scales: this layer pooled to 1x1xc, or YOLOR's [implicit]
                sections.append("[avgpool]\n" if "implicit" not in extra_kinds or
                                rng.random() < 0.5 else f"[implicit]\nfilters={c}\nmean=1\n")
                shapes.append((c, 1, 1))
                j = int(rng.choice(same))
                made = f"[scale_channels]\nfrom={j}\n", shapes[j]
        elif kind == "upsample" and h * w <= 500:
            made = "[upsample]\nstride=2\n", (c, 2 * h, 2 * w)
        elif kind == "activation":
            made = f"[activation]\nactivation={rng.choice(ACTIVATIONS)}\n", (c, h, w)
        elif kind == "dropout":
            made = f"[dropout]\nprobability={rng.choice([0.1, 0.5])}\n", (c, h, w)
        elif kind == "reorg3d" and h % 2 == 0 and w % 2 == 0 and h >= 4:
            made = "[reorg3d]\nstride=2\n", (4 * c, h // 2, w // 2)
        if made:
            sections.append(made[0])
            shapes.append(made[1])
            c, h, w = made[1]
    return sections, c, h, w


@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # overflowing activations
@pytest.mark.parametrize("seed", range(100))
def test_random_network_trains_alike_on_both_backends(seed):
    rng = np.random.default_rng(seed)
    text, classes = random_cfg(rng)
    check_trains_alike(text, classes, rng, seed)


def check_trains_alike(text, classes, rng, seed):
    """Two iterations from the same weights on both backends: the losses and parameters."""
    nets = [pydarknet.Network(parse_cfg_text(text, f"random{seed}.cfg"), seed=3, device=d)
            for d in ("cpu", reference_backend)]
    batch = nets[0].net.batch
    x = np.random.default_rng(seed + 1).random((batch,) + nets[0].input_shape, dtype=np.float32)
    truths = np.zeros((batch, 10, 5), np.float32)
    for b in range(batch):
        k = int(rng.integers(1, 6))
        truths[b, :k, :2] = rng.uniform(0.1, 0.9, (k, 2))
        truths[b, :k, 2:4] = rng.uniform(0.05, 0.5, (k, 2))
        truths[b, :k, 4] = rng.integers(0, classes, k)
    for iteration in range(2):
        losses = []
        for net in nets:
            net.rng = np.random.default_rng(100 + iteration)     # the same dropout masks
            losses.append(net.train_iteration(x, truths))
        assert losses[0] == pytest.approx(losses[1], rel=1e-4), text
    for ours, ref in zip(*(net.layers for net in nets)):
        for name, value in ours.params.items():
            want = np.asarray(ref.params[name], np.float64)
            # a bias before batch norm has a gradient of ~0 (rounding): hence the floor
            scale = max(float(np.abs(want).max()), 1e-2)
            err = float(np.abs(np.asarray(value, np.float64) - want).max())
            assert err <= 1e-3 * scale, f"layer {ours.index} {name}: {err:g}\n{text}"


def random_head_cfg(rng):
    """(cfg text, classes): a random trunk and a random head of the other kinds."""
    sections, c, h, w = random_trunk(rng, extra_kinds=("local", "dropblock"))
    classes = int(rng.integers(1, 4))
    head = rng.choice(["region", "gaussian", "detection"])
    if head == "region":
        sections.append(f"[convolutional]\nfilters={3 * (classes + 5)}\nsize=1\n"
                        f"activation=linear\n")
        sections.append(f"[region]\nanchors=0.6,0.8, 1.5,1.2, 2.5,3\nclasses={classes}\n"
                        f"coords=4\nnum=3\nsoftmax={rng.integers(0, 2)}\n"
                        f"rescore={rng.integers(0, 2)}\nbias_match={rng.integers(0, 2)}\n"
                        f"object_scale=5\nthresh={rng.choice([0.3, 0.6])}\n")
    elif head == "gaussian":
        sections.append(f"[convolutional]\nfilters={3 * (classes + 9)}\nsize=1\n"
                        f"activation=linear\n")
        sections.append(f"[Gaussian_yolo]\nmask=0,1,2\nanchors=4,5, 8,9, 14,10, 20,25\n"
                        f"classes={classes}\nnum=4\niou_loss={rng.choice(['mse', 'giou'])}\n"
                        f"iou_thresh={rng.choice([1, 0.213])}\nignore_thresh=0.5\n")
    else:
        side, num = 3, 2
        sections.append(f"[connected]\noutput={side * side * (5 * num + classes)}\n"
                        f"activation=linear\n")
        sections.append(f"[detection]\nclasses={classes}\ncoords=4\nside={side}\nnum={num}\n"
                        f"sqrt={rng.integers(0, 2)}\nrescore={rng.integers(0, 2)}\n"
                        f"softmax={rng.integers(0, 2)}\ncoord_scale=5\nnoobject_scale=0.5\n")
    return "\n".join(sections), classes


@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # overflowing activations
@pytest.mark.parametrize("seed", range(80))
def test_random_networks_of_rarer_layers_train_alike(seed):
    """Antialiased convolutions, [normalization], maxpool_zero_nonmax, shortcuts between
    spatial sizes and [implicit] scales among the other layers, with a [yolo] head."""
    rng = np.random.default_rng(2000 + seed)
    sections, c, h, w = random_trunk(rng, extra_kinds=("aa_conv", "lrn", "nonmax", "resampled",
                                                       "implicit", "aa_conv", "resampled"))
    classes = int(rng.integers(1, 4))
    sections.append(f"[convolutional]\nfilters={3 * (classes + 5)}\nsize=1\nactivation=linear\n")
    sections.append(f"[yolo]\nmask=0,1,2\nanchors=4,5, 8,9, 14,10, 20,25\nclasses={classes}\n"
                    f"num=4\nignore_thresh=0.7\n")
    check_trains_alike("\n".join(sections), classes, rng, seed)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # overflowing activations
@pytest.mark.parametrize("seed", range(60))
def test_random_head_network_trains_alike_on_both_backends(seed):
    rng = np.random.default_rng(1000 + seed)
    text, classes = random_head_cfg(rng)
    check_trains_alike(text, classes, rng, seed)
