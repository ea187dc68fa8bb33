"""The [net] section: input geometry, batch, optimiser, learning-rate policy, augmentation.

Defaults are Darknet's (AB's ``parse_net_options``). ``batch`` and ``subdivisions`` keep the
cfg's raw values; ``mini_batch`` is ``batch // subdivisions`` (images per forward pass).
"""

import operator
import warnings
from itertools import accumulate

from .cfg import CfgWarning

POLICIES = ("constant", "step", "steps", "exp", "poly", "random", "sigmoid", "sgdr")

# Options the net reads that only later parts (training loop, data loading) act on; read here
# so that they keep their Darknet defaults in one place. Options with no effect at all are in
# pydarknet.no_effect; those pydarknet does not train with are in _NOT_TRAINED.
_AUGMENT_FLOATS = {"angle": 0.0, "aspect": 1.0, "saturation": 1.0, "exposure": 1.0, "hue": 0.0,
                   "label_smooth_eps": 0.0, "resize_step": 32.0, "loss_scale": 1.0}
_AUGMENT_INTS = {"flip": 1, "blur": 0, "gaussian_noise": 0, "mixup": 0, "letter_box": 0,
                 "mosaic_bound": 0, "augment_speed": 2, "seen": 0, "track": 0,
                 # two views of each image (rows 2k, 2k+1), for [contrastive]; the second
                 # draws its own crop and flip only with contrastive_jit_flip, its own
                 # colours only with contrastive_color
                 "contrastive": 0, "contrastive_jit_flip": 0, "contrastive_color": 0}

# Training features of Darknet's that pydarknet does not implement: option -> (default, what it
# does). A cfg that sets one builds and runs; training it is refused (check_trainable).
_NOT_TRAINED = {
    "sequential_subdivisions": (0, "sequence subdivisions"),
    "unsupervised": (0, "unsupervised contrastive learning"),
}


