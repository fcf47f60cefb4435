"""Claims of Sections 1-3.4 of the BN paper: saturation, bias
cancellation, whitening, batch noise."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bnnotes.batch_noise import batch_noise, predicted_batch_noise
from bnnotes.batchnorm import batch_norm_forward
from bnnotes.bias_cancellation import simulate_bias_drift
from bnnotes.saturation import saturated_fraction, sigmoid, sigmoid_derivative
from bnnotes.whitening import batch_covariance, whiten


@settings(max_examples=200, deadline=None)
@given(st.floats(-700, 700))
def test_sigmoid_derivative_is_g_times_one_minus_g_and_below_exp(x):
    """g'(x) = g(x)(1 - g(x)) wherever that form is accurate, and g'(x) <= min(1/4, exp(-|x|))."""
    d = float(sigmoid_derivative(np.array(x)))
    g = float(sigmoid(np.array(x)))
    if abs(x) < 20:
        assert d == pytest.approx(g * (1 - g), rel=1e-12)
    assert 0.0 <= d <= min(0.25, np.exp(-abs(x))) * (1 + 1e-12)


def test_sigmoid_derivative_matches_torch_autograd():
    """sigmoid_derivative(x) equals torch's autograd derivative at -|x| to 1e-12 (g' is even;
    torch's g(1 - g) is exact only there)."""
    x = torch.linspace(-30, 30, 121, dtype=torch.float64)
    left = (-x.abs()).requires_grad_()
    torch.sigmoid(left).sum().backward()
    np.testing.assert_allclose(
        sigmoid_derivative(x.numpy()), left.grad.numpy(), rtol=1e-12, atol=0
    )


def test_wider_inputs_saturate_more_units():
    """Scaling standard normal pre-activations by 1, 4 and 16 saturates a
    growing fraction of units."""
    z = np.random.default_rng(0).normal(size=100_000)
    fractions = [saturated_fraction(s * z) for s in (1.0, 4.0, 16.0)]
    assert fractions[0] < 1e-4 < fractions[1] < fractions[2]
    assert fractions[2] > 0.7


def test_bias_is_invisible_to_a_centered_output():
    """u + (b + db) - E[u + (b + db)] = u + b - E[u + b] for any db (the
    paper's Sec. 2 identity)."""
    rng = np.random.default_rng(1)
    u, b, db = (
        rng.normal(size=(16, 3)),
        rng.normal(size=3),
        rng.normal(size=3) * 100,
    )
    left = u + (b + db) - (u + (b + db)).mean(axis=0)
    right = u + b - (u + b).mean(axis=0)
    np.testing.assert_allclose(left, right, atol=1e-12)


def test_true_gradient_of_the_bias_is_zero_and_matches_autograd():
    """Through the centering, dl/db = 0: the simulation's true step matches torch
    autograd and never moves b."""
    rng = np.random.default_rng(2)
    u, v = (
        torch.from_numpy(rng.normal(size=(8, 3))),
        torch.from_numpy(rng.normal(size=3)),
    )
    b = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    x = u + b
    ((x - x.mean(dim=0)) @ v - 1.0).pow(2).mean().backward()
    assert torch.all(b.grad.abs() <= 1e-15)
    assert np.all(simulate_bias_drift(steps=30)["bias_true"] == 0.0)


def test_statistics_blind_steps_grow_the_bias_while_the_loss_stays_flat():
    """Ignoring how E[x] depends on b: ||b|| grows linearly without bound, and the
    loss equals the true run's."""
    run = simulate_bias_drift(steps=400)
    assert run["bias_blind"][399] > 1.9 * run["bias_blind"][199] > 0
    np.testing.assert_allclose(run["loss_blind"], run["loss_true"], rtol=1e-12)


def test_whitening_gives_identity_covariance():
    """whiten(x) has identity batch covariance when m > d."""
    x = np.random.default_rng(3).normal(size=(100, 5)) @ np.random.default_rng(
        4
    ).normal(size=(5, 5))
    np.testing.assert_allclose(
        batch_covariance(whiten(x)), np.eye(5), atol=1e-10
    )


@pytest.mark.parametrize(("m", "d"), [(4, 10), (10, 10), (11, 10)])
def test_batch_covariance_rank_is_at_most_m_minus_one(m, d):
    """The batch covariance has rank min(m - 1, d): singular whenever m <= d."""
    cov = batch_covariance(np.random.default_rng(5).normal(size=(m, d)))
    assert np.linalg.matrix_rank(cov) == min(m - 1, d)


def test_whitening_a_small_batch_fails_with_a_clear_error():
    """With m <= d, whitening raises and names the rank; a ridge eps > 0 makes it defined."""
    x = np.random.default_rng(6).normal(size=(6, 10))
    with pytest.raises(ValueError, match=r"singular \(rank 5 < 10"):
        whiten(x)
    assert np.isfinite(whiten(x, eps=1e-3)).all()


def test_batch_norm_of_a_small_batch_is_defined_where_whitening_is_not():
    """BN normalizes each feature alone, so a batch of 6 with 10 features is fine."""
    x = np.random.default_rng(6).normal(size=(6, 10))
    y, _ = batch_norm_forward(x, None, None)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-12)


@pytest.mark.parametrize(
    ("z", "sizes"),
    [(0.0, (32, 64, 128)), (1.0, (32, 64, 128)), (2.0, (64, 128))],
)
def test_batch_noise_matches_the_first_order_prediction(z, sizes):
    """The measured noise of x_hat is within 10% of sqrt((1 + z^2/2)/m): from m = 32
    for |z| <= 1, m = 64 for z = 2."""
    for m in sizes:
        measured = batch_noise(z, m, trials=20_000)
        assert abs(measured / predicted_batch_noise(z, m) - 1) < 0.1


def test_batch_noise_falls_as_one_over_sqrt_m():
    """Quadrupling the batch halves the noise (within 6%) for m >= 32."""
    for m in (32, 64):
        ratio = batch_noise(1.0, 4 * m, trials=20_000) / batch_noise(
            1.0, m, trials=20_000
        )
        assert abs(ratio - 0.5) < 0.03


def test_conv_bias_is_redundant_before_batch_norm():
    """conv(u) + b followed by BN equals conv(u) followed by BN: the mean
    subtraction removes b per channel."""
    torch.manual_seed(0)
    u = torch.randn(4, 3, 6, 6, dtype=torch.float64)
    w, b = (
        torch.randn(5, 3, 3, 3, dtype=torch.float64),
        torch.randn(5, dtype=torch.float64) * 10,
    )
    with_bias, _ = batch_norm_forward(
        torch.nn.functional.conv2d(u, w, b).numpy(), None, None
    )
    without, cache = batch_norm_forward(
        torch.nn.functional.conv2d(u, w).numpy(), None, None
    )
    assert cache.m == 4 * 4 * 4
    np.testing.assert_allclose(with_bias, without, atol=1e-11)
