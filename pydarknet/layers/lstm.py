"""[lstm]: Darknet's LSTM layer (lstm.train.cfg), and [conv_lstm], AB's convolutional one.

Eight gates, each with its own batch norm: w* read the last output h, u* the step's input x
([lstm]: linear [connected] layers; [conv_lstm]: convolutions with the layer's
``activation``). At step t: f = logistic(wf(h) + uf(x)), i = logistic(wi(h) + ui(x)),
g = A(wg(h) + ug(x)); the cell c = f * c + i * g; o = logistic(wo(h) + uo(x)) and the output
h = o * A(c). A is tanh ([conv_lstm]: ``lstm_activation``). [conv_lstm] with ``peephole=1``
adds vf(c) and vi(c) of the old cell to f and i, and vo(c) of the new one to o; and it
clamps the cell it carries to +-``state_constrain`` (default time_steps * 32). h and c carry
to the next step and pass. The .weights file holds [vf, vi, vo,] wf, wi, wg, wo, uf, ui, ug,
uo (AB's order; pjreddie's Darknet writes an [lstm]'s as wi, wf, wo, wg, ui, uf, uo, ug).
"""

from .activation import read_activation
from .base import NEEDS_INPUT
from .recurrent import ConvGate, Gate, Recurrent, step_copy
from .registry import register

GATES = ("f", "i", "g", "o")
PEEPHOLES = ("f", "i", "o")       # vf and vi read the old cell, vo the new one


