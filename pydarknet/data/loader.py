"""Parallel batch loading with prefetch, reproducible and resumable.

Sample ``k`` of batch ``b`` is drawn with its own ``numpy.random.Generator`` seeded from
``SeedSequence(seed, spawn_key=(b, k))``, so a batch's content depends only on the seed, its
number and the network size, never on thread timing. The loader's whole state is therefore
``{seed, position}``: ``get_state()`` / ``set_state()`` make a resumed run load exactly the
batches an uninterrupted run would have.

Worker threads (OpenCV and numpy release the GIL) build images straight into the batch arrays;
``prefetch`` batches are kept in flight. ``set_size(w, h)`` (Darknet's random=1 multi-scale)
drops the prefetched batches of the old size, as Darknet does, and goes on at the new one.

    loader = BatchLoader(dataset, batch=64, seed=1)
    images, truths = loader.next()        # float32 [64, C, H, W], [64, max_boxes, 6]
"""

import collections
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .classification import ClassificationDataset
from ..heads import detection_heads
from .detection import DetectionDataset
from ..errors import DataError, Problems
from ..labels import read_list

STATE_VERSION = 1


def default_threads():
    return max(1, min(8, os.cpu_count() or 1))


class BatchLoader:
    """Batches of ``dataset.sample`` at the current size.

    ``shuffle``: "random" (Darknet: every image drawn uniformly at random, with replacement)
    or "epoch" (each image once per pass over the list, in a seeded random order).
    ``seed=None`` draws a seed (kept in the state, so a resumed run still repeats).
    ``sequences=(streams, steps, speed)`` ([net] track=1, AB's get_sequential_paths): each
    pass of streams x steps rows holds ``streams`` runs of consecutive list entries, from
    random places, every one a random 1..speed entries after the last, rows step-major; the
    images of a pass share one augmentation.
    ``pairs=(jit_flip, colour)`` ([net] contrastive=1, AB's contrastive loading): rows 2k and
    2k+1 are two views of one image (with sequences: of one run). A detector's views share
    their flip and crop jitter unless ``jit_flip``, their colour change unless ``colour``;
    a classifier's are augmented each on its own, as AB's.
    """

    def __init__(self, dataset, batch, width, height, seed=None, threads=None, prefetch=2,
                 shuffle="random", shard=(0, 1), sequences=None, pairs=None):
        if shuffle not in ("random", "epoch"):
            raise ValueError("shuffle must be 'random' or 'epoch'")
        if batch < 1:
            raise ValueError(f"batch must be >= 1, found {batch}")
        rank, ranks = (int(v) for v in shard)
        if not 0 <= rank < ranks:
            raise ValueError(f"shard must be (rank, ranks) with 0 <= rank < ranks, found {shard}")
        self.dataset, self.batch = dataset, int(batch)
        # A data-parallel rank loads the rank-th contiguous share of the batch one process
        # with ranks x batch would draw: samples first..first+batch of every global batch.
        self.global_batch, self.first = self.batch * ranks, rank * self.batch
        self.width, self.height = int(width), int(height)
        self.seed = int(np.random.SeedSequence().entropy % (2 ** 63)) if seed is None \
            else int(seed)
        self.shuffle = shuffle
        self.sequences = None
        if sequences is not None:
            streams, steps, speed = (int(v) for v in sequences)
            if streams < 1 or steps < 1 or batch % (streams * steps):
                raise ValueError(f"sequences: {streams} streams x {steps} steps do not divide "
                                 f"the batch of {batch}")
            self.sequences = (streams, steps, max(speed, 1))
        self.pairs = None
        if pairs is not None:
            if self.global_batch % 2 or self.first % 2 or (sequences and streams % 2):
                raise ValueError(f"pairs: the batch of {batch} (and its share and streams) "
                                 f"must be even to hold two views of each image")
            self.pairs = tuple(bool(v) for v in pairs)
        self.threads = int(threads or default_threads())
        self.prefetch = max(1, int(prefetch))
        self.position = 0                 # batches handed out so far
        self._pending = collections.deque()
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="pydarknet-data")
        self._lock = threading.Lock()
        self._perms = {}
        self._closed = False

    # -- public API ---------------------------------------------------------------------------
    @property
    def problems(self):
        return self.dataset.problems

    @property
    def size(self):
        return self.width, self.height

    def next(self):
        """The next batch: (images float32 [batch, C, H, W], truths float32 [batch, ...])."""
        if self._closed:
            raise RuntimeError("the loader is closed")
        self._fill()
        b, size, images, truths, futures = self._pending.popleft()
        for f in futures:
            f.result()        # re-raises a worker's DataError here
        self.position = b + 1
        self._fill()
        return images, truths

    __next__ = next

    def __iter__(self):
        return self

    def set_size(self, width, height):
        """Load the following batches at width x height (drops the prefetched ones)."""
        width, height = int(width), int(height)
        if (width, height) != (self.width, self.height):
            self.width, self.height = width, height
            self._drop()

    def set_batch(self, batch):
        """Load the following batches with ``batch`` images (Darknet's dynamic_minibatch;
        drops the prefetched ones)."""
        batch = int(batch)
        if batch < 1:
            raise ValueError(f"batch must be >= 1, found {batch}")
        if batch != self.batch:
            if self.sequences:      # as many more streams, each as long
                streams, steps, speed = self.sequences
                self.sequences = (max(streams * batch // self.batch, 1), steps, speed)
            rank, ranks = self.first // self.batch, self.global_batch // self.batch
            self.batch, self.global_batch, self.first = batch, batch * ranks, rank * batch
            self._drop()

    def get_state(self):
        """What resumes this loader exactly (JSON-serialisable)."""
        return {"version": STATE_VERSION, "seed": self.seed, "position": self.position,
                "shuffle": self.shuffle, "batch": self.batch, "images": len(self.dataset),
                "global_batch": self.global_batch}

    def set_state(self, state):
        self._drop()
        self.seed = int(state["seed"])
        self.position = int(state["position"])
        self.shuffle = state.get("shuffle", self.shuffle)
        self._perms.clear()

    def close(self):
        if not self._closed:
            self._closed = True
            self._drop()
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if not self._closed:
                self._closed = True
                self._pool.shutdown(wait=False, cancel_futures=True)
        except Exception:
            pass

    # -- internals ----------------------------------------------------------------------------
    def rng(self, b, k):
        """The generator of sample k of batch b."""
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(b, k)))

    def _pair_rng(self, b, pair, what):
        """The generator both views of a pair share: its image (0), jitter (1), colour (2)."""
        return np.random.default_rng(np.random.SeedSequence(self.seed,
                                                            spawn_key=(b, 2 ** 29, pair, what)))

    def _index(self, b, k):
        """The image of sample k of batch b (None: the dataset draws it at random); with
        pairs, the image of pair k // 2."""
        per_batch = self.global_batch
        if self.pairs:
            k, per_batch = k // 2, per_batch // 2
            if self.shuffle == "random":
                return int(self._pair_rng(b, k, 0).integers(len(self.dataset)))
        if self.shuffle == "random":
            return None              # the dataset draws it from the sample's generator
        m = len(self.dataset)
        n = b * per_batch + k
        epoch = n // m
        with self._lock:
            perm = self._perms.get(epoch)
            if perm is None:
                rng = np.random.default_rng(np.random.SeedSequence(self.seed,
                                                                   spawn_key=(2 ** 31, epoch)))
                perm = rng.permutation(m)
                self._perms = {e: p for e, p in self._perms.items() if e >= epoch - 1}
                self._perms[epoch] = perm
        return int(perm[n % m])

    def _sequence_place(self, b, g):
        """(index, the pass's augmentation generator) of sample g of batch b in sequences."""
        streams, steps, speed = self.sequences
        pass_, row = divmod(g, streams * steps)
        step, stream = divmod(row, streams)
        draws = np.random.default_rng(np.random.SeedSequence(self.seed,
                                                             spawn_key=(b, 2 ** 30, pass_)))
        starts = draws.integers(len(self.dataset), size=streams)
        if self.pairs:                           # stream 2k+1 repeats stream 2k
            starts[1::2] = starts[0::2]
        gap = int(draws.integers(1, speed + 1))
        aug = np.random.default_rng(np.random.SeedSequence(self.seed,
                                                           spawn_key=(b, 2 ** 30 + 1, pass_)))
        return int((starts[stream] + step * gap) % len(self.dataset)), aug

    def _load_one(self, b, k, w, h, images, truths):
        g = self.first + k                      # the sample's place in the global batch
        if self.sequences:
            index, aug = self._sequence_place(b, g)
            self.dataset.sample(self.rng(b, g), w, h, index=index, image_out=images[k],
                                truth_out=truths[k], aug_rng=aug)
            return
        if self.pairs and self.dataset.kind == "detection":
            jitter = None if self.pairs[0] else self._pair_rng(b, g // 2, 1)
            colour = None if self.pairs[1] else self._pair_rng(b, g // 2, 2)
            self.dataset.sample(self.rng(b, g), w, h, index=self._index(b, g),
                                image_out=images[k], truth_out=truths[k],
                                shared=(jitter, colour))
            return
        self.dataset.sample(self.rng(b, g), w, h, index=self._index(b, g),
                            image_out=images[k], truth_out=truths[k])

    def _submit(self, b):
        w, h = self.width, self.height
        images = np.empty((self.batch, self.dataset.channels, h, w), np.float32)
        truths = np.zeros((self.batch,) + tuple(self.dataset.truth_shape), np.float32)
        futures = [self._pool.submit(self._load_one, b, k, w, h, images, truths)
                   for k in range(self.batch)]
        self._pending.append((b, (w, h), images, truths, futures))

    def _fill(self):
        nxt = self._pending[-1][0] + 1 if self._pending else self.position
        while len(self._pending) < self.prefetch + 1:
            self._submit(nxt)
            nxt += 1

    def _drop(self):
        while self._pending:
            *_, futures = self._pending.pop()
            for f in futures:
                f.cancel()
        # running samples finish into arrays nobody keeps


def make_loader(network, paths, seed=None, labels=None, threads=None, prefetch=2,
                shuffle="random", augment=True, problems=None, shard=None, **overrides):
    """A ``BatchLoader`` for a built network: a detector (it has [yolo]/[region] layers) gets a
    ``DetectionDataset``, anything else a ``ClassificationDataset`` (``labels``: the class
    names). ``paths``: a list of image paths or the path of a list file. Batches hold
    ``net.batch`` images (all subdivisions of one iteration) at the network's current size;
    ``shard=(rank, ranks)``: this rank's share of what one loader with ranks x batch loads
    (default: the network's data-parallel rank, ``network.parallel``)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = read_list(os.fspath(paths))
    problems = problems if problems is not None else Problems()
    if detection_heads(network):
        ds = DetectionDataset.from_network(network, paths, augment=augment, problems=problems,
                                           **overrides)
    else:
        if labels is None:
            raise DataError("a classifier needs its class names (the .data file's labels=)")
        if isinstance(labels, (str, os.PathLike)):
            labels = read_list(os.fspath(labels), what="labels file")
        ds = ClassificationDataset.from_network(network, paths, labels, augment=augment,
                                                problems=problems, **overrides)
    n = network.net
    if shard is None:
        parallel = getattr(network, "parallel", None)
        shard = (parallel.rank, parallel.size) if parallel else (0, 1)
    steps = max(n.time_steps, 1)        # a pass is mini_batch sequences of time_steps rows
    sequences = (n.mini_batch, steps, n.augment_speed) if n.track else None
    pairs = (n.contrastive_jit_flip, n.contrastive_color) if n.contrastive else None
    return BatchLoader(ds, n.subdivisions * n.mini_batch * steps, n.width, n.height,
                       seed=seed, threads=threads, prefetch=prefetch, shuffle=shuffle,
                       shard=shard, sequences=sequences, pairs=pairs)
