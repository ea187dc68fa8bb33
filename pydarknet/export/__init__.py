"""Export a pydarknet Network to ONNX with the ``onnx`` package's graph API (no tracing).

The graph takes ``images`` [N, 3, H, W] float32 RGB in [0, 1] (what ``Network.predict`` takes;
a network of vectors, ``inputs`` [N, inputs]) and outputs every detection head (``yolo_<index>``, ``gaussian_yolo_<index>``,
``region_<index>``, ``detection_<index>``) or, for a network without heads, its last layer
(``<layer_type>_<index>``), each shaped as pydarknet's ``outputs[index]``. With ``decode``: also
``boxes`` [N, K, 4] (x1, y1, x2, y2 in input pixels) and ``scores`` [N, K, classes]; with
``nms``: ``selected_indices`` [M, 3] from ONNX NonMaxSuppression. Recurrent layers run one
time step a run, their state graph inputs and outputs (onnx_recurrent).
"""

import json
import os

from ..errors import NotSupportedError, PydarknetError
from .onnx_graph import GraphBuilder, Tensor, require_onnx

__all__ = ["export_onnx", "build_onnx_model", "HEAD_TYPES"]

HEAD_TYPES = ("yolo", "gaussian_yolo", "region", "detection")
# layers whose inference output is not used downstream: left out of the graph when trailing
SKIPPED_TRAILING = ("cost",)


class _Context:
    def __init__(self, builder, network, mish_op):
        self.b, self.network, self.layers = builder, network, network.layers
        self.outputs = {}
        self.mish_op = mish_op
        # recurrent state ([crnn]): graph inputs (the state before this pass) and outputs
        # (after it), fed back by the caller from one frame to the next
        self.state_inputs, self.state_outputs = [], []

    def act(self, t, name):
        from .onnx_activations import activate
        return activate(self.b, t, name, self.mish_op)


def _output_layers(network, extra):
    layers = network.layers
    last = len(layers) - 1
    while last > 0 and layers[last].layer_type in SKIPPED_TRAILING:
        last -= 1
    heads = [l.index for l in layers[:last + 1] if l.layer_type in HEAD_TYPES]
    chosen = heads or [last]
    for i in extra or ():
        i = int(i) if int(i) >= 0 else len(layers) + int(i)
        if not 0 <= i <= last:
            raise PydarknetError(f"ONNX export: output layer {i} is not one of the exported "
                                 f"layers 0..{last}")
        if i not in chosen:
            chosen.append(i)
    return sorted(chosen), last


def _cfg_text(network):
    path = getattr(network, "cfg_path", None)
    if path and os.path.isfile(path):
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            return f.read()
    lines = []
    for s in network._sections:
        lines.append(f"[{s.name}]")
        lines += [f"{o.key}={o.value}" for o in s.options.values()]
        lines.append("")
    return "\n".join(lines)


def build_onnx_model(network, opset=18, batch=1, dynamic_batch=False, decode=False, nms=False,
                     mish_op=True, outputs=None, weights_name=None, nms_iou=0.45,
                     score_thresh=0.25, max_per_class=100):
    """The ONNX ModelProto of ``network`` (see the module docstring)."""
    require_onnx()
    import onnx
    from .. import __version__
    from .onnx_layers import convert_layer

    if not 13 <= int(opset) <= 21:
        raise PydarknetError(f"ONNX export supports opsets 13..21, found {opset}")
    if nms and not decode:
        decode = True      # NMS works on the decoded boxes
    net = network.net
    network.params_to_host()
    b = GraphBuilder(opset)
    cx = _Context(b, network, mish_op)
    if net.channels and net.width and net.height:
        images = Tensor(b.reserve("images"), (net.channels, net.height, net.width))
    else:       # a network of vectors (the char-RNNs: one-hot characters)
        images = Tensor(b.reserve("inputs"), (net.inputs,))
    wanted, last = _output_layers(network, outputs)
    names = {i: b.reserve(f"{network.layers[i].layer_type}_{i}") for i in wanted}
    for name in ("boxes", "scores", "selected_indices"):
        b.reserve(name)     # claimed before any node so that no other value takes them
    x = images
    for layer in network.layers[:last + 1]:
        t = convert_layer(cx, layer, x)
        t = b.reshape(t, layer.out_shape(1)[1:])   # pydarknet's shape of outputs[index]
        cx.outputs[layer.index] = t
        x = t

    graph_outputs = []
    for i in wanted:
        name = names[i]
        src = cx.outputs[i]
        b.op("Identity", [src.name], out_names=[name])
        graph_outputs.append(Tensor(name, src.shape))
    heads = [l for l in network.layers[:last + 1] if l.layer_type in HEAD_TYPES]
    if decode:
        from .onnx_decode import add_nms, decode_heads
        if not heads:
            raise NotSupportedError(f"{network.cfg_path}: --decode needs a detector: no [yolo], "
                                    "[Gaussian_yolo], [region] or [detection] layer")
        boxes, scores = decode_heads(b, network, heads, cx.outputs)
        for t, name in ((boxes, "boxes"), (scores, "scores")):
            b.op("Identity", [t.name], out_names=[name])
            graph_outputs.append(Tensor(name, t.shape))
        if nms:
            sel = add_nms(b, boxes, scores, nms_iou, score_thresh, max_per_class)
            graph_outputs.append(("selected_indices", onnx.helper.make_tensor_value_info(
                sel, onnx.TensorProto.INT64, ["selected", 3])))

    batch_dim = "N" if dynamic_batch else int(batch)
    meta = {
        "cfg": _cfg_text(network),
        "cfg_name": os.path.basename(str(getattr(network, "cfg_path", ""))),
        "weights": os.path.basename(weights_name) if weights_name else "",
        "seen": int(getattr(network, "seen", 0)),
        "pydarknet_version": __version__,
        "heads": json.dumps([_head_info(l) for l in heads]),
        "outputs": json.dumps([t.name if isinstance(t, Tensor) else t[0]
                               for t in graph_outputs]),
    }
    graph_outputs += cx.state_outputs
    model = b.model([images] + cx.state_inputs, graph_outputs, batch_dim,
                    os.path.splitext(meta["cfg_name"])[0] or "pydarknet", meta, __version__)
    return model


def _head_info(layer):
    d = {"index": layer.index, "type": layer.layer_type, "classes": layer.classes,
         "w": layer.w, "h": layer.h}
    if hasattr(layer, "mask"):
        d.update(mask=list(layer.mask), anchors=[float(a) for a in layer.anchors],
                 scale_x_y=float(layer.scale_x_y), new_coords=int(getattr(layer, "new_coords", 0)))
    elif hasattr(layer, "anchors"):
        d.update(anchors=[float(a) for a in layer.anchors], num=layer.num)
    return d


def export_onnx(network, path, check=True, **kw):
    """Write ``network`` as ONNX to ``path`` (keywords as :func:`build_onnx_model`); runs
    ``onnx.checker`` with full checking unless ``check=False``. Returns the ModelProto."""
    model = build_onnx_model(network, **kw)
    import onnx
    if check:
        onnx.checker.check_model(model, full_check=True)
    onnx.save(model, os.fspath(path))
    return model
