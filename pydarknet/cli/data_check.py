"""``pydarknet data check DATA_FILE [--fix] [--plot PNG]`` (:mod:`pydarknet.datasets.check`)."""

import argparse
import sys

_EPILOG = """\
Checks every list of the .data file (train=, valid=): images missing or unreadable, label files
missing, empty (counted, fine as negatives), binary or not UTF-8; label lines that are not
'class x y w h', class ids outside 0..classes-1, boxes empty, outside or reaching beyond the
image (more than --tolerance), the same box twice, comment lines (Darknet stops reading there);
repeated list entries, images in both lists, the names file against classes=. Prints a table
per class, a box-size histogram and each problem as 'path:line: why: 'text''.

--fix never loses anything: each file it changes is first kept as FILE.orig (FILE.orig.1, ...
when that exists), then replaced atomically. Label files lose unusable lines, comments and
repeated boxes, and boxes reaching beyond the image are cut to it (as training cuts them);
lists (train.txt, ...) lose entries whose image is missing or unreadable, and repeats. Missing
label files and the names file are left to you. A second --fix run changes nothing.

Exit status: 0 no problems (notes allowed), 1 problems found (fixed or not), 2 the .data file
itself unusable."""


def _cmd_check(args):
    from ..datasets.check import check_dataset, format_report, write_plot
    from .common import progress
    images = "exists" if args.no_images else "header" if args.quick else "decode"
    show = progress()
    tick = (lambda s: show(f"\r{s}   ", end="")) if show else None
    report = check_dataset(args.data, images=images, fix=args.fix, threads=args.threads,
                           tolerance=args.tolerance, progress=tick)
    if show:
        show("\r" + " " * 60 + "\r", end="")
    sys.stdout.write(format_report(report, show=args.show))
    if args.plot:
        write_plot(report, args.plot)
        print(f"plot: {args.plot}")
    return 1 if report.problem_count() else 0


def add_commands(actions):
    """Adds ``check`` to ``pydarknet data``."""
    p = actions.add_parser("check", help="check a Darknet data set's lists, images and labels "
                                         "(--fix cleans them, keeping the old files)",
                           description="Check a Darknet data set before training on it.",
                           epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="Darknet .data file (classes=, train=, valid=, names=)")
    p.add_argument("--fix", action="store_true",
                   help="write cleaned label files and lists, keeping each old one as .orig")
    p.add_argument("--plot", metavar="PNG", help="also draw the box-size histogram and a "
                                                 "width/height scatter into this PNG file")
    speed = p.add_mutually_exclusive_group()
    speed.add_argument("--quick", action="store_true",
                       help="read image sizes from JPEG/PNG/BMP headers instead of decoding "
                            "the images (fast on large sets; a corrupt body goes unnoticed)")
    speed.add_argument("--no-images", dest="no_images", action="store_true",
                       help="only check that the images exist (fastest)")
    p.add_argument("--show", type=int, default=10, metavar="N",
                   help="problems shown per kind (default 10; all are counted)")
    p.add_argument("--tolerance", type=float, default=0.001, metavar="FRACTION",
                   help="how far a box edge may reach beyond the image, as a fraction of it, "
                        "before it is reported (default 0.001)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="image-reading threads (default: 2 per core, at most 16)")
    p.set_defaults(func=_cmd_check)
