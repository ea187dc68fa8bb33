"""GPU speed and memory: pydarknet's CUDA backend against PyTorch on the same GPU, same run.

    python bench/gpu.py [--parts mish,infer,train] [--budget 225] [--size 608] [--batch 8]

Runs ON the GPU machine (tools/gpu_run.sh calls it). Each measurement runs in its own process
(its own CUDA context, so peak memory is its own and one crash hides nothing else), within a
shared time budget; a part that fails prints why and the others go on.

(a) Mish on 64M floats: forward in place (``B.activate(x, "mish")``), forward into another
    array (``B.activate_copy``, where the backend has it) and backward
    (``B.gradient(delta, y, "mish", x)``) in GB/s, beside a device-to-device copy (``B.copy``)
    and PyTorch's F.mish (in place and out of place), aten.mish_backward and Tensor.copy_.
    Bytes counted: each array read or written once (forward 8 B, backward 12 B per element).
    CUDA events around each call, the inputs restored outside the events; 3 warm-ups, median
    of 20.
(b) cfg/yolov4.cfg at 608x608, batch 1 inference, random weights (seed 0: the same weights in
    both): images/s from a host array to the last [yolo] output on the host (pydarknet's
    ``net.predict(x)``; PyTorch: the eager model of bench/torch_model.py, cudnn.benchmark on),
    3 warm-ups, median of 20. Rows: pydarknet fp32, TF32 (``set_tf32``) and fp16 GEMMs
    (``set_precision("fp16")``); PyTorch fp32 (TF32 off), TF32, and AMP (fp16 autocast). The
    fp32 rows' [yolo] outputs are compared (max|a-b|/max|b|) as a sanity check. pydarknet fp32
    also times what bounds a pass: the host's time to queue it (input already on the GPU;
    the forward pass returns once every kernel is launched) against the time until the GPU
    has run it; close together, the rate is launch-bound. (On the emulated device the
    Python of a yolov4 pass takes about 3 ms for its ~300 launches and cuDNN calls.)
(c) the same network, one training iteration at batch 8, subdivisions 1 (random images and
    boxes): pydarknet's ``train_iteration`` (Darknet's full YOLO loss, computed on the host)
    against PyTorch's forward + a stand-in loss on the [yolo] outputs (mean squared distance
    to 0.5; negligible next to the convolutions) + backward + SGD step, in fp32 (TF32 off) and
    with AMP (fp16 autocast + GradScaler); pydarknet also with fp16 GEMMs. 2 warm-ups, median
    of 4 (pydarknet) or 5 (PyTorch).
(d) peak GPU memory of each: pydarknet's ``memory_info()`` (the pool's held and active bytes,
    the workspaces), sampled after every timed call, and the device's used memory (total -
    free, the CUDA context included); PyTorch's ``max_memory_allocated`` / ``reserved`` and its
    device used memory.

Prints a table last (after "=== table") and writes $OUT/gpu_bench.json when OUT is set.
"""

import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = pathlib.Path(__file__).resolve().parent.parent
MB = 2**20

# (part, framework, mode, time limit s): the order they run in; extras last.
PLAN = [
    ("mish", "pydarknet", "fp32", 45),
    ("mish", "torch", "fp32", 45),
    ("infer", "pydarknet", "fp32", 60),
    ("infer", "torch", "fp32", 60),
    ("infer", "torch", "tf32", 45),
    ("train", "pydarknet", "fp32", 90),
    ("train", "torch", "fp32", 60),
    ("train", "torch", "amp", 60),
    ("infer", "pydarknet", "tf32", 45),
    ("infer", "pydarknet", "fp16", 45),
    ("infer", "torch", "amp", 45),
    ("train", "pydarknet", "fp16", 90),
]


# ---------------------------------------------------------------------------------------------
# helpers used inside the workers
# ---------------------------------------------------------------------------------------------
def _cfg(tmp, size, batch=None, subdivisions=None):
    text = (ROOT / "cfg" / "yolov4.cfg").read_text()
    subs = [("width", size), ("height", size)]
    if batch is not None:
        subs += [("batch", batch), ("subdivisions", subdivisions)]
    for key, value in subs:
        text = re.sub(rf"(?m)^{key}=\d+", f"{key}={value}", text)
    path = pathlib.Path(tmp) / f"yolov4-{size}{'-train' if batch else ''}.cfg"
    path.write_text(text)
    return path


def _median_ms(times_s):
    return statistics.median(times_s) * 1e3


