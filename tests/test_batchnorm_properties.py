"""Hypothesis properties of the batch normalizing transform over random
shapes, scales and offsets."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bnnotes.batchnorm import batch_norm_forward

shapes = st.tuples(
    st.integers(2, 9),
    st.integers(1, 4),
    st.lists(st.integers(1, 4), min_size=0, max_size=2),
).map(lambda s: (s[0], s[1], *s[2]))


@st.composite
def batches(draw):
    shape = draw(shapes)
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.floats(1e-2, 1e3))
    offset = draw(st.floats(-1e4, 1e4))
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape) * scale + offset


def _axes(x):
    return (0, *range(2, x.ndim))


@settings(max_examples=150, deadline=None)
@given(batches())
def test_normalized_output_has_zero_mean_and_unit_biased_variance(x):
    """Per channel, x_hat has mean 0 and biased variance var / (var + eps)
    (= 1 when eps is negligible)."""
    eps = 1e-5
    _, cache = batch_norm_forward(x, None, None, eps=eps)
    var = x.var(axis=_axes(x))
    assert np.allclose(cache.x_hat.mean(axis=_axes(x)), 0.0, atol=1e-9)
    np.testing.assert_allclose(
        cache.x_hat.var(axis=_axes(x)),
        var / (var + eps),
        rtol=1e-9,
        atol=1e-12,
    )


@settings(max_examples=150, deadline=None)
@given(batches(), st.data())
def test_output_is_invariant_to_per_channel_shift_and_positive_scale(x, data):
    """BN(a*x + b) = BN(x) for per-channel a > 0 and any b, when eps is scaled by a**2 as well."""
    c = x.shape[1]
    a = np.array(
        data.draw(st.lists(st.floats(1e-2, 1e2), min_size=c, max_size=c))
    )
    b = np.array(
        data.draw(st.lists(st.floats(-1e3, 1e3), min_size=c, max_size=c))
    )
    bshape = (1, c) + (1,) * (x.ndim - 2)
    gamma, beta = np.linspace(0.5, 2.0, c), np.linspace(-1.0, 1.0, c)
    y, _ = batch_norm_forward(x, gamma, beta, eps=1e-5)
    # eps is a variance, so a per-channel scale a needs eps * a**2; a common scale keeps one eps.
    a_common = float(a[0])
    y2, _ = batch_norm_forward(
        x * a_common + b.reshape(bshape), gamma, beta, eps=1e-5 * a_common**2
    )
    np.testing.assert_allclose(y2, y, rtol=1e-6, atol=1e-6)
