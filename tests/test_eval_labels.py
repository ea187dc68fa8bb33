"""Darknet's data-set files (pydarknet.labels) and k-means anchors (pydarknet.eval.anchors)."""

import numpy as np
import pytest

from pydarknet import labels as L
from pydarknet.data.io import DataError, Problems
from pydarknet.eval.anchors import average_iou, format_anchors, kmeans_anchors, size_iou
from pydarknet.eval.coco import COCO_IDS, image_id_from_path


@pytest.mark.parametrize("image,label", [
    ("data/obj/img1.jpg", "data/obj/img1.txt"),
    ("/coco/images/train2017/000000000009.jpg", "/coco/labels/train2017/000000000009.txt"),
    ("/coco/images/val2014/COCO_val2014_000000000042.jpg",
     "/coco/labels/val2014/COCO_val2014_000000000042.txt"),
    ("/VOC/VOC2007/JPEGImages/000005.JPG", "/VOC/VOC2007/labels/000005.txt"),
    ("d/a.jpeg", "d/a.txt"), ("d/a.PNG", "d/a.txt"), ("d/a.tiff", "d/a.txt"),
    ("d/a.jpg.jpg", "d/a.jpg.txt"),                   # only the last extension
    ("/x/images/a.jpg", "/x/images/a.txt"),            # AB: plain images/ is NOT replaced
    ("d/a.Jpg", "d/a.Jpg"),                            # nor mixed-case extensions
])
def test_replace_image_to_label(image, label):
    assert L.replace_image_to_label(image) == label


def test_label_path_falls_back_to_pjreddies_rule(tmp_path):
    img = tmp_path / "images" / "a.jpg"
    img.parent.mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("")
    assert L.label_path(str(img)) == str(tmp_path / "labels" / "a.txt")
    (tmp_path / "images" / "a.txt").write_text("")            # AB's file wins when present
    assert L.label_path(str(img)) == str(tmp_path / "images" / "a.txt")
    assert L.label_path(str(tmp_path / "x.webp")) == str(tmp_path / "x.txt")


def test_data_and_names_files(tmp_path):
    p = tmp_path / "obj.data"
    p.write_text("# comment\nclasses= 3\ntrain  = a.txt # trailing\nnames = n\n")
    assert L.read_data_file(p) == {"classes": 3, "train": "a.txt", "names": "n"}
    p.write_text("classes = 3\nthis line is wrong\n")
    with pytest.raises(DataError, match=r"obj.data:2: expected 'key = value'"):
        L.read_data_file(p)
    p.write_text("classes = three\n")
    with pytest.raises(DataError, match=r"obj.data:1: classes = three is not an integer"):
        L.read_data_file(p)
    with pytest.raises(DataError, match="nothing.data: .data file not found"):
        L.read_data_file(tmp_path / "nothing.data")
    n = tmp_path / "names"
    n.write_text("cat\r\ndog\n\n\n")
    assert L.read_names(n) == ["cat", "dog"]
    n.write_text("cat\n\ndog\n")
    with pytest.raises(DataError, match=r"names:2: empty class name"):
        L.read_names(n)
    with pytest.raises(DataError, match=r"n:2: the names file ends after 2 names, but net "
                                        r"has classes=3"):
        L.check_names(["a", "b"], 3, "n", "net")
    assert L.check_names(["a", "b", "c"], 2) == ["a", "b"]
    lst = tmp_path / "list.txt"
    lst.write_text("\n  \n# nothing\n")
    with pytest.raises(DataError, match="list.txt: the image list is empty"):
        L.read_list(lst)


def test_files_saved_with_a_byte_order_mark_read_as_without(tmp_path):
    """Windows' Notepad starts UTF-8 files with a BOM: the first class name, label line, list
    item, .data key and cfg section must not carry it."""
    from pydarknet.cfg import parse_cfg, parse_cfg_text

    def write(name, text):
        (tmp_path / name).write_text(text, encoding="utf-8-sig")
        return tmp_path / name
    assert L.read_names(write("n.names", "person\ncar\n")) == ["person", "car"]
    np.testing.assert_array_equal(L.read_labels(write("a.txt", "1 0.5 0.5 0.2 0.2\n")),
                                  [[1, 0.5, 0.5, 0.2, 0.2]])
    assert L.read_list(write("t.txt", "/a.jpg\n")) == ["/a.jpg"]
    assert L.read_data_file(write("o.data", "classes = 2\n")) == {"classes": 2}
    assert [s.name for s in parse_cfg(write("c.cfg", "[net]\nwidth=8\n"))] == ["net"]
    assert [s.name for s in parse_cfg_text("\ufeff[net]\nwidth=8\n")] == ["net"]


