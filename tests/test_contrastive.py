"""[contrastive] training (AB's contrastive learning for detectors, yolov4-tiny_contrastive.cfg)
equals AB Darknet's own: its forward_contrastive_layer after a [yolo] layer whose
embedding_layer= it shares, on the same embeddings, truths and track ids.

tests/data/darknet_contrastive.npz holds, for each case of ``CASES``, what AB Darknet 59596d7
(CPU build) wrote after ``forward_network`` with ``state.train = 1``: the [contrastive] layer's
``l.delta``, ``l.cost[0]`` and ``l.loss[0]`` (its "contrast accuracy"). The networks' weights
come from pydarknet's initialisation (seeded) through a .weights file;
tools/darknet_heads_oracle.py regenerates the file.
"""

import pathlib
import re

import numpy as np
import pytest

from pydarknet.errors import CfgError
from pydarknet.layers.contrastive_loss import contrastive_loss
from pydarknet.network import load_cfg_text

ORACLE = pathlib.Path(__file__).parent / "data" / "darknet_contrastive.npz"

# layer 0 the embeddings (n anchors x E), 1 the [yolo] input, 3 routes the embeddings back
NET = """[net]
batch={batch}
subdivisions=1
width=8
height=8
channels=3
time_steps={steps}
[convolutional]
filters={embeddings}
size=1
activation={activation}
[convolutional]
filters=16
size=1
activation=linear
[yolo]
mask=0,1
anchors=3,4, 6,5, 7,8
classes=3
num=3
max=12
embedding_layer=-2
[route]
layers=-3
[contrastive]
classes=3
yolo_layer=-2
{options}
"""

CASES = {
    "pairs": dict(batch=4, steps=1, embeddings=8, activation="linear", options="", seed=1),
    "temperature_neg_max": dict(batch=6, steps=1, embeddings=6, activation="leaky",
                                options="temperature=0.3\ncontrastive_neg_max=1", seed=2),
    "normalizer_clip": dict(batch=4, steps=1, embeddings=10, activation="linear",
                            options="cls_normalizer=2.5\nmax_delta=0.05", seed=3),
    "time_steps": dict(batch=2, steps=2, embeddings=8, activation="linear", options="",
                       seed=4),
    "many_negatives": dict(batch=8, steps=1, embeddings=4, activation="linear",
                           options="contrastive_neg_max=50\ntemperature=2", seed=5),
}


def cfg_text(name):
    case = CASES[name]
    return NET.format(**{k: v for k, v in case.items() if k != "seed"})