class NetOptions:
    def __init__(self, section):
        s = section
        self.section = section
        self.max_batches = s.get_int("max_batches", 0)
        self.batch = s.get_int("batch", 1)
        self.subdivisions = s.get_int("subdivisions", 1)
        if self.batch < 1:
            raise s.error(f"batch must be >= 1, found {self.batch}", "batch")
        if self.subdivisions < 1:
            raise s.error(f"subdivisions must be >= 1, found {self.subdivisions}", "subdivisions")
        self.time_steps = s.get_int("time_steps", 1)
        self.mini_batch = self.batch // self.subdivisions
        self.learning_rate = s.get_float("learning_rate", 0.001)
        self.learning_rate_min = s.get_float("learning_rate_min", 0.00001)
        self.sgdr_cycle = s.get_int("sgdr_cycle", self.max_batches)
        self.sgdr_mult = s.get_int("sgdr_mult", 2)
        self.momentum = s.get_float("momentum", 0.9)
        self.decay = s.get_float("decay", 0.0001)
        self.adam = s.get_int("adam", 0)
        if self.adam:
            self.B1 = s.get_float("B1", 0.9)
            self.B2 = s.get_float("B2", 0.999)
            self.eps = s.get_float("eps", 0.000001)
        self.height = s.get_int("height", 0)
        self.width = s.get_int("width", 0)
        self.channels = s.get_int("channels", 0)
        self.inputs = s.get_int("inputs", self.height * self.width * self.channels)
        if not self.inputs and not (self.height and self.width and self.channels):
            raise s.error("no input size: set width, height and channels (or inputs)")
        for key in ("height", "width", "channels"):
            if getattr(self, key) < 0:
                raise s.error(f"{key} must be >= 0, found {getattr(self, key)}", key)
        self.max_crop = s.get_int("max_crop", self.width * 2)
        self.min_crop = s.get_int("min_crop", self.width)
        for key, default in _AUGMENT_FLOATS.items():
            setattr(self, key, s.get_float(key, default))
        for key, default in _AUGMENT_INTS.items():
            setattr(self, key, s.get_int(key, default))
        for key, (default, _) in _NOT_TRAINED.items():
            read = s.get_float if isinstance(default, float) else s.get_int
            setattr(self, key, read(key, default))
        self.ema_alpha = s.get_float("ema_alpha", 0.0)    # pydarknet.train.ema
        # the [yolo] deltas rejected late in training (pydarknet.layers.yolo_reject)
        self.equidistant_point = s.get_int("equidistant_point", 0)
        self.badlabels_rejection_percentage = s.get_float("badlabels_rejection_percentage", 0.0)
        self.num_sigmas_reject_badlabels = s.get_float("num_sigmas_reject_badlabels", 0.0)
        # images moved against the network before half the passes (pydarknet.train.adversarial)
        self.adversarial_lr = s.get_float("adversarial_lr", 0.0)
        # similar filters drawn again every so many iterations (pydarknet.train.reject_weights)
        self.weights_reject_freq = s.get_int("weights_reject_freq", 0)
        # with random=1, a mini-batch that grows as the size shrinks (pydarknet.train.loop)
        self.dynamic_minibatch = s.get_int("dynamic_minibatch", 0)
        self.power = s.get_float("power", 4.0)
        cutmix = s.get_int("cutmix", 0)
        mosaic = s.get_int("mosaic", 0)
        self.cutmix, self.mosaic = cutmix, mosaic
        # Darknet folds mixup/cutmix/mosaic into one code: 1 mixup, 2 cutmix, 3 mosaic, 4 both.
        self.mosaic_mixup = 4 if (mosaic and cutmix) else 2 if cutmix else 3 if mosaic else self.mixup
        self.policy = s.get_str("policy", "constant")
        if self.policy not in POLICIES:
            raise s.error(f"unknown learning-rate policy '{self.policy}': expected one of "
                          f"{', '.join(POLICIES)}", "policy")
        self.burn_in = s.get_int("burn_in", 0)
        self.step, self.scale, self.gamma = 1, 1.0, 1.0
        self.steps, self.scales, self.seq_scales = [], [], []
        if self.policy == "step":
            self.step = s.get_int("step", 1)
            self.scale = s.get_float("scale", 1.0)
        elif self.policy in ("steps", "sgdr"):
            if self.policy == "steps" and not (s.has("steps") and s.has("scales")):
                raise s.error("policy=steps needs both steps= and scales=", "policy")
            if s.has("steps"):
                self.steps = s.get_ints("steps")
                n = len(self.steps)
                scales = s.get_floats("scales", [])
                if s.has("scales") and len(scales) < n:
                    # (Darknet's parser reads past the end of the line there and crashes)
                    warnings.warn(f"{s.path}:{s.options['scales'].line}: [net] steps= has {n} "
                                  f"values but scales= {len(scales)}: the last "
                                  f"{n - len(scales)} step(s) keep the rate (scale 1)",
                                  CfgWarning, stacklevel=3)
                self.scales = _pad(scales, n, 1.0)
                self.seq_scales = _pad(s.get_floats("seq_scales", []), n, 1.0)
        elif self.policy == "exp":
            self.gamma = s.get_float("gamma", 1.0)
        elif self.policy == "sigmoid":
            self.gamma = s.get_float("gamma", 1.0)
            self.step = s.get_int("step", 1)

    def check_trainable(self):
        """Refuse to train with a Darknet training feature pydarknet does not implement, or
        with a learning-rate schedule that has no value (Darknet divides by zero or loops for
        ever there)."""
        s = self.section
        if self.policy == "step" and self.step < 1:
            raise s.error(f"policy=step with step={self.step}: the rate is scaled every step "
                          "iterations; set step >= 1", "step")
        if self.policy == "sgdr" and self.sgdr_cycle < 1:
            where = "sgdr_cycle" if s.has("sgdr_cycle") else "max_batches"
            raise s.error(f"policy=sgdr with a cycle of {self.sgdr_cycle} iterations (sgdr_cycle"
                          f"{'' if s.has('sgdr_cycle') else ', by default max_batches'}): set "
                          "sgdr_cycle >= 1", where)
        if self.policy == "sgdr" and self.sgdr_mult < 1:
            raise s.error(f"policy=sgdr with sgdr_mult={self.sgdr_mult}: each cycle is the "
                          "last one times sgdr_mult; set sgdr_mult >= 1", "sgdr_mult")
        for key, (default, what) in _NOT_TRAINED.items():
            if getattr(self, key) != default:
                raise self.section.error(
                    f"{key}={self.section.options[key].value} asks for {what}, which pydarknet "
                    f"does not implement: remove the option (or set {key}={default}) to train "
                    f"here, or train with Darknet", key)
        for option, what in (("track", "sequences"), ("contrastive", "image pairs")):
            if getattr(self, option) and self.mosaic_mixup:
                key = next(k for k in ("mosaic", "mixup", "cutmix") if k in self.section.options)
                raise self.section.error(
                    f"{option}=1 with {key}= ({what} blended or tiled with other images) is "
                    f"not implemented: remove {key} to train on {what}", key)
        if self.track and any(s < 1 for s in accumulate(self.seq_scales, operator.mul)):
            # AB's track=1 training scales its sequences' subdivisions (at most subdivisions)
            # by these at the steps: below 1 they take effect
            raise self.section.error(
                f"seq_scales={self.section.options['seq_scales'].value} changes the sequences' "
                f"subdivisions of track=1 training as it goes, which pydarknet does not "
                f"implement: remove seq_scales to train here, or train with Darknet",
                "seq_scales")
        if self.contrastive and self.mini_batch % 2:
            raise self.section.error(
                f"contrastive=1 loads each image twice, in rows 2k and 2k+1 of a mini-batch, "
                f"but the mini-batch (batch/subdivisions) is {self.mini_batch}: make it even "
                f"(AB's Darknet needs at least 2)", "contrastive")

    def summary(self):
        """The shapes-JSON ``net`` record."""
        d = {k: getattr(self, k) for k in (
            "batch", "subdivisions", "width", "height", "channels", "inputs", "momentum",
            "decay", "learning_rate", "burn_in", "power", "max_batches", "policy", "steps",
            "scales", "time_steps", "adam", "letter_box", "mosaic_mixup", "flip", "angle",
            "saturation", "exposure", "hue", "ema_alpha")}
        if self.policy == "step":
            d["step"], d["scale"] = self.step, self.scale
        return d


def _pad(values, n, fill):
    values = list(values[:n])
    return values + [fill] * (n - len(values))
