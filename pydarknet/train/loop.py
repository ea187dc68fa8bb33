"""`pydarknet train`: Darknet's train_detector / train_classifier loop.

Iterations until max_batches, Darknet's console line, a JSON-lines log, chart.png, multi-scale
resizing (random=1), mAP (--map; a classifier's top-k, --topk) on the valid list with
<cfg>_best.weights, checkpoints (<cfg>_last every 100 iterations, <cfg>_N every 1000 or 10000,
<cfg>_final), SIGINT/SIGTERM saving _last, and exact resumption from a checkpoint's sidecar
state.

Under ``mpiexec -n N`` (pydarknet.dist) every rank runs this loop on its share of each
iteration's images; rank 0 alone prints, writes the log, the chart and checkpoints and runs
the mAP; a stop asked for on any rank stops all at the same iteration, and an error on one
rank aborts them all with its message.
"""

import json
import math
import os
import signal
import time
import traceback

from ..dist import DataParallel, get_world
from ..dist.reduce import broadcast_parameters
from ..errors import PydarknetError
from ..heads import MULTISCALE_HEADS, is_detector
from ..http_stream import MjpegServer
from ..network import Network
from .chart import chart_image, draw_chart
from .head_stats import head_lines
from .iteration import LayerSeconds
from .show_imgs import save_training_images
from .checkpoint import load_checkpoint_state, save_checkpoint


class Stop(Exception):
    pass


def darknet_basecfg(cfg):
    """The checkpoints' base name as Darknet's basecfg: the cfg's file name up to its first
    '.' (yolo.train.cfg: yolo_last.weights)."""
    name = os.path.basename(str(cfg))
    return name.split(".", 1)[0] if "." in name else name


def _scaled_size(net, init_w, init_h, scale):
    """roundl(scale * init / resize_step + 1) steps, never above init for scales below 1."""
    step = net.resize_step or 32
    dim_w = int(math.floor(scale * init_w / step + 1 + 0.5)) * int(step)   # roundl
    dim_h = int(math.floor(scale * init_h / step + 1 + 0.5)) * int(step)
    if scale < 1 and (dim_w > init_w or dim_h > init_h):
        dim_w, dim_h = init_w, init_h
    return max(dim_w, int(step)), max(dim_h, int(step))


def _coef(random_coef):
    return 1.4 if random_coef == 1.0 else random_coef


def multiscale_size(rng, net, init_w, init_h, random_coef, largest=False):
    """Darknet's random=1 resize: a random scale in [1/coef, coef] (rand_scale), as
    roundl(scale * init / resize_step + 1) steps, never above init for scales below 1; with
    ``largest`` the size for the scale coef itself (Darknet's max_dim_w/h)."""
    coef = _coef(random_coef)
    scale = float(rng.uniform(1, coef))
    if rng.integers(2):
        scale = 1 / scale
    if largest:
        scale = coef
    return _scaled_size(net, init_w, init_h, scale)


def dynamic_mini_batch(net, init_w, init_h, random_coef, init_b, w, h):
    """Darknet's dynamic_minibatch=1: the mini-batch at w x h, so that it holds about as many
    pixels as ``init_b`` images at the largest size: init_b * largest area / area, times 0.8
    where that still exceeds init_b."""
    max_w, max_h = _scaled_size(net, init_w, init_h, _coef(random_coef))
    b = init_b * max_w * max_h // (w * h)
    return int(b * 0.8) if int(b * 0.8) > init_b else b


