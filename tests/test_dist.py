"""Data-parallel training over MPI ranks equals one process with the ranks' batches together."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import pydarknet
from pydarknet.dist import DataParallel, LocalWorld, launched_ranks
from pydarknet.dist.reduce import DARKNET_SYNCED

HERE = os.path.dirname(os.path.abspath(__file__))


def mpiexec():
    """The MPI launcher beside this Python (the mpich wheel's) or on PATH, or a skip."""
    pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install '.[dist]')")
    for path in (os.path.join(os.path.dirname(sys.executable), "mpiexec"),
                 shutil.which("mpiexec")):
        if path and os.path.exists(path):
            return path
    pytest.skip("no mpiexec (pip install mpich)")


def rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def batches_for(ref, name, iterations, ranks, seed=3):
    """``iterations`` batches of ranks x 4 images: Darknet's oracle images and truths for the
    first rank, mirrored copies (boxes mirrored with them) for the others."""
    folder = ref / "mini" / "train" / f"{name}-gpusem"
    images, truths = [], []
    for k in range(1, iterations + 1):
        x = np.load(folder / f"input_iter{k}.npy")
        t = np.load(folder / f"truth_iter{k}.npy")
        xs, ts = [x], [t]
        for r in range(1, ranks):
            xr = np.ascontiguousarray(np.roll(x[:, :, :, ::-1], r, axis=0))
            tr = np.roll(t, r, axis=0).copy()
            if tr.ndim == 3:            # detector boxes: mirror x where a box exists
                live = tr[:, :, 0] != 0
                tr[:, :, 0][live] = 1 - tr[:, :, 0][live]
            xs.append(xr)
            ts.append(tr)
        images.append(np.concatenate(xs))
        truths.append(np.concatenate(ts))
    return np.stack(images), np.stack(truths)


def doubled_cfg(cfg, tmp_path, ranks):
    """The same cfg with batch and subdivisions times ``ranks`` (the same mini-batch)."""
    text = cfg.read_text()
    net = pydarknet.Network(cfg, init=False)
    b, s = net.net.batch, net.net.subdivisions
    out = []
    for line in text.splitlines():
        key = line.split("=")[0].strip()
        if key == "batch":
            line = f"batch={b * ranks}"
        elif key == "subdivisions":
            line = f"subdivisions={s * ranks}"
        out.append(line)
    path = tmp_path / "doubled.cfg"
    path.write_text("\n".join(out) + "\n")
    return path


def trained(net):
    net.params_to_host()
    return {f"{l.index}.{k}": p for l in net.layers for k, p in l.params.items()
            if k in l.trainable}


