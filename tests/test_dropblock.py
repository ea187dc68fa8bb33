"""[dropout] dropblock=1: AB's GPU DropBlock (forward_dropout_layer_gpu and its backward).

Darknet draws with cuRAND, so the draws cannot be compared; what is checked is what Darknet does
with them: the schedule (probability and block size grow to 85% of max_batches), at most one
block per channel and image, where it starts and how it moves inside, the per-image scale
1 / (1 - dropped fraction), the unscaled backward and parse_dropout's size rules.
"""

import numpy as np
import pytest

from pydarknet.network import load_cfg_text
from pydarknet.passes import PassState

f32 = np.float32


def net_with(options, w=12, h=10, max_batches=1000):
    return load_cfg_text(f"[net]\nbatch=2\nwidth={w}\nheight={h}\nchannels=3\n"
                         f"max_batches={max_batches}\nlearning_rate=0.001\n"
                         f"[convolutional]\nfilters=4\nsize=1\nactivation=linear\n"
                         f"[dropout]\n{options}\n[avgpool]\n[softmax]\n[cost]\n")


def test_sizes_follow_parse_dropout():
    assert net_with("dropblock=1\nprobability=0.1").layers[1].dropblock_size_abs == 7
    big = net_with("dropblock=1\ndropblock_size_abs=30").layers[1]
    assert big.dropblock_size_abs == 10                  # min(w, h)
    both = net_with("dropblock=1\ndropblock_size_abs=3\ndropblock_size_rel=0.5").layers[1]
    assert (both.dropblock_size_abs, both.dropblock_size_rel) == (3, 0)


def run_dropblock(layer, x, iteration, max_batches, seed):
    state = PassState(None, x, train=True)
    from pydarknet.backend import get_backend
    state.backend = get_backend("cpu")
    state.rng = np.random.default_rng(seed)
    state.iteration, state.max_batches = iteration, max_batches
    out = np.array(layer.forward(x, state))
    return out, state


@pytest.mark.parametrize("iteration, size", [(850, 4), (425, 2), (2000, 4)])
def test_one_block_per_channel_scaled_per_image(iteration, size):
    layer = net_with("dropblock=1\ndropblock_size_abs=4\nprobability=0.5").layers[1]
    x = np.random.default_rng(0).uniform(1, 2, (2, 4, 10, 12)).astype(f32)
    out, _ = run_dropblock(layer, x, iteration, 1000, seed=3)
    mult = min(iteration / f32(850), 1)
    assert size == max(1, int(4 * mult))
    zero = out == 0
    for b in range(2):
        for f in range(4):
            ys, xs = np.nonzero(zero[b, f])
            if ys.size:           # one size x size square inside the image
                assert ys.size == size * size
                assert ys.max() - ys.min() == size - 1 and xs.max() - xs.min() == size - 1
        dropped = zero[b].sum()
        scale = f32(1) / (f32(1) - f32(dropped) / f32(4 * 10 * 12))
        kept = ~zero[b]
        np.testing.assert_allclose(out[b][kept], x[b][kept] * scale, rtol=1e-6)
    assert zero.any()


def test_nothing_is_dropped_at_the_start():
    layer = net_with("dropblock=1\nprobability=0.5").layers[1]
    x = np.ones((2, 4, 10, 12), f32)
    out, _ = run_dropblock(layer, x, 0, 1000, seed=1)       # probability x 0
    np.testing.assert_array_equal(out, x)


def test_the_block_starts_at_the_lowest_draw_moved_inside():
    """Darknet's rule: a start past w - size moves back by w - size (then is clamped)."""
    layer = net_with("dropblock=1\ndropblock_size_abs=3\nprobability=0.9").layers[1]
    x = np.ones((1, 4, 10, 12), f32)
    out, _ = run_dropblock(layer, x, 1000, 1000, seed=7)
    draws = np.random.default_rng(7).random((1, 4, 120), dtype=np.float32)
    for f in range(4):
        low = int(draws[0, f].argmin())
        if draws[0, f, low] >= f32(0.9) / f32(9):
            assert (out[0, f] != 0).all()
            continue
        bx, by = low % 12, low // 12
        bx = bx - 9 if bx > 9 else bx
        by = by - 7 if by > 7 else by
        assert (out[0, f, by:by + 3, bx:bx + 3] == 0).all()
        assert (out[0, f] == 0).sum() == 9


def test_backward_zeroes_the_dropped_places_unscaled():
    layer = net_with("dropblock=1\ndropblock_size_abs=3\nprobability=0.9").layers[1]
    x = np.random.default_rng(2).uniform(1, 2, (2, 4, 10, 12)).astype(f32)
    out, state = run_dropblock(layer, x, 1000, 1000, seed=5)
    delta = np.random.default_rng(3).standard_normal(x.shape).astype(f32)
    state.deltas = [np.zeros_like(x), delta]
    layer.index = 1
    layer.backward(state)
    np.testing.assert_array_equal(state.deltas[0], np.where(out == 0, f32(0), delta))


def test_dropblock_network_trains():
    net = net_with("dropblock=1\ndropblock_size_abs=2\nprobability=0.3", max_batches=10)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 10, 12)).astype(f32)
    t = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], f32)
    losses = [net.train_iteration(x, t) for _ in range(12)]
    assert np.isfinite(losses).all()
    net.forward(x)                                         # inference: the identity
    np.testing.assert_array_equal(np.array(net.outputs[1]).reshape(2, -1),
                                  np.array(net.outputs[0]).reshape(2, -1))