@register("lstm")
class Lstm(Recurrent):
    type = "lstm"
    layer_type = "lstm"
    peephole = 0
    state_constrain = 0
    cell_activation = "tanh"
    STEP_BUFFERS, BACKWARD_BUFFERS = 11, 15     # pydarknet.memory's estimate
    # pjreddie's Darknet's order of the gates in .weights files (load_weights(gates=))
    PJREDDIE_GATES = ("wi", "wf", "wo", "wg", "ui", "uf", "uo", "ug")

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.outputs = self.hidden = self.read_size(s, "output")
        self.gates = self.make_gates(lambda name, inputs: Gate(self, name, inputs, self.hidden))
        self.finish()

    def make_gates(self, make, inputs=None, hidden=None):
        """[vf, vi, vo,] wf, wi, wg, wo, uf, ui, ug, uo: ``make(name, its input's size)``."""
        inputs, hidden = inputs or self.inputs, hidden or self.hidden
        gates = [make(f"v{g}", hidden) for g in PEEPHOLES] if self.peephole else []
        gates += [make(f"w{g}", hidden) for g in GATES] + [make(f"u{g}", inputs) for g in GATES]
        self.gate = {g.name: g for g in gates}
        return gates

    def state_shapes(self, streams):
        return [self.gate["wf"].out_shape(streams)] * 2     # h and the cell c

    def forward(self, x, state):
        self._saved, self._clamped = {}, {}
        return super().forward(x, state)

    def _activation(self, g):
        return self.cell_activation if g == "g" else "logistic"

    def _gate_sum(self, state, t, g, x, h_prev, cell):
        """Activated wg(h) + ug(x) (+ vg(cell)); returns (it, its pre-activation if the
        activation's gradient needs it)."""
        B = state.backend
        a = self.step_buffer(state, g, t, h_prev.shape)
        B.copy(a, self.gate[f"w{g}"].forward(state, h_prev, t))
        B.axpy(1.0, self.gate[f"u{g}"].forward(state, x, t), a)
        if cell is not None:
            B.axpy(1.0, self.gate[f"v{g}"].forward(state, cell, t), a)
        return self._activate(state, f"{g}_act", t, a, self._activation(g))

    def _activate(self, state, name, t, a, activation):
        if activation in NEEDS_INPUT:
            y = self.step_buffer(state, name, t, a.shape)
            state.backend.activate_copy(a, y, activation)
            return y, a
        state.backend.activate(a, activation)
        return a, None

    def step(self, state, t, x, carried):
        B = state.backend
        h_prev, c_prev = carried
        shape = h_prev.shape
        peek = c_prev if self.peephole else None
        act, pre = {}, {}
        for g in "fig":
            act[g], pre[g] = self._gate_sum(state, t, g, x, h_prev, None if g == "g" else peek)
        c = self.step_buffer(state, "cell", t, shape)
        ig = self.step_buffer(state, "ig", t, shape)
        B.sam(act["i"], act["g"], ig)
        B.sam(act["f"], c_prev, c)
        B.axpy(1.0, ig, c)
        act["o"], _ = self._gate_sum(state, t, "o", x, h_prev, c if self.peephole else None)
        a_c = self.step_buffer(state, "cell_activated", t, shape)
        B.activate_copy(c, a_c, self.cell_activation)
        h = self.step_buffer(state, "state0", t, shape)
        B.sam(a_c, act["o"], h)
        carried_c = self._constrain(state, t, c) if self.state_constrain else c
        if state.train:
            self._saved[t] = (act, pre, c_prev, c, a_c)
        return [h, carried_c], h

    # -- state_constrain: the carried cell clamped to +-K, as c - relu(c - K) + relu(-c - K)
    # (exactly c inside: Darknet's fminf/fmaxf), from the backend's ops
    def _constrain(self, state, t, c):
        B = state.backend
        k = self.step_buffer(state, "minus_constrain", "", (c.shape[1],))
        B.fill(k, -float(self.state_constrain))
        over = step_copy(state, self, "over", t, c)
        B.add_bias(over, k)
        B.activate(over, "relu")
        under = self.step_buffer(state, "under", t, c.shape)
        B.fill(under, 0)
        B.axpy(-1.0, c, under)
        B.add_bias(under, k)
        B.activate(under, "relu")
        out = step_copy(state, self, "state1", t, c)
        B.axpy(-1.0, over, out)
        B.axpy(1.0, under, out)
        self._clamped[t] = (over, under)
        return out

    def _constrain_backward(self, state, t, dc):
        """dc (of the clamped cell) -> that of the cell: 0 where the clamp held it."""
        B = state.backend
        for bound in self._clamped[t]:
            held = step_copy(state, self, "held", t, dc)
            B.gradient(held, bound, "relu")
            B.axpy(-1.0, held, dc)

    def step_backward(self, state, t, dy, dcarried, dx):
        B = state.backend
        act, pre, c_prev, c, a_c = self._saved[t]
        dh, dc = dcarried
        shape = dh.shape
        B.axpy(1.0, dy, dh)                          # the output is h
        if self.state_constrain:
            self._constrain_backward(state, t, dc)
        d = {"o": self.step_buffer(state, "do", t, shape)}
        B.sam(dh, a_c, d["o"])
        B.gradient(d["o"], act["o"], "logistic")
        d_ac = self.step_buffer(state, "dcell_activated", t, shape)
        B.sam(dh, act["o"], d_ac)
        B.gradient(d_ac, a_c, self.cell_activation, c)
        B.axpy(1.0, d_ac, dc)                        # dc: the cell's whole gradient...
        if self.peephole:                            # ...with o's peephole on it
            self.gate["vo"].backward(state, step_copy(state, self, "dvo", t, d["o"]), t, dc)
        for g, other in (("f", c_prev), ("i", act["g"]), ("g", act["i"])):
            d[g] = self.step_buffer(state, f"d{g}", t, shape)
            B.sam(dc, other, d[g])
            B.gradient(d[g], act[g], self._activation(g), pre.get(g))
        dh_prev = dc_prev = None
        if t > 0:
            dh_prev = self.step_buffer(state, "dstate0", t - 1, shape)
            B.fill(dh_prev, 0)
            dc_prev = self.step_buffer(state, "dstate1", t - 1, shape)
            B.sam(dc, act["f"], dc_prev)
        if self.peephole:
            for g in "fi":
                self.gate[f"v{g}"].backward(state, step_copy(state, self, f"dv{g}", t, d[g]),
                                            t, dc_prev)
        for g in GATES:
            self.gate[f"w{g}"].backward(state, step_copy(state, self, f"dw{g}", t, d[g]), t,
                                        dh_prev)
            self.gate[f"u{g}"].backward(state, d[g], t, dx)
        return [dh_prev, dc_prev]

    def describe(self):
        return f"{self.inputs} -> {self.outputs}"