class OursMemory:
    """Peak of pydarknet's memory_info() over the samples taken."""

    def __init__(self, B):
        self.B = B
        self.peak = {}

    def sample(self):
        info = self.B.memory_info()
        info["device_used"] = info["device_total"] - info["device_free"]
        for k, v in info.items():
            if k not in ("device_free", "device_total"):
                self.peak[k] = max(self.peak.get(k, 0), int(v))

    def mb(self):
        return {k + "_peak_mb": round(v / MB, 1) for k, v in self.peak.items()}


def _torch_memory(torch):
    free, total = torch.cuda.mem_get_info()
    return {"max_allocated_mb": round(torch.cuda.max_memory_allocated() / MB, 1),
            "max_reserved_mb": round(torch.cuda.max_memory_reserved() / MB, 1),
            "device_used_mb": round((total - free) / MB, 1)}


def _ours_backend(mode):
    sys.path.insert(0, str(ROOT))
    from pydarknet.backend import get_backend
    B = get_backend("cuda:0")
    if mode == "tf32":
        B.set_tf32(True)
    elif mode == "fp16":
        B.set_precision("fp16")
    return B


def _torch_setup(mode):
    import torch
    torch.backends.cudnn.benchmark = True
    tf32 = mode == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT))
    return torch


# ---------------------------------------------------------------------------------------------
# (a) Mish
# ---------------------------------------------------------------------------------------------
def _event_timer(make_event, sync):
    def timed(op, reset=None, warmups=3, runs=20):
        times = []
        for i in range(warmups + runs):
            if reset is not None:
                reset()
            start, end = make_event(), make_event()
            start.record()
            op()
            end.record()
            end.synchronize()
            if i >= warmups:
                times.append(end.time_since(start) / 1e3 if hasattr(end, "time_since")
                             else start.elapsed_time(end) / 1e3)
        sync()
        return times
    return timed


def work_mish(fw, mode, args, tmp):
    import numpy as np
    n = args.mish_n
    rng = np.random.default_rng(0)
    host_x = (3 * rng.standard_normal(n, dtype=np.float32))
    host_d = rng.standard_normal(n, dtype=np.float32)
    rows = []
    if fw == "pydarknet":
        B = _ours_backend(mode)
        import pycuda.driver as drv
        timed = _event_timer(drv.Event, B.synchronize)
        x0, d0 = B.from_numpy(host_x), B.from_numpy(host_d)
        x, y, d = B.empty((n,)), B.empty((n,)), B.empty((n,))
        mem = OursMemory(B)
        rows.append(("copy (B.copy)", 8, timed(lambda: B.copy(y, x0))))
        rows.append(("mish forward in place", 8,
                     timed(lambda: B.activate(x, "mish"), reset=lambda: B.copy(x, x0))))
        if hasattr(B, "activate_copy"):
            rows.append(("mish forward x -> y (activate_copy)", 8,
                         timed(lambda: B.activate_copy(x0, y, "mish"))))
        else:
            print("pydarknet.backend.cuda has no activate_copy: that row is left out")
        rows.append(("mish backward (gradient)", 12,
                     timed(lambda: B.gradient(d, y, "mish", x0), reset=lambda: B.copy(d, d0))))
        # correctness beside the timing: the in-place forward once more against numpy float64
        B.copy(x, x0)
        B.activate(x, "mish")
        got = B.to_numpy(x)
        xd = host_x.astype(np.float64)
        want = xd * np.tanh(np.log1p(np.exp(np.minimum(xd, 20))) + np.maximum(xd - 20, 0))
        err = float(np.abs(got - want).max() / np.abs(want).max())
        mem.sample()
        extra = {"mish_forward_max_rel_err": err, "memory": mem.mb()}
    else:
        torch = _torch_setup(mode)
        import torch.nn.functional as F
        timed = _event_timer(lambda: torch.cuda.Event(enable_timing=True),
                             torch.cuda.synchronize)
        x0 = torch.from_numpy(host_x).cuda()
        d0 = torch.from_numpy(host_d).cuda()
        x, y, d = torch.empty_like(x0), torch.empty_like(x0), torch.empty_like(x0)
        rows.append(("copy (Tensor.copy_)", 8, timed(lambda: y.copy_(x0))))
        rows.append(("F.mish in place", 8,
                     timed(lambda: F.mish(x, inplace=True), reset=lambda: x.copy_(x0))))
        try:
            out_op = torch.ops.aten.mish.out
            rows.append(("aten.mish.out x -> y", 8, timed(lambda: out_op(x0, out=y))))
        except (AttributeError, RuntimeError):
            rows.append(("F.mish x -> new", 8, timed(lambda: F.mish(x0))))
        rows.append(("aten.mish_backward -> new", 12,
                     timed(lambda: torch.ops.aten.mish_backward(d0, x0))))
        extra = {"memory": _torch_memory(torch)}
    out = []
    for name, bytes_per, times in rows:
        ms = _median_ms(times)
        out.append({"op": name, "ms": ms, "gb_s": bytes_per * n / (ms / 1e3) / 1e9,
                    "spread_ms": [min(times) * 1e3, max(times) * 1e3]})
    return {"n": n, "rows": out, **extra}


