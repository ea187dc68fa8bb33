"""``pydarknet partial CFG WEIGHTS OUT N``: Darknet's ``partial``, the first N layers' weights
of a trained network saved as a backbone to fine-tune from (``yolov4.conv.137``).
``pydarknet from_pjreddie CFG WEIGHTS OUT``: a file pjreddie's Darknet wrote, whose [lstm] and
[gru] gates come in another order, saved in AB's (what every other command reads)."""


def add_commands(sub):
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
