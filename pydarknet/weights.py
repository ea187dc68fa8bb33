"""Darknet .weights files: header, then every layer's parameters in network order.

Header: int32 major, minor, revision; ``seen`` as uint64 when major*10+minor >= 2, else uint32.
Connected-layer weights are stored transposed when major or minor > 1000 (AB's rule), and a
[convolutional] layer's when its cfg sets ``flipped=1``.
pydarknet writes version 0.2.5 with a uint64 ``seen``.
"""

import os
import warnings

import numpy as np

from .errors import WeightsError, WeightsWarning

WRITE_VERSION = (0, 2, 5)
_BN_NAMES = ("scales", "rolling_mean", "rolling_variance")


class Header:
    def __init__(self, major, minor, revision, seen):
        self.major, self.minor, self.revision, self.seen = major, minor, revision, seen

    @property
    def transpose(self):
        return self.major > 1000 or self.minor > 1000

    def __repr__(self):
        return f"<weights {self.major}.{self.minor}.{self.revision} seen={self.seen}>"


def read_header(buf, path):
    if len(buf) < 12:
        raise WeightsError(f"{path}: {len(buf)} bytes is too short for a Darknet weights header "
                           f"(12 bytes of version, then 4 or 8 bytes of 'seen')")
    major, minor, revision = (int(v) for v in np.frombuffer(buf, "<i4", 3))
    if major < 0 or minor < 0 or revision < 0:
        raise WeightsError(f"{path}: bad header: version {major}.{minor}.{revision} is negative; "
                           f"is this a Darknet .weights file?")
    wide = major * 10 + minor >= 2
    end = 12 + (8 if wide else 4)
    if len(buf) < end:
        raise WeightsError(f"{path}: truncated header: needs {end} bytes, file has {len(buf)}")
    seen = int(np.frombuffer(buf, "<u8" if wide else "<u4", 1, 12)[0])
    return Header(major, minor, revision, seen), end


def _load_order(layer, gates="ab"):
    """Parameter names as the file stores them for ``layer`` (Darknet's load_*_weights);
    ``gates="pjreddie"``: [lstm] and [gru] gates in the order pjreddie's Darknet writes."""
    pjreddie = getattr(layer, "PJREDDIE_GATES", None)
    if gates == "pjreddie" and pjreddie:
        return [name for g in pjreddie for name, _ in layer.gate[g].param_shapes()]
    names = [name for name, _ in layer.param_shapes()]
    if getattr(layer, "dontloadscales", 0) and layer.layer_type in ("convolutional",
                                                                    "connected"):
        names = [n for n in names if n not in _BN_NAMES]
    return names


def _stored_transposed(layer, header, values, name):
    """``layer``'s weights in pydarknet's layout when the file stores them transposed:
    [connected] weights as [inputs, outputs] in files of version > 1000 (Darknet's
    load_connected_weights), [convolutional] weights as [c/groups*size*size, filters] when the
    cfg sets ``flipped=1`` (load_convolutional_weights); a recurrent layer's gates as
    [connected] weights. Saving writes the plain layout, as
    Darknet's save_*_weights do."""
    inner = getattr(layer, "connected_weights", {})    # recurrent layers' gates
    if name in inner and header.transpose:
        return values.reshape(inner[name]).T
    if name != "weights":
        return values
    if layer.layer_type == "connected" and header.transpose:
        return values.reshape(layer.inputs, layer.outputs).T
    if layer.layer_type == "convolutional" and layer.flipped:
        return values.reshape(-1, layer.n).T
    return values


def stored_floats(layer, gates="ab"):
    """How many floats a .weights file stores for ``layer`` (0 for a dontload one); from its
    parameter shapes, so a network built without parameters answers too."""
    if getattr(layer, "dontload", 0):
        return 0
    shapes = dict(layer.param_shapes())
    return sum(int(np.prod(shapes[n])) for n in _load_order(layer, gates))


def expected_floats(layers):
    return sum(stored_floats(layer) for layer in layers)


def trailing_dontload(layers):
    """The ``dontload=1`` layers with parameters after the last layer a .weights file is read
    for. Darknet reads nothing for them and never looks past the last layer it reads, so the
    file may go on with their floats for another cfg (the old head of a network whose head is
    retrained for other classes)."""
    tail = []
    for layer in reversed(layers):
        if stored_floats(layer):
            break
        if getattr(layer, "dontload", 0) and layer.param_count():
            tail.append(layer.index)
    return tail[::-1]


def _layers_set(indexes):
    """'layer 3 sets' / 'layers 3, 5 set'."""
    if len(indexes) == 1:
        return f"layer {indexes[0]} sets"
    return f"layers {', '.join(map(str, indexes))} set"


def _skip_hint(layers):
    """What a mismatch may owe to dontload= / dontloadscales= ('' when no layer sets them)."""
    skips = [l.index for l in layers if getattr(l, "dontload", 0) or
             getattr(l, "dontloadscales", 0) and getattr(l, "batch_normalize", 0)]
    if not skips:
        return ""
    return (f"; {_layers_set(skips)} dontload=1 or dontloadscales=1, for which Darknet reads "
            f"nothing or no batch-norm values: the file must leave those floats out (only "
            f"those of dontload=1 layers after the last loaded one may stay in it)")


