"""Inference's Winograd F(4x4, 3x3) convolutions (src_c/winograd.c) against the direct
convolution: random layers (pads 0-2, odd sizes, batches, blocks of output channels and of
tile rows), the geometries it must decline, the fused batch norm and activation through the
backend, a whole network, and PYDARKNET_WINOGRAD=0."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from pydarknet.backend import onednn
from pydarknet.backend.cpu import CpuBackend, _cpu

ROOT = pathlib.Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not _cpu.winograd_built(),
                                reason="extension built without oneDNN (no Winograd path)")

# The transforms' constants (up to 8 and 5) amplify float32 rounding: measured up to 1.5e-5
# of the layer's largest output for 512 input channels of signed data, ~1e-6 for a few.
TOLERANCE = 3e-5


def _direct(x, w, pad):
    n, c, h, wd = x.shape
    f = w.shape[0]
    out = np.zeros((n, f, h + 2 * pad - 2, wd + 2 * pad - 2), np.float32)
    _cpu.conv2d(x, w, out, n, c, h, wd, f, 3, 3, out.shape[2], out.shape[3], 1, 1, pad, pad,
                1, 1, False)
    return out


def _exact(x, w, pad):
    """float64 reference."""
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = xp.shape[2] - 2, xp.shape[3] - 2
    out = np.zeros((x.shape[0], w.shape[0], oh, ow))
    for i in range(3):
        for j in range(3):
            out += np.einsum("fc,nchw->nfhw", w[:, :, i, j].astype(np.float64),
                             xp[:, :, i:i + oh, j:j + ow])
    return out


def _winograd(x, w, pad):
    n, c, h, wd = x.shape
    f = w.shape[0]
    out = np.full((n, f, h + 2 * pad - 2, wd + 2 * pad - 2), np.nan, np.float32)
    assert _cpu.conv2d_winograd(x, w, out, n, c, h, wd, f, 3, 3, out.shape[2], out.shape[3],
                                1, 1, pad, pad, 1, 1)
    return out


def _layer(n, c, h, w, f, seed, signed=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    if not signed:                      # like the outputs of leaky / mish
        x = np.maximum(x, -0.1 * np.abs(x))
    wt = (rng.standard_normal((f, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    return x, wt


def _relative(got, want):
    return float(np.abs(got - want).max() / np.abs(want).max())


# (N, C, H, W, F, pad)
GEOMETRIES = [
    (1, 16, 30, 31, 5, 1),       # fewest input channels taken, odd width
    (2, 16, 27, 25, 20, 1),      # batch 2, partial last tiles
    (1, 40, 33, 29, 17, 0),      # no padding
    (1, 16, 26, 26, 300, 2),     # pad 2, many output channels
    (1, 64, 104, 104, 64, 1),    # several bands of tile rows
    (2, 512, 26, 26, 256, 1),    # blocks of output channels over one band: inputs once
    (2, 256, 60, 52, 160, 1),    # batch 2, two blocks of output channels, four bands of rows
]


@pytest.mark.parametrize("geo", GEOMETRIES, ids=lambda g: "x".join(map(str, g)))
def test_equals_the_direct_convolution(geo):
    n, c, h, w, f, pad = geo
    x, wt = _layer(n, c, h, w, f, seed=sum(geo))
    got, want = _winograd(x, wt, pad), _direct(x, wt, pad)
    assert not np.isnan(got).any()
    assert _relative(got, want) < TOLERANCE


def test_error_against_float64_stays_near_the_direct_ones():
    x, wt = _layer(1, 256, 30, 30, 64, seed=3, signed=False)
    exact = _exact(x, wt, 1)
    direct, wino = _relative(_direct(x, wt, 1), exact), _relative(_winograd(x, wt, 1), exact)
    assert wino < TOLERANCE and direct < 2e-6, (wino, direct)


# (C, H, W, F, size, stride, pad, dilation, groups): what it must leave to the other paths
DECLINED = [
    (16, 64, 64, 16, 3, 2, 1, 1, 1),     # stride 2
    (16, 64, 64, 16, 1, 1, 0, 1, 1),     # 1x1
    (16, 64, 64, 16, 5, 1, 2, 1, 1),     # 5x5
    (16, 64, 64, 16, 3, 1, 1, 1, 2),     # groups
    (16, 64, 64, 16, 3, 1, 2, 2, 1),     # dilation
    (16, 20, 20, 16, 3, 1, 1, 1, 1),     # 20x20 output: too small to pay
    (3, 64, 64, 16, 3, 1, 1, 1, 1),      # 3 input channels: too few to pay
]


@pytest.mark.parametrize("geo", DECLINED, ids=lambda g: "x".join(map(str, g)))
def test_declines_other_geometries_and_writes_nothing(geo):
    c, h, w, f, k, s, pad, dil, g = geo
    oh = (h + 2 * pad - dil * (k - 1) - 1) // s + 1
    ow = (w + 2 * pad - dil * (k - 1) - 1) // s + 1
    x = np.ones((1, c, h, w), np.float32)
    wt = np.ones((f, c // g, k, k), np.float32)
    out = np.full((1, f, oh, ow), 7.0, np.float32)
    assert not _cpu.winograd_applies(c, h, w, f, k, k, oh, ow, s, s, pad, pad, dil, g)
    assert not _cpu.conv2d_winograd(x, wt, out, 1, c, h, w, f, k, k, oh, ow, s, s, pad, pad,
                                    dil, g)
    assert (out == 7.0).all()


@pytest.mark.parametrize("act", ["mish", "leaky", "logistic", "linear"])
@pytest.mark.parametrize("bn", [True, False])
def test_backend_inference_with_batch_norm_and_activation(act, bn):
    """conv2d_activate_inference takes Winograd for the convolution, then Darknet's batch
    norm or bias and activation: the same as with Winograd off."""
    x, wt = _layer(2, 32, 48, 48, 24, seed=5)
    rng = np.random.default_rng(6)
    biases = rng.standard_normal(24).astype(np.float32)
    scales = rng.uniform(0.5, 2, 24).astype(np.float32) if bn else None
    mean = rng.standard_normal(24).astype(np.float32) if bn else None
    var = rng.uniform(0.5, 2, 24).astype(np.float32) if bn else None
    outs = []
    for winograd in (True, False):
        b = CpuBackend()
        b.winograd = winograd
        out = np.zeros((2, 24, 48, 48), np.float32)
        b.conv2d_activate_inference(x, wt, out, 1, 1, 1, 1, 1, 1, biases, act,
                                    scales=scales, mean=mean, variance=var)
        outs.append(out)
    assert _relative(outs[0], outs[1]) < TOLERANCE


def test_whole_network_with_and_without_winograd():
    """yolov4-tiny at 224 (random weights): every output within 1e-4 of the direct path's."""
    import pydarknet
    net = pydarknet.load(ROOT / "cfg" / "yolov4-tiny.cfg", batch=1, width=224, height=224)
    x = np.random.default_rng(0).uniform(0, 1, (1, 3, 224, 224)).astype(np.float32)
    paths = [net.backend.conv2d_path(1, l.c, l.h, l.w, l.n, l.size, l.size, l.out_h, l.out_w,
                                     l.stride_y, l.stride_x, l.pad, l.pad, l.dilation,
                                     l.groups, activation=l.activation)
             for l in net.layers if l.layer_type == "convolutional"]
    assert paths.count(onednn.WINOGRAD) >= 3, paths
    outs = []
    for winograd in (True, False):
        net.backend.winograd = winograd
        outs.append([o.copy() for o in net.predict(x)])
    for got, want in zip(*outs):
        assert _relative(got, want) < 1e-4


def test_pydarknet_winograd_0_is_honoured():
    code = ("from pydarknet.backend import get_backend; B = get_backend('cpu'); "
            "print(B.winograd, B.conv2d_path(1, 16, 64, 64, 8, 3, 3, 64, 64, 1, 1, 1, 1, 1, 1, "
            "activation='mish'))")
    for value, want in (("0", "False"), ("1", "True")):
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYDARKNET_WINOGRAD=value)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        words = out.stdout.split()
        assert words[0] == want and (words[1] == onednn.WINOGRAD) == (value == "1"), words
