"""Activation names and the standalone [activation] layer."""

from ..backend import ACTIVATIONS
from .base import Layer, activate_output
from .registry import register


def read_activation(section, key, default):
    """The activation named by ``key``; an unknown name is an error (Darknet falls back to relu)."""
    name = section.get_str(key, default)
    if name not in ACTIVATIONS:
        raise section.error(f"unknown activation '{name}': expected one of "
                            f"{', '.join(ACTIVATIONS)}", key)
    return name


@register("activation")
class Activation(Layer):
    type = "activation"
    layer_type = "active"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.activation = read_activation(s, "activation", "linear")
        self.w, self.h, self.c = ctx.w, ctx.h, ctx.c
        self.out_w, self.out_h, self.out_c = ctx.w, ctx.h, ctx.c
        self.inputs = self.outputs = ctx.inputs

    def forward(self, x, state):
        out = state.copy_to_buffer(self, "output", x)
        shape = (x.shape[0], self.c, self.h, self.w) if self.c else x.shape
        return activate_output(self, state, out.reshape(shape)).reshape(out.shape)

    def backward(self, state):
        # Darknet copies the delta over its input's (losing what a later route or shortcut
        # added there); the reference's -gpusem semantics add it, as every other layer
        delta = state.deltas[self.index]
        state.backend.gradient(delta, state.outputs[self.index], self.activation,
                               self._act_input)
        dx = self.input_delta(state)
        if dx is not None:
            state.backend.axpy(1.0, delta, dx)

    def fields(self):
        return {"activation": self.activation}
