import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
REF = pathlib.Path(os.environ.get("DARKNET_REF", ROOT.parent / "shared" / "darknet-ref"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))


def pytest_addoption(parser):
    parser.addoption("--emulated-gpu", choices=["numpy", "host"], default=None,
                     help="run the gpu-marked tests on the emulated device (the stand-in of "
                          "tests/test_cuda_backend.py with numpy kernels or the CUDA sources "
                          "compiled for the CPU): their own code checked without a GPU")


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs an NVIDIA GPU (skipped without one)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(scope="session", autouse=True)
def _emulated_gpu(request, tmp_path_factory):
    """With --emulated-gpu, cuda:0 is the emulated device for the whole session."""
    kernels = request.config.getoption("--emulated-gpu")
    if not kernels:
        yield None
        return
    from test_cuda_backend import fake_device
    with fake_device(tmp_path_factory.mktemp("emulated-gpu"), kernels=kernels) as fake:
        yield fake


@pytest.fixture(scope="session")
def ref():
    """The Darknet reference data folder, or a skip saying why it is missing."""
    if not (REF / "README.md").exists():
        pytest.skip(f"Darknet reference data not found at {REF} (set DARKNET_REF to its folder)")
    return REF


def ref_or_skip():
    if not (REF / "README.md").exists():
        pytest.skip(f"Darknet reference data not found at {REF} (set DARKNET_REF to its folder)")
    return REF
