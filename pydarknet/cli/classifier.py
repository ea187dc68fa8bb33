"""Darknet's ``classifier predict|demo|label|test|valid|validcrop|valid10|validmulti|
validfull`` forms (``classifier train`` is in :mod:`.train`).

    pydarknet classifier predict data/imagenet.data cfg/darknet53.cfg d53.weights cat.jpg -top 5
    pydarknet classifier valid data/imagenet.data cfg/darknet53.cfg d53.weights -top 5
    pydarknet classifier validmulti data/imagenet.data cfg/darknet53.cfg d53.weights
    pydarknet classifier test data/imagenet.data cfg/darknet53.cfg d53.weights > scores.tsv
"""

import sys
import time

from ..errors import PydarknetError, ShapeError
from .common import (add_device_option, add_run_options, darknet_command, darknet_flag,
                     images_or_stdin, load_network, new_problems, print_layer_times, progress,
                     reader_threads, report_problems)


def _setup(args, for_valid):
    from ..labels import check_names, read_data_file, read_names
    data = read_data_file(args.data)
    keys = ("labels", "names") if for_valid else ("names", "labels")
    names_path = data.get(keys[0]) or data.get(keys[1]) or "data/labels.list"
    net = load_network(args, args.cfg, args.weights)
    classes = int(data.get("classes", 2))
    last = net.layers[-1]
    if last.outputs != classes:     # each value is a class's score: Darknet names them all
        raise PydarknetError(f"{args.cfg}: the last layer ([{last.type}]) outputs "
                             f"{last.outputs} values but {args.data} says classes = {classes}: "
                             "a classifier gives one score a class")
    names = check_names(read_names(names_path), classes, names_path, f"{args.data} (classes)")
    return data, net, names


def _cmd_predict(args):
    from ..eval.classify import predict, softmax_tree
    from ..image import read_bgr
    data, net, names = _setup(args, False)
    tree = softmax_tree(net)
    top = args.top or int(data.get("top", 1))
    top = min(top, len(names))
    images = images_or_stdin(args.images)   # `classifier predict ... < list.txt`
    if not images:
        raise PydarknetError("give an image to classify, or image paths on standard input")
    for path in images:
        t0 = time.time()
        res = predict(net, read_bgr(path, 1 if net.net.channels == 1 else 3), top)
        print(f"{path}: Predicted in {(time.time() - t0) * 1000:f} milli-seconds.")
        for k, p in res:
            if tree is None:
                print(f"{names[k]}: {p:f}")
            else:               # Darknet's form with a tree: index, name, the parent's name
                up = tree.parent[k]
                print(f"{k}, {names[k]}: {p:f}, parent: {names[up] if up >= 0 else 'Root'} ")
    return 0


def _cmd_valid(args):
    from ..eval.classify import validate
    from ..labels import read_list
    data, net, names = _setup(args, True)
    valid = data.get("valid", "data/train.list")
    paths = read_list(valid, "validation image list")
    top = min(args.top or int(data.get("top", 5)), len(names))
    problems = new_problems()
    try:
        r = validate(net, paths, names, top, threads=reader_threads(args), problems=problems,
                     log=progress(), mode=args.mode)
    except ShapeError as e:
        if "cannot take" not in str(e):
            raise
        raise PydarknetError(f"classifier {args.action} resizes the network to each image, "
                             f"and {args.cfg} cannot be resized: {e}; classifier valid and "
                             "validcrop keep its size") from None
    if progress():
        print(file=sys.stderr)
    if not r["images"]:
        report_problems(problems)
        raise PydarknetError(f"no image of {valid} could be read and labelled")
    print(f"{r['images']} images: top 1: {r['top1']:f}, top {r['k']}: {r['topk']:f}")
    if r["unlabeled"] or r["skipped"]:
        print(f"skipped: {r['unlabeled']} without a class name in the path, {r['skipped']} "
              "unreadable", file=sys.stderr)
    report_problems(problems)
    return 0


def _cmd_list(args):
    """``classifier label``: each image's best class name; ``classifier test``: each image's
    path and scores, tab-separated (both over the .data file's ``test =`` list)."""
    from ..eval.classify import iter_scores
    from ..labels import read_list
    data, net, names = _setup(args, False)
    default = "data/train.list" if args.action == "label" else "data/test.list"
    paths = read_list(data.get("test", default), "test image list")
    problems = new_problems()
    mode = "single" if args.action == "label" else "crop"
    for _, path, scores, _ in iter_scores(net, paths, mode, threads=reader_threads(args),
                                          problems=problems):
        if args.action == "label":
            print(names[int(scores[: len(names)].argmax())])
        else:
            print(path + "".join(f"\t{v:g}" for v in scores))
    report_problems(problems)
    return 0


