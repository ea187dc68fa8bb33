"""Run by tests/test_dist.py under ``mpiexec -n N``: trains a cfg some iterations on this
rank's share of each iteration's images and saves the trained tensors (rank 0 and each rank
into OUT/rank<r>.npz)."""

import sys

import numpy as np

import pydarknet
from pydarknet.dist import DataParallel, get_world


def main(cfg, weights, data, out, sync):
    world = get_world()
    net = pydarknet.load(cfg, weights)
    net.parallel = DataParallel(world, sync)
    batches = np.load(data)
    share = net.net.batch
    losses = []
    for k in range(batches["images"].shape[0]):
        rows = slice(world.rank * share, (world.rank + 1) * share)
        losses.append(net.train_iteration(batches["images"][k][rows], batches["truths"][k][rows]))
    net.params_to_host()
    tensors = {f"{l.index}.{name}": p for l in net.layers for name, p in l.params.items()}
    np.savez(f"{out}/rank{world.rank}.npz", losses=np.array(losses), seen=net.seen,
             iteration=net.iteration, rate=net.learning_rate, **tensors)


if __name__ == "__main__":
    main(*sys.argv[1:])
