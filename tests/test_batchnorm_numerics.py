"""Numerical accuracy in float32: the two-pass variance against the one-pass formula."""

import numpy as np

from bnnotes.batchnorm import BatchNorm, batch_norm_forward


def _data():
    rng = np.random.default_rng(0)
    x64 = rng.normal(size=(256, 8)) + 1e4
    return x64, x64.astype(np.float32)


def test_float32_with_large_offset_matches_float64_reference():
    """x + 1e4 in float32: the output stays within 1e-5 (absolute; outputs are O(1)) of
    float64 BN of the same values."""
    _, x32 = _data()
    y32, _ = batch_norm_forward(x32, None, None)
    y64, _ = batch_norm_forward(x32.astype(np.float64), None, None)
    assert np.max(np.abs(y32 - y64)) < 1e-5


def test_float32_variance_is_accurate_where_one_pass_formula_fails():
    """The batch variance is within 1e-5 relative of float64, while E[x^2] - E[x]^2 in
    float32 is off by more than 10%."""
    _, x32 = _data()
    _, cache = batch_norm_forward(x32, None, None)
    exact = x32.astype(np.float64).var(axis=0)
    one_pass = (x32 * x32).mean(axis=0) - x32.mean(axis=0) ** 2
    assert np.max(np.abs(cache.var - exact) / exact) < 1e-5
    assert np.max(np.abs(one_pass - exact) / exact) > 1e-1


def test_running_variance_is_accurate_with_large_offset():
    """The running variance of a float32 layer fed x + 1e4 matches the unbiased float64 variance."""
    _, x32 = _data()
    layer = BatchNorm(8, momentum=1.0, dtype=np.float32)
    layer(x32)
    exact = x32.astype(np.float64).var(axis=0, ddof=1)
    assert np.max(np.abs(layer.running_var - exact) / exact) < 1e-5
