"""Inference and evaluation commands: ``detect`` and Darknet's ``detector test|map|valid|
calc_anchors`` and ``classifier predict|valid`` forms (single-dash flags as Darknet spells them;
the double-dash spellings work too).

    pydarknet detect cfg/yolov4-tiny.cfg yolov4-tiny.weights dog.jpg --names coco.names
    pydarknet detector test data/obj.data cfg/yolo-obj.cfg yolo-obj.weights dog.jpg -ext_output
    pydarknet detector map data/obj.data cfg/yolo-obj.cfg yolo-obj.weights -points 101
    pydarknet detector valid data/coco.data cfg/yolov4.cfg yolov4.weights
    pydarknet detector calc_anchors data/obj.data -num_of_clusters 9 -width 416 -height 416
    pydarknet classifier predict data/imagenet.data cfg/darknet53.cfg d53.weights cat.jpg -top 5
"""

import json
import os
import sys
import time

from .errors import PydarknetError

# -- shared helpers -------------------------------------------------------------------------------


def _problems():
    from .data.io import Problems
    return Problems()


def _report_problems(problems, out=None):
    out = out or sys.stderr
    counts = problems.as_dict()
    if counts:
        what = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(counts.items()))
        print(f"skipped inputs ({what}); each reported above", file=out)


def _load_network(args, cfg, weights, width=None, height=None):
    import pydarknet

    from .cli import device_of
    net = pydarknet.load(cfg, weights, batch=1, width=width, height=height,
                         device=device_of(args))
    if weights is None:
        print(f"note: no weights given: {cfg} runs with random weights", file=sys.stderr)
    return net


def _progress():
    """A progress printer for terminals (None when stderr is not one)."""
    if not sys.stderr.isatty():
        return None
    return lambda *a, **k: print(*a, **k, file=sys.stderr, flush=True)


def _threads(args):
    return getattr(args, "threads", None) or 2


def _expand_images(items, problems):
    """Image files, folders (their images, sorted) and list files (.txt/.list) -> paths."""
    from .image import IMAGE_EXTENSIONS
    from .labels import read_list
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
    from .eval.coco import COCO_NAMES
    from .eval.decode import detection_layers
    from .labels import check_names, read_names
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
    w, h = dets.image_size
    probs = dets.probs.copy()
    hidden = [i for i, n in enumerate(names) if n.startswith("dont_show")]
    probs[:, hidden] = 0
    best = probs.argmax(1) if len(probs) else np.zeros(0, int)
    score = probs[np.arange(len(probs)), best] if len(probs) else np.zeros(0)
    rows = np.flatnonzero(score > np.float32(thresh))
    b = dets.boxes.astype(np.float64)
    rows = rows[np.argsort(b[rows, 0] - b[rows, 2] / 2, kind="stable")]
    lines = []
    for r in rows:
        x, y, bw, bh = b[r]
        box = (f"\t(left_x: {round((x - bw / 2) * w):4.0f}   top_y: {round((y - bh / 2) * h):4.0f}"
               f"   width: {round(bw * w):4.0f}   height: {round(bh * h):4.0f})"
               if ext_output else "")
        classes = [best[r]] + [k for k in np.flatnonzero(probs[r] > np.float32(thresh))
                               if k != best[r]]
        for k in classes:
            lines.append(f"{names[k]}: {probs[r, k] * 100:.0f}%{box}")
    return lines


def _json_frame(frame_id, path, dets, names, thresh):
    objects = []
    rows, cls, score = dets.pairs(thresh)
    for r, k, s in zip(rows, cls, score):
        x, y, w, h = (float(v) for v in dets.boxes[r])
        objects.append({"class_id": int(k), "name": names[k],
                        "relative_coordinates": {"center_x": x, "center_y": y, "width": w,
                                                 "height": h},
                        "confidence": float(s)})
    return {"frame_id": frame_id, "filename": path, "objects": objects}


def _save_labels(path, dets, thresh):
    """Darknet's -save_labels: the best class above thresh of every box, as a label file
    (pseudo-labelling), written where the image's label file belongs."""
    from .labels import replace_image_to_label
    rows, cls, _ = dets.best_class(thresh)
    target = replace_image_to_label(path)
    if target == path:
        target = os.path.splitext(path)[0] + ".txt"
    with open(target, "w") as f:
        for r, c in zip(rows, cls):
            x, y, w, h = (float(v) for v in dets.boxes[r])
            f.write(f"{c} {x:2.4f} {y:2.4f} {w:2.4f} {h:2.4f}\n")


