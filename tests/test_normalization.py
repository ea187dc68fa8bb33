"""[normalization] (LRN): Darknet's window sums and its backward. Its forward against AB
Darknet's own is in test_darknet_forward.py (``normalization``)."""

import numpy as np

from pydarknet.layers.normalization import window_matrix, window_sums
from pydarknet.network import load_cfg_text
from pydarknet.passes import backward_pass, forward_pass


def test_window_matrix_follows_darknets_recurrence():
    # size 5 over 6 channels: channel 2 (size/2) is never added, and is subtracted at channel 5
    m = window_matrix(6, 5)
    assert m.tolist() == [[1, 1, 0, 0, 0, 0],
                          [1, 1, 0, 1, 0, 0],
                          [1, 1, 0, 1, 1, 0],
                          [0, 1, 0, 1, 1, 1],
                          [0, 0, 0, 1, 1, 1],
                          [0, 0, -1, 1, 1, 1]]
    # size 3: channel 1 likewise
    assert window_matrix(4, 3).tolist() == [[1, 0, 0, 0], [1, 0, 1, 0], [0, 0, 1, 1],
                                            [0, -1, 1, 1]]


def test_window_sums_keep_the_rounding_of_darknets_running_sum():
    # size 3: channel 2's window drops channel 0 from a running sum that already rounded
    # 1e8 + 1 to 1e8, so Darknet's norms there are kappa-less 0.25 (a direct sum: 2.25)
    x = np.array([1e4, 0, 1, 0.5], np.float32).reshape(1, 4, 1, 1)
    norms = window_sums(x * x, 3, kappa=1.0, alpha=1.0).ravel()
    assert norms.dtype == np.float32
    assert norms.tolist() == [1e8, 1e8, 0.25, 0.25]
    # away from such cancellation they are the window matrix's sums
    x = np.random.default_rng(1).normal(size=(2, 6, 3, 2)).astype(np.float32)
    direct = 1.5 + 0.2 * np.einsum("kj,njhw->nkhw", window_matrix(6, 5), x.astype(np.float64) ** 2)
    np.testing.assert_allclose(window_sums(x * x, 5, 1.5, 0.2), direct, rtol=1e-6)


def test_backward_is_darknets_delta_times_the_scale_added():
    net = load_cfg_text("[net]\nbatch=2\nwidth=5\nheight=4\nchannels=6\n"
                        "[lrn]\nsize=3\nalpha=0.2\nbeta=0.75\nkappa=1.5\n", batch=2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 4, 5)).astype(np.float32)
    state = forward_pass(net, x, train=True)
    squares = x.astype(np.float64) ** 2
    norms = 1.5 + 0.2 * np.einsum("kj,njhw->nkhw", window_matrix(6, 3), squares)
    np.testing.assert_allclose(state.outputs[0], x * norms ** -0.75, rtol=1e-6)
    delta = rng.normal(size=x.shape).astype(np.float32)
    state.deltas[0][...] = delta
    dx = np.full(x.shape, 0.25, np.float32)         # backward adds to what is there
    layer = net.layers[0]
    layer.input_delta = lambda state: dx
    backward_pass(net, state)
    np.testing.assert_allclose(dx, 0.25 + delta * norms ** -0.75, rtol=1e-5)
