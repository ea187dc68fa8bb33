"""Darknet's image pre-processing (pydarknet.image) and the Python detection API
(pydarknet.detector.detect / detect_batch)."""

import numpy as np
import pytest

from pydarknet import image as I
from pydarknet.detector import detect, detect_batch, detect_detections, nms_settings
from pydarknet.eval import decode_network, nms
from pydarknet.network import load_cfg_text


def darknet_resize(im, w, h):
    """Loop transcription of image.c resize_image (im: float [H, W, C])."""
    ih, iw, c = im.shape
    if (iw, ih) == (w, h):
        return im.copy()
    part = np.zeros((ih, w, c), np.float32)
    ws = np.float32(iw - 1) / np.float32(w - 1) if w > 1 else 0
    hs = np.float32(ih - 1) / np.float32(h - 1) if h > 1 else 0
    for r in range(ih):
        for col in range(w):
            if col == w - 1 or iw == 1:
                part[r, col] = im[r, iw - 1]
            else:
                sx = np.float32(col) * np.float32(ws)
                ix = int(sx)
                dx = np.float32(sx - ix)
                part[r, col] = (np.float32(1) - dx) * im[r, ix] + dx * im[r, ix + 1]
    out = np.zeros((h, w, c), np.float32)
    for r in range(h):
        sy = np.float32(r) * np.float32(hs)
        iy = int(sy)
        dy = np.float32(sy - iy)
        out[r] = (np.float32(1) - dy) * part[iy]
        if r == h - 1 or ih == 1:
            continue
        out[r] += dy * part[iy + 1]
    return out


@pytest.mark.parametrize("src,dst", [((7, 5), (4, 6)), ((13, 9), (13, 9)), ((5, 8), (11, 3)),
                                     ((1, 6), (4, 3)), ((40, 30), (17, 23))])
def test_resize_is_darknets(src, dst):
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (src[1], src[0], 3), np.uint8)
    ref = darknet_resize(u8.astype(np.float32) / np.float32(255), *dst)
    ours = I.resize(u8, *dst)
    assert ours.shape == (dst[1], dst[0], 3) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=3e-7)


def test_letterbox_geometry_and_canvas():
    assert I.letterbox_geometry(200, 100, 416, 416) == (416, 208, 0, 104)
    assert I.letterbox_geometry(100, 300, 416, 416) == (138, 416, 139, 0)
    img = np.full((100, 200, 3), 255, np.uint8)
    lb = I.letterbox(img, 64, 64)
    assert lb.shape == (64, 64, 3)
    assert (lb[:16] == 0.5).all() and (lb[48:] == 0.5).all() and (lb[16:48] == 1).all()


def test_network_input_is_rgb_chw():
    bgr = np.zeros((10, 20, 3), np.uint8)
    bgr[..., 0] = 255                                        # blue
    x = I.network_input(bgr, 20, 10)
    assert x.shape == (3, 10, 20)
    assert (x[2] == 1).all() and (x[0] == 0).all()          # blue is the last RGB channel


def test_classifier_crop_geometry():
    from pydarknet.eval.classify import classifier_input, top_k
    img = np.zeros((60, 120, 3), np.uint8)
    img[:, 59:61] = 255                                      # a white stripe in the middle
    x = classifier_input(img, 32, 32)                        # 120x60 -> 64x32, centre crop
    assert x.shape == (3, 32, 32)
    assert x[:, :, 15:17].mean() > 0.5 and x[:, :, :10].max() == 0
    assert list(top_k([0.1, 0.5, 0.5, 0.2], 3)) == [1, 2, 3]   # ties: lower index first


CFG = """
[net]
width=64
height=64
channels=3
letter_box={lb}

[convolutional]
filters=8
size=3
stride=2
pad=1
activation=leaky

[convolutional]
filters=21
size=1
stride=1
pad=1
activation=linear

[yolo]
mask=0,1,2
anchors=8,10, 20,24, 40,30
classes=2
num=3
nms_kind={nms}
beta_nms=0.6
"""


def tiny_detector(lb=0, nms_kind="default", seed=0):
    net = load_cfg_text(CFG.format(lb=lb, nms=nms_kind), batch=1)
    rng = np.random.default_rng(seed)
    conv = net.layers[1]
    conv.params["weights"][...] = rng.normal(0, 0.8, conv.params["weights"].shape)
    conv.params["biases"][...] = rng.normal(0, 0.5, conv.params["biases"].shape)
    return net