# ---------------------------------------------------------------------------------------------
# (b) inference
# ---------------------------------------------------------------------------------------------
def _timed_host(fn, warmups, runs, after=None):
    times = []
    for i in range(warmups + runs):
        t0 = time.perf_counter()
        fn()
        t = time.perf_counter() - t0
        if i >= warmups:
            times.append(t)
            if after is not None:
                after()
    return times


def work_infer(fw, mode, args, tmp):
    import numpy as np
    size = args.size
    cfg = _cfg(tmp, size)
    x = np.random.default_rng(0).uniform(0, 1, (1, 3, size, size)).astype(np.float32)
    if fw == "pydarknet":
        B = _ours_backend(mode)
        import pydarknet
        net = pydarknet.load(cfg, batch=1, device="cuda:0")
        mem = OursMemory(B)
        times = _timed_host(lambda: net.predict(x), args.warmups, args.runs, mem.sample)
        heads = [np.array(net.outputs[l.index]) for l in net.layers if l.layer_type == "yolo"]
        memory = mem.mb()
        extra = {"host": _host_share(net, B, x)}
    else:
        torch = _torch_setup(mode)
        import pydarknet
        from torch_model import TorchDarknet
        net = pydarknet.Network(cfg, batch=1)
        model = TorchDarknet(net).cuda().eval()
        del net
        torch.cuda.reset_peak_memory_stats()
        result = {}

        def run():
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16,
                                                 enabled=mode == "amp"):
                hs = model(torch.from_numpy(x).cuda())
                result["last"] = hs[-1].float().cpu()
                result["heads"] = hs

        times = _timed_host(run, args.warmups, args.runs)
        heads = [h.float().cpu().numpy() for h in result["heads"]]
        memory = _torch_memory(torch)
        extra = {}
    if mode == "fp32":
        np.savez(pathlib.Path(tmp) / f"heads_{fw}.npz", *heads)
    ms = _median_ms(times)
    return {"ms": ms, "img_s": 1e3 / ms, "spread_ms": [min(times) * 1e3, max(times) * 1e3],
            "runs": len(times), "memory": memory, **extra}


def _host_share(net, B, x, runs=5):
    """What bounds an inference pass: the host's time to queue it (the forward pass returns
    once every kernel is launched) against the time until the GPU has run it, medians of
    ``runs``. Close together: launch-bound (Python and the driver); far apart: the GPU."""
    from pydarknet.passes import forward_pass
    xb = B.from_numpy(x)
    queued, done = [], []
    for _ in range(runs):
        B.synchronize()
        t0 = time.perf_counter()
        forward_pass(net, xb)
        queued.append(time.perf_counter() - t0)
        B.synchronize()
        done.append(time.perf_counter() - t0)
    return {"queued_ms": _median_ms(queued), "done_ms": _median_ms(done)}


# ---------------------------------------------------------------------------------------------
# (c) training
# ---------------------------------------------------------------------------------------------
def work_train(fw, mode, args, tmp):
    import numpy as np

    from pydarknet.data.synthetic import random_truths
    size, b = args.size, args.batch
    cfg = _cfg(tmp, size, b, 1)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (b, 3, size, size)).astype(np.float32)
    truths = random_truths(rng, b)
    if fw == "pydarknet":
        B = _ours_backend(mode)
        import pydarknet
        net = pydarknet.load(cfg, device="cuda:0")
        assert net.net.batch == b and net.net.subdivisions == 1, (net.net.batch,
                                                                  net.net.subdivisions)
        mem = OursMemory(B)
        losses = []

        def run():
            losses.append(float(net.train_iteration(x, truths)))

        times = _timed_host(run, 2, args.train_runs, mem.sample)
        memory, note = mem.mb(), f"Darknet loss {losses[0]:.1f} -> {losses[-1]:.1f}"
    else:
        torch = _torch_setup(mode)
        import pydarknet
        from torch_model import TorchDarknet
        net = pydarknet.Network(cfg)
        model = TorchDarknet(net).cuda().train()
        del net
        opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)
        scaler = torch.amp.GradScaler("cuda", enabled=mode == "amp")
        xt = torch.from_numpy(x)
        torch.cuda.reset_peak_memory_stats()
        losses = []

        def run():
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.float16, enabled=mode == "amp"):
                heads = model(xt.cuda())
            loss = sum(((h.float() - 0.5) ** 2).mean() for h in heads)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            losses.append(loss.item())          # synchronizes

        times = _timed_host(run, 2, args.train_runs + 1)
        memory, note = _torch_memory(torch), f"stand-in loss {losses[0]:.3f} -> {losses[-1]:.3f}"
    s = statistics.median(times)
    return {"s": s, "img_s": b / s, "spread_s": [min(times), max(times)], "runs": len(times),
            "memory": memory, "note": note}


