"""[sam]: spatial attention, an earlier layer's output times the input, elementwise."""

from .base import activate_output
from .from_layer import FromLayer
from .registry import register

@register("sam")
class Sam(FromLayer):
    """Spatial attention: out = from_layer_output * input, elementwise."""
    type = "sam"
    layer_type = "sam"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        if self.out_c != self.c:
            raise s.error(f"layer {self.from_index} has {self.out_c} channels, the input has "
                          f"{self.c}: they must match", "from")
        if (self.out_w, self.out_h) != (self.w, self.h):
            raise s.error(f"layer {self.from_index} is {self.out_w}x{self.out_h}, the input "
                          f"{self.w}x{self.h}: they must match (Darknet asserts it)", "from")

    def forward(self, x, state):
        out = state.output_buffer(self, self.out_shape(x.shape[0]))
        state.backend.sam(state.outputs[self.from_index], x, out)
        if state.train:
            self._input = x
        return activate_output(self, state, out)

    def backward(self, state):
        delta = state.deltas[self.index]
        state.backend.gradient(delta, state.outputs[self.index], self.activation,
                               self._act_input)
        state.backend.sam_backward(delta, state.outputs[self.from_index], self._input,
                                   self.input_delta(state), state.deltas[self.from_index])
