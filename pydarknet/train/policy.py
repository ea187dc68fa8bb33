"""Darknet's learning-rate schedule (AB's get_current_rate), evaluated for update number k.

The arithmetic is Darknet's, type for type: the cfg's numbers are C floats, ``(float)k /
burn_in`` and ``1 - (float)k / max_batches`` are float divisions, ``pow``, ``exp`` and ``cos``
work in double, and the rate returned is a float (the same libm functions: bit for bit).
"""

import math

import numpy as np

_F = np.float32


def _float(x):
    """A C double returned as a C float."""
    return float(_F(x))


def learning_rate(net, batch_num, rng=None):
    """Rate used by the update whose images bring ``seen`` to ``batch_num`` full batches.

    ``net`` is the [net] options (pydarknet.net_options.NetOptions). Burn-in first:
    lr * (k / burn_in) ** power for k < burn_in; then the policy.
    """
    k = int(batch_num)
    lr, power = float(_F(net.learning_rate)), float(_F(net.power))
    if k < net.burn_in:
        return _float(lr * _pow(float(_F(k) / _F(net.burn_in)), power))
    policy = net.policy
    if policy == "constant":
        return lr
    if policy == "step":
        return _float(lr * _pow(float(_F(net.scale)), k // net.step))
    if policy == "steps":
        rate = _F(lr)
        for step, scale in zip(net.steps, net.scales):
            if step > k:
                break
            rate = rate * _F(scale)           # a float product, rounded at each step
        return float(rate)
    if policy == "exp":
        return _float(lr * _pow(float(_F(net.gamma)), k))
    if policy == "poly":
        if not net.max_batches:
            return lr
        return _float(lr * _pow(float(_F(1) - _F(k) / _F(net.max_batches)), power))
    if policy == "random":
        rng = rng or np.random.default_rng()
        return _float(lr * _pow(float(rng.uniform(0, 1)), power))
    if policy == "sigmoid":
        return _float(lr * (1.0 / (1.0 + _exp(float(_F(net.gamma) * _F(k - net.step))))))
    if policy == "sgdr":
        start, cycle = 0, net.sgdr_cycle
        while start + cycle < k:
            start += cycle
            cycle *= net.sgdr_mult
        lr_min = _F(net.learning_rate_min)
        return _float(float(lr_min) + 0.5 * float(_F(lr) - lr_min)
                      * (1.0 + math.cos(float(_F(k - start)) * 3.14159265 / cycle)))
    raise ValueError(f"unknown learning-rate policy {policy!r}")


def _exp(x):
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _pow(base, exponent):
    """C's pow, except that a negative base to a fractional power (poly past max_batches,
    where training has stopped) gives 0 instead of NaN."""
    try:
        return math.pow(base, exponent)
    except ValueError:
        return 0.0
    except OverflowError:
        return math.inf
