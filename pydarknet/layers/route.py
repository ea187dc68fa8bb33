"""[route]: concatenate earlier layers' outputs along channels, or take one group of them."""

from .base import Layer
from .registry import register


@register("route")
class Route(Layer):
    type = "route"
    layer_type = "route"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        refs = s.get_ints("layers")
        if not refs:
            raise s.error("needs at least one input layer: layers=-1,...", "layers")
        self.layers = [ctx.resolve(s, "layers", r) for r in refs]
        self.groups = s.get_int("groups", 1)
        self.group_id = s.get_int("group_id", 0)
        if self.groups < 1 or not 0 <= self.group_id < self.groups:
            raise s.error(f"needs groups >= 1 and 0 <= group_id < groups, found groups="
                          f"{self.groups} group_id={self.group_id}", "group_id")
        srcs = [ctx.layers[i] for i in self.layers]
        self.sizes = [l.outputs for l in srcs]
        for l, size in zip(srcs, self.sizes):
            if size % self.groups:
                raise s.error(f"layer {l.index} outputs {size} values, not divisible into "
                              f"groups={self.groups}", "groups")
        self.outputs = self.inputs = sum(size // self.groups for size in self.sizes)
        first = srcs[0]
        self.out_w, self.out_h, self.out_c = first.out_w, first.out_h, first.out_c
        for nxt in srcs[1:]:
            if (nxt.out_w, nxt.out_h) == (first.out_w, first.out_h):
                self.out_c += nxt.out_c
            else:
                net = ctx.net
                hint = (f"; the [net] size {net.width}x{net.height} is not a multiple of 32, so "
                        f"strided layers round it differently: use multiples of 32 (of the "
                        f"network's largest stride)"
                        if net and (net.width % 32 or net.height % 32) else "")
                raise s.error(
                    f"cannot concatenate layer {nxt.index} ({nxt.out_w}x{nxt.out_h}) with layer "
                    f"{first.index} ({first.out_w}x{first.out_h}): spatial sizes differ{hint}",
                    "layers")
        if self.out_c % self.groups and self.out_w * self.out_h > 1:
            # Darknet takes out_c / groups channels of a group of out_c * h * w / groups values:
            # the layers after it would read another size than the route writes
            raise s.error(f"groups={self.groups} does not split the {self.out_c} channels of "
                          f"layers {', '.join(map(str, self.layers))} into whole channels",
                          "groups")
        self.out_c //= self.groups
        self.w, self.h, self.c = first.w, first.h, self.out_c

    def reads(self):
        return self.layers

    def forward(self, x, state):
        shape = self.out_shape(x.shape[0])
        pool = state.pool
        if pool is not None and shape[0] == 1 and len(self.layers) == 1:
            # an inference pass reads one image's group of channels where it is
            part = self.sizes[0] // self.groups
            return state.backend.view_at(state.outputs[self.layers[0]], shape,
                                         part * self.group_id)
        out = state.output_buffer(self, shape)
        start = 0
        for i, size in zip(self.layers, self.sizes):
            part = size // self.groups
            src, offset = state.outputs[i], part * self.group_id
            # an inference pass may have written the input here already (concat_places)
            if pool is None or not pool.in_place(src, offset, out, start):
                state.backend.copy_rows(src, out, part, offset, start)
            start += part
        return out

    def backward(self, state):
        delta = state.deltas[self.index]
        start = 0
        for i, size in zip(self.layers, self.sizes):
            part = size // self.groups
            state.backend.copy_rows(delta, state.deltas[i], part, start, part * self.group_id,
                                    accumulate=True)
            start += part

    def fields(self):
        return {"layers": list(self.layers), "groups": self.groups, "group_id": self.group_id}

    def describe(self):
        return " ".join(str(i) for i in self.layers) + (
            f" ({self.group_id}/{self.groups})" if self.groups > 1 else "")
