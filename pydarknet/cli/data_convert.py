"""``pydarknet data coco|voc|yolo|labelme|bdd|kitti|cifar|idx``: annotations converted to
Darknet's layout (:mod:`pydarknet.datasets`).

    pydarknet data coco instances_train2017.json train2017/ data/coco \\
        --valid-json instances_val2017.json --valid-images val2017/
    pydarknet data voc VOCdevkit/ data/voc --sets 2007/trainval,2012/trainval --valid-sets 2007/test
    pydarknet data yolo datasets/coco128/data.yaml data/coco128
    pydarknet data labelme photos/ data/mine --valid-fraction 0.1
    pydarknet data bdd bdd100k_labels_images_train.json bdd100k/images/100k/train data/bdd
    pydarknet data kitti kitti/training data/kitti --valid-fraction 0.2
    pydarknet data cifar cifar-10-batches-bin data/cifar
    pydarknet data idx train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz data/fashion \\
        --names fashion-mnist --list train

Every converter builds its output in a temporary folder beside OUT_DIR and renames it into
place at the end (an older output of the same converter is replaced only then), and prints a
summary: images, boxes per class, what was skipped and why.
"""

import argparse
import sys

_LAYOUT = ("OUT_DIR gets obj.names, obj.data, train.txt (and valid.txt) and images/<list>/: "
           "a link to every image (a copy with --copy) with its Darknet label file beside it; "
           "the lists hold absolute paths. OUT_DIR must be new, empty, or an older output of "
           "the same command (then replaced whole at the end; keep your own files elsewhere).")


class _Paragraphs(argparse.HelpFormatter):
    """Help whose description keeps its blank-line paragraphs, each wrapped."""

    def _fill_text(self, text, width, indent):
        return "\n\n".join(super(_Paragraphs, self)._fill_text(p, width, indent)
                           for p in text.split("\n\n"))


def _add_detection_output(p):
    """OUT_DIR and --copy, as the detection converters (coco, voc) take them."""
    p.add_argument("out_dir", metavar="OUT_DIR", help="the folder to write (see above)")
    p.add_argument("--copy", action="store_true", help="copy the images instead of linking")


