"""The CUDA kernels' argument types, read from their C signatures in ``cuda/*.cu``.

Each ``extern "C" __global__ void pdn_...(...)`` becomes a pycuda struct format: ``P`` for a
pointer, ``i`` for an int, ``f`` for a float. In the source tree the ``.cu`` files are parsed
(so the launches always follow the sources); an installed package, which has no ``cuda/``,
reads ``kernel_signatures.json``, written next to the fatbin by ``cuda/build_fatbin.py``.
"""

import json
import pathlib
import re

CUDA_DIR = pathlib.Path(__file__).resolve().parents[2] / "cuda"
JSON_PATH = pathlib.Path(__file__).with_name("kernel_signatures.json")

_KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)', re.S)
_cache = {}


def parameter_kind(param):
    """``P``, ``i`` or ``f`` for one C parameter declaration; ValueError for anything else."""
    p = " ".join(param.split())
    if "*" in p:
        return "P"
    words = [w for w in p.split() if w not in ("const", "__restrict__", "unsigned")]
    if words[:1] == ["int"]:
        return "i"
    if words[:1] == ["float"]:
        return "f"
    raise ValueError(f"unexpected kernel parameter {param.strip()!r} (the launches pass "
                     f"pointers, ints and floats only)")


def parse_source(text, where="<source>"):
    """kernel name -> struct format for every extern "C" kernel in ``text``."""
    sigs = {}
    for name, params in _KERNEL.findall(text):
        try:
            sigs[name] = "".join(parameter_kind(p) for p in params.split(",") if p.strip())
        except ValueError as exc:
            raise ValueError(f"{where}: {name}: {exc}") from None
    return sigs


def parse_dir(cuda_dir=CUDA_DIR):
    """kernel name -> struct format over every ``*.cu`` of ``cuda_dir``."""
    sigs = {}
    for path in sorted(pathlib.Path(cuda_dir).glob("*.cu")):
        sigs.update(parse_source(path.read_text(), path.name))
    return sigs


def write_json(path=JSON_PATH, cuda_dir=CUDA_DIR):
    """Write the signatures of ``cuda_dir``'s kernels to ``path`` (the build does, next to the
    fatbin, so that an installed package needs no .cu files); returns them."""
    sigs = parse_dir(cuda_dir)
    text = json.dumps(sigs, indent=1, sort_keys=True) + "\n"
    path = pathlib.Path(path)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return sigs


def load():
    """kernel name -> struct format: parsed from cuda/*.cu where they exist, else read from
    kernel_signatures.json; cached. Raises FileNotFoundError when neither is there."""
    if "sigs" not in _cache:
        if any(CUDA_DIR.glob("*.cu")):
            _cache["sigs"] = parse_dir(CUDA_DIR)
        elif JSON_PATH.is_file():
            _cache["sigs"] = json.loads(JSON_PATH.read_text())
        else:
            raise FileNotFoundError(f"no kernel signatures: neither {CUDA_DIR}/*.cu nor "
                                    f"{JSON_PATH} exists (run `make cuda` to write it)")
    return dict(_cache["sigs"])
