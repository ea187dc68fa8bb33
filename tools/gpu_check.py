#!/usr/bin/env python3
"""Check every CUDA kernel of pydarknet/backend/kernels.fatbin on a GPU, and time Mish.

Run it ON the GPU machine from the repository root (``bash tools/gpu_check.sh`` does):
needs numpy and cupy (torch only for the Mish comparison); no pycuda, no internet, no
pydarknet install. It loads the fatbin with ``cupy.RawModule(path=...)``, runs each kernel on
random inputs, compares with a numpy float64 reference written below (Darknet's formulas,
as in src_c/ and tests/reference_backend.py), and prints one table row per kernel case:
max relative error = max |gpu - ref| / max |ref|, the tolerance, PASS or FAIL. Then it times
Mish forward and backward on 64M floats against a device-to-device copy and torch's F.mish
(CUDA events, 3 warm-ups, median of 20) in GB/s. Everything printed also goes to
$OUT/gpu_check.txt when $OUT is set. Exit status 1 when a check failed.

``--host`` runs the same checks without a GPU on cuda/*.cu compiled for the CPU
(tests/cuda_host.py: needs g++, not cupy): the kernels' indexing and formulas, before a GPU
session spends its minutes on them.

Every launch is checked against the kernel's C signature, parsed from cuda/*.cu: pointers
take arrays of the right dtype, ``int`` an np.int32 and ``float`` an np.float32 (cupy passes
a Python int as 64 bits and a float as a double, which the kernels would misread).
"""

import argparse
import math
import os
import pathlib
import re
import statistics
import sys
import time
import traceback

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
FATBIN = ROOT / "pydarknet" / "backend" / "kernels.fatbin"
THREADS = 256
FLT_MAX = float(np.finfo(np.float32).max)

# Darknet's activation names in code order (pydarknet.backend.ACTIVATIONS; copied so that the
# script needs no pydarknet import; checked against the package when it imports).
ACTIVATIONS = (
    "logistic", "relu", "relie", "linear", "ramp", "tanh", "plse", "revleaky", "leaky",
    "elu", "loggy", "stair", "hardtan", "lhtan", "selu", "gelu", "swish", "mish",
    "hard_mish", "relu6", "normalize_channels", "normalize_channels_softmax",
    "normalize_channels_softmax_maxval",
)
CODE = {n: i for i, n in enumerate(ACTIVATIONS)}
ELEMENTWISE = ACTIVATIONS[:20]
CHANNEL_ACTS = ACTIVATIONS[20:]

LINES = []


def say(*parts):
    line = " ".join(str(p) for p in parts)
    print(line, flush=True)
    LINES.append(line)


# ---------------------------------------------------------------------------------------------
# kernel signatures and launches
# ---------------------------------------------------------------------------------------------
def parse_signatures(cuda_dir):
    sigs = {}
    pat = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)', re.S)
    for path in sorted(pathlib.Path(cuda_dir).glob("*.cu")):
        for name, params in pat.findall(path.read_text()):
            kinds = []
            for p in params.split(","):
                p = " ".join(p.split())
                if "*" in p:
                    kinds.append("int*" if re.match(r"(const )?int\b", p) else "float*")
                elif p.startswith("int "):
                    kinds.append("int")
                elif p.startswith("float "):
                    kinds.append("float")
                else:
                    raise ValueError(f"{path.name}: {name}: unexpected parameter {p!r}")
            sigs[name] = kinds
    return sigs


class Kernels:
    def __init__(self, cp, module, sigs):
        self.cp = cp
        self.mod = module
        self.sigs = sigs
        self.fns = {}
        props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
        self.sms = props["multiProcessorCount"]
        self.launched = set()

    def fn(self, name):
        if name not in self.fns:
            self.fns[name] = self.mod.get_function(name)
        return self.fns[name]

    def __call__(self, name, work, *args, grid=None):
        """Launch ``name`` with 256 threads and enough blocks for ``work`` items (at most
        32 per SM: the kernels grid-stride) unless ``grid`` is given."""
        cp = self.cp
        sig = self.sigs.get(name)
        if sig is None:
            raise KeyError(f"{name}: no such extern \"C\" kernel in cuda/*.cu")
        if len(args) != len(sig):
            raise TypeError(f"{name}: takes {len(sig)} arguments ({', '.join(sig)}), "
                            f"got {len(args)}")
        packed = []
        for k, (kind, a) in enumerate(zip(sig, args)):
            if kind.endswith("*"):
                want = np.int32 if kind == "int*" else np.float32
                if not isinstance(a, cp.ndarray) or a.dtype != want:
                    raise TypeError(f"{name}: argument {k} ({kind}) needs a cupy "
                                    f"{np.dtype(want).name} array, got {type(a).__name__} "
                                    f"{getattr(a, 'dtype', '')}")
                packed.append(a)
            elif kind == "int":
                if not isinstance(a, (int, np.integer)) or not -2**31 <= int(a) < 2**31:
                    raise TypeError(f"{name}: argument {k} (int) got {a!r}")
                packed.append(np.int32(a))
            else:
                if not isinstance(a, (int, float, np.floating, np.integer)):
                    raise TypeError(f"{name}: argument {k} (float) got {a!r}")
                packed.append(np.float32(a))
        if grid is None:
            grid = max(1, min(math.ceil(work / THREADS), 32 * self.sms))
        self.fn(name)((int(grid),), (THREADS,), tuple(packed))
        self.launched.add(name)


# ---------------------------------------------------------------------------------------------
# numpy references (float64 from the float32 inputs)
# ---------------------------------------------------------------------------------------------
def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softplus(x):
    with np.errstate(over="ignore"):
        return np.where(x > 20, x, np.where(x < -20, np.exp(x), np.log1p(np.exp(np.minimum(x, 20)))))


def act_ref(name, x):
    x = x.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if name == "linear":
            return x
        if name == "logistic":
            return _sig(x)
        if name == "loggy":
            return 2.0 * _sig(x) - 1.0
        if name == "relu":
            return np.maximum(x, 0)
        if name == "relu6":
            return np.clip(x, 0, 6)
        if name == "relie":
            return np.where(x > 0, x, 0.01 * x)
        if name == "ramp":
            return x * (x > 0) + 0.1 * x
        if name in ("leaky", "revleaky"):
            return np.where(x > 0, x, 0.1 * x)
        if name == "tanh":
            return np.tanh(x)
        if name == "plse":
            return np.where(x < -4, 0.01 * (x + 4), np.where(x > 4, 0.01 * (x - 4) + 1,
                                                             0.125 * x + 0.5))
        if name == "elu":
            return np.where(x >= 0, x, np.expm1(np.minimum(x, 0)))
        if name == "selu":
            return np.where(x >= 0, 1.0507 * x, 1.0507 * 1.6732 * np.expm1(np.minimum(x, 0)))
        if name == "stair":
            n = np.floor(x)
            return np.where(n % 2 == 0, np.floor(x / 2), (x - n) + np.floor(x / 2))
        if name == "hardtan":
            return np.clip(x, -1, 1)
        if name == "lhtan":
            return np.where(x < 0, 0.001 * x, np.where(x > 1, 0.001 * (x - 1) + 1, x))
        if name == "gelu":
            return 0.5 * x * (1 + np.tanh(0.797885 * x + 0.035677 * x ** 3))
        if name == "swish":
            return x * _sig(x)
        if name == "mish":
            return x * np.tanh(_softplus(x))
        if name == "hard_mish":
            return np.where(x > 0, x, np.where(x > -2, x * x / 2 + x, 0))
    raise KeyError(name)


