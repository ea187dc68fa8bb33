"""``pydarknet partial CFG WEIGHTS OUT N``: Darknet's ``partial``, the first N layers' weights
of a trained network saved as a backbone to fine-tune from (``yolov4.conv.137``)."""


def add_commands(sub):
    p = sub.add_parser("partial", help="save the first N layers' weights (a backbone such as "
                                       "yolov3-tiny.conv.15) to start training a new head from")
    p.add_argument("cfg", help="the cfg the weights were trained with")
    p.add_argument("weights")
    p.add_argument("out", help="the backbone .weights file to write")
    p.add_argument("layers", type=int, metavar="N",
                   help="how many layers to keep (layers 0..N-1)")
    p.set_defaults(func=_cmd_partial)


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
