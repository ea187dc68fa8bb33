"""Mish's speed, the form of the Mish paper's Table 6: forward and backward time of ReLU,
SoftPlus, the fused Mish and a Mish composed of separate softplus, tanh and multiply passes,
over a 16x10x256x256 float32 tensor on the CPU, through pydarknet's CPU backend
(``get_backend("cpu")``); the median of ``--repeats`` runs each.

    python bench/mish_speed.py [--shape 16 10 256 256] [--repeats 7] [--threads 1]
        [--json bench/results/mish-speed.json] [--md bench/results/mish-speed.md]

What each column runs:
- relu, fused mish: the C core's activation (``activate_copy``, y = f(x) with x kept as
  training keeps it) and its gradient (``gradient``: delta *= f'(.) at y, or at x for mish).
- softplus: Darknet has no softplus activation (only the helper inside mish), so numpy (its
  SIMD ufuncs, one pass each): forward max(x, 0) + log1p(exp(-|x|)) (``np.logaddexp`` is
  several times slower), backward delta * logistic(x).
- composed mish: what an autograd framework without a fused kernel does, all in numpy, one
  pass per op: forward sp = softplus(x), t = tanh(sp), y = x * t, keeping sp and t; backward
  dt = delta * x, dsp = dt * (1 - t^2), dx = delta * t + dsp * logistic(x).
- torch (when installed, ``pip install torch==2.13.0``): ``F.relu``, ``F.softplus``,
  ``F.mish`` forward, and ``y.backward(delta)`` for backward, with torch.set_num_threads.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _median_time(fn, repeats, setup=None):
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def pydarknet_cases(be, x, delta):
    """({name: (forward(), backward(), reset())}, {"y": forward's output, "d": backward's
    output}): each backward multiplies a fresh copy of delta (reset) in place, as the
    backend's gradient op does."""
    y = np.empty_like(x)
    d = np.empty_like(x)
    sp = np.empty_like(x)
    t = np.empty_like(x)
    s = np.empty_like(x)
    tmp = np.empty_like(x)

    def reset():
        np.copyto(d, delta)

    def relu_f():
        be.activate_copy(x, y, "relu")

    def relu_b():
        be.gradient(d, y, "relu")

    def mish_f():
        be.activate_copy(x, y, "mish")

    def mish_b():
        be.gradient(d, y, "mish", x=x)

    def softplus_into(out):
        """softplus(x) = max(x, 0) + log1p(exp(-|x|)) (no overflow), one ufunc per step."""
        np.abs(x, out=tmp)
        np.negative(tmp, out=tmp)
        np.exp(tmp, out=tmp)
        np.log1p(tmp, out=tmp)
        np.maximum(x, np.float32(0), out=out)
        np.add(out, tmp, out=out)

    def logistic_into(out):
        """logistic(x) = 1 / (1 + exp(-x)): softplus' gradient."""
        np.negative(x, out=out)
        np.exp(out, out=out)
        np.add(out, np.float32(1), out=out)
        np.reciprocal(out, out=out)

    def softplus_f():
        softplus_into(y)

    def softplus_b():
        logistic_into(s)
        np.multiply(d, s, out=d)

    def composed_f():
        softplus_into(sp)                          # sp = softplus(x)
        np.tanh(sp, out=t)                         # t = tanh(sp)
        np.multiply(x, t, out=y)                   # y = x * t

    def composed_b():
        np.multiply(d, x, out=tmp)                 # dt = delta * x
        np.multiply(t, t, out=s)                   # dsp = dt * (1 - t^2)
        np.subtract(np.float32(1), s, out=s)
        np.multiply(tmp, s, out=tmp)
        logistic_into(s)                           # dx = dsp * logistic(x) + delta * t
        np.multiply(tmp, s, out=tmp)
        np.multiply(d, t, out=d)
        np.add(d, tmp, out=d)

    composed_f()                                   # sp, t, y ready for backward
    return {"relu": (relu_f, relu_b, reset), "softplus": (softplus_f, softplus_b, reset),
            "mish (fused)": (mish_f, mish_b, reset),
            "mish (softplus, tanh, multiply)": (composed_f, composed_b, reset)}, {"y": y, "d": d}


def run_pydarknet(shape, repeats, threads):
    from pydarknet.backend import get_backend
    be = get_backend("cpu")
    be.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32) * np.float32(3)
    delta = rng.standard_normal(shape, dtype=np.float32)
    rows = {}
    for name, (fwd, bwd, reset) in pydarknet_cases(be, x, delta)[0].items():
        fwd()                                       # warm up (page in the outputs)
        f = _median_time(fwd, repeats)
        fwd()                                       # backward needs this case's forward state
        b = _median_time(bwd, repeats, setup=reset)
        where = "pydarknet C core" if name in ("relu", "mish (fused)") else "numpy"
        rows[f"{where} {name}"] = {"forward_ms": f * 1e3, "backward_ms": b * 1e3}
    return rows


def run_torch(shape, repeats, threads):
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return {}
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(shape, generator=g) * 3
    delta = torch.randn(shape, generator=g)
    rows = {}
    for name, fn in (("relu", F.relu), ("softplus", F.softplus), ("mish", F.mish)):
        with torch.no_grad():
            fn(x0)
            f = _median_time(lambda: fn(x0), repeats)
        state = {}

        def setup():
            x = x0.detach().requires_grad_(True)
            state["y"] = fn(x)

        b = _median_time(lambda: state["y"].backward(delta), repeats, setup=setup)
        rows[f"torch {name}"] = {"forward_ms": f * 1e3, "backward_ms": b * 1e3}
    rows["_torch_version"] = torch.__version__
    return rows


def markdown(rows, shape, repeats, threads, note):
    lines = [f"Forward and backward time over a {'x'.join(map(str, shape))} float32 tensor "
             f"(CPU, {threads} thread(s), median of {repeats}). {note}", "",
             "| activation | forward (ms) | backward (ms) | forward + backward (ms) |",
             "|---|---:|---:|---:|"]
    for name, r in rows.items():
        if name.startswith("_"):
            continue
        f, b = r["forward_ms"], r["backward_ms"]
        lines.append(f"| {name} | {f:.1f} | {b:.1f} | {f + b:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", type=int, nargs=4, default=[16, 10, 256, 256])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--json", help="write every number here")
    p.add_argument("--md", help="write the Markdown table here")
    p.add_argument("--note", default="", help="a line about the machine, put under the table")
    a = p.parse_args(argv)
    shape = tuple(a.shape)
    rows = run_pydarknet(shape, a.repeats, a.threads)
    if not a.no_torch:
        rows.update(run_torch(shape, a.repeats, a.threads))
    table = markdown(rows, shape, a.repeats, a.threads, a.note)
    print(table)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"shape": shape, "repeats": a.repeats, "threads": a.threads,
                       "machine": platform.processor() or platform.machine(),
                       "cpus": os.cpu_count(), "rows": rows, "note": a.note}, f, indent=1)
    if a.md:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from study_common import write_markdown
        write_markdown(a.md, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
