"""Inference and evaluation commands: ``detect`` and Darknet's ``detector test|map|recall|
valid|calc_anchors`` forms (single-dash flags as Darknet spells them; the double-dash spellings work
too). ``detector train`` is in :mod:`.train`.

    pydarknet detect cfg/yolov4-tiny.cfg yolov4-tiny.weights dog.jpg --names coco.names
    pydarknet detector test data/obj.data cfg/yolo-obj.cfg yolo-obj.weights dog.jpg -ext_output
    pydarknet detector map data/obj.data cfg/yolo-obj.cfg yolo-obj.weights -points 101
    pydarknet detector valid data/coco.data cfg/yolov4.cfg yolov4.weights
    pydarknet detector recall data/obj.data cfg/yolo-obj.cfg yolo-obj.weights
    pydarknet detector calc_anchors data/obj.data -num_of_clusters 9 -width 416 -height 416
    pydarknet detector demo data/obj.data cfg/yolo-obj.cfg yolo-obj.weights street.mp4 \
        -out_filename out.avi -dont_show -ext_output
"""

import json
import os
import sys
import time

from ..errors import PydarknetError
from .common import (add_run_options, darknet_command, darknet_flag, load_network,
                     images_or_stdin, new_problems, print_layer_times, progress,
                     reader_threads, report_problems)


def _expand_images(items, problems):
    """Image files, folders (their images, sorted) and list files (.txt/.list) -> paths."""
    from ..image import IMAGE_EXTENSIONS
    from ..labels import read_list
    paths = []
    for item in items:
        item = str(item)
        if os.path.isdir(item):
            found = sorted(os.path.join(item, f) for f in os.listdir(item)
                           if f.lower().endswith(IMAGE_EXTENSIONS))
            if not found:
                problems.report("folder_empty", f"{item}: no image files in this folder")
            paths.extend(found)
        elif item.lower().endswith((".txt", ".list")) and os.path.isfile(item):
            paths.extend(read_list(item))
        else:
            paths.append(item)
    return paths


def _names_for(network, names_path=None, quiet=False):
    """Class names for the network's last detection layer: the file (checked against
    classes), or COCO's names for an 80-class network, else the class numbers."""
    from ..eval.coco import COCO_NAMES
    from ..eval.decode import detection_layers
    from ..labels import check_names, read_names
    last = detection_layers(network)[-1]
    where = f"{last.section.path}:{last.section.line} [{last.type}]"
    if names_path:
        return check_names(read_names(names_path), last.classes, names_path, where)
    if last.classes == 80:
        if not quiet:
            print("note: no names file given: using COCO's 80 class names", file=sys.stderr)
        return list(COCO_NAMES)
    return [str(i) for i in range(last.classes)]


def _darknet_lines(dets, names, thresh, ext_output):
    """Darknet's text output for one image: 'name: NN%' (best class first, then the other
    classes above thresh), boxes ordered by their left edge."""
    import numpy as np

    from ..host_math import c_round
    w, h = dets.image_size
    probs = dets.probs.copy()
    probs[:, np.logical_not(_shown(names))] = 0
    best = probs.argmax(1) if len(probs) else np.zeros(0, int)
    score = probs[np.arange(len(probs)), best] if len(probs) else np.zeros(0)
    rows = np.flatnonzero(score > np.float32(thresh))
    # Darknet's float arithmetic: the left edges it sorts by (compare_by_lefts, a stable
    # qsort) and round((x - w / 2) * im.w) with C's round
    f = dets.boxes.astype(np.float32)
    lefts = f[:, 0] - f[:, 2] / np.float32(2)
    rows = rows[np.argsort(lefts[rows], kind="stable")]
    edges = c_round(np.stack([lefts * np.float32(w),
                              (f[:, 1] - f[:, 3] / 2) * np.float32(h),
                              f[:, 2] * np.float32(w), f[:, 3] * np.float32(h)], 1))
    lines = []
    for r in rows:
        left, top, width, height = edges[r]
        box = (f"\t(left_x: {left:4.0f}   top_y: {top:4.0f}   width: {width:4.0f}   height: "
               f"{height:4.0f})" if ext_output else "")
        classes = [best[r]] + [k for k in np.flatnonzero(probs[r] > np.float32(thresh))
                               if k != best[r]]
        for k in classes:
            lines.append(f"{names[k]}: {probs[r, k] * 100:.0f}%{box}")
    return lines


