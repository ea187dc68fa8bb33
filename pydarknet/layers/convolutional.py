"""[convolutional] / [conv]: grouped, dilated, strided convolution + batch norm + activation."""

import numpy as np

from ..errors import NotSupportedError
from ..host_math import binarize_signs, binarize_weights
from .activation import read_activation
from .antialias import Blur
from .base import Layer, activate_output
from .registry import register
from .batchnorm import bn_backward, bn_train_forward


@register("convolutional", aliases=("conv",))
class Convolutional(Layer):
    type = "conv"
    layer_type = "convolutional"
    trainable = ("weights", "biases", "scales")
    rate_scaled = True

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        self.n = s.get_int("filters", 1)
        self.groups = s.get_int("groups", 1)
        self.size = s.get_int("size", 1)
        stride_x = s.get_int("stride_x", -1)
        stride_y = s.get_int("stride_y", -1)
        if stride_x < 1 or stride_y < 1:
            stride = s.get_int("stride", 1)
            stride_x = stride if stride_x < 1 else stride_x
            stride_y = stride if stride_y < 1 else stride_y
        self.stride_x, self.stride_y = stride_x, stride_y
        self.dilation = s.get_int("dilation", 1)
        if self.size == 1:
            self.dilation = 1
        self.antialiasing = s.get_int("antialiasing", 0)
        pad = s.get_int("pad", 0)
        padding = s.get_int("padding", 0)
        self.pad = self.size // 2 if pad else padding  # Darknet: pad=1 means size/2
        self.activation = read_activation(s, "activation", "logistic")
        self.assisted_excitation = s.get_float("assisted_excitation", 0)
        self.batch_normalize = s.get_int("batch_normalize", 0)
        if s.get_int("cbn", 0):
            self.batch_normalize = 2
        self.adam = ctx.net.adam   # [net] adam=1 updates (only) convolutional layers by Adam
        self.binary = s.get_int("binary", 0)
        self.xnor = s.get_int("xnor", 0)
        self.bin_output = s.get_int("bin_output", 0)
        # sway/rotate/stretch/stretch_sway symmetrise the weights after each update (AB's GPU
        # update); the forward pass is a plain convolution
        deform = [k for k in ("sway", "rotate", "stretch", "stretch_sway") if s.get_int(k, 0)]
        if len(deform) > 1:
            raise s.error(f"only one of sway, rotate, stretch and stretch_sway may be set, "
                          f"found {', '.join(deform)}", deform[1])
        self.deform = deform[0] if deform else None
        # the .weights file stores this layer's weights transposed ([c/groups*size*size, n])
        self.flipped = s.get_int("flipped", 0)
        # gradient centralisation and Darknet's inverse-weight update: training only
        self.grad_centr = s.get_int("grad_centr", 0)
        self.reverse = s.get_float("reverse", 0)
        # CoordConv adds coordinates to the output (Darknet's GPU build)
        self.coordconv = s.get_int("coordconv", 0)
        for key in ("filters", "size"):
            if getattr(self, "n" if key == "filters" else key) < 1:
                raise s.error(f"must be a positive integer, found "
                              f"{s.raw(key)}", key)
        if self.stride_x < 1 or self.stride_y < 1 or self.dilation < 1:
            raise s.error("stride and dilation must be positive integers", "stride")
        if self.pad < 0:
            raise s.error(f"padding must be >= 0, found {self.pad}", "padding")
        if not (ctx.w and ctx.h and ctx.c):
            raise s.error(f"the layer before a convolutional layer must output an image, "
                          f"found {ctx.w}x{ctx.h}x{ctx.c}")
        if self.xnor:
            self.groups = 1
        if self.groups < 1:
            self.groups = 1
        if ctx.c % self.groups or self.n % self.groups:
            raise s.error(f"groups={self.groups} must divide both the input channels ({ctx.c}) "
                          f"and filters ({self.n})", "groups")
        if self.deform and self.size == 1:
            raise s.error(f"{self.deform}=1 needs size >= 3, as in Darknet", self.deform)
        # AB's only coordconv (its GPU build) writes the coordinates at wrong places, from
        # racing threads: there are no semantics to reproduce
        self.unsupported = ("coordconv=1 (AB's GPU kernel writes its coordinates, racing, to "
                            "the output's values image*channels + channel, not to channels "
                            "0-2: nothing to reproduce)" if self.coordconv else None)
        blur_strides = (self.stride_x, self.stride_y)
        if self.antialiasing:   # the convolution at stride 1, then the blur with the strides
            self.stride_x = self.stride_y = 1

        self.share_index = s.get_int("share_index", -1000000000)
        self.share_layer = None
        if self.share_index != -1000000000:
            ref = self.share_index if self.share_index >= 0 else ctx.index + self.share_index
            if not 0 <= ref < ctx.index or not isinstance(ctx.layers[ref], Convolutional):
                raise s.error(f"share_index={self.share_index} must name an earlier "
                              f"convolutional layer", "share_index")
            self.share_layer = ctx.layers[ref]

        self.w, self.h, self.c = ctx.w, ctx.h, ctx.c
        self.nweights = (self.c // self.groups) * self.n * self.size * self.size
        self.out_h = (self.h + 2 * self.pad - self.size) // self.stride_y + 1
        self.out_w = (self.w + 2 * self.pad - self.size) // self.stride_x + 1
        self.out_c = self.n
        if self.out_h < 1 or self.out_w < 1:
            raise s.error(f"output would be empty ({self.out_w}x{self.out_h}): input "
                          f"{self.w}x{self.h} is too small for size={self.size}")
        self.blur = None
        if self.antialiasing:
            self.blur = Blur(self.antialiasing, self.n, self.out_h, self.out_w, *blur_strides)
            self.out_h, self.out_w = self.blur.out_h, self.blur.out_w
        if self.share_layer is not None:
            sl = self.share_layer
            if (sl.size, sl.nweights, sl.c, sl.n) != (self.size, self.nweights, self.c, self.n):
                raise s.error("size, channels or filters differ from the shared layer "
                              f"{sl.index}", "share_index")
            if self.batch_normalize and not sl.batch_normalize:
                # Darknet shares the layer's scales, means and variances too: none to share
                raise s.error(f"batch_normalize={self.batch_normalize} but the shared layer "
                              f"{sl.index} has no batch norm (Darknet would share its scales "
                              "and statistics, and crash): give both layers batch_normalize=1 "
                              "or neither", "batch_normalize")
        self.outputs = self.out_h * self.out_w * self.out_c
        self.inputs = self.w * self.h * self.c
        core = self.blur or self
        self.bflops = 2.0 * self.nweights * core.out_h * core.out_w / 1e9
        if self.xnor:
            self.bflops /= 32

    # -- parameters ----------------------------------------------------------------------
    def param_shapes(self):
        if self.share_layer is not None:
            return []  # Darknet neither saves nor loads a shared layer's weights
        shapes = [("biases", (self.n,))]
        if self.batch_normalize:
            shapes += [("scales", (self.n,)), ("rolling_mean", (self.n,)),
                       ("rolling_variance", (self.n,))]
        shapes.append(("weights", (self.n, self.c // self.groups, self.size, self.size)))
        return shapes

    def init_params(self, rng):
        super().init_params(rng)
        if self.share_layer is not None:
            return
        scale = np.sqrt(2.0 / (self.size * self.size * self.c / self.groups))
        w = self.params["weights"]
        w[...] = scale * rng.uniform(-1, 1, w.shape)
        if self.batch_normalize:
            self.params["scales"][...] = 1
            self.params["rolling_variance"][...] = 1

    def check_trainable(self):
        super().check_trainable()
        if self.reverse:
            raise self.refuse_training("reverse", "Darknet's inverse-weight update")
        if self.assisted_excitation:
            raise self.refuse_training("assisted_excitation", "assisted excitation")
        if self.deform:
            raise self.refuse_training(self.deform, "the weights' symmetrisation")
        if self.batch_normalize == 2:   # inference: plain batch norm on the rolling statistics
            option = "cbn" if "cbn" in self.section.options else "batch_normalize"
            raise self.refuse_training(option, "AB's cross mini-batch normalisation (batch "
                                       "statistics averaged over an iteration's subdivisions)",
                                       "use batch_normalize=1 instead (the same network at "
                                       "inference), or train with Darknet")

    def weights_of(self):
        return (self.share_layer or self).params

    # -- forward -------------------------------------------------------------------------
    def _binarized(self, state, x, weights):
        """binary=1 / xnor=1 (AB's GPU build): the binarized weights and, with xnor, input
        (pydarknet.host_math) to convolve instead."""
        B = state.backend
        binary = binarize_weights(B.to_numpy(weights))
        weights = state.output_buffer(self, binary.shape, "binary_weights")
        B.copy_from_numpy(weights, binary)
        if self.xnor:
            signs = binarize_signs(B.to_numpy(x))
            x = state.output_buffer(self, x.shape, "binary_input")
            B.copy_from_numpy(x, signs)
        return x, weights

    def forward(self, x, state):
        if self.unsupported:
            raise NotSupportedError(f"{self.section.path}:{self.section.line}: layer {self.index}:"
                                    f" {self.unsupported} is not implemented")
        B = state.backend
        p = self.weights_of()
        weights, original = p["weights"], x
        if self.xnor or self.binary:
            x, weights = self._binarized(state, x, weights)
        n = x.shape[0]
        out = (state.output_buffer(self, self.blur.input_shape(n), "blur_input") if self.blur
               else state.output_buffer(self, self.out_shape(n)))
        pad = self.pad * self.dilation  # Darknet pads by pad*dilation, output size ignores it
        geometry = (self.stride_y, self.stride_x, pad, pad, self.dilation, self.groups)
        # conv, bias or batch norm, activation: one op (fused on the CPU); also in training
        # below a stopbackward=1 layer (AB's frozen layers: their batch norm as at inference)
        if not state.train or self.index < state.frozen_below:
            bn = ((p["scales"], p["rolling_mean"], p["rolling_variance"])
                  if self.batch_normalize else ())
            y = B.conv2d_activate_inference(x, weights, out, *geometry, p["biases"],
                                            self.activation, *bn)
            return self.blur.forward(state, self, y) if self.blur else y
        B.conv2d(x, weights, out, *geometry)
        if self.batch_normalize:
            self._bn = bn_train_forward(B, out, p["scales"], p["biases"], p["rolling_mean"],
                                        p["rolling_variance"],
                                        alloc=lambda name, shape: state.output_buffer(self, shape,
                                                                                      name))
        else:
            B.add_bias(out, p["biases"])
        self._input, self._original_input, self._weights = x, original, weights
        y = activate_output(self, state, out)
        if self.blur:
            self._unblurred = y
            return self.blur.forward(state, self, y)
        return y

    def backward(self, state):
        B = state.backend
        owner = self.share_layer or self
        delta, y = state.deltas[self.index], state.outputs[self.index]
        if self.blur:
            delta, y = self.blur.backward(state, self, delta), self._unblurred
        B.gradient(delta, y, self.activation, self._act_input)
        if self.batch_normalize:
            bn_backward(B, delta, self._bn, owner.params["scales"], owner.grads)
        else:
            B.backward_bias(owner.grads["biases"], delta)
        pad = self.pad * self.dilation
        dx = self.input_delta(state)
        # binary / xnor (AB's GPU build): the weights' gradient from the binarized input, the
        # input's through the binarized weights, then (xnor) the whole input delta times
        # hardtan's gradient at the real input (1 inside (-1, 1), else 0)
        B.conv2d_backward(self._input, self._weights, delta, dx, owner.grads["weights"],
                          self.stride_y, self.stride_x, pad, pad, self.dilation, self.groups)
        if self.xnor and dx is not None:
            B.gradient(dx, self._original_input, "hardtan")

    # -- description ---------------------------------------------------------------------
    def fields(self):
        d = {"filters": self.n, "size": self.size, "stride": self.stride_x,
             "stride_x": self.stride_x, "stride_y": self.stride_y, "dilation": self.dilation,
             "groups": self.groups, "pad": self.pad, "batch_normalize": self.batch_normalize,
             "activation": self.activation, "nweights": self.nweights}
        if self.xnor:
            d["xnor"] = self.xnor
        if self.share_layer is not None:
            d["share_index"] = self.share_layer.index
        return d

    def describe(self):
        stride = (f"{self.stride_x}" if self.stride_x == self.stride_y
                  else f"{self.stride_x}x{self.stride_y}")
        dil = f"({self.dilation})" if self.dilation > 1 else ""
        grp = f"/{self.groups}" if self.groups > 1 else ""
        return f"{self.n:5d}{grp:<4} {self.size:2d} x{self.size:2d}/{stride:>3}{dil}"