@pytest.mark.parametrize("name", ["mini-yolo-a", "mini-classifier"])
def test_two_ranks_equal_one_process_with_twice_the_batch(ref, tmp_path, name):
    launcher = mpiexec()
    cfg = ref / "mini" / f"{name}-train.cfg"
    weights = ref / "mini" / "forward" / name / "init.weights"
    images, truths = batches_for(ref, name, 3, 2)
    np.savez(tmp_path / "data.npz", images=images, truths=truths)
    run = subprocess.run([launcher, "-n", "2", sys.executable, os.path.join(HERE, "dist_worker.py"),
                          str(cfg), str(weights), str(tmp_path / "data.npz"), str(tmp_path), "sum"],
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert run.returncode == 0, run.stdout + run.stderr
    one = pydarknet.load(doubled_cfg(cfg, tmp_path, 2), weights)
    losses = [one.train_iteration(images[k], truths[k]) for k in range(3)]
    want = trained(one)
    for r in (0, 1):
        got = np.load(tmp_path / f"rank{r}.npz")
        assert int(got["seen"]) == one.seen and int(got["iteration"]) == one.iteration == 3
        assert float(got["rate"]) == pytest.approx(one.learning_rate, rel=1e-7)
        assert np.allclose(got["losses"], losses, rtol=1e-5), (got["losses"], losses)
        # 1e-5: the weight gradients' float sums run in an order that depends on the batch
        # and thread count (oneDNN's backward-weights blocking)
        bad = {k: rel(got[k], v) for k, v in want.items() if rel(got[k], v) > 1e-5}
        assert not bad, f"rank {r}: trained tensors off by more than 1e-5: {bad}"


def test_darknet_sync_averages_weights_every_four_iterations(ref, tmp_path):
    """--sync darknet with 2 ranks: each rank trains on its own batch with the rate times 2,
    a step counts 2 iterations, and at iteration 4 the synced weights become the ranks'
    mean (checked against two independent one-process runs averaged by hand)."""
    launcher = mpiexec()
    name = "mini-yolo-a"
    cfg = ref / "mini" / f"{name}-train.cfg"
    weights = ref / "mini" / "forward" / name / "init.weights"
    images, truths = batches_for(ref, name, 2, 2)
    np.savez(tmp_path / "data.npz", images=images, truths=truths)
    run = subprocess.run([launcher, "-n", "2", sys.executable, os.path.join(HERE, "dist_worker.py"),
                          str(cfg), str(weights), str(tmp_path / "data.npz"), str(tmp_path),
                          "darknet"], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert run.returncode == 0, run.stdout + run.stderr
    alone = []
    for r in (0, 1):
        net = pydarknet.load(cfg, weights)
        net.net.learning_rate *= 2
        for k in range(2):
            rows = slice(4 * r, 4 * r + 4)
            net.train_iteration(images[k][rows], truths[k][rows])
            net.iteration += 1                       # a step counts 2 iterations
            net.seen = net.iteration * 4
        net.params_to_host()
        alone.append(net)
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in (0, 1)]
    assert int(ranks[0]["iteration"]) == 4 and int(ranks[0]["seen"]) == 16
    for layer in alone[0].layers:
        for name_ in layer.params:
            key = f"{layer.index}.{name_}"
            mine = [a.layers[layer.index].params[name_] for a in alone]
            if name_ in DARKNET_SYNCED.get(layer.layer_type, ()):
                want = (mine[0] + mine[1]) * np.float32(0.5)
                for got in ranks:
                    assert rel(got[key], want) <= 1e-5, key   # see above
            else:                                    # e.g. rolling statistics: each its own
                for got, m in zip(ranks, mine):
                    assert rel(got[key], m) <= 1e-5, key


def test_one_process_is_a_local_world(monkeypatch):
    for key in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "PMIX_SIZE",
                "SLURM_NTASKS"):
        monkeypatch.delenv(key, raising=False)
    assert launched_ranks() == 1
    assert launched_ranks({"PMI_SIZE": "4"}) == 4
    world = LocalWorld()
    a = np.ones(3, np.float32)
    assert world.allreduce_sum(a) is a and world.broadcast({"x": 1}) == {"x": 1}
    with pytest.raises(ValueError, match="unknown sync mode"):
        DataParallel(world, "average")


def test_a_gpu_list_gives_each_rank_the_gpu_of_its_place_on_its_machine(monkeypatch):
    import argparse

    from pydarknet.cli.common import device_of, gpu_list
    from pydarknet.dist.launch import launch_command
    from pydarknet.errors import PydarknetError
    args = argparse.Namespace(gpu="0,1,2,3")
    assert gpu_list(args) == [0, 1, 2, 3]
    for key in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "PMIX_SIZE",
                "SLURM_NTASKS", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK",
                "PMIX_LOCAL_RANK", "SLURM_LOCALID"):
        monkeypatch.delenv(key, raising=False)
    assert device_of(args) == "cuda:0"                 # not launched: Darknet's first GPU
    monkeypatch.setenv("PMI_SIZE", "8")
    monkeypatch.setenv("MPI_LOCALRANKID", "2")         # rank 6 of 8, the third on machine 2
    assert device_of(args) == "cuda:2"
    monkeypatch.setenv("MPI_LOCALRANKID", "5")
    with pytest.raises(PydarknetError, match="as many ranks per machine as GPUs"):
        device_of(args)
    with pytest.raises(PydarknetError, match="GPU indexes"):
        gpu_list(argparse.Namespace(gpu="0,x"))
    command = launch_command(4, ["detector", "train", "a.data", "b.cfg", "-gpus", "0,1,2,3"])
    assert command[1:3] == ["-n", "4"] and command[3:6] == [sys.executable, "-m", "pydarknet"]
    assert command[-2:] == ["-gpus", "0,1,2,3"]
