"""Softmax trees (yolo9000's tree=): AB's read_tree groups, the softmax within each group in
[softmax] and [region], and get_region_boxes' decoding with a tree. (The outputs against AB
Darknet's own: tests/test_darknet_heads.py.)"""

import pathlib

import numpy as np
import pytest

from pydarknet.errors import CfgError
from pydarknet.eval.decode import decode_network
from pydarknet.host_math import softmax_rows
from pydarknet.network import load_cfg_text
from pydarknet.tree import SECRET_NUM, SoftmaxTree

f32 = np.float32
TREE = pathlib.Path(__file__).parent / "data" / "tiny.tree"


def test_read_tree_groups_and_leaves():
    tree = SoftmaxTree.read(TREE)
    assert tree.n == 12 and tree.names[8] == "terrier"
    assert list(tree.group_offset) == [0, 3, 6, 8, 10, 11]
    assert list(tree.group_size) == [3, 3, 2, 2, 1, 1]
    assert list(np.flatnonzero(tree.leaf)) == [2, 5, 7, 8, 9, 10, 11]


def test_bad_tree_lines_are_named(tmp_path):
    bad = tmp_path / "bad.tree"
    bad.write_text("a -1\nb 5\n")
    with pytest.raises(CfgError, match=r"line 2: parent 5 must be -1 or an earlier"):
        SoftmaxTree.read(bad)


def test_softmax_layer_with_a_tree(tmp_path):
    net = load_cfg_text(f"[net]\nwidth=2\nheight=2\nchannels=3\n[softmax]\ntree={TREE}\n"
                        f"temperature=2\n")
    x = np.random.default_rng(0).standard_normal((1, 3, 2, 2)).astype(f32)
    out = net.forward(x).reshape(-1)
    v = x.reshape(-1)
    for offset, size in [(0, 3), (3, 3), (6, 2), (8, 2), (10, 1), (11, 1)]:
        np.testing.assert_allclose(out[offset:offset + size],
                                   softmax_rows(v[offset:offset + size], 2.0), rtol=1e-6)


def test_fill_hierarchy_is_darknets():
    tree = SoftmaxTree.read(TREE)
    t = tree.fill_hierarchy(np.eye(12, dtype=f32)[[9, 11]])     # poodle; truck
    S = SECRET_NUM
    assert t[0].tolist() == [1, 0, 0, 1, 0, 0, S, S, 0, 1, S, S]
    assert t[1].tolist() == [0, 1, 0, S, S, S, 1, 0, S, S, S, 1]


def test_softmax_tree_classifier_trains_and_predicts_leaves(tmp_path):
    """A 9k-style classifier: labels filled up the tree, the groups without one left out of
    the loss (AB's GPU build; tests/test_darknet_heads.py holds the deltas); its predictions
    are the leaves' path probabilities, the other classes 0 (Darknet's classifier commands)."""
    net = load_cfg_text(f"[net]\nbatch=4\nwidth=8\nheight=8\nchannels=3\n"
                        f"learning_rate=0.1\nburn_in=0\n"
                        f"[convolutional]\nfilters=12\nsize=3\nstride=2\npad=1\n"
                        f"activation=leaky\n[avgpool]\n[softmax]\ntree={TREE}\n")
    x = np.random.default_rng(3).random((4, 3, 8, 8), dtype=np.float32)
    labels = np.eye(12, dtype=f32)[[9, 11, 7, 2]]
    losses = [net.train_iteration(x, labels) for _ in range(150)]
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]
    from pydarknet.eval.classify import _scores
    p = _scores(net, x)
    tree = SoftmaxTree.read(TREE)
    assert not p[:, ~tree.leaf].any()
    assert list(p.argmax(1)) == [9, 11, 7, 2]


