"""`detector train` / `classifier train` under mpiexec: two ranks equal one process with the
doubled batch, through the whole training command (loader shards, checkpoints by rank 0)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import pydarknet
from pydarknet.data import make_shapes_classifier, make_shapes_detection
from test_dist import doubled_cfg, mpiexec, rel

ENV = dict(os.environ, OMP_NUM_THREADS="1")
ITERATIONS = 3


def train(command, data, cfg, weights, backup, seed=5):
    args = [sys.executable, "-m", "pydarknet", command, "train", str(data), str(cfg),
            str(weights), "--seed", str(seed), "--max-batches", str(ITERATIONS),
            "--backup", str(backup)]
    return args


def gentle(cfg, tmp_path):
    """The cfg at a fifth of its learning rate. At the full rate the mini detectors take
    steps so large on this data (loss 100 -> 23 in 4 iterations) that float rounding (two
    ranks add their gradients in another order than one process's passes) grows about 10x
    per iteration: 9e-8 after one, 4e-6 after three."""
    lines = []
    for line in cfg.read_text().splitlines():
        if line.split("=")[0].strip() == "learning_rate":
            line = f"learning_rate={float(line.split('=')[1]) / 5}"
        lines.append(line)
    path = tmp_path / cfg.name
    path.write_text("\n".join(lines) + "\n")
    return path


def trained_tensors(cfg, path):
    """The trained parameters of a checkpoint (rolling statistics aside: a rank makes fewer
    batch-norm passes than the one process, so its running means differ)."""
    net = pydarknet.load(cfg, path)
    net.params_to_host()
    return {f"{l.index}.{k}": p for l in net.layers for k, p in l.params.items()
            if not k.startswith("rolling")}


@pytest.mark.parametrize("name", ["mini-yolo-a", "mini-yolo-b", "mini-classifier"])
def test_two_ranks_through_the_cli_equal_one_process_with_twice_the_batch(ref, tmp_path,
                                                                          name):
    launcher = mpiexec()
    cfg = gentle(ref / "mini" / f"{name}-train.cfg", tmp_path)
    weights = ref / "mini" / "forward" / name / "init.weights"
    if name == "mini-classifier":
        data = make_shapes_classifier(tmp_path / "data", train=24, valid=2, size=32,
                                      classes=5)["data"]
        command = "classifier"
    else:
        data = make_shapes_detection(tmp_path / "data", train=24, valid=2, size=96)["data"]
        command = "detector"
    doubled = doubled_cfg(cfg, tmp_path, 2)
    one = subprocess.run(train(command, data, doubled, weights, tmp_path / "one"),
                         capture_output=True, text=True, timeout=300, env=ENV)
    assert one.returncode == 0, one.stdout + one.stderr
    two = subprocess.run([launcher, "-n", "2"] + train(command, data, cfg, weights,
                                                       tmp_path / "two"),
                         capture_output=True, text=True, timeout=300, env=ENV)
    assert two.returncode == 0, two.stdout + two.stderr
    # rank 0 alone prints and writes: one console line per iteration, one log, one set of files
    assert two.stdout.count(f" {ITERATIONS}: ") == 1, two.stdout
    logged = (tmp_path / "two" / f"{cfg.stem}_train.jsonl").read_text().splitlines()
    assert len(logged) == ITERATIONS
    want = trained_tensors(doubled, tmp_path / "one" / "doubled_final.weights")
    got = trained_tensors(cfg, tmp_path / "two" / f"{cfg.stem}_final.weights")
    assert got.keys() == want.keys()
    bad = {k: rel(got[k], v) for k, v in want.items() if rel(got[k], v) > 1e-6}
    assert not bad, f"trained tensors off by more than 1e-6: {bad}"
    seen_one = [eval(line)["images"] for line in
                (tmp_path / "one" / "doubled_train.jsonl").read_text().splitlines()]
    assert [eval(line)["images"] for line in logged] == seen_one


def rank_pid(marker, rank):
    """The pid of MPI rank ``rank`` among the processes whose command line holds ``marker``."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if marker.encode() in argv and "mpiexec" not in argv[0].decode(errors="replace") \
                and f"PMI_RANK={rank}".encode() in env:
            return int(pid)
    return None


def test_a_killed_rank_stops_the_others_and_the_run_resumes_with_nothing_lost(ref, tmp_path):
    """SIGKILL one rank of a 2-rank run after its first checkpoint: the other stops within
    seconds; resuming both from <cfg>_last.weights gives what an uninterrupted run gives."""
    launcher = mpiexec()
    if not os.path.isdir("/proc/self"):
        pytest.skip("finding a rank's pid reads /proc (Linux)")
    cfg = tmp_path / "kill.cfg"
    cfg.write_text((ref / "mini" / "mini-yolo-a-train.cfg").read_text()
                   .replace("max_batches=100", "max_batches=1000"))
    data = make_shapes_detection(tmp_path / "data", train=24, valid=2, size=96)["data"]
    backup = tmp_path / "killed"
    stop_at = 130

    def command(backup, weights=(), max_batches=None):
        args = [launcher, "-n", "2", sys.executable, "-m", "pydarknet", "detector", "train",
                str(data), str(cfg), *weights, "--seed", "2", "--backup", str(backup)]
        return args + (["--max-batches", str(max_batches)] if max_batches else [])

    run = subprocess.Popen(command(backup), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, env=ENV)
    log = backup / "kill_train.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and run.poll() is None:
        if (backup / "kill_last.weights").exists() and log.exists() \
                and len(log.read_text().splitlines()) >= 110:
            break
        time.sleep(0.1)
    victim = rank_pid(str(backup), 1)
    assert run.poll() is None and victim, "the run ended before it could be killed"
    os.kill(victim, signal.SIGKILL)
    killed_at = time.time()
    out, _ = run.communicate(timeout=60)
    assert time.time() - killed_at < 10, "the surviving rank did not stop within seconds"
    assert run.returncode != 0, out
    done = len(log.read_text().splitlines())
    assert 100 <= done < stop_at, out

    resumed = subprocess.run(command(backup, [str(backup / "kill_last.weights")], stop_at),
                             capture_output=True, text=True, timeout=300, env=ENV)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    whole = subprocess.run(command(tmp_path / "whole", (), stop_at), capture_output=True,
                           text=True, timeout=300, env=ENV)
    assert whole.returncode == 0, whole.stdout + whole.stderr

    iterations = [json.loads(line)["iteration"] for line in log.read_text().splitlines()]
    assert iterations == list(range(1, stop_at + 1))
    got = pydarknet.load(cfg, backup / "kill_final.weights")
    want = pydarknet.load(cfg, tmp_path / "whole" / "kill_final.weights")
    assert got.seen == want.seen == stop_at * 8
    for a, b in zip(got.layers, want.layers):
        for name in a.params:
            assert np.array_equal(a.params[name], b.params[name]), (a.index, name)