def _run_detection(net, paths, names, thresh, nms, out_dir, out_single, json_path, ext_output,
                   batch, threads, letter_box=None, save_labels=False):
    import cv2

    from .detector import iter_detections
    from .image import draw_detections
    problems = _problems()
    frames = []
    draw = out_dir is not None or out_single is not None
    t0 = time.time()
    n = 0
    for i, path, img, dets in iter_detections(net, paths, thresh, nms, letter_box,
                                              batch_size=batch, threads=threads,
                                              problems=problems, keep_images=draw):
        n += 1
        w, h = dets.image_size
        print(f"{path}: {w}x{h}")
        for line in _darknet_lines(dets, names, thresh, ext_output):
            print(line)
        if json_path:
            frames.append(_json_frame(n, path, dets, names, thresh))
        if save_labels:
            _save_labels(path, dets, thresh)
        if draw:
            target = out_single or os.path.join(out_dir, os.path.basename(path))
            os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
            draw_detections(img, dets.to_list(thresh), names, len(names))
            if not cv2.imwrite(target, img):
                target = os.path.splitext(target)[0] + ".jpg"
                cv2.imwrite(target, img)
    dt = time.time() - t0
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(frames, f, indent=1)
        print(f"detections written to {json_path}", file=sys.stderr)
    if n and draw:
        where = out_single if out_single else out_dir
        print(f"images with boxes written to {where}", file=sys.stderr)
    if n:
        print(f"{n} images in {dt:.2f} s ({n / dt:.1f} images/s)", file=sys.stderr)
    _report_problems(problems)
    if not n:
        raise PydarknetError(f"none of the {len(paths)} images could be read")
    return 0


# -- commands ---------------------------------------------------------------------------------


def _cmd_detect(args):
    net = _load_network(args, args.cfg, args.weights, args.width, args.height)
    names = _names_for(net, args.names)
    problems = _problems()
    paths = _expand_images(args.images, problems)
    if not paths:
        raise PydarknetError("no images given (files, folders or list files)")
    return _run_detection(net, paths, names, args.thresh, args.nms,
                          None if args.no_save else args.out, None, args.json, args.ext_output,
                          args.batch, _threads(args), args.letter_box)


def _read_data(path):
    from .labels import read_data_file
    return read_data_file(path)


def _cmd_test(args):
    data = _read_data(args.data)
    net = _load_network(args, args.cfg, args.weights)
    names = _names_for(net, data.get("names"))
    problems = _problems()
    if not args.images:
        raise PydarknetError("give an image (or a folder, or a list file) to detect in")
    paths = _expand_images(args.images, problems)
    single = "predictions.jpg" if len(paths) == 1 and not args.out_dir else None
    out_dir = None if single else (args.out_dir or "predictions")
    return _run_detection(net, paths, names, args.thresh, args.nms, out_dir, single, args.out,
                          args.ext_output, 1, _threads(args), True if args.letter_box else None,
                          args.save_labels)


def _cmd_map(args):
    from .eval.darknet_map import evaluate_network_map, format_report
    from .labels import read_data_file
    data = read_data_file(args.data)
    net = _load_network(args, args.cfg, args.weights)
    valid = data.get("valid") or data.get("train")
    if not valid:
        raise PydarknetError(f"{args.data}: no 'valid =' (or 'train =') image list")
    names = _names_for(net, data.get("names"), quiet=True) if data.get("names") else None
    coco = None
    use_coco = args.coco or args.annotations or data.get("eval") == "coco"
    if use_coco:
        from .eval.coco import CocoEvaluator
        coco = CocoEvaluator(names or _names_for(net, None, quiet=True), args.annotations)
    problems = _problems()
    print(f"\n calculation mAP (mean average precision) on {valid} ...", flush=True)
    r = evaluate_network_map(net, valid, names, args.iou_thresh, args.thresh, args.points,
                             letter_box=True if args.letter_box else None, batch_size=args.batch,
                             threads=_threads(args), difficult=data.get("difficult"),
                             problems=problems, collect=coco.add if coco else None,
                             log=_progress())
    if _progress():
        print(file=sys.stderr)
    print(format_report(r))
    if coco is not None:
        stats = coco.evaluate()
        r["coco"] = stats
        print("\n COCO metrics (pycocotools):")
        print(stats["text"])
    print(f"\n {r['images']} images in {r['seconds']:.1f} s")
    _report_problems(problems)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(r, f, indent=1)
        print(f"metrics written to {args.json}")
    return 0