def grad_ref(name, y, x):
    y = y.astype(np.float64)
    x = x.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if name == "linear":
            return np.ones_like(y)
        if name == "logistic":
            return (1 - y) * y
        if name == "loggy":
            t = (y + 1) / 2
            return 2 * (1 - t) * t
        if name == "relu":
            return (y > 0).astype(np.float64)
        if name == "relu6":
            return ((y > 0) & (y < 6)).astype(np.float64)
        if name == "elu":
            return (y >= 0) + (y < 0) * (y + 1)
        if name == "selu":
            return (y >= 0) * 1.0507 + (y < 0) * (y + 1.0507 * 1.6732)
        if name == "relie":
            return np.where(y > 0, 1, 0.01)
        if name == "ramp":
            return (y > 0) + 0.1
        if name == "leaky":
            return np.where(y > 0, 1, 0.1)
        if name == "revleaky":     # AB's GPU build divides by leaky's gradient
            return 1 / np.where(y > 0, 1, 0.1)
        if name == "tanh":
            return 1 - y * y
        if name == "plse":
            return np.where((y < 0) | (y > 1), 0.01, 0.125)
        if name == "stair":
            return np.where(np.floor(y) == y, 0.0, 1.0)
        if name == "hardtan":
            return ((y > -1) & (y < 1)).astype(np.float64)
        if name == "lhtan":
            return np.where((y > 0) & (y < 1), 1, 0.001)
        if name == "gelu":
            t = 0.0356774 * y ** 3 + 0.797885 * y
            sech = 1 / np.cosh(t)
            return 0.5 * np.tanh(t) + (0.0535161 * y ** 3 + 0.398942 * y) * sech ** 2 + 0.5
        if name == "swish":
            return y + _sig(x) * (1 - y)
        if name == "mish":
            sp = _softplus(x)
            tsp = np.tanh(sp)
            return tsp + x * (1 - tsp * tsp) * (1 - np.exp(-sp))
        if name == "hard_mish":
            return np.where(x > 0, 1, np.where(x > -2, x + 1, 0))
    raise KeyError(name)


def act_channels_ref(name, x):          # x [N, C, S]
    x = x.astype(np.float64)
    if name == "normalize_channels":
        pos = np.where(x > 0, x, 0)
        return np.where(x > 0, x / (0.0001 + pos.sum(axis=1, keepdims=True)), 0)
    m = x.max(axis=1, keepdims=True) if name.endswith("maxval") else 0.0
    e = np.exp(x - m)
    return e / (0.0001 + e.sum(axis=1, keepdims=True))


def grad_channels_ref(name, delta, y):  # [N, C, S]: AB's GPU gradients, element-wise
    d, y = delta.astype(np.float64), y.astype(np.float64)
    if name == "normalize_channels":
        return np.where(y > 0, d * y, d)
    return d * y * (1 - y)


def im2col_ref(im, kh, kw, sy, sx, py, px, dil, OH, OW):
    C, H, W = im.shape
    col = np.zeros((C, kh, kw, OH, OW))
    oy, ox = np.arange(OH), np.arange(OW)
    for ky in range(kh):
        for kx in range(kw):
            iy, ix = oy * sy - py + ky * dil, ox * sx - px + kx * dil
            valid = ((iy >= 0) & (iy < H))[:, None] & ((ix >= 0) & (ix < W))[None, :]
            sub = im[:, np.clip(iy, 0, H - 1)][:, :, np.clip(ix, 0, W - 1)]
            col[:, ky, kx] = np.where(valid, sub, 0)
    return col.reshape(C * kh * kw, OH * OW)


def col2im_add_ref(col, im0, kh, kw, sy, sx, py, px, dil, OH, OW):
    C, H, W = im0.shape
    im = im0.astype(np.float64)
    c5 = col.reshape(C, kh, kw, OH, OW).astype(np.float64)
    oy, ox = np.arange(OH), np.arange(OW)
    for ky in range(kh):
        for kx in range(kw):
            iy, ix = oy * sy - py + ky * dil, ox * sx - px + kx * dil
            vy, vx = (iy >= 0) & (iy < H), (ix >= 0) & (ix < W)
            im[:, iy[vy][:, None], ix[vx][None, :]] += c5[:, ky, kx][:, vy][:, :, vx]
    return im


