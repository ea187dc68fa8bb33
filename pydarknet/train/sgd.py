"""Darknet's SGD update with momentum and weight decay, one per iteration.

For every trainable parameter p with accumulated delta g (Darknet's sign, summed over the whole
batch) and momentum buffer u:   u += g;  u += -decay*B*p (weights only);  p += lr/B * u;
u *= momentum, where B = batch (all subdivisions' images). The backend's ``sgd_update`` does
it in one pass.
"""

import numpy as np


def update_layer(backend, layer, rate, momentum, decay, batch):
    lr = np.float32(rate * layer.learning_rate_scale)
    step = np.float32(lr / batch)
    frozen = ("weights",) if getattr(layer, "train_only_bn", 0) else ()
    for name, grad in layer.grads.items():
        if name in frozen:
            continue
        backend.sgd_update(layer.params[name], layer.momenta[name], grad, step,
                           np.float32(-decay * batch), np.float32(momentum),
                           name in layer.decayed)
