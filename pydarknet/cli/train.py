"""Training commands: ``pydarknet train``, Darknet's ``detector train`` / ``classifier train``,
and ``pydarknet demo`` (the built-in shapes data set, trained on the CPU in a few minutes)."""

import os
import time

from ..train.run import run_training  # noqa: F401  (the commands' training, from Python too)
from .common import add_device_option, builtin_cfg, darknet_command, device_of, gpu_list


def _cmd_train(args):
    """``train CFG DATA`` and Darknet's ``detector|classifier train DATA CFG``; with several
    GPUs outside an MPI launch, the same command again as one MPI rank per GPU."""
    from ..dist import launched_ranks
    from ..dist.launch import relaunch
    if getattr(args, "nogpu", False):
        args.gpu = None
    gpus = gpu_list(args)
    if len(gpus) > 1 and launched_ranks() == 1:
        from ..backend.cuda_device import require_pycuda
        require_pycuda()              # one message here, not one from each rank
        return relaunch(len(gpus), args.argv)
    run_training(args.cfg, args.data, args.weights, clear=args.clear, calc_map=args.map,
                 calc_topk=args.topk,
                 seed=args.seed, backup=args.backup, max_batches=args.max_batches,
                 device=device_of(args), sync=args.sync, thresh=args.thresh,
                 iou_thresh=args.iou_thresh, map_epochs=args.map_epochs, chart=args.chart,
                 show_imgs="." if args.show_imgs else None, mjpeg_port=args.mjpeg_port,
                 benchmark_layers=args.benchmark_layers, missing_labels=args.missing_labels)
    return 0