def test_label_lines_are_checked_with_path_and_line():
    problems = Problems()
    with pytest.warns(UserWarning):
        boxes = L.parse_labels(["0 0.5 0.5 0.2 0.2", "", "1 0.5 0.5 0.2", "2 0.1 0.1 0.1 0.1",
                                "a 0.1 0.1 0.1 0.1", "1 nan 0.1 0.1 0.1", "1 0.5 0.5 -1 0.1",
                                "1 1.2 0.5 1.5 0.1", "# a comment"], "x.txt", classes=2,
                               problems=problems)
    np.testing.assert_allclose(boxes, [[0, 0.5, 0.5, 0.2, 0.2], [1, 1.2, 0.5, 1.5, 0.1]])
    assert problems.messages == [
        "x.txt:3: expected 5 values 'class x y w h', found 4: '1 0.5 0.5 0.2'; line skipped",
        "x.txt:4: class id 2 is outside 0..1 (classes=2): '2 0.1 0.1 0.1 0.1'; line skipped",
        "x.txt:5: the class id must be an integer and x, y, w, h numbers: "
        "'a 0.1 0.1 0.1 0.1'; line skipped",
        "x.txt:6: x, y, w, h must be finite numbers: '1 nan 0.1 0.1 0.1'; line skipped",
        "x.txt:7: width and height must be > 0 (w=-1, h=0.1): '1 0.5 0.5 -1 0.1'; "
        "line skipped"]
    assert problems.as_dict() == {"label_line_malformed": 3, "label_class_out_of_range": 1,
                                  "label_box_empty": 1}
    with pytest.warns(UserWarning, match=r"^/nonexistent/a.txt: label file not found; read as "
                                         r"an image without objects$"):
        assert L.read_labels("/nonexistent/a.txt", 2, problems) is None
    assert problems.as_dict()["labels_missing"] == 1


def test_evaluation_keeps_empty_boxes_as_truths_nothing_finds():
    """Darknet's read_boxes keeps a box of width or height 0 (or below): mAP and recall count
    it among the truths (tools/darknet_map_fuzz.py found the truth counts differing)."""
    lines = ["0 0.5 0.5 0.2 0.2", "1 0.3 0.3 0 0.1", "0 0.7 0.7 0.1 -0.2"]
    problems = Problems()
    with pytest.warns(UserWarning):
        kept = L.parse_labels(lines, "e.txt", 2, problems, keep_empty=True)
    np.testing.assert_allclose(kept, [[float(v) for v in ln.split()] for ln in lines])
    assert problems.messages[0] == ("e.txt:2: width and height must be > 0 (w=0, h=0.1): "
                                    "'1 0.3 0.3 0 0.1'; kept as a truth no detection can find, "
                                    "as Darknet")
    assert problems.as_dict() == {"label_box_empty": 2}
    with pytest.warns(UserWarning):
        assert len(L.parse_labels(lines, "e.txt", 2, Problems())) == 1     # default: skipped
    from pydarknet.eval.darknet_map import MapAccumulator
    acc = MapAccumulator(2)
    boxes = np.array([[0.5, 0.5, 0.2, 0.2], [0.3, 0.3, 0.01, 0.1]], np.float32)
    acc.add_image(boxes, np.array([0, 1]), np.array([0.9, 0.9], np.float32), kept)
    r = acc.result()
    assert r["truths"] == 3 and r["tp"] == 1 and r["fn"] == 2


def test_nul_bytes_in_names_and_paths_are_data_errors(tmp_path):
    """A binary file given as the names file, a NUL byte in a .data path: errors that say so,
    not Python's ValueError (tools/cli_input_fuzz.py)."""
    names = tmp_path / "bin.names"
    names.write_bytes(b"cat\n\x00\x01\x02\n")
    with pytest.raises(DataError, match=r"bin.names:2: a class name holds a NUL byte"):
        L.read_names(str(names))
    with pytest.raises(DataError, match="the image list's path holds a NUL byte"):
        L.read_list(str(tmp_path / "a\x00b.txt"), "image list")


