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
    cuda = layer_memory(net.layers[2], 1, False, device="cuda:0")
    assert cuda.workspace == 8 * 16 * 16 * 4             # the im2col columns of 1x1 over 8 ch


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
