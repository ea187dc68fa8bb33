"""[rnn]: Darknet's vanilla recurrent layer (rnn.cfg, rnn.train.cfg).

Three gates of [connected] layers, all with the layer's ``activation`` (AB's ``logistic=1``
or ``2`` gives the self gate logistic or loggy), each with its own batch norm: at step t,
h_t = input(x_t) + self(h_t-1) (+ h_t-1 with ``shortcut=1``) and the output is output(h_t).
``hidden`` is h's size; without it, ``output`` (pjreddie's Darknet, whose cfgs leave it out;
AB's reads 1). The .weights file holds the input, self and output gates in that order.
"""

from .activation import read_activation
from .recurrent import Gate, Recurrent, step_copy
from .registry import register


@register("rnn")
class Rnn(Recurrent):
    type = "rnn"
    layer_type = "rnn"
    training_starts_from_zero = True      # AB's forward_rnn_layer(_gpu)

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.outputs = self.read_size(s, "output")
        self.hidden = self.read_size(s, "hidden", self.outputs)
        self.activation = read_activation(s, "activation", "logistic")
        logistic = s.get_int("logistic", 0)
        self_activation = {1: "logistic", 2: "loggy"}.get(logistic, self.activation)
        self.shortcut = s.get_int("shortcut", 0)
        self.gates = [Gate(self, "input", self.inputs, self.hidden, self.activation),
                      Gate(self, "self", self.hidden, self.hidden, self_activation),
                      Gate(self, "output", self.hidden, self.outputs, self.activation)]
        self.input_gate, self.self_gate, self.output_gate = self.gates
        self.finish()

    def step(self, state, t, x, carried):
        B = state.backend
        (prev,) = carried
        a = self.input_gate.forward(state, x, t)
        b = self.self_gate.forward(state, prev, t)
        h = self.step_buffer(state, "state0", t, prev.shape)
        if self.shortcut:       # Darknet's order of the sums
            B.copy(h, prev)
            B.axpy(1.0, a, h)
        else:
            B.copy(h, a)
        B.axpy(1.0, b, h)
        return [h], self.output_gate.forward(state, h, t)

    def step_backward(self, state, t, dy, dcarried, dx):
        B = state.backend
        (dh,) = dcarried
        self.output_gate.backward(state, dy, t, dh)
        self.input_gate.backward(state, step_copy(state, self, "da", t, dh), t, dx)
        dprev = None
        if t > 0:
            dprev = self.step_buffer(state, "dstate0", t - 1, dh.shape)
            if self.shortcut:
                B.copy(dprev, dh)
            else:
                B.fill(dprev, 0)
        self.self_gate.backward(state, dh, t, dprev)
        return [dprev]

    def describe(self):
        return f"{self.inputs} -> {self.outputs}"

    def fields(self):
        d = super().fields()
        d.update(hidden=self.hidden, activation=self.activation, shortcut=self.shortcut)
        return d
