"""max |got - ref| <= rtol * max |ref|: the measure every backend-op test uses."""

import numpy as np

f64 = np.float64


def rng(seed=0):
    return np.random.default_rng(seed)


def assert_close(got, ref, rtol=1e-5):
    got = np.asarray(got, f64)
    ref = np.asarray(ref, f64)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    assert np.array_equal(np.isnan(got), np.isnan(ref)), "NaN positions differ"
    ok = ~np.isnan(ref)
    if not ok.any():
        return
    scale = max(np.abs(ref[ok]).max(), 1e-30)
    err = np.abs(got[ok] - ref[ok]).max()
    assert err <= rtol * scale, f"max abs error {err:g} > {rtol:g} * {scale:g}"
