"""``pydarknet export onnx CFG WEIGHTS OUT.onnx``: a network as an ONNX graph (pydarknet.export)."""

import os


def add_commands(sub):
    export = sub.add_parser("export", help="export a network to another format (onnx)")
    formats = export.add_subparsers(dest="format", required=True)
    p = formats.add_parser("onnx", help="write CFG + WEIGHTS as an ONNX model (input 'images' "
                                        "N x 3 x H x W RGB in [0, 1])")
    p.add_argument("cfg")
    p.add_argument("weights", help="a .weights file, or 'none' for random weights")
    p.add_argument("out", help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=18,
                   help="ONNX opset, 13..21 (default 18; Mish is a native op from 18)")
    batch = p.add_mutually_exclusive_group()
    batch.add_argument("--batch", type=int, default=1, help="fixed batch size (default 1)")
    batch.add_argument("--dynamic-batch", action="store_true",
                       help="a symbolic batch axis 'N' instead of a fixed one")
    p.add_argument("--width", type=int, help="input width (default: the cfg's)")
    p.add_argument("--height", type=int, help="input height (default: the cfg's)")
    p.add_argument("--decode", action="store_true",
                   help="also output 'boxes' (x1, y1, x2, y2 in input pixels) and 'scores' "
                        "(objectness x class probability) of every head")
    p.add_argument("--nms", action="store_true",
                   help="also output 'selected_indices' from ONNX NonMaxSuppression "
                        "(implies --decode)")
    p.add_argument("--thresh", type=float, default=0.25, help="score threshold of --nms")
    p.add_argument("--nms-thresh", type=float, default=0.45, help="IoU threshold of --nms")
    p.add_argument("--no-mish-op", dest="mish_op", action="store_false",
                   help="write Mish as Softplus, Tanh, Mul even at opset >= 18")
    p.set_defaults(func=_cmd_export_onnx)


def _cmd_export_onnx(args):
    from ..export import export_onnx
    from ..network import load
    weights = None if args.weights.lower() == "none" else args.weights
    net = load(args.cfg, weights, batch=1, width=args.width, height=args.height)
    export_onnx(net, args.out, opset=args.opset, batch=args.batch,
                dynamic_batch=args.dynamic_batch, decode=args.decode or args.nms, nms=args.nms,
                mish_op=args.mish_op, weights_name=weights, nms_iou=args.nms_thresh,
                score_thresh=args.thresh)
    size = os.path.getsize(args.out)
    print(f"{args.out}: {net.net.width}x{net.net.height}, opset {args.opset}, "
          f"{size / 2**20:.1f} MiB")
    return 0
