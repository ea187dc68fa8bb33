"""Options Darknet reads that change nothing in pydarknet: section -> option -> why.

Every option a layer acts on is stored on the layer. The options below are the only ones read
just to be ignored; a cfg that sets one gets one ``NoEffectWarning`` per section and option
(naming the first place it is set and how many sections set it), never one per layer.
Options that would change results but are not implemented are refused by the layers instead
(at build, at the forward pass, or by ``Network.check_trainable`` when training starts).
"""

import warnings

from .cfg import CfgWarning

_STREAMS = "CUDA stream scheduling in Darknet's GPU build; pydarknet runs every layer in order"
_TRACKING = "object tracking in Darknet's video demo (not part of pydarknet)"
_RATE = {"learning_rate": "AB's update of this layer uses the [net] learning rate as it is "
                          "(its [convolutional], [connected], [batchnorm], [shortcut] and "
                          "[implicit] layers scale it by their learning_rate=)"}

NO_EFFECT = {
    "net": {
        "max_chart_loss": "the y-axis of Darknet's loss chart; pydarknet's chart scales itself",
        "attention": "AB shows its adversarial images' attention maps in a window",
        "workspace_size_limit_MB": "the cuDNN workspace limit of Darknet's GPU build",
        "show_receptive_field": "a printout of Darknet's",
        "use_cuda_graph": "CUDA graphs in Darknet's GPU build",
        "cudnn_half": "Darknet's half-precision Tensor Core path; pydarknet computes in float32",
        "optimized_memory": "Darknet's GPU memory-saving modes",
        "try_fix_nan": "pydarknet stops training with an error at the first NaN loss instead "
                       "of repairing weights",
    },
    "convolutional": {
        "stride": "stride_x and stride_y are both set, and they take its place",
        "stream": _STREAMS,
        "wait_stream": _STREAMS,
        "dot": "Darknet's dot-product error between filters is commented out of its code",
        "angle": "used only by deformable (sway/rotate/stretch) convolution, which pydarknet "
                 "refuses",
    },
    "route": {
        "stream": _STREAMS,
        "wait_stream": _STREAMS,
    },
    "cost": {
        "ratio": "AB's GPU build sorts the deltas for a threshold, then sets the threshold to 0 "
                 "(nothing is suppressed); its CPU build ignores the option",
    },
    "local": _RATE,
    "rnn": _RATE,
    "lstm": _RATE,
    "gru": _RATE,
    "crnn": _RATE,
    "conv_lstm": _RATE,
    "yolo": {
        "track_history_size": _TRACKING,
        "dets_for_track": _TRACKING,
        "dets_for_show": _TRACKING,
        "sim_thresh": _TRACKING,
        "track_ciou_norm": _TRACKING,
    },
}


class NoEffectWarning(CfgWarning):
    """An option Darknet reads that has no effect in pydarknet (see ``NO_EFFECT``)."""


class NoEffectOptions:
    """Collects the no-effect options of a network's sections, then warns once for each."""

    def __init__(self):
        self._found = {}   # (section name, option) -> [first section, option line, count]

    def take(self, section, section_name):
        """Mark ``section``'s no-effect options used and remember them (``section_name`` is the
        canonical name, aliases resolved)."""
        for key in NO_EFFECT.get(section_name, {}):
            opt = section.options.get(key)
            if opt is None or opt.used:   # the layer acted on it (e.g. stride without stride_x)
                continue
            opt.used = True
            entry = self._found.setdefault((section_name, key), [section, opt.line, 0])
            entry[2] += 1

    def warn(self):
        for (name, key), (section, line, count) in self._found.items():
            more = f" (and in {count - 1} more [{name}] sections)" if count > 1 else ""
            warnings.warn(f"{section.path}:{line}: [{section.name}] option '{key}' has no effect "
                          f"in pydarknet{more}: {NO_EFFECT[name][key]}", NoEffectWarning,
                          stacklevel=3)
        self._found = {}
