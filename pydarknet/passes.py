"""One pass through a network: the state every layer sees and the layer loop, written once.

``Network.forward`` (inference or training mode), Darknet's training iteration and the tests
all run a pass through :func:`forward_pass` and, for training, :func:`backward_pass`.
"""

import time

import numpy as np

from .errors import PydarknetError, ShapeError
from .heads import DETECTION_HEADS
from .output_pool import PooledDeltas


class PassState:
    """What layers see while running: the backend, the input, every earlier layer's output,
    and in training mode the truths, the deltas (zeroed for each pass), and the network's RNG
    (dropout). ``buffers`` holds the arrays layers reuse from pass to pass."""

    def __init__(self, backend, x, train=False, truth=None, network=None, pool=None,
                 delta_slots=None, seen=None):
        self.backend = backend
        self.input = x
        self.outputs = []
        self.train = train
        self.truth = truth
        self.deltas = None
        self.rng = self.net_w = self.net_h = None
        self.seen = seen or 0     # images seen, this pass's included (Darknet's *net.seen)
        self.iteration = self.max_batches = 0   # updates so far; the cfg's max_batches
        self.loss_scale = 1.0
        self.buffers = {}
        self.pool = pool        # an inference pass's OutputPool (pydarknet.output_pool)
        self.network = network    # what a loss reads of other layers ([contrastive])
        self.input_delta = None   # where backward adds the network input's delta, if wanted
        self.frozen_below = -1    # training: convolutions before it run as at inference
        if network is None:       # a lone layer's pass (tests)
            return
        if train:
            self.frozen_below = frozen_by_stopbackward(network)
        self.rng = network.rng
        self.seen = network.seen if seen is None else seen
        self.iteration, self.max_batches = network.iteration, network.net.max_batches
        self.net_w, self.net_h = network.net.width, network.net.height
        self.loss_scale = network.net.loss_scale
        self.buffers = network._buffers
        n = x.shape[0]
        if train and delta_slots is not None:     # zeroed as they are taken
            self.deltas = PooledDeltas(delta_slots, network.layers, n)
        elif train:   # every delta starts at zero in each pass (-gpusem fix 1)
            self.deltas = [self.output_buffer(layer, layer.out_shape(n), "delta")
                           for layer in network.layers]
            for delta in self.deltas:
                backend.fill(delta, 0)

    def output_buffer(self, layer, shape, name="output", dtype=np.float32):
        """An array of the layer's, reused from pass to pass (fresh pages cost as much as a
        convolution's arithmetic on these machines): its output, or scratch named ``name``."""
        if self.pool is not None and name == "output":
            place = self.pool.place(layer.index, shape)
            if place is not None:                  # in the route that concatenates it
                route, offset = place
                whole = self.output_buffer(route, route.out_shape(1))
                return self.backend.view_at(whole, shape, offset)
            if not self.pool.kept(layer.index):
                return self.pool.take(layer.index, shape)
        key = (layer.index, name)
        buf = self.buffers.get(key)
        if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype:
            buf = self.backend.empty(shape, dtype)
            self.buffers[key] = buf
        return buf

    def copy_to_buffer(self, layer, name, array):
        buf = self.output_buffer(layer, array.shape, name)
        self.backend.copy(buf, array)
        return buf

    def host_buffer(self, layer, shape, name):
        """A float32 numpy array of the layer's, reused from pass to pass: host-side work
        whose result then goes to a backend array (a loss's delta on a device backend)."""
        key = (layer.index, name, "host")
        buf = self.buffers.get(key)
        if buf is None or buf.shape != tuple(shape):
            buf = self.buffers[key] = np.empty(shape, np.float32)
        return buf

    def host_result(self, layer, array, name="output"):
        """A numpy result computed on the host (losses, rare layers) placed in a backend
        buffer of the layer's."""
        buf = self.output_buffer(layer, array.shape, name)
        self.backend.copy_from_numpy(buf, np.ascontiguousarray(array, np.float32))
        return buf

    def add_host_delta(self, dst, host_delta):
        """dst (a backend delta buffer) += a numpy array of its size."""
        B = self.backend
        h = B.to_numpy(dst)            # the CPU backend returns dst itself: updated in place
        h += host_delta.reshape(h.shape)
        B.copy_from_numpy(dst, h)


