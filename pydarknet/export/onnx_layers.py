"""One converter per Darknet layer type: ``convert(cx, layer, x) -> Tensor``.

``cx`` is the export context (``cx.b`` the GraphBuilder, ``cx.outputs[i]`` layer i's output
Tensor, ``cx.act(t, name)`` an activation); ``x`` the layer's input (the previous layer's
output, per-image shape [C, H, W]). Each converter follows the layer's own forward in
pydarknet/layers/ and the backend op it calls (pydarknet/backend/cpu.py), reading the layer's
attributes only.
"""

import numpy as np

from ..errors import NotSupportedError
from ..host_math import FLT_MAX, binarize_weights
from ..layers.normalization import window_matrix
from ..tree import load_tree
from ..weight_tools import batchnorm_affine, fold_batchnorm
from .onnx_graph import Tensor

F32 = np.float32


class Unexpressible(Exception):
    """Raised by a converter with the reason the layer has no ONNX form."""


def _image(cx, t, layer, c=None, h=None, w=None):
    return cx.b.reshape(t, (c or layer.c, h or layer.h, w or layer.w))


def _fold_bn(p, weights, batch_normalize):
    """Batch norm with rolling statistics folded into weights [n, ...] and a bias [n]."""
    if batch_normalize:
        return fold_batchnorm(weights, p["biases"], p["scales"], p["rolling_mean"],
                              p["rolling_variance"])
    return weights.astype(F32), p["biases"].astype(F32)


def _host(a):
    return np.asarray(a, dtype=F32)


def _core_size(layer):
    """(height, width) of the layer's own result: before the blur of antialiasing=."""
    blur = getattr(layer, "blur", None)
    return (blur.h, blur.w) if blur else (layer.out_h, layer.out_w)


def _blurred(cx, layer, t):
    """antialiasing=: the fixed depthwise blur with the layer's strides
    (pydarknet.layers.antialias)."""
    blur = getattr(layer, "blur", None)
    if blur is None:
        return t
    p = blur.pad
    name = cx.b.op("Conv", [t.name, cx.b.const(blur.weights, f"blur{layer.index}_w")],
                   f"blur{layer.index}", kernel_shape=[blur.size, blur.size],
                   strides=[blur.stride_y, blur.stride_x], group=blur.c, pads=[p, p, p, p])
    return Tensor(name, (blur.c, blur.out_h, blur.out_w))


# -- convolution and connected -----------------------------------------------------------------
def convolutional(cx, layer, x):
    if getattr(layer, "unsupported", None):
        raise Unexpressible(layer.unsupported)
    b = cx.b
    src = layer.weights_of() if hasattr(layer, "weights_of") else layer.params
    params = {k: _host(v) for k, v in src.items()}
    weights = params["weights"]
    if layer.xnor or layer.binary:           # the weights binarized before batch norm folds in
        weights = binarize_weights(weights)
    w, bias = _fold_bn(params, weights, layer.batch_normalize)
    x = _image(cx, x, layer)
    if layer.xnor:      # the input's signs: +1 where x >= 0, else -1, as Sign(Sign(x) + 0.5)
        # (no boolean tensor: OpenCV's ONNX importer mishandles them)
        x = b.unary("Sign", b.binary("Add", b.unary("Sign", x), F32(0.5)), f"xnor{layer.index}")
    d, k = layer.dilation, layer.size
    reach = d * (k - 1) + 1
    pad = layer.pad * d      # Darknet pads by pad*dilation; its output size ignores dilation
    out_h, out_w = _core_size(layer)
    ends = []
    for size_in, size_out, stride in ((layer.h, out_h, layer.stride_y),
                                      (layer.w, out_w, layer.stride_x)):
        ends.append(max(0, (size_out - 1) * stride + reach - size_in - pad))
    name = b.op("Conv", [x.name, b.const(w, f"conv{layer.index}_w"),
                         b.const(bias, f"conv{layer.index}_b")], f"conv{layer.index}",
                kernel_shape=[k, k], strides=[layer.stride_y, layer.stride_x],
                dilations=[d, d], group=layer.groups, pads=[pad, pad, ends[0], ends[1]])
    oh = (layer.h + pad + ends[0] - reach) // layer.stride_y + 1
    ow = (layer.w + pad + ends[1] - reach) // layer.stride_x + 1
    t = Tensor(name, (layer.n, oh, ow))
    t = b.slice(b.slice(t, 1, 0, out_h), 2, 0, out_w)
    return _blurred(cx, layer, cx.act(t, layer.activation))


