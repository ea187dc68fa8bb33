"""`pydarknet custom`: a detector's cfg set up for other classes, as AB's README's "train on
your own objects" edits (pydarknet.custom_cfg)."""

import difflib

import pytest

from conftest import ROOT
from pydarknet.cli import main
from pydarknet.custom_cfg import custom_cfg, default_max_batches
from pydarknet.errors import PydarknetError
from pydarknet.network import Network


def changed_lines(before, after):
    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    return sorted(zip([d[2:] for d in diff if d[0] == "-"], [d[2:] for d in diff if d[0] == "+"]))


def test_yolov4_tiny_gets_the_readmes_edits_and_nothing_else():
    cfg = ROOT / "cfg" / "yolov4-tiny.cfg"
    text, notes = custom_cfg(cfg, 2)
    assert changed_lines(cfg.read_text(), text) == sorted([
        ("classes=80", "classes=2"), ("classes=80", "classes=2"),
        ("filters=255", "filters=21"), ("filters=255", "filters=21"),
        ("max_batches=2000200", "max_batches=6000"), ("steps=1600000,1800000", "steps=4800,5400")])
    assert len(notes) == 3 and notes[-1] == "[net]: max_batches=6000, steps=4800,5400"


def test_max_batches_is_abs_rule():
    assert default_max_batches(2) == 6000
    assert default_max_batches(5) == 10000
    assert default_max_batches(2, train_images=7500) == 7500


HEADS = """[net]
width=64
height=64
channels=3
batch=8
subdivisions=2
policy=steps
steps=100,200,300
scales=.1,.1,.1
max_batches=500
# the first head
[convolutional]
filters=24   # 3 x (3 + 5)
size=1
[yolo]
mask=0,1,2
anchors=10,10, 20,20, 30,30, 40,40
num=4
classes=3
counters_per_class=5,5,5
[route]
layers=-2
[convolutional]
filters=24
size=1
[Gaussian_yolo]
mask=2,3
anchors=10,10, 20,20, 30,30, 40,40
num=4
classes=3
[route]
layers=-5
[convolutional]
filters=16
size=1
[region]
anchors=1,1, 2,2
num=2
classes=3
coords=4
"""


def test_every_head_type_and_the_layer_before_it(tmp_path):
    cfg = tmp_path / "heads.cfg"
    cfg.write_text(HEADS)
    text, notes = custom_cfg(cfg, 7, width=96, height=128, batch=16, subdivisions=4)
    net = Network(cfg_text_path(tmp_path, text), batch=1, init=False)
    yolo, gauss, region = (l for l in net.layers if l.layer_type in ("yolo", "gaussian_yolo",
                                                                      "region"))
    assert (yolo.classes, gauss.classes, region.classes) == (7, 7, 7)
    assert net.layers[0].n == 3 * 12 and net.layers[3].n == 2 * 16 and net.layers[6].n == 2 * 12
    assert "filters=36  # 3 x (3 + 5)" in text and "# the first head" in text
    assert "counters_per_class" not in text
    assert (net.net.width, net.net.height, net.net.batch, net.net.subdivisions) == \
        (96, 128, 16, 4)
    assert "steps=11200,12600" in text and "scales=.1,.1\n" in text
    assert any("counters_per_class left out" in n for n in notes)


def cfg_text_path(folder, text):
    path = folder / "out.cfg"
    path.write_text(text)
    return path


def test_yolov1_detection_sets_the_connected_output(tmp_path):
    cfg = tmp_path / "v1.cfg"
    cfg.write_text("[net]\nwidth=28\nheight=28\nchannels=3\npolicy=poly\nmax_batches=100\n"
                   "[convolutional]\nfilters=2\nsize=3\nstride=4\n[connected]\noutput=343\n"
                   "[detection]\nclasses=2\ncoords=4\nside=7\nnum=1\n")
    text, notes = custom_cfg(cfg, 4)
    assert "output=441" in text                       # 7*7*((1+4)*1 + 4)
    assert "policy=poly: no steps to set" in notes[-1] and "steps" not in text


