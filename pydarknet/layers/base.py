"""What every layer shares: Darknet's geometry fields and the build context."""

import numpy as np

from ..errors import NotSupportedError

class BuildContext:
    """What a layer sees while it is built: the previous layer's output, the layers so far."""

    def __init__(self, net, index, layers, w, h, c, inputs, batch, train):
        self.net = net            # NetOptions
        self.index = index
        self.layers = layers      # layers built so far
        self.w, self.h, self.c, self.inputs = w, h, c, inputs
        self.batch = batch
        self.train = train

    def resolve(self, section, key, index):
        """A layer reference as written (relative if negative) -> absolute index, checked."""
        absolute = self.index + index if index < 0 else index
        if not 0 <= absolute < self.index:
            raise section.error(
                f"refers to layer {index} (absolute {absolute}), but only layers 0.."
                f"{self.index - 1} exist before layer {self.index}", key)
        return absolute


class Layer:
    """A built layer with Darknet's fields (w, h, c, out_w, out_h, out_c, inputs, outputs).

    Subclasses set ``type`` (Darknet's short printed name) and ``layer_type`` (its enum name),
    compute the geometry in ``__init__`` and implement ``forward``. Layers with parameters
    list them in ``param_shapes`` in the order Darknet's .weights file stores them.
    """

    type = "?"
    layer_type = "?"
    # common options Darknet reads for every layer after building it
    _COMMON_INT = ("onlyforward", "dont_update", "burnin_update", "stopbackward", "train_only_bn",
                   "dontload", "dontloadscales")

    def __init__(self, section, ctx):
        self.section = section
        self.index = ctx.index
        self.batch = ctx.batch
        self.w = self.h = self.c = 0
        self.out_w = self.out_h = self.out_c = 0
        self.inputs = self.outputs = 0
        self.bflops = 0.0
        self.params = {}
        self.activation = None

    # whether the layer's learning_rate= scales its update: AB's GPU updates of
    # [convolutional], [connected], [batchnorm], [shortcut] and [implicit] read it; those of
    # [local] and the recurrent layers (whose gates are layers of their own) do not
    rate_scaled = False

    # how the layer's AB GPU update undoes [net] loss_scale (the deltas of [yolo] and
    # [softmax] heads arrive multiplied by it): "rate" divides the rate by it and multiplies
    # the decay by it (update_convolutional_layer_gpu and most), "updates" divides the
    # accumulated updates, momenta included, by it (update_connected_layer_gpu, and so the
    # recurrent layers of connected gates), None keeps it ([local]'s update ignores it)
    loss_scale_undone = "rate"

    def read_common(self, section):
        self.clip = section.get_float("clip", 0.0)
        for key in self._COMMON_INT:
            setattr(self, key, section.get_int(key, 0))
        self.learning_rate_scale = (section.get_float("learning_rate", 1.0)
                                    if self.rate_scaled else 1.0)

    # -- parameters ----------------------------------------------------------------------
    def param_shapes(self):
        """[(name, shape)] in .weights file order; empty for layers without parameters."""
        return []

    def init_params(self, rng):
        """Fill ``self.params`` with Darknet-style initial values."""
        self.params = {name: np.zeros(shape, np.float32) for name, shape in self.param_shapes()}

    def param_count(self):
        return int(sum(np.prod(shape) for _, shape in self.param_shapes()))

    # -- training ------------------------------------------------------------------------
    # parameters that receive gradients, and those of them with weight decay
    trainable = ()
    decayed = ("weights",)

    def check_trainable(self):
        """Raise (``refuse_training``) when an option of this layer changes training in a way
        pydarknet does not implement; called by ``Network.check_trainable`` before training.
        Subclasses add their own checks after ``super().check_trainable()``."""

    def refuse_training(self, option, what, advice=None):
        """The error for ``option``, which asks for ``what`` while training."""
        s = self.section
        advice = advice or ("remove the option to train here (it does not change inference), "
                            "or train with Darknet")
        return s.error(f"layer {self.index}: {option}={s.options[option].value} asks for {what} "
                       f"while training, which pydarknet does not implement: {advice}", option)

    def init_training(self, backend):
        """Gradient accumulators and momentum buffers for the trainable parameters."""
        self.grads = {k: backend.zeros(self.params[k].shape)
                      for k in self.trainable if k in self.params}
        self.momenta = {k: backend.zeros(v.shape) for k, v in self.grads.items()}
        if getattr(self, "adam", 0):   # Adam: the second moments beside the first (momenta)
            self.momenta.update({f"{k}_v": backend.zeros(v.shape)
                                 for k, v in self.grads.items()})

    def backward(self, state):
        """Add this layer's input gradients into ``state.deltas`` (Darknet's l.backward)."""
        raise NotSupportedError(
            f"{self.section.path}:{self.section.line}: [{self.section.name}] layer {self.index}: "
            f"training '{self.layer_type}' layers is not implemented")

    # AB's [empty] and [dropout] share the previous layer's delta buffer: with onlyforward=1
    # (their backward skipped) the delta is there all the same, as it arrived
    shares_input_delta = False

    def pass_delta_unchanged(self, state):
        """Add this layer's delta to its input's unchanged (``shares_input_delta`` under
        onlyforward=1)."""
        dx = self.input_delta(state)
        if dx is not None:
            state.backend.axpy(1, state.deltas[self.index], dx)

    def input_delta(self, state):
        """The delta buffer of this layer's input (for the network input: the pass's
        ``input_delta``, None unless asked for)."""
        if self.index > 0:
            return state.deltas[self.index - 1]
        return getattr(state, "input_delta", None)

    # -- running -------------------------------------------------------------------------
    def forward(self, x, state):
        raise NotSupportedError(
            f"{self.section.path}:{self.section.line}: [{self.section.name}] layer {self.index}: "
            f"forward pass of '{self.layer_type}' layers is not implemented")

    def reads(self):
        """Earlier layers whose outputs this layer's forward reads besides its input (the
        previous layer's output): what an inference pass must keep alive for it."""
        return ()

    # -- description ---------------------------------------------------------------------
    def summary(self):
        d = {"index": self.index, "type": self.type, "layer_type": self.layer_type,
             "input": [self.w, self.h, self.c], "output": [self.out_w, self.out_h, self.out_c],
             "inputs": self.inputs, "outputs": self.outputs, "bflops": self.bflops}
        d.update(self.fields())
        return d

    def fields(self):
        """Per-type fields of the layer table (shapes JSON keys)."""
        return {}

    def describe(self):
        """One short text for the printed table (filters / size / stride column)."""
        return ""

    def out_shape(self, n):
        """NCHW shape of this layer's output for a batch of n ([n, outputs, 1, 1] when Darknet
        leaves the layer's out_w/out_h/out_c unset)."""
        if self.out_c * self.out_h * self.out_w == self.outputs:
            return (n, self.out_c, self.out_h, self.out_w)
        return (n, self.outputs, 1, 1)

    def __repr__(self):
        return (f"<{type(self).__name__} {self.index}: {self.w}x{self.h}x{self.c} -> "
                f"{self.out_w}x{self.out_h}x{self.out_c}>")