def images(n, seed=1):
    rng = np.random.default_rng(seed)
    sizes = [(64, 64), (90, 50), (40, 120), (100, 77)]
    return [rng.integers(0, 256, (sizes[i % 4][1], sizes[i % 4][0], 3), np.uint8)
            for i in range(n)]


@pytest.mark.parametrize("lb", [0, 1])
def test_detect_is_the_darknet_pipeline(lb):
    net = tiny_detector(lb)
    img = images(2)[1]                                       # 90x50
    out = detect(net, img, thresh=0.3, nms=0.45)
    assert out and all(isinstance(c, int) and isinstance(s, float) and len(b) == 4
                       for c, s, b in out)
    assert [s for _, s, _ in out] == sorted((s for _, s, _ in out), reverse=True)
    # by hand: pre-process, forward, decode, NMS, pixels
    x = I.network_input(img, 64, 64, letter_box=bool(lb))[None]
    net.predict(x)
    d = nms(decode_network(net, (90, 50), 0.3), 0.45)
    rows, cls = np.nonzero(d.probs > 0.3)
    expect = sorted(((int(c), float(d.probs[r, c]),
                      tuple(float(v) for v in d.boxes[r].astype(np.float64) * [90, 50, 90, 50]))
                     for r, c in zip(rows, cls)), key=lambda t: -t[1])
    assert len(out) == len(expect)
    for (c1, s1, b1), (c2, s2, b2) in zip(out, expect):
        assert c1 == c2 and s1 == s2
        np.testing.assert_allclose(b1, b2, rtol=1e-6)
    # nms=0 keeps more; a higher threshold keeps fewer
    assert len(detect(net, img, 0.3, nms=0)) >= len(out)
    assert len(detect(net, img, 0.6)) <= len(out)


def test_detect_and_draw_writes_the_image_with_detects_boxes(tmp_path):
    import cv2
    from pydarknet.detector import detect_and_draw
    net = tiny_detector()
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), images(2)[1])
    out = detect_and_draw(net, src, tmp_path / "drawn" / "out.png", thresh=0.3)
    img = cv2.imread(str(src))
    assert out == detect(net, img, 0.3)
    drawn = cv2.imread(str(tmp_path / "drawn" / "out.png"))
    assert drawn.shape == img.shape and (drawn != img).any() == bool(out)


def test_load_eval_image_resizes_or_letterboxes_without_augmenting(tmp_path):
    """The evaluation input: RGB CHW float32 in [0, 1] at w x h, the original size beside it;
    None for a file OpenCV cannot read."""
    import cv2
    from pydarknet.data import load_eval_image
    img = images(2)[1]                                       # 90x50
    cv2.imwrite(str(tmp_path / "a.png"), img)
    for lb in (False, True):
        x, size = load_eval_image(tmp_path / "a.png", 64, 32, letter_box=lb)
        assert size == (90, 50) and x.shape == (3, 32, 64) and x.dtype == np.float32
        np.testing.assert_array_equal(x, I.network_input(img, 64, 32, letter_box=lb))
    (tmp_path / "b.png").write_bytes(b"not an image")
    assert load_eval_image(tmp_path / "b.png", 64, 32) is None


def test_detect_batch_equals_one_by_one():
    net = tiny_detector()
    imgs = images(5)
    one = [detect(net, im, 0.25) for im in imgs]
    many = detect_batch(net, imgs, 0.25, batch_size=3)
    assert len(many) == 5
    for a, b in zip(one, many):
        assert [c for c, _, _ in a] == [c for c, _, _ in b]
        np.testing.assert_allclose([s for _, s, _ in a], [s for _, s, _ in b], rtol=1e-4)


def test_cfg_nms_kind_is_the_default():
    net = tiny_detector(nms_kind="diounms")
    assert nms_settings(net) == ("diounms", pytest.approx(0.6))
    img = images(1)[0]
    a = detect_detections(net, [img], 0.2)[0]
    b = detect_detections(net, [img], 0.2, nms_kind="diounms")[0]
    c = detect_detections(net, [img], 0.2, nms_kind="default")[0]
    np.testing.assert_array_equal(a.probs, b.probs)
    assert (a.probs > 0).sum() >= (c.probs > 0).sum()      # DIoU-NMS suppresses less


def test_detect_bad_arrays():
    net = tiny_detector()
    with pytest.raises(ValueError, match="HxWx3"):
        detect(net, np.zeros((4, 4, 5), np.uint8))
    grey = np.zeros((30, 40), np.uint8)                     # grey images are expanded
    assert isinstance(detect(net, grey), list)
