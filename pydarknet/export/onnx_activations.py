"""Darknet's activations as ONNX ops, with Darknet's constants (src_c/activations.c).

Where ONNX has the op with the same formula it is used (Sigmoid, Relu, LeakyRelu, Elu, Selu,
Tanh, Mish at opset >= 18); the others are composed from elementwise ops. ``normalize_channels*``
work per pixel across the channel axis.
"""

import numpy as np

from ..errors import PydarknetError


def activate(b, t, name, mish_op=True, hint="act"):
    """Tensor ``t`` (per-image [C, ...]) through Darknet's activation ``name``."""
    if name in ("linear", None):
        return t
    fn = _SIMPLE.get(name)
    if fn is not None:
        return fn(b, t, hint)
    if name == "mish":
        if mish_op and b.opset >= 18:
            return b.unary("Mish", t, hint)
        # x * tanh(softplus(x)); Darknet's softplus threshold (x > 20 -> x) changes the result
        # by less than float32's resolution, so plain Softplus matches it
        return b.binary("Mul", t, b.unary("Tanh", b.unary("Softplus", t)), hint)
    if name.startswith("normalize_channels"):
        return _normalize_channels(b, t, name, hint)
    raise PydarknetError(f"activation '{name}' has no ONNX form")


def _clip(b, t, lo, hi):
    name = b.op("Clip", [t.name, b.scalar(lo), b.scalar(hi)], "clip")
    return type(t)(name, t.shape)


def _leaky(slope):
    return lambda b, t, h: b.unary("LeakyRelu", t, h, alpha=slope)


def _ramp(b, t, h):          # x*(x>0) + .1x
    return b.binary("Add", b.unary("Relu", t), b.binary("Mul", t, np.float32(0.1)), h)


def _loggy(b, t, h):         # 2/(1+exp(-x)) - 1
    s = b.binary("Mul", b.unary("Sigmoid", t), np.float32(2))
    return b.binary("Sub", s, np.float32(1), h)


def _piecewise_linear(lo, hi, slope_in, offset_in, slope_out):
    """f(x) = slope_in*clip(x, lo, hi) + offset_in + slope_out*(x - clip(x, lo, hi)):
    plse and lhtan, whose outer pieces continue the inner one with a small slope."""
    def fn(b, t, h):
        c = _clip(b, t, lo, hi)
        inner = c
        if slope_in != 1:
            inner = b.binary("Mul", inner, np.float32(slope_in))
        if offset_in:
            inner = b.binary("Add", inner, np.float32(offset_in))
        outer = b.binary("Mul", b.binary("Sub", t, c), np.float32(slope_out))
        return b.binary("Add", inner, outer, h)
    return fn


def _stair(b, t, h):
    # n = floor(x); even n: floor(x/2); odd n: (x - n) + floor(x/2)
    n = b.unary("Floor", t)
    half = b.unary("Floor", b.binary("Mul", t, np.float32(0.5)))
    odd = b.binary("Sub", n, b.binary("Mul", b.unary("Floor", b.binary("Mul", n,
                                                                        np.float32(0.5))),
                                      np.float32(2)))
    return b.binary("Add", half, b.binary("Mul", odd, b.binary("Sub", t, n)), h)


def _gelu(b, t, h):
    # Darknet's tanh approximation with its own constants: 0.5x(1 + tanh(0.797885x + 0.035677x^3))
    x3 = b.binary("Mul", b.binary("Mul", t, t), t)
    inner = b.binary("Add", b.binary("Mul", t, np.float32(0.797885)),
                     b.binary("Mul", x3, np.float32(0.035677)))
    one_plus = b.binary("Add", b.unary("Tanh", inner), np.float32(1))
    return b.binary("Mul", b.binary("Mul", t, np.float32(0.5)), one_plus, h)


def _swish(b, t, h):
    return b.binary("Mul", t, b.unary("Sigmoid", t), h)


def _hard_mish(b, t, h):
    # x>0: x; -2<x<=0: x*x/2 + x; else 0  ==  x * clip(x/2 + 1, 0, 1)
    g = _clip(b, b.binary("Add", b.binary("Mul", t, np.float32(0.5)), np.float32(1)), 0, 1)
    return b.binary("Mul", t, g, h)


_SIMPLE = {
    "logistic": lambda b, t, h: b.unary("Sigmoid", t, h),
    "relu": lambda b, t, h: b.unary("Relu", t, h),
    "relie": _leaky(0.01),
    "ramp": _ramp,
    "tanh": lambda b, t, h: b.unary("Tanh", t, h),
    "plse": _piecewise_linear(-4, 4, 0.125, 0.5, 0.01),
    "revleaky": _leaky(0.1),
    "leaky": _leaky(0.1),
    "elu": lambda b, t, h: b.unary("Elu", t, h, alpha=1.0),
    "loggy": _loggy,
    "stair": _stair,
    "hardtan": lambda b, t, h: _clip(b, t, -1, 1),
    "lhtan": _piecewise_linear(0, 1, 1, 0, 0.001),
    "selu": lambda b, t, h: b.unary("Selu", t, h, alpha=1.6732, gamma=1.0507),
    "gelu": _gelu,
    "swish": _swish,
    "hard_mish": _hard_mish,
    "relu6": lambda b, t, h: _clip(b, t, 0, 6),
}


def _normalize_channels(b, t, name, hint):
    eps = np.float32(0.0001)
    if name == "normalize_channels":
        r = b.unary("Relu", t)
        total = b.binary("Add", b.reduce("ReduceSum", r, [0]), eps)
        return b.binary("Div", r, total, hint)
    v = t
    if name == "normalize_channels_softmax_maxval":
        v = b.binary("Sub", t, b.reduce("ReduceMax", t, [0]))
    e = b.unary("Exp", v)
    total = b.binary("Add", b.reduce("ReduceSum", e, [0]), eps)
    return b.binary("Div", e, total, hint)
