"""Darknet's augmentations: augmented samples rendered with their boxes (PNG under tmp_path) and
box/image consistency checked on pixels; flips, letterbox, mosaic, HSV, blur, classifier paths."""

import math

import cv2
import numpy as np
import pytest

from pydarknet.data import (ClassificationDataset, DetectionDataset, make_shapes_classifier,
                            make_shapes_detection, read_list)
from pydarknet.data import augment as A

RED = (255, 0, 0)
BACKGROUND = (60, 140, 200)


def red_mask(chw):
    img = A.from_chw(chw).astype(np.int32)
    return (img[..., 0] > img[..., 1] + 50) & (img[..., 0] > img[..., 2] + 50)


def box_pixels(truth, W, H):
    for row in truth:
        if row[0] == 0:
            break
        x, y, w, h = (float(v) for v in row[:4])
        yield (x - w / 2) * W, (y - h / 2) * H, (x + w / 2) * W, (y + h / 2) * H


def check_boxes_match_red_squares(image, truth):
    """Every box is within the image and (away from its 1-pixel rim) red; no red pixel lies
    outside the boxes (grown by 1 pixel). Returns the number of boxes."""
    H, W = image.shape[1:]
    red = red_mask(image)
    covered = np.zeros_like(red)
    n = 0
    for left, top, right, bot in box_pixels(truth, W, H):
        n += 1
        assert -1e-4 <= left < right <= W + 1e-3 and -1e-4 <= top < bot <= H + 1e-3
        inner = red[math.ceil(top) + 1:math.floor(bot) - 1, math.ceil(left) + 1:
                    math.floor(right) - 1]
        if inner.size >= 4:
            assert inner.mean() > 0.9, (left, top, right, bot, inner.mean())
        covered[max(0, math.floor(top) - 1):math.ceil(bot) + 1,
                max(0, math.floor(left) - 1):math.ceil(right) + 1] = True
    stray = red & ~covered
    assert stray.sum() <= 3, f"{stray.sum()} red pixels outside every box"
    return n


@pytest.fixture(scope="module")
def squares(tmp_path_factory):
    folder = tmp_path_factory.mktemp("squares")
    info = make_shapes_detection(folder, train=24, valid=0, size=(120, 96), classes=["square"],
                                 fmt="png", colours=[RED], background=BACKGROUND, count=(1, 3))
    return read_list(info["train"])


@pytest.mark.parametrize("name, options", [
    ("jitter", dict(jitter=0.3, hue=0.02, saturation=1.5, exposure=1.5)),
    ("resize", dict(jitter=0.2, resize=1.5)),
    ("mosaic", dict(jitter=0.3, mosaic_mixup=3)),
    ("mosaic_bound", dict(jitter=0.3, mosaic_mixup=3, mosaic_bound=1)),
    ("letter_box", dict(jitter=0.2, letter_box=1)),
    ("noise", dict(jitter=0.2, gaussian_noise=8)),
])
def test_rendered_boxes_match_shapes(squares, tmp_path, name, options):
    ds = DetectionDataset(squares, classes=1, max_boxes=30, **options)
    tiles, total = [], 0
    for i in range(12):
        image, truth = ds.sample(np.random.default_rng(i), 128, 96)
        assert image.shape == (3, 96, 128) and image.dtype == np.float32
        assert truth.shape == (30, 6) and truth.dtype == np.float32
        assert 0 <= image.min() and image.max() <= 1
        tiles.append(A.draw_truths(image, truth))
        total += check_boxes_match_red_squares(image, truth)
        assert (truth[truth[:, 0] > 0, 4] == 0).all()
    assert total >= 12
    grid = np.concatenate([np.concatenate(tiles[k:k + 4], 1) for k in range(0, 12, 4)], 0)
    path = tmp_path / f"augmented_{name}.png"
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    assert cv2.imread(str(path)).shape == grid.shape
    assert not ds.problems.as_dict()


def test_mixup_keeps_both_images_boxes(squares):
    ds = DetectionDataset(squares, classes=1, max_boxes=30, jitter=0.1, mosaic_mixup=1)
    mixed = 0
    for i in range(10):
        image, truth = ds.sample(np.random.default_rng(i), 128, 96)
        boxes = list(box_pixels(truth, 128, 96))
        img = A.from_chw(image).astype(np.int32)
        pinkish = img[..., 0] > img[..., 2] + 20        # red at half strength over the sky
        for left, top, right, bot in boxes:
            inner = pinkish[math.ceil(top) + 1:math.floor(bot) - 1,
                            math.ceil(left) + 1:math.floor(right) - 1]
            if inner.size >= 4:
                assert inner.mean() > 0.9
        # a blend of two images has pixel values half-way between sky and square
        mixed += bool(((img[..., 0] > 120) & (img[..., 0] < 200)).mean() > 0.01)
    assert mixed >= 2


