"""[batchnorm]: standalone batch normalisation (inference uses the rolling statistics)."""

from .base import Layer, register


@register("batchnorm")
class Batchnorm(Layer):
    type = "batchnorm"
    layer_type = "batchnorm"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.w = self.out_w = ctx.w
        self.h = self.out_h = ctx.h
        self.c = self.out_c = ctx.c
        self.inputs = self.outputs = ctx.w * ctx.h * ctx.c
        self.activation = "logistic"   # Darknet leaves the enum at 0 (printed as logistic)

    def param_shapes(self):
        return [("biases", (self.c,)), ("scales", (self.c,)), ("rolling_mean", (self.c,)),
                ("rolling_variance", (self.c,))]

    def init_params(self, rng):
        super().init_params(rng)
        self.params["scales"][...] = 1
        self.params["rolling_variance"][...] = 1

    def forward(self, x, state):
        p = self.params
        out = x.reshape(self.out_shape(x.shape[0])).copy()
        state.backend.batchnorm_inference(out, p["scales"], p["rolling_mean"],
                                          p["rolling_variance"], p["biases"])
        return out

    def fields(self):
        return {"activation": self.activation}
