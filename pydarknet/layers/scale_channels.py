"""[scale_channels]: scale an earlier layer's output per channel (or per pixel)."""

from .base import activate_output
from .from_layer import FromLayer
from .registry import register

@register("scale_channels")
class ScaleChannels(FromLayer):
    """out = from_layer_output * input, the input holding one scale per channel (or per pixel
    with scale_wh=1)."""
    type = "scale_channels"
    layer_type = "scale_channels"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.scale_wh = s.get_int("scale_wh", 0)
        if self.scale_wh and (self.out_w, self.out_h) != (self.w, self.h):
            raise s.error(f"scale_wh=1 needs equal spatial sizes, found {self.w}x{self.h} and "
                          f"{self.out_w}x{self.out_h}", "from")
        if self.scale_wh and self.c != 1:
            raise s.error(f"scale_wh=1 scales each pixel by the input, which must have 1 "
                          f"channel, found {self.c}", "scale_wh")
        if not self.scale_wh and (self.w, self.h) != (1, 1):
            raise s.error(f"the input holds one scale per channel and must be 1x1, found "
                          f"{self.w}x{self.h} (scale_wh=1 scales per pixel)", "from")
        if not self.scale_wh and self.out_c != self.c:
            raise s.error(f"layer {self.from_index} has {self.out_c} channels, the input has "
                          f"{self.c}: they must match", "from")

    def forward(self, x, state):
        n = x.shape[0]
        src = state.outputs[self.from_index].reshape(n, self.out_c, self.out_h, self.out_w)
        out = state.output_buffer(self, self.out_shape(n))
        state.backend.scale_channels(src, x, out, self.scale_wh)
        if state.train:
            self._input = x
        return activate_output(self, state, out)

    def backward(self, state):
        delta = state.deltas[self.index]
        n = delta.shape[0]
        state.backend.gradient(delta, state.outputs[self.index], self.activation,
                               self._act_input)
        src = state.outputs[self.from_index].reshape(n, self.out_c, self.out_h, self.out_w)
        dx = part = self.input_delta(state)
        if self.scale_wh and dx is not None:
            # AB's GPU build divides the per-pixel scales' delta by the map's size (w x h);
            # its CPU build does not
            part = state.output_buffer(self, dx.shape, "scale_delta")
            state.backend.fill(part, 0)
        state.backend.scale_channels_backward(delta, src, self._input,
                                              state.deltas[self.from_index], part,
                                              self.scale_wh)
        if part is not dx:
            state.backend.axpy(1.0 / (self.out_w * self.out_h), part, dx)