def _shown(names):
    """Darknet hides the classes whose name starts with dont_show from its output."""
    return [not n.startswith("dont_show") for n in names]


def _json_frame(frame_id, path, dets, names, thresh):
    """AB's detection_to_json: every class above thresh of every box (path None: no
    filename, as the demo's)."""
    from ..http_stream import frame_json
    objects = []
    rows, cls, score = dets.pairs(thresh)
    shown = _shown(names)
    for r, k, s in zip(rows, cls, score):
        if not shown[k]:
            continue
        x, y, w, h = (float(v) for v in dets.boxes[r])
        objects.append({"class_id": int(k), "name": names[k],
                        "relative_coordinates": {"center_x": x, "center_y": y, "width": w,
                                                 "height": h},
                        "confidence": float(s)})
    return frame_json(frame_id, objects, path)


def _save_labels(path, dets, thresh, problems):
    """Darknet's -save_labels: the best class above thresh of every box, as a label file
    (pseudo-labelling), written where the image's label file belongs (one that cannot be
    written is counted in ``problems`` and the others go on)."""
    from ..labels import replace_image_to_label
    rows, cls, _ = dets.best_class(thresh)
    target = replace_image_to_label(path)
    if target == path:
        target = os.path.splitext(path)[0] + ".txt"
    try:
        with open(target, "w") as f:
            for r, c in zip(rows, cls):
                x, y, w, h = (float(v) for v in dets.boxes[r])
                f.write(f"{c} {x:2.4f} {y:2.4f} {w:2.4f} {h:2.4f}\n")
    except OSError as e:
        problems.report("label_unwritable", f"{target}: cannot write the labels "
                        f"({e.strerror}); skipped", key=target)


def _make_folder(folder):
    """``folder`` made (with its parents), or an error that says why not."""
    folder = os.path.abspath(folder or ".")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise PydarknetError(f"{folder}: cannot make the output folder ({e.strerror})") from None


def _run_detection(net, paths, problems, names, thresh, nms, out_dir, out_single, json_path,
                   ext_output, batch, threads, letter_box=None, save_labels=False,
                   darknet_console=False):
    """Detect in ``paths``, print each image's detections, write what was asked. Each image's
    first line is Darknet's ``<path>: Predicted in N milli-seconds.`` (the forward pass) with
    ``darknet_console``, else ``<path>: WxH``."""
    import contextlib

    import cv2

    from ..detector import iter_detections
    from ..http_stream import JsonArrayFile
    from ..image import draw_detections
    seconds = []
    draw = out_dir is not None or out_single is not None
    if draw:     # before the network runs: a folder that cannot be made stops nothing later
        _make_folder(out_dir if out_single is None else os.path.dirname(out_single))
    t0 = time.time()
    n = 0
    with contextlib.ExitStack() as out:   # the JSON written an image at a time, as Darknet's
        frames = out.enter_context(JsonArrayFile(json_path)) if json_path else None
        for i, path, img, dets in iter_detections(net, paths, thresh, nms, letter_box,
                                                  batch_size=batch, threads=threads,
                                                  problems=problems, keep_images=draw,
                                                  timings=seconds):
            n += 1
            if darknet_console:
                print(f"{path}: Predicted in {seconds[-1] * 1000:f} milli-seconds.")
            else:
                w, h = dets.image_size
                print(f"{path}: {w}x{h}")
            for line in _darknet_lines(dets, names, thresh, ext_output):
                print(line)
            if frames is not None:
                frames.write(_json_frame(n, path, dets, names, thresh))
            if save_labels:
                _save_labels(path, dets, thresh, problems)
            if draw:
                target = out_single or os.path.join(out_dir, os.path.basename(path))
                draw_detections(img, dets.to_list(thresh), names, len(names))
                # (an extension OpenCV cannot write, as .gif: a JPEG beside it, as Darknet)
                if not cv2.imwrite(target, img) and \
                        not cv2.imwrite(os.path.splitext(target)[0] + ".jpg", img):
                    raise PydarknetError(f"{target}: cannot write the image with boxes")
    dt = time.time() - t0
    if json_path:
        print(f"detections written to {json_path}", file=sys.stderr)
    if n and draw:
        where = out_single if out_single else out_dir
        print(f"images with boxes written to {where}", file=sys.stderr)
    if n:
        print(f"{n} images in {dt:.2f} s ({n / dt:.1f} images/s)", file=sys.stderr)
    report_problems(problems)
    if not n:
        raise PydarknetError(f"none of the {len(paths)} images could be read")
    return 0


