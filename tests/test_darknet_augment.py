"""The detector's augmentation against AB Darknet's own load_data_detection (its OpenCV build)
given the same random draws (tools/darknet_augment_fuzz.py; tests/data/darknet_augment.json
holds Darknet's truths and 8x8 block means of its images for 12 cases: jitter, resize,
letter_box, flip, hue, saturation, exposure, blur, mixup) and 5 classifier cases. Three have
resize=1.5, where Darknet's float arithmetic truncates a crop side to another integer than
double arithmetic does."""

import json
import pathlib
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
ORACLE = ROOT / "tests" / "data" / "darknet_augment.json"
sys.path.insert(0, str(ROOT / "tools"))

CASES = json.loads(ORACLE.read_text()) if ORACLE.exists() else {}


@pytest.mark.parametrize("seed", sorted((k for k in CASES if "/" not in k), key=int))
def test_augmented_sample_matches_darknets(seed, tmp_path):
    from darknet_augment_fuzz import block_means, make_case, pydarknet_sample
    want = CASES[seed]
    opts, floats, gens = make_case(np.random.default_rng(int(seed)), tmp_path)
    assert opts == want["opts"], "the case generator changed: regenerate the oracle"
    image, truth = pydarknet_sample(tmp_path, opts, floats, gens)
    theirs = np.array(want["truth"]).reshape(-1, 5)
    order = lambda t: t[np.lexsort(t.T[::-1])]       # Darknet shuffles the boxes
    np.testing.assert_allclose(order(truth), order(theirs), atol=2e-6)
    # pydarknet crops and resizes in one warpAffine, Darknet with crop + resize: a few levels
    # at edges, nothing in 8x8 block means
    np.testing.assert_allclose(block_means(image), want["blocks"], atol=2 / 255)


@pytest.mark.parametrize("case", sorted(k for k in CASES if k.startswith("classifier/")))
def test_classifier_sample_matches_darknets(case, tmp_path):
    """The classifier's rotated, aspect-jittered crop, flip and float HSV against Darknet's
    load_image_augment_paths; its shorter side is an int there (im.w * aspect truncated)."""
    from darknet_augment_fuzz import (block_means, make_classifier_case,
                                      pydarknet_classifier_sample)
    want = CASES[case]
    seed = int(case.split("/")[1])
    opts, floats, gens = make_classifier_case(np.random.default_rng(seed), tmp_path)
    assert opts == want["opts"], "the case generator changed: regenerate the oracle"
    image = pydarknet_classifier_sample(tmp_path, opts, floats, gens)
    np.testing.assert_allclose(block_means(image), want["blocks"], atol=1 / 255)
