"""Build a network from cfg sections, infer its shapes, run it, load and save its weights."""

import os

import numpy as np

from . import weights as weights_io
from .backend import get_backend, parse_device
from .cfg import parse_cfg, parse_cfg_text
from .errors import CfgError, PydarknetError, ShapeError
from .layers import BuildContext, layer_class
from .layers.base import output_layer
from .layers.yolo_reject import DeltaRejection
from .memory import available_host_memory, check_fits, format_bytes, network_memory
from .net_options import NetOptions
from .no_effect import NoEffectOptions
from .output_pool import OutputPool, Slots
from .passes import check_truths, forward_pass, pass_cost
from .train.iteration import train_iteration


class Network:
    """A Darknet network: ``layers`` in cfg order, ``net`` (the [net] options), weights.

    ``batch=None`` keeps the cfg's batch/subdivisions (training allocation, mini-batch =
    batch/subdivisions); an integer sets the mini-batch with subdivisions=1, as Darknet's
    ``parse_network_cfg_custom(cfg, batch)`` does for inference.
    """

    def __init__(self, cfg, batch=None, width=None, height=None, device="cpu", init=True,
                 seed=0):
        if isinstance(cfg, (list, tuple)):
            sections, self.cfg_path = list(cfg), getattr(cfg[0], "path", "<cfg>")
        else:
            self.cfg_path = os.fspath(cfg)
            sections = parse_cfg(self.cfg_path)
        net_section = sections[0]
        if width is not None:
            _override(net_section, "width", _image_size(width, "width"))
        if height is not None:
            _override(net_section, "height", _image_size(height, "height"))
        self.net = NetOptions(net_section)
        no_effect = NoEffectOptions()
        no_effect.take(net_section, "net")
        no_effect.warn()
        net_section.warn_unused()
        self.device = device
        self._backend = None
        self.train_alloc = batch is None
        mini_batch = self.net.mini_batch * self.net.time_steps
        if batch is not None:
            if int(batch) < 1:
                raise ValueError(f"batch must be a positive integer, found {batch}")
            mini_batch = int(batch)
            self.net.time_steps = 1   # as parse_network_cfg_custom(cfg, batch, 1)
        self.batch = max(mini_batch, 1)
        self.seen = 0
        self.iteration = 0
        self.learning_rate = self.net.learning_rate
        self.rng = np.random.default_rng(seed)
        self._training_ready = False
        self._params_on_device = False
        self._buffers = {}   # layer index -> output array reused across passes
        self._pool = None    # predict's OutputPool
        self._delta_slots = None
        self.layers = []
        self._sections = sections
        self._build(sections[1:])
        self.outputs = [None] * len(self.layers)
        self.deltas = None      # each layer's delta after a training-mode pass
        self.cost = None        # Darknet's cost of the last training pass with truths
        self.parallel = None    # a pydarknet.dist.DataParallel in a multi-rank run
        self.ema = None         # [net] ema_alpha's averages once they start (train.ema)
        # layer index -> gradients of iterations whose update dont_update or burnin_update
        # skipped (host arrays): AB's weight_updates keep them for the first update
        self.skipped_gradients = {}
        self.delta_rejection = DeltaRejection(self.net)   # its [yolo] layers share it
        if init:
            if isinstance(device, str) and parse_device(device)[0] == "cpu":
                check_fits(self)    # an impossible cfg stops here, naming its largest layer
            self.init_weights(seed)

    # -- building ------------------------------------------------------------------------
    def _build(self, sections):
        n = self.net
        w, h, c, inputs = n.width, n.height, n.channels, n.inputs
        no_effect = NoEffectOptions()
        for index, section in enumerate(sections):
            cls = layer_class(section)
            ctx = BuildContext(n, index, self.layers, w, h, c, inputs, self.batch,
                               self.train_alloc)
            layer = cls(section, ctx)
            if layer.outputs <= 0:      # (each layer's own check says why where it has one)
                raise section.error(f"output would be empty ({layer.out_w}x{layer.out_h}x"
                                    f"{layer.out_c}): its input is {w}x{h}x{c}")
            layer.read_common(section)
            no_effect.take(section, cls.section_name)
            section.warn_unused()
            self.layers.append(layer)
            w, h, c, inputs = layer.out_w, layer.out_h, layer.out_c, layer.outputs
        no_effect.warn()
        if not self.layers:
            raise CfgError("the cfg has a [net] section but no layers", self.cfg_path)

    def init_weights(self, seed=0):
        """Darknet-style random initial weights (uniform, scaled by fan-in)."""
        self.params_to_host()
        rng = np.random.default_rng(seed)
        for layer in self.layers:
            try:
                layer.init_params(rng)
            except MemoryError:
                raise PydarknetError(
                    f"{layer.section.path}:{layer.section.line}: layer {layer.index} "
                    f"[{layer.section.name}]: not enough memory for its "
                    f"{layer.param_count():,} parameters ({format_bytes(4 * layer.param_count())})"
                ) from None

    # -- description ---------------------------------------------------------------------
    @property
    def total_bflops(self):
        return float(sum(l.bflops for l in self.layers if l.bflops > 0))

    def param_count(self):
        return sum(l.param_count() for l in self.layers)

    def summary(self):
        """One dict per layer with the keys of Darknet's shapes JSON."""
        return [_plain(layer.summary()) for layer in self.layers]

    def table(self):
        """Darknet's printed layer table with totals, as text."""
        lines = ["   layer   filters  size/strd(dil)      input                output"]
        for l in self.layers:
            src = f"{l.w:4d} x{l.h:4d} x{l.c:4d}"
            dst = f"{l.out_w:4d} x{l.out_h:4d} x{l.out_c:4d}"
            bf = f" {l.bflops:6.3f} BF" if l.bflops > 0 else ""
            lines.append(f"{l.index:4d} {l.type:<10.10} {l.describe():<22.22} {src} -> {dst}{bf}")
        lines.append(f"Total BFLOPS {self.total_bflops:.3f}")
        lines.append(f"Parameters {self.param_count():,}")
        return "\n".join(lines)

    # -- running -------------------------------------------------------------------------
    @property
    def backend(self):
        if self._backend is None:  # resolved on first use: building needs no compute core
            self._backend = get_backend(self.device)
        return self._backend

    @property
    def input_shape(self):
        n = self.net
        if n.width and n.height and n.channels:
            return (n.channels, n.height, n.width)
        return (n.inputs,)

    def _check_input(self, x):
        if not isinstance(x, np.ndarray):
            raise ShapeError(f"input must be a numpy float32 array, found {type(x).__name__}")
        if x.dtype != np.float32:
            raise ShapeError(f"input must be float32, found {x.dtype} (use x.astype(np.float32))")
        want = self.input_shape
        if x.ndim != len(want) + 1 or x.shape[1:] != want:
            raise ShapeError(f"input must have shape [N, {', '.join(map(str, want))}] "
                             f"(N images, NCHW), found {list(x.shape)}")
        if x.shape[0] < 1:
            raise ShapeError("input holds no images (N = 0)")
        return np.ascontiguousarray(x)

    def forward(self, x, train=False, truths=None):
        """Run every layer on x; returns (a copy of) the network's output (the last layer's
        that is not a [cost], as Darknet's network_predict). ``outputs[i]`` holds
        layer i's output until the next pass reuses its memory.

        ``train=True`` runs Darknet's training-mode forward (batch statistics, which also move
        the rolling ones; dropout from the network's RNG) without a backward pass or an
        update; with ``truths`` (as ``train_iteration`` takes them) the loss layers compute
        their cost and deltas too: ``cost`` and ``deltas`` hold them afterwards."""
        x = self._check_input(x)
        if truths is not None:
            if not train:
                raise ValueError("truths are used only by a training-mode pass: pass train=True")
            truths = check_truths(self, truths, x.shape[0])
        return self._pass(x, train, truths)

    def _pass(self, x, train, truths, pool=None):
        self.params_to_device()
        if train:
            self.ensure_training()
        forward_pass(self, self.backend.from_numpy(x), train, truths, pool=pool)
        if train and truths is not None:
            self.cost = pass_cost(self)
        return np.array(self.outputs[output_layer(self.layers)], copy=True)

    def predict(self, x, keep=()):
        """Inference forward pass (batch norm with rolling statistics); returns (a copy of)
        the network's output (as ``forward``). ``outputs`` keeps what is read after it: the
        detection heads, softmax, the last layer and the layers listed in ``keep``; the other layers' outputs
        share memory as the pass goes (``forward(x)`` keeps every one)."""
        x = self._check_input(x)
        return self._pass(x, False, None, self._output_pool(keep))

    def profile(self, x, runs=5):
        """Each layer's inference time on ``x``: [(layer, seconds)], the median over ``runs``
        passes after a warm-up one, the device synchronised after each layer (which a plain
        pass does not do: the sum is a little above ``predict``'s time on a GPU)."""
        x = self._check_input(x)
        self.params_to_device()
        xb = self.backend.from_numpy(x)
        forward_pass(self, xb, pool=self._output_pool(()))
        runs_seconds = []
        for _ in range(max(1, int(runs))):
            seconds = []
            forward_pass(self, xb, pool=self._output_pool(()), layer_seconds=seconds)
            runs_seconds.append(seconds)
        return list(zip(self.layers, np.median(np.array(runs_seconds), axis=0).tolist()))

    def _output_pool(self, keep):
        """The OutputPool of predict's passes (None where the backend has no memory
        planning: the layers then keep their own buffers)."""
        keep = tuple(sorted({self._layer_index(i, "keep") for i in keep}))
        if not self._plans_memory():
            return None
        pool = self._pool
        if pool is None or pool.backend is not self.backend or pool.keep != keep:
            pool = self._pool = OutputPool(self.backend, self.layers, keep)
        return pool

    def delta_slots(self):
        """The Slots that training passes' deltas share (None where the backend has no
        memory planning)."""
        if not self._plans_memory():
            return None
        if self._delta_slots is None or self._delta_slots.backend is not self.backend:
            self._delta_slots = Slots(self.backend)
        return self._delta_slots

    def _plans_memory(self):
        return hasattr(self.backend, "view_at")     # the CPU backend (output_pool)

    def _layer_index(self, i, what):
        n = len(self.layers)
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not -n <= i < n:
            raise ValueError(f"{what}: layer indexes are integers in [-{n}, {n - 1}], found "
                             f"{i!r}")
        return int(i) % n

    def resize(self, width, height):
        """Change the input resolution in place (Darknet's resize_network, used for random=1
        multi-scale training): layers are rebuilt, parameters and their buffers shared."""
        import warnings
        if (width, height) == (self.net.width, self.net.height):
            return      # (a char-RNN's 0 x 0 too: the training loop's resize to its size)
        width, height = _image_size(width, "width"), _image_size(height, "height")
        old, old_net = self.layers, self.net
        net_section = self._sections[0]
        _override(net_section, "width", width)
        _override(net_section, "height", height)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                keep = (self.net.time_steps, self.net.mini_batch)
                self.net = NetOptions(net_section)
                self.net.time_steps, self.net.mini_batch = keep
                self.layers = []
                self._build(self._sections[1:])
            changed = _first_param_change(self.layers, old)
            if changed is not None:     # a [connected] or [local] sized by its input
                raise ShapeError(f"the network cannot take {width}x{height} inputs: layer "
                                 f"{changed} has parameters sized by its input "
                                 f"({old_net.width}x{old_net.height}); only a network without "
                                 "such layers (fully convolutional, or global pooling before "
                                 "[connected]) resizes")
            if isinstance(self.device, str) and parse_device(self.device)[0] == "cpu":
                self._check_resized_fits(old, old_net)
        except Exception:           # the network stays as it was
            _override(net_section, "width", old_net.width)
            _override(net_section, "height", old_net.height)
            self.layers, self.net = old, old_net
            raise
        for new, prev in zip(self.layers, old):
            new.params = prev.params
            if hasattr(prev, "grads"):
                new.grads, new.momenta = prev.grads, prev.momenta
            if getattr(prev, "share_layer", None) is not None:
                new.share_layer = self.layers[prev.share_layer.index]
        self._buffers = {}
        self._pool = self._delta_slots = None
        self.outputs = [None] * len(self.layers)

    def _check_resized_fits(self, old_layers, old_net):
        """As the constructor's check_fits, for what the new size needs beyond the old size's
        buffers (which the resize frees): a random=1 resize too large for the machine stops
        naming the layer instead of the process being killed."""
        available = available_host_memory()
        if available is not None:
            freed = network_memory(self, layers=old_layers)[1]
            check_fits(self, available + freed,
                       f"this machine's memory at {self.net.width}x{self.net.height} (with "
                       f"the {old_net.width}x{old_net.height} buffers the resize frees)")

    # -- training ------------------------------------------------------------------------
    def check_trainable(self):
        """Refuse, before anything is trained, options that change training in ways pydarknet
        does not implement (each layer names its file, line and option)."""
        self.net.check_trainable()
        for layer in self.layers:
            layer.check_trainable()

    def ensure_training(self):
        self.check_trainable()
        self.params_to_device()
        if not self._training_ready:
            for layer in self.layers:
                layer.init_training(self.backend)
            self._training_ready = True

    # -- where the parameters live ------------------------------------------------------------
    def _move_params(self, to_device):
        if getattr(self.backend, "HOST_ARRAYS", False) or self._params_on_device == to_device:
            return
        B = self.backend
        move = B.from_numpy if to_device else (lambda a: np.array(B.to_numpy(a)))
        for layer in self.layers:
            for attr in ("params", "grads", "momenta"):
                arrays = getattr(layer, attr, None) or {}
                for name in arrays:
                    arrays[name] = move(arrays[name])
        self._params_on_device = to_device

    def params_to_device(self):
        """Put parameters, gradients and momenta on the network's device (forward and training
        do this themselves; nothing to do on the CPU)."""
        self._move_params(True)

    def params_to_host(self):
        """Bring parameters, gradients and momenta back as numpy arrays (weights files and
        checkpoints do this themselves; nothing to do on the CPU)."""
        self._move_params(False)

    def train_iteration(self, images, truths, layer_seconds=None):
        """One Darknet iteration over ``batch`` images (rows in subdivision order); returns
        Darknet's loss. Updates ``iteration``, ``seen`` and ``learning_rate``.
        ``layer_seconds``: a pydarknet.train.iteration.LayerSeconds to time each layer."""
        return train_iteration(self, images, truths, layer_seconds)

    # -- detection -----------------------------------------------------------------------
    def detect(self, image_bgr, thresh=0.25, nms=0.45, **kw):
        """[(class_id, score, (x, y, w, h) in pixels)], best first (pydarknet.detector)."""
        from .detector import detect
        return detect(self, image_bgr, thresh, nms, **kw)

    def detect_batch(self, images_bgr, thresh=0.25, nms=0.45, **kw):
        from .detector import detect_batch
        return detect_batch(self, images_bgr, thresh, nms, **kw)

    # -- export --------------------------------------------------------------------------
    def export_onnx(self, path, **kw):
        """Write this network as an ONNX model (pydarknet.export.export_onnx: opset, batch,
        dynamic_batch, decode, nms, mish_op, ...); returns the ModelProto."""
        from .export import export_onnx
        return export_onnx(self, path, **kw)

    # -- weights -------------------------------------------------------------------------
    def load_weights(self, path, cutoff=None, allow_partial=False, gates="ab"):
        """pydarknet.weights.load_weights (``gates="pjreddie"``: pjreddie's [lstm]/[gru]
        gate order)."""
        self.params_to_host()
        header = weights_io.load_weights(self, path, cutoff, allow_partial, gates)
        # an iteration of a data-parallel run (summed gradients) spans every rank's batch, and
        # a recurrent network's every time step (seen counts rows, as Darknet's); a batch is
        # subdivisions x mini-batch (Darknet's: batch=64 subdivisions=6 trains 60 images)
        ranks = self.parallel.ranks_per_update if self.parallel else 1
        steps = max(self.net.time_steps, 1)
        batch = self.net.mini_batch * self.net.subdivisions
        self.iteration = self.seen // max(batch * steps * ranks, 1)
        return header

    def save_weights(self, path, cutoff=None, replace=None):
        self.params_to_host()
        weights_io.save_weights(self, path, cutoff, replace)


def _image_size(value, what):
    """A width or height given to Network or resize: a positive integer (numpy's too; not a
    bool, a float or a string, which int() would quietly turn into another size)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ShapeError(f"{what} must be a positive integer, found {value!r}")
    return int(value)


def _override(section, key, value):
    from .cfg import Option
    section.options[key] = Option(key, str(int(value)), section.line)


def _plain(d):
    """numpy scalars -> Python numbers (for JSON)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


def load(cfg, weights=None, batch=None, device="cpu", width=None, height=None):
    """Build the network of ``cfg``; load ``weights`` when given (else random init)."""
    net = Network(cfg, batch=batch, width=width, height=height, device=device)
    if weights is not None:
        net.load_weights(weights)
    return net


def load_cfg_text(text, batch=None, path="<cfg>", **kw):
    return Network(parse_cfg_text(text, path), batch=batch, **kw)


def _first_param_change(layers, old):
    """'index [type]' of the first layer whose parameter shapes differ between two builds of
    one network (None where none does)."""
    for new, prev in zip(layers, old):
        if prev.params and any(tuple(prev.params[k].shape) != tuple(shape)
                               for k, shape in new.param_shapes() if k in prev.params):
            return f"{prev.index} [{prev.section.name}]"
    return None