class HostLoss:
    """A detection head whose loss runs on the host, as in Darknet's GPU build: the loss
    writes the pass's delta (the input's gradient as Darknet uses it), backward adds it,
    times ``delta_scale``, into the input's delta."""

    def run_loss(self, state, loss, *args, **kwargs):
        """``loss(self, *args, delta_out=, zeroed=, **kwargs)`` -> (delta, cost, stats) into
        the pass's delta of this layer: in place on the CPU (fresh zeros), else through a host
        buffer."""
        target = state.deltas[self.index]
        in_place = isinstance(target, np.ndarray)
        host = target if in_place else state.host_buffer(self, target.shape, "delta")
        delta, self.cost, self.stats = loss(self, *args, delta_out=host, zeroed=in_place,
                                            **kwargs)
        state.backend.copy_from_numpy(target, delta)     # nothing to do when in place

    def delta_scale(self, state):
        return 1.0

    def backward(self, state):
        dx = self.input_delta(state)
        if dx is not None:
            state.backend.axpy(self.delta_scale(state), state.deltas[self.index], dx)


def output_layer(layers):
    """The index of the network's output: the last layer that is not a [cost] (Darknet's
    get_network_output_layer; a cost layer outputs nothing at inference)."""
    i = len(layers) - 1
    while i > 0 and layers[i].layer_type == "cost":
        i -= 1
    return i


# activations whose gradient is computed from the pre-activation, not from the output
NEEDS_INPUT = ("swish", "mish", "hard_mish")


def activate_output(layer, state, out):
    """``layer.activation`` on ``out``; in training keeping the pre-activation where the
    gradient needs it (``layer._act_input``, see activate_keeping_input). Returns the output.
    (Darknet applies mish, swish and hard_mish only in [convolutional] and mish and swish in
    [shortcut]; elsewhere its activate() has no case for them and gives 0. pydarknet applies
    them in every layer, forward and backward.)"""
    if state.train:
        return activate_keeping_input(layer, state, out, layer.activation in NEEDS_INPUT)
    state.backend.activate(out, layer.activation)
    return out


def activate_keeping_input(layer, state, out, keep):
    """Training: activate ``out``; when ``keep`` (gradients from the pre-activation), in one
    pass into a second buffer, leaving ``out`` as ``layer._act_input``. Returns the output."""
    if not keep:
        layer._act_input = None
        state.backend.activate(out, layer.activation)
        return out
    layer._act_input = out
    y = state.output_buffer(layer, out.shape, "activated")
    state.backend.activate_copy(out, y, layer.activation)
    return y


def as_image(x, c, h, w):
    """View a flat or NCHW array as [N, c, h, w]."""
    return x.reshape(x.shape[0], c, h, w)


def as_flat(x):
    return x.reshape(x.shape[0], -1)
