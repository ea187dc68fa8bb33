"""`pydarknet demo` from an installed package, run in a folder outside the checkout: the cfg
files the package uses must ship inside it (they once resolved to site-packages/cfg/ and the
installed demo could not start).

The checkout's build inputs (git's view: tracked and new, not ignored) are copied to a temporary
folder and installed from there with pip (a wheel build: the C core compiles, the CUDA kernels
are skipped) into another, which alone is put on PYTHONPATH; numpy, OpenCV and the rest come
from this interpreter. About 30 s with two cores; pip needs PyPI (or its cache) for the build
requirements."""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow

# what `pip install .` reads (not tests/, bench/, or .weights files someone put in weights/)
BUILD_INPUTS = ("pyproject.toml", "setup.py", "pydarknet/", "src_c/", "cfg/", "cuda/")


def _copy_checkout(dst):
    """The build inputs git sees in the checkout (links kept as links); a skip without git."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip(f"{ROOT} is not a git checkout: cannot tell its files from build output")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True, check=True)
    for rel in listed.stdout.decode().split("\0"):
        if not rel.startswith(BUILD_INPUTS):
            continue
        src, target = ROOT / rel, dst / rel
        if not os.path.lexists(src):          # deleted in the working tree
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), target)
        else:
            shutil.copy2(src, target)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(folder that holds the installed package, environment that imports it from there)."""
    tmp = tmp_path_factory.mktemp("installed")
    src, site = tmp / "src", tmp / "site"
    _copy_checkout(src)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
                        "--disable-pip-version-check", "--target", str(site), str(src)],
                       cwd=tmp, capture_output=True, text=True, timeout=900,
                       env=dict(env, PYDARKNET_NO_CUDA="1"))
    assert r.returncode == 0, f"pip install failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return site, dict(env, PYTHONPATH=str(site))


def test_the_cfgs_ship_inside_the_package(installed):
    site, env = installed
    code = ("import pydarknet; from pydarknet.cli.common import builtin_cfg; "
            "print(pydarknet.__file__); print(builtin_cfg('demo-shapes.cfg'))")
    r = subprocess.run([sys.executable, "-c", code], cwd=site.parent, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    module, cfg = r.stdout.split()
    assert module.startswith(str(site)), f"imported {module}, not the installed package"
    assert cfg.startswith(str(site / "pydarknet" / "cfgs"))
    assert os.path.isfile(cfg) and not os.path.islink(site / "pydarknet" / "cfgs")
    shipped = sorted(os.listdir(site / "pydarknet" / "cfgs"))
    assert shipped == sorted(p.name for p in (ROOT / "cfg").glob("*.cfg"))


def test_installed_demo_runs_outside_the_checkout(installed, tmp_path):
    site, env = installed
    script = site / "bin" / "pydarknet"
    assert script.exists(), f"pip did not install the console script ({script})"
    r = subprocess.run([str(script), "demo", "--iterations", "2", "--train-images", "8",
                        "--valid-images", "4", "--folder", "run"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert "trained 2 iterations" in r.stdout
    assert "   layer   filters  size/strd(dil)" in r.stdout
    assert (tmp_path / "run" / "predictions.jpg").exists()
    assert (tmp_path / "run" / "backup" / "demo-shapes_final.weights").exists()