# -- commands ---------------------------------------------------------------------------------


def _cmd_detect(args):
    net = load_network(args, args.cfg, args.weights, args.width, args.height)
    names = _names_for(net, args.names)
    problems = new_problems()
    paths = _expand_images(args.images, problems)
    if not paths:
        raise PydarknetError("no images given (files, folders or list files)")
    return _run_detection(net, paths, problems, names, args.thresh, args.nms,
                          None if args.no_save else args.out, None, args.json, args.ext_output,
                          args.batch, reader_threads(args), args.letter_box)


def _read_data(path):
    from ..labels import read_data_file
    return read_data_file(path)


def _cmd_test(args):
    data = _read_data(args.data)
    net = load_network(args, args.cfg, args.weights)
    names = _names_for(net, data.get("names"))
    problems = new_problems()
    images = images_or_stdin(args.images)   # `detector test ... < list.txt > result.txt`
    if not images:
        raise PydarknetError("give an image (or a folder, or a list file) to detect in, or "
                             "image paths on standard input (< list.txt)")
    paths = _expand_images(images, problems)
    single = "predictions.jpg" if len(paths) == 1 and not args.out_dir else None
    out_dir = None if single else (args.out_dir or "predictions")
    # batch 1 as Darknet's test_detector: the printed time is one image's forward pass
    code = _run_detection(net, paths, problems, names, args.thresh, args.nms, out_dir, single,
                          args.out, args.ext_output, 1, reader_threads(args),
                          True if args.letter_box else None, args.save_labels,
                          darknet_console=True)
    if args.benchmark_layers:
        import numpy as np

        print_layer_times(net.profile(np.zeros((1,) + net.input_shape, np.float32)), 20)
    return code


def _cmd_map(args):
    from ..eval.darknet_map import evaluate_network_map, format_report
    from ..labels import read_data_file
    data = read_data_file(args.data)
    net = load_network(args, args.cfg, args.weights)
    valid = data.get("valid") or data.get("train")
    if not valid:
        raise PydarknetError(f"{args.data}: no 'valid =' (or 'train =') image list")
    names = _names_for(net, data.get("names"), quiet=True) if data.get("names") else None
    coco = None
    use_coco = args.coco or args.annotations or data.get("eval") == "coco"
    if use_coco:
        from ..eval.coco import CocoEvaluator
        coco = CocoEvaluator(names or _names_for(net, None, quiet=True), args.annotations)
    problems = new_problems()
    if args.letter_box and not net.net.letter_box:
        print("note: -letter_box: the images are letter-boxed; Darknet's detector map ignores "
              "the flag (it follows the cfg's letter_box=0)", file=sys.stderr)
    print(f"\n calculation mAP (mean average precision) on {valid} ...", flush=True)
    r = evaluate_network_map(net, valid, names, args.iou_thresh, args.thresh, args.points,
                             letter_box=True if args.letter_box else None, batch_size=args.batch,
                             threads=reader_threads(args), difficult=data.get("difficult"),
                             problems=problems, collect=coco.add if coco else None,
                             log=progress())
    if progress():
        print(file=sys.stderr)
    print(format_report(r))
    if coco is not None:
        stats = coco.evaluate()
        r["coco"] = stats
        print("\n COCO metrics (pycocotools):")
        print(stats["text"])
    print(f"\n {r['images']} images in {r['seconds']:.1f} s")
    report_problems(problems)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(r, f, indent=1)
        print(f"metrics written to {args.json}")
    return 0