def test_a_classifier_gets_its_scores_layer_sized(tmp_path):
    cfg = ROOT / "cfg" / "darknet53.cfg"
    text, notes = custom_cfg(cfg, 10, train_images=50000)
    assert changed_lines(cfg.read_text(), text) == [("filters=1000", "filters=10")]
    assert notes == ["layer 76 [convolutional]: filters=10 (the scores of the [softmax], layer 77)"]
    text, _ = custom_cfg(cfg, 10, max_batches=3000, width=200, height=200)
    net = Network(cfg_text_path(tmp_path, text), batch=1, init=False)
    assert (net.layers[-1].outputs, net.net.max_batches, net.net.width) == (10, 3000, 200)


def test_a_connected_classifier_and_what_a_classifier_cannot_take(tmp_path):
    cfg = tmp_path / "c.cfg"
    cfg.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n[connected]\noutput=5\n"
                   "[dropout]\n[softmax]\n[cost]\n")
    text, _ = custom_cfg(cfg, 3)
    assert "output=3" in text
    with pytest.raises(PydarknetError, match="a classifier has no anchors"):
        custom_cfg(cfg, 3, anchors=[1, 1])
    cfg.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n[connected]\noutput=6\n"
                   "[softmax]\ngroups=2\n")
    with pytest.raises(PydarknetError, match=r"with tree= or groups= its classes are not one"):
        custom_cfg(cfg, 3)


def test_anchors_go_to_the_yolo_heads(tmp_path):
    cfg = tmp_path / "y.cfg"
    cfg.write_text(HEADS.split("[route]")[0])
    text, _ = custom_cfg(cfg, 2, anchors=[1, 2, 3, 4, 5, 6, 7, 8])
    assert "anchors=1, 2, 3, 4, 5, 6, 7, 8" in text


@pytest.mark.parametrize("cfg_text, kw, message", [
    ("[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=2\nsize=1\n[avgpool]\n",
     {}, "neither a detector nor a classifier"),
    (HEADS.replace("[yolo]", "[route]\nlayers=-1\n[yolo]"), {},
     r"layer 2 \[yolo\] .* takes the output of layer 1 \(route\), not of a \[convolutional\]"),
    (HEADS, {"width": 100}, "width=100: a detector's input is a multiple of 32"),
    (HEADS.split("[route]")[0], {"anchors": [1, 2, 3]},
     "3 anchor numbers given; layer 1 has num=4: give 8"),
    (HEADS, {"anchors": [1] * 8}, r"layer 7 \[region\] .*: its anchors are in grid cells"),
    (HEADS, {"subdivisions": 0}, "subdivisions=0: must be at least 1"),
    ("[net]\nwidth=19\nheight=19\nchannels=3\n[convolutional]\nfilters=1\nsize=1\n"
     "[softmax]\n", {}, r"takes a 19x19x1 map, not one score a class"),    # Darknet's Go
], ids=["classifier", "route before head", "width", "anchors", "region anchors",
         "subdivisions", "softmax over places"])
def test_what_it_cannot_set_up_is_named(tmp_path, cfg_text, kw, message):
    cfg = tmp_path / "c.cfg"
    cfg.write_text(cfg_text)
    with pytest.raises(PydarknetError, match=message):
        custom_cfg(cfg, 2, **kw)


def test_cli_reads_classes_and_training_images_from_the_data_file(tmp_path, capsys):
    (tmp_path / "train.txt").write_text("".join(f"img{i}.jpg\n" for i in range(9000)))
    (tmp_path / "obj.data").write_text(f"classes = 2\ntrain = {tmp_path / 'train.txt'}\n")
    out = tmp_path / "yolo-obj.cfg"
    assert main(["custom", str(ROOT / "cfg" / "yolov4.cfg"), str(out), "--data",
                 str(tmp_path / "obj.data"), "--width", "416", "--height", "416"]) == 0
    net = Network(out, batch=1, init=False)
    assert [l.classes for l in net.layers if l.layer_type == "yolo"] == [2, 2, 2]
    assert (net.net.max_batches, net.net.steps, net.net.width) == (9000, [7200, 8100], 416)
    assert "(9000 training images)" in capsys.readouterr().out
    assert main(["custom", str(out), str(out), "--classes", "3"]) == 2
    assert "is the cfg itself" in capsys.readouterr().err
