"""Layer-to-layer Jacobian singular values in a random deep network (the Sec. 3.3 conjecture)."""

import numpy as np
import pytest

from bnnotes.jacobian import NONLINEARITIES, layer_jacobian_singular_values


@pytest.mark.parametrize("nonlinearity", sorted(NONLINEARITIES))
def test_with_bn_singular_values_do_not_depend_on_weight_scale(nonlinearity):
    """With BN the singular values are the same for weight scales 0.5 and 4
    (scale invariance), to 1e-9."""
    small = layer_jacobian_singular_values(
        depth=4, width=24, batch=64, scale=0.5, nonlinearity=nonlinearity
    )
    large = layer_jacobian_singular_values(
        depth=4, width=24, batch=64, scale=4.0, nonlinearity=nonlinearity
    )
    np.testing.assert_allclose(large, small, rtol=1e-9, atol=1e-12)


def test_without_bn_linear_network_singular_values_scale_with_weights():
    """Without BN, a linear network's singular values are exactly
    proportional to the weight scale."""
    one = layer_jacobian_singular_values(
        depth=3, width=16, scale=1.0, batch_norm=False, nonlinearity="linear"
    )
    three = layer_jacobian_singular_values(
        depth=3, width=16, scale=3.0, batch_norm=False, nonlinearity="linear"
    )
    np.testing.assert_allclose(three, 3.0 * one, rtol=1e-12)


def test_jacobian_matches_finite_differences_with_frozen_statistics():
    """The BN Jacobian diag(1/sigma) W diag(g'(x)) is the derivative of one layer with
    its statistics held fixed."""
    rng = np.random.default_rng(0)
    g, _ = NONLINEARITIES["tanh"]
    x = rng.normal(size=(32, 5))
    w = rng.normal(0, 1 / np.sqrt(5), size=(5, 5))
    z = g(x) @ w.T
    mu, sigma = z.mean(axis=0), z.std(axis=0)

    def layer(v):
        return (g(v) @ w.T - mu) / sigma

    h = 1e-6
    numeric = np.stack(
        [
            (layer(x[0] + h * e) - layer(x[0] - h * e)) / (2 * h)
            for e in np.eye(5)
        ],
        axis=1,
    )
    analytic = (1 / sigma)[:, None] * w * (1 - np.tanh(x[0]) ** 2)[None, :]
    np.testing.assert_allclose(numeric, analytic, rtol=1e-7, atol=1e-9)


def test_bn_puts_the_rms_singular_value_near_one_but_keeps_the_spread():
    """With BN (tanh) the RMS singular value is within 0.3 of 1 at every layer, yet the
    largest/smallest ratio stays above 10."""
    sv = layer_jacobian_singular_values(
        depth=8, width=64, batch=256, nonlinearity="tanh"
    )
    rms = np.sqrt((sv**2).mean(axis=(1, 2)))
    assert np.all(np.abs(rms - 1) < 0.3)
    assert np.median(sv[..., 0] / sv[..., -1]) > 10


def test_bad_arguments_are_rejected():
    """Unknown nonlinearity, batch of one and non-positive scale raise ValueError."""
    with pytest.raises(ValueError, match="nonlinearity"):
        layer_jacobian_singular_values(nonlinearity="gelu")
    with pytest.raises(ValueError, match="batch must be an integer >= 2"):
        layer_jacobian_singular_values(batch=1, examples=1)
    with pytest.raises(ValueError, match="scale"):
        layer_jacobian_singular_values(scale=0.0)