LINES = ["0 0.5 0.5 0.2 0.2",        # inside: the same either way
         "1 0.95 0.5 0.3 0.2",       # reaches past the right edge: cut by training
         "1 1.3 0.5 0.2 0.2",        # wholly outside: dropped by training
         "0 -0.5 -0.5 0.2 0.2"]


def test_training_clips_and_drops_evaluation_keeps_boxes_as_written():
    kept = L.parse_labels(LINES, "k.txt", 2, Problems())           # mAP, anchors (Darknet)
    np.testing.assert_allclose(kept, [[float(v) for v in ln.split()] for ln in LINES])
    problems = Problems()
    with pytest.warns(UserWarning):
        clipped = L.parse_labels(LINES, "k.txt", 2, problems, clip=True)   # correct_boxes
    np.testing.assert_allclose(clipped, [[0, 0.5, 0.5, 0.2, 0.2], [1, 0.9, 0.5, 0.2, 0.2]])
    assert problems.as_dict() == {"label_box_outside": 2}
    assert problems.messages[0] == ("k.txt:3: the box (x=1.3, y=0.5, w=0.2, h=0.2) lies wholly "
                                    "outside the image: '1 1.3 0.5 0.2 0.2'; line skipped")
    assert problems.messages[1].startswith("k.txt:4: the box (x=-0.5, y=-0.5, w=0.2, h=0.2)")
    # the old training names in pydarknet.data are these rules with clip=True
    from pydarknet.data import parse_label_lines, read_label_file
    with pytest.warns(UserWarning):
        np.testing.assert_allclose(parse_label_lines(LINES, "k.txt", 2, Problems()), clipped)
    with pytest.warns(UserWarning, match="/nonexistent/b.txt: label file not found; image "
                                         "skipped"):
        assert read_label_file("/nonexistent/b.txt", 2, Problems()) is None


def test_training_drops_a_box_centred_at_the_origin_as_darknet():
    """AB's correct_boxes: x == 0 and y == 0 is a wrong annotation (a truth row with x = 0
    would also end Darknet's truth list)."""
    problems = Problems()
    with pytest.warns(UserWarning, match="o.txt:1: a box centred at x = 0, y = 0"):
        got = L.parse_labels(["0 0 0 0.2 0.2", "1 0 0.5 0.2 0.2"], "o.txt", 2, problems,
                             clip=True)
    np.testing.assert_allclose(got, [[1, 0.05, 0.5, 0.1, 0.2]])    # x = 0 alone: cut
    assert problems.as_dict() == {"label_box_at_origin": 1}
    assert len(L.parse_labels(["0 0 0 0.2 0.2"], classes=2)) == 1   # mAP: as written


def test_label_files_read_for_training_and_for_map(tmp_path):
    from pydarknet.data import DetectionDataset, read_truth_boxes
    img = tmp_path / "a.jpg"
    (tmp_path / "a.txt").write_text("\n".join(LINES) + "\n")
    np.testing.assert_allclose(read_truth_boxes(str(img), 2),      # for mAP: as written
                               L.parse_labels(LINES, classes=2))
    with pytest.warns(UserWarning):
        boxes = DetectionDataset([str(img)], 2).labels(0)           # training: clipped
    np.testing.assert_allclose(boxes, L.parse_labels(LINES, classes=2, clip=True))
    with pytest.warns(UserWarning, match="b.txt: label file not found; used as a background "
                                         r"image \(no objects\)"):
        ds = DetectionDataset([str(tmp_path / "b.jpg")], 2, missing_labels="empty")
        assert ds.labels(0).shape == (0, 5)
    problems = Problems()
    (tmp_path / "dir.txt").mkdir()                   # a label "file" that cannot be read
    with pytest.warns(UserWarning, match="dir.txt: cannot read the label file"):
        assert L.read_labels(str(tmp_path / "dir.txt"), 2, problems, missing="x") is None
    assert problems.as_dict() == {"labels_missing": 1}


