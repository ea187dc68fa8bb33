"""AB's rejection of [yolo] deltas late in training ([net] num_sigmas_reject_badlabels,
badlabels_rejection_percentage, equidistant_point; pydarknet.layers.yolo_reject) equals AB
Darknet's own forward_yolo_layer over consecutive passes, its rolling statistics carried.

tests/data/darknet_yolo_reject.npz holds what AB Darknet 59596d7 (CPU build) wrote for each
case of ``CASES``: ``PASSES`` training forwards of the [yolo] layer at the case's iteration
(``*net.cur_iteration``), each pass's ``l.delta`` and ``l.cost[0]``;
tools/darknet_heads_oracle.py regenerates it.
"""

import pathlib

import numpy as np
import pytest

from pydarknet.network import load_cfg_text

ORACLE = pathlib.Path(__file__).parent / "data" / "darknet_yolo_reject.npz"
PASSES = 4

HEAD = """[net]
batch=2
width=8
height=8
channels=24
max_batches=400
{options}
[yolo]
mask=0,1,2
anchors=1,1.5, 2,2, 3,2.5, 4,4, 5,6, 7,7
classes=3
num=6
max=8
ignore_thresh=.5
iou_loss=ciou
iou_normalizer=0.07
"""

CASES = {
    "sigmas": dict(options="num_sigmas_reject_badlabels=1", iteration=350),
    "percentage": dict(options="badlabels_rejection_percentage=5", iteration=320),
    "equidistant": dict(options="equidistant_point=100", iteration=250),
    "all": dict(options="num_sigmas_reject_badlabels=0.5\nbadlabels_rejection_percentage=2\n"
                        "equidistant_point=200", iteration=390),
    "percentage_rises": dict(options="badlabels_rejection_percentage=0.5", iteration=330,
                             scales=(0.1, 2, 2, 2)),     # larger deltas after the first pass
    "not_yet": dict(options="num_sigmas_reject_badlabels=2\nbadlabels_rejection_percentage=2",
                    iteration=300),
}


def cfg_text(name):
    return HEAD.format(options=CASES[name]["options"])


def case_inputs(name):
    """(inputs [PASSES, 2, 24, 8, 8], truths [PASSES, 2, 8, 6]) of a case."""
    rng = np.random.default_rng(sorted(CASES).index(name))
    x = rng.uniform(-4, 4, (PASSES, 2, 24, 8, 8)).astype(np.float32)
    x *= np.float32(CASES[name].get("scales", (1,) * PASSES))[:, None, None, None, None]
    truths = np.zeros((PASSES, 2, 8, 6), np.float32)
    for p in range(PASSES):
        for b in range(2):
            k = int(rng.integers(2, 8))
            truths[p, b, :k, :2] = rng.uniform(0.1, 0.9, (k, 2))
            truths[p, b, :k, 2:4] = rng.uniform(0.05, 0.8, (k, 2))
            truths[p, b, :k, 4] = rng.integers(0, 3, k)
    return x, truths


def run_case(name):
    """pydarknet's deltas and costs of the case's passes, one network carrying the rolling
    statistics."""
    net = load_cfg_text(cfg_text(name))
    net.iteration = CASES[name]["iteration"]
    x, truths = case_inputs(name)
    deltas, costs = [], []
    for p in range(PASSES):
        net.forward(x[p], train=True, truths=truths[p])
        deltas.append(np.array(net.deltas[0]).reshape(-1))
        costs.append(net.layers[0].cost)
    return deltas, costs


def plain_deltas(name):
    net = load_cfg_text(HEAD.format(options=""))
    x, truths = case_inputs(name)
    out = []
    for p in range(PASSES):
        net.forward(x[p], train=True, truths=truths[p])
        out.append(np.array(net.deltas[0]).reshape(-1))
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_rejected_deltas_equal_darknets(name):
    if not ORACLE.exists():
        pytest.skip(f"{ORACLE} missing: run tools/darknet_heads_oracle.py")
    want = np.load(ORACLE)
    deltas, costs = run_case(name)
    rejected = 0
    for p, (delta, plain) in enumerate(zip(deltas, plain_deltas(name))):
        np.testing.assert_allclose(delta, want[f"{name}_delta"][p], rtol=1e-5, atol=1e-6,
                                   err_msg=f"pass {p}")
        assert costs[p] == pytest.approx(float(want[f"{name}_cost"][p]), rel=1e-5)
        rejected += int(np.count_nonzero(plain) - np.count_nonzero(delta))
    assert (rejected > 0) == (name != "not_yet")
