"""The CUDA kernels' own source run on the CPU (tests/cuda_host.py): tools/gpu_check.py's
checks, which compare every kernel with a numpy float64 reference of Darknet's formulas,
pass here as they must on the GPU; and the emulation itself reports a kernel that writes
outside its buffers. (tests/test_cuda_emulated_networks.py runs whole networks on these
kernels through the CUDA backend.)"""

import sys

import numpy as np
import pytest

import cuda_host
from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import gpu_check  # noqa: E402

CHECKS = sorted(m for m in dir(gpu_check.Checker) if m.startswith("check_"))


@pytest.fixture(scope="module")
def cp():
    try:
        return cuda_host.fake_cupy(cuda_host.shared_kernels())
    except RuntimeError as exc:
        pytest.skip(str(exc))


def kernels(cp):
    return gpu_check.Kernels(cp, cp.RawModule(path="host"), gpu_check.parse_signatures(ROOT / "cuda"))


@pytest.mark.parametrize("check", CHECKS)
def test_gpu_check_passes_on_the_kernels_compiled_for_the_host(cp, check):
    chk = gpu_check.Checker(cp, kernels(cp))
    getattr(chk, check)()
    assert chk.rows, f"{check} checked nothing"
    bad = [f"{name}: error {err:.3g} > {tol:g} {note}" for name, err, tol, ok, note in chk.rows
           if not ok]
    assert not bad, "\n".join(bad)


def test_gpu_check_launches_every_kernel(cp):
    k = kernels(cp)
    chk = gpu_check.Checker(cp, k)
    chk.run()
    assert set(k.sigs) == k.launched, f"never launched: {sorted(set(k.sigs) - k.launched)}"


def test_host_signatures_are_the_packages():
    from pydarknet.backend import kernel_signatures
    assert cuda_host.signatures() == kernel_signatures.parse_dir()


def test_a_kernel_writing_past_its_buffer_is_reported(tmp_path):
    from test_cuda_backend import fake_device
    try:
        cuda_host.shared_kernels()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    with fake_device(tmp_path, kernels="host") as fake:
        from pydarknet.backend import cuda_device
        ptr = fake.mem.alloc(64 * 4)
        fake.mem.view(ptr, 64, np.float32)[...] = 1.0
        fn = cuda_device._S.module.get_function("pdn_activate").prepare("Pii")
        fn.prepared_call((1, 1, 1), (256, 1, 1), ptr, 64, 3)      # linear: in bounds
        with pytest.raises(AssertionError, match="wrote outside its buffers"):
            fn.prepared_call((1, 1, 1), (256, 1, 1), ptr, 64 + 40, 0)   # logistic, 160 bytes on
