"""The project's own cfg/ files build exactly the layer tables Darknet builds for its cfgs."""

import json
import warnings

import pytest

import pydarknet
from conftest import ROOT
from test_shapes import compare_tables

OWN = ["yolov4", "yolov4-tiny", "yolov4-csp", "yolov4x-mish", "csdarknet53-omega", "darknet53"]


@pytest.mark.parametrize("name", OWN)
def test_own_cfg_equals_darknets(ref, name):
    path = ROOT / "cfg" / f"{name}.cfg"
    assert path.exists(), f"cfg/{name}.cfg is missing"
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # our own cfgs carry no unused or repeated options
        net = pydarknet.Network(path, batch=1, init=False)
    table = json.loads((ref / "shapes" / f"{name}.json").read_text())
    problems = compare_tables(net, table)
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize("name", OWN)
def test_own_cfg_is_not_a_copy(ref, name):
    ours = (ROOT / "cfg" / f"{name}.cfg").read_text()
    theirs = (ref / "cfg" / f"{name}.cfg").read_text()
    assert ours != theirs
