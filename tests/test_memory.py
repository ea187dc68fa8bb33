"""The memory estimate: its arithmetic, and an impossible cfg refused with its layer named."""

import numpy as np
import pytest

import pydarknet
from pydarknet.memory import check_fits, format_bytes, layer_memory, network_memory

CFG = """[net]
width=32
height=32
channels=3
batch=4
subdivisions=2
[convolutional]
batch_normalize=1
filters=8
size=3
pad=1
activation=mish
[maxpool]
size=2
stride=2
[convolutional]
filters={filters}
size=1
activation=leaky
"""


def test_layer_arithmetic_for_inference_and_training():
    net = pydarknet.network.load_cfg_text(CFG.format(filters=6), batch=1, init=False)
    conv = net.layers[0]
    inference = layer_memory(conv, 1, train=False)
    assert inference.params == conv.param_count() * 4
    assert inference.activations == 32 * 32 * 8 * 4
    training = layer_memory(conv, 2, train=True)
    trained = 8 * 3 * 9 + 8 + 8                          # weights, biases, scales
    assert training.params == conv.param_count() * 4 + 2 * trained * 4
    # output, delta, two batch-norm copies and mish's pre-activation, for 2 images
    assert training.activations == 5 * 2 * 32 * 32 * 8 * 4
    assert training.outputs == 2 * 32 * 32 * 8 * 4 and training.training == 4 * training.outputs
    cuda = layer_memory(conv, 2, False, device="cuda:0")
    assert cuda.workspace == 2 * 3 * 9 * 32 * 32 * 4      # im2col columns of 2 images
    direct = layer_memory(net.layers[2], 1, False, device="cuda:0")
    assert direct.workspace == 0                          # 1x1 stride 1: the input is its columns


def test_network_total_is_layers_plus_one_workspace():
    net = pydarknet.network.load_cfg_text(CFG.format(filters=6), init=False)   # training
    rows, total = network_memory(net)
    assert net.batch == 2 and len(rows) == 3
    assert total == sum(r.total for r in rows) + max(r.workspace for r in rows)


def test_an_impossible_layer_is_refused_with_its_file_line_and_size():
    with pytest.raises(pydarknet.PydarknetError) as e:
        pydarknet.network.load_cfg_text(CFG.format(filters=1000000000), path="huge.cfg")
    text = str(e.value)
    assert "huge.cfg:16: layer 2 [convolutional]" in text
    assert "TB" in text and "available" in text and "subdivisions" in text


def test_check_fits_against_a_given_budget():
    net = pydarknet.network.load_cfg_text(CFG.format(filters=6), init=False)
    _, total = network_memory(net)
    check_fits(net, available=total)
    with pytest.raises(pydarknet.PydarknetError, match="layer 0"):
        check_fits(net, available=total - 1, what="a 1-byte-too-small budget")


def test_the_check_can_be_turned_off_and_the_allocation_still_fails_clearly(monkeypatch):
    monkeypatch.setenv("PYDARKNET_MEMORY_CHECK", "0")
    with pytest.raises(pydarknet.PydarknetError, match="not enough memory for its"):
        pydarknet.network.load_cfg_text(CFG.format(filters=1000000000), path="huge.cfg")


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(3 * 1024 ** 3) == "3.0 GB"
    assert np.isclose(float(format_bytes(1.5 * 1024 ** 4).split()[0]), 1.5)


