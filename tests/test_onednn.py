"""The CPU backend's oneDNN convolutions against its im2col + sgemm fallback (random layers:
groups, strides, pads, dilation, 1x1, batch > 1, forward and both backward directions),
PYDARKNET_ONEDNN=0, and `pydarknet info` naming each convolution's path."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from closeness import assert_close
from pydarknet.backend import onednn
from pydarknet.backend.cpu import CpuBackend, _cpu

ROOT = pathlib.Path(__file__).resolve().parent.parent

needs_onednn = pytest.mark.skipif(not _cpu.onednn_built(),
                                  reason="extension built without oneDNN")

# (N, C, H, W, F, size, stride_y, stride_x, darknet pad, dilation, groups), shaped the way
# Convolutional builds them: OH = (H + 2 pad - size) // stride + 1, padding pad * dilation
GEOMETRIES = [
    (1, 3, 32, 32, 8, 3, 1, 1, 1, 1, 1),        # first layer: few input channels
    (2, 16, 20, 20, 32, 3, 2, 2, 1, 1, 1),      # stride 2, batch 2
    (2, 16, 19, 17, 32, 3, 2, 2, 1, 1, 1),      # odd sizes with stride 2
    (3, 16, 12, 12, 24, 1, 1, 1, 0, 1, 1),      # 1x1
    (2, 16, 12, 12, 24, 1, 2, 2, 0, 1, 1),      # 1x1 stride 2
    (2, 16, 14, 14, 32, 3, 1, 1, 1, 1, 4),      # groups
    (2, 16, 14, 14, 16, 3, 1, 1, 1, 1, 16),     # depthwise
    (2, 16, 14, 14, 16, 3, 2, 2, 1, 1, 16),     # depthwise stride 2
    (2, 8, 21, 21, 8, 3, 1, 1, 1, 2, 1),        # dilation 2 (padding 2)
    (1, 8, 15, 15, 8, 3, 1, 1, 1, 3, 2),        # dilation 3, groups
    (1, 8, 15, 15, 8, 3, 1, 1, 0, 2, 1),        # dilation without padding (reads past the edge)
    (1, 8, 10, 10, 8, 3, 1, 1, 0, 1, 1),        # no padding
    (1, 8, 10, 10, 8, 3, 2, 2, 0, 1, 1),        # no padding, stride 2, last row unread
    (1, 8, 10, 10, 8, 5, 2, 2, 1, 1, 1),        # 5x5, padding smaller than size/2
    (1, 8, 10, 10, 8, 3, 1, 1, 2, 1, 1),        # padding larger than size/2
    (1, 8, 11, 9, 8, 3, 2, 1, 1, 1, 1),         # stride_y != stride_x
    (2, 5, 7, 7, 3, 7, 1, 1, 3, 1, 1),          # 7x7 on a 7x7 input
    (1, 4, 6, 6, 6, 3, 4, 4, 0, 1, 2),          # stride larger than the kernel
    (5, 8, 200, 160, 8, 3, 1, 1, 1, 1, 1),      # 1 MB images: oneDNN runs 4, then 1
]


def _backends():
    on, off = CpuBackend(), CpuBackend()
    on.onednn, off.onednn = True, False
    return on, off


def _case(geo, seed):
    n, c, h, w, f, k, sy, sx, pad, dil, g = geo
    rng = np.random.default_rng(seed)
    oh, ow = (h + 2 * pad - k) // sy + 1, (w + 2 * pad - k) // sx + 1
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((f, c // g, k, k)).astype(np.float32)
    delta = rng.standard_normal((n, f, oh, ow)).astype(np.float32)
    return x, wt, delta, (sy, sx, pad * dil, pad * dil, dil, g)


@needs_onednn
@pytest.mark.parametrize("geo", GEOMETRIES, ids=lambda g: "x".join(map(str, g)))
def test_forward_and_backward_match_the_fallback(geo):
    check_against_the_fallback(geo)


def check_against_the_fallback(geo):
    """oneDNN's forward and both backward directions equal the fallback's for ``geo``, and a
    convolution oneDNN takes never runs on its reference kernel."""
    on, off = _backends()
    x, w, delta, args = _case(geo, seed=sum(geo))
    sy, sx, py, px, dil, g = args
    results = []
    for B in (on, off):
        out = np.full(delta.shape, np.nan, np.float32)      # written in full
        B.conv2d(x, w, out, *args)
        dx = np.full(x.shape, 0.5, np.float32)               # backward accumulates
        dw = np.full(w.shape, -0.25, np.float32)
        B.conv2d_backward(x, w, delta, dx, dw, *args)
        dw_only = np.full(w.shape, 1.0, np.float32)
        B.conv2d_backward(x, w, delta, None, dw_only, *args)  # no input gradient
        results.append((out, dx, dw, dw_only))
    for got, ref in zip(results[0], results[1]):
        assert_close(got, ref, 1e-5)
    n, c, h, wd, f, k = geo[:6]
    oh, ow = delta.shape[2:]
    path = on.conv2d_path(n, c, h, wd, f, k, k, oh, ow, sy, sx, py, px, dil, g)
    pointwise = k == 1 and sy == sx == 1 and py == 0 and (oh, ow) == (h, wd)
    # a 1x1 stride-1 convolution is one sgemm on NCHW data: faster without oneDNN
    assert path == onednn.FALLBACK if pointwise else path.startswith("onednn:"), path
    for kw_ in ({"activation": "leaky"}, {"backward": True}):
        other = on.conv2d_path(n, c, h, wd, f, k, k, oh, ow, sy, sx, py, px, dil, g, **kw_)
        assert "ref" not in path + other, (path, other)


@needs_onednn
@pytest.mark.parametrize("isa", ["AVX2", "SSE41"])
def test_cpus_without_avx512_take_oneDNNs_fast_kernels(isa):
    """oneDNN limited to an older CPU's instructions (ONEDNN_MAX_CPU_ISA): the training
    layouts follow its kernels' channel blocks (8 below AVX-512; blocks of 16 left AVX2
    machines oneDNN's reference kernel, a thousand times slower), what no fast kernel takes
    runs on the fallback, and every result still equals the fallback's."""
    code = ("import sys; sys.path.insert(0, %r); import test_onednn as t\n"
            "for geo in t.GEOMETRIES: t.check_against_the_fallback(geo)\n"
            "from pydarknet.backend import get_backend\n"
            "print(get_backend('cpu').conv2d_path(2, 16, 14, 14, 32, 3, 3, 14, 14, 1, 1, 1, 1, "
            "1, 1, backward=True))" % str(ROOT / "tests"))
    env = dict(os.environ, PYTHONPATH=str(ROOT), ONEDNN_MAX_CPU_ISA=isa, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    if isa == "AVX2":
        assert out.stdout.split() == ["onednn:jit:avx2"], out.stdout


@needs_onednn
def test_repeated_calls_see_new_weights_and_inputs():
    """Primitives are cached per geometry: new weights, inputs and outputs every call."""
    on, off = _backends()
    geo = (2, 8, 12, 12, 16, 3, 1, 1, 1, 1, 1)
    for seed in range(3):
        x, w, delta, args = _case(geo, seed)
        outs = []
        for B in (on, off):
            out = np.empty(delta.shape, np.float32)
            B.conv2d(x, w, out, *args)
            outs.append(out)
        assert_close(outs[0], outs[1], 1e-5)
        w[0, 0, 1, 1] += 1.0                     # a one-element change of the weights
        x[1] *= 2
        for B in (on, off):
            out = np.empty(delta.shape, np.float32)
            B.conv2d(x, w, out, *args)
            outs.append(out)
        assert_close(outs[2], outs[3], 1e-5)


def test_fallback_path_when_off():
    B = CpuBackend()
    B.onednn = False
    assert B.conv2d_path(1, 8, 10, 10, 8, 3, 3, 10, 10, 1, 1, 1, 1, 1, 1) == onednn.FALLBACK


def test_pydarknet_onednn_0_is_honoured():
    code = ("from pydarknet.backend import get_backend; B = get_backend('cpu'); "
            "print(B.onednn, B.conv2d_path(1, 8, 10, 10, 8, 3, 3, 10, 10, 1, 1, 1, 1, 1, 1))")
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYDARKNET_ONEDNN="0")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", onednn.FALLBACK]


