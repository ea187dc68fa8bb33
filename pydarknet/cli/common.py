"""What several command families share: the ``--gpu`` option, Darknet's single-dash flags, the
built-in cfg files, loading a network, and reporting skipped inputs."""

import sys
from importlib import resources

from ..errors import PydarknetError


def builtin_cfg(name):
    """The path of a cfg file shipped with the package (the repository's cfg/ folder, installed
    as pydarknet/cfgs/), e.g. ``builtin_cfg("demo-shapes.cfg")``."""
    return str(resources.files("pydarknet") / "cfgs" / name)


def add_device_option(p):
    """``--gpu N`` (also Darknet's ``-i N`` and ``-gpus N``): run on CUDA device N. Training
    takes a list too (``-gpus 0,1,2,3``): one MPI rank per GPU."""
    p.add_argument("--gpu", "-i", "-gpus", dest="gpu", metavar="N[,N...]",
                   help="run on GPU N through the CUDA backend (default: the CPU); training "
                        "on several (0,1,2,3) runs one process per GPU under mpiexec")


def gpu_list(args):
    """The GPU indexes ``--gpu`` names ([] for the CPU)."""
    gpu = getattr(args, "gpu", None)
    if gpu is None or str(gpu).strip().lower() == "cpu":
        return []
    parts = [g.strip() for g in str(gpu).split(",") if g.strip()]
    if not parts or not all(g.isdigit() for g in parts):
        raise PydarknetError(f"--gpu {gpu}: expected GPU indexes such as 0 or 0,1,2,3")
    return [int(g) for g in parts]


def device_of(args):
    """"cpu" or "cuda:N" from ``--gpu``. With a list, a rank of an MPI run takes the GPU of its
    place on its machine; anything else (Darknet's test/map) takes the first."""
    from ..dist import launched_ranks, local_rank
    gpus = gpu_list(args)
    if not gpus:
        return "cpu"
    if len(gpus) == 1 or launched_ranks() == 1:
        return f"cuda:{gpus[0]}"
    place = local_rank()
    if place >= len(gpus):
        raise PydarknetError(f"--gpu {args.gpu} lists {len(gpus)} GPUs but this machine runs "
                             f"more ranks (this is its rank {place}): start as many ranks per "
                             f"machine as GPUs listed")
    return f"cuda:{gpus[place]}"


def darknet_flag(p, name, **kw):
    """A Darknet-style single-dash flag that also answers to its double-dash spelling."""
    flags = dict.fromkeys((f"-{name}", f"--{name}", f"--{name.replace('_', '-')}"))
    p.add_argument(*flags, **kw)


def darknet_command(sub, name, help, weights="?"):
    """A Darknet-form command, ``NAME DATA CFG WEIGHTS``: ``weights="?"`` makes the weights
    optional (random ones), None requires them."""
    p = sub.add_parser(name, help=help, allow_abbrev=False)
    p.add_argument("data", help="Darknet .data file")
    p.add_argument("cfg")
    p.add_argument("weights", nargs=weights)
    return p


def add_run_options(p):
    """``--threads`` (image reading) and ``--gpu``: every command that runs a network on images."""
    p.add_argument("--threads", type=int, help="image-reading threads (default 2)")
    add_device_option(p)


def reader_threads(args):
    """``--threads``: how many threads read and pre-process images."""
    return getattr(args, "threads", None) or 2


def load_network(args, cfg, weights, width=None, height=None):
    """A batch-1 network on ``--gpu``'s device, with a note when it has no trained weights."""
    from ..network import load
    net = load(cfg, weights, batch=1, width=width, height=height, device=device_of(args))
    if weights is None:
        print(f"note: no weights given: {cfg} runs with random weights", file=sys.stderr)
    return net


def new_problems():
    from ..errors import Problems
    return Problems()


def report_problems(problems, out=None):
    """One closing line counting the inputs that were skipped (each was warned about)."""
    out = out or sys.stderr
    counts = problems.as_dict()
    if counts:
        what = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(counts.items()))
        print(f"skipped inputs ({what}); each reported above", file=out)


def progress():
    """A progress printer for terminals (None when stderr is not one)."""
    if not sys.stderr.isatty():
        return None
    return lambda *a, **k: print(*a, **k, file=sys.stderr, flush=True)


def print_layer_times(times, top):
    """Darknet's -benchmark_layers table: the slowest layers first, with their share."""
    total = sum(t for _, t in times) or 1.0
    print(f"\nlayers by time (median of 5 passes, synchronised after each layer; "
          f"{total * 1000:.2f} ms in all):")
    ranked = sorted(times, key=lambda lt: -lt[1])
    for layer, t in ranked[:top]:
        bf = getattr(layer, "bflops", 0) or 0
        rate = f"{bf / t:8.1f} GFLOP/s" if bf and t > 0 else ""
        print(f"  {layer.index:4d} {layer.type:<16s} {t * 1000:9.3f} ms {100 * t / total:5.1f}% "
              f"{rate}")
    if len(ranked) > top:
        rest = sum(t for _, t in ranked[top:])
        print(f"  ({len(ranked) - top} more layers: {rest * 1000:.3f} ms)")


def images_or_stdin(images):
    """The images given, or (none given, standard input not a terminal) the paths read from
    standard input, one a line: Darknet's ``... < list.txt``."""
    if images or sys.stdin.isatty():
        return list(images or ())
    return [ln.strip() for ln in sys.stdin.read().splitlines() if ln.strip()]
