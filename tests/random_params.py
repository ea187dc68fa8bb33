"""Random parameters of a useful scale for oracle networks (the fuzzers' and
test_darknet_iterations' cases): weights by fan-in, positive variances."""

import numpy as np


def randomize(net, rng):
    """Every layer's parameters drawn from ``rng``: weights N(0, 1/fan-in), rolling variances
    U(0.5, 2), scales U(0.5, 1.5), the rest N(0, 0.2)."""
    for layer in net.layers:
        for name, arr in layer.params.items():
            a = np.asarray(arr)
            # (a recurrent layer's are named after its gates: input_weights, ...)
            if name.endswith("weights"):
                fan = int(np.prod(a.shape[1:])) if a.ndim > 1 else 1
                v = rng.normal(0, 1.0 / np.sqrt(max(fan, 1)), a.shape)
            elif name.endswith("rolling_variance"):
                v = rng.uniform(0.5, 2.0, a.shape)
            elif name.endswith("scales"):
                v = rng.uniform(0.5, 1.5, a.shape)
            else:
                v = rng.normal(0, 0.2, a.shape)
            layer.params[name] = v.astype(np.float32)
