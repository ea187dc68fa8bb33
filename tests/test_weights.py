"""Darknet .weights: headers, byte-identical round trips, partial loads, clear errors."""

import numpy as np
import pytest

import pydarknet
from pydarknet.weights import read_header

TINY = """
[net]
batch=2
subdivisions=1
width=16
height=16
channels=3
[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky
[convolutional]
filters=6
size=1
stride=2
activation=mish
[shortcut]
from=-1
weights_type=per_channel
activation=linear
[avgpool]
[connected]
output=5
activation=linear
[softmax]
"""


def tiny(tmp_path, text=TINY):
    path = tmp_path / "tiny.cfg"
    path.write_text(text)
    return path


def write_header(f, major, minor, revision, seen):
    np.array([major, minor, revision], "<i4").tofile(f)
    np.array([seen], "<u8" if major * 10 + minor >= 2 else "<u4").tofile(f)


def test_round_trip_is_byte_identical(tmp_path):
    net = pydarknet.load(tiny(tmp_path))
    net.seen = 1234
    net.save_weights(tmp_path / "a.weights")
    again = pydarknet.load(tiny(tmp_path), tmp_path / "a.weights")
    assert again.seen == 1234
    again.save_weights(tmp_path / "b.weights")
    assert (tmp_path / "a.weights").read_bytes() == (tmp_path / "b.weights").read_bytes()
    header, _ = read_header((tmp_path / "a.weights").read_bytes(), "a")
    assert (header.major, header.minor, header.revision, header.seen) == (0, 2, 5, 1234)


def test_round_trip_of_darknet_written_file(ref, tmp_path):
    src = ref / "mini" / "forward" / "mini-yolo-a" / "init.weights"
    net = pydarknet.load(ref / "mini" / "mini-yolo-a.cfg", src)
    net.save_weights(tmp_path / "x.weights")
    assert (tmp_path / "x.weights").read_bytes() == src.read_bytes()


def test_the_iteration_of_a_loaded_file_counts_subdivisions_times_the_mini_batch(tmp_path):
    """Darknet's get_current_batch: seen / (batch / subdivisions * subdivisions): batch=64,
    subdivisions=6 trains 60 images an iteration."""
    cfg = tmp_path / "b.cfg"
    cfg.write_text("[net]\nbatch=64\nsubdivisions=6\nwidth=8\nheight=8\nchannels=3\n"
                   "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n")
    net = pydarknet.load(cfg)
    net.seen = 6000 * 60
    net.save_weights(tmp_path / "b.weights")
    assert pydarknet.load(cfg, tmp_path / "b.weights").iteration == 6000


def test_old_header_with_32_bit_seen_and_transposed_connected(tmp_path):
    net = pydarknet.load(tiny(tmp_path))
    fc = net.layers[4]
    rng = np.random.default_rng(1)
    for layer in net.layers:
        for p in layer.params.values():
            p[...] = rng.standard_normal(p.shape)
    path = tmp_path / "old.weights"
    with open(path, "wb") as f:
        write_header(f, 0, 1, 0, 77)          # 0.1: seen is uint32, nothing transposed
        for layer in net.layers:
            for name, _ in layer.param_shapes():
                np.ascontiguousarray(layer.params[name], "<f4").tofile(f)
    other = pydarknet.load(tiny(tmp_path), path)
    assert other.seen == 77
    np.testing.assert_array_equal(other.layers[4].params["weights"], fc.params["weights"])

    path2 = tmp_path / "transposed.weights"
    with open(path2, "wb") as f:
        write_header(f, 0, 1001, 0, 5)        # minor > 1000: connected stored [in, out]
        for layer in net.layers:
            for name, _ in layer.param_shapes():
                value = layer.params[name]
                if layer is fc and name == "weights":
                    value = value.T
                np.ascontiguousarray(value, "<f4").tofile(f)
    other = pydarknet.load(tiny(tmp_path), path2)
    np.testing.assert_array_equal(other.layers[4].params["weights"], fc.params["weights"])


