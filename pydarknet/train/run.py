"""Training a cfg on a Darknet .data file, as the training commands do (and from Python):

    from pydarknet.train import run_training
    trainer, final = run_training("cfg/yolov4-tiny.cfg", "data/obj.data",
                                  "yolov4-tiny.conv.29", calc_map=True)
"""

from ..errors import PydarknetError
from ..heads import detection_heads, is_detector

__all__ = ["run_training"]


def _map_function(data, thresh=0.25, iou=0.5):
    """The network's mAP at IoU ``iou`` (detections above ``thresh``) on the .data file's
    valid list (Darknet's default: the train list), with its difficult= list as Darknet's
    validate_detector_map. The list is read now: a missing or empty one stops training
    before it starts (as Darknet's train_detector), not at the first mAP."""
    valid = data.get("valid") or data.get("train")
    if not valid:
        return None
    from ..eval.darknet_map import evaluate_network_map, validation_paths
    paths = validation_paths(valid)

    def compute(net):
        return evaluate_network_map(net, paths, names=data.get("names"), iou_thresh=iou,
                                    thresh=thresh, difficult=data.get("difficult"))["map"]
    return compute


def _topk_function(data):
    """The top-k accuracy (the .data file's top=, default 5) on its valid list (Darknet's
    default: the train list), as Darknet's train_classifier -topk measures it."""
    from ..eval.classify import validate
    from ..labels import read_list
    names = data.get("labels") or data.get("names")
    if not names:
        raise PydarknetError("-topk needs the .data file's labels= (the class names)")
    names = read_list(names, what="labels file")
    paths = read_list(data.get("valid") or data["train"], "validation image list")
    top = min(int(data.get("top", 5)), len(names))

    def compute(net):
        return validate(net, paths, names, top)["topk"]
    return compute, f"top{top}"


def run_training(cfg, datafile, weights=None, clear=False, calc_map=False, seed=None,
                 backup=None, max_batches=None, map_every=None, log=print, device="cpu",
                 sync="sum", calc_topk=False, thresh=0.25, iou_thresh=0.5, map_epochs=None,
                 chart=None, show_imgs=None, mjpeg_port=None, benchmark_layers=False,
                 missing_labels="skip"):
    """Darknet's ``detector train`` / ``classifier train`` (``pydarknet train``): train ``cfg``
    on the .data file's ``train=`` list from ``weights`` (a checkpoint resumes, a backbone
    starts, ``clear`` restarts the count), writing checkpoints and the log to ``backup``
    (default: the .data file's, else backup/). ``calc_map`` / ``calc_topk``: a detector's mAP
    or a classifier's top-k on ``valid=`` as training goes (the best kept): the mAP counts
    detections above ``thresh`` that overlap a truth by ``iou_thresh``, every ``map_epochs``
    epochs (Darknet's -mAP_epochs: 4; a classifier's every 2). ``chart``: the chart's path
    (default backup/chart.png); ``show_imgs``: a folder for each iteration's training images
    with their boxes (Darknet's -show_imgs); ``mjpeg_port``: the chart as an MJPEG stream
    there (Darknet's -mjpeg_port); ``benchmark_layers``: each layer's forward and backward
    time in the second iteration (Darknet's -benchmark_layers). ``missing_labels``: a detector's
    image without a label file is skipped ("skip", warned) or trained as an image without
    objects ("background", as Darknet). Returns (the Trainer, the path of the final
    checkpoint)."""
    from ..data import make_loader
    from ..labels import read_data_file
    from ..train.loop import Trainer

    data = read_data_file(datafile)
    if "train" not in data:
        raise PydarknetError(f"{datafile}: no 'train=' list of training images")
    backup = backup or data.get("backup") or "backup"
    map_fn = _map_function(data, thresh, iou_thresh) if calc_map else None
    metric, epochs = f"mAP@{iou_thresh:g}", 4
    if calc_topk:
        if calc_map:
            raise PydarknetError("-map is a detector's measure and -topk a classifier's: "
                                 "pass one")
        map_fn, metric = _topk_function(data)
        epochs = 2                       # Darknet's train_classifier: every 2 epochs
    if map_epochs is not None:
        if map_epochs < 1:
            raise PydarknetError(f"-mAP_epochs must be at least 1, found {map_epochs}")
        epochs = map_epochs
    if (calc_map or calc_topk) and not data.get("valid"):
        log(f"{datafile}: no 'valid=' list: accuracy on the training list, as Darknet does")
    # Darknet's .data options: weights every saveweights iterations, _last every savelast
    every = {}
    for key in ("saveweights", "savelast"):
        if key in data:
            try:
                every[key] = int(data[key])
            except ValueError:
                raise PydarknetError(f"{datafile}: {key}={data[key]} is not a whole number of "
                                     f"iterations") from None
            if every[key] < 1:
                raise PydarknetError(f"{datafile}: {key} must be at least 1")

    if missing_labels not in ("skip", "background"):
        raise PydarknetError(f"missing_labels must be 'skip' or 'background', found "
                             f"{missing_labels!r}")

    def loader(net, loader_seed):
        extra = ({"missing_labels": "empty" if missing_labels == "background" else "skip"}
                 if detection_heads(net) else {})
        return make_loader(net, data["train"], seed=loader_seed, labels=data.get("labels"),
                           **extra)

    trainer = Trainer(cfg, loader, weights=weights, clear=clear, backup=backup, seed=seed,
                      map_fn=map_fn, map_every=map_every, log=log, max_batches=max_batches,
                      device=device, sync=sync, save_every=every.get("saveweights"),
                      last_every=every.get("savelast", 100), metric=metric, eval_epochs=epochs,
                      chart=chart, show_imgs=show_imgs, mjpeg_port=mjpeg_port,
                      benchmark_layers=benchmark_layers)
    if calc_topk and is_detector(trainer.net):
        raise PydarknetError(f"{cfg}: -topk measures a classifier's accuracy; for a detector "
                             f"use -map")
    if calc_map and not is_detector(trainer.net):
        raise PydarknetError(f"{cfg}: -map measures a detector's mAP, and this network has no "
                             f"[yolo]/[region]/[detection] layer (for a classifier's accuracy use "
                             f"-topk)")
    if trainer.root:
        log(trainer.net.table())        # Darknet prints the network's layers before training
        _check_classes(trainer.net, data, datafile, log)
    return trainer, trainer.run()


def _check_classes(net, data, datafile, log):
    """A .data file whose classes differ from the cfg's heads' (a cfg not yet set up for the
    data, or the other way round): Darknet trains the heads' classes without a word."""
    heads = sorted({l.classes for l in detection_heads(net)})
    try:
        declared = int(data.get("classes", ""))
    except ValueError:
        return
    if heads and heads != [declared]:
        log(f"warning: {datafile} says classes = {declared} but the cfg's heads have "
            f"{', '.join(map(str, heads))}: training uses the heads' (labels of other classes "
            f"are skipped); `pydarknet custom CFG OUT --data {datafile}` sets a cfg up for it")
