"""Darknet's visualize: each convolutional layer's filters as one image (pydarknet.visualize).
Checked against AB's own `darknet visualize` on yolov4-tiny (equal up to the two JPEG
encoders: mean difference under 1.3 of 255, every layer); here its layout by construction."""

import cv2
import numpy as np

from pydarknet.network import load_cfg_text
from pydarknet.visualize import filter_montage


def test_grey_filters_are_rows_of_channels_one_pixel_apart():
    w = np.zeros((2, 2, 3, 3), np.float32)
    w[0, 0] = 1                            # filter 0: channel 0 its maximum, channel 1 its minimum
    w[1] = np.arange(18, dtype=np.float32).reshape(2, 3, 3)
    m = filter_montage(w)
    assert m.shape == (2 * 4 - 1, 2 * 4 - 1)
    assert (m[3, :] == 0).all() and (m[:, 3] == 0).all()             # the borders
    np.testing.assert_array_equal(m[0:3, 0:3], 1)
    np.testing.assert_array_equal(m[0:3, 4:7], 0)
    np.testing.assert_allclose(m[4:7, 0:3], np.arange(9).reshape(3, 3) / 17, rtol=1e-6)
    np.testing.assert_allclose(m[4:7, 4:7], np.arange(9, 18).reshape(3, 3) / 17, rtol=1e-6)


def test_three_channel_filters_are_in_colour_and_a_constant_one_keeps_its_values():
    w = np.zeros((3, 3, 1, 2), np.float32)
    w[0, 0] = 1                    # red
    w[1] = 0.25                    # constant: normalize_image leaves it (min 0, max 1)
    w[2, 2] = 5                    # blue
    m = filter_montage(w)
    assert m.shape == (3 * 2 - 1, 2, 3)
    np.testing.assert_array_equal(m[0, 0], [1, 0, 0])
    np.testing.assert_array_equal(m[2, 0], [0.25, 0.25, 0.25])
    np.testing.assert_array_equal(m[4, 0], [0, 0, 1])
    assert (m[1] == 0).all() and (m[3] == 0).all()


def test_cli_writes_a_jpeg_per_convolutional_layer(tmp_path):
    from pydarknet.cli import main
    text = ("[net]\nwidth=16\nheight=16\nchannels=3\n[convolutional]\nfilters=4\nsize=3\n"
            "activation=leaky\n[maxpool]\nsize=2\nstride=2\n[convolutional]\nfilters=2\n"
            "size=1\ngroups=2\n")
    (tmp_path / "n.cfg").write_text(text)
    net = load_cfg_text(text, batch=1)
    net.save_weights(tmp_path / "n.weights")
    assert main(["visualize", str(tmp_path / "n.cfg"), str(tmp_path / "n.weights"), "--out",
                 str(tmp_path / "v")]) == 0
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == ["Layer 0.jpg", "Layer 2.jpg"]
    first = cv2.imread(str(tmp_path / "v" / "Layer 0.jpg"))
    assert first.shape == (4 * 4 - 1, 3, 3)
    want = (255 * filter_montage(net.layers[0].params["weights"])).astype(np.uint8)[:, :, ::-1]
    jpeg = cv2.imencode(".jpg", want, [cv2.IMWRITE_JPEG_QUALITY, 80])[1]
    np.testing.assert_array_equal(first, cv2.imdecode(jpeg, cv2.IMREAD_COLOR))
    last = cv2.imread(str(tmp_path / "v" / "Layer 2.jpg"), cv2.IMREAD_UNCHANGED)
    assert last.shape == (2 * 2 - 1, 2 * 2 - 1)                         # 2 filters of 2 channels