def test_partial_load_of_a_backbone(tmp_path):
    net = pydarknet.load(tiny(tmp_path))
    net.save_weights(tmp_path / "backbone.weights", cutoff=2)
    fresh = pydarknet.Network(tiny(tmp_path), seed=5)
    before = fresh.layers[4].params["weights"].copy()
    fresh.load_weights(tmp_path / "backbone.weights", cutoff=2)
    np.testing.assert_array_equal(fresh.layers[0].params["weights"], net.layers[0].params["weights"])
    np.testing.assert_array_equal(fresh.layers[1].params["weights"], net.layers[1].params["weights"])
    np.testing.assert_array_equal(fresh.layers[4].params["weights"], before)
    # a full file also loads partially
    net.save_weights(tmp_path / "full.weights")
    fresh.load_weights(tmp_path / "full.weights", cutoff=3)


def test_too_few_floats_names_layer_and_counts(tmp_path):
    net = pydarknet.load(tiny(tmp_path))
    net.save_weights(tmp_path / "full.weights")
    data = (tmp_path / "full.weights").read_bytes()
    (tmp_path / "short.weights").write_bytes(data[:-4 * 10])
    for layer in net.layers:        # values the bad file must leave alone
        for p in layer.params.values():
            p[...] = 7
    with pytest.raises(pydarknet.WeightsError) as e:
        net.load_weights(tmp_path / "short.weights")
    assert all((p == 7).all() for layer in net.layers for p in layer.params.values())
    msg = str(e.value)
    expected = sum(p.size for l in net.layers for p in l.params.values())
    assert "too few" in msg and str(expected) in msg and str(expected - 10) in msg
    assert "layer 4 (connected)" in msg


def test_too_many_floats(tmp_path):
    net = pydarknet.load(tiny(tmp_path))
    net.save_weights(tmp_path / "full.weights")
    (tmp_path / "long.weights").write_bytes((tmp_path / "full.weights").read_bytes() + b"\0" * 12)
    with pytest.raises(pydarknet.WeightsError, match="too many floats.*3 left over"):
        net.load_weights(tmp_path / "long.weights")


@pytest.mark.parametrize("blob", [b"", b"\1\0\0\0", b"\0" * 13, b"\xff" * 24, b"\0" * 21])
def test_bad_headers(tmp_path, blob):
    (tmp_path / "bad.weights").write_bytes(blob)
    net = pydarknet.load(tiny(tmp_path))
    with pytest.raises(pydarknet.WeightsError):
        net.load_weights(tmp_path / "bad.weights")


def test_missing_file(tmp_path):
    net = pydarknet.load(tiny(tmp_path))
    with pytest.raises(pydarknet.WeightsError, match="nope.weights"):
        net.load_weights(tmp_path / "nope.weights")


def test_backbone_file_loads_the_layers_it_has(tmp_path):
    net = pydarknet.load(tiny(tmp_path))
    net.save_weights(tmp_path / "conv.2", cutoff=2)
    fresh = pydarknet.Network(tiny(tmp_path), seed=9)
    header = fresh.load_weights(tmp_path / "conv.2", allow_partial=True)
    assert header.layers_loaded == 2
    np.testing.assert_array_equal(fresh.layers[1].params["weights"], net.layers[1].params["weights"])
    with pytest.raises(pydarknet.WeightsError, match="too few"):
        fresh.load_weights(tmp_path / "conv.2")     # without allow_partial: an error


FLIPPED = """
[net]
batch=1
width=6
height=6
channels=4
[convolutional]
filters=4
groups=2
size=3
pad=1
flipped=1
activation=linear
[convolutional]
filters=2
size=1
activation=linear
"""


