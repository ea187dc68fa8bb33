"""[shortcut]: add earlier layers' outputs to the input, optionally weighted, then activate."""

import numpy as np

from .activation import read_activation
from .base import Layer, activate_output
from .registry import register

WEIGHTS_TYPES = {"none": 0, "per_feature": 1, "per_layer": 1, "per_channel": 2}
WEIGHTS_NORMALIZATIONS = {"none": 0, "relu": 1, "avg_relu": 1, "softmax": 2}


@register("shortcut")
class Shortcut(Layer):
    type = "shortcut"
    layer_type = "shortcut"
    trainable = ("weights",)
    rate_scaled = True
    # AB's update_shortcut_layer_gpu: no weight decay, the accumulated update clamped to
    # [-1, 1] before the step (its CPU build decays and clamps nothing)
    decayed = ()
    update_clamp = 1.0

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.activation = read_activation(s, "activation", "linear")
        wt = s.get_str("weights_type", "none")
        wn = s.get_str("weights_normalization", "none")
        if wt not in WEIGHTS_TYPES:
            raise s.error(f"unknown weights_type '{wt}': expected none, per_feature or "
                          f"per_channel", "weights_type")
        if wn not in WEIGHTS_NORMALIZATIONS:
            raise s.error(f"unknown weights_normalization '{wn}': expected none, relu or "
                          f"softmax", "weights_normalization")
        self.weights_type = WEIGHTS_TYPES[wt]
        self.weights_normalization = WEIGHTS_NORMALIZATIONS[wn]
        refs = s.get_ints("from")
        if not refs:
            raise s.error("needs at least one layer: from=-3", "from")
        self.layers = [ctx.resolve(s, "from", r) for r in refs]
        self.n = len(self.layers)
        self.sizes = [ctx.layers[i].outputs for i in self.layers]
        self.w = self.out_w = ctx.w
        self.h = self.out_h = ctx.h
        self.c = self.out_c = ctx.c
        self.outputs = self.inputs = ctx.w * ctx.h * ctx.c
        self.resample = None
        for i in self.layers:
            src = ctx.layers[i]
            if (src.out_w, src.out_h) != (ctx.w, ctx.h):
                self.resample = self._resampling(s, src, ctx)
        self.nweights = {0: 0, 1: self.n + 1, 2: (self.n + 1) * self.c}[self.weights_type]
        self.bflops = self.out_w * self.out_h * self.out_c * self.n / 1e9
        if self.weights_type:
            self.bflops *= 2

    def _resampling(self, s, src, ctx):
        """pjreddie's Darknet adds a layer of another spatial size too (ResNet's projection-free
        shortcuts; AB's asserts): every stride-th value of the larger into every sample-th
        place of the output, over the smaller of each size and of the channels
        (shortcut_cpu). Returns (stride, sample, channels, rows, columns)."""
        w1, h1, w2, h2 = src.out_w, src.out_h, ctx.w, ctx.h
        stride, sample = max(w1 // w2, 1), max(w2 // w1, 1)
        if (stride, sample) != (max(h1 // h2, 1), max(h2 // h1, 1)) or \
                self.n > 1 or self.weights_type:
            raise s.error(f"layer {src.index} is {w1}x{h1}x{src.out_c} but the input is "
                          f"{w2}x{h2}x{ctx.c}: a shortcut between spatial sizes takes one "
                          f"layer, no weights, and the same ratio across and down", "from")
        return stride, sample, min(src.out_c, ctx.c), min(h1, h2), min(w1, w2)

    def _resampled_places(self):
        """(index into the from layer's output, into this output) of pjreddie's shortcut."""
        stride, sample, c, h, w = self.resample
        places = (slice(0, c), slice(0, h * stride, stride), slice(0, w * stride, stride))
        return (slice(None),) + places, (slice(None), slice(0, c),
                                         slice(0, h * sample, sample),
                                         slice(0, w * sample, sample))

    def param_shapes(self):
        return [("weights", (self.nweights,))] if self.nweights else []

    def init_params(self, rng):
        super().init_params(rng)
        if self.nweights:
            self.params["weights"][...] = 1  # Darknet starts every weight at 1

    def _normalized_weights(self, backend):
        """Weights as [n+1, C or 1] (host numpy) after Darknet's relu/softmax normalisation
        over the inputs."""
        w = backend.to_numpy(self.params["weights"]).reshape(self.n + 1, -1).astype(np.float32)
        if self.weights_normalization == 1:
            r = np.maximum(w, 0)
            return r / (np.float32(0.0001) + r.sum(axis=0))
        if self.weights_normalization == 2:
            e = np.exp(w - w.max(axis=0))
            return e / (np.float32(0.0001) + e.sum(axis=0))
        return w

    def _weight_grad_scales(self, wts):
        """AB's GPU build (backward_shortcut_multilayer_kernel) scales a normalised weight's
        gradient by the normalised weight w (relu) or w(1 - w) (softmax), its stand-in for the
        normalisation's derivative; AB's CPU build does not scale it. None: no normalisation."""
        if self.weights_normalization == 1:
            return wts
        if self.weights_normalization == 2:
            return wts * (np.float32(1) - wts)
        return None

    def _add_weight_grad(self, gw, d, values, k, per_channel, scales):
        """Darknet's weight gradient (host numpy): sum(delta * input), times ``scales`` of the
        weight where AB's GPU build scales it."""
        prod = d * values
        if per_channel:
            sums = prod.reshape(prod.shape[0], -1, self.w * self.h).sum(axis=(0, 2))
            gw[k, :sums.size] += sums if scales is None else sums * scales[k, :sums.size]
        else:
            gw[k, 0] += prod.sum() * (1 if scales is None else scales[k, 0])

    def reads(self):
        return self.layers

    def forward(self, x, state):
        B = state.backend
        n, spatial = x.shape[0], self.w * self.h
        if self.resample:     # on the host: ResNet-era cfgs only
            src = self.layers[0]
            out = np.array(B.to_numpy(x)).reshape(self.out_shape(n))
            take, put = self._resampled_places()
            out[put] += B.to_numpy(state.outputs[src]).reshape(state.outputs[src].shape)[take]
            if state.train:
                self._input = x
            return activate_output(self, state, state.host_result(self, out))
        wts = self._normalized_weights(B) if self.nweights else None
        if wts is None and state.pool is not None and state.pool.dies_into(self, x):
            out = x.reshape(self.out_shape(n))     # an inference pass adds into its input
        else:
            out = state.output_buffer(self, self.out_shape(n))
            B.shortcut_add(out, x, self.outputs, spatial, None if wts is None else wts[0],
                           accumulate=False)
        for k, (i, size) in enumerate(zip(self.layers, self.sizes), start=1):
            m = min(size, self.outputs)  # Darknet adds the overlapping prefix (fewer channels)
            B.shortcut_add(out, state.outputs[i], m, spatial, None if wts is None else wts[k])
        if state.train:
            self._input = x
        return activate_output(self, state, out)

    def backward(self, state):
        B = state.backend
        delta = state.deltas[self.index]
        n, spatial = delta.shape[0], self.w * self.h
        B.gradient(delta, state.outputs[self.index], self.activation, self._act_input)
        wts = self._normalized_weights(B) if self.nweights else None
        dx = self.input_delta(state)
        if self.resample:
            if dx is not None:
                B.axpy(1, delta, dx)
            src = self.layers[0]
            take, put = self._resampled_places()
            part = np.zeros(state.outputs[src].shape, np.float32)
            part[take] = B.to_numpy(delta).reshape(self.out_shape(n))[put]
            state.add_host_delta(state.deltas[src], part)
            return
        if dx is not None:
            B.shortcut_add(dx, delta, self.outputs, spatial, None if wts is None else wts[0])
        for k, (i, size) in enumerate(zip(self.layers, self.sizes), start=1):
            B.shortcut_add(state.deltas[i], delta, min(size, self.outputs), spatial,
                           None if wts is None else wts[k])
        if wts is None:
            return
        # weight gradients on the host: a handful of sums
        per_channel, scales = wts.shape[1] > 1, self._weight_grad_scales(wts)
        d = B.to_numpy(delta).reshape(n, -1)
        gw = B.to_numpy(self.grads["weights"])
        g2 = gw.reshape(self.n + 1, -1)
        self._add_weight_grad(g2, d, B.to_numpy(self._input).reshape(n, -1), 0, per_channel,
                              scales)
        for k, (i, size) in enumerate(zip(self.layers, self.sizes), start=1):
            m = min(size, self.outputs)
            src = B.to_numpy(state.outputs[i]).reshape(n, size)[:, :m]
            self._add_weight_grad(g2, d[:, :m], src, k, per_channel, scales)
        B.copy_from_numpy(self.grads["weights"], gw)

    def fields(self):
        return {"from": list(self.layers), "activation": self.activation,
                "weights_type": self.weights_type,
                "weights_normalization": self.weights_normalization, "nweights": self.nweights}

    def describe(self):
        return " ".join(str(i) for i in self.layers)