def _info(env_extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **env_extra)
    out = subprocess.run([sys.executable, "-m", "pydarknet", "info",
                          str(ROOT / "cfg" / "yolov4-tiny.cfg"), "--width", "160", "--height",
                          "160"], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line.strip().startswith("layer ")
            and " conv: " in line]


@needs_onednn
def test_info_names_each_convolutions_path():
    if os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper().startswith("SSE"):
        pytest.skip("the counts below are AVX2's and AVX-512's: with SSE4.1 oneDNN has fast "
                    "kernels for few of these training passes, and the rest take the fallback")

    def path(lines, layer):
        (line,) = [l for l in lines if l.split()[1] == str(layer)]
        return line.split(" conv: ")[1].replace(" / ", "; ").split("; ")

    lines = _info({"PYDARKNET_WINOGRAD": "0"})
    assert len(lines) == 21                      # yolov4-tiny's convolutional layers
    # inference; training forward / backward. Training: oneDNN for the 14 3x3 convolutions,
    # sgemm for the 1x1 ones (leaky or linear: nothing to fuse)
    assert sum(line.count("onednn:") >= 2 for line in lines) == 14, lines
    assert sum(line.count(onednn.FALLBACK) == 3 for line in lines) == 7, lines
    # inference: oneDNN where the activations outweigh the weights (the first layers),
    # im2col + sgemm where the weights do (oneDNN would convert them at every call)
    assert path(lines, 1)[0].startswith("onednn:"), lines
    assert path(lines, 26)[0] == onednn.FALLBACK, lines
    # Winograd at inference for the 3x3 stride-1 ones with outputs of 40x40 (at 160x160)
    lines = _info({})
    assert [l.split()[1] for l in lines if onednn.WINOGRAD in l] == ["2", "4", "5"], lines
    assert all(path(lines, layer)[1].startswith("onednn:") for layer in (2, 4, 5)), lines
    lines = _info({"PYDARKNET_ONEDNN": "0"})
    assert len(lines) == 21 and all(line.count(onednn.FALLBACK) == 3 for line in lines), lines