def _cmd_recall(args):
    from ..eval.recall import evaluate_network_recall
    data = _read_data(args.data)
    net = load_network(args, args.cfg, args.weights)
    valid = data.get("valid", "data/train.txt")
    if "valid" not in data and not os.path.isfile(valid):
        raise PydarknetError(f"{args.data}: no 'valid =' image list (and no {valid}, "
                             "Darknet's default)")
    problems = new_problems()
    r = evaluate_network_recall(net, valid, args.thresh, args.iou_thresh, args.nms,
                                batch_size=args.batch, threads=reader_threads(args),
                                problems=problems,
                                log=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"{r['images']} images, {r['truths']} truths: recall {r['recall'] * 100:.2f}% "
          f"(IoU > {args.iou_thresh:g}), mean best IoU {r['avg_iou'] * 100:.2f}%, "
          f"{r['proposals_per_image']:.2f} proposals per image (objectness > {args.thresh:g}, "
          f"after NMS at {args.nms:g})")
    report_problems(problems)
    return 0


def _cmd_valid(args):
    from ..detector import iter_detections
    from ..eval.results import FORMATS, ValidationResults, category_ids_from_data
    from ..labels import read_list
    data = _read_data(args.data)
    net = load_network(args, args.cfg, args.weights)
    names = _names_for(net, data.get("names"), quiet=True)
    valid = data.get("valid")
    if not valid:
        raise PydarknetError(f"{args.data}: no 'valid =' image list")
    paths = read_list(valid, "validation image list")
    folder = data.get("results", "results")
    os.makedirs(folder, exist_ok=True)           # fail before the run, not after it
    kind = data.get("eval", "voc")
    if kind not in FORMATS:
        print(f"warning: {args.data}: eval={kind} is none of {', '.join(FORMATS)}: VOC files, as "
              f"Darknet", file=sys.stderr)
        kind = "voc"
    results = ValidationResults(names, kind=kind, category_ids=category_ids_from_data(
        data, len(names), args.data))
    if results.coco and not results.coco_ids and not results.mapped_ids:
        print(f"warning: eval=coco but the network has {len(names)} classes: category ids are "
              "the class indexes", file=sys.stderr)
    problems = new_problems()
    t0 = time.time()
    # Darknet's validate_detector suppresses boxes in pixels (get_network_boxes relative=0)
    for i, path, _, dets in iter_detections(net, paths, args.thresh, args.nms,
                                            batch_size=args.batch, threads=reader_threads(args),
                                            problems=problems, pixel_nms=True):
        results.add(i, path, dets, problems)
        if results.images % 100 == 0 and progress():
            progress()(f"\r{results.images}/{len(paths)}", end="")
    if not results.images:
        raise PydarknetError(f"none of the {len(paths)} validation images could be read")
    json_path, voc_prefix = results.write(folder, args.out)
    if kind in ("bdd", "kitti", "imagenet"):
        print(f"detections of {results.images} images written to {json_path} ({kind} format)")
    else:
        ids = ("category ids from the .data file's category_ids" if results.mapped_ids else
               "COCO category ids" if results.coco_ids else "category id = class index")
        print(f"{len(results.results)} detections of {results.images} images written to "
              f"{json_path} (COCO result format, {ids})")
    if results.unnumbered:
        print(f"warning: {results.unnumbered} file names hold no number; their image id is their "
              "line number in the list", file=sys.stderr)
    if voc_prefix:
        print(f"per-class VOC files written to {voc_prefix}<name>.txt")
    print(f"Total Detection Time: {time.time() - t0:.1f} Seconds", file=sys.stderr)
    report_problems(problems)
    return 0


