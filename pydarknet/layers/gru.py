"""[gru]: Darknet's GRU layer (gru.cfg).

Six gates of linear [connected] layers, each with its own batch norm: u* read the step's
input x, w* the last output h. At step t: z = logistic(uz(x) + wz(h)), r = logistic(ur(x) +
wr(h)), h~ = logistic(uh(x) + wh(r * h)) (tanh with pjreddie's ``tanh=1``; AB's builds use
logistic) and the output h = z * h + (1 - z) * h~, which carries to the next step and pass.
The .weights file holds uz, ur, uh, wz, wr, wh (AB's order; pjreddie's Darknet writes wz, wr,
wh, uz, ur, uh).
"""

from .recurrent import Gate, Recurrent, step_copy
from .registry import register


@register("gru")
class Gru(Recurrent):
    type = "gru"
    layer_type = "gru"
    STEP_BUFFERS, BACKWARD_BUFFERS = 6, 10     # pydarknet.memory's estimate
    # pjreddie's Darknet's order of the gates in .weights files (load_weights(gates=))
    PJREDDIE_GATES = ("wz", "wr", "wh", "uz", "ur", "uh")

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.outputs = self.hidden = self.read_size(s, "output")
        self.tanh = s.get_int("tanh", 0)
        self.candidate_activation = "tanh" if self.tanh else "logistic"
        self.gates = [Gate(self, f"u{g}", self.inputs, self.hidden) for g in "zrh"] + \
                     [Gate(self, f"w{g}", self.hidden, self.hidden) for g in "zrh"]
        self.gate = {g.name: g for g in self.gates}
        self.finish()

    def _sum(self, state, name, t, u, w, activation):
        B = state.backend
        a = self.step_buffer(state, name, t, u.shape)
        B.copy(a, u)                       # Darknet's order: u's output, then + w's
        B.axpy(1.0, w, a)
        B.activate(a, activation)
        return a

    def forward(self, x, state):
        self._saved = {}
        return super().forward(x, state)

    def step(self, state, t, x, carried):
        B = state.backend
        (h_prev,) = carried
        shape = h_prev.shape
        g = self.gate
        z = self._sum(state, "z", t, g["uz"].forward(state, x, t),
                      g["wz"].forward(state, h_prev, t), "logistic")
        r = self._sum(state, "r", t, g["ur"].forward(state, x, t),
                      g["wr"].forward(state, h_prev, t), "logistic")
        forgot = self.step_buffer(state, "forgot", t, shape)
        B.sam(h_prev, r, forgot)
        cand = self._sum(state, "candidate", t, g["uh"].forward(state, x, t),
                         g["wh"].forward(state, forgot, t), self.candidate_activation)
        # h = z * h_prev + (1 - z) * h~, as h~ + z * h_prev - z * h~
        h = self.step_buffer(state, "state0", t, shape)
        zh = self.step_buffer(state, "z_candidate", t, shape)
        B.sam(z, cand, zh)
        B.copy(h, cand)
        B.axpy(-1.0, zh, h)
        B.sam(z, h_prev, zh)
        B.axpy(1.0, zh, h)
        if state.train:
            self._saved[t] = (z, r, cand, h_prev)
        return [h], h

    def step_backward(self, state, t, dy, dcarried, dx):
        B = state.backend
        z, r, cand, h_prev = self._saved[t]
        (dh,) = dcarried
        shape = dh.shape
        g = self.gate
        B.axpy(1.0, dy, dh)                          # the output is h
        dz = self.step_buffer(state, "dz", t, shape)
        diff = self.step_buffer(state, "h_minus_candidate", t, shape)
        B.copy(diff, h_prev)
        B.axpy(-1.0, cand, diff)
        B.sam(dh, diff, dz)
        B.gradient(dz, z, "logistic")
        dh_z = self.step_buffer(state, "dh_z", t, shape)      # dh * z: into h_prev
        B.sam(dh, z, dh_z)
        dcand = self.step_buffer(state, "dcandidate", t, shape)
        B.copy(dcand, dh)
        B.axpy(-1.0, dh_z, dcand)
        B.gradient(dcand, cand, self.candidate_activation)
        dforgot = self.step_buffer(state, "dforgot", t, shape)
        B.fill(dforgot, 0)
        g["wh"].backward(state, step_copy(state, self, "dwh", t, dcand), t, dforgot)
        g["uh"].backward(state, dcand, t, dx)
        dh_prev = None
        if t > 0:
            dh_prev = self.step_buffer(state, "dstate0", t - 1, shape)
            B.copy(dh_prev, dh_z)
            B.sam_backward(dforgot, r, None, dh_prev, None)     # += dforgot * r
        dr = self.step_buffer(state, "dr", t, shape)
        B.sam(dforgot, h_prev, dr)
        B.gradient(dr, r, "logistic")
        for name, delta in (("r", dr), ("z", dz)):
            g[f"w{name}"].backward(state, step_copy(state, self, f"dw{name}", t, delta), t,
                                   dh_prev)
            g[f"u{name}"].backward(state, delta, t, dx)
        return [dh_prev]

    def describe(self):
        return f"{self.inputs} -> {self.outputs}"

    def fields(self):
        d = super().fields()
        d["tanh"] = self.tanh
        return d