def pool_windows(H, W, OH, OW, size, sy, sx, pad):
    off = -(pad // 2)
    for oy in range(OH):
        y0 = off + oy * sy
        ya, yb = max(y0, 0), min(y0 + size, H)
        for ox in range(OW):
            x0 = off + ox * sx
            xa, xb = max(x0, 0), min(x0 + size, W)
            yield oy, ox, ya, max(yb, ya), xa, max(xb, xa)


def maxpool_ref(x, OH, OW, size, sy, sx, pad):   # x [NC, H, W]
    NC, H, W = x.shape
    out = np.full((NC, OH, OW), -FLT_MAX)
    idx = np.full((NC, OH, OW), -1, np.int64)
    planes = np.arange(NC)
    for oy, ox, ya, yb, xa, xb in pool_windows(H, W, OH, OW, size, sy, sx, pad):
        win = x[:, ya:yb, xa:xb].reshape(NC, -1)
        if win.shape[1] == 0:
            continue
        a = win.argmax(axis=1)                    # first maximum in row-major order
        out[:, oy, ox] = win[planes, a]
        wd = xb - xa
        idx[:, oy, ox] = planes * H * W + (ya + a // wd) * W + xa + a % wd
    return out, idx


def avgpool_ref(x, OH, OW, size, sy, sx, pad):
    NC, H, W = x.shape
    out = np.zeros((NC, OH, OW))
    for oy, ox, ya, yb, xa, xb in pool_windows(H, W, OH, OW, size, sy, sx, pad):
        win = x[:, ya:yb, xa:xb].reshape(NC, -1).astype(np.float64)
        if win.shape[1]:
            out[:, oy, ox] = win.mean(axis=1)
    return out


def avgpool_backward_ref(delta, dx0, size, sy, sx, pad):
    NC, H, W = dx0.shape
    OH, OW = delta.shape[1:]
    dx = dx0.astype(np.float64)
    for oy, ox, ya, yb, xa, xb in pool_windows(H, W, OH, OW, size, sy, sx, pad):
        cnt = (yb - ya) * (xb - xa)
        if cnt:
            dx[:, ya:yb, xa:xb] += delta[:, oy, ox, None, None] / cnt
    return dx


# ---------------------------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------------------------
class Checker:
    def __init__(self, cp, kernels, seed=1234):
        self.cp = cp
        self.k = kernels
        self.rng = np.random.default_rng(seed)
        self.rows = []

    # helpers
    def d(self, a):
        return self.cp.asarray(np.ascontiguousarray(a))

    def h(self, a):
        return self.cp.asnumpy(a)

    def randn(self, *shape, scale=1.0, shift=0.0):
        return (self.rng.standard_normal(shape) * scale + shift).astype(np.float32)

    def uniform(self, lo, hi, *shape):
        return self.rng.uniform(lo, hi, shape).astype(np.float32)

    def record(self, name, got, ref, tol=1e-5):
        got = np.asarray(got, np.float64)
        ref = np.asarray(ref, np.float64)
        if got.shape != ref.shape:
            self.rows.append((name, float("nan"), tol, False, f"shape {got.shape} != {ref.shape}"))
            return
        finite = np.isfinite(ref)
        if not np.array_equal(np.isfinite(got), finite) or \
                not np.array_equal(got[~finite], ref[~finite]):
            self.rows.append((name, float("nan"), tol, False, "non-finite values differ"))
            return
        scale = np.abs(ref[finite]).max() if finite.any() else 0.0
        diff = np.abs(got[finite] - ref[finite]).max() if finite.any() else 0.0
        err = diff / scale if scale > 0 else diff
        self.rows.append((name, float(err), tol, bool(err <= tol), ""))

    def record_exact(self, name, got, ref):
        same = np.array_equal(np.asarray(got), np.asarray(ref))
        bad = int((np.asarray(got) != np.asarray(ref)).sum()) if not same else 0
        self.rows.append((name, 0.0 if same else float("nan"), 0.0, same,
                          "" if same else f"{bad} of {np.asarray(ref).size} differ"))

    def fail(self, name, exc):
        self.rows.append((name, float("nan"), 0.0, False, f"{type(exc).__name__}: {exc}"))
        say(f"--- {name} raised:")
        for line in traceback.format_exc().rstrip().splitlines():
            say("    " + line)

    def run(self, only=None):
        for meth in [m for m in dir(self) if m.startswith("check_")]:
            if only and not re.search(only, meth):
                continue
            try:
                getattr(self, meth)()
            except Exception as exc:   # keep going: one broken check must not hide the rest
                self.fail(meth, exc)
        self.cp.cuda.Device().synchronize()

    # activations ------------------------------------------------------------------------
    def act_input(self, n):
        x = self.uniform(-6, 6, n)
        special = np.array([0, -0.0, 1e-4, -1e-4, 19.99, 20, 20.01, 25, 60, 100, -19.99, -20,
                            -20.01, -30, -90, -100, 2, 4, -2, -4, 1, -1, 6, 3], np.float32)
        x[:special.size] = special
        return x

    def check_activate(self):
        n = (1 << 16) + 3
        x = self.act_input(n)
        for name in ELEMENTWISE:
            ref = act_ref(name, x)
            dx = self.d(x)
            self.k("pdn_activate", n, dx, n, CODE[name])
            self.record(f"pdn_activate[{name}]", self.h(dx), ref)
            y = self.cp.zeros(n, np.float32)
            dx = self.d(x)
            self.k("pdn_activate_copy", n, dx, y, n, CODE[name])
            self.record(f"pdn_activate_copy[{name}]", self.h(y), ref)
            self.record_exact(f"pdn_activate_copy[{name}] x kept", self.h(dx), x)

    def check_mish(self):
        n = (1 << 18) + 5
        x = self.act_input(n)
        ref = act_ref("mish", x)
        dx = self.d(x)
        self.k("pdn_mish", n, dx, n)
        self.record("pdn_mish", self.h(dx), ref)
        # misaligned start (scalar path) on the same data
        big = self.d(np.concatenate([np.zeros(1, np.float32), x]))
        self.k("pdn_mish", n, big[1:], n)
        self.record("pdn_mish (unaligned)", self.h(big)[1:], ref)
        y = self.cp.zeros(n, np.float32)
        self.k("pdn_mish_copy", n, self.d(x), y, n)
        self.record("pdn_mish_copy", self.h(y), ref)
        delta = self.randn(n)
        dd = self.d(delta)
        self.k("pdn_mish_gradient", n, dd, self.d(x), n)
        self.record("pdn_mish_gradient", self.h(dd), delta * grad_ref("mish", ref, x))

    def check_gradient(self):
        n = (1 << 16) + 7
        x = self.act_input(n)
        delta = self.randn(n)
        for name in ELEMENTWISE:
            y = act_ref(name, x).astype(np.float32)
            dd = self.d(delta)
            self.k("pdn_gradient", n, dd, self.d(y), self.d(x), n, CODE[name])
            self.record(f"pdn_gradient[{name}]", self.h(dd), delta * grad_ref(name, y, x))

    def check_activate_channels(self):
        N, C, S = 3, 7, 37
        for name in CHANNEL_ACTS:
            x = self.randn(N, C, S, scale=2.0)
            dx = self.d(x)
            self.k("pdn_activate_channels", N * S, dx, N, C, S, CODE[name])
            self.record(f"pdn_activate_channels[{name}]", self.h(dx), act_channels_ref(name, x))
            y = act_channels_ref(name, x).astype(np.float32)
            delta = self.randn(N, C, S)
            dd = self.d(delta)
            self.k("pdn_gradient_channels", N * S, dd, self.d(y), N, C, S, CODE[name])
            self.record(f"pdn_gradient_channels[{name}]", self.h(dd),
                        grad_channels_ref(name, delta, y))

    # bias / batch norm --------------------------------------------------------------------
    def bn_params(self, C):
        return (self.uniform(0.5, 1.5, C), self.uniform(-0.1, 0.1, C) + self.randn(C, scale=0.5),
                self.uniform(0.5, 1.5, C), self.uniform(-0.5, 0.5, C))   # scale, mean, var, bias

    def check_bias_and_bn_inference(self):
        N, C, S = 3, 5, 63
        x = self.randn(N, C, S, scale=2.0)
        b = self.randn(C)
        xd = self.d(x)
        self.k("pdn_add_bias", x.size, xd, self.d(b), N, C, S)
        self.record("pdn_add_bias", self.h(xd), x + b[None, :, None].astype(np.float64))
        for name in ("leaky", "mish", "logistic"):
            xd = self.d(x)
            self.k("pdn_bias_activate", x.size, xd, self.d(b), N, C, S, CODE[name])
            self.record(f"pdn_bias_activate[{name}]", self.h(xd),
                        act_ref(name, (x + b[None, :, None]).astype(np.float64)))
        s, m, v, bb = self.bn_params(C)
        eps = 1e-5
        shp = (1, C, 1)
        ref = (x - m.reshape(shp).astype(np.float64)) / np.sqrt(v.reshape(shp) + eps) \
            * s.reshape(shp) + bb.reshape(shp)
        xd = self.d(x)
        self.k("pdn_batchnorm_inference", x.size, xd, self.d(s), self.d(m), self.d(v),
               self.d(bb), eps, N, C, S)
        self.record("pdn_batchnorm_inference", self.h(xd), ref)
        for name in ("leaky", "mish"):
            xd = self.d(x)
            self.k("pdn_batchnorm_activate_inference", x.size, xd, self.d(s), self.d(m),
                   self.d(v), self.d(bb), eps, N, C, S, CODE[name])
            self.record(f"pdn_batchnorm_activate_inference[{name}]", self.h(xd),
                        act_ref(name, ref))

    def check_batchnorm_train(self):
        eps = 1e-5
        for (N, C, S, grid) in ((3, 5, 63, None), (8, 4, 100 * 100, None), (2, 9, 17, 2)):
            tag = f"N{N} C{C} S{S}" + (f" grid{grid}" if grid else "")
            x = self.randn(N, C, S, scale=2.0, shift=0.7)
            s, _, _, bb = self.bn_params(C)
            rm, rv = self.randn(C), self.uniform(0.5, 1.5, C)
            keep = 0.9
            mean, var = self.cp.zeros(C, np.float32), self.cp.zeros(C, np.float32)
            rmd, rvd = self.d(rm), self.d(rv)
            self.k("pdn_batchnorm_stats", 0, self.d(x), mean, var, rmd, rvd, keep, 1 - keep,
                   N, C, S, grid=grid or C)
            x64 = x.astype(np.float64)
            m_ref = x64.mean(axis=(0, 2))
            v_ref = x64.var(axis=(0, 2), ddof=1)
            self.record(f"pdn_batchnorm_stats mean [{tag}]", self.h(mean), m_ref)
            self.record(f"pdn_batchnorm_stats variance [{tag}]", self.h(var), v_ref)
            self.record(f"pdn_batchnorm_stats rolling [{tag}]",
                        np.concatenate([self.h(rmd), self.h(rvd)]),
                        np.concatenate([keep * rm + (1 - keep) * m_ref,
                                        keep * rv + (1 - keep) * v_ref]))
            # normalise with the GPU's statistics (the reference uses the same float32 values)
            mg, vg = self.h(mean), self.h(var)
            shp = (1, C, 1)
            xn_ref = (x64 - mg.reshape(shp)) / np.sqrt(vg.reshape(shp).astype(np.float64) + eps)
            xd = self.d(x)
            xs, xn = self.cp.zeros_like(xd), self.cp.zeros_like(xd)
            self.k("pdn_batchnorm_normalize_train", x.size, xd, xs, xn, mean, var, self.d(s),
                   self.d(bb), eps, N, C, S)
            self.record_exact(f"pdn_batchnorm_normalize_train x_saved [{tag}]", self.h(xs), x)
            self.record(f"pdn_batchnorm_normalize_train x_norm [{tag}]", self.h(xn), xn_ref)
            self.record(f"pdn_batchnorm_normalize_train out [{tag}]", self.h(xd),
                        xn_ref * s.reshape(shp) + bb.reshape(shp))
            # backward
            xn32 = xn_ref.astype(np.float32)
            delta = self.randn(N, C, S)
            bg0, sg0 = self.randn(C), self.randn(C)
            bg, sg = self.d(bg0), self.d(sg0)
            md, vd = self.cp.zeros(C, np.float32), self.cp.zeros(C, np.float32)
            self.k("pdn_batchnorm_backward_reduce", 0, self.d(delta), self.d(x), self.d(xn32),
                   mean, var, self.d(s), bg, sg, md, vd, eps, N, C, S, grid=grid or C)
            d64 = delta.astype(np.float64)
            ds = d64 * s.reshape(shp)
            veps = vg.astype(np.float64) + eps
            md_ref = ds.sum(axis=(0, 2)) * (-1 / np.sqrt(veps))
            vd_ref = (ds * (x64 - mg.reshape(shp))).sum(axis=(0, 2)) * (-0.5 * veps ** -1.5)
            self.record(f"pdn_batchnorm_backward_reduce bias_grad [{tag}]", self.h(bg),
                        bg0 + d64.sum(axis=(0, 2)))
            self.record(f"pdn_batchnorm_backward_reduce scale_grad [{tag}]", self.h(sg),
                        sg0 + (d64 * xn32).sum(axis=(0, 2)))
            self.record(f"pdn_batchnorm_backward_reduce mean_delta [{tag}]", self.h(md), md_ref)
            self.record(f"pdn_batchnorm_backward_reduce var_delta [{tag}]", self.h(vd), vd_ref)
            mdg, vdg = self.h(md).astype(np.float64), self.h(vd).astype(np.float64)
            count = N * S
            dref = ds / np.sqrt(veps).reshape(shp) \
                + vdg.reshape(shp) * 2 * (x64 - mg.reshape(shp)) / count \
                + mdg.reshape(shp) / count
            dd = self.d(delta)
            self.k("pdn_batchnorm_backward_delta", x.size, dd, self.d(x), mean, var, self.d(s),
                   md, vd, eps, N, C, S)
            self.record(f"pdn_batchnorm_backward_delta [{tag}]", self.h(dd), dref)
            bg = self.d(bg0)
            self.k("pdn_backward_bias", 0, bg, self.d(delta), N, C, S, grid=grid or C)
            self.record(f"pdn_backward_bias [{tag}]", self.h(bg), bg0 + d64.sum(axis=(0, 2)))

    # im2col / col2im -----------------------------------------------------------------------
    def check_im2col(self):
        C, H, W = 3, 11, 13
        im = self.randn(C, H, W)
        geoms = [  # kh, kw, sy, sx, py, px, dil
            (3, 3, 1, 1, 1, 1, 1), (3, 3, 2, 2, 1, 1, 1), (1, 1, 1, 1, 0, 0, 1),
            (1, 1, 2, 2, 0, 0, 1), (5, 5, 2, 1, 2, 1, 1), (3, 3, 1, 1, 2, 2, 2),
            (3, 3, 2, 2, 0, 0, 1), (2, 3, 1, 2, 1, 0, 1), (7, 7, 1, 1, 3, 3, 1),
        ]
        for kh, kw, sy, sx, py, px, dil in geoms:
            # Darknet's output size: (H + 2*pad - size)/stride + 1 with pad already *dil
            OH = (H + 2 * py - kh) // sy + 1
            OW = (W + 2 * px - kw) // sx + 1
            tag = f"k{kh}x{kw} s{sy},{sx} p{py},{px} d{dil} -> {OH}x{OW}"
            col = self.cp.full((C * kh * kw, OH * OW), np.nan, np.float32)
            self.k("pdn_im2col", col.size, self.d(im), C, H, W, kh, kw, sy, sx, py, px, dil,
                   OH, OW, col)
            self.record(f"pdn_im2col [{tag}]", self.h(col),
                        im2col_ref(im, kh, kw, sy, sx, py, px, dil, OH, OW))
            c = self.randn(C * kh * kw, OH * OW)
            im0 = self.randn(C, H, W)
            imd = self.d(im0)
            self.k("pdn_col2im_add", im.size, self.d(c), C, H, W, kh, kw, sy, sx, py, px, dil,
                   OH, OW, imd)
            self.record(f"pdn_col2im_add [{tag}]", self.h(imd),
                        col2im_add_ref(c, im0, kh, kw, sy, sx, py, px, dil, OH, OW))

    # pooling -------------------------------------------------------------------------------
    def check_pool(self):
        N, C, H, W = 2, 3, 13, 11
        NC = N * C
        for size, sy, sx, pad in ((2, 2, 2, 1), (3, 1, 1, 2), (5, 1, 1, 4), (3, 2, 2, 2),
                                  (2, 1, 1, 1), (3, 2, 1, 0), (9, 1, 1, 8), (2, 2, 2, 0),
                                  (1, 1, 1, 4)):   # the last one has windows with no cell
            OH = (H + pad - size) // sy + 1
            OW = (W + pad - size) // sx + 1
            tag = f"size{size} s{sy},{sx} pad{pad}"
            # half-integers: many ties, so "the first maximum wins" is exercised
            x = (np.round(self.randn(NC, H, W, scale=2.0) * 2) / 2).astype(np.float32)
            out_ref, idx_ref = maxpool_ref(x, OH, OW, size, sy, sx, pad)
            out = self.cp.zeros((NC, OH, OW), np.float32)
            self.k("pdn_maxpool", out.size, self.d(x), out, NC, H, W, OH, OW, size, sy, sx, pad)
            self.record_exact(f"pdn_maxpool [{tag}]", self.h(out), out_ref.astype(np.float32))
            out = self.cp.zeros((NC, OH, OW), np.float32)
            idx = self.cp.zeros((NC, OH, OW), np.int32)
            self.k("pdn_maxpool_train", out.size, self.d(x), out, idx, NC, H, W, OH, OW, size,
                   sy, sx, pad)
            self.record_exact(f"pdn_maxpool_train [{tag}]", self.h(out),
                              out_ref.astype(np.float32))
            self.record_exact(f"pdn_maxpool_train indexes [{tag}]", self.h(idx), idx_ref)
            delta = self.randn(NC, OH, OW)
            dx0 = self.randn(NC, H, W)
            dxd = self.d(dx0)
            self.k("pdn_maxpool_backward", dx0.size, self.d(delta), idx, dxd, NC, H, W, OH, OW,
                   size, sy, sx, pad)
            dx_ref = dx0.astype(np.float64).ravel()
            hit = idx_ref.ravel() >= 0                # -1: a window with no cell
            np.add.at(dx_ref, idx_ref.ravel()[hit], delta.ravel()[hit])
            self.record(f"pdn_maxpool_backward [{tag}]", self.h(dxd), dx_ref.reshape(dx0.shape))
            x = self.randn(NC, H, W)
            out = self.cp.zeros((NC, OH, OW), np.float32)
            self.k("pdn_local_avgpool", out.size, self.d(x), out, NC, H, W, OH, OW, size, sy, sx,
                   pad)
            self.record(f"pdn_local_avgpool [{tag}]", self.h(out),
                        avgpool_ref(x, OH, OW, size, sy, sx, pad))
            dxd = self.d(dx0)
            self.k("pdn_local_avgpool_backward", dx0.size, self.d(delta), dxd, NC, H, W, OH, OW,
                   size, sy, sx, pad)
            self.record(f"pdn_local_avgpool_backward [{tag}]", self.h(dxd),
                        avgpool_backward_ref(delta, dx0, size, sy, sx, pad))

    def check_global_avgpool(self):
        for NC, S in ((6, 13 * 11), (1000, 7 * 7), (3, 1), (4, 100 * 100)):
            x = self.randn(NC, S, shift=0.3)
            out = self.cp.zeros(NC, np.float32)
            self.k("pdn_global_avgpool", NC * 32, self.d(x), out, NC, S)
            self.record(f"pdn_global_avgpool [NC{NC} S{S}]", self.h(out),
                        x.astype(np.float64).mean(axis=1))
            delta = self.randn(NC)
            dx0 = self.randn(NC, S)
            dxd = self.d(dx0)
            self.k("pdn_global_avgpool_backward", NC * S, self.d(delta), dxd, NC, S)
            self.record(f"pdn_global_avgpool_backward [NC{NC} S{S}]", self.h(dxd),
                        dx0 + delta[:, None].astype(np.float64) / S)

    # resampling ------------------------------------------------------------------------------
    def check_resample(self):
        NC, H, W = 5, 7, 9
        for stride, scale, acc in ((2, 1.0, 0), (3, 0.5, 1)):
            x = self.randn(NC, H, W)
            out0 = self.randn(NC, H * stride, W * stride)
            od = self.d(out0)
            self.k("pdn_upsample", out0.size, self.d(x), od, NC, H, W, stride, scale, acc)
            ref = scale * x.astype(np.float64).repeat(stride, axis=1).repeat(stride, axis=2)
            self.record(f"pdn_upsample [stride{stride} scale{scale} acc{acc}]", self.h(od),
                        ref + (out0 if acc else 0))
        H, W = 13, 11
        for stride, scale, acc in ((2, 1.0, 0), (3, 0.25, 1)):
            OH, OW = H // stride, W // stride
            x = self.randn(NC, H, W)
            out0 = self.randn(NC, OH, OW)
            od = self.d(out0)
            self.k("pdn_downsample_sum", out0.size, self.d(x), od, NC, H, W, OH, OW, stride,
                   scale, acc)
            ref = scale * x[:, :OH * stride, :OW * stride].astype(np.float64).reshape(
                NC, OH, stride, OW, stride).sum(axis=(2, 4))
            self.record(f"pdn_downsample_sum [stride{stride} scale{scale} acc{acc}]",
                        self.h(od), ref + (out0 if acc else 0))

    # shortcut / route / scale_channels / sam -----------------------------------------------
    def check_shortcut(self):
        B, S = 2, 36
        out_c, add_c = 5, 3
        for mode in (0, 1, 2):
            for acc in (1, 0):
                out0 = self.randn(B, out_c * S)
                add = self.randn(B, add_c * S)
                m = add_c * S
                w = self.randn(add_c if mode == 2 else 1)
                od = self.d(out0)
                self.k("pdn_shortcut_add", B * m, od, self.d(add), self.d(w), B, out_c * S,
                       add_c * S, m, S, mode, acc)
                wv = 1.0 if mode == 0 else (w[0] if mode == 1 else np.repeat(w, S))
                ref = out0.astype(np.float64).copy()
                v = add.astype(np.float64) * wv
                ref[:, :m] = (ref[:, :m] if acc else 0) + v
                self.record(f"pdn_shortcut_add [mode{mode} acc{acc}]", self.h(od), ref)

    def check_copy_block(self):
        for B, src_n, dst_n, block, so, do, acc in ((3, 150, 250, 75, 75, 25, 0),
                                                    (3, 128, 256, 64, 64, 128, 1),
                                                    (2, 128, 256, 64, 64, 128, 0),
                                                    (2, 100, 100, 100, 0, 0, 1)):
            src = self.randn(B, src_n)
            dst0 = self.randn(B, dst_n)
            dd = self.d(dst0)
            self.k("pdn_copy_block", B * block, self.d(src), dd, B, block, src_n, so, dst_n, do,
                   acc)
            ref = dst0.astype(np.float64).copy()
            part = src[:, so:so + block].astype(np.float64)
            ref[:, do:do + block] = (ref[:, do:do + block] if acc else 0) + part
            self.record(f"pdn_copy_block [block{block} acc{acc}]", self.h(dd), ref)

    def check_scale_channels(self):
        N, C, S = 2, 6, 35
        src = self.randn(N, C, S)
        for wh in (0, 1):
            scale = self.randn(N, S) if wh else self.randn(N, C)
            sc_b = scale[:, None, :] if wh else scale[:, :, None]
            out = self.cp.zeros((N, C, S), np.float32)
            self.k("pdn_scale_channels", src.size, self.d(src), self.d(scale), out, N, C, S, wh)
            self.record(f"pdn_scale_channels [scale_wh{wh}]", self.h(out),
                        src.astype(np.float64) * sc_b)
            delta = self.randn(N, C, S)
            ds0 = self.randn(N, C, S)
            dsd = self.d(ds0)
            self.k("pdn_scale_channels_backward_src", src.size, self.d(delta), self.d(scale), dsd,
                   N, C, S, wh)
            self.record(f"pdn_scale_channels_backward_src [scale_wh{wh}]", self.h(dsd),
                        ds0 + delta.astype(np.float64) * sc_b)
            dsc0 = self.randn(*scale.shape)
            dscd = self.d(dsc0)
            work = N * S if wh else N * C * 32
            self.k("pdn_scale_channels_backward_scale", work, self.d(delta), self.d(src), dscd,
                   N, C, S, wh)
            prod = delta.astype(np.float64) * src
            self.record(f"pdn_scale_channels_backward_scale [scale_wh{wh}]", self.h(dscd),
                        dsc0 + (prod.sum(axis=1) if wh else prod.sum(axis=2)))

    def check_sam(self):
        n = 3 * 5 * 7 * 2 + 1
        src, x, delta = self.randn(n), self.randn(n), self.randn(n)
        out = self.cp.zeros(n, np.float32)
        self.k("pdn_sam", n, self.d(src), self.d(x), out, n)
        self.record("pdn_sam", self.h(out), src.astype(np.float64) * x)
        dx0, ds0 = self.randn(n), self.randn(n)
        dxd, dsd = self.d(dx0), self.d(ds0)
        self.k("pdn_sam_backward", n, self.d(delta), self.d(src), self.d(x), dxd, dsd, n)
        self.record("pdn_sam_backward dx", self.h(dxd), dx0 + delta.astype(np.float64) * src)
        self.record("pdn_sam_backward dsrc", self.h(dsd), ds0 + delta.astype(np.float64) * x)
        same = self.d(dx0)
        self.k("pdn_sam_backward", n, self.d(delta), self.d(src), self.d(x), same, same, n)
        self.record("pdn_sam_backward (dx is dsrc)", self.h(same),
                    dx0 + delta.astype(np.float64) * src + delta.astype(np.float64) * x)

    # softmax / yolo / sgd -----------------------------------------------------------------
    def check_softmax(self):
        B, inputs = 3, 40
        for groups, temp in ((1, 1.0), (4, 1.0), (4, 0.7), (8, 2.0)):
            n = inputs // groups
            x = self.randn(B, inputs, scale=3.0)
            out = self.cp.zeros((B, inputs), np.float32)
            self.k("pdn_softmax", B * groups, self.d(x), n, B, inputs, groups, n, 1, temp, out)
            r = x.astype(np.float64).reshape(B, groups, n) / temp
            e = np.exp(r - r.max(axis=2, keepdims=True))
            self.record(f"pdn_softmax [groups{groups} temp{temp}]", self.h(out),
                        (e / e.sum(axis=2, keepdims=True)).reshape(B, inputs))
        # strided rows: every other value, in place
        x = self.randn(B, inputs)
        xd = self.d(x)
        self.k("pdn_softmax", B, xd, inputs // 2, B, inputs, 1, 0, 2, 1.0, xd)
        ref = x.astype(np.float64).copy()
        e = np.exp(ref[:, ::2] - ref[:, ::2].max(axis=1, keepdims=True))
        ref[:, ::2] = e / e.sum(axis=1, keepdims=True)
        self.record("pdn_softmax [stride2, in place]", self.h(xd), ref)

    def check_yolo_activate(self):
        B, n, classes, hw = 2, 3, 4, 5 * 7
        entries = classes + 5
        x = self.randn(B, n, entries, hw, scale=3.0)
        for scale_x_y, new_coords in ((1.0, 0), (1.05, 0), (2.0, 1)):
            bias = np.float32(-0.5 * (scale_x_y - 1))
            for inplace in (False, True):
                xd = self.d(x)
                out = xd if inplace else self.cp.zeros_like(xd)
                self.k("pdn_yolo_activate", x.size, xd, out, B, n, entries, hw, scale_x_y, bias,
                       new_coords)
                ref = x.astype(np.float64).copy()
                if not new_coords:
                    ref[:, :, 0:2] = _sig(ref[:, :, 0:2])
                    ref[:, :, 4:] = _sig(ref[:, :, 4:])
                ref[:, :, 0:2] = ref[:, :, 0:2] * np.float32(scale_x_y) + bias
                self.record(f"pdn_yolo_activate [scale_x_y{scale_x_y} new_coords{new_coords}"
                            f"{' in place' if inplace else ''}]", self.h(out), ref)

    def check_sgd(self):
        n = 1000 + 3
        lr, momentum, decay, batch = 0.001, 0.9, 0.0005, 64
        step = np.float32(lr / batch)
        ndb = np.float32(-decay * batch)
        for decayed in (1, 0):
            w, u, g = self.randn(n), self.randn(n, scale=0.1), self.randn(n, scale=10.0)
            wd, ud, gd = self.d(w), self.d(u), self.d(g)
            self.k("pdn_sgd_update", n, wd, ud, gd, n, step, ndb, np.float32(momentum), decayed, 1)
            # numpy float32, exactly the steps of pydarknet/train/sgd.py
            u2 = u.copy()
            w2 = w.copy()
            u2 += g
            if decayed:
                u2 += ndb * w2
            w2 += step * u2
            u2 *= np.float32(momentum)
            self.record_exact(f"pdn_sgd_update w [decayed{decayed}] (bitwise vs numpy)",
                              self.h(wd), w2)
            self.record_exact(f"pdn_sgd_update u [decayed{decayed}] (bitwise vs numpy)",
                              self.h(ud), u2)
            self.record_exact(f"pdn_sgd_update g zeroed [decayed{decayed}]", self.h(gd),
                              np.zeros_like(g))


    # util.cu: the backend's generic ops -----------------------------------------------------
    def check_util(self):
        cp = self.cp
        n = 4099
        x, y = self.randn(n), self.randn(n)
        for alpha in (1.0, -0.37):
            yd = self.d(y)
            self.k("pdn_axpy", n, self.d(x), yd, n, alpha)
            self.record_exact(f"pdn_axpy [alpha {alpha}] (bitwise vs numpy)", self.h(yd),
                              y + np.float32(alpha) * x)
        bad = x.copy()
        bad[[5, 77, n - 1]] = (np.nan, np.inf, -np.inf)
        for arr, want in ((x, 0), (bad, 3)):
            count = cp.zeros(1, np.int32)
            self.k("pdn_count_nonfinite", n, self.d(arr), n, count)
            self.record_exact(f"pdn_count_nonfinite [{want} bad]", self.h(count),
                              np.array([want], np.int32))
        a, b, y0 = self.randn(n), self.randn(n), self.randn(n)
        yd = self.d(y0)
        self.k("pdn_mul_add", n, self.d(a), self.d(b), yd, n)
        self.record("pdn_mul_add", self.h(yd), y0 + a.astype(np.float64) * b)
        dx_n = 50
        idx = self.rng.integers(-1, dx_n + 2, n).astype(np.int32)
        dx0 = self.randn(dx_n)
        dxd = self.d(dx0)
        self.k("pdn_index_add", n, self.d(x), self.d(idx), dxd, n, dx_n)
        ref = dx0.astype(np.float64)
        ok = (idx >= 0) & (idx < dx_n)
        np.add.at(ref, idx[ok], x[ok].astype(np.float64))
        self.record("pdn_index_add (skips out-of-range indexes)", self.h(dxd), ref, tol=1e-4)
        halves = cp.zeros((n + 1) // 2, np.float32)     # n fp16 values in float32 storage
        self.k("pdn_f32_to_f16", n, self.d(x), halves, n)
        got = self.h(halves).view(np.float16)[:n]
        self.record_exact("pdn_f32_to_f16 (round to nearest even)", got, x.astype(np.float16))


# ---------------------------------------------------------------------------------------------
# Mish bandwidth
# ---------------------------------------------------------------------------------------------
def bench(cp, k, n, reps=20, warm=5):
    """Mish forward/backward GB/s against copies and torch. Every variant is timed once per
    round, round-robin, 20 rounds (after 5 warm-up calls each), so that clock ramps and
    thermals hit them alike; the median of each variant's 20 times is reported."""
    say("")
    say(f"Mish on {n} floats ({n * 4 / 2**20:.0f} MiB per tensor); CUDA events around each "
        f"call, {warm} warm-ups, median of {reps} rounds (variants interleaved); "
        f"GB/s = bytes read + written per call / time")

    class CpEvent:
        def __init__(self):
            self.e = cp.cuda.Event()

        def record(self):
            self.e.record()

        def synchronize(self):
            self.e.synchronize()

        def elapsed_time(self, other):
            return cp.cuda.get_elapsed_time(self.e, other.e)

    cp.random.seed(7)
    x = cp.random.standard_normal(n, dtype=cp.float32) * np.float32(3)
    y = cp.empty_like(x)
    delta = cp.random.standard_normal(n, dtype=cp.float32)
    delta0 = delta.copy()
    nbytes = n * 4
    stream = cp.cuda.get_current_stream().ptr

    def d2d(dst, src):
        cp.cuda.runtime.memcpyAsync(dst.data.ptr, src.data.ptr, nbytes,
                                    cp.cuda.runtime.memcpyDeviceToDevice, stream)

    items = []   # label, bytes moved, fn, fn to run before (untimed), event class

    def add(label, nb, fn, before=None, ev=CpEvent):
        items.append((label, nb, fn, before, ev))

    add("device-to-device copy (cudaMemcpyAsync)", 2 * nbytes, lambda: d2d(y, x))
    n4_blocks = math.ceil(n / 4 / THREADS)
    add("copy kernel pdn_copy_block (float4, one per thread)", 2 * nbytes,
        lambda: k("pdn_copy_block", n, x, y, 1, n, n, 0, n, 0, 0, grid=n4_blocks))
    xs = x.copy()
    persistent = k.sms * 8
    for tag, grid in ((f"grid {n4_blocks}: one float4 per thread", n4_blocks),
                      (f"grid {persistent}: 8 blocks per SM, grid-stride", persistent)):
        add(f"pdn_mish forward, in place ({tag})", 2 * nbytes,
            lambda g=grid: k("pdn_mish", n, xs, n, grid=g),
            before=lambda: d2d(xs, x))
        add(f"pdn_mish_copy forward, y = mish(x) ({tag})", 2 * nbytes,
            lambda g=grid: k("pdn_mish_copy", n, x, y, n, grid=g))
        add(f"pdn_mish_gradient backward, delta *= mish'(x) ({tag})", 3 * nbytes,
            lambda g=grid: k("pdn_mish_gradient", n, delta, x, n, grid=g),
            before=lambda: d2d(delta, delta0))
    add("pdn_activate[mish] forward, in place (generic kernel, one float4 per thread)",
        2 * nbytes, lambda: k("pdn_activate", n, xs, n, CODE["mish"], grid=n4_blocks),
        before=lambda: d2d(xs, x))
    add("pdn_gradient[mish] backward (generic kernel, one float4 per thread)", 3 * nbytes,
        lambda: k("pdn_gradient", n, delta, x, x, n, CODE["mish"], grid=n4_blocks),
        before=lambda: d2d(delta, delta0))

    try:
        import torch
        import torch.nn.functional as F
        if not torch.cuda.is_available():
            raise RuntimeError("torch has no CUDA device")
        cp.cuda.Device().synchronize()
        xt = torch.from_dlpack(x)                      # shares cupy's memory
        gt = torch.from_dlpack(delta0)

        class TorchEvent:
            def __init__(self):
                self.e = torch.cuda.Event(enable_timing=True)

            def record(self):
                self.e.record()

            def synchronize(self):
                self.e.synchronize()

            def elapsed_time(self, other):
                return self.e.elapsed_time(other.e)

        add(f"torch F.mish forward (torch {torch.__version__})", 2 * nbytes,
            lambda: F.mish(xt), ev=TorchEvent)
        add("torch aten.mish_backward(grad, x)", 3 * nbytes,
            lambda: torch.ops.aten.mish_backward(gt, xt), ev=TorchEvent)
        yt = F.mish(xt)
        torch.cuda.synchronize()
        k("pdn_mish_copy", n, x, y, n)
        diff = float(cp.abs(y - cp.asarray(yt)).max())
        say(f"max |pdn_mish_copy - torch F.mish| over the {n} values: {diff:.3g}")
        dt = torch.ops.aten.mish_backward(gt, xt)
        torch.cuda.synchronize()
        d2d(delta, delta0)
        k("pdn_mish_gradient", n, delta, x, n)
        diff = float(cp.abs(delta - cp.asarray(dt)).max())
        say(f"max |pdn_mish_gradient - torch mish_backward|: {diff:.3g}")
        del yt, dt
    except Exception as exc:
        say(f"torch comparison skipped: {type(exc).__name__}: {exc}")

    for _, _, fn, before, _ in items:
        for _ in range(warm):
            if before:
                before()
            fn()
    cp.cuda.Device().synchronize()
    times = [[] for _ in items]
    for _ in range(reps):
        for j, (_, _, fn, before, ev) in enumerate(items):
            if before:
                before()
            a, b = ev(), ev()
            a.record()
            fn()
            b.record()
            b.synchronize()
            times[j].append(a.elapsed_time(b))
    copy_ms = statistics.median(times[0])
    copy_gbs = 2 * nbytes / (copy_ms * 1e-3) / 1e9
    say(f"{'what':<84} {'ms':>7} {'min ms':>7} {'GB/s':>7} {'% copy':>7}")
    for (label, nb, *_), ts in zip(items, times):
        ms = statistics.median(ts)
        gbs = nb / (ms * 1e-3) / 1e9
        say(f"{label:<84} {ms:7.3f} {min(ts):7.3f} {gbs:7.0f} {100 * gbs / copy_gbs:6.1f}%")

# ---------------------------------------------------------------------------------------------
def package_activations():
    """pydarknet.backend.ACTIVATIONS read from the source (no import: the package's C core
    need not be built on the GPU machine); None if it cannot be read."""
    import ast
    try:
        tree = ast.parse((ROOT / "pydarknet" / "backend" / "__init__.py").read_text())
    except (OSError, SyntaxError):
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "ACTIVATIONS"
                                                for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fatbin", default=str(FATBIN))
    ap.add_argument("--only", help="regex: run only the check_* methods it matches")
    ap.add_argument("--nvrtc", action="store_true",
                    help="compile cuda/*.cu with NVRTC instead of loading the fatbin")
    ap.add_argument("--host", action="store_true",
                    help="no GPU: run the checks on cuda/*.cu compiled for the CPU "
                         "(tests/cuda_host.py; implies --no-bench)")
    ap.add_argument("--no-bench", action="store_true", help="skip the Mish timing")
    ap.add_argument("--bench-n", type=int, default=64 * 2**20, help="floats for the timing")
    args = ap.parse_args(argv)
    out_dir = os.environ.get("OUT")
    failed = True
    t0 = time.time()
    try:
        if args.host:
            sys.path.insert(0, str(ROOT / "tests"))
            import cuda_host
            cp = cuda_host.fake_cupy()
            args.no_bench, args.nvrtc = True, False
            args.fatbin = "host"      # not a file: the host kernels stand in for the module
        else:
            import cupy as cp
        sigs = parse_signatures(ROOT / "cuda")
        pkg_acts = package_activations()
        if pkg_acts is not None and pkg_acts != ACTIVATIONS:
            raise AssertionError(f"ACTIVATIONS here differ from the package's: {pkg_acts}")
        props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        say(f"device: {name}, sm_{props['major']}{props['minor']}, "
            f"{props['multiProcessorCount']} SMs, {props['totalGlobalMem'] / 2**30:.0f} GiB; "
            f"cupy {cp.__version__}, CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}, "
            f"driver {cp.cuda.runtime.driverGetVersion()}; numpy {np.__version__}")
        if os.path.exists(args.fatbin):
            say(f"fatbin: {args.fatbin} ({os.path.getsize(args.fatbin)} bytes), "
                f"{len(sigs)} kernels in cuda/*.cu")
        fatbin_failed = False
        k = None
        if not args.nvrtc:
            try:
                k = Kernels(cp, cp.RawModule(path=str(args.fatbin)), sigs)
                k.fn("pdn_activate")                       # loads the module now
                say(f"module: {args.fatbin}")
            except Exception as exc:
                fatbin_failed = True
                k = None
                say(f"THE FATBIN DOES NOT LOAD: {type(exc).__name__}: {exc}")
                say("falling back to compiling cuda/*.cu with NVRTC, to check the kernels")
        if k is None:
            src = "".join(f'#include "{p.name}"\n' for p in sorted((ROOT / "cuda").glob("*.cu")))
            k = Kernels(cp, cp.RawModule(code=src, options=("--std=c++17",
                                                            f"-I{ROOT / 'cuda'}")), sigs)
            k.fn("pdn_activate")
            say("module: cuda/*.cu compiled by NVRTC (cupy.RawModule(code=...))")
        missing = []
        for kname in sorted(sigs):
            try:
                k.fn(kname)
            except Exception as exc:
                missing.append(f"{kname} ({type(exc).__name__})")
        if missing:
            say("NOT LOADABLE from the fatbin: " + ", ".join(missing))
        chk = Checker(cp, k)
        chk.run(args.only)
        say("")
        say(f"{'kernel / case':<78} {'max rel err':>11} {'tol':>8}  result")
        for name, err, tol, ok, note in chk.rows:
            say(f"{name:<78} {err:11.3g} {tol:8.0g}  {'PASS' if ok else 'FAIL'}"
                + (f"  {note}" if note else ""))
        n_fail = sum(1 for r in chk.rows if not r[3]) + len(missing)
        untested = sorted(set(sigs) - k.launched)
        say("")
        say(f"{len(chk.rows)} checks, {n_fail} failed; kernels launched: {len(k.launched)} of "
            f"{len(sigs)}" + (f"; never launched: {', '.join(untested)}" if untested else ""))
        failed = n_fail > 0 or (bool(untested) and not args.only) or fatbin_failed
        if not args.no_bench:
            bench(cp, k, args.bench_n)
    except Exception:
        for line in traceback.format_exc().rstrip().splitlines():
            say(line)
        failed = True
    finally:
        say(f"gpu_check: {'FAILED' if failed else 'all passed'} ({time.time() - t0:.1f} s)")
        if out_dir:
            pathlib.Path(out_dir).mkdir(parents=True, exist_ok=True)
            (pathlib.Path(out_dir) / "gpu_check.txt").write_text("\n".join(LINES) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