def describe_weights(network, path):
    """What a .weights file holds for ``network``, read from its size and header alone (the
    network needs no parameters): {"header", "floats", "expected", "stop", "left"} where
    ``stop`` is the first layer with parameters the floats do not reach (None: every layer)
    and ``left`` the floats past the last whole layer they fill; and "fits": "whole" (the
    network's file), "backbone" (a file that ends at a layer boundary, as yolov4.conv.137) or
    "mismatch" (written for another cfg), with "why" in words."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            header, offset = read_header(f.read(20), path)
    except OSError as e:
        raise WeightsError(f"cannot read weights file {path}: {e.strerror}") from None
    payload = size - offset
    if payload % 4:
        raise WeightsError(f"{path}: {payload} bytes after the header is not a whole number of "
                           f"float32 values")
    total, pos, stop, need = payload // 4, 0, None, 0
    for layer in network.layers:
        count = stored_floats(layer)
        need += count
        if stop is None and count:
            if pos + count <= total:
                pos += count
            else:
                stop = layer
    left = total - pos
    tail = trailing_dontload(network.layers) if stop is None and left else []
    out = {"header": header, "floats": total, "expected": need, "left": left,
           "stop": None if stop is None else stop.index}
    if stop is None and left == 0:
        out["fits"], out["why"] = "whole", "every layer's parameters, exactly"
    elif stop is not None and left == 0:
        out["fits"] = "backbone"
        out["why"] = (f"the parameters of layers 0..{stop.index - 1} exactly (a backbone: "
                      f"training loads it and starts layer {stop.index} on from random)")
    elif tail:
        out["fits"] = "whole"
        out["why"] = (f"every loaded layer's parameters, then {left} floats left unread: "
                      f"{_layers_set(tail)} dontload=1 after them (Darknet reads nothing for "
                      f"such a layer either)")
    elif stop is None:
        out["fits"] = "mismatch"
        out["why"] = (f"{left} floats more than the network's {need}: written for another cfg "
                      f"(other filters, classes or layers){_skip_hint(network.layers)}")
    else:
        out["fits"] = "mismatch"
        out["why"] = (f"ends inside layer {stop.index} [{stop.section.name}] ({left} floats of "
                      f"its {stored_floats(stop)}): written "
                      f"for another cfg (other filters, classes or layers)"
                      f"{_skip_hint(network.layers)}")
    return out


def load_weights(network, path, cutoff=None, allow_partial=False, gates="ab"):
    """Load ``path`` into ``network``'s first ``cutoff`` layers (all when None).

    ``allow_partial``: a file that ends at a layer boundary (a backbone such as
    ``yolov4.conv.137``) loads the layers it has, as Darknet does when it meets the end of
    the file; ``header.layers_loaded`` tells how many. ``gates="pjreddie"``: a file written
    by pjreddie's Darknet, whose [lstm] and [gru] gates come in another order than AB's
    (saving writes AB's)."""
    if gates not in ("ab", "pjreddie"):
        raise ValueError(f"gates must be 'ab' or 'pjreddie', found {gates!r}")
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            return _load_from(network, f, path, cutoff, allow_partial, gates)
    except OSError as e:
        raise WeightsError(f"cannot read weights file {path}: {e.strerror}") from None


def _load_from(network, f, path, cutoff, allow_partial, gates):
    # read parameter by parameter: the whole file in memory next to the parameters would
    # double the peak (yolov4: 245 MB more)
    size = os.fstat(f.fileno()).st_size
    header, offset = read_header(f.read(20), path)
    payload = size - offset
    if payload % 4:
        raise WeightsError(f"{path}: {payload} bytes after the header is not a whole number of "
                           f"float32 values")
    f.seek(offset)
    total = payload // 4
    layers = network.layers if cutoff is None else network.layers[:cutoff]
    need = expected_floats(layers)
    pos = 0
    header.layers_loaded = len(layers)
    plan = []       # checked before any parameter changes: a bad file leaves the network as is
    for layer in layers:
        if getattr(layer, "dontload", 0):
            continue
        if allow_partial and pos == total and _load_order(layer, gates):
            header.layers_loaded = layer.index
            break
        for name in _load_order(layer, gates):
            count = layer.params[name].size
            if pos + count > total:
                raise WeightsError(
                    f"{path}: too few floats: the network{' (first %d layers)' % cutoff if cutoff else ''}"
                    f" expects {need}, the file has {total}; it ran out at layer "
                    f"{layer.index} ({layer.layer_type}) '{name}' (needs {count} from float "
                    f"{pos}, {total - pos} left){_skip_hint(layers)}")
            plan.append((layer, name))
            pos += count
    if cutoff is None and pos != total:
        tail = trailing_dontload(layers)
        if not tail:
            raise WeightsError(f"{path}: too many floats: the network expects {need}, the file "
                               f"has {total} ({total - need} left over): it was written for a "
                               f"different cfg (other filters, classes or layers)"
                               f"{_skip_hint(layers)}")
        warnings.warn(f"{path}: {total - pos} floats after the last loaded layer left unread: "
                      f"{_layers_set(tail)} dontload=1 after it (Darknet reads nothing for "
                      f"such a layer either)", WeightsWarning, stacklevel=3)
    for layer, name in plan:
        dest = layer.params[name]
        values = np.fromfile(f, "<f4", dest.size)
        if values.size != dest.size:
            raise WeightsError(f"{path}: the file shrank while it was read")
        values = _stored_transposed(layer, header, values, name)
        dest[...] = values.reshape(dest.shape)
    network.seen = header.seen
    return header


def save_weights(network, path, cutoff=None, replace=None):
    """Write version 0.2.5 weights; to a temporary file first, then renamed into place.
    ``replace``: {(layer index, name): array} written instead of those parameters (the
    moving averages of ``_ema.weights``)."""
    replace = replace or {}
    path = os.fspath(path)
    layers = network.layers if cutoff is None else network.layers[:cutoff]
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        np.array(WRITE_VERSION, "<i4").tofile(f)
        np.array([network.seen], "<u8").tofile(f)
        for layer in layers:
            for name, _ in layer.param_shapes():
                values = replace.get((layer.index, name), layer.params[name])
                np.ascontiguousarray(values, "<f4").tofile(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