WORK = {"mish": work_mish, "infer": work_infer, "train": work_train}


def worker(spec):
    args = argparse.Namespace(**spec["args"])
    try:
        result = WORK[spec["part"]](spec["fw"], spec["mode"], args, spec["tmp"])
        result["ok"] = True
    except BaseException as e:   # report, never hide
        result = {"ok": False, "error": f"{type(e).__name__}: {e}",
                  "traceback": traceback.format_exc()[-3000:]}
    print("RESULT " + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------------------------
def run_part(part, fw, mode, limit, args, tmp):
    spec = {"part": part, "fw": fw, "mode": mode, "tmp": tmp,
            "args": {k: v for k, v in vars(args).items() if k != "parts"}}
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)],
                           capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return {"ok": False, "error": f"timed out after {limit:.0f} s", "log": out[-2000:],
                "wall_s": time.perf_counter() - t0}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    if lines:
        result = json.loads(lines[-1][7:])
    else:
        result = {"ok": False, "error": f"the worker exited with {p.returncode} and no result",
                  "log": (p.stdout + p.stderr)[-3000:]}
    other = "\n".join(ln for ln in p.stdout.splitlines() if not ln.startswith("RESULT "))
    if other.strip():
        result["stdout"] = other[-1500:]
    result["wall_s"] = time.perf_counter() - t0
    return result


def device_info():
    info = {}
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=30).stdout.strip()
        info["gpu"] = out
    except (OSError, subprocess.TimeoutExpired) as e:
        info["gpu"] = f"nvidia-smi: {e}"
    try:
        import torch
        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = None
    return info


def fmt_mem(m):
    if not m:
        return ""
    if "pool_held_bytes_peak_mb" in m:
        return (f"pool {m['pool_held_bytes_peak_mb']:.0f} (active "
                f"{m.get('pool_active_bytes_peak_mb', 0):.0f}) + ws "
                f"{m.get('workspace_bytes_peak_mb', 0):.0f}; device {m['device_used_peak_mb']:.0f}")
    return (f"alloc {m['max_allocated_mb']:.0f} (reserved {m['max_reserved_mb']:.0f}); "
            f"device {m['device_used_mb']:.0f}")


