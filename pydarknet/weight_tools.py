"""Darknet's weight-file tools (``darknet average|denormalize|normalize|reset|rgbgr|rescale``):
a network's parameters changed in place, for :mod:`pydarknet.cli.weights` to save.

Where AB's tool is broken or partial, these do what the tool is for, and say so:
- average: every parameter of every layer (AB: [convolutional] and [connected] only, the rest
  from the first file);
- denormalize / reset: batch norm folded into the weights of every layer that has one,
  recurrent layers' gates included, with the inference epsilon (1e-5) so the network computes
  the same (AB's [convolutional] fold indexes past its filter and corrupts the weights);
- normalize: the added batch norm changes nothing (variance 1 - eps; AB's variance 0 scales
  every output by 316);
- rescale: with batch norm in the first layer, its rolling mean takes the shift (AB's bias).
"""

import os

import numpy as np

from .errors import PydarknetError

__all__ = ["BN_EPS", "batchnorm_affine", "fold_batchnorm", "batchnorm_groups",
           "batchnorm_layers", "average_weights", "denormalize", "without_batchnorm",
           "with_batchnorm", "swap_first_rgb", "rescale_first_input", "cfg_with_batchnorm"]

BN_EPS = 1e-5      # the backends' batchnorm_inference eps (inside the square root)


def batchnorm_affine(scales, mean, variance, biases):
    """Inference batch norm (then the bias) as y = x * s + shift: (s, shift) in float64, s =
    scales / sqrt(variance + eps), shift = biases - mean * s."""
    s = np.asarray(scales, np.float64) / np.sqrt(np.asarray(variance, np.float64) + BN_EPS)
    return s, np.asarray(biases, np.float64) - np.asarray(mean, np.float64) * s


def fold_batchnorm(weights, biases, scales, mean, variance):
    """Batch norm with rolling statistics folded into weights [n, ...] and biases [n] (in
    float64, rounded once): (weights * s, shift) of :func:`batchnorm_affine`."""
    s, shift = batchnorm_affine(scales, mean, variance, biases)
    w = np.asarray(weights, np.float64)
    w = w * s.reshape((len(s),) + (1,) * (w.ndim - 1))
    return w.astype(np.float32), shift.astype(np.float32)


def batchnorm_groups(layer):
    """The parameter-name prefixes of a layer's weight-and-bias groups that may carry batch
    norm ("" for a [convolutional] or [connected]; "wf_", "uz_", "input_" ... for the gates of
    recurrent layers)."""
    names = [k for k, _ in layer.param_shapes()]
    return [k[: -len("weights")] for k in names
            if k.endswith("weights") and k[: -len("weights")] + "biases" in names]


def batchnorm_layers(network, with_bn):
    """The layers that can take batch norm whose groups all have it (``with_bn``) or all lack
    it; a layer whose weights a later one shares (share_index) is refused."""
    out = []
    for layer in network.layers:
        groups = batchnorm_groups(layer)
        if not hasattr(layer, "batch_normalize") or not groups \
                or getattr(layer, "share_layer", None) is not None:
            continue
        if any(getattr(l, "share_layer", None) is layer for l in network.layers):
            raise PydarknetError(f"layer {layer.index} [{layer.section.name}] shares its "
                                 "weights with a later layer (share_index): its batch norm "
                                 "cannot change alone")
        if all((g + "scales" in layer.params) == with_bn for g in groups):
            out.append(layer)
    return out


def average_weights(network, paths):
    """Every parameter the mean of ``network``'s and the files' (``network`` holds the first
    file's). Accumulated in float64."""
    network.params_to_host()
    sums = {(l.index, k): v.astype(np.float64)
            for l in network.layers for k, v in l.params.items()}
    seen = network.seen
    for path in paths:
        network.load_weights(path)
        for l in network.layers:
            for k, v in l.params.items():
                sums[(l.index, k)] += v
    for l in network.layers:
        for k, v in l.params.items():
            v[...] = sums[(l.index, k)] / (len(paths) + 1)
    network.seen = seen                 # the first file's, as AB's
    return network


