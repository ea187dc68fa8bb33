"""A small builder over ``onnx.helper``: unique names, constants as initializers, and the few
composite ops whose spelling changed between opsets (Reduce* axes, Pad, Slice).

Tensors are tracked with their per-image shape (batch left out), so that a converter can ask
for "this tensor as [C, H, W]" and get a Reshape only when the shape really differs.
"""

import numpy as np

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:   # pragma: no cover - depends on the environment
    onnx = None
    _IMPORT_ERROR = e

from ..errors import PydarknetError



def require_onnx():
    if onnx is None:
        raise PydarknetError(f"exporting to ONNX needs the 'onnx' package ({_IMPORT_ERROR}): "
                             "pip install 'pydarknet[onnx]' (or pip install onnx onnxruntime)")


class Tensor:
    """A graph value: its name and its per-image shape (a tuple without the batch axis)."""

    __slots__ = ("name", "shape")

    def __init__(self, name, shape):
        self.name, self.shape = name, tuple(int(s) for s in shape)

    @property
    def size(self):
        return int(np.prod(self.shape))

    def __repr__(self):
        return f"<Tensor {self.name} {self.shape}>"


class GraphBuilder:
    def __init__(self, opset):
        require_onnx()
        self.opset = int(opset)
        self.nodes, self.initializers = [], []
        self._used = set()
        self._consts = {}

    # -- names and constants -------------------------------------------------------------
    def fresh(self, hint):
        name, k = hint, 1
        while name in self._used:
            k += 1
            name = f"{hint}_{k}"
        self._used.add(name)
        return name

    def reserve(self, name):
        """Claim an exact name (graph inputs and outputs)."""
        if name in self._used:
            raise PydarknetError(f"ONNX export: the name '{name}' is used twice")
        self._used.add(name)
        return name

    def const(self, value, hint="const", dtype=np.float32):
        arr = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        key = None
        if arr.size <= 16:   # share the small ones (shapes, axes, scalars)
            key = (arr.dtype.str, arr.shape, arr.tobytes())
            if key in self._consts:
                return self._consts[key]
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(arr, name))
        if key is not None:
            self._consts[key] = name
        return name

    def ints(self, values):
        return self.const(np.asarray(values, np.int64).reshape(-1), "ints", np.int64)

    def scalar(self, value):
        return self.const(np.float32(value), "scalar")

    # -- nodes ---------------------------------------------------------------------------
    def op(self, op_type, inputs, hint=None, outputs=1, out_names=None, **attrs):
        """Add a node; returns its output name (or the list of them when outputs > 1)."""
        if out_names is None:
            base = hint or op_type.lower()
            out_names = [self.fresh(base) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), list(out_names),
                                           name=self.fresh(f"node_{out_names[0]}"), **attrs))
        return out_names[0] if len(out_names) == 1 else out_names

    # tensor-level helpers: take and give Tensors
    def reshape(self, t, shape, hint=None):
        shape = tuple(int(s) for s in shape)
        if t.shape == shape:
            return t
        name = self.op("Reshape", [t.name, self.ints((0,) + shape)], hint or "reshape")
        return Tensor(name, shape)

    def unary(self, op_type, t, hint=None, **attrs):
        return Tensor(self.op(op_type, [t.name], hint, **attrs), t.shape)

    def binary(self, op_type, a, b, hint=None):
        """a (Tensor) op b (Tensor, or a numpy constant broadcast against a's batched shape)."""
        if isinstance(b, Tensor):
            shape = np.broadcast_shapes(a.shape, b.shape)
            return Tensor(self.op(op_type, [a.name, b.name], hint), shape)
        c = np.asarray(b, np.float32)
        return Tensor(self.op(op_type, [a.name, self.const(c)], hint), a.shape)

    def slice(self, t, axis, start, end, hint=None):
        """t[..., start:end, ...] on per-image axis ``axis`` (0 = channels)."""
        if start == 0 and end == t.shape[axis]:
            return t
        name = self.op("Slice", [t.name, self.ints([start]), self.ints([end]),
                                 self.ints([axis + 1])], hint or "slice")
        shape = list(t.shape)
        shape[axis] = end - start
        return Tensor(name, shape)

    def concat(self, parts, axis, hint=None):
        if len(parts) == 1:
            return parts[0]
        shape = list(parts[0].shape)
        shape[axis] = sum(p.shape[axis] for p in parts)
        return Tensor(self.op("Concat", [p.name for p in parts], hint or "concat",
                              axis=axis + 1), shape)

    def reduce(self, op_type, t, axes, keepdims=1, hint=None):
        """Reduce over per-image ``axes``; ReduceSum takes axes as an input from opset 13,
        the other Reduce* ops only from opset 18."""
        axes = [a + 1 for a in axes]
        if op_type == "ReduceSum" or self.opset >= 18:
            name = self.op(op_type, [t.name, self.ints(axes)], hint, keepdims=keepdims)
        else:
            name = self.op(op_type, [t.name], hint, axes=axes, keepdims=keepdims)
        shape = [1 if i + 1 in axes else s for i, s in enumerate(t.shape)]
        if not keepdims:
            shape = [s for i, s in enumerate(t.shape) if i + 1 not in axes]
        return Tensor(name, shape)

    def pad(self, t, begin, end, value=0.0, hint=None):
        """Constant padding of the per-image axes (lists as long as t.shape)."""
        if not any(begin) and not any(end):
            return t
        pads = [0] + list(begin) + [0] + list(end)
        name = self.op("Pad", [t.name, self.ints(pads), self.scalar(value)], hint or "pad",
                       mode="constant")
        shape = [s + b + e for s, b, e in zip(t.shape, begin, end)]
        return Tensor(name, shape)

    # -- the model -----------------------------------------------------------------------
    def model(self, inputs, outputs, batch, graph_name, metadata, producer_version):
        """inputs / outputs: [Tensor]; batch an int or a symbolic name."""
        def info(t):
            return helper.make_tensor_value_info(t.name, TensorProto.FLOAT,
                                                 [batch] + list(t.shape))
        graph = helper.make_graph(self.nodes, graph_name, [info(t) for t in inputs],
                                  [info(t) if not isinstance(t, tuple) else t[1]
                                   for t in outputs], self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                                  producer_name="pydarknet", producer_version=producer_version)
        model.ir_version = min(model.ir_version, 8 if self.opset < 19 else 9)
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, str(value)
        return model
