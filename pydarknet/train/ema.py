"""Darknet's exponential moving average of the weights, ``[net] ema_alpha`` (AB's
``train_network`` with ``ema_update``/``ema_apply``).

From iteration ``max_batches / 2`` on, every trained convolutional layer has a host copy of its
weights, biases and (with batch norm) scales: set to the weights at that iteration, then
``ema = alpha * ema + (1 - alpha) * w`` (float32, Darknet's order) after every update up to
iteration ``max_batches - 1000``, where the weights are replaced by the averages. Darknet keeps
the rolling batch-norm statistics as they are at that point, and so does pydarknet. The copies
live on the host, as in Darknet's GPU build (it pulls the layers every iteration).

Checkpoints also write ``<cfg>_ema.weights`` (the averages in place of those parameters) beside
``_last``, as Darknet does, and keep the averages in the ``.state.npz`` sidecar, so a resumed run
goes on with them (Darknet starts them afresh).
"""

import numpy as np

from ..passes import frozen_by_stopbackward

AVERAGED = ("weights", "biases", "scales")


class MovingAverage:
    """The averages of one network: ``arrays`` {(layer index, name): float32 array};
    ``event``: what the last iteration did ("EMA initialization", "ema_apply()" or None)."""

    def __init__(self, arrays):
        self.arrays = arrays
        self.event = None

    @classmethod
    def of(cls, network):
        """A new average holding the network's current parameters."""
        B = network.backend
        return cls({key: np.array(B.to_numpy(_param(network, key)), np.float32)
                    for key in averaged_keys(network)})


def averaged_keys(network):
    """(index, name) of every averaged parameter: Darknet's convolutional layers that own
    their weights (not a ``share_index`` layer) and are trained (AB's training parse gives
    the frozen layers before the last ``stopbackward=1`` no averages: they keep their
    weights as they are)."""
    frozen_below = frozen_by_stopbackward(network)
    return [(layer.index, name) for layer in network.layers
            if layer.layer_type == "convolutional" and layer.share_layer is None and
            layer.index >= frozen_below
            for name in AVERAGED if name in layer.params]


def _param(network, key):
    index, name = key
    return network.layers[index].params[name]


def ema_step(network):
    """After an iteration's update (``network.iteration`` counts it): Darknet's EMA rule.
    Returns the network's :class:`MovingAverage` (None before it starts or without
    ``ema_alpha``)."""
    n = network.net
    alpha = np.float32(n.ema_alpha)
    start = n.max_batches // 2
    if not alpha or network.iteration < start:
        return network.ema
    apply_point = n.max_batches - 1000
    B = network.backend
    if network.ema is None:
        network.ema = MovingAverage.of(network)
        network.ema.event = "EMA initialization"
    else:
        network.ema.event = None
    if network.iteration == apply_point:
        for key, average in network.ema.arrays.items():
            B.copy_from_numpy(_param(network, key), average)
        network.ema.event = "ema_apply()"
    elif network.iteration < apply_point:
        beta = np.float32(1) - alpha
        for key, average in network.ema.arrays.items():
            w = B.to_numpy(_param(network, key))
            np.add(alpha * average, beta * w, out=average)
    return network.ema
