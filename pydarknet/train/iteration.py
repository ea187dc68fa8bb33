"""One Darknet training iteration: ``subdivisions`` forward/backward passes, then one update."""

import numpy as np

from ..errors import PydarknetError, ShapeError
from ..passes import (backward_pass, check_truths, forward_pass, frozen_by_stopbackward,
                      frozen_up_to, pass_cost)
from .adversarial import adversarial_images
from .ema import ema_step
from .head_stats import HeadTally
from .policy import learning_rate
from .reject_weights import weights_reject_step
from .sgd import update_layer


def train_pass(network, x, truth, keep_deltas=False, seen=None, layer_seconds=None):
    """Forward and backward of one mini-batch (numpy images, checked truths); returns
    Darknet's cost for it. Gradients accumulate into the layers' ``grads``. The deltas share
    memory as backward goes (pydarknet.output_pool) unless ``keep_deltas`` (then
    ``network.deltas`` holds every layer's, as Darknet leaves them). ``seen``: the images
    seen with this mini-batch's (default ``network.seen``). ``layer_seconds``: a
    :class:`LayerSeconds` that adds this pass's forward and backward time of each layer."""
    forward = [] if layer_seconds is not None else None
    backward = {} if layer_seconds is not None else None
    state = forward_pass(network, network.backend.from_numpy(x), True, truth, check_finite=True,
                         delta_slots=None if keep_deltas else network.delta_slots(), seen=seen,
                         layer_seconds=forward)
    backward_pass(network, state, backward)
    if layer_seconds is not None:
        layer_seconds.add(forward, backward)
    cost = pass_cost(network)
    if not np.isfinite(cost):
        raise PydarknetError(f"the loss is {cost} at iteration {network.iteration + 1}; weights "
                             f"are left as they were before it")
    return cost


class LayerSeconds:
    """Each layer's forward and backward seconds, summed over the passes timed (Darknet's
    -benchmark_layers in training)."""

    def __init__(self, layers):
        self.layers = list(layers)
        self.forward = [0.0] * len(self.layers)
        self.backward = [0.0] * len(self.layers)

    def add(self, forward, backward):
        for i, t in enumerate(forward):
            self.forward[i] += t
        for i, t in backward.items():
            self.backward[i] += t

    def table(self, top=20):
        """The slowest layers (forward + backward) first, with their share."""
        both = [f + b for f, b in zip(self.forward, self.backward)]
        total = sum(both) or 1.0
        lines = [f"layers by training time (forward + backward, {total * 1000:.1f} ms in all; "
                 f"forward {sum(self.forward) * 1000:.1f}, backward "
                 f"{sum(self.backward) * 1000:.1f}):"]
        order = sorted(range(len(both)), key=lambda i: -both[i])
        for i in order[:top]:
            lines.append(f"  {i:4d} {self.layers[i].type:<16s} {self.forward[i] * 1000:9.2f} + "
                         f"{self.backward[i] * 1000:9.2f} ms {100 * both[i] / total:5.1f}%")
        if len(order) > top:
            rest = sum(both[i] for i in order[top:])
            lines.append(f"  ({len(order) - top} more layers: {rest * 1000:.2f} ms)")
        return "\n".join(lines)


def _restorer(network):
    """A function that puts back what an iteration's passes move besides the gradients (for
    an iteration that fails: it leaves the network as it was): the batch norms' rolling
    statistics, the state recurrent layers carry from pass to pass, the [yolo] delta
    rejection's rolling statistics and the random generator (dropout, adversarial draws)."""
    B = network.backend
    rolling = [(l, {k: B.to_numpy(v).copy() for k, v in l.params.items()
                    if k.startswith("rolling")})
               for l in network.layers if any(k.startswith("rolling") for k in l.params)]
    carried = [(l, l.carried_state()) for l in network.layers if hasattr(l, "carried_state")]
    rejection = dict(vars(network.delta_rejection))
    rng = network.rng.bit_generator.state

    def restore():
        for layer, stats in rolling:
            for k, v in stats.items():
                B.copy_from_numpy(layer.params[k], v)
        for layer, state in carried:
            layer.restore_state(state, B)
        vars(network.delta_rejection).update(rejection)
        network.rng.bit_generator.state = rng
    return restore


