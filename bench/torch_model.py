"""An eager PyTorch nn.Module equal to a pydarknet Network, with the Network's weights.

    import pydarknet
    from bench.torch_model import TorchDarknet      # or, from bench/: from torch_model import ...
    net = pydarknet.Network("cfg/yolov4.cfg", batch=1, width=608, height=608)
    model = TorchDarknet(net).eval()                # copies net's layer.params
    heads = model(torch.from_numpy(x))              # the [yolo] outputs, as pydarknet's

The comparison peer of the GPU benchmarks (bench/gpu.py) and of tests/test_torch_model.py.
Layer types: [convolutional] (groups, stride_x/y, pad, dilation, batch norm, activations
linear, leaky (0.1), mish, logistic, relu, swish), [route] (groups/group_id), [shortcut]
(unweighted, any number of `from`), [maxpool] (Darknet's window: it starts at -(pad//2), output
size from the layer's fields), [upsample] (nearest, times scale), [yolo] (Darknet's activation:
logistic on x, y, objectness and classes; x, y scaled by scale_x_y with bias
-0.5*(scale_x_y - 1); with new_coords=1 the scaling alone), and, for the classifiers,
[avgpool] (global) and [softmax] (groups=1, temperature). Anything else raises
NotImplementedError naming the layer.

``forward(x)`` returns the list of [yolo] outputs (activated, [N, anchors*(5+classes), H, W], in
layer order), or ``[last output]`` for a network without [yolo]; ``forward(x, every=True)``
returns every layer's output. In ``train()`` mode batch norm uses batch statistics (PyTorch's,
not Darknet's update of the rolling ones): good for timing a training step, not for oracles.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

ACTIVATIONS = {
    "linear": lambda x: x,
    "leaky": lambda x: F.leaky_relu(x, 0.1),
    "mish": F.mish,
    "logistic": torch.sigmoid,
    "relu": F.relu,
    "swish": F.silu,
}


def _unsupported(layer, what):
    section = getattr(layer, "section", None)
    where = f" ({section.path}:{section.line})" if section is not None else ""
    return NotImplementedError(f"bench/torch_model.py: layer {layer.index} [{layer.layer_type}]"
                               f"{where}: {what} is not implemented")


def _activation(layer):
    act = ACTIVATIONS.get(layer.activation)
    if act is None:
        raise _unsupported(layer, f"activation '{layer.activation}'")
    return act


class _Conv(nn.Module):
    def __init__(self, l):
        super().__init__()
        if getattr(l, "share_layer", None) is not None:
            raise _unsupported(l, "share_index")
        if l.unsupported or l.xnor or l.binary:
            raise _unsupported(l, l.unsupported or "xnor/binary convolution")
        pad = l.pad * l.dilation   # Darknet pads by pad*dilation
        self.conv = nn.Conv2d(l.c, l.n, l.size, (l.stride_y, l.stride_x), pad,
                              dilation=l.dilation, groups=l.groups, bias=not l.batch_normalize)
        self.bn = nn.BatchNorm2d(l.n, eps=1e-5, momentum=0.01) if l.batch_normalize else None
        self.act = _activation(l)
        oh = (l.h + 2 * pad - l.dilation * (l.size - 1) - 1) // l.stride_y + 1
        ow = (l.w + 2 * pad - l.dilation * (l.size - 1) - 1) // l.stride_x + 1
        if (oh, ow) != (l.out_h, l.out_w):
            raise _unsupported(l, f"dilation {l.dilation} with size {l.size} (Darknet's output "
                                  f"{l.out_w}x{l.out_h}, a padded convolution's {ow}x{oh})")
        p = l.params
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(p["weights"]))
            if self.bn is None:
                self.conv.bias.copy_(torch.from_numpy(p["biases"]))
            else:
                self.bn.weight.copy_(torch.from_numpy(p["scales"]))
                self.bn.bias.copy_(torch.from_numpy(p["biases"]))
                self.bn.running_mean.copy_(torch.from_numpy(p["rolling_mean"]))
                self.bn.running_var.copy_(torch.from_numpy(p["rolling_variance"]))

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)


class TorchDarknet(nn.Module):
    """The network of a pydarknet ``Network`` in PyTorch, weights copied from its layers."""

    def __init__(self, net):
        super().__init__()
        self.specs = []       # (kind, layer fields needed at run time)
        self.convs = nn.ModuleDict()
        for l in net.layers:
            t = l.layer_type
            if t == "convolutional":
                self.convs[str(l.index)] = _Conv(l)
                spec = {}
            elif t == "route":
                spec = {"layers": list(l.layers), "groups": l.groups, "group_id": l.group_id,
                        "sizes": list(l.sizes), "shape": (l.out_c, l.out_h, l.out_w)}
            elif t == "shortcut":
                if l.weights_type:
                    raise _unsupported(l, "weighted shortcut (weights_type)")
                spec = {"layers": list(l.layers), "act": _activation(l), "c": l.out_c,
                        "from_c": [net.layers[i].out_c for i in l.layers]}
            elif t == "maxpool":
                if l.maxpool_depth or l.antialiasing:
                    raise _unsupported(l, "maxpool_depth / antialiasing")
                left_x, left_y = l.pad // 2, l.pad // 2
                right_x = (l.out_w - 1) * l.stride_x + l.size - left_x - l.w
                right_y = (l.out_h - 1) * l.stride_y + l.size - left_y - l.h
                spec = {"pad": (left_x, right_x, left_y, right_y), "size": l.size,
                        "stride": (l.stride_y, l.stride_x)}
            elif t == "upsample":
                if l.reverse:
                    raise _unsupported(l, "upsample with a negative stride")
                spec = {"stride": l.stride, "scale": l.scale}
            elif t == "yolo":
                spec = {"n": l.n, "entries": l.classes + 5, "scale_x_y": l.scale_x_y,
                        "new_coords": bool(getattr(l, "new_coords", 0))}
            elif t == "avgpool":
                spec = {}
            elif t == "softmax":
                if l.groups != 1 or getattr(l, "tree", None):
                    raise _unsupported(l, "softmax with groups or a tree")
                spec = {"temperature": l.temperature}
            else:
                raise _unsupported(l, "this layer type")
            self.specs.append((t, l.index, spec))

    def forward(self, x, every=False):
        outs, heads = [], []
        for t, i, s in self.specs:
            if t == "convolutional":
                x = self.convs[str(i)](x)
            elif t == "route":
                n, g, gid = x.shape[0], s["groups"], s["group_id"]
                parts = []
                for j, size in zip(s["layers"], s["sizes"]):
                    part = size // g
                    parts.append(outs[j].reshape(n, -1)[:, part * gid:part * (gid + 1)])
                x = (torch.cat(parts, 1) if len(parts) > 1 else parts[0]).reshape(n, *s["shape"])
            elif t == "shortcut":
                c = s["c"]
                y = x
                for j, cj in zip(s["layers"], s["from_c"]):
                    if cj == c:
                        y = y + outs[j]
                    else:   # Darknet adds the overlapping channels (the flat prefix)
                        m = min(c, cj)
                        y = torch.cat([y[:, :m] + outs[j][:, :m], y[:, m:]], 1)
                x = s["act"](y)
            elif t == "maxpool":
                x = F.pad(x, s["pad"], value=float("-inf"))
                x = F.max_pool2d(x, s["size"], s["stride"])
            elif t == "upsample":
                x = F.interpolate(x, scale_factor=s["stride"], mode="nearest")
                if s["scale"] != 1:
                    x = x * s["scale"]
            elif t == "yolo":
                n, _, h, w = x.shape
                v = x.reshape(n, s["n"], s["entries"], h, w)
                sxy = s["scale_x_y"]
                # new_coords=1: the convolution before already applied the logistic
                xy = v[:, :, 0:2] if s["new_coords"] else torch.sigmoid(v[:, :, 0:2])
                rest = v[:, :, 4:] if s["new_coords"] else torch.sigmoid(v[:, :, 4:])
                if sxy != 1:
                    xy = xy * sxy - 0.5 * (sxy - 1)
                x = torch.cat([xy, v[:, :, 2:4], rest], 2).reshape(n, -1, h, w)
                heads.append(x)
            elif t == "avgpool":
                x = x.mean(dim=(2, 3), keepdim=True)
            elif t == "softmax":
                n = x.shape[0]
                x = torch.softmax(x.reshape(n, -1) / s["temperature"], 1).reshape(x.shape)
            outs.append(x)
        if every:
            return outs
        return heads if heads else [x]


def torch_model(net):
    """``TorchDarknet(net)``: the nn.Module of a pydarknet Network, its weights copied."""
    return TorchDarknet(net)