def _cmd_valid(args):
    import numpy as np

    from .detector import iter_detections
    from .eval.coco import COCO_IDS, image_id_from_path, results_for_image
    from .labels import read_list
    data = _read_data(args.data)
    net = _load_network(args, args.cfg, args.weights)
    names = _names_for(net, data.get("names"), quiet=True)
    valid = data.get("valid")
    if not valid:
        raise PydarknetError(f"{args.data}: no 'valid =' image list")
    paths = read_list(valid, "validation image list")
    prefix = data.get("results", "results")
    os.makedirs(prefix, exist_ok=True)
    coco = data.get("eval", "voc") == "coco"
    if coco and len(names) != 80:
        print(f"warning: eval=coco but the network has {len(names)} classes: category ids are "
              "the class indexes", file=sys.stderr)
    cat_ids = COCO_IDS if coco and len(names) == 80 else list(range(len(names)))
    outfile = args.out or ("coco_results" if coco else "comp4_det_test_")
    problems = _problems()
    results, voc = [], {k: [] for k in range(len(names))}
    seen_ids, fallback = {}, 0
    t0 = time.time()
    for i, path, _, dets in iter_detections(net, paths, args.thresh, args.nms,
                                            batch_size=args.batch, threads=_threads(args),
                                            problems=problems):
        image_id = image_id_from_path(path)
        if image_id is None:
            image_id, fallback = i, fallback + 1
        if image_id in seen_ids and seen_ids[image_id] != path:
            problems.report("image_id_duplicate", f"{path}: image id {image_id} also belongs to "
                            f"{seen_ids[image_id]} (ids come from the file names)")
        seen_ids[image_id] = path
        results.extend(results_for_image(image_id, dets, cat_ids))
        if not coco:
            w, h = dets.image_size
            rows, cls, score = dets.pairs(0)
            b = dets.boxes[rows].astype(np.float64) * [w, h, w, h]
            x0 = np.maximum(b[:, 0] - b[:, 2] / 2 + 1, 1)
            y0 = np.maximum(b[:, 1] - b[:, 3] / 2 + 1, 1)
            x1 = np.minimum(b[:, 0] + b[:, 2] / 2 + 1, w)
            y1 = np.minimum(b[:, 1] + b[:, 3] / 2 + 1, h)
            stem = os.path.basename(path).split(".", 1)[0]
            for k in range(len(rows)):
                voc[int(cls[k])].append(f"{stem} {score[k]:f} {x0[k]:f} {y0[k]:f} {x1[k]:f} "
                                        f"{y1[k]:f}\n")
        if len(seen_ids) % 100 == 0 and _progress():
            _progress()(f"\r{len(seen_ids)}/{len(paths)}", end="")
    if not seen_ids:
        raise PydarknetError(f"none of the {len(paths)} validation images could be read")
    json_path = os.path.join(prefix, (outfile if coco else "coco_results") + ".json")
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(results, f)
    ids = "COCO category ids" if cat_ids is COCO_IDS else "category id = class index"
    print(f"{len(results)} detections of {len(seen_ids)} images written to {json_path} "
          f"(COCO result format, {ids})")
    if fallback:
        print(f"warning: {fallback} file names hold no number; their image id is their line "
              "number in the list", file=sys.stderr)
    if not coco:
        for k, lines in voc.items():
            with open(os.path.join(prefix, f"{outfile}{names[k]}.txt"), "w") as f:
                f.writelines(lines)
        print(f"per-class VOC files written to {os.path.join(prefix, outfile)}<name>.txt")
    print(f"Total Detection Time: {time.time() - t0:.1f} Seconds", file=sys.stderr)
    _report_problems(problems)
    return 0


def _cmd_calc_anchors(args):
    import numpy as np

    from .eval.anchors import average_iou, format_anchors, kmeans_anchors, read_box_sizes
    from .labels import read_list
    if args.width <= 0 or args.height <= 0:
        raise PydarknetError("set -width and -height (the network input size) > 0")
    data = _read_data(args.data)
    train = data.get("train", "data/train.list")
    classes = int(data.get("classes", 1))
    print(f"\n num_of_clusters = {args.num_of_clusters}, width = {args.width}, "
          f"height = {args.height} ")
    paths = read_list(train, "training image list")
    print(f" read labels from {len(paths)} images ")
    problems = _problems()
    # class ids are not checked against classes: Darknet grows its counters instead
    wh, counts, found = read_box_sizes(paths, None, problems)
    if len(counts) < classes:
        counts = np.concatenate([counts, np.zeros(classes - len(counts), counts.dtype)])
    if not found:
        raise PydarknetError(f"no label file found for any of the {len(paths)} images")
    print(f" loaded \t image: {found} \t box: {len(wh)}")
    pixels = wh * np.array([args.width, args.height], np.float32)
    centers, _, rounds = kmeans_anchors(pixels, args.num_of_clusters, seed=args.seed)
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
    _report_problems(problems)
    return 0


