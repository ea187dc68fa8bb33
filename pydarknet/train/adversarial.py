"""``[net] adversarial_lr=A`` (AB's GPU build, train_network_datum_gpu): after burn_in, half of
the training passes (at random) first move their images against the network. A forward and
backward pass with all truths zero gives the images' delta; the images become
``clip(x + A * iteration / max_batches * delta, 0, 1)`` (with ``contrastive=1`` the second
view of each pair stays as it was), and the pass trains on them.

As in AB, that extra pass is a training pass: batch norm's rolling statistics move and every
gradient accumulates into the update, but the convolutions' weight gradients (AB skips them
while adversarial). Its cost is not counted. (``attention=1`` only shows AB's images.)
"""

import numpy as np

from ..passes import backward_pass, forward_pass


def adversarial_images(network, x, truths, seen):
    """The images a pass trains on: ``x`` itself, or (half the time after burn_in) AB's
    adversarial ones."""
    net = network.net
    if not net.adversarial_lr or network.rng.integers(2) == 0 or \
            network.iteration <= net.burn_in:
        return x
    rate = np.float32(net.adversarial_lr * (network.iteration / net.max_batches))
    B = network.backend
    kept = [(grads, key, np.array(B.to_numpy(grads[key])))
            for grads, key in _convolution_weight_grads(network)]
    delta = B.zeros(x.shape)
    state = forward_pass(network, B.from_numpy(x), True, np.zeros_like(truths),
                         check_finite=True, delta_slots=network.delta_slots(), seen=seen,
                         input_delta=delta)
    backward_pass(network, state)
    for grads, key, value in kept:
        B.copy_from_numpy(grads[key], value)
    moved = np.clip(x + rate * B.to_numpy(delta), 0, 1).astype(np.float32)
    if net.contrastive:
        moved[1::2] = x[1::2]
    return moved


def _convolution_weight_grads(network):
    """(grads, key) of every convolution's weights: the [convolutional] layers' and the
    convolutions inside [crnn] and [conv_lstm]."""
    from ..layers.recurrent import ConvGate
    out = []
    for layer in network.layers:
        grads = getattr(layer, "grads", None) or {}
        if layer.layer_type == "convolutional" and "weights" in grads:
            out.append((grads, "weights"))
        for gate in getattr(layer, "gates", ()):
            if isinstance(gate, ConvGate) and gate.key("weights") in grads:
                out.append((grads, gate.key("weights")))
    return out