@needs_onednn
def test_geometry_oneDNN_cannot_do_goes_to_the_fallback():
    """Darknet pads by pad * dilation but sizes the output by pad: with a large pad and
    dilation the last window ends more than a stride inside the padded image, which oneDNN
    cannot express; that layer runs im2col + sgemm, with the same results."""
    geo = (1, 4, 10, 10, 4, 3, 1, 1, 4, 4, 1)
    on, off = _backends()
    x, w, delta, args = _case(geo, seed=1)
    sy, sx, py, px, dil, g = args
    for kind in ({}, {"activation": "mish"}, {"backward": True}):
        assert on.conv2d_path(1, 4, 10, 10, 4, 3, 3, delta.shape[2], delta.shape[3], sy, sx,
                              py, px, dil, g, **kind) == onednn.FALLBACK
    outs = []
    for B in (on, off):
        out = np.empty(delta.shape, np.float32)
        B.conv2d(x, w, out, *args)
        dx, dw = np.zeros_like(x), np.zeros_like(w)
        B.conv2d_backward(x, w, delta, dx, dw, *args)
        outs.append((out, dx, dw))
    for got, ref in zip(*outs):
        np.testing.assert_array_equal(got, ref)


FUSED = ["linear", "logistic", "relu", "leaky", "revleaky", "swish", "mish"]


@needs_onednn
@pytest.mark.parametrize("act, geo", [(a, (2, 8, 13, 11, 16, 3, 1, 1, 1, 1, 2)) for a in
                                      FUSED + ["tanh", "elu", "normalize_channels"]] +
                         [("mish", GEOMETRIES[-1])],          # in chunks of images
                         ids=lambda v: v if isinstance(v, str) else "x".join(map(str, v)))
@pytest.mark.parametrize("bn", [True, False], ids=["bn", "bias"])
def test_fused_inference_matches_the_separate_ops(act, geo, bn):
    """conv2d_activate_inference: batch norm (or bias) and activation inside oneDNN's
    convolution for the activations oneDNN computes as Darknet does; the others run apart."""
    on, off = _backends()
    x, w, delta, args = _case(geo, seed=3)
    rng = np.random.default_rng(4)
    f = w.shape[0]
    biases = rng.standard_normal(f).astype(np.float32)
    extra = ()
    if bn:
        extra = (rng.uniform(0.5, 2, f).astype(np.float32), rng.standard_normal(f).astype(
            np.float32), rng.uniform(0.1, 3, f).astype(np.float32))
    outs = []
    for B in (on, off):
        out = np.full(delta.shape, np.nan, np.float32)
        B.conv2d_activate_inference(x, w, out, *args, biases, act, *extra)
        outs.append(out)
    assert_close(outs[0], outs[1], 1e-5)


@needs_onednn
@pytest.mark.parametrize("act", FUSED)
def test_fused_activations_equal_darknets_per_element(act):
    """An identity 1x1 convolution, so that the fused activation sees exact inputs from -30
    to 30 (mish's softplus threshold is 20, logistic saturates): every element within 1e-5
    of the C core's activation, relative to max(1, |y|)."""
    on, off = _backends()
    c = 16
    x = np.linspace(-30, 30, 4 * c * 25, dtype=np.float32).reshape(4, c, 5, 5)
    x = np.concatenate([x, np.random.default_rng(5).normal(0, 3, x.shape).astype(np.float32)])
    w = np.ones((c, 1, 1, 1), np.float32)
    zero = np.zeros(c, np.float32)
    fused = np.empty_like(x)
    # ungrouped convolutions go to sgemm at inference (but with swish and logistic): a
    # depthwise identity with padding 1 (a zero border) keeps it in oneDNN
    big = np.empty(x.shape[:2] + (7, 7), np.float32)
    on.conv2d_activate_inference(x, w, big, 1, 1, 1, 1, 1, c, zero, act)
    assert on.conv2d_path(*x.shape[:2], 5, 5, c, 1, 1, 7, 7, 1, 1, 1, 1, 1, c,
                          activation=act).startswith("onednn:")
    fused[...] = big[:, :, 1:6, 1:6]
    ref = off.activate(x.copy(), act)
    err = np.abs(fused - ref) / np.maximum(1, np.abs(ref))
    assert err.max() <= 1e-5, (act, float(err.max()), float(x.reshape(-1)[err.argmax()]))