def _cmd_demo(args):
    """Darknet's ``classifier demo``: the top classes of every frame of a video or camera
    (the frame resized to the network), printed, and written onto ``-out_filename``, until
    the video ends or an interruption (Ctrl-C). ``-benchmark`` classifies the first frame
    again and again; ``-benchmark_layers`` then prints each layer's time."""
    import cv2
    import numpy as np

    from ..eval.classify import image_scores, top_k
    from ..video import FirstFrameAgain, FramesOut, open_capture
    data, net, names = _setup(args, False)
    top = min(args.top or int(data.get("top", 1)), len(names))
    source = args.video if args.video is not None else args.c
    cap = open_capture(source)
    benchmark = args.benchmark or args.benchmark_layers        # (as AB)
    n, t0 = 0, time.perf_counter()
    with FramesOut(args.out_filename, FirstFrameAgain(cap) if benchmark else cap) as video:
        try:
            while args.frames is None or n < args.frames:
                ok, frame = video.capture.read()
                if not ok or frame is None or frame.size == 0:
                    break
                n += 1
                scores = image_scores(net, frame, "crop")
                best = [(int(k), float(scores[k])) for k in top_k(scores, top)]
                print(f"Frame {n} (FPS: {n / max(time.perf_counter() - t0, 1e-9):.2f})")
                for k, p in best:
                    print(f"{p * 100:.1f}%: {names[k]}")
                print()
                if args.out_filename:
                    for row, (k, p) in enumerate(best):
                        cv2.putText(frame, f"{p * 100:.1f}%: {names[k]}", (8, 24 + 22 * row),
                                    cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 255), 2,
                                    cv2.LINE_AA)
                    video.write(frame)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            if not n:
                return 130
        print(video.summary(n, time.perf_counter() - t0, source), file=sys.stderr)
    if args.benchmark_layers:
        print_layer_times(net.profile(np.zeros((1,) + net.input_shape, np.float32)), 20)
    return 0


def add_commands(sub):
    """``classifier`` predict/valid; returns its sub-command group (``classifier train`` joins
    it from :mod:`.train`)."""
    cls = sub.add_parser("classifier", help="Darknet's classifier commands")
    csub = cls.add_subparsers(dest="action", required=True)
    cp = darknet_command(csub, "predict", "top-k classes of images", weights=None)
    cp.add_argument("images", nargs="*", metavar="IMAGE",
                    help="images (default: paths read from standard input)")
    cp.add_argument("-top", "--top", "-t", type=int, default=0)
    add_device_option(cp)
    cp.set_defaults(func=_cmd_predict)
    cd = darknet_command(csub, "demo", "the top classes of every frame of a video file or "
                                       "camera (Darknet's classifier demo)", weights=None)
    cd.add_argument("video", nargs="?", help="video file or stream URL (default: camera -c)")
    darknet_flag(cd, "c", type=int, default=0, help="camera index when no video is given")
    cd.add_argument("-top", "--top", "-t", type=int, default=0)
    darknet_flag(cd, "out_filename", help="write the frames with the top classes to this video")
    darknet_flag(cd, "benchmark", action="store_true",
                 help="classify the first frame again and again: the network's frame rate")
    darknet_flag(cd, "benchmark_layers", action="store_true",
                 help="-benchmark, then each layer's time, the slowest first")
    cd.add_argument("--frames", type=int, help="stop after this many frames (a camera runs "
                                               "until interrupted)")
    add_device_option(cd)
    cd.set_defaults(func=_cmd_demo)
    cl = darknet_command(csub, "label", "the best class of each image of the test list "
                                       "(centre crop, as valid)")
    add_run_options(cl)
    cl.set_defaults(func=_cmd_list)
    ct = darknet_command(csub, "test", "each image of the test list with its scores, "
                                       "tab-separated (the image resized to the network's size)")
    add_run_options(ct)
    ct.set_defaults(func=_cmd_list)
    for name, mode, what in VALID_COMMANDS:
        cv = darknet_command(csub, name, f"top-1 / top-k accuracy on the valid list: {what}")
        cv.add_argument("-top", "--top", "-t", type=int, default=0)
        add_run_options(cv)
        cv.set_defaults(func=_cmd_valid, mode=mode)
    return csub


# AB's validation commands: (command, pydarknet.eval.classify mode, what the network sees)
VALID_COMMANDS = [
    ("valid", "single", "the centre crop of the image, shorter side resized to the network's "
                        "width"),
    ("validcrop", "crop", "the whole image resized to the network's size"),
    ("valid10", "10", "ten crops (corners shifted by 32 pixels, centre, and their mirrors) of "
                      "the image resized to the network's size + 32, scores summed"),
    ("validmulti", "multi", "the whole image, shorter side 224, 288, 320, 352 and 384, and its "
                            "mirror, scores summed (resizes the network)"),
    ("validfull", "full", "the whole image, shorter side resized to the network's width "
                          "(resizes the network)"),
]
