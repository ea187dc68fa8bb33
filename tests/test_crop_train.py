"""[crop] while training: Darknet's GPU build's random crop, flip, turn and recolouring
(``forward_crop_layer_gpu``), and an empty backward."""

import numpy as np
import pytest

from pydarknet.network import load_cfg_text
from pydarknet.passes import PassState

NET = "[net]\nbatch={n}\nwidth={w}\nheight={h}\nchannels={c}\n\n"


def crop_layer(options, n=4, w=10, h=8, c=3):
    return load_cfg_text(NET.format(n=n, w=w, h=h, c=c) + "[crop]\n" + options).layers[0]


def train_forward(layer, x, seed=0):
    state = PassState(__import__("pydarknet").backend.get_backend("cpu"), None, train=True)
    state.rng = np.random.default_rng(seed)
    return np.array(layer.forward(x, state))


def uniforms(n, seed=0):
    return np.random.default_rng(seed).random((n, 8), dtype=np.float32)


def image(n=4, c=3, h=8, w=10, seed=1):
    return np.random.default_rng(seed).random((n, c, h, w), dtype=np.float32)


def test_whole_image_without_changes_is_scaled_to_minus_one_one():
    """(up to the rounding of the HSV round trip, which Darknet makes too)"""
    layer = crop_layer("crop_width=10\ncrop_height=8\n")
    x = image()
    assert np.allclose(train_forward(layer, x), x * 2 - 1, atol=1e-6)
    layer = crop_layer("crop_width=10\ncrop_height=8\nnoadjust=1\n")
    assert np.allclose(train_forward(layer, x), x, atol=1e-6)


def test_flip_mirrors_the_images_whose_draw_is_above_one_half():
    layer = crop_layer("crop_width=10\ncrop_height=8\nflip=1\n", n=16)
    x = image(16)
    out = train_forward(layer, x)
    flipped = uniforms(16)[:, 6] > 0.5
    assert 0 < flipped.sum() < 16
    assert np.allclose(out[flipped], x[flipped, :, :, ::-1] * 2 - 1, atol=1e-6)
    assert np.allclose(out[~flipped], x[~flipped] * 2 - 1, atol=1e-6)


def test_random_place_samples_bilinearly_at_the_drawn_offset():
    layer = crop_layer("crop_width=4\ncrop_height=3\n")
    x = image()
    out = train_forward(layer, x)
    r = uniforms(4)
    for b in range(4):
        dw, dh = (10 - 4) * r[b, 4], (8 - 3) * r[b, 5]
        ix, iy = int(np.floor(dw)), int(np.floor(dh))
        fx, fy = dw - ix, dh - iy
        win = x[b] * 2 - 1
        want = ((1 - fy) * (1 - fx) * win[:, iy:iy + 3, ix:ix + 4]
                + fy * (1 - fx) * win[:, iy + 1:iy + 4, ix:ix + 4]
                + (1 - fy) * fx * win[:, iy:iy + 3, ix + 1:ix + 5]
                + fy * fx * win[:, iy + 1:iy + 4, ix + 1:ix + 5])
        assert np.allclose(out[b], want, atol=1e-6)


def test_turning_keeps_the_centre_and_leaves_zeros_outside():
    layer = crop_layer("crop_width=9\ncrop_height=9\nangle=90\nnoadjust=1\n", w=9, h=9)
    x = np.ones((4, 3, 9, 9), np.float32)
    out = train_forward(layer, x)
    assert np.allclose(out[:, :, 4, 4], 1)           # the centre turns onto itself
    angles = (2 * np.pi / 2 * uniforms(4)[:, 7] - np.pi / 2)
    turned = np.abs(angles) > 0.2
    assert turned.any() and (out[turned] < 0.5).any()  # corners turned out of the image
    assert out.min() >= 0 and out.max() <= 1 + 1e-6


def test_exposure_scales_the_value_of_grey_pixels_and_clips():
    layer = crop_layer("crop_width=10\ncrop_height=8\nexposure=2\nnoadjust=1\n", n=8)
    x = np.full((8, 3, 8, 10), 0.3, np.float32)
    out = train_forward(layer, x)
    r = uniforms(8)
    f = r[:, 2] * 1 + 1
    f = np.where(r[:, 3] > 0.5, 1 / f, f)
    want = np.clip(0.3 * f, 0, 1)
    assert np.allclose(out, want[:, None, None, None], rtol=1e-6)


def test_saturation_keeps_the_value_and_hue():
    layer = crop_layer("crop_width=10\ncrop_height=8\nsaturation=1.5\nnoadjust=1\n", n=8)
    x = image(8) * 0.6 + 0.2
    out = train_forward(layer, x)
    assert np.allclose(out.max(axis=1), x.max(axis=1), rtol=1e-5)     # V
    # the hue's sector: the largest and the smallest channel stay where they were
    assert np.array_equal(out.argmax(axis=1), x.argmax(axis=1))
    assert np.array_equal(out.argmin(axis=1), x.argmin(axis=1))
    assert not np.allclose(out, x, atol=1e-3)


def test_a_crop_network_trains_and_its_inference_is_the_centre_crop():
    text = (NET.format(n=2, w=12, h=12, c=3) + "[crop]\ncrop_width=8\ncrop_height=8\nflip=1\n"
            "angle=7\nsaturation=1.5\nexposure=1.5\n\n[convolutional]\nfilters=4\nsize=3\n"
            "pad=1\nactivation=leaky\n\n[avgpool]\n\n[softmax]\n\n[cost]\n")
    net = load_cfg_text(text.replace("batch=2", "batch=2\nlearning_rate=0.1"))
    x = image(2, h=12, w=12)
    truth = np.eye(4, dtype=np.float32)[[1, 3]]
    before = net.layers[1].params["weights"].copy()
    loss = net.train_iteration(x, truth)
    assert np.isfinite(loss) and not np.array_equal(before, net.layers[1].params["weights"])
    net.forward(x)
    assert np.array_equal(net.outputs[0], x[:, :, 2:10, 2:10] * 2 - 1)


@pytest.mark.parametrize("c", [1, 4])
def test_other_channel_counts_are_cropped_without_recolouring(c):
    layer = crop_layer("crop_width=10\ncrop_height=8\nsaturation=2\nexposure=2\n", c=c)
    x = image(c=c)
    assert np.array_equal(train_forward(layer, x), x * 2 - 1)
