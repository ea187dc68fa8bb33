import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
REF = pathlib.Path(os.environ.get("DARKNET_REF", ROOT.parent / "shared" / "darknet-ref"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs an NVIDIA GPU (skipped without one)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


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