def add_commands(actions):
    """Adds ``coco``, ``voc``, ``yolo``, ``labelme``, ``bdd``, ``kitti``, ``cifar`` and
    ``idx`` to ``pydarknet data``."""
    fmt = _Paragraphs
    p = actions.add_parser(
        "coco", help="COCO instances json -> Darknet detector data set", formatter_class=fmt,
        description="Converts a COCO instances json (read through pycocotools) to Darknet's "
        "detector layout.\n\n" + _LAYOUT + "\n\nClasses are the categories in id order (or "
        "--classes). Links are named so that Darknet's image-id rule (number after the last "
        "'_', or the file name) gives the COCO image id, and obj.data records eval = coco and "
        "category_ids (one COCO id per class; Darknet ignores the line): 'pydarknet detector "
        "valid' then writes results with the original image and category ids.\n\nA validation "
        "split: --valid-json J [--valid-images DIR] -> valid.txt (classes matched by name).")
    p.add_argument("instances", metavar="INSTANCES.json",
                   help="COCO instances json (the training split)")
    p.add_argument("image_dir", metavar="IMAGE_DIR",
                   help="the folder its file_name entries are in (not written)")
    p.add_argument("--valid-json", help="a second COCO json for the validation list")
    p.add_argument("--valid-images", help="the validation images' folder (default IMAGE_DIR)")
    p.add_argument("--classes", help="comma-separated category names to keep, in this order "
                                     "(default: every category, in id order)")
    p.add_argument("--keep-crowd", action="store_true",
                   help="keep iscrowd=1 boxes (skipped by default, as COCO's evaluation "
                        "ignores them)")
    _add_detection_output(p)
    p.set_defaults(func=_cmd_coco)

    p = actions.add_parser(
        "voc", help="Pascal VOC xml -> Darknet detector data set", formatter_class=fmt,
        description="Converts Pascal VOC annotations (VOCdevkit layout: VOC_ROOT/VOC2007/"
        "{Annotations,JPEGImages,ImageSets/Main/<set>.txt}) to Darknet's detector layout, "
        "boxes as Darknet's scripts/voc_label.py computes them.\n\n" + _LAYOUT)
    p.add_argument("voc_root", metavar="VOC_ROOT",
                   help="the folder holding VOC2007/, VOC2012/ (VOCdevkit)")
    p.add_argument("--sets", help="YEAR/SET lists for train.txt, comma-separated (default: "
                                  "2007/trainval,2012/trainval, those that exist)")
    p.add_argument("--valid-sets", help="YEAR/SET lists for valid.txt (default: 2007/test "
                                        "if it exists; 'none' for no valid.txt)")
    p.add_argument("--classes", help="comma-separated class names, in this order (default: "
                                     "the 20 VOC classes in their usual order)")
    p.add_argument("--keep-difficult", action="store_true",
                   help="keep objects marked difficult (skipped by default, as voc_label.py)")
    _add_detection_output(p)
    p.set_defaults(func=_cmd_voc)

    p = actions.add_parser(
        "yolo", help="Ultralytics/Roboflow YOLO data.yaml -> Darknet detector data set",
        formatter_class=fmt,
        description="Converts an Ultralytics (YOLOv5/v8, Roboflow's 'YOLO' export) data set "
        "to Darknet's detector layout: the yaml's names, and its train and val splits (image "
        "folders or list files) into train.txt and valid.txt. Each image's labels are found "
        "as Ultralytics finds them (images/ -> labels/); polygons (segmentation) become their "
        "boxes.\n\n" + _LAYOUT)
    p.add_argument("yaml", metavar="DATA.yaml", help="the data set's yaml (names:, train:, "
                                                    "val:, path:)")
    _add_detection_output(p)
    p.set_defaults(func=_cmd_yolo)

    p = actions.add_parser(
        "bdd", help="Berkeley DeepDrive (BDD100K) labels json -> Darknet detector data set",
        formatter_class=fmt,
        description="Converts BDD100K detection labels (the 2018 release's or det_20's json "
        "list of frames) to Darknet's detector layout. The classes are the ten of AB "
        "Darknet's eval=bdd result format in its order (bike, bus, car, motor, person, rider, "
        "traffic light, traffic sign, train, truck; det_20's bicycle, motorcycle and pedestrian "
        "are the same), and obj.data says eval = bdd, so that `detector valid` writes BDD's "
        "categories; --classes picks a subset (then without eval = bdd). Lanes, drivable area "
        "and other categories are left out.\n\n" + _LAYOUT)
    p.add_argument("labels", metavar="LABELS.json", help="the training split's labels")
    p.add_argument("image_dir", metavar="IMAGE_DIR", help="the training split's images "
                                                        "(bdd100k/images/100k/train)")
    p.add_argument("--valid-json", dest="valid_json", help="the validation split's labels")
    p.add_argument("--valid-images", dest="valid_images", help="the validation split's images")
    p.add_argument("--classes", help="comma-separated categories to keep, in this order")
    _add_detection_output(p)
    p.set_defaults(func=_cmd_bdd)

    p = actions.add_parser(
        "kitti", help="KITTI 2D object labels -> Darknet detector data set",
        formatter_class=fmt,
        description="Converts KITTI's training/ folder (image_2/ and label_2/) to Darknet's "
        "detector layout. The classes are Car, Pedestrian and Cyclist, the three of AB "
        "Darknet's eval=kitti result format in its order, and obj.data says eval = kitti, so "
        "that `detector valid` writes KITTI's result files; --classes picks other KITTI types "
        "(then without eval = kitti). DontCare regions are left out. The valid list is the "
        "ids of a file (--valid-ids) or a share of the images (--valid-fraction, the same "
        "ones on every run).\n\n" + _LAYOUT)
    p.add_argument("training_dir", metavar="TRAINING_DIR",
                   help="KITTI's training/ folder (image_2/, label_2/)")
    p.add_argument("--valid-ids", dest="valid_ids", metavar="FILE",
                   help="image ids (000123), one a line, for the valid list")
    p.add_argument("--valid-fraction", dest="valid_fraction", type=float, default=0.0,
                   help="put this share of the images in the valid list instead")
    p.add_argument("--classes", help="comma-separated KITTI types to keep, in this order "
                                     "(default Car,Pedestrian,Cyclist)")
    _add_detection_output(p)
    p.set_defaults(func=_cmd_kitti)

    p = actions.add_parser(
        "labelme", help="LabelMe json annotations -> Darknet detector data set",
        formatter_class=fmt,
        description="Converts the images annotated with the LabelMe tool (a .json beside each "
        "image) under a folder to Darknet's detector layout: rectangles, polygons, circles "
        "and masks become boxes (points and lines are left out); the classes are --classes in "
        "that order, or every label found, sorted. An image missing beside its json but "
        "embedded in it (imageData) is written out. The valid list is a second folder "
        "(--valid) or a share of the images (--valid-fraction, the same ones on every run)."
        "\n\n" + _LAYOUT)
    p.add_argument("folder", metavar="FOLDER", help="the folder of images and LabelMe .json "
                                                    "files (searched recursively)")
    p.add_argument("--valid", metavar="FOLDER", help="a folder of LabelMe annotations for the "
                                                     "valid list")
    p.add_argument("--valid-fraction", dest="valid_fraction", type=float, default=0.0,
                   help="put this share of FOLDER's images in the valid list instead")
    p.add_argument("--classes", help="comma-separated class names to keep, in this order "
                                     "(default: every label, sorted)")
    _add_detection_output(p)
    p.set_defaults(func=_cmd_labelme)

    p = actions.add_parser(
        "cifar", help="CIFAR-10 (binary or Python version) -> Darknet classifier data set",
        formatter_class=fmt,
        description="Converts CIFAR-10 as downloaded (the folder cifar-10-batches-bin or "
        "cifar-10-batches-py) to Darknet's classifier layout, as pjreddie's CIFAR-10 tutorial "
        "has it: data_batch_1..5 -> OUT_DIR/train/<number>_<class>.png and train.txt, "
        "test_batch -> valid/ and valid.txt, obj.names (batches.meta's names), obj.data "
        "(classes, train, valid, labels, top = 2, backup); cfg/cifar.cfg trains on it.")
    p.add_argument("cifar_dir", metavar="CIFAR_DIR",
                   help="cifar-10-batches-bin or cifar-10-batches-py")
    p.add_argument("out_dir", metavar="OUT_DIR", help="the folder to write")
    p.add_argument("--limit", type=int, help="convert only the first N images of each list")
    p.set_defaults(func=_cmd_cifar)

    p = actions.add_parser(
        "idx", help="idx images + labels (MNIST, Fashion-MNIST) -> Darknet classifier data set",
        formatter_class=fmt,
        description="Converts an idx image file and its label file (MNIST format, gzipped or "
        "not) to Darknet's classifier layout: OUT_DIR/<list>/<number>_<class>.png (the class "
        "name in the file name is how Darknet finds the class), <list>.txt, obj.names and "
        "obj.data (classes, train, valid, labels, top, backup).\n\nTraining and test sets go "
        "into the same OUT_DIR with two runs: --list train, then --list valid; a run replaces "
        "its own list and keeps the other one (same --names needed).")
    p.add_argument("images", metavar="IMAGES",
                   help="idx image file (e.g. train-images-idx3-ubyte.gz)")
    p.add_argument("labels", metavar="LABELS",
                   help="idx label file (e.g. train-labels-idx1-ubyte.gz)")
    p.add_argument("out_dir", metavar="OUT_DIR",
                   help="the folder to write")
    p.add_argument("--names", help="comma-separated class names (made file-name safe: "
                                   "'T-shirt/top' -> 'T-shirt_top'), or 'mnist' (zero..nine) "
                                   "or 'fashion-mnist' (its 10 classes); default class_0, ...")
    p.add_argument("--list", choices=("train", "valid"), default="train",
                   help="which list these files make (default train)")
    p.add_argument("--limit", type=int, help="convert only the first N images")
    p.set_defaults(func=_cmd_idx)


