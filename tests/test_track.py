"""[net] track=1 (AB's training on video sequences, yolov3-tiny_occlusion_track.cfg): a pass
is mini_batch runs of consecutive list entries, time_steps rows each, step-major, sharing one
augmentation; a [crnn] carries its state through them."""

import numpy as np
import pytest

import pydarknet
from pydarknet.cli.train import run_training
from pydarknet.data import make_loader, make_shapes_detection

TRACK = """[net]
batch=4
subdivisions=2
width=32
height=32
channels=3
track=1
time_steps=3
augment_speed=3
learning_rate=0.001
burn_in=2
max_batches=4
policy=steps
steps=3
scales=.1
hue=.1
saturation=1.5
exposure=1.5
[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky
[crnn]
batch_normalize=1
size=3
pad=1
output=8
hidden=8
activation=leaky
[convolutional]
filters=24
size=1
activation=linear
[yolo]
mask=0,1,2
anchors=4,5, 8,9, 14,10
classes=3
num=3
"""


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shapes")
    return make_shapes_detection(str(folder / "shapes"), train=40, valid=8, size=64, seed=2)


def network(tmp_path, text=TRACK):
    cfg = tmp_path / "track.cfg"
    cfg.write_text(text)
    return cfg, pydarknet.Network(str(cfg))


def test_a_pass_is_sequences_of_consecutive_images_sharing_their_augmentation(tmp_path, shapes):
    cfg, net = network(tmp_path)
    assert net.batch == 2 * 3                  # 2 sequences of 3 steps a pass
    with make_loader(net, shapes["train"], seed=4, threads=1) as loader:
        assert loader.batch == 2 * 2 * 3 and loader.sequences == (2, 3, 3)
        m = len(loader.dataset)
        for b in range(3):
            for p in range(2):                 # each subdivision: its own sequences
                places = [loader._sequence_place(b, p * 6 + k) for k in range(6)]
                index = np.array([i for i, _ in places]).reshape(3, 2)    # [step, stream]
                gaps = (index[1:] - index[:-1]) % m
                assert (gaps == gaps[0, 0]).all() and 1 <= gaps[0, 0] <= 3
                draws = [aug.integers(1 << 30) for _, aug in places]
                assert len(set(draws)) == 1    # one augmentation for the pass
        images, truths = loader.next()
        assert images.shape == (12, 3, 32, 32) and truths.shape[0] == 12


def test_the_same_image_in_a_sequence_is_augmented_alike(tmp_path, shapes):
    """A list of one image repeated: every row of a pass is the same picture, the passes'
    pictures differ (each pass its own crop, flip and colours)."""
    one = shapes["train"]
    first = open(one).read().split()[0]
    repeated = tmp_path / "repeated.txt"
    repeated.write_text((first + "\n") * 20)
    _, net = network(tmp_path)
    with make_loader(net, str(repeated), seed=1, threads=1) as loader:
        images, _ = loader.next()
    for p in range(2):
        rows = images[p * 6:(p + 1) * 6]
        assert all(np.array_equal(rows[0], r) for r in rows[1:])
    assert not np.array_equal(images[0], images[6])


def test_a_tracking_detector_trains(tmp_path, shapes):
    cfg, _ = network(tmp_path)
    lines = []
    run_training(cfg, shapes["data"], seed=3, backup=str(tmp_path / "b"), max_batches=4,
                 log=lines.append)
    final = pydarknet.load(str(cfg), str(tmp_path / "b" / "track_final.weights"))
    assert final.iteration == 4 and final.seen == 4 * 4 * 3


def test_track_with_mosaic_is_refused(tmp_path):
    cfg, net = network(tmp_path, TRACK.replace("track=1", "track=1\nmosaic=1"))
    with pytest.raises(pydarknet.PydarknetError, match=r"track.cfg:\d+: \[net\] mosaic: "
                                                       r"track=1 with mosaic="):
        net.check_trainable()


@pytest.mark.parametrize("seq_scales, refused", [("0.5", True), ("2", False), ("1", False)])
def test_track_with_seq_scales_that_take_effect_is_refused(tmp_path, seq_scales, refused):
    """AB's track=1 training scales its sequences' subdivisions by seq_scales at the steps
    (capped at subdivisions: only a product below 1 takes effect)."""
    cfg, net = network(tmp_path, TRACK.replace("scales=.1", f"scales=.1\nseq_scales={seq_scales}"))
    if refused:
        with pytest.raises(pydarknet.PydarknetError, match=r"\[net\] seq_scales: seq_scales=0.5 "
                                                           r"changes the sequences'"):
            net.check_trainable()
    else:
        net.check_trainable()