def test_flip_mirrors_image_and_boxes():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    for crop in (A.Crop.full(70, 50), A.Crop(70, 50, 5, -4, 9, 3)):
        plain = A.crop_resize(img, crop, 64, 48)
        crop.flip = True
        flipped = A.crop_resize(img, crop, 64, 48)
        np.testing.assert_array_equal(flipped, plain[:, ::-1])
        boxes = np.array([[0.3, 0.4, 0.2, 0.1], [0.7, 0.5, 0.1, 0.3]])
        b_flip = A.crop_boxes(boxes, crop)
        crop.flip = False
        b_plain = A.crop_boxes(boxes, crop)
        np.testing.assert_allclose(b_flip[:, 0], 1 - b_plain[:, 0], atol=1e-12)
        np.testing.assert_allclose(b_flip[:, 1:], b_plain[:, 1:], atol=1e-12)


def test_crop_boxes_follow_the_window():
    crop = A.Crop(200, 100, pleft=20, ptop=-10, pright=30, pbot=10)   # 150 x 100 window
    out = A.crop_boxes([[0.5, 0.5, 0.2, 0.2]], crop)[0]
    # box pixels x 80..120, y 40..60 -> window x 60..100 of 150, y 50..70 of 100
    np.testing.assert_allclose(out, [80 / 150, 0.6, 40 / 150, 0.2], atol=1e-12)
    gone = A.crop_boxes([[0.02, 0.5, 0.02, 0.1]], crop)[0]    # left of the window
    assert gone[2] == 0


def test_letterbox_keeps_aspect(tmp_path):
    folder = tmp_path / "wide"
    info = make_shapes_detection(folder, train=4, valid=0, size=(200, 100), classes=["square"],
                                 fmt="png", colours=[RED], background=BACKGROUND, count=(1, 1))
    paths = read_list(info["train"])
    ds = DetectionDataset(paths, classes=1, jitter=0.0, letter_box=True, flip=False)
    for i, path in enumerate(paths):
        image, truth = ds.sample(np.random.default_rng(i), 128, 128, index=i)
        src = np.loadtxt(path[:-4] + ".txt", ndmin=2)[0]
        x, y, w, h = truth[0, :4]
        # the 2:1 image fills a 128 x 64 band in the middle: x unchanged, y and h halved
        np.testing.assert_allclose([x, w], src[[1, 3]], atol=1.5 / 128)
        np.testing.assert_allclose([y, h], [0.25 + src[2] / 2, src[4] / 2], atol=1.5 / 128)
        assert abs((w * 128) / (h * 128) - (src[3] * 200) / (src[4] * 100)) < 0.15
        band = A.from_chw(image)
        assert np.ptp(band[:31].reshape(-1, 3), axis=0).max() <= 1   # uniform padding
        check_boxes_match_red_squares(image, truth)
    # eval letterbox (pydarknet.image's, Darknet's letterbox_image): the same geometry
    from pydarknet.image import letterbox_geometry
    assert letterbox_geometry(200, 100, 128, 128) == (128, 64, 0, 32)


def test_mosaic_tiles_and_cut():
    rng = np.random.default_rng(0)
    for _ in range(20):
        cx, cy = A.mosaic_cut(rng, 100, 80)
        assert 20 <= cx <= 80 and 16 <= cy <= 64
    dst = np.zeros((80, 100), np.uint8)
    src = np.arange(80 * 100, dtype=np.int64).reshape(80, 100) % 251
    src = src.astype(np.uint8)
    crop = A.Crop.full(100, 80)
    for corner in range(4):
        shift = A.mosaic_tile(dst, src, crop, corner, 30, 50)
        ys, xs = (slice(0, 50), slice(0, 30)) if corner == 0 else \
            (slice(0, 50), slice(30, 100)) if corner == 1 else \
            (slice(50, 80), slice(0, 30)) if corner == 2 else (slice(50, 80), slice(30, 100))
        y0, x0 = ys.start - shift[1], xs.start - shift[0]
        np.testing.assert_array_equal(dst[ys, xs], src[y0:y0 + ys.stop - ys.start,
                                                        x0:x0 + xs.stop - xs.start])
    boxes, keep = A.mosaic_boxes([[0.5, 0.5, 0.6, 0.6]], (-20, 0), 0, 30, 50, 100, 80, True)
    assert keep[0] and boxes[0, 0] + boxes[0, 2] / 2 <= 0.3 + 1e-9


