"""Broken training inputs: skipped, warned once per file, counted in the training log; a list
with nothing usable is an error that says what to fix; label parsing needs no OpenCV; the
pjreddie images/ -> labels/ fallback is warned once."""

import json
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import ROOT
from pydarknet.data import DetectionDataset, make_loader, make_shapes_detection, read_image
from pydarknet.errors import DataError, DataWarning, Problems, PydarknetError
from pydarknet.labels import label_path, read_labels, read_list
from pydarknet.train.loop import Trainer

from test_train_loop import small_cfg      # the demo cfg at a small batch


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shapes")
    return make_shapes_detection(str(folder / "shapes"), train=8, valid=4, size=96, seed=3)


def data_messages(caught):
    return [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


def test_label_parsing_imports_no_opencv(tmp_path):
    labels = tmp_path / "a.txt"
    labels.write_text("0 0.5 0.5 0.2 0.2\ngarbage line\n9 0.5 0.5 0.1 0.1\n")
    (tmp_path / "list.txt").write_text(str(tmp_path / "a.jpg") + "\n")
    code = f"""
import sys, warnings
warnings.simplefilter("ignore")
import pydarknet.labels as L
from pydarknet.errors import Problems, DataError
problems = Problems()
boxes = L.read_labels(L.label_path(L.read_list({str(tmp_path / 'list.txt')!r})[0]), 2,
                      problems, clip=True)
assert boxes.shape == (1, 5), boxes
assert problems.as_dict() == {{"label_line_malformed": 1, "label_class_out_of_range": 1}}
try:
    L.read_list({str(tmp_path / 'missing.txt')!r})
except DataError:
    pass
print("cv2" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(ROOT), check=True).stdout
    assert out.strip() == "False"


def test_error_types_are_one_and_the_same():
    import pydarknet.data as D
    import pydarknet.data.io as io
    assert D.DataError is io.DataError is DataError and issubclass(DataError, PydarknetError)
    assert D.Problems is io.Problems is Problems and D.DataWarning is DataWarning


def test_empty_truncated_and_non_images_are_told_apart(tmp_path, shapes):
    good = read_list(shapes["train"])[0]
    data = open(good, "rb").read()
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.jpg").write_text("not an image at all\n")
    problems = Problems()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in ("empty.jpg", "cut.jpg", "text.jpg", "nowhere.jpg", "cut.jpg"):
            assert read_image(str(tmp_path / name), 3, problems) is None
        assert read_image(good, 3, problems).shape[2] == 3
    assert problems.as_dict() == {"image_empty": 1, "image_truncated": 1, "image_unreadable": 1,
                                  "image_missing": 1}
    assert len(data_messages(caught)) == 4         # cut.jpg read twice, warned once


def broken_data_set(tmp_path, shapes):
    """A copy of the shapes training list with one file of every kind of breakage added,
    each listed twice (a file is warned and counted once however often it is met)."""
    good = read_list(shapes["train"])
    folder = tmp_path / "broken"
    folder.mkdir()
    garbage = folder / "garbage.jpg"
    shutil.copy(good[0], garbage)
    (folder / "garbage.txt").write_text("0 0.5 0.5 0.3 0.3\nnot a label\n1 0.5\n"
                                        "17 0.5 0.5 0.2 0.2\n")
    empty = folder / "empty.jpg"
    empty.write_bytes(b"")
    cut = folder / "cut.jpg"
    whole = open(good[1], "rb").read()
    cut.write_bytes(whole[: len(whole) // 2])     # OpenCV decodes it, grey where data is missing
    text = folder / "text.jpg"
    text.write_text("this is no image\n")
    nowhere = folder / "nowhere.jpg"
    for p in (empty, cut, text, nowhere):
        (folder / (p.stem + ".txt")).write_text("0 0.5 0.5 0.2 0.2\n")
    broken = [str(p) for p in (garbage, empty, cut, text, nowhere)]
    listing = tmp_path / "train.txt"
    listing.write_text("\n".join(good[:6] + broken + broken[1:]) + "\n")
    return str(listing), broken


def test_training_goes_on_through_broken_inputs(tmp_path, shapes):
    listing, broken = broken_data_set(tmp_path, shapes)
    lines = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = Trainer(small_cfg(tmp_path), lambda net, seed: make_loader(
            net, listing, seed=seed, shuffle="epoch", threads=2), backup=str(tmp_path / "b"),
            seed=1, max_batches=6, log=lines.append)
        final = trainer.run()
    assert final and trainer.net.iteration == 6
    messages = data_messages(caught)
    garbage, empty, cut, text, nowhere = broken
    for path in (empty, cut, text, nowhere):
        assert sum(m.startswith(path + ":") for m in messages) == 1, path    # once per file
    assert any(m.startswith(f"{empty}: the image file is empty") for m in messages)
    assert any(m.startswith(f"{cut}: the JPEG file is truncated") for m in messages)
    assert any(m.startswith(f"{text}: cannot decode the image") for m in messages)
    assert any(m.startswith(f"{nowhere}: image not found") for m in messages)
    garbage_txt = garbage[:-4] + ".txt"
    assert sorted(m.split(": ")[0] for m in messages if m.startswith(garbage_txt)) == \
        [f"{garbage_txt}:2", f"{garbage_txt}:3", f"{garbage_txt}:4"]      # each bad line once
    records = [json.loads(l) for l in open(tmp_path / "b" / "demo-shapes_train.jsonl")]
    assert [r["iteration"] for r in records] == [1, 2, 3, 4, 5, 6]
    expected = {"image_empty": 1, "image_truncated": 1, "image_unreadable": 1,
                "image_missing": 1, "label_line_malformed": 2, "label_class_out_of_range": 1}
    assert records[-1]["data_problems"] == expected
    assert records[-1]["skipped"] == sum(expected.values())
    assert all(r["skipped"] <= records[-1]["skipped"] for r in records)
    iteration_lines = [l for l in lines if l.startswith(" 6: ")]
    assert iteration_lines and iteration_lines[0].endswith(", 7 inputs skipped")


def test_clean_data_keeps_darknets_console_line(tmp_path, shapes):
    lines = []
    Trainer(small_cfg(tmp_path), lambda net, seed: make_loader(net, shapes["train"], seed=seed),
            backup=str(tmp_path), seed=1, max_batches=1, log=lines.append).run()
    assert any(l.startswith(" 1: ") and l.endswith("hours left") for l in lines)
    record = json.loads(open(tmp_path / "demo-shapes_train.jsonl").readline())
    assert record["skipped"] == 0 and record["data_problems"] == {}


def test_a_list_with_nothing_usable_is_an_error_that_says_what_to_fix(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("no image")
    listing = tmp_path / "train.txt"
    listing.write_text("\n".join([str(folder / "nowhere.jpg"), str(folder / "gone.jpg"),
                                  str(folder / "empty.jpg"), str(folder / "text.jpg")]) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = Trainer(small_cfg(tmp_path), lambda net, seed: make_loader(
            net, str(listing), seed=seed, threads=2), backup=str(tmp_path / "b"), seed=1,
            max_batches=3, log=lambda line: None)
        with pytest.raises(PydarknetError) as info:
            trainer.run()
    text = str(info.value)
    assert isinstance(info.value, DataError)
    assert "no usable image among the 4 in the list" in text
    assert "image missing: 2" in text and "image empty: 1" in text
    assert "image unreadable: 1" in text
    assert "first: " + str(folder) in text
    assert "the path of an existing image" in text and "replace the empty" in text


def test_most_of_the_list_bad_still_finds_the_good_image(tmp_path, shapes):
    good = read_list(shapes["train"])[0]
    paths = [str(tmp_path / f"missing{i}.jpg") for i in range(3000)] + [good]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = DetectionDataset(paths, 3, max_boxes=10, augment=False)
        _, truth = ds.sample(np.random.default_rng(0), 32, 32, index=0)
    assert truth[0, 2] > 0 and 100 < ds.problems.as_dict()["image_missing"] <= 3000


def pjreddie_layout(tmp_path, shapes):
    """images/ and labels/ side by side (pjreddie's layout): AB's rule looks for
    images/<name>.txt and finds nothing."""
    good = read_list(shapes["train"])[:2]
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    paths = []
    for i, src in enumerate(good):
        dst = tmp_path / "images" / f"img{i}.jpg"
        shutil.copy(src, dst)
        shutil.copy(label_path(src), tmp_path / "labels" / f"img{i}.txt")
        paths.append(str(dst))
    return paths


def test_pjreddie_label_fallback_is_used_and_warned_once(tmp_path, shapes):
    paths = pjreddie_layout(tmp_path, shapes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert label_path(paths[0]) == str(tmp_path / "labels" / "img0.txt")   # silent
        assert not data_messages(caught)
        ds = DetectionDataset(paths, 3, max_boxes=10, augment=False)
        rng = np.random.default_rng(0)
        truths = [ds.sample(rng, 32, 32, index=i)[1] for i in (0, 1, 0, 1)]
    assert all(t[0, 2] > 0 for t in truths)                  # the labels/ files are used
    messages = data_messages(caught)
    assert len(messages) == 1
    first = str(tmp_path / "labels" / "img0.txt")
    assert messages[0].startswith(first + ": label file found by pjreddie's rule")
    assert str(tmp_path / "images" / "img0.txt") in messages[0]      # where AB's Darknet looks
    assert "AlexeyAB's Darknet" in messages[0] and "without objects" in messages[0]
    assert ds.problems.as_dict() == {}                       # a note, not a skipped input
    # a second run (its own tally) warns again
    again = Problems()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for p in paths:
            assert read_labels(label_path(p, again), 3) is not None
    assert len(data_messages(caught)) == 1
