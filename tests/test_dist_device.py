"""The CUDA backend's gradient sum (device buffer + NCCL all-reduce) on the emulated device
equals the host (MPI) sum of the CPU backend, with a stand-in world and communicator that
play a second rank holding the same gradients (so every sum doubles)."""

import numpy as np

import pydarknet
from pydarknet.dist import DataParallel, reduce
from test_cuda_backend import fake_device


class TwinWorld:
    """Two ranks with equal data: a sum doubles, rank 0 broadcasts."""
    rank, size, is_root = 0, 2, True

    def allreduce_sum(self, array):
        array *= 2
        return array

    def broadcast(self, obj):
        return obj


class TwinCommunicator:
    def __init__(self, mem):
        self.mem, self.calls = mem, 0

    def allreduce_sum(self, pointer, count, stream=0):
        self.calls += 1
        self.mem.view(pointer, count, np.float32)[:] *= 2


def train(ref, device, communicator=None, monkeypatch=None):
    name = "mini-yolo-a"
    net = pydarknet.load(ref / "mini" / f"{name}-train.cfg",
                         ref / "mini" / "forward" / name / "init.weights", device=device)
    if communicator is not None:
        from pydarknet.dist import nccl
        monkeypatch.setattr(nccl, "communicator_for", lambda world: communicator)
    net.parallel = DataParallel(TwinWorld())
    folder = ref / "mini" / "train" / f"{name}-gpusem"
    losses = [net.train_iteration(np.load(folder / f"input_iter{k}.npy"),
                                  np.load(folder / f"truth_iter{k}.npy")) for k in (1, 2)]
    net.params_to_host()
    return losses, {f"{l.index}.{k}": np.array(v) for l in net.layers
                    for k, v in l.params.items()}, net


def test_device_sum_through_nccl_equals_the_host_sum(ref, tmp_path, monkeypatch):
    want_losses, want, _ = train(ref, "cpu")
    with fake_device(tmp_path) as fake:
        communicator = TwinCommunicator(fake.mem)
        losses, got, net = train(ref, "cuda:0", communicator, monkeypatch)
        assert isinstance(net.parallel._sum, reduce.DeviceGradientSum)
        assert communicator.calls == 2                       # one all-reduce per iteration
    assert np.allclose(losses, want_losses, rtol=1e-5)
    for k, v in want.items():
        err = float(np.abs(got[k] - v).max() / max(np.abs(v).max(), 1e-30))
        assert err <= 1e-4, (k, err)
