"""``pydarknet data check``: every kind of broken input found and named by file and line, exit
codes 0/1/2, ``--fix`` keeping the old files and idempotent, ``--plot``, and the built-in demo
data set clean."""

import os

import cv2
import numpy as np
import pytest

from pydarknet.cli import main
from pydarknet.data import make_shapes_detection
from pydarknet.datasets.check import check_dataset, image_size_from_header

GOOD = "0 0.500000 0.500000 0.200000 0.200000"


def image(path, width=64, height=48):
    img = np.random.default_rng(0).integers(0, 255, (height, width, 3), np.uint8)
    assert cv2.imwrite(str(path), img)
    return str(path)


def write_data(folder, train, valid=None, classes=3, names=("a", "b", "c")):
    (folder / "train.txt").write_text("".join(f"{p}\n" for p in train))
    lines = [f"classes = {classes}", f"train = {folder / 'train.txt'}"]
    if valid is not None:
        (folder / "valid.txt").write_text("".join(f"{p}\n" for p in valid))
        lines.append(f"valid = {folder / 'valid.txt'}")
    if names is not None:
        (folder / "obj.names").write_text("".join(f"{n}\n" for n in names))
        lines.append(f"names = {folder / 'obj.names'}")
    (folder / "obj.data").write_text("\n".join(lines) + "\n")
    return str(folder / "obj.data")


@pytest.fixture
def broken(tmp_path):
    """A data set with one of each kind of problem; returns (data file, folder)."""
    d = tmp_path
    a, b, c, e, f, g = (image(d / "a.jpg"), image(d / "b.png"), image(d / "c.jpg"),
                        str(d / "e.jpg"), image(d / "f.jpg"), image(d / "g.jpg"))
    (d / "a.txt").write_text("\n".join([
        GOOD,                                   # 1 fine
        "0 0.5 0.5",                            # 2 malformed
        "7 0.5 0.5 0.1 0.1",                    # 3 class out of range
        "1 0.5 0.5 0.0 0.1",                    # 4 empty box
        "1 0.950000 0.500000 0.200000 0.200000",   # 5 reaches beyond the right edge: cut
        "2 1.5 0.5 0.2 0.2",                    # 6 wholly outside
        GOOD,                                   # 7 repeat of line 1
        "# a comment",                          # 8 comment
        "2 0.5000 0.5 0.2 0.2",                 # 9 fine (class 2)
        "1 0.5 0.5 1.0005 0.3",                 # 10 within the tolerance: fine
    ]) + "\n")
    (d / "b.txt").write_text("")                # empty: a note
    # c.jpg: no label file
    (d / "e.jpg").write_bytes(b"this is no image at all")
    (d / "e.txt").write_text(GOOD + "\n")
    (d / "f.txt").write_bytes(b"\x00\x01\xffgarbage\x00\n" + GOOD.encode() + b"\n")
    (d / "g.txt").write_bytes(GOOD.encode() + b"\n1 0.5 0.5 0.1 0.1 \xe9\n")
    missing = str(d / "missing.jpg")
    data = write_data(d, [a, b, c, missing, e, f, g, a], valid=[b], names=("a", "b"))
    return data, d


