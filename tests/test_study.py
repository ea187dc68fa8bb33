"""The Mish-paper studies (bench/study_common.py, bench/mish_speed.py) on a tiny generated data
set: the study cfg builds at every depth, a run goes through the classifier training path and
the same seed gives the same accuracy and loss to the last digit, the composed Mish of the
speed table equals the fused one, and the plots are written."""

import json
import os
import pathlib
import sys

import cv2
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import mish_speed  # noqa: E402
import study_common as S  # noqa: E402

from pydarknet.backend import ACTIVATIONS, get_backend  # noqa: E402
from pydarknet.network import Network  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return S.make_tiny_dataset(str(tmp_path_factory.mktemp("tiny")), per_class=6,
                               valid_per_class=4)


def test_every_study_activation_is_a_darknet_activation():
    assert set(S.TABLE1_ACTIVATIONS) <= set(ACTIVATIONS)
    assert "softplus" not in ACTIVATIONS        # the study says so instead of running it


@pytest.mark.parametrize("depth", [3, 4, 6, 16])
def test_study_cfg_has_depth_batchnorm_convs(tmp_path, depth):
    path = S.write_cfg(str(tmp_path / "s.cfg"), activation="swish", depth=depth, batch=2)
    net = Network(path)
    convs = [l for l in net.layers if l.layer_type == "convolutional"]
    assert len(convs) == depth + 1                        # + the 1x1 classes conv
    assert all(l.batch_normalize and l.activation == "swish" for l in convs[:-1])
    assert net.layers[-1].outputs == 10 and net.net.channels == 1


def test_same_seed_same_accuracy_to_the_last_digit(tmp_path, tiny):
    data = S.read_data(tiny)
    opts = {"activation": "mish", "depth": 3, "width": 4, "batch": 6}
    runs = [S.train_and_test(opts, data, str(tmp_path / f"run{i}"), seed=7, iterations=2,
                             eval_every=1, eval_batch=5) for i in range(2)]
    a, b = runs
    assert a["iterations"] == 2 and len(a["curve"]) == 2
    assert a["test_images"] == 12 and a["train_images"] == 18
    assert a["top1"] == b["top1"] and a["test_loss"] == b["test_loss"]
    assert a["curve"] == b["curve"] and a["train_avg_loss"] == b["train_avg_loss"]
    assert np.isfinite(a["test_loss"]) and 0 <= a["top1"] <= 1
    json.dumps(a)                                        # a JSON-able record


def test_study_script_writes_table_json_and_plot(tmp_path, tiny):
    import activation_study
    out = str(tmp_path / "act")
    args = ["--data", tiny, "--train-images", "12", "--test-images", "6", "--epochs", "1",
            "--seeds", "1", "--batch", "6", "--width", "4", "--activations", "relu", "leaky",
            "--depth", "3", "--jobs", "1", "--out", out, "--work", str(tmp_path / "w")]
    assert activation_study.main(args) == 0
    table = open(out + ".md").read()
    assert "| relu |" in table and "| leaky |" in table and "SoftPlus" in table
    runs = json.load(open(out + ".json"))["runs"]
    assert sorted(r["key"] for r in runs) == ["act-leaky-d3-s1", "act-relu-d3-s1"]
    assert cv2.imread(out + ".png") is not None
    mtime = os.path.getmtime(out + ".json")
    assert activation_study.main(args) == 0              # resumes: nothing to run again
    assert json.load(open(out + ".json"))["runs"] == runs
    assert os.path.getmtime(out + ".json") == mtime
    os.remove(out + ".png")
    assert activation_study.main(args + ["--report-only"]) == 0   # the plot again, no run
    assert cv2.imread(out + ".png") is not None


def test_composed_mish_equals_the_fused_one():
    be = get_backend("cpu")
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((2, 3, 5, 7)) * 4).astype(np.float32)
    delta = rng.standard_normal(x.shape).astype(np.float32)
    cases, bufs = mish_speed.pydarknet_cases(be, x, delta)
    results = {}
    for name in ("mish (fused)", "mish (softplus, tanh, multiply)"):
        fwd, bwd, reset = cases[name]
        fwd()
        reset()
        bwd()
        results[name] = bufs["y"].copy(), bufs["d"].copy()
    (y1, d1), (y2, d2) = results.values()
    np.testing.assert_allclose(y2, y1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d2, d1, rtol=1e-4, atol=1e-5)


def test_mish_speed_runs_on_a_small_tensor(tmp_path):
    out = tmp_path / "speed.json"
    assert mish_speed.main(["--shape", "1", "2", "8", "8", "--repeats", "1", "--no-torch",
                            "--json", str(out)]) == 0
    rows = json.load(open(out))["rows"]
    assert {"pydarknet C core relu", "pydarknet C core mish (fused)", "numpy softplus",
            "numpy mish (softplus, tanh, multiply)"} <= set(rows)


def test_classifier_train_and_valid_commands_repeat_to_the_last_digit(tmp_path, tiny, capsys):
    """The commands of bench/results/fashion-mnist.md on the tiny set: `classifier train` with
    --seed twice, `classifier valid` of each: the same top-1 and top-k, digit for digit."""
    from pydarknet.cli import main
    cfg = S.write_cfg(str(tmp_path / "tiny.cfg"), depth=3, width=4, batch=6, max_batches=3,
                      classes=3)
    lines = []
    for run in ("a", "b"):
        backup = str(tmp_path / run)
        assert main(["classifier", "train", tiny, cfg, "-dont_show", "--seed", "3",
                     "--backup", backup]) == 0
        capsys.readouterr()
        assert main(["classifier", "valid", tiny, cfg, f"{backup}/tiny_final.weights"]) == 0
        lines.append([l for l in capsys.readouterr().out.splitlines() if "top 1" in l][-1])
    assert lines[0] == lines[1] and lines[0].startswith("12 images: top 1: ")


def test_rewritten_table_keeps_the_notes_around_it(tmp_path):
    path = str(tmp_path / "t.md")
    S.write_markdown(path, "| a |")
    text = open(path).read()
    with open(path, "w") as f:
        f.write("# Title\n\n" + text + "\nNotes.\n")
    S.write_markdown(path, "| b |")
    text = open(path).read()
    assert text.startswith("# Title\n") and text.endswith("Notes.\n")
    assert "| b |" in text and "| a |" not in text


def _write_idx(path, array):
    """An idx file (gzipped) of a uint8 array: magic 0,0,8,ndim then big-endian dims."""
    import gzip
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big")
                                                      for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, np.uint8).tobytes())
    return str(path)


def test_idx_slice_converted_then_trained_by_the_study(tmp_path, capsys):
    """Fashion-MNIST's path in small: idx files made here, `pydarknet data idx` (train, then
    valid) into Darknet's layout, and a study run of 2 iterations on it."""
    from pydarknet.cli import main
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        images = rng.integers(0, 256, (n, 28, 28), np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        img = _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
        lab = _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
        split = "train" if prefix == "train" else "valid"
        assert main(["data", "idx", img, lab, str(tmp_path / "fm"), "--names", "fashion-mnist",
                     "--list", split]) == 0
    capsys.readouterr()
    data = S.read_data(str(tmp_path / "fm" / "obj.data"))
    assert len(data["train"]) == 30 and len(data["valid"]) == 10 and len(data["names"]) == 10
    r = S.train_and_test({"activation": "relu", "depth": 3, "width": 4, "batch": 6}, data,
                         str(tmp_path / "run"), seed=1, iterations=2, eval_batch=5)
    assert r["iterations"] == 2 and r["test_images"] == 10 and 0 <= r["top1"] <= 1