def _classifier_setup(args, for_valid):
    from .labels import check_names, read_data_file, read_names
    data = read_data_file(args.data)
    keys = ("labels", "names") if for_valid else ("names", "labels")
    names_path = data.get(keys[0]) or data.get(keys[1]) or "data/labels.list"
    net = _load_network(args, args.cfg, args.weights)
    classes = int(data.get("classes", 2))
    last = net.layers[-1]
    if last.layer_type in ("softmax", "cost") and last.outputs != classes:
        raise PydarknetError(f"{args.cfg}: the last layer outputs {last.outputs} values but "
                             f"{args.data} says classes = {classes}")
    names = check_names(read_names(names_path), classes, names_path, f"{args.data} (classes)")
    return data, net, names


def _cmd_cls_predict(args):
    from .eval.classify import predict
    from .image import read_bgr
    data, net, names = _classifier_setup(args, False)
    top = args.top or int(data.get("top", 1))
    top = min(top, len(names))
    for path in args.images:
        t0 = time.time()
        res = predict(net, read_bgr(path, 3), top)
        print(f"{path}: Predicted in {(time.time() - t0) * 1000:f} milli-seconds.")
        for k, p in res:
            print(f"{names[k]}: {p:f}")
    return 0


def _cmd_cls_valid(args):
    from .eval.classify import validate
    from .labels import read_list
    data, net, names = _classifier_setup(args, True)
    valid = data.get("valid", "data/train.list")
    paths = read_list(valid, "validation image list")
    top = min(args.top or int(data.get("top", 5)), len(names))
    problems = _problems()
    r = validate(net, paths, names, top, threads=_threads(args), problems=problems,
                 log=_progress())
    if _progress():
        print(file=sys.stderr)
    if not r["images"]:
        _report_problems(problems)
        raise PydarknetError(f"no image of {valid} could be read and labelled")
    print(f"{r['images']} images: top 1: {r['top1']:f}, top {r['k']}: {r['topk']:f}")
    if r["unlabeled"] or r["skipped"]:
        print(f"skipped: {r['unlabeled']} without a class name in the path, {r['skipped']} "
              "unreadable", file=sys.stderr)
    _report_problems(problems)
    return 0


# -- argument parsing -------------------------------------------------------------------------


def _opt(p, name, **kw):
    """A Darknet-style single-dash flag that also answers to its double-dash spelling."""
    flags = dict.fromkeys((f"-{name}", f"--{name}", f"--{name.replace('_', '-')}"))
    p.add_argument(*flags, **kw)


def _common_run(p):
    from .cli import add_device_option
    p.add_argument("--threads", type=int, help="image-reading threads (default 2)")
    add_device_option(p)


