"""The layer table of every cfg in Darknet's corpus equals the one Darknet itself builds."""

import json
import re
import warnings

import numpy as np
import pytest

import pydarknet
from conftest import REF


def _index():
    path = REF / "shapes" / "index.json"
    if not path.exists():
        return []
    return json.loads(path.read_text())["cfgs"]


CFGS = _index()
PARSED = [e for e in CFGS if e["parsed_ok"]]
# AB's Darknet asserts against their shortcuts between spatial sizes; pjreddie's original
# builds them, and pydarknet does as it does (test_darknet_forward's PJREDDIE_CASES)
PJREDDIE_ONLY = {"resnet50.cfg", "resnet101.cfg", "resnet152.cfg", "resnext152-32x4d.cfg"}
FAILED = [e for e in CFGS if not e["parsed_ok"] and e["cfg"] not in PJREDDIE_ONLY]


def close(a, b):
    if isinstance(b, (list, tuple)):
        return isinstance(a, (list, tuple)) and len(a) == len(b) and all(
            close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        # the reference prints float32 values with 9 significant digits
        return np.float32(a) == np.float32(b) or abs(float(a) - float(b)) <= 1e-6 * abs(float(b))
    return a == b


def build(cfg_name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydarknet.Network(REF / "cfg" / cfg_name, batch=1, init=False)


def compare_tables(net, ref):
    problems = []
    ours = net.summary()
    if len(ours) != len(ref["layers"]):
        problems.append(f"{len(ours)} layers, Darknet has {len(ref['layers'])}")
    for a, b in zip(ours, ref["layers"]):
        where = f"layer {b['index']} ({b['type']})"
        for key, want in b.items():
            if key == "bflops":
                if abs(a["bflops"] - want) > 1e-3 * abs(want) + 1e-12:
                    problems.append(f"{where} bflops {a['bflops']} != {want}")
            elif key not in a:
                problems.append(f"{where} has no '{key}' (Darknet: {want})")
            elif not close(a[key], want):
                problems.append(f"{where} {key}: {a[key]} != {want}")
        problems += [f"{where} extra key '{k}'" for k in a if k not in b]
    if abs(net.total_bflops - ref["total_bflops"]) > 1e-3 * ref["total_bflops"]:
        problems.append(f"total BFLOPs {net.total_bflops} != {ref['total_bflops']}")
    ours_net = net.net.summary()
    for key, want in ref["net"].items():
        if key not in ours_net or not close(ours_net[key], want):
            problems.append(f"[net] {key}: {ours_net.get(key)} != {want}")
    return problems


def test_corpus_is_complete(ref):
    assert len(PARSED) == 86 and len(FAILED) + len(PJREDDIE_ONLY) == 9


@pytest.mark.parametrize("entry", PARSED, ids=[e["cfg"] for e in PARSED])
def test_layer_table_equals_darknet(ref, entry):
    net = build(entry["cfg"])
    table = json.loads((ref / "shapes" / entry["json"]).read_text())
    problems = compare_tables(net, table)
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize("name", sorted(PJREDDIE_ONLY))
def test_resnet_cfgs_build_as_pjreddies_darknet(ref, name):
    entry = next(e for e in CFGS if e["cfg"] == name)
    assert not entry["parsed_ok"] and "parse_shortcut" in entry["error"]
    net = build(name)
    resampled = [layer for layer in net.layers if getattr(layer, "resample", None)]
    assert resampled and all(layer.resample[:2] == (2, 1) for layer in resampled)
    assert net.layers[-1].out_c * net.layers[-1].out_h * net.layers[-1].out_w in (0, 1000)


@pytest.mark.parametrize("entry", FAILED, ids=[e["cfg"] for e in FAILED])
def test_text_cfgs_build_as_darknets_layer_table(ref, entry):
    """AB's Darknet builds the char-RNN cfgs' layers, prints its table, then divides by zero
    (no layer is an image); pjreddie's runs them. pydarknet builds the layers AB printed."""
    assert not entry["parsed_ok"] and "division by zero" in entry["error"]
    net = build(entry["cfg"])
    table = (ref / "shapes" / entry["cfg"].replace(".cfg", ".table.txt")).read_text()
    printed = []
    for line in table.splitlines():
        m = re.match(r"\s*(\d+) (\w+) Layer: (\d+) inputs, (\d+) outputs", line)
        if m:
            printed.append((m[2].lower(), int(m[3]), int(m[4])))
        m = re.match(r"\s*(\d+) CRNN Layer: (\d+) x (\d+) x (\d+) image, (\d+) filters", line)
        if m:
            w, h, c, f = map(int, m.groups()[1:])
            printed.append(("crnn", w * h * c, w * h * f))
        m = re.match(r"\s*(\d+) (connected|softmax|cost)\s+(\d+)(?:\s+->\s+(\d+))?", line)
        if m:
            printed.append((m[2], int(m[3]), int(m[4] or m[3])))
    ours = [(l.type, l.inputs, l.outputs) for l in net.layers]
    assert ours == printed
    # and they run: a character in, a distribution over the next one out, the state carried
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = pydarknet.Network(REF / "cfg" / entry["cfg"], batch=1)
    for char in b"Hi":
        x = np.zeros((1, net.net.inputs), np.float32)
        x[0, char] = 1
        y = net.predict(x).ravel()      # the [softmax]'s: Darknet's output skips a [cost]
        assert y.shape == (256,) and abs(float(y.sum()) - 1) < 1e-4 and (y >= 0).all()
