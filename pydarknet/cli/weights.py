"""``pydarknet partial CFG WEIGHTS OUT N``: Darknet's ``partial``, the first N layers' weights
of a trained network saved as a backbone to fine-tune from (``yolov4.conv.137``).
``pydarknet from_pjreddie CFG WEIGHTS OUT``: a file pjreddie's Darknet wrote, whose [lstm] and
[gru] gates come in another order, saved in AB's (what every other command reads).
Darknet's other weight tools (pydarknet.weight_tools says where they differ from AB's):
``average CFG OUT W1 W2 ...``, ``denormalize|normalize|reset|rgbgr|rescale CFG WEIGHTS OUT``.
``pydarknet visualize CFG [WEIGHTS]``: Darknet's images of the convolutional filters."""


def add_commands(sub):
    p = sub.add_parser("visualize", help="write the filters of every convolutional layer as "
                                         "an image, 'Layer N.jpg' (Darknet's visualize)")
    p.add_argument("cfg")
    p.add_argument("weights", nargs="?", help="(default: Darknet's random initial weights)")
    p.add_argument("--out", default=".", help="the folder for the images (default: here)")
    p.set_defaults(func=_cmd_visualize)
    p = sub.add_parser("partial", help="save the first N layers' weights (a backbone such as "
                                       "yolov3-tiny.conv.15) to start training a new head from")
    p.add_argument("cfg", help="the cfg the weights were trained with")
    p.add_argument("weights")
    p.add_argument("out", help="the backbone .weights file to write")
    p.add_argument("layers", type=int, metavar="N",
                   help="how many layers to keep (layers 0..N-1)")
    p.set_defaults(func=_cmd_partial)
    p = sub.add_parser("from_pjreddie",
                       help="rewrite a .weights file of pjreddie's Darknet with the [lstm] and "
                            "[gru] gates in AB's order, which pydarknet reads")
    p.add_argument("cfg")
    p.add_argument("weights", help="written by pjreddie's Darknet")
    p.add_argument("out", help="the .weights file to write (AB's order)")
    p.set_defaults(func=_cmd_from_pjreddie)

    p = sub.add_parser("average", help="the mean of several .weights files of one cfg "
                                       "(every parameter)")
    p.add_argument("cfg")
    p.add_argument("out", help="the .weights file to write")
    p.add_argument("weights", nargs="+", help="the files to average (their header: the first's)")
    p.set_defaults(func=_cmd_average)
    for name, what in EDITS.items():
        p = sub.add_parser(name, help=what)
        p.add_argument("cfg")
        p.add_argument("weights")
        p.add_argument("out", help="the .weights file to write")
        if name in ("denormalize", "normalize"):
            p.add_argument("--cfg-out", help="write the cfg the new weights fit (the cfg with "
                                             "batch_normalize changed) here")
        p.set_defaults(func=_cmd_edit, tool=name)


def _cmd_visualize(args):
    from ..network import Network
    from ..visualize import visualize_network
    net = Network(args.cfg, batch=1)
    if args.weights:
        net.load_weights(args.weights)
    paths = visualize_network(net, args.out)
    print(f"{len(paths)} images of filters written to {args.out}"
          + (f" ({paths[0]} ... {paths[-1]})" if paths else ""))
    return 0


# Darknet's weight-editing tools: command -> what it does
EDITS = {
    "denormalize": "fold batch norm into the weights (for the cfg with batch_normalize=0, "
                   "--cfg-out): the same network without batch norm",
    "reset": "fold batch norm into the weights, leaving it as identity (the same cfg)",
    "normalize": "add batch norm that changes nothing to the layers without (for the cfg "
                 "with batch_normalize=1, --cfg-out), to fine-tune with it",
    "rgbgr": "swap the first convolution's R and B input channels (RGB <-> BGR weights)",
    "rescale": "make the first convolution take inputs in [0, 1] where it took [-1, 1]",
}


def _cmd_average(args):
    from ..network import Network
    from ..weight_tools import average_weights
    net = Network(args.cfg, batch=1, init=False)
    net.init_weights(0)
    net.load_weights(args.weights[0])
    average_weights(net, args.weights[1:])
    net.save_weights(args.out)
    print(f"{args.out}: the mean of {len(args.weights)} files")
    return 0


def _cmd_edit(args):
    from ..datasets.check import atomic_write
    from ..errors import PydarknetError
    from ..network import Network
    from ..weight_tools import (denormalize, rescale_first_input, swap_first_rgb,
                                with_batchnorm, without_batchnorm)
    net = Network(args.cfg, batch=1, init=False)
    net.init_weights(0)
    net.load_weights(args.weights)
    out = net
    if args.tool in ("denormalize", "normalize"):
        adding = args.tool == "normalize"
        out, text, changed = (with_batchnorm if adding else without_batchnorm)(
            net, args.cfg_out)
        where = ", ".join(f"{l.index} [{l.section.name}]" for l in changed) or "none"
        note = ""
        if args.cfg_out:
            atomic_write(args.cfg_out, text)
            note = f"; {args.cfg_out}: the cfg it fits"
        elif changed:
            note = (f"; it fits {args.cfg} with batch_normalize={int(adding)} in the layers "
                    "changed (--cfg-out writes that cfg)")
        print(f"{args.out}: batch norm {'added to' if adding else 'folded in'} layers "
              f"{where}{note}")
    elif args.tool == "reset":
        changed = denormalize(net)
        print(f"{args.out}: batch norm folded in (left as identity) in {len(changed)} layers")
    else:
        layer = (swap_first_rgb if args.tool == "rgbgr" else rescale_first_input)(net)
        if layer is None:
            raise PydarknetError(f"{args.cfg}: the first [convolutional] does not take 3 "
                                 "channels: nothing to change")
        print(f"{args.out}: layer {layer.index} [{layer.section.name}] changed")
    out.save_weights(args.out)
    return 0


def _cmd_from_pjreddie(args):
    from ..network import Network
    net = Network(args.cfg, batch=1, init=False)
    net.init_weights(0)
    net.load_weights(args.weights, gates="pjreddie")
    net.save_weights(args.out)
    moved = [f"{l.index} [{l.type}]" for l in net.layers if getattr(l, "PJREDDIE_GATES", None)]
    print(f"{args.out}: {args.weights} with the gates of "
          f"{', '.join(moved) or 'no layer (none is an [lstm] or [gru]: the same file)'} in "
          f"AB's order")
    return 0


def _cmd_partial(args):
    from ..errors import PydarknetError
    from ..network import Network
    net = Network(args.cfg, batch=1, init=False)
    if not 1 <= args.layers <= len(net.layers):
        raise PydarknetError(f"N = {args.layers}: {args.cfg} has {len(net.layers)} layers; "
                             f"keep 1..{len(net.layers)}")
    net.init_weights(0)
    net.load_weights(args.weights, cutoff=args.layers)
    net.seen = 0            # as Darknet's partial: training from it starts at iteration 0
    net.save_weights(args.out, cutoff=args.layers)
    kept = net.layers[args.layers - 1]
    print(f"{args.out}: layers 0..{args.layers - 1} of {args.cfg} (the last kept is "
          f"{kept.index} [{kept.section.name}]), seen reset to 0")
    return 0