def _conv_out(size_in, size, stride, padding):
    return (size_in + 2 * padding - size) // stride + 1


@register("conv_lstm")
class ConvLstm(Lstm):
    """AB's [conv_lstm]: the LSTM's gates are convolutions of ``size``, ``stride``, ``pad`` /
    ``padding``, ``dilation`` and ``groups``, which must keep the size (h feeds the w*)."""
    type = "conv_lstm"
    layer_type = "conv_lstm"
    PJREDDIE_GATES = None           # AB's only

    def __init__(self, s, ctx):
        Recurrent.__init__(self, s, ctx)
        if not (ctx.w and ctx.h and ctx.c):
            raise s.error("the layer before a conv_lstm layer must output an image")
        self.size = self.read_size(s, "size", 3)
        self.stride = self.read_size(s, "stride", 1)
        self.dilation = self.read_size(s, "dilation", 1)
        self.groups = self.read_size(s, "groups", 1)
        pad = s.get_int("pad", 0)
        self.padding = self.size // 2 if pad else s.get_int("padding", 0)
        if self.padding < 0:
            raise s.error(f"padding must be >= 0, found {self.padding}", "padding")
        self.hidden = self.read_size(s, "output")
        self.activation = read_activation(s, "activation", "linear")
        self.cell_activation = read_activation(s, "lstm_activation", "tanh")
        if s.get_int("xnor", 0):
            raise s.error("xnor=1 is not implemented in [conv_lstm]: remove it", "xnor")
        self.peephole = s.get_int("peephole", 0)
        if s.get_int("bottleneck", 0):
            raise s.error("bottleneck=1 is not implemented (AB's CPU build has none either): "
                          "remove it", "bottleneck")
        self.state_constrain = s.get_int("state_constrain", self.steps * 32)
        # AB's shortcut and time_normalizer act only with bottleneck
        s.get_int("shortcut", 0)
        s.get_float("time_normalizer", 1.0)
        self.w, self.h, self.c = ctx.w, ctx.h, ctx.c
        oh = _conv_out(self.h, self.size, self.stride, self.padding)
        ow = _conv_out(self.w, self.size, self.stride, self.padding)
        if (oh, ow) != (self.h, self.w):
            raise s.error(f"its convolutions must keep the size (the output feeds them back): "
                          f"{self.w}x{self.h} gives {ow}x{oh}; use stride=1 and pad=1",
                          "stride" if self.stride > 1 else "pad")
        if ctx.c % self.groups or self.hidden % self.groups:
            raise s.error(f"groups={self.groups} must divide the input's {ctx.c} channels and "
                          f"output", "groups")
        self.out_w, self.out_h, self.out_c = ow, oh, self.hidden
        self.outputs = ow * oh * self.hidden
        self.gates = self.make_gates(
            lambda name, channels: ConvGate(self, name, channels, self.hidden, self.activation),
            inputs=self.c, hidden=self.hidden)
        per_conv = [2.0 * (g.channels // self.groups) * g.n * self.size ** 2 * oh * ow
                    for g in self.gates]
        streams = max(ctx.batch // self.steps, 1)
        self.bflops = (sum(per_conv) + (12 if self.peephole else 9) * self.outputs *
                       streams) / 1e9
        self.finish()

    def describe(self):
        return f"{self.hidden:5d}      {self.size:2d} x{self.size:2d}/{self.stride:>3}"

    def fields(self):
        return {"filters": self.hidden, "size": self.size, "peephole": self.peephole,
                "batch_normalize": self.batch_normalize, "activation": self.activation}