def _post_message(dets, names, thresh, source):
    """AB's -http_post_host text: 'name, id: k' of each box's first class above thresh, the
    local time and the video source; None without a box."""
    lines, seen_rows = [], set()
    shown = _shown(names)
    for r, k, _ in zip(*dets.pairs(thresh)):
        if shown[k] and r not in seen_rows:
            seen_rows.add(r)
            lines.append(f"{names[k]}, id: {k}\n")
    if not lines:
        return None
    return "".join(lines) + f"\ntime:\n{time.strftime('%A %F %T')}\nvideosource:\n{source}"


def _cmd_demo(args):
    """Darknet's ``detector demo``: detections in every frame of a video file or camera,
    printed, drawn into ``-out_filename`` (a video), ``-prefix``_NNNNNNNN.jpg and the
    ``-mjpeg_port`` stream, and sent to ``-json_port``, ``-json_file_output`` and
    ``-http_post_host``. It ends with the video, after ``-time_limit_sec``, or at an
    interruption (Ctrl-C). ``-benchmark`` detects the first frame again and again, drawing
    nothing."""
    import contextlib

    import cv2

    from ..http_stream import JsonArrayFile, JsonServer, MjpegServer, http_post
    from ..image import draw_detections
    from ..video import FirstFrameAgain, FramesOut, iter_video_detections, open_capture
    data = _read_data(args.data)
    net = load_network(args, args.cfg, args.weights)
    names = _names_for(net, data.get("names"))
    source = args.video if args.video is not None else args.c
    n, t0 = 0, time.perf_counter()
    with contextlib.ExitStack() as out:
        # the servers listen before the video opens, so that a client can be waiting
        mjpeg = out.enter_context(MjpegServer(args.mjpeg_port, quality=40)) \
            if args.mjpeg_port > 0 else None
        json_server = out.enter_context(JsonServer(args.json_port)) \
            if args.json_port > 0 else None
        json_sinks = [json_server] if json_server is not None else []
        if args.json_file_output:
            json_sinks.append(out.enter_context(JsonArrayFile(args.json_file_output)))
        for server, what in ((mjpeg, "MJPEG"), (json_server, "JSON")):
            if server is not None:
                print(f"{what} stream on http://localhost:{server.port}", file=sys.stderr)
        capture = open_capture(source)
        video = out.enter_context(FramesOut(args.out_filename, FirstFrameAgain(capture)
                                            if args.benchmark else capture))
        draw = args.out_filename or args.prefix or mjpeg
        shown = _shown(names)
        post, post_failed = args.http_post_host, False
        try:
            for n, frame, dets, _ in iter_video_detections(
                    net, video.capture, args.thresh, 0.45, True if args.letter_box else None,
                    args.frames):
                if n == 1:
                    print(f"Video stream: {frame.shape[1]} x {frame.shape[0]}")
                print("Objects:\n")
                for line in _darknet_lines(dets, names, args.thresh, args.ext_output):
                    print(line)
                print(f"\nFPS:{n / max(time.perf_counter() - t0, 1e-9):.1f}")
                if json_sinks:
                    objects = _json_frame(n, None, dets, names, args.thresh)
                    for sink in json_sinks:
                        sink.write(objects)
                message = post and _post_message(dets, names, args.thresh, source)
                if message:
                    failed = http_post(post, message)
                    if failed and not post_failed:
                        post_failed = True
                        print(f"warning: -http_post_host {post}: not sent ({failed}); later "
                              f"failures are not reported", file=sys.stderr)
                    if args.time_limit_sec > 0:     # (AB: then once only)
                        post = None
                if draw:
                    if not (args.dontdraw_bbox or args.benchmark):
                        draw_detections(frame, [d for d in dets.to_list(args.thresh)
                                                if shown[d[0]]], names, len(names))
                    if args.prefix:
                        cv2.imwrite(f"{args.prefix}_{n:08d}.jpg", frame)
                    if mjpeg is not None:
                        mjpeg.write(frame)
                    video.write(frame)
                if 0 < args.time_limit_sec < time.perf_counter() - t0:
                    print(f"time limit of {args.time_limit_sec} s reached", file=sys.stderr)
                    break
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            if not n:
                return 130
        print(video.summary(n, time.perf_counter() - t0, source), file=sys.stderr)
    return 0