def _run(convert, *args, **kwargs):
    """Runs a converter and prints its summary; a file-system error (no space left, no
    permission) becomes a message naming the file, not a traceback."""
    from ..errors import PydarknetError
    try:
        summary, names = convert(*args, **kwargs)
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        raise PydarknetError(f"{where}{e.strerror or e}; nothing written to {args[-1]}") \
            from None
    print(summary.text(args[-1], names))
    sys.stdout.flush()
    return 0


def _classes(text):
    from ..datasets.layout import parse_names_option
    return None if text is None else parse_names_option(text)


def _cmd_coco(args):
    from ..datasets.coco import convert_coco
    return _run(convert_coco, args.instances, args.image_dir, args.out_dir,
                valid_json=args.valid_json, valid_images=args.valid_images,
                classes=_classes(args.classes), keep_crowd=args.keep_crowd, copy=args.copy)


def _cmd_voc(args):
    from ..datasets.voc import convert_voc
    return _run(convert_voc, args.voc_root, args.out_dir, sets=args.sets,
                valid_sets=args.valid_sets, classes=_classes(args.classes),
                keep_difficult=args.keep_difficult, copy=args.copy)


def _cmd_yolo(args):
    from ..datasets.yolo import convert_yolo
    return _run(convert_yolo, args.yaml, args.out_dir, copy=args.copy)


def _cmd_bdd(args):
    from ..datasets.bdd import convert_bdd
    return _run(convert_bdd, args.labels, args.image_dir, args.out_dir,
                valid_json=args.valid_json, valid_images=args.valid_images,
                classes=_classes(args.classes), copy=args.copy)


def _cmd_kitti(args):
    from ..datasets.kitti import convert_kitti
    return _run(convert_kitti, args.training_dir, args.out_dir, valid_ids=args.valid_ids,
                valid_fraction=args.valid_fraction, classes=_classes(args.classes),
                copy=args.copy)


def _cmd_labelme(args):
    from ..datasets.labelme import convert_labelme
    return _run(convert_labelme, args.folder, args.out_dir, valid=args.valid,
                valid_fraction=args.valid_fraction, classes=_classes(args.classes),
                copy=args.copy)


def _cmd_cifar(args):
    from ..datasets.cifar import convert_cifar
    return _run(convert_cifar, args.cifar_dir, args.out_dir, limit=args.limit)


def _cmd_idx(args):
    from ..datasets.idx import convert_idx
    return _run(convert_idx, args.images, args.labels, args.out_dir, names=args.names,
                split=args.list, limit=args.limit)
