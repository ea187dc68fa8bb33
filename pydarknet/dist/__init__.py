"""Data-parallel training over MPI ranks (one process per device): ``mpiexec -n N pydarknet ...``.

``DataParallel(world, sync)`` is what a Network's training iteration consults:

- ``sync="sum"`` (default): one iteration over N ranks equals one iteration of one process with
  N times the batch: each rank runs its own subdivisions on its share of the images, the
  gradients are summed over the ranks before Darknet's single update, which uses the global
  batch; ``seen`` counts every rank's images, so the learning-rate policy sees the same batch
  numbers everywhere. Batch norm uses each rank's own batch statistics (as Darknet's GPUs do).
- ``sync="darknet"``: AlexeyAB's own multi-GPU behaviour: each rank updates on its own batch
  with the learning rate times N, the iteration count advances by N per step, and every 4
  iterations the weights are averaged over the ranks (sync_nets).
"""

import warnings

from .reduce import DARKNET_SYNC_INTERVAL, DeviceGradientSum, GradientSum, WeightAverage
from .world import LocalWorld, MpiWorld, get_world, launched_ranks, local_rank  # noqa: F401

SYNC_MODES = ("sum", "darknet")


class DataParallel:
    def __init__(self, world, sync="sum"):
        if sync not in SYNC_MODES:
            raise ValueError(f"unknown sync mode {sync!r}: expected one of {', '.join(SYNC_MODES)}")
        self.world, self.sync = world, sync
        self.size, self.rank = world.size, world.rank
        self._sum = None                # chosen at the first iteration, by the backend
        self._cost_sum = GradientSum(world)
        self._average = WeightAverage(world)

    def _summer(self, network):
        """NCCL on device memory for the CUDA backend (where NCCL loads), else MPI on host."""
        if self._sum is None:
            self._sum = GradientSum(self.world)
            if getattr(network.backend, "name", "cpu") == "cuda":
                from . import nccl
                try:
                    self._sum = DeviceGradientSum(self.world, nccl.communicator_for(self.world))
                except nccl.NcclError as e:
                    warnings.warn(f"gradients are summed through host memory over MPI: {e}",
                                  stacklevel=2)
        return self._sum

    @property
    def ranks_per_update(self):
        """How many ranks' images one update spans (N when gradients are summed)."""
        return self.size if self.sync == "sum" else 1

    def rate_scale(self):
        """Darknet's multi-GPU rule multiplies the learning rate by the number of GPUs."""
        return float(self.size) if self.sync == "darknet" else 1.0

    def after_passes(self, network, layers, cost):
        """The iteration's cost (summed over ranks' passes) after the gradients agree."""
        if self.sync == "sum":
            return self._summer(network)(network, layers, cost)
        return self._cost_sum(network, [], cost) / self.size    # the ranks' mean, as Darknet

    def average_weights(self, network):
        """Darknet mode: the synced parameters become the ranks' mean (every rank calls it)."""
        self._average(network)

    def after_update(self, network, batch):
        """Darknet mode: the step counts N iterations; weights averaged every 4."""
        if self.sync != "darknet":
            return
        network.iteration += self.size - 1
        network.seen = network.iteration * batch
        if network.iteration % DARKNET_SYNC_INTERVAL == 0:
            self.average_weights(network)
