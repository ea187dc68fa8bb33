"""Checkpoints: Darknet .weights plus a sidecar with what exact resumption needs.

The .weights file is Darknet's own (seen = iteration * batch). The sidecar
``<weights>.state.npz`` holds the momentum buffers (Darknet keeps none, so a resumed Darknet
run loses them), the gradients of updates that dont_update or burnin_update skipped, the
weights' moving averages (``ema_alpha``), the RNG and data-loader state,
the average loss and the chart history. Both
are written to temporary files and renamed, so a run killed at any moment leaves valid files;
a sidecar whose iteration differs from its weights' is ignored, and one that cannot be read
(cut, damaged) is ignored with a warning: the run resumes from the weights alone, as Darknet's.
"""

import json
import os
import warnings
import zipfile
import zlib

import numpy as np

from ..errors import WeightsWarning
from .ema import MovingAverage, averaged_keys


def state_path(weights_path):
    return f"{weights_path}.state.npz"


def save_checkpoint(network, path, extra):
    network.save_weights(path)
    arrays = {}
    for layer in network.layers:
        for name, buf in getattr(layer, "momenta", {}).items():
            arrays[f"m{layer.index}_{name}"] = buf
    if network.ema is not None:
        for (index, name), average in network.ema.arrays.items():
            arrays[f"e{index}_{name}"] = average
    for index, grads in network.skipped_gradients.items():   # (dont_update, burnin_update)
        for name, grad in grads.items():
            arrays[f"g{index}_{name}"] = grad
    for layer in network.layers:        # recurrent layers: the state the next pass goes on from
        carried = layer.carried_state() if hasattr(layer, "carried_state") else None
        for k, value in enumerate(carried or ()):
            arrays[f"s{layer.index}_{k}"] = value
    meta = dict(extra, iteration=network.iteration, seen=network.seen,
                rng=network.rng.bit_generator.state)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    target = state_path(path)
    tmp = f"{target}.tmp{os.getpid()}.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, target)


def load_checkpoint_state(network, path):
    """Restore momenta, RNG and the recurrent layers' state from the sidecar of ``path``;
    returns its extra dict or None."""
    target = state_path(path)
    if not os.path.exists(target):
        return None
    data = _read_sidecar(target)
    if data is None:
        return None
    meta = data.pop("meta")
    if meta.get("seen", -1) != network.seen and meta.get("iteration") != network.iteration:
        return None                 # a sidecar of other weights
    # the .weights header keeps only ``seen``, from which loading derived the iteration;
    # with dynamic_minibatch that is not the count the sidecar kept
    network.iteration = meta.get("iteration", network.iteration)
    network.ensure_training()
    for layer in network.layers:
        for name, buf in getattr(layer, "momenta", {}).items():
            key = f"m{layer.index}_{name}"
            if key in data and data[key].shape == buf.shape:
                network.backend.copy_from_numpy(buf, data[key])
    network.ema = _moving_average(network, data)
    network.skipped_gradients = {}
    for key in data:
        if key.startswith("g"):
            index, name = key[1:].split("_", 1)
            network.skipped_gradients.setdefault(int(index), {})[name] = data[key]
    for layer in network.layers:
        saved = [data[f"s{layer.index}_{k}"] for k in range(3) if f"s{layer.index}_{k}" in data]
        if saved and hasattr(layer, "restore_state"):
            layer.restore_state(saved, network.backend)
    network.rng.bit_generator.state = meta.pop("rng")
    return meta


def _read_sidecar(target):
    """{name: array} of the sidecar, "meta" decoded (with its "rng"); None, with a warning,
    where it cannot be read whole (a copy cut short, a damaged file)."""
    try:
        with open(target, "rb") as f, np.load(f) as npz:   # (closed even where np.load fails)
            data = {k: npz[k] for k in npz.files}
        data["meta"] = json.loads(bytes(data["meta"]).decode())
        if "rng" not in data["meta"]:
            raise KeyError("rng")
        return data
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile,
            zlib.error) as e:
        warnings.warn(f"{target}: cannot read this checkpoint's state ({type(e).__name__}: "
                      f"{e}); resuming from the weights alone: momenta zero, the data order "
                      f"and random draws anew, as Darknet resumes", WeightsWarning, stacklevel=3)
        return None


def _moving_average(network, data):
    """The sidecar's moving averages when it has all of them (else None: they start again
    at max_batches / 2, as in Darknet)."""
    arrays = {}
    for index, name in averaged_keys(network):
        key = f"e{index}_{name}"
        if key not in data or data[key].shape != network.layers[index].params[name].shape:
            return None
        arrays[index, name] = np.array(data[key], np.float32)
    return MovingAverage(arrays) if arrays else None