def test_hsv_distort():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert A.hsv_distort(img, 0, 1, 1) is img
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(int)
    out = cv2.cvtColor(A.hsv_distort(img, 0.25, 1, 1), cv2.COLOR_RGB2HSV).astype(int)
    dh = (out[..., 0] - hsv[..., 0]) % 180
    sat = hsv[..., 1] > 80
    assert np.median(dh[sat]) in (44, 45, 46)          # a quarter turn, wrapped
    dark = A.hsv_distort(img, 0, 1, 0.5)
    v0, v1 = img.max(axis=2).astype(int), dark.max(axis=2).astype(int)
    assert np.abs(v1 - np.rint(v0 * 0.5)).max() <= 2
    grey = A.hsv_distort(img[..., 0], 0.3, 2, 0.5)
    assert np.abs(grey.astype(int) - np.rint(img[..., 0] * 0.5)).max() <= 1


def test_hue_below_zero_saturates_as_darknets_8_bit_add():
    """AB: hsv[0] += 179 * dhue on an 8-bit channel: a negative result is 0 (red), one from
    180 on wraps in HSV2RGB."""
    hsv = np.zeros((1, 4, 3), np.uint8)
    hsv[0, :, 0] = (5, 10, 170, 100)
    hsv[..., 1:] = 255
    img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    back = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)[0, :, 0].astype(int)
    out = cv2.cvtColor(A.hsv_distort(img, -0.1, 1, 1), cv2.COLOR_RGB2HSV)[0, :, 0].astype(int)
    shift = int(np.rint(-17.9))
    want = np.clip(back + shift, 0, 255) % 180          # 5 and 10: red (0), not 167 / 172
    assert np.array_equal(out % 180, want) and out[0] == out[1] == 0
    up = cv2.cvtColor(A.hsv_distort(img, 0.1, 1, 1), cv2.COLOR_RGB2HSV)[0, :, 0].astype(int)
    assert up[2] == (back[2] + 18) % 180                # past 180: wraps


def _darknet_distort_pixel(r, g, b, hue, sat, val):
    """AB's rgb_to_hsv, distort_image and hsv_to_rgb (image.c) for one pixel, in float32."""
    f32 = np.float32
    mx, mn = max(r, g, b), min(r, g, b)
    delta, v = f32(mx - mn), mx
    if mx == 0:
        s = h = f32(0)
    else:
        s = f32(delta / mx)
        if delta == 0:
            h = f32(0)           # 0/0 in Darknet: NaN, unused where s = 0
        elif r == mx:
            h = f32((g - b) / delta)
        elif g == mx:
            h = f32(2 + (b - r) / delta)
        else:
            h = f32(4 + (r - g) / delta)
        if h < 0:
            h = f32(h + 6)
        h = f32(h / 6.0)
    s, v, h = f32(s * sat), f32(v * val), f32(h + hue)
    if h > 1:
        h = f32(h - 1)
    if h < 0:
        h = f32(h + 1)
    if s == 0:
        out = (v, v, v)
    else:
        h6 = f32(6 * h)
        i = int(np.floor(h6))
        f = f32(h6 - i)
        p, q, t = f32(v * (1 - s)), f32(v * (1 - s * f)), f32(v * (1 - s * (1 - f)))
        out = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v)][i] if i < 5 else (v, p, q)
    return np.clip(np.array(out, f32), 0, 1)


@pytest.mark.parametrize("hue, sat, val", [(-0.1, 1.5, 1.5), (0.07, 0.6, 0.7), (0.0, 1.0, 1.0),
                                           (-0.3, 2.0, 0.5)])
def test_classifier_colour_jitter_is_darknets_float_distort_image(hue, sat, val):
    """Darknet's classifier: float HSV, S and V scaled unclipped, the hue wrapping both
    ways, each channel clipped after (its detector uses OpenCV's 8-bit HSV instead)."""
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    img[0, :3] = [[0, 0, 0], [90, 90, 90], [255, 0, 0]]         # black, grey, pure red
    got = A.distort_float(img, hue, sat, val)
    x = img.astype(np.float32) / np.float32(255)
    want = np.array([[_darknet_distort_pixel(*px, hue, sat, val) for px in row] for row in x])
    np.testing.assert_allclose(got, want, atol=2e-6)
    grey = A.distort_float(img[..., :1], hue, sat, val)            # one channel: value only
    np.testing.assert_allclose(grey, np.clip(x[..., :1] * np.float32(val), 0, 1), atol=1e-7)


