"""The batch loader: reproducible with a seed whatever the threads, resumable from its state,
multi-scale set_size, bad input warned/counted/skipped, and batches that
Network.train_iteration takes."""

import json
import os
import warnings

import numpy as np
import pytest

import pydarknet
from pydarknet.data import (BatchLoader, DataError, DataWarning, DetectionDataset, Problems,
                            make_loader, make_shapes_classifier, make_shapes_detection,
                            read_list)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY_YOLO = """
[net]
batch=4
subdivisions=2
width=64
height=64
channels=3
learning_rate=0.001
momentum=0.9
decay=0.0005
max_batches=10
hue=.1
saturation=1.5
exposure=1.5
mosaic=1

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
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
activation=leaky

[convolutional]
filters=24
size=1
stride=1
pad=1
activation=linear

[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58
classes=3
num=3
max=20
jitter=.2
"""

TINY_CLASSIFIER = """
[net]
batch=4
subdivisions=2
width=32
height=32
channels=3
learning_rate=0.01
momentum=0.9
decay=0.0005
max_batches=10
label_smooth_eps=0.1
mixup=1

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[convolutional]
filters=3
size=1
stride=1
pad=1
activation=linear

[avgpool]

[softmax]
"""


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes_detection(tmp_path_factory.mktemp("shapes"), train=16, valid=4, size=64)


class IndexDataset:
    """Records which image each sample used (in its truth) and a value from its generator."""
    channels, truth_shape, problems = 1, (2,), Problems()

    def __init__(self, m):
        self.m = m

    def __len__(self):
        return self.m

    def sample(self, rng, w, h, index=None, image_out=None, truth_out=None):
        index = int(rng.integers(self.m)) if index is None else index
        image_out[...] = rng.random()
        truth_out[:] = (index, w * 1000 + h)


def batches(loader, n):
    return [tuple(a.copy() for a in loader.next()) for _ in range(n)]


def assert_same(a, b):
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_seeded_batches_do_not_depend_on_threads(shapes):
    paths = read_list(shapes["train"])
    make = lambda seed, threads: BatchLoader(  # noqa: E731
        DetectionDataset(paths, 3, max_boxes=10, mosaic_mixup=3, hue=0.1, blur=1,
                         gaussian_noise=5), 4, 64, 48, seed=seed, threads=threads)
    with make(7, 1) as one, make(7, 3) as three, make(8, 2) as other:
        a, b, c = batches(one, 3), batches(three, 3), batches(other, 3)
    assert_same(a, b)
    assert not np.array_equal(a[0][0], c[0][0])
    assert a[0][0].shape == (4, 3, 48, 64) and a[0][1].shape == (4, 10, 6)


def test_resume_continues_identically_across_set_size(shapes):
    paths = read_list(shapes["train"])
    ds = lambda: DetectionDataset(paths, 3, max_boxes=10, jitter=0.3)  # noqa: E731
    with BatchLoader(ds(), 2, 64, 64, seed=3, prefetch=3) as full:
        head = batches(full, 2)
        state = json.loads(json.dumps(full.get_state()))     # as the checkpoint stores it
        tail = batches(full, 1)
        full.set_size(96, 64)
        tail += batches(full, 2)
    assert head[0][0].shape[2:] == (64, 64) and tail[-1][0].shape[2:] == (64, 96)
    with BatchLoader(ds(), 2, 64, 64, seed=999) as resumed:
        resumed.next()                        # some prefetching at the wrong place first
        resumed.set_state(state)
        again = batches(resumed, 1)
        resumed.set_size(96, 64)
        again += batches(resumed, 2)
        assert resumed.get_state()["position"] == 5
    assert_same(tail, again)


def test_random_and_epoch_sampling():
    with BatchLoader(IndexDataset(10), 5, 4, 4, seed=1, shuffle="epoch", threads=2) as epoch:
        seen = np.concatenate([epoch.next()[1][:, 0] for _ in range(4)])
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))
    with BatchLoader(IndexDataset(10), 5, 4, 4, seed=1) as rand:
        images, truths = rand.next()
        rand.set_size(8, 6)
        images2, truths2 = rand.next()
    assert images.shape == (5, 1, 4, 4) and images2.shape == (5, 1, 6, 8)
    assert (truths[:, 1] == 4004).all() and (truths2[:, 1] == 8006).all()
    assert set(truths[:, 0]) <= set(range(10))


