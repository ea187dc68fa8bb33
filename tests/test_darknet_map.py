"""``detector map`` against AB Darknet's own program on random detectors and data sets
(tools/darknet_map_fuzz.py: every head kind, nms_kind, letter_box, -points, difficult lists,
empty truth boxes), from the reports stored in tests/data/darknet_map.json; and ``detector
valid``'s NMS on boxes in pixels, as Darknet's."""

import json
import pathlib
import sys

import numpy as np
import pytest

from pydarknet.cli import main

ROOT = pathlib.Path(__file__).resolve().parent.parent
ORACLE = ROOT / "tests" / "data" / "darknet_map.json"
sys.path.insert(0, str(ROOT / "tools"))

SEEDS = json.loads(ORACLE.read_text()) if ORACLE.exists() else {}


@pytest.mark.parametrize("case", sorted(SEEDS))
def test_map_report_matches_darknets(case, tmp_path, capsys, recwarn):
    """A case is 'seed' or 'seed/kind,...' (the head kinds it draws from: a softmax tree's
    [region], YOLOv1's [detection])."""
    from darknet_map_fuzz import compare, make_case
    want = SEEDS[case]
    seed, _, kinds = case.partition("/")
    flags = make_case(np.random.default_rng(int(seed)), tmp_path,
                      kinds.split(",") if kinds else None)
    assert flags == want["flags"], "the case generator changed: regenerate the oracle"
    # (recwarn takes the warnings of the empty truth boxes, which the command reports)
    code = main(["detector", "map", str(tmp_path / "obj.data"), str(tmp_path / "d.cfg"),
                 str(tmp_path / "d.weights"), *flags, "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert compare(out, want["report"]) is None, (out, want["report"])


def test_valid_suppresses_in_pixels_as_darknet():
    """Darknet's validate_detector takes boxes in pixels (get_network_boxes relative=0), and
    DIoU's centre distance is not kept by scaling x and y differently: on a 10 x 200 image two
    boxes side by side in x are far apart in relative units and close in pixels."""
    from pydarknet.eval.decode import Detections
    from pydarknet.eval.nms import nms
    boxes = np.array([[0.5, 0.5, 0.6, 0.06], [0.7, 0.5, 0.6, 0.06]], np.float32)
    dets = Detections(boxes, np.ones(2, np.float32), np.array([[0.9], [0.8]], np.float32),
                      np.zeros(2, np.int32), np.arange(2), (10, 200))
    # IoU 0.5; DIoU 0.5 - (0.04 / 0.6436) ** 0.6 = 0.311 relative, 0.5 - (4 / 208) ** 0.6 =
    # 0.407 in pixels (the enclosing box 8 x 12 pixels)
    relative = nms(dets, 0.35, "diounms", 0.6)
    pixels = nms(dets, 0.35, "diounms", 0.6, pixels=True)
    assert (relative.probs > 0).sum() == 2
    assert (pixels.probs > 0).sum() == 1
    for thresh in (0.45, 0.55):                 # IoU: the same either way
        np.testing.assert_array_equal(nms(dets, thresh, "default", pixels=True).probs,
                                      nms(dets, thresh, "default").probs)