def test_gaussian_noise_only_brightens_as_darknets():
    """AB: cv::randn into the 8-bit image type (rounded, negatives 0), then a saturating
    add: about half the pixels unchanged, the others brighter, 0.4 sigma on average."""
    rng = np.random.default_rng(0)
    img = np.full((100, 100, 3), 128, np.uint8)
    out = A.gaussian_noise(rng, img, 10).astype(int) - 128
    assert out.min() == 0 and 0.45 < (out == 0).mean() < 0.6
    assert abs(out.mean() - 0.4 * 10) < 0.3
    top = A.gaussian_noise(rng, np.full((10, 10), 250, np.uint8), 50)
    assert top.min() >= 250 and top.max() == 255        # saturating, no wrap


def test_rand_scale_and_ranges():
    rng = np.random.default_rng(2)
    vals = np.array([A.rand_scale(rng, 1.5) for _ in range(2000)])
    assert vals.min() >= 1 / 1.5 - 1e-9 and vals.max() <= 1.5 + 1e-9
    assert 0.4 < (vals > 1).mean() < 0.6
    assert {A.rand_int(rng, 2, 4) for _ in range(200)} == {2, 3, 4}


def test_blur_background_keeps_boxes_sharp():
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    boxes = np.array([[0.5, 0.5, 0.25, 0.5]])
    out = A.blur_image(img, 1, boxes)
    np.testing.assert_array_equal(out[16:48, 30:50], img[16:48, 30:50])
    assert np.abs(out[:10].astype(int) - img[:10]).mean() > 20
    whole = A.blur_image(img, 6)
    assert np.abs(whole.astype(int) - img).mean() > 20


def test_classifier_samples(tmp_path):
    info = make_shapes_classifier(tmp_path / "cls", train=12, valid=0, size=48)
    paths = read_list(info["train"])
    names = info["class_names"]
    ds = ClassificationDataset(paths, names, angle=20, aspect=1.3, hue=0.1, saturation=1.5,
                               exposure=1.5, label_smooth_eps=0.1)
    for i, path in enumerate(paths):
        image, y = ds.sample(np.random.default_rng(i), 40, 32, index=i)
        assert image.shape == (3, 32, 40) and y.shape == (3,)
        cls = [k for k, n in enumerate(names) if path.endswith(f"_{n}.png")][0]
        np.testing.assert_allclose(y, np.where(np.arange(3) == cls, 0.9, 0.05), atol=1e-6)
    for mode in (1, 2, 3, 4):
        ds = ClassificationDataset(paths, names, mosaic_mixup=mode, blur=1)
        for i in range(6):
            image, y = ds.sample(np.random.default_rng(i), 48, 48)
            assert abs(float(y.sum()) - 1) < 1e-5 and 0 <= image.min() and image.max() <= 1
    # no augmentation: the plain resize
    plain = ClassificationDataset(paths, names, augment=False)
    image, y = plain.sample(np.random.default_rng(0), 48, 48, index=0)
    ref = cv2.cvtColor(cv2.imread(paths[0]), cv2.COLOR_BGR2RGB)
    np.testing.assert_allclose(image, ref.transpose(2, 0, 1) / 255, atol=1e-6)


def test_classifier_crop_scale_and_rotation():
    """random_augment with angle 0, aspect 1 and min=max crop is a centred zoom; with an
    angle the content rotates about the centre."""
    img = np.zeros((60, 60, 3), np.uint8)
    img[25:35, 25:35] = 255
    rng = np.random.default_rng(0)
    out = A.random_augment(rng, img, 0, 1, 60, 60, 60)
    np.testing.assert_array_equal(out, img)
    for _ in range(5):       # 2x zoom, shifted at random by up to half the excess (30 px)
        out = A.random_augment(rng, img, 0, 1, 120, 120, 60)
        ys, xs = np.nonzero(out[..., 0] > 127)
        if xs.min() > 0 and ys.min() > 0 and xs.max() < 59 and ys.max() < 59:
            assert 19 <= np.ptp(xs) + 1 <= 21 and 19 <= np.ptp(ys) + 1 <= 21
        assert abs(xs.mean() - 29.5) <= 31 and abs(ys.mean() - 29.5) <= 31
    bar = np.zeros((60, 60, 3), np.uint8)
    bar[28:32, 5:55] = 255
    tilted = 0
    for seed in range(8):    # rotated about the centre by up to 90 degrees: same length
        rotated = A.random_augment(np.random.default_rng(seed), bar, 90, 1, 60, 60, 60)
        ys, xs = np.nonzero(rotated[..., 0] > 127)
        assert abs(math.hypot(np.ptp(xs), np.ptp(ys)) - 49) < 5
        assert abs(xs.mean() - 29.5) < 1.5 and abs(ys.mean() - 29.5) < 1.5
        tilted += np.ptp(ys) > 15
    assert tilted >= 3
