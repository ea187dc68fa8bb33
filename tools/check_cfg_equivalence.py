#!/usr/bin/env python3
"""Check that two Darknet .cfg files describe the same network, the way Darknet reads them.

    python tools/check_cfg_equivalence.py OURS THEIRS [--strict]

Both files are read as AlexeyAB Darknet's ``read_cfg``/``parse_network_cfg`` (src/parser.c,
src/option_list.c) reads them:

* every character ' ', '\\t', '\\r', '\\n' is removed from a line (``strip``), so ``a = 1`` is ``a=1``;
* empty lines and lines starting with '#' or ';' are skipped; a line starting with '[' opens a section;
* other lines are ``key=value``; for a repeated key Darknet uses the FIRST one (``option_find``);
* section aliases: [conv]=[convolutional], [net]=[network], [max]=[maxpool], [avg]=[avgpool],
  [soft]=[softmax], [conn]=[connected], [local_avg]=[local_avgpool], [lrn]=[normalization],
  [silence]=[empty] (note that [reorg] and [reorg3d] are different layers).

Values are converted as Darknet converts them: ``atoi`` for int options (``2.7`` -> 2), ``atof``
rounded to float32 for float options (``.1`` == ``0.1`` == ``1e-1``), element-wise for lists
(steps, scales, mask, anchors, layers, from). Options that only one file sets get the default
``parser.c`` would use (e.g. conv batch_normalize=0, pad=0, groups=1, dilation=1, stride=1,
activation=logistic; maxpool size=stride, padding=size-1; yolo iou_normalizer=0.75, ...).
Where Darknet accepts equivalent spellings the effective values are compared: conv ``pad``/``padding``
become the padding in pixels, ``stride``/``stride_x``/``stride_y`` the two strides, dilation is 1
for 1x1 kernels, route ``layers`` and shortcut ``from`` become absolute layer indices, a [yolo]
without ``mask`` uses 0..num-1, only the first 2*num anchors are read.

Every difference (section count, section type, option value) is printed with the line numbers of
both files; exit status 0 when the networks are equivalent, 1 otherwise, 2 on usage errors.
Options Darknet does not read for a section (it prints "Unused field") and repeated keys are
listed as notes; with --strict, such notes in OURS also make the check fail.

Plain Python 3, no imports from the project.
"""

import argparse
import difflib
import math
import re
import struct
import sys

ALIASES = {
    "conv": "convolutional", "network": "net", "max": "maxpool", "avg": "avgpool",
    "soft": "softmax", "conn": "connected", "local_avg": "local_avgpool",
    "lrn": "normalization", "silence": "empty",
}

# ----------------------------------------------------------------------------------------------
# value conversion, as C does it
# ----------------------------------------------------------------------------------------------

_INT_RE = re.compile(r"^[ \t\n\v\f\r]*([+-]?\d+)")
_FLOAT_RE = re.compile(r"^[ \t\n\v\f\r]*([+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan))",
                       re.IGNORECASE)


def c_atoi(s):
    m = _INT_RE.match(s or "")
    if not m:
        return 0
    v = int(m.group(1))
    # atoi overflow is undefined; emulate 32-bit wrap as glibc's strtol->int does in practice
    v = (v + 2 ** 31) % 2 ** 32 - 2 ** 31
    return v


