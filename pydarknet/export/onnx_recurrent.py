"""ONNX of Darknet's recurrent layers ([rnn], [lstm], [conv_lstm], [gru]): one time step per
run. The state a step starts from is a graph input ``<type><index>_state`` ([lstm] and
[conv_lstm] also ``<type><index>_cell``), zeros for a sequence's first step; the state after
it is the output ``<name>_out``, to feed back with the next step (as [crnn]'s,
onnx_layers.crnn)."""

import numpy as np

from ..errors import NotSupportedError
from ..layers.recurrent import ConvGate
from .onnx_graph import Tensor
from .onnx_layers import _fold_bn, _host


def _one_step(layer):
    if layer.steps != 1:
        raise NotSupportedError(
            f"{layer.section.path}:{layer.section.line}: layer {layer.index} [{layer.type}]: "
            f"ONNX runs one time step a run, the network has time_steps={layer.steps}: "
            f"export a network built for inference (Network(cfg, batch=N))")


def state_input(cx, layer, name, shape):
    t = Tensor(cx.b.reserve(f"{layer.type}{layer.index}_{name}"), shape)
    cx.state_inputs.append(t)
    return t


def state_output(cx, layer, name, t):
    out = f"{layer.type}{layer.index}_{name}_out"
    cx.b.reserve(out)
    cx.b.op("Identity", [t.name], out_names=[out])
    cx.state_outputs.append(Tensor(out, t.shape))


def _gate(cx, layer, gate, x, activation=None):
    """A gate ([connected], or [conv_lstm]'s convolution) on x, its batch norm folded in,
    then its activation."""
    b = cx.b
    prefix = gate.name + "_"
    p = {k[len(prefix):]: _host(v) for k, v in layer.params.items() if k.startswith(prefix)}
    hint = f"{layer.type}{layer.index}_{gate.name}"
    if isinstance(gate, ConvGate):
        w, bias = _fold_bn(p, p["weights"], layer.batch_normalize)
        pad = layer.padding * layer.dilation
        x = b.reshape(x, (gate.channels, layer.h, layer.w))
        name = b.op("Conv", [x.name, b.const(w, hint + "_w"), b.const(bias, hint + "_b")],
                    hint, kernel_shape=[layer.size] * 2, strides=[layer.stride] * 2,
                    dilations=[layer.dilation] * 2, group=layer.groups, pads=[pad] * 4)
        y = Tensor(name, gate.out_shape(1)[1:])
    else:
        w, bias = _fold_bn(p, p["weights"], layer.batch_normalize)
        name = b.op("Gemm", [b.reshape(x, (gate.inputs,)).name, b.const(w, hint + "_w"),
                             b.const(bias, hint + "_b")], hint, transB=1)
        y = b.reshape(Tensor(name, (gate.outputs,)), (gate.outputs, 1, 1))
    return cx.act(y, activation or gate.activation)


def rnn(cx, layer, x):
    _one_step(layer)
    b = cx.b
    prev = state_input(cx, layer, "state", (layer.hidden, 1, 1))
    h = b.binary("Add", _gate(cx, layer, layer.input_gate, x),
                 _gate(cx, layer, layer.self_gate, prev))
    if layer.shortcut:
        h = b.binary("Add", prev, h)
    state_output(cx, layer, "state", h)
    return _gate(cx, layer, layer.output_gate, h)


def lstm(cx, layer, x):
    """[lstm] and [conv_lstm] (peepholes, lstm_activation, the carried cell clamped)."""
    _one_step(layer)
    b = cx.b
    shape = layer.gate["wf"].out_shape(1)[1:]
    h_prev = state_input(cx, layer, "state", shape)
    c_prev = state_input(cx, layer, "cell", shape)

    def gate_sum(g, cell):
        s = b.binary("Add", _gate(cx, layer, layer.gate[f"w{g}"], h_prev),
                     _gate(cx, layer, layer.gate[f"u{g}"], x))
        if cell is not None:
            s = b.binary("Add", s, _gate(cx, layer, layer.gate[f"v{g}"], cell))
        return cx.act(s, layer._activation(g))

    peek = c_prev if layer.peephole else None
    f, i, g = gate_sum("f", peek), gate_sum("i", peek), gate_sum("g", None)
    c = b.binary("Add", b.binary("Mul", f, c_prev), b.binary("Mul", i, g))
    o = gate_sum("o", c if layer.peephole else None)
    h = b.binary("Mul", cx.act(c, layer.cell_activation), o)
    if layer.state_constrain:
        k = float(layer.state_constrain)
        c = Tensor(b.op("Clip", [c.name, b.const(np.float32(-k), "min"),
                                 b.const(np.float32(k), "max")],
                        f"{layer.type}{layer.index}_constrain"), c.shape)
    state_output(cx, layer, "state", h)
    state_output(cx, layer, "cell", c)
    return h


def gru(cx, layer, x):
    _one_step(layer)
    b = cx.b
    g = layer.gate
    h_prev = state_input(cx, layer, "state", (layer.hidden, 1, 1))

    def gate_sum(name, state, activation):
        return cx.act(b.binary("Add", _gate(cx, layer, g[f"u{name}"], x),
                               _gate(cx, layer, g[f"w{name}"], state)), activation)

    z = gate_sum("z", h_prev, "logistic")
    r = gate_sum("r", h_prev, "logistic")
    cand = gate_sum("h", b.binary("Mul", h_prev, r), layer.candidate_activation)
    # z * h_prev + (1 - z) * h~
    h = b.binary("Add", cand, b.binary("Mul", z, b.binary("Sub", h_prev, cand)))
    state_output(cx, layer, "state", h)
    return h


def history(cx, layer, x):
    """[history] at one time step a run, as Darknet's: the image's input, then zeros."""
    _one_step(layer)
    x = cx.b.reshape(x, (layer.c, layer.h, layer.w))
    return cx.b.pad(x, [0, 0, 0], [layer.c * (layer.history_size - 1), 0, 0],
                    hint=f"history{layer.index}")


CONVERTERS = {"history": history, "rnn": rnn, "lstm": lstm, "conv_lstm": lstm, "gru": gru}
