"""Layer outputs and deltas sharing memory: an array lives only while a layer still reads it,
and then its memory holds a later one.

Darknet keeps every layer's output for the whole pass (training needs them for backward);
an inference pass needs only the outputs still to be read. ``Network.predict`` runs with an
:class:`OutputPool`: the outputs read after the pass (the detection heads, softmax, the last
layer, and any the caller names) keep buffers of their own, the others take a slot of the
pool. At batch 1 an output that a [route] concatenates is written where the route's output
has it (:func:`concat_places`), so the route copies nothing and the two share memory; a
[shortcut] adds into its input where nothing else reads it (:meth:`OutputPool.dies_into`). At
416x416, batch 1, that is 8.4 MB of slots instead of 45 MB of outputs for yolov4-tiny, 56 MB
instead of 309 MB for yolov4.

A training iteration keeps every output (backward reads them) but not every delta: with
:class:`PooledDeltas` a delta takes a zeroed slot when a layer first writes it (a loss layer
in forward, or a later layer's backward) and gives it back once its own layer's backward has
run. Darknet allocates them all; the values are the same.

The CPU backend plans; a backend without ``view_at`` (CUDA for now) keeps one buffer per
layer.
"""

import numpy as np

from .layers.base import output_layer

# outputs that decode, classify and `pydarknet info` read after a pass
KEPT_TYPES = ("yolo", "gaussian_yolo", "region", "detection", "softmax")
KEPT = float("inf")     # the last reader of an output the caller reads after the pass


def last_readers(layers, keep=()):
    """For each layer, the index of the last layer whose forward reads its output (the next
    layer, and those that name it: route, shortcut, sam, scale_channels), or KEPT."""
    last = [i for i in range(len(layers))]
    for layer in layers:
        j = layer.index
        if j > 0:
            last[j - 1] = max(last[j - 1], j)
        for i in layer.reads():
            last[i] = max(last[i], j)
    kept = set(keep) | {len(layers) - 1}
    kept |= {l.index for l in layers if l.layer_type in KEPT_TYPES}
    kept.add(output_layer(layers))       # predict returns it
    for i in kept:
        last[i] = KEPT
    return last


class _Slot:
    def __init__(self, backend, size):
        self.backend = backend
        self.users = set()      # keys of the arrays living in it
        self.grow(size)

    def grow(self, size):
        self.array = self.backend.empty((size,))    # the old memory goes with its last view
        self.size = size
        self.start = self.backend.address(self.array)
        self.end = self.start + size * 4


class Slots:
    """Memory handed out as views and given back, kept from pass to pass: a key takes the
    slot it took in the last pass (the same sequence finds it free again, so passes after
    the first allocate nothing), else the smallest free slot that holds it, else the largest
    free one grown to it, else a new one."""

    def __init__(self, backend):
        self.backend = backend
        self.slots = []
        self.taken = {}

    def begin(self):
        for slot in self.slots:
            slot.users.clear()

    def nbytes(self):
        return sum(slot.size for slot in self.slots) * 4

    def take(self, key, shape):
        size = int(np.prod(shape, dtype=np.int64))
        slot = self.taken.get(key)
        if slot is not None and key in slot.users and slot.size >= size:
            # asked again in this pass: a concatenation whose inputs took its memory first
            return self.backend.view_at(slot.array, shape)
        if slot is None or slot.users or slot.size < size:
            free = [s for s in self.slots if not s.users]
            fits = [s for s in free if s.size >= size]
            if fits:
                slot = min(fits, key=lambda s: s.size)
            elif free:
                slot = max(free, key=lambda s: s.size)
                slot.grow(size)
            else:
                slot = _Slot(self.backend, size)
                self.slots.append(slot)
        slot.users.add(key)
        self.taken[key] = slot
        return self.backend.view_at(slot.array, shape)

    def holding(self, a):
        """The slot whose memory ``a`` is in (None: not pooled memory)."""
        if a.size == 0:
            return None
        address = self.backend.address(a)
        for slot in self.slots:
            if slot.start <= address < slot.end:
                return slot
        return None


