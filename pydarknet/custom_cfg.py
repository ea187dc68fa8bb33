"""A detector's or classifier's cfg set up for your own classes: the edits AB Darknet's README
lists under "How to train (to detect your custom objects)", made in a copy of the cfg with
everything else kept as written.

- ``classes=N`` in every [yolo], [Gaussian_yolo], [region], [detection] and [contrastive];
- ``filters=`` of the [convolutional] before each head: masks x (classes + 5) for [yolo]
  (+ 9 for [Gaussian_yolo]), num x (classes + coords + 1) for [region]; ``output=`` of the
  [connected] before a [detection]: side² x ((1 + coords) x num + classes);
- ``max_batches`` = classes x 2000, but not less than the training images nor 6000, and with
  ``policy=steps`` ``steps`` at 80% and 90% of it (``scales=.1,.1`` unless there are two);
- a head's ``counters_per_class`` / ``classes_multipliers`` (one number a class) left out when
  they no longer fit;
- on request ``width``/``height`` (multiples of 32), ``batch``/``subdivisions`` and
  ``anchors``.

A classifier (no head, a last [softmax]) gets ``classes`` outputs in the [convolutional] or
[connected] that makes the softmax's scores (through [avgpool], [activation], [dropout]);
its ``max_batches`` and ``steps`` change only when ``max_batches`` is given.

The result is built once before it is returned, so that a cfg it cannot set up is an error
here, not at the start of training.
"""

from .cfg import parse_cfg_text
from .cfg_edit import CfgText
from .errors import PydarknetError

__all__ = ["custom_cfg", "default_max_batches"]

HEADS = ("yolo", "gaussian_yolo", "region", "detection")
PER_CLASS = ("counters_per_class", "classes_multipliers")


def default_max_batches(classes, train_images=0):
    """AB's rule: classes x 2000, not less than the training images nor 6000."""
    return max(2000 * classes, int(train_images), 6000)


def _head_input_size(head, classes):
    """The channels (``filters=``) or, for [detection], the ``output=`` a head needs."""
    if head.layer_type == "yolo":
        return head.n * (classes + 5)
    if head.layer_type == "gaussian_yolo":
        return head.n * (classes + 9)
    if head.layer_type == "region":
        return head.num * (classes + head.coords + 1)
    return head.side * head.side * ((1 + head.coords) * head.num + classes)


def custom_cfg(cfg_path, classes, train_images=0, width=None, height=None, batch=None,
               subdivisions=None, max_batches=None, anchors=None):
    """The text of ``cfg_path`` set up for ``classes`` classes (see the module); returns
    ``(text, notes)``, notes a list of lines saying what changed."""
    from .network import Network
    if classes < 1:
        raise PydarknetError(f"classes must be at least 1, found {classes}")
    cfg = CfgText.read(cfg_path)
    net = Network(cfg_path, batch=1, init=False)
    heads = [l for l in net.layers if l.layer_type in HEADS]
    if heads:
        notes = _detector_edits(cfg, net, heads, classes, anchors)
        mb = max_batches or default_max_batches(classes, train_images)
    else:
        if anchors is not None:
            raise PydarknetError(f"{cfg_path}: a classifier has no anchors")
        notes = _classifier_edits(cfg, net, classes)
        mb = max_batches
    notes += _net_edits(cfg, net, mb, width, height, batch, subdivisions, bool(heads))
    text = cfg.text()
    try:
        Network(parse_cfg_text(text, cfg_path), batch=1, init=False)
    except PydarknetError as e:
        raise PydarknetError(f"the set-up cfg does not build: {e}") from None
    return text, notes


def _classifier_edits(cfg, net, classes):
    """The [convolutional] or [connected] that makes the scores of the last [softmax] (through
    [avgpool], [activation], [dropout] only) gets ``classes`` outputs."""
    last = max((l for l in net.layers if l.layer_type == "softmax"), default=None,
               key=lambda l: l.index)
    if last is None:
        raise PydarknetError(f"{net.cfg_path}: no [yolo], [Gaussian_yolo], [region] or "
                             f"[detection] layer, nor a [softmax]: neither a detector nor a "
                             f"classifier")
    where = f"layer {last.index} [softmax] ({net.cfg_path}:{last.section.line})"
    if last.tree or last.groups != 1:
        raise PydarknetError(f"{where}: with tree= or groups= its classes are not one number; "
                             f"set it up by hand")
    k = last.index - 1
    while k >= 0 and net.layers[k].layer_type in ("avgpool", "activation", "dropout"):
        k -= 1
    layer = net.layers[k] if k >= 0 else None
    if layer is None or layer.layer_type not in ("convolutional", "connected"):
        raise PydarknetError(f"{where}: its scores do not come from a [convolutional] or "
                             f"[connected] whose size could be set")
    if layer.layer_type == "convolutional" and last.inputs != layer.out_c:
        raise PydarknetError(f"{where}: it takes a {layer.out_w}x{layer.out_h}x{layer.out_c} "
                             f"map, not one score a class (a softmax over places, as Darknet's "
                             f"Go network's): its classes are not filters; set it up by hand")
    key = "filters" if layer.layer_type == "convolutional" else "output"
    cfg.set(cfg.layer(k), key, classes)
    return [f"layer {k} [{cfg.layer(k).name}]: {key}={classes} (the scores of the [softmax], "
            f"layer {last.index})"]