def run(capsys, *argv):
    code = main(["data", "check", *map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_every_problem_found_with_file_and_line(broken, capsys):
    data, d = broken
    code, out, _ = run(capsys, data)
    assert code == 1
    train = d / "train.txt"
    expect = [
        f"{d / 'a.txt'}:2: expected 5 values 'class x y w h', found 3: '0 0.5 0.5'",
        f"{d / 'a.txt'}:3: class id 7 is outside 0..2",
        f"{d / 'a.txt'}:4: width and height must be > 0",
        f"{d / 'a.txt'}:5: the box reaches beyond the image (right edge 1.05)",
        f"{d / 'a.txt'}:6: the box (x=1.5, y=0.5, w=0.2, h=0.2) lies wholly outside",
        f"{d / 'a.txt'}:7: the same box as line 1: '{GOOD}'",
        f"{d / 'a.txt'}:8: comment line",
        f"{d / 'b.txt'}: empty label file",
        f"{d / 'c.txt'}: label file not found",
        f"{train}:4: image not found: '{d / 'missing.jpg'}'",
        f"{train}:5: OpenCV cannot decode the image",
        f"{d / 'f.txt'}: the file holds binary data (NUL bytes): 1 of 2 lines unusable",
        f"{d / 'g.txt'}:2: byte 0xe9 is not UTF-8 text",
        f"{d / 'g.txt'}:2: expected 5 values",
        f"{train}:8: the same image as line 1: '{d / 'a.jpg'}'",
        f"{d / 'valid.txt'}:1: also in the train list: '{d / 'b.png'}'",
        f"{d / 'obj.names'}: 2 names, but {data} has classes=3",
    ]
    for line in expect:
        assert line in out, line
    assert ":9:" not in out and ":10:" not in out          # fine lines are not reported
    for kind in ("label_line_malformed (2)", "label_class_out_of_range (1)",
                 "label_box_out_of_range (1)", "label_duplicate (1)", "image_missing (1)",
                 "labels_missing (1)", "labels_empty (1)", "list_in_both (1)"):
        assert kind in out, kind
    assert "no problems found" not in out


def test_per_class_table_and_histogram(broken, capsys):
    data, _ = broken
    report = check_dataset(data)
    train = report.lists[0]
    # a.txt keeps lines 1, 5 (cut), 9, 10; f.txt and g.txt one box each; class 0 in a, f, g
    assert train.class_boxes.tolist() == [3, 2, 1]
    assert train.class_images.tolist() == [3, 1, 1]
    assert train.images_ok == 5 and train.entries == 8
    _, out, _ = run(capsys, data)
    assert "per class" in out and "box size, sqrt(w*h)" in out and "64x48" in out


def test_fix_keeps_the_old_files_and_is_idempotent(broken, capsys):
    data, d = broken
    a_before = (d / "a.txt").read_bytes()
    list_before = (d / "train.txt").read_text()
    code, out, _ = run(capsys, data, "--fix")
    assert code == 1 and "fixed 4 files" in out
    assert f"{d / 'a.txt'}: 6 lines dropped, 1 boxes cut to the image (was kept as " \
           f"{d / 'a.txt.orig'})" in out
    assert f"{d / 'train.txt'}: 3 entries dropped" in out
    assert (d / "a.txt.orig").read_bytes() == a_before
    assert (d / "train.txt.orig").read_text() == list_before
    assert (d / "a.txt").read_text().splitlines() == [
        GOOD, "1 0.925000 0.500000 0.150000 0.200000", "2 0.5000 0.5 0.2 0.2",
        "1 0.5 0.5 1.0005 0.3"]
    assert (d / "f.txt").read_text() == GOOD + "\n"
    assert (d / "g.txt").read_text() == GOOD + "\n"
    assert (d / "train.txt").read_text().splitlines() == [
        str(d / n) for n in ("a.jpg", "b.png", "c.jpg", "f.jpg", "g.jpg")]
    assert not (d / "b.txt.orig").exists() and not (d / "valid.txt.orig").exists()
    assert not [p for p in os.listdir(d) if p.endswith(".tmp")]

    snapshot = {p: (d / p).read_bytes() for p in os.listdir(d)}
    code, out, _ = run(capsys, data, "--fix")
    assert code == 1           # still: c.jpg has no labels, the names file is short
    assert "fixed" not in out and "label_line_malformed" not in out
    assert "labels_missing (1)" in out and "names_count (1)" in out
    assert {p: (d / p).read_bytes() for p in os.listdir(d)} == snapshot


def test_fix_never_overwrites_a_backup(tmp_path, capsys):
    img = image(tmp_path / "x.jpg")
    (tmp_path / "x.txt").write_text("0 0.5 0.5 0.2\n" + GOOD + "\n")
    (tmp_path / "x.txt.orig").write_text("an older backup\n")
    data = write_data(tmp_path, [img], classes=1, names=("a",))
    assert run(capsys, data, "--fix")[0] == 1
    assert (tmp_path / "x.txt.orig").read_text() == "an older backup\n"
    assert (tmp_path / "x.txt.orig.1").read_text() == "0 0.5 0.5 0.2\n" + GOOD + "\n"
    assert run(capsys, data)[0] == 0


def test_long_runs_are_capped(tmp_path, capsys):
    img = image(tmp_path / "x.jpg")
    (tmp_path / "x.txt").write_text("".join(f"0 0.5 0.5 {i}\n" for i in range(30)))
    data = write_data(tmp_path, [img], classes=1, names=("a",))
    code, out, _ = run(capsys, data, "--show", 3)
    assert code == 1
    assert out.count("expected 5 values") == 3 and "... and 27 more" in out


def test_bad_inputs_are_messages(tmp_path, capsys):
    code, _, err = run(capsys, tmp_path / "nothing.data")
    assert code == 2 and "nothing.data: .data file not found" in err
    (tmp_path / "lists").mkdir()
    (tmp_path / "bad.data").write_bytes(b"classes = 2\ntrain = " + str(tmp_path / "lists")
                                        .encode() + b"\nvalid = \xff\xfe\n")
    code, out, err = run(capsys, tmp_path / "bad.data")
    assert code == 1 and "list_unreadable (2)" in out
    assert f"{tmp_path / 'lists'}: cannot read the train list" in out
    (tmp_path / "nolist.data").write_text("classes = 2\n")
    code, _, err = run(capsys, tmp_path / "nolist.data")
    assert code == 2 and "no 'train =' or 'valid =' line" in err
    (tmp_path / "empty.txt").write_text("\n# only a comment\n")
    (tmp_path / "empty.data").write_text(f"classes = 1\ntrain = {tmp_path / 'empty.txt'}\n")
    code, out, _ = run(capsys, tmp_path / "empty.data")
    assert code == 1 and "list_empty (1)" in out and "names_absent" in out


def test_relative_path_hint(tmp_path, capsys, monkeypatch):
    sub = tmp_path / "set"
    sub.mkdir()
    image(sub / "x.jpg")
    (sub / "x.txt").write_text(GOOD + "\n")
    data = write_data(sub, ["x.jpg"], classes=1, names=("a",))
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, data)
    assert code == 1 and "Darknet opens relative paths from the working directory" in out
    monkeypatch.chdir(sub)
    assert run(capsys, data)[0] == 0


@pytest.mark.parametrize("ext", ["jpg", "png", "bmp"])
def test_image_sizes_from_headers(tmp_path, ext):
    path = image(tmp_path / f"x.{ext}", width=37, height=21)
    assert image_size_from_header(path) == (37, 21)
    (tmp_path / "y.gif").write_bytes(b"GIF89a....")
    assert image_size_from_header(str(tmp_path / "y.gif")) is None


def test_demo_data_set_is_clean_and_plots(tmp_path, capsys):
    ds = make_shapes_detection(str(tmp_path / "shapes"), train=12, valid=4, size=96, seed=1)
    plot = tmp_path / "boxes.png"
    code, out, _ = run(capsys, ds["data"], "--plot", plot)
    assert code == 0 and "no problems found" in out, out
    img = cv2.imread(str(plot))
    assert img is not None and img.shape[2] == 3
    for mode in ("--quick", "--no-images"):
        assert run(capsys, ds["data"], mode)[0] == 0
    report = check_dataset(ds["data"], images="header")
    assert sum(st.boxes for st in report.lists) == len(report.boxes) > 0
    assert report.image_sizes == {(96, 96): 16}


def test_pjreddie_rule_is_a_note(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    img = image(tmp_path / "images" / "x.jpg")
    (tmp_path / "labels" / "x.txt").write_text(GOOD + "\n")
    data = write_data(tmp_path, [img], classes=1, names=("a",))
    code, out, _ = run(capsys, data)
    assert code == 0 and "labels_pjreddie_rule (1)" in out
    assert f"AlexeyAB's Darknet looks for {tmp_path / 'images' / 'x.txt'}" in out
