"""AB's classifier validation commands (valid, validcrop, valid10, validmulti, validfull):
the scores each sums over its views of an image, against AB Darknet's own (its image
functions, resize_network and network_predict, through tools/darknet_classifier_oracle.c:
tests/data/darknet_eval.npz, from tools/darknet_eval_oracle.py), and the commands end to
end."""

import pathlib

import cv2
import numpy as np
import pytest

from pydarknet.errors import ShapeError
from pydarknet.eval.classify import VIEWS, image_scores, validate
from pydarknet.image import read_bgr
from pydarknet.network import load_cfg_text

ORACLE = pathlib.Path(__file__).parent / "data" / "darknet_eval.npz"

# A fully convolutional classifier (global average pooling last): AB's resize_network resizes
# every one of its layers ([softmax] and [connected] it cannot, so validmulti and validfull
# run only on such networks in AB)
CFG = """
[net]
width=32
height=24
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=mish

[convolutional]
filters=5
size=1
stride=1
pad=1
activation=linear

[avgpool]
"""

# (height, width): wider, taller, the network's size, smaller than it, odd sizes
IMAGE_SIZES = [(40, 50), (61, 37), (24, 32), (17, 23), (45, 90)]
MODES = {"single": "valid", "crop": "validcrop", "10": "valid10", "multi": "validmulti",
         "full": "validfull"}


def oracle_inputs():
    """The network (its parameters drawn from a fixed seed, batch-norm statistics spread so
    every layer matters) and the images (smooth noise, so resizing matters)."""
    net = load_cfg_text(CFG, batch=1)
    rng = np.random.default_rng(7)
    for layer in net.layers:
        for k, v in layer.params.items():
            v[...] = (rng.uniform(0.5, 1.5, v.shape) if k in ("scales", "rolling_variance")
                      else rng.normal(0, 0.5, v.shape))
    images = [cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), np.uint8), (3, 3), 0)
              for h, w in IMAGE_SIZES]
    return net, images


@pytest.fixture(scope="module")
def oracle():
    if not ORACLE.exists():
        pytest.skip(f"{ORACLE} missing: python tools/darknet_eval_oracle.py DARKNET")
    return np.load(ORACLE)


@pytest.mark.parametrize("mode", list(MODES))
def test_scores_match_darknet(mode, oracle, tmp_path):
    net, images = oracle_inputs()
    want = oracle[f"classifier_{mode}"]
    assert want.shape == (len(images), 5)
    for i, img in enumerate(images):
        p = tmp_path / f"{i}.png"              # lossless: the pixels Darknet read
        cv2.imwrite(str(p), img)
        got = image_scores(net, read_bgr(p), mode)
        np.testing.assert_allclose(got.reshape(-1), want[i], rtol=1e-4,
                                   atol=1e-4 * np.abs(want[i]).max(),
                                   err_msg=f"{MODES[mode]}, image {i} {IMAGE_SIZES[i]}")
        assert net.input_shape == (3, 24, 32)  # back at its own size


def test_ten_crops_and_scales_geometry():
    img = np.zeros((30, 60, 3), np.uint8)
    crops = VIEWS["10"](img, 32, 24)
    assert len(crops) == 10 and all(c.shape == (3, 24, 32) for c in crops)
    scales = VIEWS["multi"](img, 32, 24)
    assert [v.shape for v in scales[::2]] == [(3, s, 2 * s) for s in (224, 288, 320, 352, 384)]
    np.testing.assert_array_equal(scales[1], scales[0][:, :, ::-1])
    assert VIEWS["full"](img, 32, 24)[0].shape == (3, 32, 64)


def test_a_network_with_input_sized_parameters_refuses_to_resize(tmp_path):
    cfg = CFG.replace("[avgpool]", "[connected]\noutput=3\nactivation=linear")
    net = load_cfg_text(cfg, batch=1)
    img = np.zeros((30, 60, 3), np.uint8)
    with pytest.raises(ShapeError, match=r"layer 4 \[connected\] has parameters sized by its "
                                         r"input \(32x24\)"):
        image_scores(net, img, "full")
    assert net.input_shape == (3, 24, 32)      # unchanged, and still runs
    assert image_scores(net, img, "single").shape == (3,)
    with pytest.raises(ValueError, match="one of single, crop, 10, multi, full"):
        image_scores(net, img, "twelve")


@pytest.mark.parametrize("mode", list(MODES))
def test_validate_modes(mode, tmp_path):
    net, images = oracle_inputs()
    names = ["a", "b", "c", "d", "e"]
    paths = []
    for i, img in enumerate(images * 2):
        p = tmp_path / f"{i}_{names[i % 5]}.png"
        cv2.imwrite(str(p), img)
        paths.append(str(p))
    r = validate(net, paths, names, top=2, batch_size=3, mode=mode)
    assert r["images"] == 10 and r["skipped"] == 0
    want = [int(np.argmax(image_scores(net, read_bgr(p), mode))) == i % 5
            for i, p in enumerate(paths)]
    assert r["top1"] == pytest.approx(np.mean(want))
    assert net.input_shape == (3, 24, 32)


def test_predict_refuses_a_network_whose_outputs_are_not_the_classes(tmp_path, capsys):
    """5 scores for 3 class names: an error that says so (Darknet reads past its names;
    tools/cli_input_fuzz.py --classifier found an IndexError here)."""
    from pydarknet.cli import main
    net, images = oracle_inputs()
    (tmp_path / "c.cfg").write_text(CFG)
    net.save_weights(str(tmp_path / "c.weights"))
    cv2.imwrite(str(tmp_path / "a.png"), images[0])
    (tmp_path / "names").write_text("a\nb\nc\n")
    (tmp_path / "c.data").write_text(f"classes = 3\nnames = {tmp_path / 'names'}\n")
    code = main(["classifier", "predict", str(tmp_path / "c.data"), str(tmp_path / "c.cfg"),
                 str(tmp_path / "c.weights"), str(tmp_path / "a.png")])
    err = capsys.readouterr().err
    assert code != 0 and "outputs 5 values but" in err and "classes = 3" in err
