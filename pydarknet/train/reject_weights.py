"""``[net] weights_reject_freq=F`` (AB's reject_similar_weights): every F iterations before 3/4 of
max_batches, in each [convolutional] layer with an activation (not the first layer, nor one of
the three before a [yolo]), the two most alike filters (cosine similarity of their weights) are
found; above 0.4, the first of them is drawn again (uniform in +-sqrt(2 / fan-in)), its bias set
to 0 and its batch-norm scale to 1. The momenta are kept, as AB keeps them.

AB compares filters of size*size*c values, which for grouped convolutions reads past each
filter (and past the weights); pydarknet compares each filter's own size*size*c/groups.
"""

import numpy as np

from ..host_math import cosine_similarities

SIMILARITY_THRESHOLD = 0.4


def weights_reject_step(network):
    """After an update: reject similar filters when the iteration calls for it. Returns
    [(layer index, filter drawn again, the filter it was like, similarity)]."""
    net = network.net
    it = network.iteration
    if not net.weights_reject_freq or it >= net.max_batches * 3 // 4 or \
            it % net.weights_reject_freq:
        return []
    return reject_similar_weights(network)


def _checked_layers(layers):
    for i, layer in enumerate(layers):
        if i == 0 or any(l.layer_type == "yolo" for l in layers[i + 1:i + 4]):
            continue
        if layer.layer_type == "convolutional" and layer.activation != "linear" and \
                layer.params and layer.n > 1:
            yield layer


def most_alike(weights):
    """(k, j, similarity) of the first pair k < j of filters with the largest cosine
    similarity (0 where a filter is all zeros), as AB's loop finds it."""
    sim = cosine_similarities(weights.reshape(weights.shape[0], -1))[0].astype(np.float32)
    sim[np.tril_indices(len(sim))] = -np.inf
    k, j = np.unravel_index(int(np.argmax(sim)), sim.shape)
    return int(k), int(j), float(sim[k, j])


def reject_similar_weights(network):
    B = network.backend
    rejected = []
    for layer in _checked_layers(network.layers):
        weights = B.to_numpy(layer.params["weights"])
        k, j, sim = most_alike(weights)
        if sim <= SIMILARITY_THRESHOLD:
            continue
        fan_in = layer.size * layer.size * (layer.c // layer.groups)
        scale = np.sqrt(2.0 / fan_in)
        weights = np.array(weights)
        # drawn from the iteration and layer: the same on every data-parallel rank and in a
        # resumed run
        rng = np.random.default_rng([network.iteration, layer.index])
        weights[k] = (scale * rng.uniform(-1, 1, weights[k].shape)).astype(np.float32)
        B.copy_from_numpy(layer.params["weights"], weights)
        for name, value in (("biases", 0.0), ("scales", 1.0)):
            if name in layer.params:
                p = np.array(B.to_numpy(layer.params[name]))
                p[k] = value
                B.copy_from_numpy(layer.params[name], p)
        rejected.append((layer.index, k, j, sim))
    return rejected
