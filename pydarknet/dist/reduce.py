"""What the ranks of a data-parallel run agree on each iteration.

``sum_gradients``: the default (one big batch). Every trained layer's accumulated gradient and
the iteration's summed cost go into one flat host buffer and are summed over the ranks in one
Allreduce, so that the single Darknet update each rank then makes is the update one process
with N times the batch would make.

``average_weights``: ``--sync darknet``, AlexeyAB's multi-GPU rule (sync_nets): each rank
updates on its own gradients with the learning rate times N, and every few iterations the
weights, biases and batch-norm scales of convolutional layers (weights and biases of connected
ones) are replaced by their mean over the ranks.
"""

import numpy as np

from .world import flat_buffer

DARKNET_SYNC_INTERVAL = 4      # train_networks(nets, ngpus, train, 4) in AB's detector.c
# The parameters AB's merge_weights/scale_weights/distribute_weights average.
DARKNET_SYNCED = {"convolutional": ("weights", "biases", "scales"),
                  "connected": ("weights", "biases")}


class _FlatExchange:
    """A host buffer for a fixed list of backend arrays (remade when the list changes, e.g.
    after a resize rebuilt the layers) plus ``extra`` trailing scalars."""

    def __init__(self):
        self._key, self.buffer, self.offsets = None, None, []

    def pack(self, backend, arrays, extra=()):
        key = tuple((id(a), a.size) for a in arrays) + (len(extra),)
        if key != self._key:
            self.buffer, self.offsets = flat_buffer(list(arrays) + [np.empty(len(extra))])
            self._key = key
        for a, o in zip(arrays, self.offsets):
            self.buffer[o:o + a.size] = backend.to_numpy(a).reshape(-1)
        if extra:
            self.buffer[-len(extra):] = extra
        return self.buffer

    def unpack(self, backend, arrays, scale=None):
        for a, o in zip(arrays, self.offsets):
            part = self.buffer[o:o + a.size]
            if scale is not None:
                part *= np.float32(scale)
            backend.copy_from_numpy(a, part)


class GradientSum:
    """Sums gradients and the cost over ``world`` (one Allreduce per iteration)."""

    def __init__(self, world):
        self.world = world
        self._exchange = _FlatExchange()

    def __call__(self, network, layers, cost):
        """Replace each layer's gradients by their sum over the ranks; returns the summed
        cost."""
        B = network.backend
        grads = [g for layer in layers for g in layer.grads.values()]
        buf = self._exchange.pack(B, grads, extra=(cost,))
        self.world.allreduce_sum(buf)
        self._exchange.unpack(B, grads)
        return float(buf[-1])


class DeviceGradientSum:
    """The CUDA backend's sum: the gradients packed into one device buffer, summed in place
    by NCCL on the stream the kernels run on (the legacy default stream), unpacked; only the
    cost crosses MPI. ``communicator``: a pydarknet.dist.nccl.Communicator over the ranks."""

    def __init__(self, world, communicator):
        self.world, self.communicator = world, communicator
        self._key, self._flat, self._offsets = None, None, []

    def __call__(self, network, layers, cost):
        from ..backend.cuda_device import _p
        B = network.backend
        grads = [g.reshape(1, -1) for layer in layers for g in layer.grads.values()]
        key = tuple(g.size for g in grads)
        if key != self._key:
            self._offsets = list(np.cumsum((0,) + key[:-1])) if key else []
            self._flat = B.empty((1, max(sum(key), 1)))
            self._key = key
        for g, o in zip(grads, self._offsets):
            B.copy_rows(g, self._flat, g.size, 0, int(o))
        self.communicator.allreduce_sum(_p(self._flat), sum(key), stream=0)
        for g, o in zip(grads, self._offsets):
            B.copy_rows(self._flat, g, g.size, int(o), 0)
        total = np.array([cost], np.float64)
        return float(self.world.allreduce_sum(total)[0])


class WeightAverage:
    """AB Darknet's sync_nets: the synced parameters become their mean over the ranks."""

    def __init__(self, world):
        self.world = world
        self._exchange = _FlatExchange()

    def __call__(self, network):
        B = network.backend
        params = [layer.params[name] for layer in network.layers
                  for name in DARKNET_SYNCED.get(layer.layer_type, ())
                  if name in layer.params]
        buf = self._exchange.pack(B, params)
        self.world.allreduce_sum(buf)
        self._exchange.unpack(B, params, scale=1.0 / self.world.size)


def broadcast_parameters(network, world):
    """Every rank starts from rank 0's parameters (and ``seen``/iteration), whatever each
    rank's own initialisation or file gave it."""
    if world.size == 1:
        return
    B = network.backend
    params = [p for layer in network.layers for p in layer.params.values()]
    exchange = _FlatExchange()
    world.broadcast_array(exchange.pack(B, params))
    exchange.unpack(B, params)
    network.seen, network.iteration = world.broadcast((network.seen, network.iteration))