def connected(cx, layer, x):
    b = cx.b
    params = {k: _host(v) for k, v in layer.params.items()}
    w, bias = _fold_bn(params, params["weights"], layer.batch_normalize)
    flat = b.reshape(x, (layer.inputs,))
    name = b.op("Gemm", [flat.name, b.const(w, f"fc{layer.index}_w"),
                         b.const(bias, f"fc{layer.index}_b")], f"fc{layer.index}", transB=1)
    t = Tensor(name, (layer.outputs,))
    return cx.act(b.reshape(t, (layer.outputs, 1, 1)), layer.activation)


def batchnorm(cx, layer, x):
    p = {k: _host(v) for k, v in layer.params.items()}
    inv, shift = batchnorm_affine(p["scales"], p["rolling_mean"], p["rolling_variance"],
                                  p["biases"])
    x = _image(cx, x, layer)
    y = cx.b.binary("Mul", x, inv.astype(F32).reshape(-1, 1, 1))
    return cx.b.binary("Add", y, shift.astype(F32).reshape(-1, 1, 1), f"bn{layer.index}")


def normalization(cx, layer, x):
    """Darknet's LRN: x * (kappa + alpha * window @ x^2)^-beta, the window sums as a 1x1 Conv
    (pydarknet.layers.normalization.window_matrix)."""
    b = cx.b
    x = _image(cx, x, layer)
    squares = b.binary("Mul", x, x)
    window = window_matrix(layer.c, layer.size)
    w = (layer.alpha * window).astype(F32)[:, :, None, None]
    bias = np.full(layer.c, layer.kappa, F32)
    norms = b.op("Conv", [squares.name, b.const(w, f"lrn{layer.index}_w"),
                          b.const(bias, f"lrn{layer.index}_b")], f"lrn{layer.index}_norms",
                 kernel_shape=[1, 1])
    scale = b.binary("Pow", Tensor(norms, x.shape), F32(-layer.beta))
    return b.binary("Mul", x, scale, f"lrn{layer.index}")


def implicit(cx, layer, x):
    """YOLOR's learned tensor, the same for every image: Expand to the input's batch."""
    b, i = cx.b, layer.index
    shape = b.op("Shape", [x.name], f"implicit{i}_shape")
    batch = b.op("Slice", [shape, b.ints([0]), b.ints([1])], f"implicit{i}_batch")
    dims = b.op("Concat", [batch, b.ints([layer.out_c, layer.out_h, layer.out_w])],
                f"implicit{i}_dims", axis=0)
    value = _host(layer.params["weights"]).reshape(1, layer.out_c, layer.out_h, layer.out_w)
    name = b.op("Expand", [b.const(value, f"implicit{i}_w"), dims], f"implicit{i}")
    return Tensor(name, (layer.out_c, layer.out_h, layer.out_w))


