"""[lstm]: Darknet's LSTM layer (lstm.train.cfg).

Eight gates of linear [connected] layers, each with its own batch norm: w* read the last
output h, u* the step's input x. At step t: f = logistic(wf(h) + uf(x)), i = logistic(wi(h) +
ui(x)), g = tanh(wg(h) + ug(x)), o = logistic(wo(h) + uo(x)); the cell c = f * c + i * g and
the output h = o * tanh(c). Both h and c carry to the next step and pass. The .weights file
holds wf, wi, wg, wo, uf, ui, ug, uo (AB's order; pjreddie's Darknet writes wi, wf, wo, wg,
ui, uf, uo, ug).
"""

from .recurrent import Gate, Recurrent, step_copy
from .registry import register

# (gate, activation of its sum) in the order of the .weights file: w* first, then u*
GATES = (("f", "logistic"), ("i", "logistic"), ("g", "tanh"), ("o", "logistic"))


@register("lstm")
class Lstm(Recurrent):
    type = "lstm"
    layer_type = "lstm"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.outputs = self.hidden = self.read_size(s, "output")
        self.gates = [Gate(self, f"w{g}", self.hidden, self.hidden) for g, _ in GATES] + \
                     [Gate(self, f"u{g}", self.inputs, self.hidden) for g, _ in GATES]
        self.gate = {g.name: g for g in self.gates}
        self.finish()

    def state_shapes(self, streams):
        return [(streams, self.hidden, 1, 1)] * 2     # h and the cell c

    def step(self, state, t, x, carried):
        B = state.backend
        h_prev, c_prev = carried
        shape = h_prev.shape
        act = {}
        for g, activation in GATES:
            w = self.gate[f"w{g}"].forward(state, h_prev, t)
            u = self.gate[f"u{g}"].forward(state, x, t)
            a = self.step_buffer(state, g, t, shape)
            B.copy(a, w)
            B.axpy(1.0, u, a)
            B.activate(a, activation)
            act[g] = a
        c = self.step_buffer(state, "state1", t, shape)
        ig = self.step_buffer(state, "ig", t, shape)
        B.sam(act["i"], act["g"], ig)
        B.sam(act["f"], c_prev, c)
        B.axpy(1.0, ig, c)
        tanh_c = self.step_buffer(state, "tanh_c", t, shape)
        B.activate_copy(c, tanh_c, "tanh")
        h = self.step_buffer(state, "state0", t, shape)
        B.sam(tanh_c, act["o"], h)
        if state.train:
            self._saved[t] = (act, c_prev, tanh_c)
        return [h, c], h

    def forward(self, x, state):
        self._saved = {}
        return super().forward(x, state)

    def step_backward(self, state, t, dy, dcarried, dx):
        B = state.backend
        act, c_prev, tanh_c = self._saved[t]
        dh, dc = dcarried
        shape = dh.shape
        B.axpy(1.0, dy, dh)                          # the output is h
        d = {}
        d["o"] = self.step_buffer(state, "do", t, shape)
        B.sam(dh, tanh_c, d["o"])
        dtanh = self.step_buffer(state, "dtanh_c", t, shape)
        B.sam(dh, act["o"], dtanh)
        B.gradient(dtanh, tanh_c, "tanh")
        B.axpy(1.0, dtanh, dc)                       # dc: the cell's whole gradient
        for g, other in (("f", c_prev), ("i", act["g"]), ("g", act["i"])):
            d[g] = self.step_buffer(state, f"d{g}", t, shape)
            B.sam(dc, other, d[g])
        for g, activation in GATES:
            B.gradient(d[g], act[g], activation)
        dh_prev = dc_prev = None
        if t > 0:
            dh_prev = self.step_buffer(state, "dstate0", t - 1, shape)
            B.fill(dh_prev, 0)
            dc_prev = self.step_buffer(state, "dstate1", t - 1, shape)
            B.sam(dc, act["f"], dc_prev)
        for g, _ in GATES:
            self.gate[f"w{g}"].backward(state, step_copy(state, self, f"dw{g}", t, d[g]), t,
                                        dh_prev)
            self.gate[f"u{g}"].backward(state, d[g], t, dx)
        return [dh_prev, dc_prev]

    def describe(self):
        return f"{self.inputs} -> {self.outputs}"
