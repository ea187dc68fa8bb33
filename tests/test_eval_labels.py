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


def test_label_lines_are_checked_with_path_and_line():
    problems = Problems()
    with pytest.warns(UserWarning):
        boxes = L.parse_labels(["0 0.5 0.5 0.2 0.2", "", "1 0.5 0.5 0.2", "2 0.1 0.1 0.1 0.1",
                                "a 0.1 0.1 0.1 0.1", "1 nan 0.1 0.1 0.1", "1 0.5 0.5 -1 0.1",
                                "1 1.2 0.5 1.5 0.1"], "x.txt", classes=2, problems=problems)
    np.testing.assert_allclose(boxes, [[0, 0.5, 0.5, 0.2, 0.2], [1, 1.2, 0.5, 1.5, 0.1]])
    text = "\n".join(problems.messages)
    for line, why in [(3, "expected 5 values"), (4, "class id 2 is outside 0..1"),
                      (5, "the class id must be an integer"), (6, "x, y, w, h must be finite"),
                      (7, "width and height must be > 0")]:
        assert f"x.txt:{line}: {why}" in text
    assert problems.as_dict() == {"label_line_bad": 5}
    with pytest.warns(UserWarning, match="/nonexistent/a.txt: label file not found"):
        assert L.read_labels("/nonexistent/a.txt", 2, problems) is None


def test_classifier_label_rule():
    assert L.class_from_path("/data/cat/cat_01.jpg", ["dog", "cat"]) == 1
    assert L.class_from_path("/data/hotdog.jpg", ["hot", "hotdog"]) == 0   # first in order
    assert L.class_from_path("/data/x.jpg", ["dog"]) is None


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
