"""How much memory a network needs, layer by layer, and whether it fits.

The arithmetic follows what pydarknet allocates: parameters (plus gradients and momenta when
training), each layer's output for one mini-batch (plus its delta and the scratch a training
pass keeps: batch-norm inputs, pre-activations, max-pool indexes, dropout masks), and the
convolution workspace of the backend (on the CPU a few MB: the C core's im2col bands, or the
Winograd path's transformed weights, inputs and products, or oneDNN's converted layouts; the
CUDA backend's im2col fallback holds up to 256 MB of columns). Building a network checks the
estimate against the memory there is, so that an impossible cfg stops with the layer named
instead of a bare MemoryError; ``pydarknet info --memory`` reports the same table.

It counts every layer's output and delta, as Darknet allocates them: an upper bound on the
CPU, where ``predict`` shares the outputs it does not keep and training passes share the
deltas (``output_pool.py``).
"""

import os
from dataclasses import dataclass

from .errors import PydarknetError

F32 = 4
# Activations that keep their input for the gradient (a second output-sized buffer).
KEEPS_PRE_ACTIVATION = ("swish", "mish", "hard_mish")
# the larger of im2col's 8 MB bands (src_c/conv.c PDN_COL_FLOATS) and Winograd's buffers
# (src_c/winograd.c: 4 MB of weights, 2-4 MB of inputs, 2 MB of products)
CPU_WORKSPACE = 10 << 20
CUDA_WORKSPACE = 256 << 20       # backend/cuda_conv.py _WORKSPACE_BYTES
CUDNN_WORKSPACE_LIMIT = 1 << 30  # backend/cuda_conv.py _CUDNN_WORKSPACE_LIMIT


@dataclass
class LayerMemory:
    """Bytes one layer needs: ``params`` (weights and the rest, with gradients and momenta
    when training), ``outputs`` (its output for one mini-batch), ``training`` (what a training
    pass adds: the delta and scratch such as batch-norm inputs, pre-activations, max-pool
    indexes, dropout masks) and ``workspace`` (the largest scratch it borrows while it runs)."""
    index: int
    layer_type: str
    params: int
    outputs: int
    training: int
    workspace: int

    @property
    def activations(self):
        return self.outputs + self.training

    @property
    def total(self):
        return self.params + self.activations


def layer_memory(layer, batch, train, device="cpu"):
    """The memory ``layer`` needs for mini-batches of ``batch`` images."""
    params = layer.param_count() * F32
    if train:
        trained = sum(int(_prod(shape)) for name, shape in layer.param_shapes()
                      if name in layer.trainable)
        params += 2 * trained * F32                     # gradients and momenta
    one_copy = batch * layer.outputs * F32
    copies = 0
    if train:
        copies += 1                                     # the delta
        if getattr(layer, "batch_normalize", 0) or layer.layer_type == "batchnorm":
            copies += 2                                 # x before and after normalising
        if getattr(layer, "activation", None) in KEEPS_PRE_ACTIVATION:
            copies += 1
        if layer.layer_type in ("maxpool", "dropout"):
            copies += 1                                 # argmax indexes, the mask
    step_memory = getattr(layer, "step_memory", None)
    if step_memory is not None:         # recurrent layers: every step's gates and sums
        copies += step_memory(train) / max(layer.outputs, 1)
    workspace = 0
    if layer.layer_type == "convolutional":
        workspace = (cuda_conv_workspace(layer, batch) if str(device).startswith("cuda")
                     else CPU_WORKSPACE)
    return LayerMemory(layer.index, layer.layer_type, params, one_copy,
                       int(copies * one_copy), workspace)


