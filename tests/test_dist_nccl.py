"""The NCCL binding: loads and binds where the nvidia-nccl wheel is installed (no GPU needed)."""

import pytest

from pydarknet.dist import nccl


def library_or_skip():
    try:
        return nccl.load_library()
    except nccl.NcclError as e:
        pytest.skip(f"NCCL is not installed here ({str(e)[:80]}...): pip install nvidia-nccl-cu13")


def test_every_symbol_binds_and_the_version_reads():
    lib = library_or_skip()
    for name in nccl.SYMBOLS:
        assert getattr(lib, name).argtypes is not None
    assert nccl.version() >= 21800          # 2.18 or newer


def test_a_unique_id_has_nccls_size():
    library_or_skip()
    assert len(nccl.new_unique_id()) == nccl.UNIQUE_ID_BYTES
    with pytest.raises(ValueError, match="128 bytes"):
        nccl.Communicator(b"short", 1, 0)


def test_a_missing_library_says_how_to_install_it(tmp_path):
    with pytest.raises(nccl.NcclError, match="pip install nvidia-nccl-cu13"):
        nccl.load_library([str(tmp_path / "libnccl.so.2")])