def test_bad_input_is_warned_counted_and_skipped(tmp_path, shapes):
    good = read_list(shapes["train"])[:4]
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    corrupt = img_dir / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 this is not a jpeg")
    (img_dir / "corrupt.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    unlabelled = img_dir / "nolabel.png"
    unlabelled.write_bytes(open(good[0], "rb").read())
    badlines = img_dir / "badlines.jpg"
    badlines.write_bytes(open(good[1], "rb").read())
    (img_dir / "badlines.txt").write_text(
        "0 0.5 0.5 0.2 0.2\n"        # fine
        "1 0.5 0.5\n"                # too few fields
        "x 0.5 0.5 0.2 0.2\n"        # not a class id
        "7 0.5 0.5 0.2 0.2\n"        # class out of range
        "0 1.7 0.5 0.2 0.2\n"        # outside the image
        "2 0.5 0.5 0 0.2\n")         # empty box
    missing = str(img_dir / "missing.jpg")
    paths = good + [str(corrupt), str(unlabelled), str(badlines), missing]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with BatchLoader(DetectionDataset(paths, 3, max_boxes=10), 8, 48, 48, seed=0) as loader:
            for _ in range(6):
                images, truths = loader.next()
                assert np.isfinite(images).all()
            counts = loader.problems.as_dict()
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert counts.get("image_missing", 0) >= 1 and counts.get("image_unreadable", 0) >= 1
    assert counts.get("labels_missing", 0) >= 1
    assert {k: counts[k] for k in ("label_line_malformed", "label_class_out_of_range",
                                   "label_box_outside", "label_box_empty")} == \
        {"label_line_malformed": 2, "label_class_out_of_range": 1, "label_box_outside": 1,
         "label_box_empty": 1}
    assert any(missing in m for m in messages)
    assert any(str(corrupt) in m for m in messages)
    # neither <image>.txt nor labels/nolabel.txt: Darknet's (AB's) path is the one named
    assert f"{img_dir / 'nolabel.txt'}: label file not found; image skipped" in messages
    for line in (2, 3, 4, 5, 6):
        assert any(f"badlines.txt:{line}:" in m for m in messages), line
    assert sum("badlines.txt:" in m for m in messages) == 5        # each line warned once
    # Darknet's rule for an image without a label file: a background image
    ds = DetectionDataset([str(unlabelled)], 3, missing_labels="empty")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, truth = ds.sample(np.random.default_rng(0), 32, 32)
    assert (truth == 0).all()


def test_empty_or_unusable_lists_are_clear_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(DataError, match="empty"):
        read_list(str(empty))
    with pytest.raises(DataError, match="nope.txt: image list not found"):
        read_list(str(tmp_path / "nope.txt"))
    with pytest.raises(DataError):
        DetectionDataset([], 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loader = BatchLoader(DetectionDataset([str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")],
                                              3), 2, 32, 32, seed=0)
        with pytest.raises(DataError, match="no usable image"):
            loader.next()
        loader.close()
    with pytest.raises(RuntimeError):
        loader.next()


def test_detector_batches_train(tmp_path, shapes):
    cfg = tmp_path / "tiny-yolo.cfg"
    cfg.write_text(TINY_YOLO)
    net = pydarknet.load(str(cfg))
    with make_loader(net, shapes["train"], seed=1) as loader:
        images, truths = loader.next()
        assert images.shape == (4, 3, 64, 64) and truths.shape == (4, 20, 6)
        loss = net.train_iteration(images, truths)
        assert np.isfinite(loss)
        net.resize(96, 96)
        loader.set_size(96, 96)
        images, truths = loader.next()
        assert images.shape == (4, 3, 96, 96)
        assert np.isfinite(net.train_iteration(images, truths))


def test_classifier_batches_train(tmp_path):
    info = make_shapes_classifier(tmp_path / "cls", train=9, valid=0, size=40)
    cfg = tmp_path / "tiny-cls.cfg"
    cfg.write_text(TINY_CLASSIFIER)
    net = pydarknet.load(str(cfg))
    with pytest.raises(DataError, match="class names"):
        make_loader(net, info["train"])
    with make_loader(net, info["train"], labels=info["labels"], seed=2) as loader:
        images, truths = loader.next()
        assert images.shape == (4, 3, 32, 32) and truths.shape == (4, 3)
        np.testing.assert_allclose(truths.sum(axis=1), 1, atol=1e-5)
        assert np.isfinite(net.train_iteration(images, truths))


def test_demo_cfg_loader(shapes):
    cfg = os.path.join(ROOT, "cfg", "demo-shapes.cfg")
    if not os.path.exists(cfg):
        pytest.skip("cfg/demo-shapes.cfg not present")
    net = pydarknet.load(cfg, batch=None)
    with make_loader(net, shapes["train"], seed=0) as loader:
        images, truths = loader.next()
    n = net.net
    assert images.shape == (n.batch, 3, n.height, n.width)
    assert truths.shape[0] == n.batch and truths.shape[2] == 6