def _trained_layers(network):
    """The layers an update changes: from the last ``stopbackward=1`` layer on (the earlier
    ones are frozen; below ``stopbackward=N`` the update goes on, with no gradient for the
    first N iterations, as AB's), after the last ``train_only_bn`` one (AB's GPU build gives
    that option to every earlier layer and skips their whole update: only their batch norm's
    rolling statistics move)."""
    first = max(frozen_by_stopbackward(network), frozen_up_to(network) + 1)
    return [l for l in network.layers if l.index >= first and l.params and l.trainable]


def _add_skipped_gradients(network):
    """Add the gradients of the iterations whose update a layer skipped (dont_update,
    burnin_update) to this iteration's: AB's update_network_gpu leaves such a layer's
    weight_updates as they are, its backward goes on adding to them, and the first update
    applies them all (after a data-parallel run's sum: each was summed when it was made)."""
    B = network.backend
    for index, grads in network.skipped_gradients.items():
        layer = network.layers[index]
        for name, carried in grads.items():
            B.copy_from_numpy(layer.grads[name], B.to_numpy(layer.grads[name]) + carried)
    network.skipped_gradients = {}


def train_iteration(network, images, truths, layer_seconds=None):
    """Darknet's train_network: returns its loss (sum of per-pass costs / batch).

    In a data-parallel run (``network.parallel``, pydarknet.dist) ``images`` are this rank's
    share; with summed gradients the update, ``seen`` and the loss span every rank's images.
    ``layer_seconds``: a :class:`LayerSeconds` that times each layer's passes."""
    net = network.net
    # a pass takes time_steps rows of each of the mini-batch's sequences (recurrent networks;
    # Darknet's net->batch counts them, and so do seen, the update and the loss)
    sub, mini = net.subdivisions, net.mini_batch * max(net.time_steps, 1)
    batch = sub * mini
    parallel = network.parallel
    ranks = parallel.ranks_per_update if parallel else 1
    images = network._check_input(images)
    if images.shape[0] != batch:
        steps = (f" rows: {net.mini_batch} sequences x time_steps={net.time_steps}"
                 if net.time_steps > 1 else "")
        raise ShapeError(f"one iteration takes batch={batch} images ({sub} subdivisions of "
                         f"{mini}{steps}), found {images.shape[0]}")
    truths = check_truths(network, truths, batch)
    network.ensure_training()
    B = network.backend
    layers = _trained_layers(network)
    restore = _restorer(network)
    for layer in layers:
        for g in layer.grads.values():
            B.fill(g, 0)
    total = 0.0
    seen = network.seen
    heads = HeadTally(network)
    try:
        for s in range(sub):
            rows = slice(s * mini, (s + 1) * mini)
            seen += mini * ranks
            x = adversarial_images(network, images[rows], truths[rows], seen)
            total += train_pass(network, x, truths[rows], seen=seen,
                                layer_seconds=layer_seconds)
            heads.add()
    except PydarknetError:
        restore()
        raise
    if parallel:
        total = parallel.after_passes(network, layers, total)
    _add_skipped_gradients(network)
    network.seen = seen
    network.iteration += 1
    network.head_stats = heads.result()
    batch_num = network.seen // (batch * ranks)
    rate = learning_rate(net, batch_num, network.rng)
    if parallel:
        rate *= parallel.rate_scale()
    network.learning_rate = rate
    adam = (net.B1, net.B2, net.eps, batch_num) if net.adam else None
    for layer in layers:
        if layer.dont_update >= batch_num or \
                layer.burnin_update and layer.burnin_update * net.burn_in > batch_num:
            network.skipped_gradients[layer.index] = {k: B.to_numpy(g).copy()
                                                      for k, g in layer.grads.items()}
            continue
        update_layer(B, layer, rate, net.momentum, net.decay, batch * ranks, net.loss_scale,
                     adam)
    if parallel:
        parallel.after_update(network, batch)
    ema_step(network)
    network.rejected_filters = weights_reject_step(network)
    return total / (batch * ranks)