def add_subcommands(sub):
    """``detect``, ``detector`` (test/map/valid/calc_anchors, + train from cli_train) and
    ``classifier`` (predict/valid, + train from cli_train)."""
    d = sub.add_parser("detect", help="detect objects in images, folders or list files",
                       allow_abbrev=False)
    d.add_argument("cfg")
    d.add_argument("weights")
    d.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders or .txt lists")
    d.add_argument("--names", help="class names file (default: COCO's for 80 classes)")
    d.add_argument("--thresh", type=float, default=0.25)
    d.add_argument("--nms", type=float, default=0.45, help="0 turns NMS off")
    d.add_argument("--out", default="predictions", help="folder for the images with boxes")
    d.add_argument("--no-save", dest="no_save", action="store_true",
                   help="do not write images with boxes")
    d.add_argument("--json", help="write the detections (Darknet's -out JSON format) here")
    _opt(d, "ext_output", action="store_true", help="print boxes in pixels")
    d.add_argument("--width", type=int, help="network input width (default: the cfg's)")
    d.add_argument("--height", type=int)
    d.add_argument("--letter-box", dest="letter_box", action="store_true", default=None,
                   help="letterbox even if the cfg does not say letter_box=1")
    d.add_argument("--batch", type=int, default=1, help="images per forward pass")
    _common_run(d)
    d.set_defaults(func=_cmd_detect)

    det = sub.add_parser("detector", help="Darknet's detector commands")
    dsub = det.add_subparsers(dest="action", required=True)

    t = dsub.add_parser("test", help="detect in images, Darknet's way", allow_abbrev=False)
    t.add_argument("data")
    t.add_argument("cfg")
    t.add_argument("weights", nargs="?")
    t.add_argument("images", nargs="*", metavar="IMAGE")
    _opt(t, "thresh", type=float, default=0.25)
    _opt(t, "nms", type=float, default=0.45)
    _opt(t, "ext_output", action="store_true")
    _opt(t, "dont_show", action="store_true", help="accepted (nothing is shown)")
    _opt(t, "letter_box", action="store_true")
    _opt(t, "out", help="JSON file for the detections (Darknet's -out)")
    _opt(t, "save_labels", action="store_true",
         help="write each image's detections as its label file (pseudo-labelling)")
    t.add_argument("--out-dir", dest="out_dir", help="folder for the images with boxes "
                   "(default: predictions.jpg for one image, predictions/ for several)")
    _common_run(t)
    t.set_defaults(func=_cmd_test)

    m = dsub.add_parser("map", help="Darknet's mAP on the valid list (+ COCO metrics)",
                        allow_abbrev=False)
    m.add_argument("data")
    m.add_argument("cfg")
    m.add_argument("weights", nargs="?")
    _opt(m, "points", type=int, default=0, help="0: area under curve, 11: VOC2007, 101: COCO")
    _opt(m, "iou_thresh", type=float, default=0.5)
    _opt(m, "thresh", type=float, default=0.25, help="confidence for TP/FP/precision/recall")
    _opt(m, "letter_box", action="store_true")
    _opt(m, "dont_show", action="store_true", help="accepted (nothing is shown)")
    m.add_argument("--coco", action="store_true", help="also COCO metrics (pycocotools)")
    m.add_argument("--annotations", help="COCO annotation json for the COCO metrics (default: "
                   "the Darknet label files)")
    m.add_argument("--json", help="write all metrics to this JSON file")
    m.add_argument("--batch", type=int, default=1, help="images per forward pass")
    _common_run(m)
    m.set_defaults(func=_cmd_map)

    v = dsub.add_parser("valid", help="write detections of the valid list (COCO json)",
                        allow_abbrev=False)
    v.add_argument("data")
    v.add_argument("cfg")
    v.add_argument("weights", nargs="?")
    _opt(v, "out", help="output name (default coco_results / comp4_det_test_)")
    _opt(v, "thresh", type=float, default=0.001)
    _opt(v, "nms", type=float, default=0.6)
    v.add_argument("--batch", type=int, default=1)
    _common_run(v)
    v.set_defaults(func=_cmd_valid)

    a = dsub.add_parser("calc_anchors", help="anchors by k-means over the training labels",
                        allow_abbrev=False)
    a.add_argument("data")
    _opt(a, "num_of_clusters", type=int, default=9)
    _opt(a, "width", type=int, default=416)
    _opt(a, "height", type=int, default=416)
    _opt(a, "seed", type=int, help="k-means initialisation seed (default: random, as Darknet)")
    _opt(a, "show", action="store_true", help="accepted (nothing is shown)")
    a.add_argument("--no-save", dest="no_save", action="store_true",
                   help="do not write anchors.txt / counters_per_class.txt")
    a.set_defaults(func=_cmd_calc_anchors)

    cls = sub.add_parser("classifier", help="Darknet's classifier commands")
    csub = cls.add_subparsers(dest="action", required=True)
    cp = csub.add_parser("predict", help="top-k classes of images", allow_abbrev=False)
    cp.add_argument("data")
    cp.add_argument("cfg")
    cp.add_argument("weights")
    cp.add_argument("images", nargs="+", metavar="IMAGE")
    cp.add_argument("-top", "--top", "-t", type=int, default=0)
    from .cli import add_device_option
    add_device_option(cp)
    cp.set_defaults(func=_cmd_cls_predict)
    cv = csub.add_parser("valid", help="top-1 / top-k accuracy on the valid list",
                         allow_abbrev=False)
    cv.add_argument("data")
    cv.add_argument("cfg")
    cv.add_argument("weights", nargs="?")
    cv.add_argument("-top", "--top", "-t", type=int, default=0)
    _common_run(cv)
    cv.set_defaults(func=_cmd_cls_valid)

    try:
        from .cli_train import add_darknet_train
    except ImportError:
        return
    add_darknet_train(dsub, csub)