def local(cx, layer, x):
    """Locally connected: im2col as a one-hot grouped convolution, then one Einsum."""
    b, k, c = cx.b, layer.size, layer.c
    x = _image(cx, x, layer)
    onehot = np.zeros((c * k * k, 1, k, k), F32)
    for ch in range(c):
        for ky in range(k):
            for kx in range(k):
                onehot[(ch * k + ky) * k + kx, 0, ky, kx] = 1
    p, s = layer.pad, layer.stride
    eh = max(0, (layer.out_h - 1) * s + k - layer.h - p)
    ew = max(0, (layer.out_w - 1) * s + k - layer.w - p)
    cols = b.op("Conv", [x.name, b.const(onehot, "local_im2col")], "im2col", kernel_shape=[k, k],
                strides=[s, s], pads=[p, p, eh, ew], group=c)
    ch = (layer.h + p + eh - k) // s + 1
    cw = (layer.w + p + ew - k) // s + 1
    t = b.slice(b.slice(Tensor(cols, (c * k * k, ch, cw)), 1, 0, layer.out_h), 2, 0, layer.out_w)
    t = b.reshape(t, (c * k * k, layer.out_h * layer.out_w))
    w = _host(layer.params["weights"])      # [locations, filters, c*k*k]
    name = b.op("Einsum", [t.name, b.const(w, f"local{layer.index}_w")], "local",
                equation="nkj,jfk->nfj")
    out = Tensor(name, (layer.n, layer.out_h * layer.out_w))
    bias = _host(layer.params["biases"]).reshape(layer.n, -1)
    out = b.binary("Add", out, bias)
    return cx.act(b.reshape(out, (layer.n, layer.out_h, layer.out_w)), layer.activation)


# -- combining layers ----------------------------------------------------------------------------
def _normalized_shortcut_weights(layer):
    """The shortcut's weights as [n+1, C or 1] after Darknet's relu/softmax normalisation."""
    w = _host(layer.params["weights"]).reshape(layer.n + 1, -1)
    if layer.weights_normalization == 1:
        r = np.maximum(w, 0)
        return r / (F32(0.0001) + r.sum(axis=0))
    if layer.weights_normalization == 2:
        e = np.exp(w - w.max(axis=0))
        return e / (F32(0.0001) + e.sum(axis=0))
    return w


def _weighted(b, t, w):
    """t [C', H, W] times a shortcut weight row (one value, or one per channel)."""
    if w is None:
        return t
    if w.size == 1:
        return b.binary("Mul", t, F32(w[0]))
    return b.binary("Mul", t, w[:t.shape[0]].astype(F32).reshape(-1, 1, 1))


def _resampled_shortcut(cx, layer, x):
    """pjreddie's shortcut between spatial sizes: every stride-th value of the from layer into
    every sample-th place (zeros between), padded with zeros to the input's size, added."""
    b = cx.b
    stride, sample, c, h, w = layer.resample
    i = layer.layers[0]
    src_layer = cx.layers[i]
    src = b.reshape(cx.outputs[i], (src_layer.out_c, src_layer.out_h, src_layer.out_w))
    name = b.op("Slice", [src.name, b.ints([0, 0, 0]), b.ints([c, h * stride, w * stride]),
                          b.ints([1, 2, 3]), b.ints([1, stride, stride])],
                f"shortcut{layer.index}_take")
    src = Tensor(name, (c, h, w))
    if sample > 1:     # [c, h, 1, w, 1] padded to [c, h, s, w, s]: zeros between the values
        src = b.pad(b.reshape(src, (c, h, 1, w, 1)), [0] * 5, [0, 0, sample - 1, 0, sample - 1])
        src = b.reshape(src, (c, h * sample, w * sample))
    src = b.pad(src, [0, 0, 0], [layer.c - c, layer.h - src.shape[1], layer.w - src.shape[2]])
    return cx.act(b.binary("Add", _image(cx, x, layer), src), layer.activation)


def shortcut(cx, layer, x):
    if layer.resample:
        return _resampled_shortcut(cx, layer, x)
    b = cx.b
    wts = _normalized_shortcut_weights(layer) if layer.nweights else None
    out = _weighted(b, _image(cx, x, layer), None if wts is None else wts[0])
    c = layer.c
    for k, i in enumerate(layer.layers, start=1):
        src = cx.outputs[i]
        src_c = cx.layers[i].out_c
        src = b.reshape(src, (src_c, layer.h, layer.w))
        src = b.slice(src, 0, 0, min(src_c, c))   # Darknet adds the overlapping channels
        src = _weighted(b, src, None if wts is None else wts[k])
        if src.shape[0] == c:
            out = b.binary("Add", out, src)
        else:
            head = b.binary("Add", b.slice(out, 0, 0, src.shape[0]), src)
            out = b.concat([head, b.slice(out, 0, src.shape[0], c)], 0)
    return cx.act(out, layer.activation)