def denormalize(network):
    """Fold every batch norm into its weights and biases, leaving the batch norm as identity
    (scales 1, mean 0, variance 1 - eps: AB's ``reset``), so the weights still fit the cfg and
    compute the same; :func:`without_batchnorm` drops it. Returns the layers changed.
    Binary/XNOR layers keep theirs (their binarized weights would change)."""
    network.params_to_host()
    changed = []
    for layer in batchnorm_layers(network, True):
        if getattr(layer, "binary", 0) or getattr(layer, "xnor", 0):
            continue
        p = layer.params
        for g in batchnorm_groups(layer):
            w, b = fold_batchnorm(p[g + "weights"], p[g + "biases"], p[g + "scales"],
                                  p[g + "rolling_mean"], p[g + "rolling_variance"])
            p[g + "weights"][...], p[g + "biases"][...] = w, b
            _identity_batchnorm(p, g)
        changed.append(layer)
    return changed


def _identity_batchnorm(params, group):
    params[group + "scales"][...] = 1
    params[group + "rolling_mean"][...] = 0
    params[group + "rolling_variance"][...] = np.float32(1 - BN_EPS)


def without_batchnorm(network, path=None):
    """AB's ``denormalize``: (a network without batch norm that computes what ``network``
    does, its cfg text, the layers changed). ``network``'s batch norm is folded in place
    (:func:`denormalize`); ``path`` names the new cfg in its errors."""
    changed = denormalize(network)
    text = cfg_with_batchnorm(network, changed, 0)
    out = _rebuilt(text, path or network.cfg_path)
    for old, new in zip(network.layers, out.layers):
        for k in new.params:
            new.params[k][...] = old.params[k]
    out.seen = network.seen
    return out, text, changed


def with_batchnorm(network, path=None):
    """AB's ``normalize``: (a network with batch norm wherever ``network`` has none and a
    layer takes it, the added ones identity so it computes the same, its cfg text, the layers
    that gained one)."""
    network.params_to_host()
    text = cfg_with_batchnorm(network, batchnorm_layers(network, False), 1)
    out = _rebuilt(text, path or network.cfg_path)
    gained = []
    for old, new in zip(network.layers, out.layers):
        for k, v in old.params.items():
            new.params[k][...] = v
        added = [g for g in batchnorm_groups(new)
                 if g + "scales" in new.params and g + "scales" not in old.params]
        for g in added:
            _identity_batchnorm(new.params, g)
        if added:
            gained.append(new)
    out.seen = network.seen
    return out, text, gained


def _rebuilt(text, path):
    from .network import load_cfg_text
    out = load_cfg_text(text, batch=1, path=str(path), init=False)
    out.init_weights(0)
    return out


def _first_conv(network):
    for layer in network.layers:
        if layer.layer_type == "convolutional":
            if layer.c // layer.groups != 3:
                return None
            return layer
    return None


def swap_first_rgb(network):
    """AB's ``rgbgr``: the first [convolutional]'s filters take the other channel order (RGB
    <-> BGR). Returns the layer, None when the first has no 3 input channels per filter."""
    layer = _first_conv(network)
    if layer is not None:
        network.params_to_host()
        w = layer.params["weights"]
        w[...] = w[:, ::-1].copy()
    return layer


def rescale_first_input(network, scale=2.0, shift=-0.5):
    """AB's ``rescale``: the first [convolutional] takes inputs in [0, 1] where it took them in
    [-1, 1]: weights times 2, and -0.5 times each filter's new sum added to its bias, or, with
    batch norm (which comes before the bias), taken from its rolling mean (AB changes the bias
    then too, which changes the network). Exact away from the zero padding, which stands for
    another value after the change (as in AB's)."""
    layer = _first_conv(network)
    if layer is not None:
        network.params_to_host()
        p = layer.params
        p["weights"] *= np.float32(scale)
        sums = p["weights"].reshape(len(p["weights"]), -1).sum(1, dtype=np.float32)
        if "rolling_mean" in p:
            p["rolling_mean"] -= sums * np.float32(shift)
        else:
            p["biases"] += sums * np.float32(shift)
    return layer


def cfg_with_batchnorm(network, layers, value):
    """The text of ``network``'s cfg file with ``batch_normalize=value`` in the sections of
    ``layers`` (their line changed or one added under the header); comments kept."""
    from .cfg_edit import CfgText
    path = network.cfg_path
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise PydarknetError(f"cannot read the cfg {path!r} to write its new form")
    cfg = CfgText.read(path)
    for layer in layers:
        cfg.set(cfg.layer(layer.index), "batch_normalize", value)
    return cfg.text()
