"""What Darknet's recurrent layers ([rnn], [lstm], [gru]) share: time steps, gates and the
state they carry.

A pass of such a network takes ``time_steps`` steps of ``streams`` sequences at once, the rows
in step-major order (row ``t * streams + i`` is step t of sequence i, as Darknet's char-RNN
lays its batches out); the other layers see every row as an image. A recurrent layer runs
the steps in order. Its state carries from pass to pass, for every stream: at inference
always, in training as AB's Darknet does it ([lstm], [gru] and [conv_lstm] go on where the
last pass ended, as its char-RNN training relies on; [rnn] and [crnn] start each training
pass from zero). ``reset_state`` starts streams again from zero, and a pass with another
number of streams starts them all from zero. Training back-propagates through the pass's
steps (truncated back-propagation through time): the state a pass starts from gets no
gradient.
"""

import numpy as np

from .base import NEEDS_INPUT, Layer
from .batchnorm import bn_backward, bn_train_forward


class Gate:
    """One of the [connected] layers inside a recurrent layer (Darknet's input_layer, wf,
    uz, ...): its own weights, biases and batch norm, run one time step at a time. Its
    parameters are the layer's, named ``<gate>_biases``, ``<gate>_weights`` and (with
    batch_normalize) ``<gate>_scales``, ``_rolling_mean``, ``_rolling_variance``, in the
    order of Darknet's load_connected_weights."""

    keep = 0.95     # Darknet's connected layer keeps 0.95 of its rolling statistics a step

    def __init__(self, layer, name, inputs, outputs, activation="linear"):
        self.layer, self.name = layer, name
        self.inputs, self.outputs, self.activation = inputs, outputs, activation
        self._steps = {}    # step -> what its backward needs (training)

    def key(self, what):
        return f"{self.name}_{what}"

    def param_shapes(self):
        shapes = [(self.key("biases"), (self.outputs,)),
                  (self.key("weights"), (self.outputs, self.inputs))]
        return shapes + self._bn_shapes()

    def _bn_shapes(self):
        if not self.layer.batch_normalize:
            return []
        return [(self.key(k), (self.filters,))
                for k in ("scales", "rolling_mean", "rolling_variance")]

    @property
    def filters(self):
        return self.outputs

    def init_params(self, rng):
        p = self.layer.params
        w = p[self.key("weights")]
        scale = np.sqrt(2.0 / (w.size // w.shape[0]))     # Darknet's: by the fan-in
        w[...] = scale * rng.uniform(-1, 1, w.shape)
        if self.layer.batch_normalize:
            p[self.key("scales")][...] = 1
            p[self.key("rolling_variance")][...] = 1

    def out_shape(self, n):
        return (n, self.outputs, 1, 1)

    def linear(self, B, x, out):
        """out = the gate's weights applied to x (no bias)."""
        n = out.shape[0]
        B.gemm(False, True, 1.0, x.reshape(n, self.inputs), self.layer.params[self.key("weights")],
               0.0, out.reshape(n, self.outputs))

    def linear_backward(self, B, x, delta, dx):
        """The weights' gradient += from delta and x; dx (unless None) += the input's."""
        n, p, grads = delta.shape[0], self.layer.params, self.layer.grads
        d = delta.reshape(n, self.outputs)
        B.gemm(True, False, 1.0, d, x.reshape(n, self.inputs), 1.0, grads[self.key("weights")])
        if dx is not None:
            B.gemm(False, False, 1.0, d, p[self.key("weights")], 1.0, dx.reshape(n, self.inputs))

    def forward(self, state, x, t):
        """The gate on step t's input ``x`` [streams, ...]: its output (``out_shape``), in a
        buffer of step t."""
        B, p, layer = state.backend, self.layer.params, self.layer
        out = layer.step_buffer(state, self.name, t, self.out_shape(x.shape[0]))
        self.linear(B, x, out)
        bn = None
        if layer.batch_normalize and state.train:
            # per step, on that step's batch: the rolling statistics move once a step
            bn = bn_train_forward(
                B, out, p[self.key("scales")], p[self.key("biases")],
                p[self.key("rolling_mean")], p[self.key("rolling_variance")], keep=self.keep,
                alloc=lambda what, shape: layer.step_buffer(state, f"{self.name}_{what}", t,
                                                            shape))
        elif layer.batch_normalize:
            B.batchnorm_inference(out, p[self.key("scales")], p[self.key("rolling_mean")],
                                  p[self.key("rolling_variance")], p[self.key("biases")])
        else:
            B.add_bias(out, p[self.key("biases")])
        y, pre = out, None
        if state.train and self.activation in NEEDS_INPUT:
            pre, y = out, layer.step_buffer(state, f"{self.name}_activated", t, out.shape)
            B.activate_copy(pre, y, self.activation)
        else:
            B.activate(out, self.activation)
        if state.train:
            self._steps[t] = (x, y, pre, bn)
        return y

    def backward(self, state, delta, t, dx):
        """Step t: ``delta`` (the gate's output's shape), the gradient of the gate's output
        (changed in place), into the gate's parameter gradients, and added into ``dx`` (the
        delta of the gate's input; None: not wanted)."""
        B, p, grads = state.backend, self.layer.params, self.layer.grads
        x, y, pre, bn = self._steps[t]
        B.gradient(delta, y, self.activation, pre)
        if bn is not None:
            bn_backward(B, delta, bn, p[self.key("scales")],
                        {"biases": grads[self.key("biases")],
                         "scales": grads[self.key("scales")]})
        else:
            B.backward_bias(grads[self.key("biases")], delta)
        self.linear_backward(B, x, delta, dx)


class ConvGate(Gate):
    """One of [crnn]'s three convolutions: parameters in the order of Darknet's
    load_convolutional_weights (biases, batch norm, weights), rolling statistics keeping
    0.9 a step. The layer gives the geometry (size, stride, padding, dilation, groups)."""

    keep = 0.9

    def __init__(self, layer, name, channels, filters, activation):
        super().__init__(layer, name, channels * layer.w * layer.h,
                         filters * layer.out_w * layer.out_h, activation)
        self.channels, self.n = channels, filters

    @property
    def filters(self):
        return self.n

    def param_shapes(self):
        l = self.layer
        return [(self.key("biases"), (self.n,))] + self._bn_shapes() + [
            (self.key("weights"), (self.n, self.channels // l.groups, l.size, l.size))]

    def out_shape(self, n):
        return (n, self.n, self.layer.out_h, self.layer.out_w)

    def _geometry(self):
        l = self.layer
        pad = l.padding * l.dilation
        return (l.stride, l.stride, pad, pad, l.dilation, l.groups)

    def linear(self, B, x, out):
        l = self.layer
        x = x.reshape(x.shape[0], self.channels, l.h, l.w)
        B.conv2d(x, l.params[self.key("weights")], out, *self._geometry())

    def linear_backward(self, B, x, delta, dx):
        l = self.layer
        n = delta.shape[0]
        x = x.reshape(n, self.channels, l.h, l.w)
        dx = None if dx is None else dx.reshape(x.shape)
        B.conv2d_backward(x, l.params[self.key("weights")], delta, dx,
                          l.grads[self.key("weights")], *self._geometry())


class Recurrent(Layer):
    """A layer of time steps made of gates (``self.gates``, in .weights order), with a state
    of ``state_shapes`` carried from pass to pass. Subclasses run one step in ``step`` and
    its backward in ``step_backward``."""

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        if not ctx.inputs:
            raise s.error("the layer before a recurrent layer has no outputs")
        self.batch_normalize = s.get_int("batch_normalize", 0)
        self.steps = max(ctx.net.time_steps, 1)
        self.inputs = ctx.inputs
        self.gates = []
        self._state = None       # [arrays of state_shapes] of the last pass's last step
        self._pass = None        # training: (streams, the input, the states step by step)

    def read_size(self, s, key, default=1):
        value = s.get_int(key, default)
        if value < 1:
            raise s.error(f"must be a positive integer, found {value}", key)
        return value

    def finish(self):
        """After the gates are made: the output's size (1 x 1 x outputs unless set), the
        trained parameters."""
        if not self.out_c:
            self.out_w = self.out_h = 1
            self.out_c = self.outputs
        names = [name for gate in self.gates for name, _ in gate.param_shapes()]
        self.trainable = tuple(n for n in names if not n.endswith(("rolling_mean",
                                                                   "rolling_variance")))
        self.decayed = tuple(n for n in names if n.endswith("_weights"))
        # transposed in .weights files of version > 1000, as a [connected] layer's
        self.connected_weights = {g.key("weights"): (g.inputs, g.outputs) for g in self.gates
                                  if not isinstance(g, ConvGate)}
        # updated as their gates: [connected] ones, or [convolutional] ones (crnn, conv_lstm)
        self.loss_scale_undone = "updates" if self.connected_weights else "rate"

    # AB's [rnn] and [crnn] start every training pass from a zero state (CPU and GPU builds);
    # its [lstm], [gru] and [conv_lstm] go on from the last pass's
    training_starts_from_zero = False

    # per step and row, in units of the state's size: the sums and products a step keeps
    # beside its gates' outputs, and (training) the gradients its backward makes
    STEP_BUFFERS, BACKWARD_BUFFERS = 3, 6

    def step_memory(self, train):
        """Values a row keeps over a pass beside the layer's output (pydarknet.memory): its
        input's copy, every gate's output (with batch norm's two copies and a kept
        pre-activation in training), the step's own buffers, and in training their
        gradients."""
        per_row = 0
        for gate in self.gates:
            copies = 1
            if train:
                copies += 2 * bool(self.batch_normalize) + (gate.activation in NEEDS_INPUT)
            per_row += copies * gate.outputs
        state = int(np.prod(self.state_shapes(1)[0][1:]))
        per_row += (self.STEP_BUFFERS + (self.BACKWARD_BUFFERS if train else 0)) * state
        return per_row + (1 + train) * self.inputs

    # -- parameters ------------------------------------------------------------------------
    def param_shapes(self):
        return [shape for gate in self.gates for shape in gate.param_shapes()]

    def init_params(self, rng):
        super().init_params(rng)
        for gate in self.gates:
            gate.init_params(rng)

    def check_trainable(self):
        super().check_trainable()
        if getattr(self, "xnor", 0):
            raise self.refuse_training("xnor", "xnor in a recurrent layer")

    # -- state -----------------------------------------------------------------------------
    def state_shapes(self, streams):
        """Shapes of the state a step hands to the next (h, or h and the cell)."""
        return [self.gates[0].out_shape(streams)]

    def reset_state(self, stream=None):
        """Start ``stream`` (every stream when None) from a zero state at the next pass, as
        Darknet's reset_network_state does when its char-RNN jumps to another place."""
        if stream is None or self._state is None:
            self._state = None
            return
        for array in self._state:
            host = self._backend_of_state.to_numpy(array)
            host[stream] = 0
            self._backend_of_state.copy_from_numpy(array, host)

    def carried_state(self):
        """The state the next pass starts from, as numpy arrays (checkpoints); None: zero."""
        if self._state is None:
            return None
        return [np.array(self._backend_of_state.to_numpy(a)) for a in self._state]

    def restore_state(self, arrays, backend):
        """Go on from ``arrays`` (what carried_state gave; None: zero) at the next pass."""
        self._state = None if arrays is None else [
            backend.from_numpy(np.ascontiguousarray(a, np.float32)) for a in arrays]
        self._backend_of_state = backend

    def step_buffer(self, state, name, t, shape):
        return state.output_buffer(self, shape, f"{name}@{t}")

    def _start_state(self, state, streams):
        B = state.backend
        shapes = self.state_shapes(streams)
        if self._state is None or [tuple(a.shape) for a in self._state] != shapes or \
                self._backend_of_state is not B:
            self._state = [B.zeros(shape) for shape in shapes]
            self._backend_of_state = B
        # a step buffer of its own: the carried arrays change at the end of the pass, while
        # backward still reads what step 0 started from
        return [state.copy_to_buffer(self, f"state{k}@-1", a) for k, a in enumerate(self._state)]

    # -- running ---------------------------------------------------------------------------
    def forward(self, x, state):
        B = state.backend
        n = x.shape[0]
        if n % self.steps:
            raise self.section.error(
                f"layer {self.index}: a pass of {n} rows is not a whole number of time steps "
                f"({self.steps}, [net] time_steps): give time_steps rows per sequence, step "
                f"by step")
        streams = n // self.steps
        x = x.reshape(n, self.inputs)
        out = state.output_buffer(self, self.out_shape(n))
        if state.train and self.training_starts_from_zero:
            self._state = None
        carried = self._start_state(state, streams)
        for t in range(self.steps):
            x_t = self.step_buffer(state, "input", t, (streams, self.inputs))
            _rows(B, x, x_t, t)
            carried, y = self.step(state, t, x_t, carried)
            _rows(B, y, out, t, into=True)
        for array, value in zip(self._state, carried):
            B.copy(array, value)
        if state.train:
            self._pass = streams
        return out

    def backward(self, state):
        B = state.backend
        streams = self._pass
        delta = state.deltas[self.index]
        n = delta.shape[0]
        delta = delta.reshape(n, self.outputs)
        dx = self.input_delta(state)
        dx = None if dx is None else dx.reshape(n, self.inputs)
        # the gradient of the state after each step, from the steps after it
        carried = [self.step_buffer(state, f"dstate{k}", "next", shape)
                   for k, shape in enumerate(self.state_shapes(streams))]
        for d in carried:
            B.fill(d, 0)
        for t in reversed(range(self.steps)):
            dy = self.step_buffer(state, "dy", t, self.out_shape(streams))
            _rows(B, delta, dy, t)
            dx_t = None
            if dx is not None:
                dx_t = self.step_buffer(state, "dx", t, (streams, self.inputs))
                B.fill(dx_t, 0)
            carried = self.step_backward(state, t, dy, carried, dx_t)
            if dx_t is not None:
                _rows(B, dx_t, dx, t, into=True, accumulate=True)

    def step(self, state, t, x, carried):
        """Step t on its input x [streams, inputs] from the state ``carried`` -> (the new
        state, the step's output [streams, outputs, 1, 1])."""
        raise NotImplementedError

    def step_backward(self, state, t, dy, dcarried, dx):
        """Step t's backward: ``dy`` the gradient of its output, ``dcarried`` that of the state
        it made (both may be changed) -> the gradient of the state it started from; ``dx``
        (None: not wanted) += the gradient of its input."""
        raise NotImplementedError

    def fields(self):
        return {"output_size": self.outputs, "batch_normalize": self.batch_normalize,
                "steps": self.steps}


def _rows(B, src, dst, t, into=False, accumulate=False):
    """Step t's rows: from the whole pass ``src`` into the step's ``dst`` or, ``into``, from
    the step's ``src`` into the whole pass's ``dst`` (rows are step-major)."""
    step, whole = (src, dst) if into else (dst, src)
    count = step.size
    flat_src, flat_dst = src.reshape(1, src.size), dst.reshape(1, dst.size)
    B.copy_rows(flat_src, flat_dst, count, 0 if into else t * count,
                t * count if into else 0, accumulate)
    return dst


def step_copy(state, layer, name, t, array):
    """A copy of ``array`` in a step buffer (gates change their deltas in place)."""
    return state.copy_to_buffer(layer, f"{name}@{t}", array)
