"""How much memory a network needs, layer by layer, and whether it fits.

The arithmetic follows what pydarknet allocates: parameters (plus gradients and momenta when
training), each layer's output for one mini-batch (plus its delta and the scratch a training
pass keeps: batch-norm inputs, pre-activations, max-pool indexes, dropout masks), and the
convolution workspace of the backend (the CPU core's im2col bands are a few MB; the CUDA
backend's im2col fallback holds one whole layer's columns). Building a network checks the
estimate against the memory there is, so that an impossible cfg stops with the layer named
instead of a bare MemoryError; ``pydarknet info --memory`` reports the same table.
"""

import os
from dataclasses import dataclass

from .errors import PydarknetError

F32 = 4
# Activations that keep their input for the gradient (a second output-sized buffer).
KEEPS_PRE_ACTIVATION = ("swish", "mish", "hard_mish")
CPU_WORKSPACE = 4 << 20          # im2col bands (src_c/conv.c PDN_COL_FLOATS) and slack


@dataclass
class LayerMemory:
    """Bytes one layer needs: ``params`` (weights and the rest, with gradients and momenta
    when training), ``activations`` (its output and training buffers for one mini-batch)
    and ``workspace`` (the largest scratch it borrows while it runs)."""
    index: int
    layer_type: str
    params: int
    activations: int
    workspace: int

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
    per_image = layer.outputs
    copies = 1
    if train:
        copies += 1                                     # the delta
        if getattr(layer, "batch_normalize", 0) or layer.layer_type == "batchnorm":
            copies += 2                                 # x before and after normalising
        if getattr(layer, "activation", None) in KEEPS_PRE_ACTIVATION:
            copies += 1
        if layer.layer_type in ("maxpool", "dropout"):
            copies += 1                                 # argmax indexes, the mask
    activations = copies * batch * per_image * F32
    workspace = 0
    if layer.layer_type == "convolutional":
        cols = (layer.c // max(layer.groups, 1)) * layer.size * layer.size
        workspace = (cols * layer.out_h * layer.out_w * F32 if str(device).startswith("cuda")
                     else CPU_WORKSPACE)
    return LayerMemory(layer.index, layer.layer_type, params, activations, workspace)


def network_memory(network, batch=None, train=None, device=None):
    """[LayerMemory] for every layer and the total bytes: parameters and activations of all
    layers plus the largest workspace (one workspace is shared, as in Darknet)."""
    batch = network.batch if batch is None else batch
    train = network.train_alloc if train is None else train
    device = network.device if device is None else device
    rows = [layer_memory(layer, batch, train, device) for layer in network.layers]
    total = sum(r.total for r in rows) + max((r.workspace for r in rows), default=0)
    return rows, total


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


def _prod(shape):
    n = 1
    for s in shape:
        n *= int(s)
    return n