class HostArrays:
    """A read-only sequence of backend arrays seen as numpy arrays, copied from the device on
    first access (on the CPU backend: the arrays themselves)."""

    def __init__(self, backend, arrays, pooled=False):
        self._backend, self._arrays = backend, list(arrays)
        self._host = [None] * len(self._arrays)
        self._pooled = pooled      # None marks an output predict() did not keep

    def __len__(self):
        return len(self._arrays)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        i = range(len(self))[i]
        if self._pooled and self._arrays[i] is None:
            raise PydarknetError(
                f"layer {i}'s output was not kept: predict() keeps only the outputs read after "
                f"it (detection heads, softmax, the last layer) and reuses the others' memory; "
                f"pass keep=[{i}] to predict, or run forward(x) to keep every layer's output")
        if self._host[i] is None and self._arrays[i] is not None:
            self._host[i] = self._backend.to_numpy(self._arrays[i])
        return self._host[i]

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def forward_pass(network, x, train=False, truth=None, check_finite=False, pool=None,
                 delta_slots=None, seen=None, input_delta=None, layer_seconds=None):
    """Every layer's forward on ``x`` (a backend array); returns the pass's state. With
    ``check_finite`` a layer output holding NaN or inf stops the pass with the layer named.
    With an OutputPool (inference) the outputs not kept share its memory; with delta
    ``Slots`` (training) the deltas do, and ``network.deltas`` is not kept. ``seen``: the
    images seen with this pass's (default ``network.seen``), for losses that depend on it.
    ``input_delta``: a backend array of x's shape that backward adds x's delta into (by
    default it computes none). ``layer_seconds``, a list, receives each layer's time (the
    device synchronised after each: for profiling only)."""
    B = network.backend
    state = PassState(B, x, train, truth, network, pool, delta_slots, seen)
    state.input_delta = input_delta
    if pool is not None:
        pool.begin()
    out = x
    for layer in network.layers:
        if layer_seconds is not None:
            t0 = time.perf_counter()
        out = layer.forward(out, state)
        if layer_seconds is not None:
            B.synchronize()
            layer_seconds.append(time.perf_counter() - t0)
        if check_finite and not B.all_finite(out):
            raise PydarknetError(
                f"layer {layer.index} ({layer.layer_type}) produced NaN or inf at iteration "
                f"{network.iteration + 1}; weights are left as they were before it")
        state.outputs.append(out)
        if pool is not None:
            pool.ran(layer, out, state.outputs)
    network.outputs = HostArrays(B, state.outputs, pool is not None)
    if train:
        network.deltas = None if delta_slots is not None else HostArrays(B, state.deltas)
    return state


def frozen_by_stopbackward(network):
    """The last layer with ``stopbackward=1`` (-1: none). AB's training parse freezes every
    layer before it (``train=0``): no backward, no update, and its convolutions run their
    forward as at inference (batch norm on the rolling statistics, which stay as they are).
    Other values N stop the backward there only for the first N iterations."""
    return max((l.index for l in network.layers if l.stopbackward == 1), default=-1)


def frozen_up_to(network):
    """The index of the last layer with ``train_only_bn`` (-1: none): AB's GPU build gives the
    option to every earlier layer too and updates none of them."""
    return max((l.index for l in network.layers if l.train_only_bn), default=-1)


def backward_pass(network, state, layer_seconds=None):
    """Every layer's backward, last to first, as AB's backward_network_gpu: it ends before a
    layer with ``stopbackward=1``, or ``stopbackward=N`` during the first N iterations (the
    layers below then get no gradient: AB's yolov4-custom.cfg trains only its head for 800
    iterations); ``onlyforward`` layers pass nothing back (but [empty] and [dropout], whose
    delta is their input's in AB's builds, pass theirs unchanged). It also ends at the last
    ``train_only_bn`` layer: nothing from there down is updated (AB's GPU build runs their
    backward for nothing), unless the pass wants the input's delta. ``layer_seconds``, a
    dict, receives each layer's time by index (as forward_pass's)."""
    pooled = isinstance(state.deltas, PooledDeltas)
    frozen = -1 if state.input_delta is not None else frozen_up_to(network)
    B = network.backend
    for layer in reversed(network.layers):
        if layer.stopbackward == 1 or layer.stopbackward > network.iteration or \
                layer.index <= frozen:
            break
        if not layer.onlyforward:
            t0 = time.perf_counter() if layer_seconds is not None else 0.0
            layer.backward(state)
            if layer_seconds is not None:
                B.synchronize()
                layer_seconds[layer.index] = time.perf_counter() - t0
        elif layer.shares_input_delta:
            layer.pass_delta_unchanged(state)
        if pooled:      # no earlier layer writes this delta
            state.deltas.release(layer.index)


def pass_cost(network):
    """Darknet's cost of the last pass: the mean over the layers that have a cost."""
    costs = [layer.cost or 0.0 for layer in network.layers if hasattr(layer, "cost")]
    return sum(costs) / len(costs) if costs else 0.0


def check_truths(network, truths, batch):
    """Validate the truths of ``batch`` images: shape, dtype, classes and boxes. Detector
    truths [N, max_boxes, 5] get a zero track-id column (Darknet's truth_size 6)."""
    if not isinstance(truths, np.ndarray):
        raise ShapeError(f"truths must be a numpy float32 array, found {type(truths).__name__}")
    if truths.dtype != np.float32:
        raise ShapeError(f"truths must be float32, found {truths.dtype}")
    if truths.shape[0] != batch:
        raise ShapeError(f"truths must hold {batch} rows (one per image), found {truths.shape[0]}")
    heads = [l for l in network.layers if l.layer_type in DETECTION_HEADS]
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
    # a softmax tree's [region] takes classification-only images: a box at x, y > 100000
    only_class = any(getattr(l, "tree", None) for l in heads)
    for b in range(batch):
        for k, box in enumerate(truths[b]):
            x, y, w, h, c = (float(v) for v in box[:5])
            if x == 0:
                break
            if only_class and x > 100000 and y > 100000 and np.isfinite(box[:5]).all():
                pass
            elif not (0 <= x <= 1 and 0 <= y <= 1) or not (0 < w <= 1 and 0 < h <= 1) or \
                    not np.isfinite(box[:5]).all():
                raise ShapeError(f"image {b}, box {k}: x={x:g} y={y:g} w={w:g} h={h:g}: boxes "
                                 f"need x, y in [0, 1] and 0 < w, h <= 1 (relative to the image)")
            if c != int(c) or not 0 <= c < classes:
                raise ShapeError(f"image {b}, box {k}: class {c:g} is outside 0..{classes - 1}")
    return np.ascontiguousarray(truths)
