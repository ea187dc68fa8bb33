"""bench/gpu.py's own code on the emulated device (tests/test_cuda_backend.py's fake_device),
before a GPU session spends its minutes on it: each pydarknet part (Mish with pycuda events,
yolov4 inference in fp32, TF32 and fp16, a training iteration) at toy sizes, and the driver's
table and JSON when a worker cannot start. The timings mean nothing here; the plumbing does."""

import argparse
import importlib.util
import json
import sys
import warnings

import numpy as np
import pytest

from conftest import ROOT
from test_cuda_backend import fake_device

spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "bench" / "gpu.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

TOY = dict(size=64, batch=2, warmups=1, runs=2, train_runs=1, mish_n=4096)
TOY_HEADS = [(1, 255, 8, 8), (1, 255, 4, 4), (1, 255, 2, 2)]     # yolov4's [yolo] at 64x64


@pytest.fixture
def emulated(tmp_path):
    with warnings.catch_warnings(), fake_device(tmp_path) as fake:
        warnings.simplefilter("ignore")
        yield fake


def test_mish_part(emulated, tmp_path):
    r = bench.work_mish("pydarknet", "fp32", argparse.Namespace(**TOY), str(tmp_path))
    assert [row["op"] for row in r["rows"]] == [
        "copy (B.copy)", "mish forward in place", "mish forward x -> y (activate_copy)",
        "mish backward (gradient)"]
    assert all(row["ms"] >= 0 and len(row["spread_ms"]) == 2 for row in r["rows"])
    assert r["mish_forward_max_rel_err"] < 1e-6
    assert r["memory"]["pool_held_bytes_peak_mb"] >= 0


@pytest.mark.parametrize("mode", ["fp32", "tf32", "fp16"])
def test_inference_part(emulated, tmp_path, mode):
    r = bench.work_infer("pydarknet", mode, argparse.Namespace(**TOY), str(tmp_path))
    assert r["runs"] == TOY["runs"] and r["img_s"] > 0
    assert "device_used_peak_mb" in r["memory"]
    heads = tmp_path / "heads_pydarknet.npz"
    assert heads.exists() == (mode == "fp32")
    if mode == "fp32":           # the three [yolo] heads, as the agreement check reads them
        assert [a.shape for a in np.load(heads).values()] == TOY_HEADS
        assert 0 < r["host"]["queued_ms"] <= r["host"]["done_ms"]
        r.update(part="infer", fw="pydarknet", mode=mode, ok=True)
        text = bench.table([r], argparse.Namespace(**TOY), {"gpu": "emulated", "torch": None})
        assert "    pydarknet fp32  " in text and "queued by the host in" in text


@pytest.mark.parametrize("mode", ["fp32", "fp16"])
def test_training_part(emulated, tmp_path, mode):
    r = bench.work_train("pydarknet", mode, argparse.Namespace(**TOY), str(tmp_path))
    assert r["runs"] == TOY["train_runs"] and r["img_s"] > 0
    assert r["note"].startswith("Darknet loss ")
    assert np.isfinite(float(r["note"].split()[2]))


def test_driver_reports_failed_workers(tmp_path, monkeypatch, capsys):
    """Where a worker cannot start (pycuda and torch shadowed by modules that fail to
    import, as on a machine without them), the table names each failure and the JSON keeps
    every row."""
    for name in ("pycuda", "torch"):
        (tmp_path / "shadow" / name).mkdir(parents=True)
        (tmp_path / "shadow" / name / "__init__.py").write_text(
            f"raise ImportError('{name} shadowed by test_bench_gpu')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "shadow"))
    monkeypatch.setenv("OUT", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["gpu.py", "--parts", "mish", "--budget", "120",
                                      "--mish-n", "1024"])
    assert bench.main() == 1
    text = capsys.readouterr().out
    table = text[text.index("=== table"):]
    assert "pydarknet: FAILED PydarknetError: the CUDA backend needs pycuda" in table
    assert "torch: FAILED ImportError: torch shadowed" in table
    saved = json.loads((tmp_path / "gpu_bench.json").read_text())
    assert [(r["part"], r["fw"], r["ok"]) for r in saved["results"]] == [
        ("mish", "pydarknet", False), ("mish", "torch", False)]


def test_torch_parts_on_a_cpu_stand_in(tmp_path, monkeypatch):
    """The PyTorch rows' code (Mish ops, the eager model in fp32, TF32 and AMP, a training step
    with GradScaler) with torch.cuda stood in for by the CPU: the API calls, before the GPU
    machine's torch first runs them. Skipped without torch (CI has none)."""
    import time
    torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch)")

    class Event:
        def __init__(self, enable_timing=False):
            self.t = None

        def record(self, stream=None):
            self.t = time.perf_counter()

        def synchronize(self):
            pass

        def elapsed_time(self, end):
            return (end.t - self.t) * 1e3

    cpu_autocast, cpu_scaler = torch.autocast, torch.amp.GradScaler
    for owner, name, value in (
            (torch.Tensor, "cuda", lambda self, *a, **k: self),
            (torch.nn.Module, "cuda", lambda self, *a, **k: self),
            (torch.cuda, "Event", Event), (torch.cuda, "synchronize", lambda *a: None),
            (torch.cuda, "mem_get_info", lambda *a: (1 << 30, 2 << 30)),
            (torch.cuda, "max_memory_allocated", lambda *a: 0),
            (torch.cuda, "max_memory_reserved", lambda *a: 0),
            (torch.cuda, "reset_peak_memory_stats", lambda *a: None),
            (torch, "autocast", lambda device, dtype=None, enabled=True: cpu_autocast(
                "cpu", dtype=torch.bfloat16, enabled=enabled)),
            (torch.amp, "GradScaler", lambda device, enabled=True: cpu_scaler(
                "cpu", enabled=enabled))):
        monkeypatch.setattr(owner, name, value)
    args = argparse.Namespace(**TOY)
    mish = bench.work_mish("torch", "fp32", args, str(tmp_path))
    assert [row["op"] for row in mish["rows"]][0] == "copy (Tensor.copy_)"
    for mode in ("fp32", "tf32", "amp"):
        assert bench.work_infer("torch", mode, args, str(tmp_path))["img_s"] > 0
    heads = np.load(tmp_path / "heads_torch.npz")
    assert [a.shape for a in heads.values()] == TOY_HEADS
    for mode in ("fp32", "amp"):
        assert bench.work_train("torch", mode, args, str(tmp_path))["note"].startswith(
            "stand-in loss ")