def _detector_edits(cfg, net, heads, classes, anchors):
    cfg_path, notes = net.cfg_path, []
    for head in heads:
        section = cfg.layer(head.index)
        where = f"layer {head.index} [{section.name}] ({cfg_path}:{section.line})"
        if getattr(head, "tree", None) or getattr(head, "map_file", None):
            raise PydarknetError(f"{where}: its classes come from its tree= / map= files "
                                 f"(yolo9000); set it up by hand")
        cfg.set(section, "classes", classes)
        prev = net.layers[head.index - 1] if head.index else None
        wanted = ("connected", "output") if head.layer_type == "detection" else \
            ("convolutional", "filters")
        if prev is None or prev.layer_type != wanted[0]:
            raise PydarknetError(f"{where}: takes the output of layer {head.index - 1} "
                                 f"({prev.type if prev else 'none'}), not of a [{wanted[0]}] "
                                 f"whose {wanted[1]}= could be set")
        size = _head_input_size(head, classes)
        cfg.set(cfg.layer(prev.index), wanted[1], size)
        notes.append(f"layer {head.index} [{section.name}]: classes={classes}; layer "
                     f"{prev.index} [{cfg.layer(prev.index).name}]: {wanted[1]}={size}")
        for key in PER_CLASS:
            opt = section.options.get(key)
            if opt is not None and len(opt.value.split(",")) != classes:
                cfg.remove(section, key)
                notes.append(f"layer {head.index}: {key} left out (it listed "
                             f"{len(opt.value.split(','))} classes)")
        if anchors is not None:
            if head.layer_type not in ("yolo", "gaussian_yolo"):
                raise PydarknetError(f"{where}: its anchors are in grid cells, not the pixels "
                                     f"calc_anchors prints (or it has none); set them by hand")
            if len(anchors) != 2 * head.total:
                raise PydarknetError(f"{len(anchors)} anchor numbers given; layer "
                                     f"{head.index} has num={head.total}: give {2 * head.total}")
            cfg.set(section, "anchors", ", ".join(f"{a:g}" for a in anchors))
    for layer in net.layers:
        if layer.layer_type == "contrastive":
            cfg.set(cfg.layer(layer.index), "classes", classes)
    return notes


def _net_edits(cfg, net, max_batches, width, height, batch, subdivisions, detector):
    section, opts, notes = cfg.sections[0], net.net, []
    if max_batches:
        cfg.set(section, "max_batches", max_batches)
        line = f"[net]: max_batches={max_batches}"
        if opts.policy == "steps":
            steps = (int(max_batches * 0.8), int(max_batches * 0.9))
            cfg.set(section, "steps", f"{steps[0]},{steps[1]}")
            scales = section.options.get("scales")
            if scales is None or len(scales.value.split(",")) != 2:
                cfg.set(section, "scales", ".1,.1")
            line += f", steps={steps[0]},{steps[1]}"
        else:
            line += f" (policy={opts.policy}: no steps to set)"
        notes.append(line)
    for key, value in (("width", width), ("height", height)):
        if value is not None:
            if value < 1 or detector and (value < 32 or value % 32):
                raise PydarknetError(f"{key}={value}: a detector's input is a multiple of 32"
                                     if detector else f"{key}={value}: must be at least 1")
            cfg.set(section, key, value)
            notes.append(f"[net]: {key}={value}")
    for key, value in (("batch", batch), ("subdivisions", subdivisions)):
        if value is not None:
            if value < 1:
                raise PydarknetError(f"{key}={value}: must be at least 1")
            cfg.set(section, key, value)
            notes.append(f"[net]: {key}={value}")
    return notes