def cuda_conv_workspace(layer, batch):
    """The CUDA backend's im2col columns for ``layer``: as many images as fit in its 256 MiB
    workspace, at least one (backend/cuda_conv.py ``_chunk``); none for a 1x1 stride-1
    unpadded convolution, which multiplies its input directly. cuDNN, where it is used,
    chooses algorithms within CUDNN_WORKSPACE_LIMIT instead."""
    if (layer.size == 1 and layer.stride_x == layer.stride_y == 1 and layer.pad == 0
            and (layer.out_h, layer.out_w) == (layer.h, layer.w)):
        return 0
    per_image = (layer.c // max(layer.groups, 1)) * layer.size * layer.size \
        * layer.out_h * layer.out_w * F32
    return min(batch * per_image, max(CUDA_WORKSPACE, per_image))


def network_memory(network, batch=None, train=None, device=None, layers=None):
    """[LayerMemory] for every layer and the total bytes: parameters and activations of all
    layers plus the largest workspace (one workspace is shared, as in Darknet). ``layers``:
    other layers of the network's than its own (a resize's old ones)."""
    batch = network.batch if batch is None else batch
    train = network.train_alloc if train is None else train
    device = network.device if device is None else device
    rows = [layer_memory(layer, batch, train, device)
            for layer in (network.layers if layers is None else layers)]
    total = sum(r.total for r in rows) + max((r.workspace for r in rows), default=0)
    return rows, total


def smallest_subdivisions(network, limit, device="cpu"):
    """The smallest ``subdivisions`` dividing the cfg's ``batch`` whose training mini-batch
    (batch / subdivisions, each of time_steps rows) fits in ``limit`` bytes on ``device``:
    (subdivisions, bytes), or (None, bytes at mini-batch 1) when not even one image fits."""
    batch = max(network.net.batch, 1)
    steps = max(network.net.time_steps, 1)
    for subdivisions in range(1, batch + 1):
        if batch % subdivisions:
            continue
        _, total = network_memory(network, batch // subdivisions * steps, True, device)
        if total <= limit:
            return subdivisions, total
    return None, network_memory(network, steps, True, device)[1]


def available_host_memory():
    """Bytes this process can still get: the kernel's MemAvailable, capped by a cgroup limit."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    limit = _cgroup_room()
    return available if limit is None else min(available, limit)


def _cgroup_room():
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            text = f.read().strip()
        if text == "max":
            return None
        with open("/sys/fs/cgroup/memory.current") as f:
            return max(int(text) - int(f.read().strip()), 0)
    except (OSError, ValueError):
        return None


def format_bytes(n):
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def check_fits(network, available=None, what="this machine's memory"):
    """Raise a PydarknetError naming the largest layer when the network cannot fit in
    ``available`` bytes (default: the host's available memory). PYDARKNET_MEMORY_CHECK=0
    turns the check off."""
    if os.environ.get("PYDARKNET_MEMORY_CHECK", "1") == "0":
        return
    if available is None:
        available = available_host_memory()
    if available is None:
        return
    rows, total = network_memory(network)
    if total <= available:
        return
    worst = max(rows, key=lambda r: r.total + r.workspace)
    layer = network.layers[worst.index]
    where = f"{layer.section.path}:{layer.section.line}"
    mode = "training" if network.train_alloc else "inference"
    raise PydarknetError(
        f"{where}: layer {worst.index} [{layer.section.name}] needs "
        f"{format_bytes(worst.total + worst.workspace)} (parameters "
        f"{format_bytes(worst.params)}, outputs {format_bytes(worst.activations)} for a "
        f"mini-batch of {network.batch}); the whole network needs {format_bytes(total)} for "
        f"{mode}, more than {what} ({format_bytes(available)} available). Make the layer "
        f"smaller, lower width/height, or use a smaller batch (more subdivisions); "
        f"PYDARKNET_MEMORY_CHECK=0 skips this check")


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20,
          "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
          "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}


def parse_size(text):
    """Bytes from ``8GB``, ``8 GiB``, ``512M``, ``1.5g`` or a plain number (binary units,
    as :func:`format_bytes` prints them)."""
    t = str(text).strip().lower().replace(" ", "")
    number = t.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = t[len(number):]
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in _UNITS or not value > 0:
        raise PydarknetError(f"memory size {text!r}: expected a positive number with an "
                             f"optional unit, such as 8GB, 512MB or 1.5G")
    return int(value * _UNITS[unit])


def memory_report(network, limits, inference_batch=1):
    """``pydarknet info --memory``'s text: per layer, the outputs, what training adds and the
    convolution workspaces on the CPU and CUDA backends; the totals for inference (mini-batch
    ``inference_batch``) and training (the cfg's batch/subdivisions); and for every device
    with a limit in ``limits`` ({"cpu": bytes, "cuda": bytes}), the smallest subdivisions
    whose training mini-batch fits. ``network`` is built for training (``batch=None``)."""
    n = network.net
    mini = network.batch
    rows = {}
    for device in ("cpu", "cuda"):
        for train, batch in ((False, inference_batch), (True, mini)):
            rows[device, train] = network_memory(network, batch, train, device)
    cpu_train, _ = rows["cpu", True]
    cuda_train, _ = rows["cuda", True]
    steps = f" x time_steps {n.time_steps} rows" if n.time_steps > 1 else ""
    lines = [f"memory per layer, training mini-batch {mini} (batch {n.batch} / subdivisions "
             f"{n.subdivisions}{steps}):",
             "   layer type          params   outputs   training  workspace cpu/cuda"]
    for layer, r, g in zip(network.layers, cpu_train, cuda_train):
        lines.append(f"{r.index:8d} {layer.type:<10.10} {format_bytes(r.params):>9} "
                     f"{format_bytes(r.outputs):>9} {format_bytes(r.training):>10} "
                     f"{format_bytes(r.workspace):>10} / {format_bytes(g.workspace)}")
    lines.append("(training: deltas and the scratch a training pass keeps; params with "
                 "gradients and momenta; one workspace is shared by all layers)")
    lines.append("")
    lines.append(f"{'':6}{'inference, batch ' + str(inference_batch):>24}"
                 f"{'training, mini-batch ' + str(mini):>28}")
    for device in ("cpu", "cuda"):
        lines.append(f"{device:6}{format_bytes(rows[device, False][1]):>24}"
                     f"{format_bytes(rows[device, True][1]):>28}")
    lines.append("(cuda: the im2col workspace; cuDNN may take up to "
                 f"{format_bytes(CUDNN_WORKSPACE_LIMIT)} more for its algorithms)")
    for device, limit in limits.items():
        subdivisions, need = smallest_subdivisions(network, limit, device)
        if subdivisions is None:
            lines.append(f"{device}: training does not fit in {format_bytes(limit)} even with "
                         f"subdivisions={n.batch} (mini-batch 1 needs {format_bytes(need)}): "
                         f"lower width/height or make the network smaller")
        else:
            now = "" if subdivisions != n.subdivisions else " (the cfg's)"
            lines.append(f"{device}: smallest subdivisions that fits {format_bytes(limit)}: "
                         f"{subdivisions}{now} (batch {n.batch}, mini-batch "
                         f"{n.batch // subdivisions}, {format_bytes(need)})")
    return "\n".join(lines)


def _prod(shape):
    n = 1
    for s in shape:
        n *= int(s)
    return n