def test_flipped_convolution_reads_transposed_weights(tmp_path):
    """Darknet's load_convolutional_weights with flipped=1 reads the weights as a
    [c/groups*size*size, filters] matrix and transposes it; other layers load as written."""
    cfg = tiny(tmp_path, FLIPPED)
    net = pydarknet.load(cfg)
    assert net.layers[0].flipped == 1 and net.layers[1].flipped == 0
    n, k = 4, (4 // 2) * 3 * 3
    biases0 = np.arange(n, dtype=np.float32)
    stored0 = np.arange(k * n, dtype=np.float32).reshape(k, n)   # the file's [k, filters]
    biases1 = np.array([7, 8], np.float32)
    weights1 = np.arange(2 * 4, dtype=np.float32) + 100
    with open(tmp_path / "f.weights", "wb") as f:
        write_header(f, 0, 2, 5, 0)
        for a in (biases0, stored0, biases1, weights1):
            a.astype("<f4").tofile(f)
    net.load_weights(tmp_path / "f.weights")
    w0 = net.layers[0].params["weights"]
    assert w0.shape == (4, 2, 3, 3)
    np.testing.assert_array_equal(w0.reshape(n, k), stored0.T)
    np.testing.assert_array_equal(w0[1, 0, 0, 2], stored0[2, 1])   # filter 1, element 2
    np.testing.assert_array_equal(net.layers[0].params["biases"], biases0)
    np.testing.assert_array_equal(net.layers[1].params["weights"].ravel(), weights1)
    # saved in the plain layout, as Darknet's save_convolutional_weights writes it
    net.save_weights(tmp_path / "g.weights")
    saved = np.fromfile(tmp_path / "g.weights", "<f4", offset=20)
    np.testing.assert_array_equal(saved[n:n + k * n], stored0.T.ravel())


def test_partial_command_saves_a_backbone_for_a_new_head(tmp_path, capsys):
    from pydarknet.cli import main
    net = pydarknet.load(tiny(tmp_path))
    net.seen = 640
    net.save_weights(tmp_path / "trained.weights")
    out = tmp_path / "tiny.conv.2"
    assert main(["partial", str(tiny(tmp_path)), str(tmp_path / "trained.weights"), str(out),
                 "2"]) == 0
    assert "layers 0..1" in capsys.readouterr().out
    assert read_header(out.read_bytes(), str(out))[0].seen == 0     # training starts afresh
    new_head = tiny(tmp_path, TINY.replace("output=5", "output=3"))  # another number of classes
    fresh = pydarknet.Network(new_head, seed=3)
    assert fresh.load_weights(out, allow_partial=True).layers_loaded == 2
    np.testing.assert_array_equal(fresh.layers[1].params["weights"], net.layers[1].params["weights"])
    assert main(["partial", str(new_head), str(out), str(tmp_path / "x"), "9"]) == 2
    assert "has 6 layers; keep 1..6" in capsys.readouterr().err


def test_describe_weights_says_whole_backbone_or_another_cfg(tmp_path, capsys):
    """`info CFG --weights W`: from the size and header alone, whether a file is the
    network's, a backbone ending at a layer boundary, or another cfg's (and where)."""
    from pydarknet.cli import main
    from pydarknet.network import Network
    from pydarknet.weights import describe_weights
    cfg = tmp_path / "n.cfg"
    cfg.write_text("[net]\nbatch=4\nwidth=8\nheight=8\nchannels=3\n[convolutional]\n"
                   "batch_normalize=1\nfilters=4\nsize=3\npad=1\nactivation=leaky\n[maxpool]\n"
                   "size=2\nstride=2\n[convolutional]\nfilters=2\nsize=1\nactivation=linear\n")
    net = Network(str(cfg))
    net.seen = 40
    net.save_weights(tmp_path / "all.weights")
    net.save_weights(tmp_path / "conv.1", cutoff=1)
    bare = Network(str(cfg), init=False)
    whole = describe_weights(bare, tmp_path / "all.weights")
    assert (whole["fits"], whole["stop"], whole["left"]) == ("whole", None, 0)
    assert whole["floats"] == whole["expected"] == 4 * 4 + 4 * 27 + 2 + 2 * 4
    back = describe_weights(bare, tmp_path / "conv.1")
    assert (back["fits"], back["stop"]) == ("backbone", 2)
    raw = (tmp_path / "all.weights").read_bytes()
    (tmp_path / "cut.weights").write_bytes(raw[:-8])
    cut = describe_weights(bare, tmp_path / "cut.weights")
    assert cut["fits"] == "mismatch" and "ends inside layer 2 [convolutional] (8 floats of " \
        "its 10)" in cut["why"]
    (tmp_path / "long.weights").write_bytes(raw + b"\0" * 12)
    assert "3 floats more than the network's 134" in describe_weights(
        bare, tmp_path / "long.weights")["why"]
    assert main(["info", str(cfg), "--weights", str(tmp_path / "all.weights")]) == 0
    assert "seen 40 images (iteration 10 at batch 4)" in capsys.readouterr().out


def test_dontload_layers_read_nothing_as_in_darknet(tmp_path):
    """dontload=1 reads nothing for the layer and dontloadscales=1 no batch-norm values
    (Darknet's load_weights_upto): a file without those floats loads. After the last loaded
    layer the file may go on (a head retrained for other classes): its floats are left
    unread with a warning, where Darknet leaves them silently. Elsewhere a mismatch says
    which layers skip what."""
    from pydarknet.network import load_cfg_text
    from pydarknet.weights import describe_weights
    src = load_cfg_text(TINY)
    src.init_weights(seed=1)
    src.save_weights(tmp_path / "all.weights")
    head = load_cfg_text(TINY.replace("output=5\n", "output=7\ndontload=1\n"))
    head.init_weights(seed=3)
    kept = head.layers[4].params["weights"].copy()
    with pytest.warns(pydarknet.WeightsWarning, match=r"35 floats after the last loaded layer "
                                                      r"left unread: layer 4 sets dontload=1"):
        head.load_weights(tmp_path / "all.weights")
    for a, b in zip(src.layers[:4], head.layers[:4]):
        for k, v in a.params.items():
            np.testing.assert_array_equal(b.params[k], v)
    np.testing.assert_array_equal(head.layers[4].params["weights"], kept)
    assert describe_weights(head, tmp_path / "all.weights")["fits"] == "whole"
    middle = load_cfg_text(TINY.replace("filters=6\n", "filters=6\ndontload=1\n"))
    with pytest.raises(pydarknet.WeightsError, match=r"30 left over.*layer 1 sets dontload=1 "
                                                     r"or dontloadscales=1"):
        middle.load_weights(tmp_path / "all.weights")
    # a file written without layer 1's floats and the first layer's batch-norm values loads
    skip = TINY.replace("filters=6\n", "filters=6\ndontload=1\n").replace(
        "batch_normalize=1\n", "batch_normalize=1\ndontloadscales=1\n")
    floats = [v for l in src.layers for k, v in l.params.items()
              if l.index != 1 and not (l.index == 0 and k in ("scales", "rolling_mean",
                                                               "rolling_variance"))]
    with open(tmp_path / "skip.weights", "wb") as f:
        f.write((tmp_path / "all.weights").read_bytes()[:20])
        for v in floats:
            np.asarray(v, "<f4").tofile(f)
    net = load_cfg_text(skip)
    net.init_weights(seed=5)
    scales = net.layers[0].params["scales"].copy()
    net.load_weights(tmp_path / "skip.weights")
    np.testing.assert_array_equal(net.layers[0].params["weights"], src.layers[0].params["weights"])
    np.testing.assert_array_equal(net.layers[0].params["scales"], scales)
    np.testing.assert_array_equal(net.layers[4].params["weights"], src.layers[4].params["weights"])
