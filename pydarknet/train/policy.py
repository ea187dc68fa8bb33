"""Darknet's learning-rate schedule (AB's get_current_rate), evaluated for update number k."""

import math

import numpy as np


def learning_rate(net, batch_num, rng=None):
    """Rate used by the update whose images bring ``seen`` to ``batch_num`` full batches.

    ``net`` is the [net] options (pydarknet.net_options.NetOptions). Burn-in first:
    lr * (k / burn_in) ** power for k < burn_in; then the policy.
    """
    lr = net.learning_rate
    if batch_num < net.burn_in:
        return float(np.float32(lr) * np.float32(pow(batch_num / net.burn_in, net.power)))
    policy = net.policy
    if policy == "constant":
        return lr
    if policy == "step":
        return lr * pow(net.scale, batch_num // net.step)
    if policy == "steps":
        rate = lr
        for step, scale in zip(net.steps, net.scales):
            if step > batch_num:
                return rate
            rate *= scale
        return rate
    if policy == "exp":
        return lr * pow(net.gamma, batch_num)
    if policy == "poly":
        return lr * pow(1 - batch_num / net.max_batches, net.power) if net.max_batches else lr
    if policy == "random":
        rng = rng or np.random.default_rng()
        return lr * pow(float(rng.uniform(0, 1)), net.power)
    if policy == "sigmoid":
        return lr * (1.0 / (1.0 + math.exp(net.gamma * (batch_num - net.step))))
    if policy == "sgdr":
        start, cycle = 0, net.sgdr_cycle
        while start + cycle < batch_num:
            start += cycle
            cycle *= net.sgdr_mult
        return net.learning_rate_min + 0.5 * (lr - net.learning_rate_min) * (
            1.0 + math.cos((batch_num - start) * 3.14159265 / cycle))
    raise ValueError(f"unknown learning-rate policy {policy!r}")
