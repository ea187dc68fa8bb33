"""Darknet's SGD update with momentum and weight decay, one per iteration.

For every trainable parameter p with accumulated delta g (Darknet's sign, summed over the whole
batch) and momentum buffer u:   u += g;  u += -decay*B*p (weights only);  p += lr/B * u;
u *= momentum, where B = batch (all subdivisions' images).
"""

import numpy as np


def update_layer(layer, rate, momentum, decay, batch):
    lr = np.float32(rate * layer.learning_rate_scale)
    step = np.float32(lr / batch)
    frozen = ("weights",) if getattr(layer, "train_only_bn", 0) else ()
    for name, grad in layer.grads.items():
        if name in frozen:
            continue
        u = layer.momenta[name]
        p = layer.params[name]
        u += grad
        if name in layer.decayed:
            u += np.float32(-decay * batch) * p
        p += step * u
        u *= np.float32(momentum)