def test_predict_ranks_every_class_of_the_tree_with_its_parent(tmp_path, capsys):
    """Darknet's predict_classifier: hierarchy_predictions(..., only_leaves=0), so inner
    classes rank too, printed as 'index, name: p, parent: name'."""
    import cv2

    from pydarknet.cli import main
    from pydarknet.eval.classify import predict
    cfg = (f"[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=12\nsize=3\n"
           f"stride=2\npad=1\nactivation=leaky\n[avgpool]\n[softmax]\ntree={TREE}\n")
    net = load_cfg_text(cfg, batch=1)
    img = np.random.default_rng(2).integers(0, 256, (8, 8, 3), np.uint8)
    tree = SoftmaxTree.read(TREE)
    got = predict(net, img, top=12)
    raw = net.predict(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)[None] / 255,
                                           np.float32)).reshape(1, -1)
    want = tree.hierarchy_predictions(raw)[0]
    assert sorted(k for k, _ in got) == list(range(12))       # inner classes among them
    np.testing.assert_allclose([p for _, p in got], sorted(want, reverse=True), rtol=1e-5)
    (tmp_path / "t.cfg").write_text(cfg)
    net.save_weights(tmp_path / "t.weights")
    (tmp_path / "names").write_text("\n".join(tree.names) + "\n")
    (tmp_path / "t.data").write_text(f"classes = 12\nnames = {tmp_path / 'names'}\n")
    cv2.imwrite(str(tmp_path / "a.png"), img)
    assert main(["classifier", "predict", str(tmp_path / "t.data"), str(tmp_path / "t.cfg"),
                 str(tmp_path / "t.weights"), str(tmp_path / "a.png"), "-top", "12"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    k = int(lines[0].split(",")[0])
    up = tree.parent[k]
    assert lines[0].endswith(f", parent: {tree.names[up] if up >= 0 else 'Root'} ")


def test_missing_tree_file_says_where_it_looked(tmp_path):
    cfg = tmp_path / "cfg" / "n.cfg"
    cfg.parent.mkdir()
    cfg.write_text("[net]\nwidth=2\nheight=2\nchannels=3\n[softmax]\ntree=data/none.tree\n")
    from pydarknet.network import Network
    net = Network(str(cfg))
    with pytest.raises(CfgError, match=r"cannot find the softmax tree file data/none.tree"):
        net.forward(np.zeros((1, 3, 2, 2), f32))


def test_tree_beside_the_cfg_is_found(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.tree").write_text(TREE.read_text())
    (tmp_path / "cfg").mkdir()
    cfg = tmp_path / "cfg" / "n.cfg"
    cfg.write_text("[net]\nwidth=2\nheight=2\nchannels=3\n[softmax]\ntree=data/t.tree\n")
    from pydarknet.network import Network
    assert Network(str(cfg)).forward(np.zeros((1, 3, 2, 2), f32)).shape == (1, 12, 1, 1)


def darknet_tree_probs(tree, cls, scale, thresh):
    """get_region_boxes' tree branch (no map), loop by loop."""
    p = np.array(cls, f32)
    for j in range(tree.n):
        if tree.parent[j] >= 0:
            p[j] *= p[tree.parent[j]]
    probs = np.zeros(tree.n, f32)
    found = False
    for j in range(tree.n - 1, -1, -1):
        if not found and p[j] > .5:
            found = True
        else:
            p[j] = 0
        probs[j] = p[j] if scale > thresh else 0
    return probs


def test_region_with_a_tree_decodes_as_darknet():
    net = load_cfg_text(f"[net]\nwidth=64\nheight=48\nchannels=3\n"
                        f"[convolutional]\nfilters=34\nsize=3\nstride=16\npad=1\n"
                        f"activation=linear\n"
                        f"[region]\nanchors=1,1.5, 2.5,2\nclasses=12\nnum=2\ncoords=4\n"
                        f"softmax=1\ntree={TREE}\n")
    w = net.layers[0].params["weights"]
    w[...] = np.random.default_rng(1).normal(0, 2, w.shape)
    x = np.random.default_rng(2).random((1, 3, 48, 64), dtype=np.float32)
    net.forward(x)
    dets = decode_network(net, thresh=0.3)
    tree = SoftmaxTree.read(TREE)
    rows = np.array(net.outputs[-1]).reshape(-1, 17)
    want = np.array([darknet_tree_probs(tree, r[5:], r[4], 0.3) for r in rows])
    np.testing.assert_array_equal(dets.probs, want)
    assert (want > 0).sum(axis=1).max() == 1 and (want > 0).any()


def test_region_with_a_tree_and_a_class_map_trains(tmp_path):
    """yolo9000's head: the truths' classes go through map= into the tree, each trains its
    path (tests/test_darknet_heads.py holds AB's deltas); the loss falls."""
    net = load_cfg_text(f"[net]\nbatch=2\nwidth=64\nheight=48\nchannels=3\n"
                        f"learning_rate=0.01\nburn_in=0\n"
                        f"[convolutional]\nfilters=34\nsize=3\nstride=16\npad=1\n"
                        f"activation=linear\n"
                        f"[region]\nanchors=1,1.5, 2.5,2\nclasses=12\nnum=2\ncoords=4\n"
                        f"softmax=1\ntree={TREE}\nmap={TREE.with_suffix('.map')}\n")
    x = np.random.default_rng(2).random((2, 3, 48, 64), dtype=np.float32)
    truths = np.zeros((2, 3, 5), f32)
    truths[0, 0] = [0.3, 0.4, 0.2, 0.3, 0]          # terrier (map line 0)
    truths[1, 0] = [0.7, 0.6, 0.3, 0.2, 2]          # truck (map line 2)
    losses = [net.train_iteration(x, truths) for _ in range(30)]
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]