def test_label_path_rules_each_way(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    img = str(images / "a.JPG")
    beside, pj = str(images / "a.txt"), str(labels / "a.txt")
    assert L.label_path(img) == beside                 # neither exists: AB's path is named
    (labels / "a.txt").write_text("")
    assert L.label_path(img) == pj                     # only pjreddie's images/ -> labels/
    (images / "a.txt").write_text("")
    assert L.label_path(img) == beside                 # both: AB's, as Darknet reads it
    (labels / "a.txt").unlink()
    assert L.label_path(img) == beside                 # only AB's
    # AB's folder rules apply whether or not the file exists; any extension becomes .txt
    coco = str(tmp_path / "images" / "val2017" / "1.jpg")
    assert L.label_path(coco) == str(tmp_path / "labels" / "val2017" / "1.txt")
    assert L.label_path(str(tmp_path / "VOC" / "JPEGImages" / "2.tif")) == \
        str(tmp_path / "VOC" / "labels" / "2.txt")
    assert L.label_path("d/a.Jpg") == "d/a.txt"        # AB would give up on this extension
    # the training modules use this very rule
    from pydarknet.data import detection, paths
    assert detection._label_path is L.label_path and paths.label_path is L.label_path


def test_classifier_label_rule():
    assert L.class_from_path("/data/cat/cat_01.jpg", ["dog", "cat"]) == 1
    assert L.class_from_path("/data/hotdog.jpg", ["hot", "hotdog"]) == 0   # first in order
    assert L.class_from_path("/data/hotdog.jpg", ["hot", "hotdog"], first=False) is None
    assert L.class_from_path("/data/x.jpg", ["dog"]) is None
    assert L.class_from_path("/data/x.jpg", ["dog"], first=False) is None
    # the file name decides when the folders hold other class names, in both uses
    names = ["circle", "square", "triangle"]
    path = "/tmp/square-things/images/000002_triangle.png"
    assert L.classes_in_path(path, names) == [1, 2]
    assert L.class_from_path(path, names) == 2
    assert L.class_from_path(path, names, first=False) == 2
    # ... and a folder's name counts when the file name holds none
    assert L.class_from_path("/data/cat/001.jpg", ["dog", "cat"], first=False) == 1
    assert L.class_from_path("/data/cat/dog/001.jpg", ["dog", "cat"]) == 0
    assert L.class_from_path("/data/cat/dog/001.jpg", ["dog", "cat"], first=False) is None


def test_classifier_training_reports_missing_and_ambiguous_classes():
    from pydarknet.data import ClassificationDataset
    problems = Problems()
    ds = ClassificationDataset(["/d/cat/1.jpg", "/d/x/2.jpg", "/d/hotdog.jpg"],
                               ["cat", "hot", "hotdog"], problems=problems)
    with pytest.warns(UserWarning):
        assert [ds.class_of(i) for i in range(3)] == [0, None, None]
    assert problems.as_dict() == {"no_class_in_path": 1, "class_ambiguous_in_path": 1}
    assert problems.messages == [
        "/d/x/2.jpg: no class name from the names file occurs in the path; image skipped",
        "/d/hotdog.jpg: 2 class names occur in the path (hot, hotdog) and the file name does "
        "not single out one; image skipped"]


def test_coco_image_ids():
    assert image_id_from_path("/coco/images/val2017/000000000139.jpg") == 139
    assert image_id_from_path("COCO_val2014_000000000042.jpg") == 42
    assert image_id_from_path("dog.jpg") is None
    assert len(COCO_IDS) == 80 and COCO_IDS[:12] == list(range(1, 12)) + [13]
    assert COCO_IDS[-1] == 90


def test_kmeans_finds_separated_clusters():
    rng = np.random.default_rng(0)
    truth = np.array([[10, 14], [30, 60], [120, 90]], np.float32)
    wh = np.concatenate([c * rng.uniform(0.95, 1.05, (200, 2)) for c in truth]).astype(np.float32)
    centers, assign, rounds = kmeans_anchors(wh, 3, seed=1)
    np.testing.assert_allclose(centers, truth, rtol=0.02)          # sorted by area
    assert np.bincount(assign).tolist() == [200, 200, 200]
    assert 0.9 < average_iou(wh, centers) <= 1
    assert rounds < 20
    assert format_anchors(centers, 416).replace(" ", "") == "10,14,30,60,120,90"
    assert format_anchors(np.array([[0.5, 1.25]]), 13) == "0.5000,1.2500"
    # IoU of sizes placed at one centre
    np.testing.assert_allclose(size_iou([[2, 2]], [[1, 1], [2, 4]]), [[0.25, 0.5]])
    with pytest.raises(DataError, match="at least num_of_clusters=5"):
        kmeans_anchors(wh[:3], 5)