class Trainer:
    """One training run. ``loader`` yields (images, truths) batches for the network's size."""

    # Darknet's "Loaded: S seconds" line before each iteration (train_detector's and
    # train_classifier's; the char-RNN's has none and counts the data in its seconds)
    loaded_line = True

    def __init__(self, cfg, loader_factory, weights=None, clear=False, backup="backup",
                 seed=None, map_fn=None, map_every=None, log=print, max_batches=None,
                 last_every=100, device="cpu", world=None, sync="sum", save_every=None,
                 metric="mAP@0.5", eval_epochs=4, chart=None, show_imgs=None,
                 mjpeg_port=None, benchmark_layers=False):
        self.world = world = world or get_world()
        self.root = world.is_root
        if world.size > 1 and seed is None:       # every rank must draw from one seed
            seed = world.broadcast(int.from_bytes(os.urandom(4), "little"))
        self.net = Network(cfg, seed=0 if seed is None else seed, device=device)
        if world.size > 1:
            self.net.parallel = DataParallel(world, sync)
        self.base = darknet_basecfg(cfg)
        self.backup = backup
        if self.root:
            os.makedirs(backup, exist_ok=True)
        self.log = log if self.root else (lambda *a, **k: None)
        self.last_every = last_every
        self.save_every = save_every
        self.map_fn = map_fn          # the accuracy measured as training goes (mAP or top-k)
        self.map_every = map_every
        self.metric, self.eval_epochs = metric, eval_epochs
        self.chart_path = chart or os.path.join(backup, "chart.png")
        self.show_imgs = show_imgs      # a folder for each iteration's training images
        # Darknet's -mjpeg_port: the chart as an MJPEG stream, every iteration (from run())
        self.mjpeg_port = mjpeg_port if mjpeg_port is not None and mjpeg_port > 0 else None
        self.benchmark_layers = benchmark_layers
        self.chart_stream = None
        self.history = []
        self.avg_loss = -1.0
        self.avg_contrastive = 0.0     # AB's avg_contrastive_acc (from 0, as AB's)
        self.best_map = None
        self.max_batches = max_batches or self.net.net.max_batches
        resume = None
        if weights:
            header = self.net.load_weights(weights, allow_partial=True)
            if header.layers_loaded < len(self.net.layers):
                log(f"loaded the first {header.layers_loaded} layers of {weights} (backbone)")
            if clear:
                self.net.seen = self.net.iteration = 0
            else:
                resume = load_checkpoint_state(self.net, weights)
        broadcast_parameters(self.net, world)
        self.init_w, self.init_h = self.net.net.width, self.net.net.height
        self.init_b = self.net.net.mini_batch
        self.loader = loader_factory(self.net, seed)
        if resume:
            self.avg_loss = resume.get("avg_loss", -1.0)
            self.history = resume.get("history", [])
            self.best_map = resume.get("best_map")
            if resume.get("loader") is not None and hasattr(self.loader, "set_state"):
                self.loader.set_state(resume["loader"])
            size = resume.get("size")
            if size:
                self._train_at(*size)
        if resume and resume.get("mini_batch"):     # dynamic_minibatch's, when it stopped
            self._set_mini_batch(resume["mini_batch"], reset_seen=False)
        self.count = 0 if not resume else resume.get("count", 0)
        self._stop = False
        self.log_path = os.path.join(backup, f"{self.base}_train.jsonl")
        if resume and self.root:
            self._forget_logged_after(self.net.iteration)

    def _forget_logged_after(self, iteration):
        """A resumed run logs again the iterations its checkpoint did not keep (a run killed
        at 228 resumes from _last at 200): drop the old lines past the checkpoint."""
        if not os.path.exists(self.log_path):
            return
        with open(self.log_path) as f:
            lines = f.readlines()
        kept = [line for line in lines if line.strip()
                and json.loads(line).get("iteration", 0) <= iteration]
        if len(kept) != len(lines):
            tmp = f"{self.log_path}.tmp{os.getpid()}"
            with open(tmp, "w") as f:
                f.writelines(kept)
            os.replace(tmp, self.log_path)

    # -- checkpoints ---------------------------------------------------------------------
    def _extra(self):
        return {"avg_loss": self.avg_loss, "history": self.history[-5000:],
                "best_map": self.best_map, "count": self.count,
                "size": [self.net.net.width, self.net.net.height],
                "mini_batch": self.net.net.mini_batch,
                "loader": self.loader.get_state() if hasattr(self.loader, "get_state") else None}

    def save(self, name):
        """Rank 0 writes the checkpoint (every rank can resume from it); returns its path.
        Under --sync darknet every rank first takes the ranks' mean weights, as AB's
        sync_nets before each save (not before _best, which rank 0 alone writes, as AB)."""
        path = self.checkpoint_path(name)
        parallel = self.net.parallel
        if name != "best" and parallel is not None and parallel.sync == "darknet":
            parallel.average_weights(self.net)
        if self.root:
            save_checkpoint(self.net, path, self._extra())
            if name == "last" and self.net.ema is not None:     # as Darknet, beside _last
                ema = os.path.join(self.backup, f"{self.base}_ema.weights")
                self.net.save_weights(ema, replace=self.net.ema.arrays)
        return path

    def checkpoint_path(self, name):
        """Where checkpoint ``name`` ("last", "final", "best", an iteration) goes."""
        return os.path.join(self.backup, f"{self.base}_{name}.weights")

    def _contrastive(self, net, record):
        """A [contrastive] layer's accuracy of the iteration's last pass and AB's running
        average of it, for the console line ('' without one)."""
        layer = next((l for l in net.layers if l.layer_type == "contrastive"
                      and getattr(l, "stats", None)), None)
        if layer is None or layer.stats.get("accuracy", -1) < 0:
            return ""
        record["contrastive_accuracy"] = accuracy = layer.stats["accuracy"]
        self.avg_contrastive = self.avg_contrastive * 0.99 + accuracy * 0.01
        return f", contrastive accuracy {accuracy}% (avg {self.avg_contrastive:.2f}%)"

    def progress_line(self, record):
        """The console line of one iteration (Darknet's train_detector's)."""
        return (f" {record['iteration']}: {record['loss']:f}, {record['avg_loss']:f} avg loss, "
                f"{record['rate']:f} rate, {record['seconds']:f} seconds, {record['images']} "
                f"images, {record['hours_left']:f} hours left")

    def _chart(self, to_file=True):
        """The chart into its file (``to_file``) and to the MJPEG stream's clients."""
        stream = self.chart_stream
        if not self.root or not (to_file or stream is not None and stream.client_count):
            return
        args = (self.history, self.max_batches, self.base, self.metric)
        img = draw_chart(self.chart_path, *args) if to_file else chart_image(*args)
        if stream is not None:
            stream.write(img)

    def _train_iteration(self, images, truths, timed):
        """One iteration; where it fails (NaN or inf), a single-process run first saves _last:
        the network as it was before that iteration, to resume from (with a lower rate or
        cleaner data), unless the update before already made its parameters NaN or inf.
        (Several ranks end together instead: a save would wait for the others.)"""
        try:
            return self.net.train_iteration(images, truths, timed)
        except PydarknetError as e:
            if self.world.size > 1:
                raise
            B = self.net.backend
            bad = [f"layer {l.index} {k}" for l in self.net.layers
                   for k, v in l.params.items() if not B.all_finite(v)]
            if bad:
                last = self.checkpoint_path("last")
                raise PydarknetError(
                    f"{e}; the update of iteration {self.net.iteration} had already made "
                    f"{bad[0]} NaN or inf (the learning rate too high?): nothing saved; "
                    + (f"resume from {last}" if os.path.exists(last) else
                       "no checkpoint to resume from yet")) from None
            path = self.save("last")
            raise PydarknetError(f"{e}; saved {path} (iteration {self.net.iteration}) to "
                                 f"resume from") from None

    def _on_signal(self, signum, frame):
        self._stop = True

    # -- the loop ------------------------------------------------------------------------
    def _darknet_map_every(self):
        """AB's train_detector: every 4 epochs of the training list, at least every 100
        iterations; its train_classifier: every 2 epochs (:meth:`_first_map` floors it)."""
        images = len(getattr(self.loader, "dataset", ()) or ())
        n = self.net.net
        batch = n.subdivisions * n.mini_batch * max(n.time_steps, 1)
        every = self.eval_epochs * images // max(batch, 1)
        return max(every, 100) if is_detector(self.net) else every

    def _first_map(self):
        """The earliest iteration of a measurement: after burn_in, and for a classifier's
        top-k (AB's train_classifier, its 100 an iteration, not an interval) after 100."""
        floor = self.net.net.burn_in
        if self.map_every is None and not is_detector(self.net):
            floor = max(floor, 100)
        return floor

    def run(self):
        """Train to max_batches; returns the final (or, when stopped, _last) checkpoint."""
        if self.mjpeg_port is not None and self.root:
            self.chart_stream = MjpegServer(self.mjpeg_port, quality=70)
            self.log(f"the chart streams on http://localhost:{self.chart_stream.port}")
        try:
            return self._run()
        except Exception as e:       # one rank failing must not leave the others waiting
            if self.world.size > 1:
                self.world.abort(f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
            raise
        finally:
            if self.chart_stream is not None:
                self.chart_stream.close()
                self.chart_stream = None

    def _run(self):
        net, opts = self.net, self.net.net
        if net.iteration >= self.max_batches:     # Darknet still writes _final
            path = self.save("final")
            self.log(f"{self.base}: already trained to iteration {net.iteration} (max_batches="
                     f"{self.max_batches}): saved {path} as it is; raise max_batches or use "
                     f"--clear to train on")
            return path
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        # Darknet reads random= from the last [yolo]/[Gaussian_yolo]/[region] layer
        heads = [l for l in net.layers if l.layer_type in MULTISCALE_HEADS]
        random_coef = float(getattr(heads[-1], "random", 0)) if heads else 0.0
        # Darknet: a detector's numbered weights every 1000 iterations (10000 from
        # max_batches 10000 on, or the .data file's saveweights=), a classifier's every 1000
        detector = is_detector(net)
        save_every = self.save_every or (10000 if self.max_batches >= 10000 and detector
                                         else 1000)
        map_every = self.map_every or self._darknet_map_every()
        first_map = self._first_map()
        start, first = time.time(), net.iteration
        last_map = saved = saved_last = net.iteration
        try:
            while net.iteration < self.max_batches:
                if random_coef and self.count % 10 == 0:
                    # Darknet: the largest size at the start (no average loss yet: is there
                    # memory enough?) and in the last 100 iterations (the rolling statistics)
                    largest = self.avg_loss < 0 or net.iteration > self.max_batches - 100
                    w, h = multiscale_size(net.rng, opts, self.init_w, self.init_h,
                                           random_coef, largest)
                    w, h = self.world.broadcast((w, h))     # rank 0's choice for all
                    self._train_at(w, h)
                    if opts.dynamic_minibatch:
                        b = dynamic_mini_batch(opts, self.init_w, self.init_h, random_coef,
                                               self.init_b, w, h)
                        if opts.contrastive:    # whole pairs of views in each mini-batch
                            b = max(b - b % 2, 2)
                        self._set_mini_batch(b)
                        self.log(f" {w} x {h}  (batch = {net.net.mini_batch})")
                self.count += 1
                t0 = time.time()
                images, truths = self.loader.next()
                load = time.time() - t0
                if self.loaded_line:    # then the iteration line's seconds are the training's
                    self.log(f"Loaded: {load:f} seconds" + (
                        " - performance bottleneck on CPU or Disk HDD/SSD"
                        if load > 0.1 and self.avg_loss > 0 and detector else ""))
                    t0 = time.time()
                if self.show_imgs is not None and self.root:
                    save_training_images(images, truths, net.iteration + 1, self.show_imgs,
                                         getattr(heads[-1], "classes", None) if heads else None)
                # -benchmark_layers: the layers of this run's second iteration (the first
                # one warms up), timed
                timed = LayerSeconds(net.layers) if (self.benchmark_layers and self.root and
                                                     net.iteration == first + 1) else None
                loss = self._train_iteration(images, truths, timed)
                dt = time.time() - t0
                if timed is not None:
                    self.log(timed.table())
                if hasattr(self.loader, "after_iteration"):    # e.g. the text streams' jumps
                    self.loader.after_iteration()
                if self.avg_loss < 0 or not math.isfinite(self.avg_loss):
                    self.avg_loss = loss
                self.avg_loss = self.avg_loss * 0.9 + loss * 0.1
                it = net.iteration
                done = it - first
                left = (self.max_batches - it) * (time.time() - start) / max(done, 1) / 3600
                record = {"iteration": it, "loss": loss, "avg_loss": self.avg_loss,
                          "rate": net.learning_rate, "seconds": dt, "load_seconds": load,
                          "images": net.seen,
                          "hours_left": left, "size": [net.net.width, net.net.height]}
                suffix = self._contrastive(net, record) + self._data_problems(record)
                head_stats = getattr(net, "head_stats", None)
                if head_stats:
                    record["heads"] = head_stats
                    for line in head_lines(net, head_stats):
                        self.log(line)
                if net.ema is not None and net.ema.event:
                    self.log(f" {net.ema.event}")
                for index, k, j, sim in getattr(net, "rejected_filters", ()):
                    self.log(f" reject_similar_weights: layer {index}, filter {k} drawn again "
                             f"(cosine similarity {sim:.4f} with filter {j})")
                self.log(self.progress_line(record) + suffix)
                # Darknet: mAP every map_every iterations from the last (or the start), not
                # before burn_in, and at the end
                due = it >= max(last_map + map_every, first_map) or it == self.max_batches
                if self.map_fn and self.root and due:
                    record["map"] = self._evaluate()
                    last_map = it
                if self.map_fn and due and random_coef:
                    # Darknet trains on at the initial size (and mini-batch) after a mAP,
                    # until the next resize
                    self._initial_size()
                self.history.append({k: record[k] for k in ("iteration", "avg_loss")
                                     if k in record} | ({"map": record["map"]}
                                                        if "map" in record else {}))
                if self.root:
                    with open(self.log_path, "a") as f:
                        f.write(json.dumps(record) + "\n")
                self._chart(it % 10 == 0 or it == self.max_batches or "map" in record)
                # Darknet's rule: a multiple of the interval, or an interval since the last
                # save (a step of N ranks under --sync darknet moves N iterations on and can
                # step over every multiple)
                if it >= saved + save_every or it % save_every == 0:
                    saved = it
                    self.save(str(it))
                if save_every > self.last_every and (it >= saved_last + self.last_every or
                                                     it % self.last_every == 0 and it > 1):
                    saved_last = it
                    self.save("last")
                if self.world.any(self._stop):      # a signal on any rank stops them all
                    raise Stop()
        except Stop:
            path = self.save("last")
            self._chart()
            self.log(f"stopped at iteration {net.iteration}: saved {path}")
            return path
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
            if hasattr(self.loader, "close"):
                self.loader.close()
        self.save("last")
        path = self.save("final")
        self._chart()
        self.log(f"done: {path}")
        return path

    def _set_mini_batch(self, mini, reset_seen=True):
        """Train with ``mini`` images a pass from now on, as Darknet's dynamic_minibatch: the
        loader follows, and ``seen`` restarts from init_b images per pass so far (Darknet's
        rate then counts batches of the new size)."""
        net = self.net
        ranks = net.parallel.ranks_per_update if net.parallel else 1
        net.net.mini_batch = int(mini)
        if reset_seen:
            net.seen = (self.init_b * net.net.subdivisions * net.iteration * ranks *
                        max(net.net.time_steps, 1))
        self.loader.set_batch(net.net.subdivisions * int(mini) * max(net.net.time_steps, 1))

    def _initial_size(self):
        """The network and the loader back at the cfg's size and, with dynamic_minibatch,
        mini-batch (``seen`` kept, as Darknet's train_detector after a mAP)."""
        self._train_at(self.init_w, self.init_h)
        n = self.net.net
        if n.dynamic_minibatch and n.mini_batch != self.init_b:
            self._set_mini_batch(self.init_b, reset_seen=False)

    def _train_at(self, w, h):
        """The network and the loader at w x h (the batches already loaded are dropped)."""
        self.net.resize(w, h)
        self.loader.set_size(w, h)

    def _data_problems(self, record):
        """Adds the skipped inputs so far (``skipped``, ``data_problems`` by kind: files and
        label lines, each counted once, each warned once when first met) to the log record;
        returns the console line's suffix (empty while nothing was skipped, so the line stays
        Darknet's). Counts include the batches already prefetched."""
        problems = getattr(self.loader, "problems", None)
        if problems is None:
            return ""
        counts = problems.as_dict()
        record["skipped"] = skipped = sum(counts.values())
        record["data_problems"] = counts
        return f", {skipped} inputs skipped" if skipped else ""

    def _evaluate(self):
        net = self.net
        size = (net.net.width, net.net.height)
        if size != (self.init_w, self.init_h):
            net.resize(self.init_w, self.init_h)
        value = float(self.map_fn(net))
        if size != (self.init_w, self.init_h):
            net.resize(*size)
        if self.best_map is None or value >= self.best_map:     # Darknet: a tie saves too
            self.best_map = value
            self.save("best")
            self.log(f" new best {self.metric} = {value * 100:.2f}%")
        else:
            self.log(f" {self.metric} = {value * 100:.2f}% (best {self.best_map * 100:.2f}%)")
        return value