def case_truths(name, rows):
    """Truths [rows, 12, 6]: rows in pairs (2k, 2k+1) are two views of one image (boxes moved
    a little, the same track ids), with several boxes of a class, boxes whose best anchor is
    outside the mask and two boxes in one cell."""
    rng = np.random.default_rng(CASES[name]["seed"])
    truths = np.zeros((rows, 12, 6), np.float32)
    for image in range(rows // 2):
        k = int(rng.integers(4, 9))
        xy = rng.uniform(0.08, 0.92, (k, 2))
        wh = rng.uniform(0.2, 0.8, (k, 2)) * np.array([[0.6, 0.7]])
        wh[0] = (0.85, 0.97)                       # best anchor 7x8: not in the mask
        cls = rng.integers(0, 3, k)
        track = 4000 * (image + 3) + np.arange(k)
        for view in (0, 1):
            shift = rng.uniform(-0.06, 0.06, (k, 2)) * view
            row = truths[2 * image + view]
            row[:k, 0:2] = np.clip(xy + shift, 0.01, 0.99)
            row[:k, 2:4] = wh
            row[:k, 4], row[:k, 5] = cls, track
            row[k] = row[k - 1]                    # the same cell again, another track id
            row[k, 5] += 17
    return truths


def case_inputs(name, device="cpu"):
    """(net, x, truths) of a case: the network (weights seeded), its input, the truths."""
    net = load_cfg_text(cfg_text(name), device=device)
    net.init_weights(CASES[name]["seed"])
    rows = net.net.mini_batch * max(net.net.time_steps, 1)
    x = np.random.default_rng(100 + CASES[name]["seed"]).uniform(
        -1, 1, (rows, 3, 8, 8)).astype(np.float32)
    return net, x, case_truths(name, rows)


def run_case(name, device="cpu"):
    """pydarknet's [contrastive] delta (the training pass's), cost and stats of a case."""
    net, x, truths = case_inputs(name, device)
    net.forward(x, train=True, truths=truths)
    layer = net.layers[-1]
    delta = net.backend.to_numpy(net.deltas[-1])
    if device == "cpu":       # the loss alone, from the [yolo] layer's labels, says the same
        yolo = net.layers[layer.yolo_layer]
        again, cost, _ = contrastive_loss(layer, net.outputs[3], yolo.stats["track_labels"],
                                          yolo.stats["class_ids"], net.net.time_steps)
        np.testing.assert_array_equal(again, delta.reshape(again.shape))
        assert cost == layer.cost
    return delta, layer.cost, layer.stats


def oracle():
    if not ORACLE.exists():
        pytest.skip(f"{ORACLE} missing: run tools/darknet_heads_oracle.py")
    return np.load(ORACLE)


def check_case(name, device="cpu"):
    want = oracle()
    delta, cost, stats = run_case(name, device)
    assert np.abs(want[f"{name}_delta"]).max() > 0 and stats["pairs"] > 0
    np.testing.assert_allclose(delta.reshape(-1), want[f"{name}_delta"], rtol=1e-4, atol=1e-6)
    assert cost == pytest.approx(float(want[f"{name}_cost"][0]), rel=1e-4)
    assert stats["accuracy"] == int(want[f"{name}_loss"][0])


@pytest.mark.parametrize("name", sorted(CASES))
def test_contrastive_delta_equals_darknets(name):
    check_case(name)


def test_yolo_labels_each_cell_with_its_last_truths_track_id():
    """AB's l.labels: the best anchor's cell of each truth (in the mask; class in range) gets
    its track id, a later truth in the same cell overwriting; the others stay -1."""
    net, x, truths = case_inputs("pairs")
    net.forward(x, train=True, truths=truths)
    yolo = net.layers[2]
    labels, ids = yolo.stats["track_labels"], yolo.stats["class_ids"]
    assert labels.shape == ids.shape == (4, 2, 64)
    for b in range(4):
        rows = truths[b][truths[b, :, 0] > 0]
        want = {}
        for r in rows:
            a = int(np.argmax([_shape_iou(r[2:4], w, h) for w, h in ((3, 4), (6, 5), (7, 8))]))
            if a == 2:                             # not in the mask
                continue
            cell = int(r[1] * 8) * 8 + int(r[0] * 8)
            want[(a, cell)] = (int(r[5]), int(r[4]))
        got = {(a, c): (int(labels[b, a, c]), int(ids[b, a, c]))
               for a, c in zip(*np.nonzero(labels[b] >= 0))}
        assert got == want


def _shape_iou(wh, aw, ah):
    aw, ah = aw / 8, ah / 8
    inter = min(wh[0], aw) * min(wh[1], ah)
    return inter / (wh[0] * wh[1] + aw * ah - inter)


def test_training_the_contrastive_network_lowers_its_loss():
    """Iterations of the pairs case's network: the [contrastive] gradient flows back into
    the embedding layer (through the route) and its cost falls."""
    net, x, truths = case_inputs("pairs")
    costs = []
    for _ in range(12):
        net.train_iteration(x, truths)
        costs.append(net.layers[-1].cost)
    assert costs[-1] < 0.7 * costs[0]


def test_classifier_mode_and_wrong_geometry_are_refused_for_training():
    """Without yolo_layer= (AB crashes parsing it) and with an input that is not the [yolo]
    layer's embeddings, training is refused with the fix named; inference still runs."""
    plain = load_cfg_text("[net]\nbatch=2\nwidth=8\nheight=8\nchannels=3\n"
                          "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n"
                          "[contrastive]\nclasses=1\n")
    plain.forward(np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(CfgError, match="without yolo_layer"):
        plain.check_trainable()
    text = cfg_text("pairs").replace("filters=8", "filters=9")     # 9 values for 2 anchors
    with pytest.raises(CfgError, match="route the embedding layer"):
        load_cfg_text(text).check_trainable()
    text = cfg_text("pairs").replace("embedding_layer=-2\n", "")
    with pytest.raises(CfgError, match="embedding size 4 differs"):
        load_cfg_text(text).check_trainable()
    text = cfg_text("pairs").replace("yolo_layer=-2", "yolo_layer=-1")
    with pytest.raises(CfgError, match="must point to a \\[yolo\\] layer"):
        load_cfg_text(text).check_trainable()


# -- [net] contrastive=1: two views of each image -------------------------------------------
TINY = """[net]
batch=4
subdivisions=1
width=32
height=32
channels=3
contrastive=1
contrastive_jit_flip={jit_flip}
contrastive_color={color}
learning_rate=0.001
burn_in=2
max_batches=3
policy=constant
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
[convolutional]
filters=12
size=1
activation=linear
[route]
layers=-2
[convolutional]
filters=24
size=1
activation=linear
[yolo]
mask=0,1,2
anchors=4,5, 8,9, 14,10
classes=3
num=3
jitter=.3
embedding_layer=-3
[route]
layers=-4
[contrastive]
classes=3
yolo_layer=-2
"""


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    from pydarknet.data import make_shapes_detection
    folder = tmp_path_factory.mktemp("shapes")
    return make_shapes_detection(str(folder / "shapes"), train=30, valid=6, size=64, seed=5)


def tiny(tmp_path, jit_flip=1, color=0, extra=""):
    cfg = tmp_path / "contrastive.cfg"
    cfg.write_text(TINY.format(jit_flip=jit_flip, color=color).replace(
        "contrastive=1", "contrastive=1" + extra))
    return cfg, load_cfg_text(cfg.read_text())


def _batch(net, shapes, seed=3):
    from pydarknet.data import make_loader
    with make_loader(net, shapes["train"], seed=seed, threads=2) as loader:
        assert loader.pairs is not None
        return loader.next()


def test_views_share_the_image_and_what_the_options_keep(tmp_path, shapes):
    """Rows 2k and 2k+1 are one image: with contrastive_jit_flip=0 and contrastive_color=0
    they are the same picture and boxes; contrastive_color=1 changes only the colours;
    contrastive_jit_flip=1 the crop (the track ids still share the image's base)."""
    _, net = tiny(tmp_path, jit_flip=0, color=0)
    images, truths = _batch(net, shapes)
    for k in (0, 2):
        np.testing.assert_array_equal(images[k], images[k + 1])
        np.testing.assert_array_equal(truths[k], truths[k + 1])
    assert not np.array_equal(images[0], images[2])

    _, net = tiny(tmp_path, jit_flip=0, color=1)
    images, truths = _batch(net, shapes)
    np.testing.assert_array_equal(truths[0], truths[1])
    assert not np.array_equal(images[0], images[1])

    _, net = tiny(tmp_path, jit_flip=1, color=0)
    differ = 0
    for seed in range(4):
        images, truths = _batch(net, shapes, seed)
        for k in (0, 2):
            a, b = (t[t[:, 0] > 0] for t in (truths[k], truths[k + 1]))
            assert len(a) and len(b)
            assert set(a[:, 5] // 4000) == set(b[:, 5] // 4000)     # one image's track ids
            differ += not np.array_equal(a[:, :4], b[:, :4])
    assert differ


@pytest.mark.parametrize("shuffle", ["random", "epoch"])
def test_pairs_take_one_image_for_both_rows(tmp_path, shapes, shuffle):
    """Each pair's image, for any loader (a classifier's too: its views are then augmented
    each on its own): drawn at random or in the epoch's order, one per pair."""
    from pydarknet.data import make_loader
    _, net = tiny(tmp_path)
    with make_loader(net, shapes["train"], seed=1, threads=1, shuffle=shuffle) as loader:
        index = [[loader._index(b, k) for k in range(4)] for b in range(8)]
    index = np.array(index)
    assert (index[:, 0::2] == index[:, 1::2]).all()
    pairs = index[:, 0::2].reshape(-1)
    if shuffle == "epoch":                     # 30 images: each once in the first 30 pairs
        assert sorted(pairs[:16]) == sorted(set(pairs[:16]))
    else:
        assert len(set(pairs)) > 8


def test_a_contrastive_detector_trains(tmp_path, shapes):
    """run_training on the two-view batches: the [contrastive] loss runs every pass and the
    run ends with its weights."""
    import pydarknet
    from pydarknet.cli.train import run_training
    cfg, _ = tiny(tmp_path)
    lines = []
    net = run_training(cfg, shapes["data"], seed=3, backup=str(tmp_path / "b"), max_batches=3,
                       log=lines.append)
    final = pydarknet.load(str(cfg), str(tmp_path / "b" / "contrastive_final.weights"))
    assert final.iteration == 3
    progress = [line for line in lines if "avg loss" in line]
    assert len(progress) == 3
    assert all(re.search(r"contrastive accuracy -?\d+% \(avg \d+\.\d\d%\)", line)
               for line in progress), progress


def test_contrastive_needs_an_even_mini_batch_and_no_mosaic(tmp_path):
    _, net = tiny(tmp_path)
    text = TINY.format(jit_flip=1, color=0)
    with pytest.raises(CfgError, match="mini-batch .* is 3: make it even"):
        load_cfg_text(text.replace("batch=4", "batch=3")).check_trainable()
    with pytest.raises(CfgError, match="contrastive=1 with mosaic="):
        load_cfg_text(text.replace("contrastive=1", "contrastive=1\nmosaic=1")).check_trainable()


def test_with_track_the_odd_streams_repeat_the_even_ones(tmp_path, shapes):
    """track=1 and contrastive=1 (AB's get_sequential_paths): stream 2k+1 of a pass is stream
    2k's sequence, and the pass shares one augmentation, so the two are one picture."""
    from pydarknet.data import make_loader
    text = TINY.format(jit_flip=1, color=1).replace(
        "contrastive=1", "contrastive=1\ntrack=1\ntime_steps=2\naugment_speed=2").replace(
        "batch=4", "batch=8")
    net = load_cfg_text(text)
    assert net.net.mini_batch == 8 and net.batch == 16
    with make_loader(net, shapes["train"], seed=2, threads=2) as loader:
        assert loader.sequences == (8, 2, 2) and loader.pairs is not None
        places = [loader._sequence_place(0, g)[0] for g in range(16)]
        images, _ = loader.next()
    index = np.array(places).reshape(2, 8)          # [step, stream]
    assert (index[:, 0::2] == index[:, 1::2]).all()
    assert len(set(index[0, 0::2])) > 1
    for row in range(0, 16, 2):
        np.testing.assert_array_equal(images[row], images[row + 1])