def f32(x):
    try:
        return struct.unpack("f", struct.pack("f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def c_atof(s):
    m = _FLOAT_RE.match(s or "")
    if not m:
        return 0.0
    return float(m.group(1))


def c_atof32(s):
    return f32(c_atof(s))


def split_list(s, stop_at_hash=False):
    """Darknet's comma walk: n = 1 + number of commas (before a '#', for some lists)."""
    if s is None:
        return None
    if stop_at_hash and "#" in s:
        n = s[:s.index("#")].count(",") + 1
    else:
        n = s.count(",") + 1
    parts = s.split(",")
    return parts[:n]


def int_list(s, stop_at_hash=False):
    parts = split_list(s, stop_at_hash)
    return None if parts is None else tuple(c_atoi(p) for p in parts)


def float_list(s, stop_at_hash=False):
    parts = split_list(s, stop_at_hash)
    return None if parts is None else tuple(c_atof32(p) for p in parts)


def f32_repr(x):
    """Shortest decimal that reads back as the same float32 (0.7, not 0.699999988)."""
    if math.isinf(x) or math.isnan(x):
        return repr(x)
    for digits in range(1, 18):
        r = "%.*g" % (digits, x)
        if f32(float(r)) == x:
            break
    if "e" not in r and "." in r:
        r = r.rstrip("0").rstrip(".")
    return r


def fmt(v):
    if isinstance(v, float):
        return f32_repr(v)
    if isinstance(v, tuple):
        return ",".join(fmt(x) for x in v)
    return str(v)


# ----------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------

class Section:
    def __init__(self, raw_type, line):
        self.raw_type = raw_type
        name = raw_type[1:-1] if raw_type.endswith("]") else raw_type[1:]
        self.type = ALIASES.get(name, name)
        self.line = line
        self.opts = {}           # key -> (raw value, line) ; first occurrence wins
        self.dups = []           # (key, line)
        self.index = None        # Darknet layer index (None for [net])

    def raw(self, key):
        v = self.opts.get(key)
        if v is None:
            return None
        return v[0]

    def line_of(self, key):
        v = self.opts.get(key)
        return v[1] if v else self.line


def read_cfg(path):
    sections = []
    notes = []
    cur = None
    with open(path, "r", encoding="utf-8", errors="replace") as fh:
        for nu, line in enumerate(fh, 1):
            s = re.sub(r"[ \t\r\n]", "", line)
            if not s or s[0] in "#;":
                continue
            if s[0] == "[":
                cur = Section(s, nu)
                sections.append(cur)
                continue
            if cur is None:
                notes.append((nu, "option before the first section: %s" % s))
                continue
            if "=" not in s:
                notes.append((nu, "line without '=' (Darknet stores it with no value): %s" % s))
                continue
            key, val = s.split("=", 1)
            if val == "":
                notes.append((nu, "'%s=' has no value: Darknet reports a cfg error and skips it" % key))
                continue
            if key in cur.opts:
                cur.dups.append((key, nu))
                continue
            cur.opts[key] = (val, nu)
    for i, sec in enumerate(sections):
        sec.index = i - 1 if i > 0 else None
    return sections, notes


# ----------------------------------------------------------------------------------------------
# schema: option -> (kind, default) per section type, as in parser.c
# kinds: i int (atoi), f float (atof -> float32), s string, il/fl int/float list (_hash: Darknet stops
# counting elements at a '#'), L layer reference list, L1 single layer reference (made absolute)
# a default may be a function of the section's resolved values
# ----------------------------------------------------------------------------------------------

COMMON = {   # read for every layer at the end of parse_network_cfg_custom
    "clip": ("f", 0.0), "onlyforward": ("i", 0), "dont_update": ("i", 0), "burnin_update": ("i", 0),
    "stopbackward": ("i", 0), "train_only_bn": ("i", 0), "dontload": ("i", 0),
    "dontloadscales": ("i", 0), "learning_rate": ("f", 1.0),
}

NET = {
    "max_batches": ("i", 0), "batch": ("i", 1), "learning_rate": ("f", 0.001),
    "learning_rate_min": ("f", 0.00001), "sgdr_cycle": ("i", lambda v: v["max_batches"]),
    "sgdr_mult": ("i", 2), "momentum": ("f", 0.9), "decay": ("f", 0.0001), "subdivisions": ("i", 1),
    "time_steps": ("i", 1), "track": ("i", 0), "augment_speed": ("i", 2),
    "sequential_subdivisions": ("i", lambda v: v["subdivisions"]), "try_fix_nan": ("i", 0),
    "weights_reject_freq": ("i", 0), "equidistant_point": ("i", 0),
    "badlabels_rejection_percentage": ("f", 0.0), "num_sigmas_reject_badlabels": ("f", 0.0),
    "ema_alpha": ("f", 0.0), "use_cuda_graph": ("i", 0), "loss_scale": ("f", 1.0),
    "dynamic_minibatch": ("i", 0), "optimized_memory": ("i", 0), "workspace_size_limit_MB": ("f", 1024.0),
    "adam": ("i", 0), "B1": ("f", 0.9), "B2": ("f", 0.999), "eps": ("f", 0.000001),
    "height": ("i", 0), "width": ("i", 0), "channels": ("i", 0),
    "inputs": ("i", lambda v: v["height"] * v["width"] * v["channels"]),
    "max_crop": ("i", lambda v: v["width"] * 2), "min_crop": ("i", lambda v: v["width"]),
    "flip": ("i", 1), "blur": ("i", 0), "gaussian_noise": ("i", 0), "mixup": ("i", 0),
    "cutmix": ("i", 0), "mosaic": ("i", 0), "letter_box": ("i", 0), "mosaic_bound": ("i", 0),
    "contrastive": ("i", 0), "contrastive_jit_flip": ("i", 0), "contrastive_color": ("i", 0),
    "unsupervised": ("i", 0), "label_smooth_eps": ("f", 0.0), "resize_step": ("f", 32.0),
    "attention": ("i", 0), "adversarial_lr": ("f", 0.0), "max_chart_loss": ("f", 20.0),
    "angle": ("f", 0.0), "aspect": ("f", 1.0), "saturation": ("f", 1.0), "exposure": ("f", 1.0),
    "hue": ("f", 0.0), "power": ("f", 4.0), "policy": ("s", "constant"), "burn_in": ("i", 0),
    "step": ("i", 1), "scale": ("f", 1.0), "gamma": ("f", 1.0),
    "steps": ("il", None), "scales": ("fl", None), "seq_scales": ("fl", None),
    "show_receptive_field": ("f", 0.0),
}

CONV = {
    "filters": ("i", 1), "groups": ("i", 1), "size": ("i", 1), "stride": ("i", 1),
    "stride_x": ("i", -1), "stride_y": ("i", -1), "dilation": ("i", 1), "antialiasing": ("i", 0),
    "pad": ("i", 0), "padding": ("i", 0), "activation": ("s", "logistic"),
    "assisted_excitation": ("f", 0.0), "share_index": ("i", -1000000000),
    "batch_normalize": ("i", 0), "cbn": ("i", 0), "binary": ("i", 0), "xnor": ("i", 0),
    "bin_output": ("i", 0), "sway": ("i", 0), "rotate": ("i", 0), "stretch": ("i", 0),
    "stretch_sway": ("i", 0), "flipped": ("i", 0), "dot": ("f", 0.0), "angle": ("f", 15.0),
    "grad_centr": ("i", 0), "reverse": ("f", 0.0), "coordconv": ("i", 0),
    "stream": ("i", -1), "wait_stream": ("i", -1),
}

YOLO = {
    "classes": ("i", 20), "num": ("i", 1), "mask": ("il_hash", None), "max": ("i", 200),
    "show_details": ("i", 1), "max_delta": ("f", f32(3.4028234663852886e38)),
    "counters_per_class": ("il_hash", None), "label_smooth_eps": ("f", 0.0), "scale_x_y": ("f", 1.0),
    "objectness_smooth": ("i", 0), "new_coords": ("i", 0), "iou_normalizer": ("f", 0.75),
    "obj_normalizer": ("f", 1.0), "cls_normalizer": ("f", 1.0), "delta_normalizer": ("f", 1.0),
    "iou_loss": ("s", "mse"), "iou_thresh_kind": ("s", "iou"), "beta_nms": ("f", 0.6),
    "nms_kind": ("s", "default"), "jitter": ("f", 0.2), "resize": ("f", 1.0), "focal_loss": ("i", 0),
    "ignore_thresh": ("f", 0.5), "truth_thresh": ("f", 1.0), "iou_thresh": ("f", 1.0),
    "random": ("f", 0.0), "track_history_size": ("i", 5), "sim_thresh": ("f", 0.8),
    "dets_for_track": ("i", 1), "dets_for_show": ("i", 1), "track_ciou_norm": ("f", 0.01),
    "embedding_layer": ("L1", 999999), "map": ("s", None), "anchors": ("fl_hash", None),
}

GAUSSIAN_YOLO = dict(YOLO)
for _k in ("show_details", "focal_loss", "track_history_size", "sim_thresh", "dets_for_track",
           "dets_for_show", "track_ciou_norm", "embedding_layer"):
    GAUSSIAN_YOLO.pop(_k)
GAUSSIAN_YOLO.update({"uc_normalizer": ("f", 1.0), "yolo_point": ("s", "center"), "anchors": ("fl", None)})

REGION = {
    "coords": ("i", 4), "classes": ("i", 20), "num": ("i", 1), "max": ("i", 200), "log": ("i", 0),
    "sqrt": ("i", 0), "softmax": ("i", 0), "focal_loss": ("i", 0), "jitter": ("f", 0.2),
    "resize": ("f", 1.0), "rescore": ("i", 0), "thresh": ("f", 0.5), "classfix": ("i", 0),
    "absolute": ("i", 0), "random": ("f", 0.0), "coord_scale": ("f", 1.0), "object_scale": ("f", 1.0),
    "noobject_scale": ("f", 1.0), "mask_scale": ("f", 1.0), "class_scale": ("f", 1.0),
    "bias_match": ("i", 0), "tree": ("s", None), "map": ("s", None), "anchors": ("fl", None),
}

DETECTION = {
    "coords": ("i", 1), "classes": ("i", 1), "rescore": ("i", 0), "num": ("i", 1), "side": ("i", 7),
    "softmax": ("i", 0), "sqrt": ("i", 0), "max": ("i", 200), "coord_scale": ("f", 1.0),
    "forced": ("i", 0), "object_scale": ("f", 1.0), "noobject_scale": ("f", 1.0),
    "class_scale": ("f", 1.0), "jitter": ("f", 0.2), "resize": ("f", 1.0), "random": ("f", 0.0),
    "reorg": ("i", 0),
}

MAXPOOL = {
    "stride": ("i", 1), "stride_x": ("i", lambda v: v["stride"]), "stride_y": ("i", lambda v: v["stride"]),
    "size": ("i", lambda v: v["stride"]), "padding": ("i", lambda v: v["size"] - 1),
    "maxpool_depth": ("i", 0), "out_channels": ("i", 1), "antialiasing": ("i", 0),
    "maxpool_zero_nonmax": ("i", 0),
}
LOCAL_AVGPOOL = {k: MAXPOOL[k] for k in ("stride", "stride_x", "stride_y", "size", "padding")}

SCHEMAS = {
    "net": NET,
    "convolutional": CONV,
    "local": {"filters": ("i", 1), "size": ("i", 1), "stride": ("i", 1), "pad": ("i", 0),
              "activation": ("s", "logistic")},
    "activation": {"activation": ("s", "linear")},
    "rnn": {"output": ("i", 1), "hidden": ("i", 1), "activation": ("s", "logistic"),
            "batch_normalize": ("i", 0), "logistic": ("i", 0), "shortcut": ("i", 0)},
    "gru": {"output": ("i", 1), "batch_normalize": ("i", 0)},
    "lstm": {"output": ("i", 1), "batch_normalize": ("i", 0)},
    "crnn": {"size": ("i", 3), "stride": ("i", 1), "dilation": ("i", 1), "pad": ("i", 0),
             "padding": ("i", 0), "output": ("i", 1), "hidden": ("i", 1), "groups": ("i", 1),
             "activation": ("s", "logistic"), "batch_normalize": ("i", 0), "xnor": ("i", 0),
             "shortcut": ("i", 0)},
    "conv_lstm": {"size": ("i", 3), "stride": ("i", 1), "dilation": ("i", 1), "pad": ("i", 0),
                  "padding": ("i", 0), "output": ("i", 1), "groups": ("i", 1),
                  "activation": ("s", "linear"), "batch_normalize": ("i", 0), "xnor": ("i", 0),
                  "peephole": ("i", 0), "bottleneck": ("i", 0), "state_constrain": ("i", None),
                  "shortcut": ("i", 0), "lstm_activation": ("s", "tanh"), "time_normalizer": ("f", 1.0)},
    "history": {"history_size": ("i", 4)},
    "connected": {"output": ("i", 1), "activation": ("s", "logistic"), "batch_normalize": ("i", 0)},
    "softmax": {"groups": ("i", 1), "temperature": ("f", 1.0), "tree": ("s", None),
                "spatial": ("f", 0.0), "noloss": ("i", 0)},
    "contrastive": {"classes": ("i", 1000), "yolo_layer": ("L1", 0), "temperature": ("f", 1.0),
                    "cls_normalizer": ("f", 1.0), "max_delta": ("f", f32(3.4028234663852886e38)),
                    "contrastive_neg_max": ("i", 3)},
    "yolo": YOLO,
    "Gaussian_yolo": GAUSSIAN_YOLO,
    "region": REGION,
    "detection": DETECTION,
    "cost": {"type": ("s", "sse"), "scale": ("f", 1.0), "ratio": ("f", 0.0)},
    "crop": {"crop_height": ("i", 1), "crop_width": ("i", 1), "flip": ("i", 0), "angle": ("f", 0.0),
             "saturation": ("f", 1.0), "exposure": ("f", 1.0), "noadjust": ("i", 0), "shift": ("f", 0.0)},
    "reorg3d": {"stride": ("i", 1), "reverse": ("i", 0)},
    "reorg": {"stride": ("i", 1), "reverse": ("i", 0)},
    "local_avgpool": LOCAL_AVGPOOL,
    "maxpool": MAXPOOL,
    "avgpool": {},
    "dropout": {"probability": ("f", 0.2), "dropblock": ("i", 0), "dropblock_size_rel": ("f", 0.0),
                "dropblock_size_abs": ("f", 0.0)},
    "normalization": {"alpha": ("f", 0.0001), "beta": ("f", 0.75), "kappa": ("f", 1.0), "size": ("i", 5)},
    "batchnorm": {},
    "shortcut": {"activation": ("s", "linear"), "weights_type": ("s", "none"),
                 "weights_normalization": ("s", "none"), "from": ("L", None)},
    "scale_channels": {"from": ("L1", None), "scale_wh": ("i", 0), "activation": ("s", "linear")},
    "sam": {"from": ("L1", None), "activation": ("s", "linear")},
    "implicit": {"mean": ("f", 0.0), "std": ("f", 0.2), "filters": ("i", 128), "atoms": ("i", 1)},
    "route": {"layers": ("L", None), "groups": ("i", 1), "group_id": ("i", 0),
              "stream": ("i", -1), "wait_stream": ("i", -1)},
    "upsample": {"stride": ("i", 2), "scale": ("f", 1.0)},
    "empty": {},
}


def schema_for(sec):
    sch = SCHEMAS.get(sec.type)
    if sch is None:
        return None
    if sec.type == "net":
        return sch
    out = dict(COMMON)
    out.update(sch)
    return out


def convert(kind, raw, sec):
    if kind == "i":
        return c_atoi(raw)
    if kind == "f":
        return c_atof32(raw)
    if kind == "s":
        return raw
    if kind == "il":
        return int_list(raw)
    if kind == "il_hash":
        return int_list(raw, stop_at_hash=True)
    if kind == "fl":
        return float_list(raw)
    if kind == "fl_hash":
        return float_list(raw, stop_at_hash=True)
    if kind in ("L", "L1"):        # layer references: negative = relative to this layer
        idx = sec.index if sec.index is not None else 0
        vals = tuple(v + idx if v < 0 else v for v in int_list(raw))
        return vals[0] if kind == "L1" else vals
    raise ValueError(kind)


def generic(raw):
    """Value of an option the schema does not know: a number list if it parses as one."""
    parts = raw.split(",")
    try:
        return tuple(f32(float(p)) for p in parts) if len(parts) > 1 else f32(float(raw))
    except ValueError:
        return raw


def resolve(sec):
    """Effective values of one section: {name: (value, line, note)}, plus notes on ignored options."""
    sch = schema_for(sec)
    notes = []
    for key, line in sec.dups:
        notes.append((line, "repeated key '%s' (Darknet uses the first one, line %d)" % (key, sec.line_of(key))))
    if sch is None:
        notes.append((sec.line, "section type %s is not a Darknet layer type" % sec.raw_type))
        return {k: (generic(v), ln, "") for k, v in ((k, v[0]) for k, v in sec.opts.items())
                for ln in [sec.line_of(k)]}, notes

    vals = {}      # name -> value (with defaults)
    lines = {}     # name -> line of the option in the file (section line when defaulted)
    given = {}     # name -> bool

    # settle defaults that depend on other options in dependency order
    pending = list(sch.keys())
    for _ in range(4):
        rest = []
        for key in pending:
            kind, default = sch[key]
            raw = sec.raw(key)
            if raw is not None:
                vals[key] = convert(kind, raw, sec)
                given[key] = True
                lines[key] = sec.line_of(key)
            else:
                if callable(default):
                    try:
                        vals[key] = default(vals)
                    except KeyError:
                        rest.append(key)
                        continue
                else:
                    vals[key] = default
                given[key] = False
                lines[key] = sec.line
        pending = rest
        if not pending:
            break

    for key in sec.opts:
        if key not in sch:
            why = "" if sec.type == "net" else " (it prints \"Unused field\")"
            notes.append((sec.line_of(key), "option '%s' is not read by Darknet%s" % (key, why)))

    t = sec.type
    ignored = set()
    if t == "net":
        pol = vals["policy"]
        if pol not in ("step", "sig"):
            ignored.add("step")
        if pol != "step":
            ignored.add("scale")
        if pol not in ("exp", "sig"):
            ignored.add("gamma")
        if pol not in ("steps", "sgdr"):
            ignored |= {"steps", "scales", "seq_scales"}
        else:
            n = len(vals["steps"]) if vals["steps"] is not None else 0
            if vals["steps"] is not None:
                # Darknet reads exactly n = len(steps) scales / seq_scales (1.0 when absent)
                for k in ("scales", "seq_scales"):
                    v = vals[k]
                    if v is None:
                        v = ()
                    vals[k] = tuple(v[:n]) + (1.0,) * max(0, n - len(v))
        if pol != "sgdr":
            ignored |= {"sgdr_cycle", "sgdr_mult", "learning_rate_min"}
        if not vals["adam"]:
            ignored |= {"B1", "B2", "eps"}
        # data loading sees only net->mixup: cutmix and mosaic override mixup
        mixup, cutmix, mosaic = vals["mixup"], vals["cutmix"], vals["mosaic"]
        eff = 4 if (mosaic and cutmix) else 2 if cutmix else 3 if mosaic else mixup
        vals["mixup(from mosaic,cutmix,mixup)"] = eff
        src = [k for k in ("mosaic", "cutmix", "mixup") if given[k]]
        lines["mixup(from mosaic,cutmix,mixup)"] = lines[src[0]] if src else sec.line
        given["mixup(from mosaic,cutmix,mixup)"] = bool(src)
        ignored |= {"mixup", "cutmix", "mosaic"}
        if vals["sequential_subdivisions"] > vals["subdivisions"]:
            vals["sequential_subdivisions"] = vals["subdivisions"]
    elif t == "convolutional":
        sx, sy = vals["stride_x"], vals["stride_y"]
        if sx < 1 or sy < 1:
            if sx < 1:
                sx = vals["stride"]
            if sy < 1:
                sy = vals["stride"]
        vals["stride_x(effective)"], vals["stride_y(effective)"] = sx, sy
        lines["stride_x(effective)"] = lines["stride_x"] if given["stride_x"] else lines["stride"]
        lines["stride_y(effective)"] = lines["stride_y"] if given["stride_y"] else lines["stride"]
        vals["padding(effective)"] = vals["size"] // 2 if vals["pad"] else vals["padding"]
        lines["padding(effective)"] = lines["pad"] if given["pad"] else lines["padding"]
        vals["dilation(effective)"] = 1 if vals["size"] == 1 else vals["dilation"]
        lines["dilation(effective)"] = lines["dilation"]
        vals["batch_normalize(effective)"] = 2 if vals["cbn"] else vals["batch_normalize"]
        lines["batch_normalize(effective)"] = lines["cbn"] if vals["cbn"] else lines["batch_normalize"]
        ignored |= {"stride", "stride_x", "stride_y", "pad", "padding", "dilation", "batch_normalize", "cbn"}
        if not (vals["sway"] or vals["rotate"] or vals["stretch"] or vals["stretch_sway"]):
            ignored.add("angle")
        if vals["share_index"] != -1000000000 and vals["share_index"] < 0:
            vals["share_index"] += sec.index
    elif t in ("yolo", "Gaussian_yolo"):
        total = vals["num"]
        if vals["mask"] is None:
            vals["mask"] = tuple(range(total))
        if vals["anchors"] is not None:
            vals["anchors"] = vals["anchors"][:2 * total] if t == "yolo" else vals["anchors"]
        if vals["anchors"] is None:
            vals["anchors"] = ()
        if vals["iou_loss"] not in ("mse", "giou", "diou", "ciou"):
            vals["iou_loss"] = "iou"
        if vals["iou_thresh_kind"] not in ("iou", "giou", "diou", "ciou"):
            vals["iou_thresh_kind"] = "iou"
        kinds = ("greedynms", "diounms") + (("cornersnms",) if t == "Gaussian_yolo" else ())
        if vals["nms_kind"] not in kinds:
            vals["nms_kind"] = "default"
    elif t == "region":
        if vals["anchors"] is not None:
            vals["anchors"] = vals["anchors"][:2 * vals["num"]]
    elif t == "shortcut":
        if vals["weights_type"] == "per_layer":
            vals["weights_type"] = "per_feature"
        if vals["weights_normalization"] == "avg_relu":
            vals["weights_normalization"] = "relu"

    quiet = ("stride", "stride_x", "stride_y", "pad", "padding", "dilation", "batch_normalize", "cbn",
             "mixup", "cutmix", "mosaic")     # folded into an (effective) value above
    out = {}
    for key, v in vals.items():
        if key in ignored:
            if given.get(key) and key not in quiet:
                notes.append((lines[key], "option '%s' has no effect here" % key))
            continue
        out[key] = (v, lines.get(key, sec.line), "" if given.get(key, True) else " (default)")
    return out, notes


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


def signature(sec):
    """A short description of a section for aligning two layer lists."""
    keys = ("filters", "size", "stride", "layers", "from", "mask")
    return (sec.type,) + tuple(sec.raw(k) for k in keys)


def alignment_hints(ours, theirs):
    """Where layers were added or dropped (difflib alignment of the section lists)."""
    sm = difflib.SequenceMatcher(None, [signature(s) for s in ours], [signature(s) for s in theirs],
                                 autojunk=False)
    hints = []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            continue
        desc_o = ", ".join("%s(line %d)" % (s.raw_type, s.line) for s in ours[i1:i2][:4])
        desc_t = ", ".join("%s(line %d)" % (s.raw_type, s.line) for s in theirs[j1:j2][:4])
        if tag == "delete":
            hints.append("alignment: OURS has %d extra section(s) at layer %d: %s" % (i2 - i1, i1 - 1, desc_o))
        elif tag == "insert":
            hints.append("alignment: OURS lacks %d section(s) of THEIRS at layer %d: %s"
                         % (j2 - j1, j1 - 1, desc_t))
        else:
            hints.append("alignment: OURS layers %d-%d [%s] differ from THEIRS layers %d-%d [%s]"
                         % (i1 - 1, i2 - 2, desc_o, j1 - 1, j2 - 2, desc_t))
    return hints[:20]


def compare(ours_path, theirs_path):
    ours, notes_o = read_cfg(ours_path)
    theirs, notes_t = read_cfg(theirs_path)
    diffs = []
    notes = [("OURS", ln, msg) for ln, msg in notes_o] + [("THEIRS", ln, msg) for ln, msg in notes_t]

    if len(ours) != len(theirs):
        diffs.append("section count: OURS has %d sections (%d layers), THEIRS has %d (%d layers)"
                     % (len(ours), max(0, len(ours) - 1), len(theirs), max(0, len(theirs) - 1)))
        diffs.extend(alignment_hints(ours, theirs))
    for i, (a, b) in enumerate(zip(ours, theirs)):
        where = "[net]" if i == 0 else "layer %d [%s]" % (i - 1, a.type)
        if a.type != b.type:
            where = "layer %d" % (i - 1)
            diffs.append("%s: section type OURS %s (line %d) != THEIRS %s (line %d)"
                         % (where, a.raw_type, a.line, b.raw_type, b.line))
            # the options of different layer types are not comparable; go on with the next section
            continue
        va, na = resolve(a)
        vb, nb = resolve(b)
        notes += [("OURS", ln, "%s: %s" % (where, m)) for ln, m in na]
        notes += [("THEIRS", ln, "%s: %s" % (where, m)) for ln, m in nb]
        for key in sorted(set(va) | set(vb)):
            if key in va and key in vb:
                (x, lx, dx), (y, ly, dy) = va[key], vb[key]
                if not same(x, y) and not (dx and dy):   # two defaults differ only through another option
                    diffs.append("%s %s: OURS %s%s (line %d) != THEIRS %s%s (line %d)"
                                 % (where, key, fmt(x) if x is not None else "<unset>", dx, lx,
                                    fmt(y) if y is not None else "<unset>", dy, ly))
            else:
                side, (x, lx, _) = ("OURS", va[key]) if key in va else ("THEIRS", vb[key])
                diffs.append("%s option '%s' only in %s (=%s, line %d) and Darknet has no default for it"
                             % (where, key, side, fmt(x), lx))
    extra = ours[len(theirs):] if len(ours) > len(theirs) else theirs[len(ours):]
    side = "OURS" if len(ours) > len(theirs) else "THEIRS"
    for s in extra:
        diffs.append("extra section only in %s: %s at line %d (layer %s)" % (side, s.raw_type, s.line, s.index))
    return diffs, notes


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ours")
    ap.add_argument("theirs")
    ap.add_argument("--strict", action="store_true",
                    help="also fail on notes about OURS (unused options, repeated keys, no-effect options)")
    ap.add_argument("--max-diffs", type=int, default=100, help="print at most this many differences")
    ap.add_argument("-q", "--quiet", action="store_true", help="print only the verdict and the differences")
    args = ap.parse_args(argv)
    try:
        diffs, notes = compare(args.ours, args.theirs)
    except OSError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    max_diffs = args.max_diffs
    for d in diffs[:max_diffs]:
        print("DIFF  " + d)
    if len(diffs) > max_diffs:
        print("DIFF  ... %d more (--max-diffs)" % (len(diffs) - max_diffs))
    if not args.quiet:
        for side, ln, msg in sorted(notes, key=lambda n: (n[0] != "OURS", n[1])):
            print("note  %s line %d: %s" % (side, ln, msg))
    n_ours_notes = sum(1 for n in notes if n[0] == "OURS")
    ok = not diffs and not (args.strict and n_ours_notes)
    n_layers = len(read_cfg(args.ours)[0]) - 1
    if ok:
        print("EQUIVALENT: %s == %s (%d layers)" % (args.ours, args.theirs, n_layers))
    else:
        print("DIFFERENT: %d difference(s)%s" % (len(diffs), ", %d note(s) on OURS (--strict)" % n_ours_notes
                                                 if args.strict and n_ours_notes else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:          # output piped into head & co.
        sys.stderr.close()
        sys.exit(1)
