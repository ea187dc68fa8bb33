"""``pydarknet info`` (a cfg's layer table, Darknet's; ``--memory``: what it needs and the
smallest subdivisions that fits) and ``pydarknet forward`` (one timed forward pass on a built-in
image)."""

import json
import sys
import time

from ..heads import DETECTION_HEADS
from .common import add_device_option, builtin_cfg, device_of, print_layer_times


def _cmd_info(args):
    from ..network import Network
    if args.memory or args.limit:
        return _cmd_memory(args)
    net = Network(args.cfg, batch=args.batch or 1, width=args.width, height=args.height,
                  init=False)
    if args.json:
        out = {"layers": net.summary(), "total_bflops": net.total_bflops,
               "net": net.net.summary()}
        if args.weights:
            from ..weights import describe_weights
            d = describe_weights(net, args.weights)
            h = d.pop("header")
            out["weights"] = dict(d, version=[h.major, h.minor, h.revision], seen=h.seen)
        json.dump(out, sys.stdout, indent=1)
        print()
    else:
        n = net.net
        print(f"{net.cfg_path}: {len(net.layers)} layers, input {n.width}x{n.height}x{n.channels},"
              f" batch {n.batch}/{n.subdivisions}")
        print(net.table())
        _print_conv_paths(net)
        if args.weights:
            _print_weights(net, args.weights)
    return 0


def _print_weights(net, path):
    """Does a .weights file fit the cfg: its header, what it holds, and where it stops."""
    from ..weights import describe_weights
    d = describe_weights(net, path)
    h = d["header"]
    per_iteration = net.net.mini_batch * net.net.subdivisions * max(net.net.time_steps, 1)
    print(f"{path}: Darknet {h.major}.{h.minor}.{h.revision} weights, seen {h.seen} images "
          f"(iteration {h.seen // max(per_iteration, 1)} at batch {per_iteration}); "
          f"{d['floats']:,} floats: {d['why']}")


def _print_conv_paths(net):
    """One line per convolutional layer: the code it runs on this backend at inference and
    in training (forward / backward). CPU: oneDNN and the implementation it chose, or
    im2col + sgemm where oneDNN is off (PYDARKNET_ONEDNN=0), not built, or slower."""
    path_of = getattr(net.backend, "conv2d_path", None)
    if path_of is None:
        return
    print("convolutions: inference; training forward / backward")
    for layer in net.layers:
        if layer.layer_type != "convolutional" or layer.unsupported or layer.xnor or layer.binary:
            continue
        pad = layer.pad * layer.dilation
        geometry = (net.batch, layer.c, layer.h, layer.w, layer.n, layer.size, layer.size,
                    layer.out_h, layer.out_w, layer.stride_y, layer.stride_x, pad, pad,
                    layer.dilation, layer.groups)
        print(f"  layer {layer.index:3d} conv: {path_of(*geometry, activation=layer.activation)}"
              f"; {path_of(*geometry)} / {path_of(*geometry, backward=True)}")


def _memory_limits(args):
    """{device: bytes} to fit training into: ``--limit`` for both backends, else the host's
    available memory for the CPU and, with ``--gpu N``, device N's free memory."""
    from ..memory import available_host_memory, parse_size
    if args.limit:
        limit = parse_size(args.limit)
        return {"cpu": limit, "cuda": limit}
    limits = {}
    host = available_host_memory()
    if host:
        limits["cpu"] = host
    if args.gpu is not None:
        from ..backend import get_backend
        limits["cuda"] = get_backend(device_of(args)).memory_info()["device_free"]
    return limits


def _cmd_memory(args):
    from ..memory import memory_report
    from ..network import Network
    net = Network(args.cfg, width=args.width, height=args.height, init=False)   # training
    n = net.net
    print(f"{net.cfg_path}: {len(net.layers)} layers, input {n.width}x{n.height}x{n.channels},"
          f" batch {n.batch}/{n.subdivisions}")
    print(memory_report(net, _memory_limits(args), inference_batch=args.batch or 1))
    return 0


def _cmd_forward(args):
    """Build a network, print its table, run one forward pass on a built-in image."""
    import numpy as np

    from ..network import Network
    from ..sample import sample_image

    net = Network(args.cfg, batch=1, width=args.width, height=args.height,
                  device=device_of(args))
    print(net.table())
    if args.weights:
        net.load_weights(args.weights)
        print(f"loaded {args.weights}")
    else:
        print("random weights (pass --weights FILE for trained ones)")
    c, h, w = net.input_shape
    image = sample_image(w, h)                       # HxWx3 RGB float32 in [0, 1]
    x = np.ascontiguousarray(image.transpose(2, 0, 1)[None], np.float32)
    net.predict(x)                                   # warm-up
    t0 = time.perf_counter()
    net.predict(x)
    dt = time.perf_counter() - t0
    print(f"forward pass {w}x{h}: {dt * 1000:.1f} ms ({net.total_bflops / dt:.1f} GFLOP/s)")
    for layer in net.layers:
        if layer.layer_type in DETECTION_HEADS + ("softmax",):
            out = net.outputs[layer.index]      # (copied from the GPU only for these)
            print(f"  layer {layer.index} {layer.type}: output {list(out.shape)}, "
                  f"max {float(out.max()):.4f}, mean {float(out.mean()):.4f}")
    if args.layers:
        print_layer_times(net.profile(x), args.layers)
    return 0


def add_commands(sub):
    info = sub.add_parser("info", help="print a cfg's layer table (Darknet's), BFLOPs, parameters")
    info.add_argument("cfg")
    info.add_argument("--json", action="store_true", help="machine-readable layer table")
    info.add_argument("--width", type=int)
    info.add_argument("--height", type=int)
    info.add_argument("--batch", type=int, help="inference batch (default 1)")
    info.add_argument("--weights", help="also say whether this .weights file fits the cfg: "
                                        "the whole network, a backbone, or another cfg's")
    info.add_argument("--memory", action="store_true",
                      help="memory per layer and in total for inference and training on the "
                           "CPU and CUDA backends, and the smallest subdivisions that fits")
    info.add_argument("--limit", metavar="SIZE",
                      help="with --memory: the memory to fit training into, e.g. 8GB (default: "
                           "this machine's available memory; with --gpu, the GPU's free memory)")
    add_device_option(info)
    info.set_defaults(func=_cmd_info)

    fwd = sub.add_parser("forward", help="build a network and time a forward pass on a "
                                          "built-in image")
    fwd.add_argument("--cfg", default=builtin_cfg("yolov4.cfg"),
                     help="the network (default: the packaged cfg/yolov4.cfg)")
    fwd.add_argument("--weights")
    fwd.add_argument("--width", type=int)
    fwd.add_argument("--height", type=int)
    fwd.add_argument("--layers", "-benchmark_layers", nargs="?", type=int, const=20, default=0,
                     metavar="N", help="also each layer's time, the N slowest (default 20) "
                                       "first (Darknet's -benchmark_layers)")
    add_device_option(fwd)
    fwd.set_defaults(func=_cmd_forward)