def _cmd_calc_anchors(args):
    import numpy as np

    from ..eval.anchors import (anchor_cloud, average_iou, format_anchors, kmeans_anchors,
                                read_box_sizes)
    from ..labels import read_list
    if args.width <= 0 or args.height <= 0:
        raise PydarknetError("set -width and -height (the network input size) > 0")
    data = _read_data(args.data)
    train = data.get("train", "data/train.list")
    classes = int(data.get("classes", 1))
    print(f"\n num_of_clusters = {args.num_of_clusters}, width = {args.width}, "
          f"height = {args.height} ")
    paths = read_list(train, "training image list")
    print(f" read labels from {len(paths)} images ")
    problems = new_problems()
    # class ids are not checked against classes: Darknet grows its counters instead
    wh, counts, found = read_box_sizes(paths, None, problems)
    if len(counts) < classes:
        counts = np.concatenate([counts, np.zeros(classes - len(counts), counts.dtype)])
    if not found:
        raise PydarknetError(f"no label file found for any of the {len(paths)} images")
    print(f" loaded \t image: {found} \t box: {len(wh)}")
    pixels = wh * np.array([args.width, args.height], np.float32)
    centers, assignments, rounds = kmeans_anchors(pixels, args.num_of_clusters, seed=args.seed)
    print(f"\n iterations = {rounds} \n")
    counters = ", ".join(str(int(c)) for c in counts)
    print(f"counters_per_class = {counters}")
    print(f"\n avg IoU = {average_iou(pixels, centers) * 100:2.2f} % ")
    text = format_anchors(centers, args.width)
    if not args.no_save:
        with open("anchors.txt", "w") as f:
            f.write(text)
        with open("counters_per_class.txt", "w") as f:
            f.write(counters)
        print("\nSaving anchors to the file: anchors.txt ")
    print(f"anchors = {text}")
    if args.show:
        import cv2
        cloud = anchor_cloud(pixels, assignments, centers, args.width, args.height)
        if not cv2.imwrite("cloud.png", cloud):
            raise PydarknetError("cannot write cloud.png in the current folder")
        print("the box sizes and anchors drawn in cloud.png")
    report_problems(problems)
    return 0


# -- argument parsing -------------------------------------------------------------------------


def _hier_flag(p):
    darknet_flag(p, "hier", type=float, default=0.5,
                 help="accepted: AB Darknet's box decoding ignores it (a softmax tree's "
                      "boxes take the most specific class above 0.5)")


