"""``pydarknet custom CFG OUT --data obj.data``: a copy of a detector's or classifier's cfg set
up for your classes (pydarknet.custom_cfg: AB's "train on your own objects" edits)."""

import os

from ..errors import PydarknetError


def _cmd_custom(args):
    from ..custom_cfg import custom_cfg
    from ..datasets.check import atomic_write
    from ..labels import read_data_file, read_list
    classes, train_images = args.classes, 0
    if args.data:
        data = read_data_file(args.data)
        if classes is None:
            try:
                classes = int(data.get("classes", ""))
            except ValueError:
                raise PydarknetError(f"{args.data}: no whole-number 'classes =' line; give "
                                     f"--classes") from None
        if data.get("train") and os.path.isfile(data["train"]):
            train_images = len(read_list(data["train"], "training image list"))
    if classes is None:
        raise PydarknetError("give --data obj.data (its classes and training list) or "
                             "--classes N")
    anchors = None
    if args.anchors:
        try:
            anchors = [float(v) for v in args.anchors.replace(",", " ").split()]
        except ValueError:
            raise PydarknetError(f"--anchors {args.anchors!r}: expected numbers separated by "
                                 f"commas (what calc_anchors prints)") from None
    text, notes = custom_cfg(args.cfg, classes, train_images, args.width, args.height,
                             args.batch, args.subdivisions, args.max_batches, anchors)
    if os.path.abspath(args.out) == os.path.abspath(args.cfg):
        raise PydarknetError(f"{args.out} is the cfg itself: write the set-up copy elsewhere")
    atomic_write(args.out, text)
    for line in notes:
        print(line)
    print(f"{args.out}: {args.cfg} for {classes} classes"
          + (f" ({train_images} training images)" if train_images else ""))
    return 0


def add_commands(sub):
    p = sub.add_parser("custom", help="a copy of a detector's or classifier's cfg set up for "
                                      "your classes (classes, the filters before each head, "
                                      "max_batches, steps: AB's 'train on your own objects' "
                                      "edits)")
    p.add_argument("cfg", help="the cfg (yolov4-tiny.cfg, yolov4.cfg, csdarknet53-omega.cfg, "
                               "...)")
    p.add_argument("out", help="the cfg to write")
    p.add_argument("--data", help="the .data file: its classes and training list")
    p.add_argument("--classes", type=int, help="the number of classes (default: the .data's)")
    p.add_argument("--width", type=int, help="the input width (a multiple of 32)")
    p.add_argument("--height", type=int, help="the input height (a multiple of 32)")
    p.add_argument("--batch", type=int)
    p.add_argument("--subdivisions", type=int)
    p.add_argument("--max-batches", dest="max_batches", type=int,
                   help="(default: classes x 2000, at least the training images and 6000)")
    p.add_argument("--anchors", help="anchors for every head, as calc_anchors prints them")
    p.set_defaults(func=_cmd_custom)