def concat_places(layers, last):
    """{input index: (route index, offset)}: the outputs a batch-1 inference pass writes
    straight into the [route] that concatenates them, at ``offset`` values from its start,
    so that the route copies nothing. Each output goes to one route (the first that lists
    it); outputs read after the pass keep their own buffers, and a route that lists an
    input twice or takes groups is left to copy."""
    places = {}
    for route in layers:
        if (route.layer_type != "route" or route.groups != 1 or len(route.layers) < 2 or
                len(set(route.layers)) != len(route.layers)):
            continue
        offset = 0
        for i, size in zip(route.layers, route.sizes):
            if last[i] != KEPT and i not in places:
                places[i] = (route.index, offset)
            offset += size
    return places


class OutputPool(Slots):
    """The slots of one network's inference passes (``Network.predict``)."""

    def __init__(self, backend, layers, keep=()):
        super().__init__(backend)
        self.keep = tuple(keep)
        self.layers = layers
        self.last = last_readers(layers, keep)
        self.places = concat_places(layers, self.last)
        self.dies_after = [[] for _ in layers]
        for i, j in enumerate(self.last):
            if j != KEPT:
                self.dies_after[j].append(i)
        self.slot_of = {}       # live outputs' slots in this pass

    def kept(self, index):
        return self.last[index] == KEPT

    def place(self, index, shape):
        """(route layer, offset) when layer ``index``'s output of ``shape`` goes into a
        concatenation's memory (concat_places), else None. Batch 1 only: there an image's
        channels are one contiguous run of the route's output."""
        where = self.places.get(index)
        if where is None or shape[0] != 1:
            return None
        route, offset = where
        return self.layers[route], offset

    def in_place(self, src, src_offset, dst, dst_offset):
        """Whether batch-1 ``src`` from ``src_offset`` already is ``dst``'s memory from
        ``dst_offset`` (a copy between them would copy nothing)."""
        B = self.backend
        return (src.shape[0] == 1 and src.size > 0 and
                B.address(src) + 4 * src_offset == B.address(dst) + 4 * dst_offset)

    def dies_into(self, layer, x):
        """Whether ``layer`` may write its output over its input ``x``: the previous layer's
        output, read by no later layer, alone in its slot (no other output shares that
        memory) and not kept."""
        i = layer.index - 1
        if i < 0 or self.last[i] != layer.index:
            return False
        slot = self.holding(x)
        return slot is not None and slot.users == {i}

    def begin(self):
        super().begin()
        self.slot_of = {}

    def ran(self, layer, out, outputs):
        """After ``layer``'s forward returned ``out``: the slot ``out`` lives in (a layer may
        return its input, or a view of it) holds it, and the outputs whose last reader this
        was are released (``outputs[i]`` set to None, so that a stray read fails loudly)."""
        j = layer.index
        home = self.holding(out)
        for slot in self.slots:
            if slot is not home:
                slot.users.discard(j)
        if home is not None:
            home.users.add(j)
            self.slot_of[j] = home
        for i in self.dies_after[j]:
            slot = self.slot_of.pop(i, None)
            if slot is not None:
                slot.users.discard(i)
            outputs[i] = None


class PooledDeltas:
    """``state.deltas`` of a training pass whose backward gives each delta back after its
    layer's backward (``release``); a delta is taken, zeroed, at its first use."""

    def __init__(self, slots, layers, batch):
        self.slots = slots
        self.shapes = [layer.out_shape(batch) for layer in layers]
        self.arrays = [None] * len(layers)
        self.released = [False] * len(layers)
        slots.begin()

    def __len__(self):
        return len(self.arrays)

    def __getitem__(self, i):
        i = range(len(self.arrays))[i]
        if self.released[i]:
            raise RuntimeError(f"layer {i}'s delta was used after its backward had run")
        if self.arrays[i] is None:
            self.arrays[i] = self.slots.take(i, self.shapes[i])
            self.slots.backend.fill(self.arrays[i], 0)
        return self.arrays[i]

    def release(self, i):
        if self.arrays[i] is not None:
            self.slots.taken[i].users.discard(i)
            self.arrays[i] = None
        self.released[i] = True
