"""pydarknet.darknet: AB Darknet's Python API (darknet.py) on pydarknet, against what AB's own
darknet.py over libdarknet.so returns (tests/data/darknet_python.json, written by
tools/darknet_python_oracle.py) on tests/test_detect_cli.py's detector and images."""

import json
import pathlib

import cv2
import numpy as np
import pytest

from pydarknet import darknet
from test_detect_cli import dataset  # noqa: F401 (the tiny detector and its data)

ORACLE = pathlib.Path(__file__).parent / "data" / "darknet_python.json"


def same(got, want):
    """The same detections (label, box; the confidence to its printed 2 decimals: a float
    difference of 1e-6 may round the other way), in AB's order of the confidence strings."""
    assert [conf for _, conf, _ in got] == sorted(conf for _, conf, _ in got)
    assert len(got) == len(want)

    def key(d):
        return d[0], tuple(round(v, 2) for v in d[2])
    for a, b in zip(sorted(got, key=key), sorted(want, key=key)):
        assert a[0] == b[0] and abs(float(a[1]) - float(b[1])) <= 0.0100001, (a, b)
        np.testing.assert_allclose(a[2], b[2], rtol=1e-5, atol=1e-4)


def detect_resized(api, network, names, path):
    """darknet_images.py's flow with ``api`` either darknet module (pydarknet's, or AB's in
    tools/darknet_python_oracle.py): the image as RGB, resized to the network's size with
    cv2, copied into a Darknet image, detected at 0.25. Returns (detections, resized)."""
    w, h = api.network_width(network), api.network_height(network)
    resized = cv2.resize(cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB), (w, h),
                         interpolation=cv2.INTER_LINEAR)
    im = api.make_image(w, h, 3)
    api.copy_image_from_bytes(im, resized.tobytes())
    found = api.detect_image(network, names, im, thresh=0.25)
    api.free_image(im)
    return found, resized


def test_darknet_images_py_flow_equals_abs(dataset):
    oracle = json.loads(ORACLE.read_text())["images"]
    network, names, colors = darknet.load_network(str(dataset / "tiny.cfg"),
                                                  str(dataset / "obj.data"),
                                                  str(dataset / "tiny.weights"))
    assert names == ["cat", "dog"] and set(colors) == {"cat", "dog"}
    for case in oracle:
        path = str(dataset / "images" / case["image"])
        image = cv2.imread(path)
        found, resized = detect_resized(darknet, network, names, path)
        same(found, case["resized"])
        drawn = darknet.draw_boxes(found, resized.copy(), colors)
        assert drawn.shape == resized.shape and (drawn != resized).any()
        im = darknet.load_image(path.encode(), 0, 0)
        assert (im.w, im.h) == image.shape[1::-1]
        if case["loaded"] is not None:       # (PNG only: see the oracle tool)
            same(darknet.detect_image(network, names, im, thresh=0.1, nms=0.3), case["loaded"])
    assert sum(case["loaded"] is not None for case in oracle) == 2


def test_batch_mode_equals_abs(dataset):
    """darknet_images.py's batch_detection, as it is written (darknet.POINTER, darknet.IMAGE
    over the batch, network_predict_batch, do_nms_obj, remove_negatives)."""
    want = json.loads(ORACLE.read_text())["batch"]
    network, names, colors = darknet.load_network(str(dataset / "tiny.cfg"),
                                                  str(dataset / "obj.data"),
                                                  str(dataset / "tiny.weights"), batch_size=2)
    paths = (dataset / "valid.txt").read_text().split()
    images = [cv2.imread(paths[k]) for k in (1, 7)]
    h, w, _ = images[0].shape
    size = (darknet.network_width(network), darknet.network_height(network))
    batch_array = np.concatenate([cv2.resize(cv2.cvtColor(im, cv2.COLOR_BGR2RGB), size,
                                             interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
                                  for im in images], axis=0)
    batch_array = np.ascontiguousarray(batch_array.flat, dtype=np.float32) / 255.0
    pointer = batch_array.ctypes.data_as(darknet.POINTER(darknet.c_float))
    pairs = darknet.network_predict_batch(network, darknet.IMAGE(w, h, 3, pointer), 2, w, h,
                                          0.25, .5, None, 0, 0)
    for k in range(2):
        darknet.do_nms_obj(pairs[k].dets, pairs[k].num, len(names), 0.45)
        got = darknet.remove_negatives(pairs[k].dets, names, pairs[k].num)
        assert [g[0] for g in got] == [g[0] for g in want[k]]
        np.testing.assert_allclose([g[1] for g in got], [g[1] for g in want[k]], rtol=1e-5)
        np.testing.assert_allclose([g[2] for g in got], [g[2] for g in want[k]], rtol=1e-5,
                                   atol=1e-4)
    darknet.free_batch_detections(pairs, 2)


def test_helpers_are_abs(capsys):
    assert darknet.bbox2points((10, 20, 4, 6)) == (8, 17, 12, 23)
    assert darknet.decode_detection([("a", 0.123456, (1, 2, 3, 4))]) == \
        [("a", "12.35", (1, 2, 3, 4))]
    darknet.print_detections([("a", "50.0", (1, 2, 3, 4))], coordinates=True)
    assert "a: 50.0%    (left_x: 1   top_y:  2   width:   3   height:  4)" in \
        capsys.readouterr().out
    boxes = [("a", "90", (10, 10, 10, 10)), ("a", "80", (11, 11, 10, 10)),
             ("b", "70", (50, 50, 10, 10))]
    assert sorted(d[-1][0] for d in darknet.non_max_suppression_fast(boxes, 0.5)) == [11, 50]
    im = darknet.make_image(3, 2, 3)
    with pytest.raises(darknet.PydarknetError, match="17 bytes for a 3x2x3 image"):
        darknet.copy_image_from_bytes(im, bytes(17))


def test_do_nms_sort_is_darknets_sort_nms():
    """The list form's do_nms_sort leaves the probabilities pydarknet's Darknet NMS leaves."""
    from pydarknet.eval.decode import Detections
    from pydarknet.eval.nms import nms
    rng = np.random.default_rng(1)
    n, classes = 300, 5
    boxes = np.concatenate([rng.uniform(0.2, 0.8, (n, 2)), rng.uniform(0.05, 0.3, (n, 2))],
                           1).astype(np.float32)
    probs = (rng.uniform(0, 1, (n, classes)) * (rng.random((n, classes)) < 0.3)).astype(
        np.float32)
    obj = rng.uniform(0.3, 1, n).astype(np.float32)
    kept = nms(Detections(boxes.copy(), obj.copy(), probs.copy(), np.zeros(n, np.int32),
                          np.arange(n), (1, 1)), 0.45, "default")
    want = np.zeros_like(probs)
    want[kept.index] = kept.probs
    dets = [darknet.DETECTION(darknet.BOX(*map(float, b)), p.copy(), float(o))
            for b, p, o in zip(boxes, probs, obj)]
    row = {id(x): k for k, x in enumerate(dets)}
    darknet.do_nms_sort(dets, n, classes, 0.45)
    got = np.zeros_like(probs)
    for x in dets:
        got[row[id(x)]] = x.prob
    np.testing.assert_array_equal(got, want)
    last = [probs[row[id(x)], classes - 1] for x in dets]       # (sorted before its pass)
    assert last == sorted(last, reverse=True)