def table(results, args, info):
    lines = [f"=== table: {info.get('gpu')}, torch {info.get('torch')}"]
    get = {(r["part"], r["fw"], r["mode"]): r for r in results}
    label = {("pydarknet", "fp32"): "pydarknet fp32", ("pydarknet", "tf32"): "pydarknet TF32",
             ("pydarknet", "fp16"): "pydarknet fp16 GEMMs", ("torch", "fp32"): "PyTorch fp32",
             ("torch", "tf32"): "PyTorch TF32", ("torch", "amp"): "PyTorch AMP fp16"}
    copy_gbs = {}
    lines.append(f"(a) Mish, {args.mish_n / 2**20:.0f}M floats (CUDA events, median of 20)")
    lines.append(f"    {'op':<44}{'ms':>8}{'GB/s':>8}{'/copy':>7}")
    for fw in ("pydarknet", "torch"):
        r = get.get(("mish", fw, "fp32"))
        if r is None:
            continue
        if not r["ok"]:
            lines.append(f"    {fw}: FAILED {r['error']}")
            continue
        copy_gbs[fw] = r["rows"][0]["gb_s"]
        for row in r["rows"]:
            lines.append(f"    {fw + ': ' + row['op']:<44}{row['ms']:8.3f}{row['gb_s']:8.0f}"
                         f"{row['gb_s'] / copy_gbs[fw]:7.2f}")
        if "mish_forward_max_rel_err" in r:
            lines.append(f"    pydarknet mish forward vs float64: max rel err "
                         f"{r['mish_forward_max_rel_err']:.1e}")
    for part, title, unit in (("infer", f"(b) yolov4 {args.size}x{args.size} inference, batch 1 "
                                         f"(host array -> last head on the host)", "ms"),
                              ("train", f"(c) yolov4 {args.size}x{args.size} one training "
                                        f"iteration, batch {args.batch}, subdivisions 1", "s")):
        lines.append(title)
        lines.append(f"    {'':<22}{unit + '/it':>9}{'img/s':>8}{'vs PyTorch fp32':>17}   "
                     f"peak GPU memory (MB)")
        base = get.get((part, "torch", "fp32"))
        base_v = base.get(unit) if base and base["ok"] else None
        for (fw, mode), name in label.items():
            r = get.get((part, fw, mode))
            if r is None:
                continue
            if not r["ok"]:
                lines.append(f"    {name:<22} FAILED {r['error'][:150]}")
                continue
            v = r[unit]
            ratio = f"{base_v / v:.2f}x" if base_v else "-"
            lines.append(f"    {name:<22}{v:9.3f}{r['img_s']:8.1f}{ratio:>17}   "
                         f"{fmt_mem(r.get('memory'))}")
        r = get.get((part, "pydarknet", "fp32"))
        if r and r["ok"] and "host" in r:       # (inference only)
            lines.append(f"    pydarknet fp32 pass (input already on the GPU): queued by the host "
                         f"in {r['host']['queued_ms']:.2f} ms, done on the GPU at "
                         f"{r['host']['done_ms']:.2f} ms (close: launch-bound)")
        if part == "infer" and "agreement" in info:
            lines.append(f"    fp32 [yolo] outputs, pydarknet vs PyTorch: max rel err "
                         f"{info['agreement']}")
    lines.append("    ('vs PyTorch fp32' = PyTorch fp32's time / this row's time: > 1 is faster)")
    return "\n".join(lines)


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        return worker(json.loads(sys.argv[2]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--parts", default="mish,infer,train")
    ap.add_argument("--budget", type=float, default=225, help="seconds for everything")
    ap.add_argument("--size", type=int, default=608)
    ap.add_argument("--batch", type=int, default=8, help="training batch")
    ap.add_argument("--warmups", type=int, default=3)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--train-runs", type=int, default=4)
    ap.add_argument("--mish-n", type=int, default=64 * 2**20)
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    t_start = time.perf_counter()
    info = device_info()
    print(f"bench/gpu.py: {info}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="pydarknet-gpu-bench-") as tmp:
        for part, fw, mode, limit in PLAN:
            if part not in parts:
                continue
            left = args.budget - (time.perf_counter() - t_start)
            if left < 15:
                print(f"--- {part} {fw} {mode}: skipped, the budget is spent", flush=True)
                results.append({"part": part, "fw": fw, "mode": mode, "ok": False,
                                "error": "skipped: time budget spent"})
                continue
            r = run_part(part, fw, mode, min(limit, left), args, tmp)
            r.update(part=part, fw=fw, mode=mode)
            results.append(r)
            brief = {k: v for k, v in r.items() if k not in ("traceback", "log", "stdout")}
            print(f"--- {part} {fw} {mode} ({r['wall_s']:.1f} s): {json.dumps(brief)}",
                  flush=True)
            for key in ("stdout", "traceback", "log"):
                if r.get(key):
                    print(f"    {key}:\n" + "\n".join("      " + ln
                                                     for ln in r[key].splitlines()), flush=True)
        try:
            import numpy as np
            a, b = (pathlib.Path(tmp) / f"heads_{fw}.npz" for fw in ("pydarknet", "torch"))
            if a.exists() and b.exists():
                ha, hb = np.load(a), np.load(b)
                info["agreement"] = ", ".join(
                    f"{float(np.abs(ha[k] - hb[k]).max() / np.abs(hb[k]).max()):.1e}"
                    for k in ha.files)
        except Exception as e:   # a sanity check: report it, do not stop the table
            info["agreement"] = f"could not compare: {e}"
    info["total_s"] = time.perf_counter() - t_start
    text = table(results, args, info)
    print("\n" + text, flush=True)
    if os.environ.get("OUT"):
        path = pathlib.Path(os.environ["OUT"]) / "gpu_bench.json"
        path.write_text(json.dumps({"info": info, "args": vars(args), "results": results},
                                   indent=1))
        print(f"wrote {path}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
