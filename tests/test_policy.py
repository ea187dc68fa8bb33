"""Darknet's learning-rate policies (AB's get_current_rate) against hand-computed values."""

import math

import pytest

from pydarknet.cfg import parse_cfg_text
from pydarknet.net_options import NetOptions
from pydarknet.train.policy import learning_rate


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