def add_commands(sub):
    """``detect`` and ``detector`` test/map/recall/valid/demo/calc_anchors; returns ``detector``'s
    sub-command group (``detector train`` joins it from :mod:`.train`)."""
    d = sub.add_parser("detect", help="detect objects in images, folders or list files",
                       allow_abbrev=False)
    d.add_argument("cfg")
    d.add_argument("weights")
    d.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders or .txt lists")
    d.add_argument("--names", help="class names file (default: COCO's for 80 classes)")
    darknet_flag(d, "thresh", type=float, default=0.25)
    darknet_flag(d, "nms", type=float, default=0.45, help="0 turns NMS off")
    d.add_argument("--out", default="predictions", help="folder for the images with boxes")
    d.add_argument("--no-save", dest="no_save", action="store_true",
                   help="do not write images with boxes")
    d.add_argument("--json", help="write the detections (Darknet's -out JSON format) here")
    darknet_flag(d, "ext_output", action="store_true", help="print boxes in pixels")
    d.add_argument("--width", type=int, help="network input width (default: the cfg's)")
    d.add_argument("--height", type=int)
    d.add_argument("--letter-box", dest="letter_box", action="store_true", default=None,
                   help="letterbox even if the cfg does not say letter_box=1")
    d.add_argument("--batch", type=int, default=1, help="images per forward pass")
    add_run_options(d)
    d.set_defaults(func=_cmd_detect)

    det = sub.add_parser("detector", help="Darknet's detector commands")
    dsub = det.add_subparsers(dest="action", required=True)

    t = darknet_command(dsub, "test", "detect in images, Darknet's way")
    t.add_argument("images", nargs="*", metavar="IMAGE")
    darknet_flag(t, "thresh", type=float, default=0.25)
    darknet_flag(t, "nms", type=float, default=0.45)
    darknet_flag(t, "ext_output", action="store_true")
    darknet_flag(t, "dont_show", action="store_true", help="accepted (nothing is shown)")
    darknet_flag(t, "letter_box", action="store_true")
    darknet_flag(t, "out", help="JSON file for the detections (Darknet's -out)")
    darknet_flag(t, "save_labels", action="store_true",
                 help="write each image's detections as its label file (pseudo-labelling)")
    darknet_flag(t, "benchmark_layers", action="store_true",
                 help="also each layer's time, the slowest first (as forward --layers)")
    t.add_argument("--out-dir", dest="out_dir", help="folder for the images with boxes "
                   "(default: predictions.jpg for one image, predictions/ for several)")
    add_run_options(t)
    _hier_flag(t)
    t.set_defaults(func=_cmd_test)

    m = darknet_command(dsub, "map", "Darknet's mAP on the valid list (+ COCO metrics)")
    darknet_flag(m, "points", type=int, default=0,
                 help="0: area under curve, 11: VOC2007, 101: COCO")
    darknet_flag(m, "iou_thresh", type=float, default=0.5)
    darknet_flag(m, "thresh", type=float, default=0.25,
                 help="confidence for TP/FP/precision/recall")
    darknet_flag(m, "letter_box", action="store_true",
                 help="letter-box the images whatever the cfg's letter_box= (Darknet's "
                      "detector map ignores this flag)")
    darknet_flag(m, "dont_show", action="store_true", help="accepted (nothing is shown)")
    m.add_argument("--coco", action="store_true", help="also COCO metrics (pycocotools)")
    m.add_argument("--annotations", help="COCO annotation json for the COCO metrics (default: "
                   "the Darknet label files)")
    m.add_argument("--json", help="write all metrics to this JSON file")
    m.add_argument("--batch", type=int, default=1, help="images per forward pass")
    add_run_options(m)
    _hier_flag(m)
    m.set_defaults(func=_cmd_map)

    r = darknet_command(dsub, "recall", "the share of the valid list's truths some proposal "
                                        "finds, whatever its class (Darknet's recall)")
    darknet_flag(r, "thresh", type=float, default=0.001, help="objectness of a proposal")
    darknet_flag(r, "iou_thresh", type=float, default=0.5, help="IoU that finds a truth")
    darknet_flag(r, "nms", type=float, default=0.4, help="NMS by objectness (0: none)")
    r.add_argument("--batch", type=int, default=1, help="images per forward pass")
    add_run_options(r)
    _hier_flag(r)
    r.set_defaults(func=_cmd_recall)

    v = darknet_command(dsub, "valid", "write detections of the valid list (COCO json, VOC "
                                       "files)")
    darknet_flag(v, "out", help="output name (default coco_results / comp4_det_test_ / "
                 "bdd_results / kitti_results / imagenet-detection, by the .data file's eval=)")
    darknet_flag(v, "thresh", type=float, default=0.001)
    darknet_flag(v, "nms", type=float, default=0.6)
    v.add_argument("--batch", type=int, default=1)
    add_run_options(v)
    _hier_flag(v)
    v.set_defaults(func=_cmd_valid)

    dm = darknet_command(dsub, "demo", "detect in every frame of a video file or camera "
                                       "(Darknet's demo)", weights=None)
    dm.add_argument("video", nargs="?", help="video file or stream URL (default: camera -c)")
    darknet_flag(dm, "c", type=int, default=0, help="camera index when no video is given")
    darknet_flag(dm, "thresh", type=float, default=0.25)
    darknet_flag(dm, "ext_output", action="store_true")
    darknet_flag(dm, "out_filename", help="write the frames with boxes to this video "
                 "(.avi: DIVX; .mp4: mp4v) at the source's frame rate")
    darknet_flag(dm, "prefix", help="write each frame with boxes as PREFIX_NNNNNNNN.jpg")
    darknet_flag(dm, "json_file_output", help="write every frame's detections to this JSON file "
                 "(a frame at a time: an interrupted run keeps what it did)")
    darknet_flag(dm, "mjpeg_port", type=int, default=-1,
                 help="serve the frames with boxes as an MJPEG stream on this port (open "
                      "http://localhost:PORT in a browser)")
    darknet_flag(dm, "json_port", type=int, default=-1,
                 help="serve every frame's detections on this port, one JSON array a client")
    darknet_flag(dm, "letter_box", action="store_true")
    darknet_flag(dm, "dontdraw_bbox", action="store_true", help="write the frames without boxes")
    darknet_flag(dm, "dont_show", action="store_true", help="accepted (nothing is shown)")
    darknet_flag(dm, "time_limit_sec", type=int, default=0,
                 help="stop after this many seconds")
    darknet_flag(dm, "benchmark", action="store_true",
                 help="detect the first frame again and again, drawing nothing: the "
                      "network's own frame rate")
    darknet_flag(dm, "http_post_host", metavar="HOST[:PORT]/PATH",
                 help="post each frame's objects as text to this web hook (once with "
                      "-time_limit_sec, as Darknet)")
    darknet_flag(dm, "s", type=int, default=0,
                 help="accepted: Darknet's frame_skip only changes its window's refresh")
    darknet_flag(dm, "avgframes", type=int, default=3,
                 help="accepted: Darknet's averaging never switches on (pydarknet.video); "
                      "each frame's own boxes are drawn")
    dm.add_argument("--frames", type=int, help="stop after this many frames (a camera runs "
                    "until interrupted)")
    add_run_options(dm)
    _hier_flag(dm)
    dm.set_defaults(func=_cmd_demo)

    a = dsub.add_parser("calc_anchors", help="anchors by k-means over the training labels",
                        allow_abbrev=False)
    a.add_argument("data")
    darknet_flag(a, "num_of_clusters", type=int, default=9)
    darknet_flag(a, "width", type=int, default=416)
    darknet_flag(a, "height", type=int, default=416)
    darknet_flag(a, "seed", type=int,
                 help="k-means initialisation seed (default: random, as Darknet)")
    darknet_flag(a, "show", action="store_true",
                 help="draw the box sizes and anchors into cloud.png (Darknet's window)")
    darknet_flag(a, "dont_show", action="store_true", help="accepted (nothing is shown)")
    a.add_argument("--no-save", dest="no_save", action="store_true",
                   help="do not write anchors.txt / counters_per_class.txt")
    a.set_defaults(func=_cmd_calc_anchors)

    return dsub
