"""The C core is clean under AddressSanitizer + UndefinedBehaviorSanitizer: tools/asan.py
--quick (what `make asan` runs, on the bounded subset: the backend op tests and the forward
and training oracles) builds a sanitized copy under build/asan/ and runs them against it. The
tool first checks that a deliberate heap overflow is reported, so clean means clean. About
20 s with two cores once built (the first build takes about as long again); skipped where gcc
has no libasan / libubsan or Cython is missing."""
import importlib.util
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "asan.py"

pytestmark = pytest.mark.slow


def load_tool():
    spec = importlib.util.spec_from_file_location("pydarknet_asan_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_c_core_is_clean_under_asan_and_ubsan():
    tool = load_tool()
    try:
        tool.sanitizer_runtime()
    except tool.ToolchainMissing as exc:
        pytest.skip(f"no sanitizer toolchain: {exc}")
    pytest.importorskip("Cython", reason="Cython is needed to build the sanitized extension "
                                         "(pip install -e \".[test]\" installs it)")
    proc = subprocess.run([sys.executable, str(TOOL), "--quick"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"tools/asan.py --quick failed:\n{output[-12000:]}"
    assert "asan: clean" in proc.stdout