def route(cx, layer, x):
    b, parts = cx.b, []
    g, gid = layer.groups, layer.group_id
    for i, size in zip(layer.layers, layer.sizes):
        src, part = cx.outputs[i], size // g
        src_layer = cx.layers[i]
        c = src_layer.out_c
        if g == 1:
            parts.append(b.reshape(src, (c, src_layer.out_h, src_layer.out_w)))
        elif c % g == 0 and c * src_layer.out_h * src_layer.out_w == size:
            img = b.reshape(src, (c, src_layer.out_h, src_layer.out_w))
            parts.append(b.slice(img, 0, (c // g) * gid, (c // g) * (gid + 1)))
        else:   # a group that is no whole number of channels: slice the flat output
            flat = b.reshape(src, (size,))
            parts.append(b.slice(flat, 0, part * gid, part * (gid + 1)))
    if all(len(p.shape) == 3 for p in parts):
        return b.concat(parts, 0, f"route{layer.index}")
    return b.concat([b.reshape(p, (p.size,)) for p in parts], 0, f"route{layer.index}")


def scale_channels(cx, layer, x):
    b = cx.b
    src = b.reshape(cx.outputs[layer.from_index], (layer.out_c, layer.out_h, layer.out_w))
    if layer.scale_wh:
        s = b.reshape(x, (1, layer.out_h, layer.out_w))
    else:
        s = b.reshape(x, (layer.out_c, 1, 1))
    return cx.act(b.binary("Mul", src, s, f"scale{layer.index}"), layer.activation)


def sam(cx, layer, x):
    b = cx.b
    shape = (layer.out_c, layer.out_h, layer.out_w)
    src = b.reshape(cx.outputs[layer.from_index], shape)
    return cx.act(b.binary("Mul", src, b.reshape(x, shape), f"sam{layer.index}"),
                  layer.activation)


# -- pooling and resampling ----------------------------------------------------------------------
def _window_pads(layer):
    """Darknet's window origin -(pad // 2), and the end padding that yields its output size."""
    begin = layer.pad // 2
    out_h, out_w = _core_size(layer)
    ends = [max(0, (o - 1) * s + layer.size - n - begin)
            for n, o, s in ((layer.h, out_h, layer.stride_y), (layer.w, out_w, layer.stride_x))]
    return begin, ends


def _pool_out(layer, begin, ends):
    return ((layer.h + begin + ends[0] - layer.size) // layer.stride_y + 1,
            (layer.w + begin + ends[1] - layer.size) // layer.stride_x + 1)


def maxpool(cx, layer, x):
    t = _maxpool(cx, layer, x)
    if getattr(layer, "maxpool_zero_nonmax", 0):    # only each window's own maximum stays
        b = cx.b
        same = b.op("Equal", [t.name, _image(cx, x, layer).name], f"maxpool{layer.index}_own")
        t = Tensor(b.op("Where", [same, t.name, b.scalar(0.0)], f"maxpool{layer.index}_nms"),
                   t.shape)
    return _blurred(cx, layer, t)


def _maxpool(cx, layer, x):
    b = cx.b
    x = _image(cx, x, layer)
    if layer.maxpool_depth:   # max over channels g, g + out_c, g + 2*out_c, ...
        oc = layer.out_c
        groups = -(-layer.c // oc)
        x = b.pad(x, [0, 0, 0], [groups * oc - layer.c, 0, 0], -FLT_MAX)
        t = b.reshape(x, (groups, oc, layer.h, layer.w))
        return b.reduce("ReduceMax", t, [0], keepdims=0, hint=f"maxpool{layer.index}")
    begin, ends = _window_pads(layer)
    k = layer.size
    attrs = dict(kernel_shape=[k, k], strides=[layer.stride_y, layer.stride_x])
    if begin < k and max(ends) < k:   # ONNX MaxPool ignores padded cells, as Darknet does
        attrs["pads"] = [begin, begin, ends[0], ends[1]]
    else:                             # windows wholly outside the image: Darknet's -FLT_MAX
        x = b.pad(x, [0, begin, begin], [0, ends[0], ends[1]], -FLT_MAX)
    name = b.op("MaxPool", [x.name], f"maxpool{layer.index}", **attrs)
    oh, ow = _pool_out(layer, begin, ends)
    t = Tensor(name, (layer.c, oh, ow))
    out_h, out_w = _core_size(layer)
    return b.slice(b.slice(t, 1, 0, out_h), 2, 0, out_w)


def local_avgpool(cx, layer, x):
    """Average over the in-image cells of each window: a zero-padded window sum (a depthwise
    convolution of ones: OpenCV's AveragePool ignores count_include_pad) times a constant
    1/count (0 where a window holds no cell, as Darknet)."""
    b = cx.b
    x = _image(cx, x, layer)
    begin, ends = _window_pads(layer)
    k = layer.size
    attrs = dict(kernel_shape=[k, k], strides=[layer.stride_y, layer.stride_x],
                 group=layer.c)
    if begin < k and max(ends) < k:
        attrs["pads"] = [begin, begin, ends[0], ends[1]]
    else:   # (a Pad node before it trips onnxruntime's Pad fusion when the input is reused)
        x = b.pad(x, [0, begin, begin], [0, ends[0], ends[1]], 0.0)
    ones = b.const(np.ones((layer.c, 1, k, k), F32), f"window{layer.index}")
    name = b.op("Conv", [x.name, ones], f"windowsum{layer.index}", **attrs)
    oh, ow = _pool_out(layer, begin, ends)
    t = b.slice(b.slice(Tensor(name, (layer.c, oh, ow)), 1, 0, layer.out_h), 2, 0, layer.out_w)

    def counts(n, o, s):
        start = np.arange(o) * s - begin
        return np.clip(start + k, 0, n) - np.clip(start, 0, n)
    count = np.outer(counts(layer.h, layer.out_h, layer.stride_y),
                     counts(layer.w, layer.out_w, layer.stride_x)).astype(np.float64)
    factor = np.where(count > 0, 1 / np.maximum(count, 1), 0).astype(F32)
    return b.binary("Mul", t, factor.reshape(1, layer.out_h, layer.out_w))


def avgpool(cx, layer, x):
    name = cx.b.op("GlobalAveragePool", [_image(cx, x, layer).name], f"gap{layer.index}")
    return Tensor(name, (layer.c, 1, 1))


def upsample(cx, layer, x):
    b, s = cx.b, layer.stride
    x = _image(cx, x, layer)
    c, h, w = x.shape
    if layer.reverse:    # Darknet's negative stride: the sum over each s x s block
        x = b.slice(b.slice(x, 1, 0, layer.out_h * s), 2, 0, layer.out_w * s)
        t = b.reshape(x, (c, layer.out_h, s, layer.out_w, s))
        t = b.reduce("ReduceSum", t, [2, 4], keepdims=0)
    else:                # nearest neighbour, exactly: broadcast each pixel over s x s
        t = b.reshape(x, (c, h, 1, w, 1))
        name = b.op("Expand", [t.name, b.ints([1, 1, 1, s, 1, s])], "upsample")
        t = b.reshape(Tensor(name, (c, h, s, w, s)), (c, h * s, w * s))
    if layer.scale != 1:
        t = b.binary("Mul", t, F32(layer.scale))
    return t


def _reorg_permutation(layer):
    """Index of the input (flat, per image) each output value comes from (Darknet's
    reorg_cpu, as pydarknet's reorg layers call it)."""
    if layer.layer_type == "reorg_old":
        w, h, c = layer.w, layer.h, layer.c
    else:
        w, h, c = layer.out_w, layer.out_h, layer.out_c
    st = layer.stride
    in_c = c // (st * st)
    k, j, i = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    in_index = (i + w * (j + h * k)).ravel()
    c2, offset = k % in_c, k // in_c
    w2, h2 = i * st + offset % st, j * st + offset // st
    out_index = (w2 + w * st * (h2 + h * st * c2)).ravel()
    perm = np.zeros(layer.outputs, np.int64)
    if layer.reverse:
        perm[out_index] = in_index
    else:
        perm[in_index] = out_index
    return perm


def reorg(cx, layer, x):
    b = cx.b
    flat = b.reshape(x, (layer.inputs,))
    name = b.op("Gather", [flat.name, b.const(_reorg_permutation(layer), "reorg_idx", np.int64)],
                f"reorg{layer.index}", axis=1)
    return Tensor(name, (layer.outputs,))


def crop(cx, layer, x):
    b = cx.b
    x = _image(cx, x, layer)
    dh, dw = (layer.h - layer.out_h) // 2, (layer.w - layer.out_w) // 2
    t = b.slice(b.slice(x, 1, dh, dh + layer.out_h), 2, dw, dw + layer.out_w)
    if layer.noadjust:
        return t
    return b.binary("Add", b.binary("Mul", t, F32(2)), F32(-1))


# -- outputs ---------------------------------------------------------------------------------
def _softmax_rows(b, t, temperature=1.0):
    """Softmax over the last per-image axis."""
    if temperature != 1:
        t = b.binary("Div", t, F32(temperature))
    return Tensor(b.op("Softmax", [t.name], "softmax", axis=-1), t.shape)


def _tree_softmax(b, t, tree, temperature=1.0):
    """The softmax within each group of a softmax tree along t's last axis (pydarknet.tree).
    Groups are bucketed by size (up to 1, 2, 4, ...): each bucket gathers its groups padded
    with -inf to the bucket's size, soft-maxes the rows, and one last Gather puts every class
    back in place, so the graph grows with the log of the largest group, not the groups."""
    n = tree.n
    if temperature != 1:
        t = b.binary("Div", t, F32(temperature))
    lead = tuple(t.shape[:-1])
    axis = len(t.shape)                 # the batched tensor's last axis
    ninf = b.const(np.full((1,) + lead + (1,), -np.inf, F32), "tree_ninf")
    shape = b.op("Concat", [b.op("Slice", [b.op("Shape", [t.name], "tree_shape"),
                                           b.ints([0]), b.ints([1])], "tree_batch"),
                            b.ints(list(lead) + [1])], "tree_pad_shape", axis=0)
    padded = Tensor(b.op("Concat", [t.name, b.op("Expand", [ninf, shape], "tree_pad")],
                         "tree_in", axis=axis), lead + (n + 1,))
    sizes, offsets = tree.group_size, tree.group_offset
    live = np.flatnonzero(sizes > 0)
    buckets = {}
    for g in live:
        buckets.setdefault(int(np.ceil(np.log2(sizes[g]))) if sizes[g] > 1 else 0, []).append(g)
    parts, place, filled = [], np.empty(n, np.int64), 0
    for k in sorted(buckets):
        groups = buckets[k]
        width = int(sizes[groups].max())
        index = np.full((len(groups), width), n, np.int64)     # n: the -inf column
        for r, g in enumerate(groups):
            members = np.arange(offsets[g], offsets[g] + sizes[g])
            index[r, :sizes[g]] = members
            place[members] = filled + r * width + np.arange(sizes[g])
        rows = Tensor(b.op("Gather", [padded.name, b.const(index.reshape(-1), "tree_idx",
                                                           np.int64)], "tree_take", axis=axis),
                      lead + (index.size,))
        rows = b.reshape(rows, lead + (len(groups), width))
        soft = Tensor(b.op("Softmax", [rows.name], "tree_softmax", axis=-1), rows.shape)
        parts.append(b.reshape(soft, lead + (index.size,)))
        filled += index.size
    allp = b.concat(parts, len(lead)) if len(parts) > 1 else parts[0]
    return Tensor(b.op("Gather", [allp.name, b.const(place, "tree_place", np.int64)],
                       "tree_out", axis=axis), lead + (n,))


def softmax(cx, layer, x):
    b = cx.b
    if layer.tree:
        return _tree_softmax(b, b.reshape(x, (layer.inputs,)), load_tree(layer),
                             layer.temperature)
    t = b.reshape(x, (layer.groups, layer.inputs // layer.groups))
    return _softmax_rows(b, t, layer.temperature)


def _masked_logistic(b, t, mask, scale, shift):
    """t [anchors, entries, H, W]: the logistic where ``mask`` (over entries), then
    v * scale + shift per entry (Darknet's scale_x_y on the centre entries). The masked
    entries are runs sliced, activated and concatenated (no boolean tensor: OpenCV's ONNX
    importer takes none)."""
    mask = np.asarray(mask, bool)
    if mask.any():
        runs, start = [], 0
        for end in range(1, len(mask) + 1):
            if end == len(mask) or mask[end] != mask[start]:
                part = b.slice(t, 1, start, end)
                runs.append(b.unary("Sigmoid", part) if mask[start] else part)
                start = end
        t = b.concat(runs, 1)
    if np.any(scale != 1) or np.any(shift != 0):
        t = b.binary("Add", b.binary("Mul", t, scale.astype(F32).reshape(1, -1, 1, 1)),
                     shift.astype(F32).reshape(1, -1, 1, 1))
    return t


def yolo(cx, layer, x):
    b = cx.b
    entries = layer.classes + 5
    t = b.reshape(x, (layer.n, entries, layer.h, layer.w))
    mask = np.zeros(entries, bool)
    if not layer.new_coords:     # new_coords heads are activated by the conv before
        mask[[0, 1]] = True
        mask[4:] = True
    scale, shift = np.ones(entries, F32), np.zeros(entries, F32)
    scale[:2] = F32(layer.scale_x_y)
    shift[:2] = F32(-0.5 * (layer.scale_x_y - 1))
    t = _masked_logistic(b, t, mask, scale, shift)
    return b.reshape(t, (layer.c, layer.h, layer.w))


def gaussian_yolo(cx, layer, x):
    b = cx.b
    entries = layer.classes + 9
    t = b.reshape(x, (layer.n, entries, layer.h, layer.w))
    mask = np.zeros(entries, bool)
    mask[[0, 1, 2, 3, 5, 7]] = True
    mask[8:] = True
    scale, shift = np.ones(entries, F32), np.zeros(entries, F32)
    scale[[0, 2]] = F32(layer.scale_x_y)
    shift[[0, 2]] = F32(-0.5 * (layer.scale_x_y - 1))
    t = _masked_logistic(b, t, mask, scale, shift)
    return b.reshape(t, (layer.c, layer.h, layer.w))


def region(cx, layer, x):
    b = cx.b
    size = layer.coords + layer.classes + 1
    t = b.reshape(x, (size * layer.num, layer.h * layer.w))
    t = Tensor(b.op("Transpose", [t.name], "region_t", perm=[0, 2, 1]),
               (layer.h * layer.w, size * layer.num))
    t = b.reshape(t, (layer.h * layer.w * layer.num, size))
    head = b.slice(t, 1, 0, 4)
    obj = b.unary("Sigmoid", b.slice(t, 1, 4, 5))
    rest = b.slice(t, 1, 5, size)
    if layer.tree:       # Darknet: the tree's softmax, with or without softmax=1
        rest = _tree_softmax(b, rest, load_tree(layer))
    elif layer.softmax:
        rest = _softmax_rows(b, rest)
    return b.concat([head, obj, rest], 1, f"region{layer.index}")


def detection(cx, layer, x):
    b = cx.b
    flat = b.reshape(x, (layer.inputs,))
    if not layer.softmax:
        return flat
    k = layer.side * layer.side * layer.classes
    probs = _softmax_rows(b, b.reshape(b.slice(flat, 0, 0, k), (k // layer.classes,
                                                                 layer.classes)))
    parts = [b.reshape(probs, (k,))]
    if k < layer.inputs:
        parts.append(b.slice(flat, 0, k, layer.inputs))
    return b.concat(parts, 0, f"detection{layer.index}")


def identity(cx, layer, x):
    return x


def crnn(cx, layer, x):
    """The recurrent state as a graph input ``crnn<i>_state`` (zeros for a video's first
    frame) and output ``crnn<i>_state_out`` (to feed back with the next frame): input and
    self convolutions summed (with ``shortcut`` the old state too), then the output one."""
    if (layer.out_h, layer.out_w) != (layer.h, layer.w) or layer.xnor:
        raise Unexpressible("only a [crnn] whose convolutions keep the size runs (stride=1, "
                            "pad=1), without xnor")
    b, i = cx.b, layer.index
    shape = (layer.hidden, layer.h, layer.w)
    state = Tensor(b.reserve(f"crnn{i}_state"), shape)
    cx.state_inputs.append(state)
    params = {k: _host(v) for k, v in layer.params.items()}
    pad = layer.padding * layer.dilation

    def conv(part, t, filters):
        p = {k[len(part) + 1:]: v for k, v in params.items() if k.startswith(part + "_")}
        w, bias = _fold_bn(p, p["weights"], layer.batch_normalize)
        name = b.op("Conv", [t.name, b.const(w, f"crnn{i}_{part}_w"),
                             b.const(bias, f"crnn{i}_{part}_b")], f"crnn{i}_{part}",
                    kernel_shape=[layer.size, layer.size], strides=[1, 1],
                    dilations=[layer.dilation] * 2, group=layer.groups, pads=[pad] * 4)
        return cx.act(Tensor(name, (filters,) + shape[1:]), layer.activation)

    new = b.binary("Add", conv("input", _image(cx, x, layer), layer.hidden),
                   conv("self", state, layer.hidden))
    if layer.shortcut:
        new = b.binary("Add", new, state)
    out = f"crnn{i}_state_out"
    b.reserve(out)
    b.op("Identity", [new.name], out_names=[out])
    cx.state_outputs.append(Tensor(out, shape))
    return conv("output", new, layer.out_filters)


def activation(cx, layer, x):
    if layer.c:
        x = _image(cx, x, layer)
    return cx.act(x, layer.activation)


CONVERTERS = {
    "convolutional": convolutional, "connected": connected, "batchnorm": batchnorm,
    "normalization": normalization, "implicit": implicit,
    "local": local, "shortcut": shortcut, "route": route, "scale_channels": scale_channels,
    "sam": sam, "maxpool": maxpool, "local_avgpool": local_avgpool, "avgpool": avgpool,
    "upsample": upsample, "reorg": reorg, "reorg_old": reorg, "crop": crop,
    "softmax": softmax, "yolo": yolo, "gaussian_yolo": gaussian_yolo, "region": region,
    "detection": detection, "dropout": identity, "empty": identity, "contrastive": identity,
    "active": activation, "crnn": crnn,
}


from .onnx_recurrent import CONVERTERS as _RECURRENT  # noqa: E402  (it uses the helpers above)

CONVERTERS.update(_RECURRENT)


def convert_layer(cx, layer, x):
    """The layer's output Tensor, or a NotSupportedError naming the layer and why."""
    fn = CONVERTERS.get(layer.layer_type)
    where = (f"{layer.section.path}:{layer.section.line}: layer {layer.index} "
             f"[{layer.section.name}] ({layer.layer_type})")
    if fn is None:
        raise NotSupportedError(f"{where}: cannot be exported to ONNX: pydarknet does not run "
                                f"'{layer.layer_type}' layers forward, so there is nothing "
                                "exact to export")
    try:
        return fn(cx, layer, x)
    except Unexpressible as e:
        raise NotSupportedError(f"{where}: cannot be exported to ONNX: {e}") from None
