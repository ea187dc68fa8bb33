"""Darknet's SGD update with momentum and weight decay, one per iteration.

For every trainable parameter p with accumulated delta g (Darknet's sign, summed over the whole
batch) and momentum buffer u:   u += g;  u += -decay*B*p (weights only);  p += lr/B * u;
u *= momentum, where B = batch (all subdivisions' images). The backend's ``sgd_update`` does
it in one pass.

With the [net] option loss_scale = S (Darknet's mixed precision: the yolo deltas arrive scaled
by S), Darknet's GPU build divides the rate by S and multiplies the decay by S, so that the
update is the unscaled one; its connected layer instead divides its accumulated updates
(gradients and momentum) by S and updates with the plain rate.
"""

import numpy as np


def update_layer(backend, layer, rate, momentum, decay, batch, loss_scale=1.0):
    frozen = ("weights",) if getattr(layer, "train_only_bn", 0) else ()
    lr = rate * layer.learning_rate_scale
    decay_scale = 1.0
    if loss_scale != 1.0:
        if layer.layer_type == "connected":
            for name in layer.grads:
                for buf in (layer.grads[name], layer.momenta[name]):
                    backend.axpy(np.float32(1.0 / loss_scale - 1.0), buf, buf)
        else:
            lr /= loss_scale
            decay_scale = loss_scale
    step = np.float32(np.float32(lr) / batch)
    for name, grad in layer.grads.items():
        if name in frozen:
            continue
        backend.sgd_update(layer.params[name], layer.momenta[name], grad, step,
                           np.float32(-decay * batch * decay_scale), np.float32(momentum),
                           name in layer.decayed)
