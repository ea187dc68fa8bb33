"""Darknet's learning-rate policies (AB's get_current_rate) against hand-computed values and
against AB's own function on 150 random schedules (tests/data/darknet_rates.json, written by
tools/darknet_rate_oracle.py), bit for bit as C floats."""

import json
import math
import pathlib
import sys
import warnings

import pytest

from pydarknet.cfg import CfgWarning, parse_cfg_text
from pydarknet.errors import PydarknetError
from pydarknet.net_options import NetOptions
from pydarknet.train.policy import learning_rate

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from darknet_rate_oracle import ORACLE, pydarknet_rates, same_rate  # noqa: E402


def net(extra):
    return NetOptions(parse_cfg_text("[net]\nwidth=8\nheight=8\nchannels=3\nlearning_rate=0.1\n"
                                     + extra, "p.cfg")[0])


@pytest.mark.parametrize("extra,k,want", [
    ("policy=constant\n", 500, 0.1),
    ("policy=step\nstep=100\nscale=0.5\n", 250, 0.1 * 0.25),
    ("policy=step\nstep=100\nscale=0.5\n", 99, 0.1),
    ("policy=steps\nsteps=100,200\nscales=.1,.5\n", 99, 0.1),
    ("policy=steps\nsteps=100,200\nscales=.1,.5\n", 100, 0.01),
    ("policy=steps\nsteps=100,200\nscales=.1,.5\n", 250, 0.005),
    ("policy=exp\ngamma=0.99\n", 10, 0.1 * 0.99 ** 10),
    ("policy=poly\npower=4\nmax_batches=1000\n", 250, 0.1 * 0.75 ** 4),
    ("policy=poly\npower=2\nmax_batches=1000\n", 0, 0.1),
    ("policy=sigmoid\ngamma=0.1\nstep=50\n", 40, 0.1 / (1 + math.exp(0.1 * -10))),
    ("policy=sgdr\nsgdr_cycle=100\nlearning_rate_min=0.001\n", 50,
     0.001 + 0.5 * 0.099 * (1 + math.cos(50 * 3.14159265 / 100))),
    # cycles 0-100, then 100-300 (cycle doubles with sgdr_mult=2)
    ("policy=sgdr\nsgdr_cycle=100\nlearning_rate_min=0.001\n", 150,
     0.001 + 0.5 * 0.099 * (1 + math.cos(50 * 3.14159265 / 200))),
    # with sgdr_mult=3: 0-100, 100-400 (ends at lr_min), then 400-1300
    ("policy=sgdr\nsgdr_cycle=100\nsgdr_mult=3\nlearning_rate_min=0\n", 400, 0.0),
    ("policy=sgdr\nsgdr_cycle=100\nsgdr_mult=3\nlearning_rate_min=0\n", 401,
     0.5 * 0.1 * (1 + math.cos(1 * 3.14159265 / 900))),
])
def test_policy(extra, k, want):
    assert learning_rate(net(extra), k) == pytest.approx(want, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("k", [1, 2, 500, 999])
def test_burn_in(k):
    n = net("policy=steps\nsteps=10,20\nscales=.1,.1\nburn_in=1000\npower=4\n")
    assert learning_rate(n, k) == pytest.approx(0.1 * (k / 1000) ** 4, rel=1e-6)
    assert learning_rate(n, 1000) == pytest.approx(0.001, rel=1e-6)   # burn-in ends, steps rule


def test_random_policy_is_bounded():
    n = net("policy=random\npower=1\n")
    import numpy as np
    rng = np.random.default_rng(0)
    values = [learning_rate(n, 5, rng) for _ in range(50)]
    assert all(0 <= v <= 0.1 for v in values) and len(set(values)) > 10


def test_rates_equal_darknets_bit_for_bit():
    cases = json.loads(ORACLE.read_text())
    policies = {c["policy"] for c in cases}
    assert policies == {"constant", "step", "steps", "exp", "poly", "sigmoid", "sgdr"}
    for case in cases:
        got = pydarknet_rates(case["policy"], case["options"], case["k"])
        for k, g, w in zip(case["k"], got, case["rates"]):
            assert same_rate(g, w), (case["policy"], case["options"], k, g, w)


@pytest.mark.parametrize("extra,option", [
    ("policy=step\nstep=0\n", "step"),                       # Darknet divides by zero
    ("policy=sgdr\nsgdr_cycle=0\n", "sgdr_cycle"),           # Darknet loops for ever
    ("policy=sgdr\n", "max_batches"),                         # the cycle's default: 0 here
    ("policy=sgdr\nsgdr_cycle=10\nsgdr_mult=0\n", "sgdr_mult")])
def test_schedules_without_a_value_are_refused_for_training(extra, option):
    n = net(extra)
    fix = "sgdr_cycle" if option == "max_batches" else option
    with pytest.raises(PydarknetError, match=f"set {fix} >= 1") as e:
        n.check_trainable()
    assert e.value.option == option


def test_fewer_scales_than_steps_warn():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        n = net("policy=steps\nsteps=100,200\nscales=.1\n")
    assert any(issubclass(w.category, CfgWarning) and "steps= has 2 values but scales= 1"
               in str(w.message) for w in caught)
    assert n.scales == [pytest.approx(0.1), 1.0]
    assert learning_rate(n, 250) == pytest.approx(0.01, rel=1e-6)