def test_smallest_subdivisions_is_the_first_divisor_of_batch_that_fits():
    from pydarknet.memory import smallest_subdivisions
    net = pydarknet.network.load_cfg_text(CFG.format(filters=6).replace("batch=4", "batch=12"),
                                          init=False)
    need = {s: network_memory(net, 12 // s, True, "cpu")[1] for s in (1, 2, 3, 4, 6, 12)}
    assert need[1] > need[2] > need[3] > need[12]
    assert smallest_subdivisions(net, need[3], "cpu") == (3, need[3])
    assert smallest_subdivisions(net, need[3] - 1, "cpu") == (4, need[4])
    assert smallest_subdivisions(net, need[12] - 1, "cpu") == (None, need[12])


def test_info_memory_prints_the_tables_and_the_subdivisions(tmp_path, capsys):
    from pydarknet.cli import main
    cfg = tmp_path / "small.cfg"
    cfg.write_text(CFG.format(filters=6))
    net = pydarknet.network.load_cfg_text(CFG.format(filters=6), init=False)
    fits = network_memory(net, 1, True, "cuda")[1]        # mini-batch 1 of batch 4 on cuda
    assert main(["info", str(cfg), "--memory", "--limit", str(fits)]) == 0
    out = capsys.readouterr().out
    assert "training, mini-batch 2" in out and "inference, batch 1" in out
    assert "cuda: smallest subdivisions that fits" in out and ": 4 (batch 4, mini-batch 1" in out
    assert main(["info", str(cfg), "--memory", "--limit", "1KB"]) == 0
    assert "does not fit in 1.0 KB even with subdivisions=4" in capsys.readouterr().out
    assert main(["info", str(cfg), "--memory", "--limit", "eight"]) == 2
    assert "memory size 'eight'" in capsys.readouterr().err


def test_parse_size():
    from pydarknet.memory import parse_size
    assert parse_size("8GB") == parse_size("8 GiB") == parse_size("8g") == 8 << 30
    assert parse_size("512MB") == 512 << 20 and parse_size("1000") == 1000
    for bad in ("", "0", "-1GB", "8XB", "GB"):
        with pytest.raises(pydarknet.PydarknetError):
            parse_size(bad)


def test_recurrent_layers_count_every_step_and_the_subdivisions_the_time_steps(ref):
    """rnn.train.cfg: a mini-batch is 16 sequences of 576 steps; one iteration measured
    2.2 GB on the CPU, the estimate is an upper bound near it."""
    import warnings
    from pydarknet.memory import memory_report, network_memory
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = pydarknet.Network(ref / "cfg" / "rnn.train.cfg", init=False)
    _, total = network_memory(net)
    assert 2.2e9 < total < 3.5e9
    report = memory_report(net, {"cpu": 4 << 30})
    assert "x time_steps 576 rows" in report and "8 (the cfg's)" in report


def test_a_resize_beyond_memory_is_refused_and_the_network_stays(monkeypatch):
    """random=1's resize checks what the new size needs beyond the buffers it frees."""
    net = pydarknet.network.load_cfg_text(CFG.format(filters=6))
    small, big = network_memory(net)[1], None
    net.resize(64, 64)
    big = network_memory(net)[1]
    net.resize(32, 32)
    monkeypatch.setattr(pydarknet.network, "available_host_memory", lambda: big - small)
    net.resize(64, 64)                  # exactly what the old buffers and the rest give
    net.resize(32, 32)
    monkeypatch.setattr(pydarknet.network, "available_host_memory", lambda: big - small - 1)
    with pytest.raises(pydarknet.PydarknetError, match=r"<cfg>:\d+: layer \d+ .* more than "
                       r"this machine's memory at 64x64 \(with the 32x32 buffers the resize "
                       r"frees\)"):
        net.resize(64, 64)
    assert net.input_shape == (3, 32, 32)
    assert np.asarray(net.forward(np.zeros((2, 3, 32, 32), np.float32))).shape[0] == 2


@pytest.mark.parametrize("size", [(0, 32), (-32, 32), (32.5, 32), ("64", 64), (True, 32)])
def test_sizes_must_be_positive_integers(size):
    net = pydarknet.network.load_cfg_text(CFG.format(filters=6), init=False)
    with pytest.raises(pydarknet.ShapeError, match=r"width must be a positive integer, found "):
        net.resize(*size)
    with pytest.raises(pydarknet.ShapeError, match=r"height must be a positive integer"):
        pydarknet.network.load_cfg_text(CFG.format(filters=6), init=False, height=size[0])
    net.resize(np.int64(64), 48)
    assert net.input_shape == (3, 48, 64)