def _cmd_demo(args):
    from ..data import make_shapes_detection
    t0 = time.time()
    folder = os.path.abspath(args.folder)
    print(f"generating the built-in shapes data set in {folder} ...")
    ds = make_shapes_detection(os.path.join(folder, "shapes"), train=args.train_images,
                               valid=args.valid_images, size=160, seed=args.seed or 0)
    backup = os.path.join(folder, "backup")
    trainer, weights = run_training(args.cfg, ds["data"], clear=True, seed=args.seed or 0,
                                    backup=backup, max_batches=args.iterations, calc_map=True,
                                    map_every=max(args.iterations // 4, 50),
                                    device=device_of(args))
    minutes = (time.time() - t0) / 60
    best = trainer.best_map or 0.0
    print(f"\ntrained {trainer.net.iteration} iterations in {minutes:.1f} min; "
          f"mAP@0.5 on the {args.valid_images} held-out images: {best * 100:.1f}%")
    print(f"chart: {os.path.join(backup, 'chart.png')}")
    import cv2

    from ..image import draw_detections, read_bgr
    with open(ds["valid"]) as f:
        first = f.readline().strip()
    image = read_bgr(first)
    dets = trainer.net.detect(image, thresh=0.25)
    out = os.path.join(folder, "predictions.jpg")
    cv2.imwrite(out, draw_detections(image, dets, names=ds.get("class_names")))
    print(f"detections on {first}: {out}")
    return 0


def _train_arguments(p, darknet_style):
    flag = "-" if darknet_style else "--"
    p.add_argument(f"{flag}clear", action="store_true",
                   help="restart the iteration count at 0 (transfer learning)")
    p.add_argument(f"{flag}map", action="store_true",
                   help="mAP@0.5 on the valid list as it goes (as Darknet: every 4 epochs of "
                        "the training list, at least every 100 iterations, not before "
                        "burn_in, and at the end)")
    p.add_argument(f"{flag}topk", action="store_true",
                   help="a classifier's top-k accuracy (the .data file's top=, default 5) on "
                        "the valid list as it goes (as Darknet: every 2 epochs from iteration "
                        "100 and burn_in on, and at the end)")
    p.add_argument(f"{flag}thresh", type=float, default=0.25,
                   help="with -map: the detections' confidence threshold (default 0.25)")
    p.add_argument(f"{flag}iou_thresh", type=float, default=0.5,
                   help="with -map: the IoU that makes a detection true (default 0.5)")
    p.add_argument(f"{flag}mAP_epochs", dest="map_epochs", type=int,
                   help="with -map/-topk: measure every N epochs of the training list "
                        "(default 4; a classifier's 2)")
    p.add_argument(f"{flag}chart", help="where to write the loss chart (default: "
                                        "BACKUP/chart.png)")
    p.add_argument(f"{flag}show_imgs", action="store_true",
                   help="write every training image, augmented, with its boxes as "
                        "aug_<iteration>_<row>.jpg in the current folder (to check labels)")
    p.add_argument(f"{flag}dont_show", action="store_true", help="accepted (nothing is shown)")
    p.add_argument(f"{flag}mjpeg_port", type=int,
                   help="serve the loss chart as an MJPEG stream on this port (open "
                        "http://localhost:PORT in a browser)")
    p.add_argument(f"{flag}benchmark_layers", action="store_true",
                   help="print each layer's forward and backward time in the second "
                        "iteration, the slowest first")
    p.add_argument(f"{flag}dontuse_opencv", action="store_true",
                   help="accepted (Darknet's classifier then draws no chart; here it is a "
                        "file all the same)")
    p.add_argument("--missing-labels", dest="missing_labels", default="skip",
                   choices=("skip", "background"),
                   help="a detector's image without a label file: skipped with a warning "
                        "(default) or trained as an image without objects (background), as "
                        "Darknet does")
    p.add_argument("--seed", type=int, help="makes augmentation and initialisation repeatable")
    p.add_argument("--backup", help="checkpoint folder (default: the .data file's backup=)")
    p.add_argument("--max-batches", dest="max_batches", type=int,
                   help="stop at this iteration instead of the cfg's max_batches")
    p.add_argument("--sync", choices=("sum", "darknet"), default="sum",
                   help="several ranks (mpiexec -n N, or -gpus 0,1,..): 'sum' (default) makes "
                        "an iteration equal one process with N times the batch; 'darknet' is "
                        "Darknet's multi-GPU rule (rate x N, weights averaged every 4 iterations)")
    add_device_option(p)


def add_commands(sub):
    """``train`` and ``demo``."""
    p = sub.add_parser("train", help="train a detector or classifier (darknet detector train)")
    p.add_argument("cfg")
    p.add_argument("data", help="Darknet .data file (classes, train, valid, names, backup)")
    p.add_argument("weights", nargs="?", help="checkpoint to resume, or backbone to start from")
    _train_arguments(p, darknet_style=False)
    p.set_defaults(func=_cmd_train)

    demo = sub.add_parser("demo", help="generate the built-in shapes data set and train "
                                       "cfg/demo-shapes.cfg on it (a few CPU minutes)")
    demo.add_argument("--cfg", default=builtin_cfg("demo-shapes.cfg"),
                      help="the network (default: the packaged cfg/demo-shapes.cfg)")
    demo.add_argument("--folder", default="demo", help="where data, checkpoints, chart go")
    demo.add_argument("--iterations", type=int, default=1200)
    demo.add_argument("--train-images", dest="train_images", type=int, default=400)
    demo.add_argument("--valid-images", dest="valid_images", type=int, default=100)
    demo.add_argument("--seed", type=int, default=0)
    add_device_option(demo)
    demo.set_defaults(func=_cmd_demo)


def add_darknet_train(detector_sub, classifier_sub):
    """`detector train DATA CFG [WEIGHTS]` and `classifier train DATA CFG [WEIGHTS]`."""
    for sub in (detector_sub, classifier_sub):
        p = darknet_command(sub, "train", "Darknet's form of `pydarknet train`")
        _train_arguments(p, darknet_style=True)
        # flags of Darknet's run_detector that its training does not use: accepted, so that a
        # Darknet command line runs as it is
        for flag in ("-benchmark", "-letter_box", "-show", "-ext_output", "-save_labels",
                     "-dontdraw_bbox"):
            p.add_argument(flag, action="store_true", dest=f"ignored_{flag[1:]}",
                           help="accepted, no effect in training (as Darknet's)")
        p.add_argument("-nogpu", action="store_true",
                       help="train on the CPU (the default; over -i and -gpus, as Darknet's)")
        for flag in ("-points", "-avgframes", "-json_port", "-hier"):
            p.add_argument(flag, dest=f"ignored_{flag[1:]}", metavar="V",
                           help="accepted, no effect in training (as Darknet's)")
        p.set_defaults(func=_cmd_train)
