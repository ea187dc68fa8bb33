"""One Darknet training iteration: ``subdivisions`` forward/backward passes, then one update."""

import numpy as np

from ..errors import PydarknetError, ShapeError
from ..network import ForwardState, HostArrays
from .policy import learning_rate
from .sgd import update_layer


class TrainState(ForwardState):
    """What layers see in a training pass: outputs, deltas (zeroed every pass), truths."""

    def __init__(self, network, x, truth):
        super().__init__(network.backend, x, True, network._buffers)
        self.backend = network.backend
        self.input = x
        self.truth = truth
        self.train = True
        self.outputs = []
        self.deltas = []
        self.net_w, self.net_h = network.net.width, network.net.height
        self.loss_scale = network.net.loss_scale
        self.rng = network.rng


def check_truths(network, truths, batch):
    """Validate the truths of one iteration: shape, dtype, classes and boxes."""
    if not isinstance(truths, np.ndarray):
        raise ShapeError(f"truths must be a numpy float32 array, found {type(truths).__name__}")
    if truths.dtype != np.float32:
        raise ShapeError(f"truths must be float32, found {truths.dtype}")
    if truths.shape[0] != batch:
        raise ShapeError(f"truths must hold {batch} rows (one per image), found {truths.shape[0]}")
    heads = [l for l in network.layers if l.layer_type in ("yolo", "gaussian_yolo", "region")]
    if not heads:
        outputs = network.layers[-1].outputs
        if truths.ndim != 2 or truths.shape[1] != outputs:
            raise ShapeError(f"classifier truths must have shape [{batch}, {outputs}], found "
                             f"{list(truths.shape)}")
        return truths
    if truths.ndim != 3 or truths.shape[2] not in (5, 6):
        raise ShapeError(f"detector truths must have shape [{batch}, max_boxes, 5 or 6] (x, y, w, "
                         f"h, class[, track id]), found {list(truths.shape)}")
    if truths.shape[2] == 5:
        truths = np.concatenate([truths, np.zeros(truths.shape[:2] + (1,), np.float32)], axis=2)
    classes = min(l.classes for l in heads)
    for b in range(batch):
        for k, box in enumerate(truths[b]):
            x, y, w, h, c = (float(v) for v in box[:5])
            if x == 0:
                break
            if not (0 <= x <= 1 and 0 <= y <= 1) or not (0 < w <= 1 and 0 < h <= 1) or \
                    not np.isfinite(box[:5]).all():
                raise ShapeError(f"image {b}, box {k}: x={x:g} y={y:g} w={w:g} h={h:g}: boxes "
                                 f"need x, y in [0, 1] and 0 < w, h <= 1 (relative to the image)")
            if c != int(c) or not 0 <= c < classes:
                raise ShapeError(f"image {b}, box {k}: class {c:g} is outside 0..{classes - 1}")
    return np.ascontiguousarray(truths)


def _pass(network, x, truth):
    """Forward and backward of one mini-batch; returns Darknet's cost for it."""
    B = network.backend
    x = B.from_numpy(x)
    state = TrainState(network, x, truth)
    n = x.shape[0]
    state.deltas = []
    for layer in network.layers:   # every delta starts at zero in each pass (-gpusem fix 1)
        delta = state.output_buffer(layer, layer.out_shape(n), "delta")
        B.fill(delta, 0)
        state.deltas.append(delta)
    out = x
    for layer in network.layers:
        out = layer.forward(out, state)
        if not B.all_finite(out):
            raise PydarknetError(
                f"layer {layer.index} ({layer.layer_type}) produced NaN or inf at iteration "
                f"{network.iteration + 1}; weights are left as they were before it")
        state.outputs.append(out)
    for layer in reversed(network.layers):
        if layer.stopbackward:
            break
        if layer.onlyforward:
            continue
        layer.backward(state)
    costs = [layer.cost or 0.0 for layer in network.layers if hasattr(layer, "cost")]
    cost = sum(costs) / len(costs) if costs else 0.0
    if not np.isfinite(cost):
        raise PydarknetError(f"the loss is {cost} at iteration {network.iteration + 1}; weights "
                             f"are left as they were before it")
    network.outputs = HostArrays(B, state.outputs)
    network.deltas = HostArrays(B, state.deltas)
    return cost


def _trained_layers(network):
    last_stop = max((l.index for l in network.layers if l.stopbackward), default=-1)
    return [l for l in network.layers if l.index >= last_stop and l.params and l.trainable]


def train_iteration(network, images, truths):
    """Darknet's train_network: returns its loss (sum of per-pass costs / batch)."""
    net = network.net
    sub, mini = net.subdivisions, net.mini_batch
    batch = sub * mini
    images = network._check_input(images)
    if images.shape[0] != batch:
        raise ShapeError(f"one iteration takes batch={batch} images ({sub} subdivisions of "
                         f"{mini}), found {images.shape[0]}")
    truths = check_truths(network, truths, batch)
    network.ensure_training()
    B = network.backend
    layers = _trained_layers(network)
    saved = [(l, {k: B.to_numpy(v).copy() for k, v in l.params.items()
                  if k.startswith("rolling")})
             for l in network.layers if any(k.startswith("rolling") for k in l.params)]
    for layer in layers:
        for g in layer.grads.values():
            B.fill(g, 0)
    total = 0.0
    seen = network.seen
    try:
        for s in range(sub):
            rows = slice(s * mini, (s + 1) * mini)
            seen += mini
            total += _pass(network, images[rows], truths[rows])
    except PydarknetError:
        for layer, stats in saved:   # leave the rolling statistics as they were too
            for k, v in stats.items():
                B.copy_from_numpy(layer.params[k], v)
        raise
    network.seen = seen
    network.iteration += 1
    batch_num = network.seen // batch
    rate = learning_rate(net, batch_num, network.rng)
    network.learning_rate = rate
    for layer in layers:
        if layer.dont_update >= batch_num:
            continue
        if layer.burnin_update and layer.burnin_update * net.burn_in > batch_num:
            continue
        update_layer(B, layer, rate, net.momentum, net.decay, batch, net.loss_scale)
    return total / batch
