"""Section 4 of Santurkar et al. (2018): Fact C.2, Theorems 4.1 and 4.2, Observation 4.3
and Lemma 4.5, in float64."""

import numpy as np
import pytest
import torch
from helpers import RTOL64, rel_err, t
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bnnotes.theory import (
    QuadraticLoss,
    SoftmaxCrossEntropy,
    bn_backward,
    bn_jacobian,
    bn_loss_hessian,
    gradient_norm_bound,
    hessian_quadratic_form,
    initialization_gain,
    linear_bn,
    reproduce_activations,
    standardize,
    unit_derivatives,
)

# --------------------------------------------------------------------------- helpers


def _torch_bn(y, gamma, beta):
    """gamma * (y - mean) / std + beta over dim 0, with the 1/m std and eps = 0, in torch."""
    mu = y.mean(dim=0)
    sigma = ((y - mu) ** 2).mean(dim=0).sqrt()
    return gamma * (y - mu) / sigma + beta


def _network(seed, m=7, n=4, d=5):
    """A random batch, weights, gamma (with a negative entry), beta and labels."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(m, d)) + rng.normal(size=d)
    weight = rng.normal(size=(n, d))
    gamma = rng.uniform(0.3, 3.0, size=n) * np.where(
        np.arange(n) == 1, -1.0, 1.0
    )
    beta = rng.normal(size=n)
    labels = rng.integers(0, n, size=m)
    return x, weight, gamma, beta, labels


def _torch_unit_loss(loss_fn, y, gamma, beta, unit):
    """y_j -> L(BN(y)) with the other columns of y held fixed, for torch.autograd.functional."""
    y_t, gamma_t, beta_t = t(y), t(gamma), t(beta)

    def f(y_unit):
        columns = [
            y_unit if i == unit else y_t[:, i] for i in range(y.shape[1])
        ]
        return loss_fn(_torch_bn(torch.stack(columns, dim=1), gamma_t, beta_t))

    return f


def _random_symmetric(rng, m, psd=False):
    a = rng.normal(size=(m, m))
    return a @ a.T if psd else (a + a.T) / 2


@st.composite
def unit_instances(draw, min_m=2):
    """y (m,), a downstream gradient g, a symmetric Hessian H and gamma of either sign."""
    m = draw(st.integers(min_m, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.floats(1e-2, 1e2))
    offset = draw(st.floats(-1e2, 1e2)) * scale
    gamma = draw(st.floats(0.05, 20.0)) * draw(st.sampled_from([-1.0, 1.0]))
    rng = np.random.default_rng(seed)
    y = rng.normal(size=m) * scale + offset
    g = rng.normal(size=m) * draw(st.floats(1e-2, 1e2)) + draw(
        st.floats(-5, 5)
    )
    h = _random_symmetric(rng, m, psd=draw(st.booleans()))
    assume(np.ptp(y) > 1e-6 * scale)
    return y, g, h, gamma


# ------------------------------------------------------------------- Fact C.2 and the backward pass


@pytest.mark.parametrize("m", [2, 3, 8, 33])
def test_bn_jacobian_matches_torch_autograd(m):
    """bn_jacobian(y) equals torch's Jacobian of (y - mean) / std (1/m std) to 1e-10: Fact C.2."""
    y = np.random.default_rng(m).normal(2.0, 3.0, size=m)
    ref = torch.autograd.functional.jacobian(
        lambda v: _torch_bn(v, 1.0, 0.0), t(y)
    ).numpy()
    assert rel_err(bn_jacobian(y), ref) <= RTOL64


def test_sigma_times_jacobian_is_the_projection_off_one_and_y_hat():
    """sigma * J is symmetric, idempotent, of rank m - 2, and maps 1 and y_hat to 0."""
    y = np.random.default_rng(0).normal(size=9)
    stats = standardize(y)
    p = stats.sigma * bn_jacobian(y)
    assert np.allclose(p, p.T, rtol=0, atol=1e-15)
    assert np.allclose(p @ p, p, rtol=0, atol=1e-14)
    assert np.linalg.matrix_rank(p) == 7
    assert (
        np.abs(p @ np.ones(9)).max() < 1e-14
        and np.abs(p @ stats.y_hat).max() < 1e-14
    )


@pytest.mark.parametrize("gamma", [1.7, -0.6, 0.0])
def test_bn_backward_matches_torch_autograd(gamma):
    """bn_backward(g, y, gamma) is torch's gradient of <g, gamma * BN(y) + beta> w.r.t. y,
    for either sign of gamma."""
    rng = np.random.default_rng(1)
    y, g = rng.normal(size=10) * 4 + 7, rng.normal(size=10)
    y_t = t(y).requires_grad_()
    (t(g) * _torch_bn(y_t, gamma, 0.3)).sum().backward()
    assert np.allclose(
        bn_backward(g, y, gamma),
        y_t.grad.numpy(),
        rtol=0,
        atol=RTOL64 * np.abs(g).max() / y.std(),
    )


# --------------------------------------------------------------------------- Theorem 4.1


@settings(max_examples=200, deadline=None)
@given(unit_instances())
def test_theorem_4_1_with_coefficient_one_over_m_is_an_equality(instance):
    """||grad_y L_hat||^2 = gamma^2/sigma^2 (||g||^2 - <1,g>^2/m - <g,y_hat>^2/m)
    to 1e-10 of the largest term."""
    y, g, _, gamma = instance
    terms = gradient_norm_bound(g, y, gamma)
    assert abs(terms.lhs - terms.rhs) <= RTOL64 * terms.scale * terms.total


def test_theorem_4_1_left_side_is_the_torch_gradient_norm_of_the_bn_network():
    """For softmax cross-entropy after linear + BN, lhs is ||dL/dy_j||^2 from torch
    autograd and rhs equals it."""
    x, weight, gamma, beta, labels = _network(2)
    layer = linear_bn(x, weight, gamma, beta)
    loss = SoftmaxCrossEntropy(labels)
    for unit in range(weight.shape[0]):
        f = _torch_unit_loss(
            lambda z: torch.nn.functional.cross_entropy(
                z, torch.from_numpy(labels)
            ),
            layer.y,
            gamma,
            beta,
            unit,
        )
        grad = torch.autograd.functional.jacobian(
            f, t(layer.y[:, unit])
        ).numpy()
        g, _ = unit_derivatives(loss, layer.z, unit)
        terms = gradient_norm_bound(g, layer.y[:, unit], gamma[unit])
        assert abs(terms.lhs / float(grad @ grad) - 1) <= RTOL64
        assert abs(terms.rhs / float(grad @ grad) - 1) <= RTOL64


def test_one_over_sqrt_m_reading_fails_for_a_gradient_along_y_hat():
    """With g = y_hat the BN gradient is 0 but the 1/sqrt(m) right-hand side is m - m^1.5 < 0."""
    y = np.random.default_rng(3).normal(size=16)
    g = standardize(y).y_hat
    exact = gradient_norm_bound(g, y, 1.0)
    printed = gradient_norm_bound(g, y, 1.0, coefficient="1/sqrt(m)")
    assert (
        exact.lhs < 1e-20
        and abs(exact.rhs) < 1e-12 * exact.scale * exact.total
    )
    assert printed.rhs == pytest.approx(
        exact.scale * (16 - 16**1.5), rel=1e-12
    )
    assert printed.lhs > printed.rhs


@settings(max_examples=100, deadline=None)
@given(unit_instances(min_m=3))
def test_one_over_sqrt_m_reading_fails_whenever_the_gradient_correlates_with_y_hat(
    instance,
):
    """lhs - rhs(1/sqrt m) = gamma^2/sigma^2 (1/sqrt(m) - 1/m) <g,
    y_hat>^2 > 0 when <g, y_hat> != 0."""
    y, g, _, gamma = instance
    printed = gradient_norm_bound(g, y, gamma, coefficient="1/sqrt(m)")
    m, corr = y.size, float(g @ standardize(y).y_hat)
    excess = printed.scale * (1 / np.sqrt(m) - 1 / m) * corr**2
    assume(excess > 1e-6 * printed.scale * printed.total)
    assert printed.lhs - printed.rhs == pytest.approx(excess, rel=1e-8)
    assert printed.lhs > printed.rhs


def test_with_gamma_equal_to_sigma_the_gradient_still_shrinks():
    """At gamma = sigma the scale is 1 and ||grad_y L_hat||^2 is ||g||^2 minus both
    removed terms: not a rescaling."""
    rng = np.random.default_rng(4)
    y, g = rng.normal(size=12) * 5, rng.normal(size=12) + 1.0
    terms = gradient_norm_bound(g, y, standardize(y).sigma)
    assert terms.scale == pytest.approx(1.0, rel=1e-15)
    assert terms.lhs == pytest.approx(
        terms.total - terms.mean_term - terms.correlation_term, rel=1e-12
    )
    assert (
        terms.mean_term > 0.1 * terms.total and terms.lhs < 0.9 * terms.total
    )


def test_theorem_4_1_fails_if_the_plain_gradient_is_taken_at_y_instead_of_z():
    """Reading grad_y L at the plain network's own point y breaks the statement: a
    loss with its minimum at y."""
    rng = np.random.default_rng(5)
    y = rng.normal(size=8) * 3 + 1
    gamma, beta = 1.3, -0.4
    z = gamma * standardize(y).y_hat + beta
    weights = np.diag(
        np.arange(1.0, 9.0)
    )  # L(u) = (u - y)^T A (u - y) / 2: minimum at y
    loss = QuadraticLoss(weights, y[:, None])
    g_at_y = loss.gradient(y[:, None])[:, 0]
    g_at_z = loss.gradient(z[:, None])[:, 0]
    other = gradient_norm_bound(g_at_y, y, gamma)
    ours = gradient_norm_bound(g_at_z, y, gamma)
    assert other.rhs == 0.0 and ours.lhs > 1e-3
    assert ours.lhs > other.rhs


# --------------------------------------------------------------------------- downstream losses


def test_quadratic_loss_gradient_and_hessian_match_torch_autograd():
    """QuadraticLoss value, gradient and Hessian equal torch autograd's for
    an indefinite A, to 1e-10."""
    rng = np.random.default_rng(6)
    a, target, z = (
        _random_symmetric(rng, 12),
        rng.normal(size=(4, 3)),
        rng.normal(size=(4, 3)),
    )
    loss = QuadraticLoss(a, target)

    def f(v):
        r = v.reshape(-1) - t(target).reshape(-1)
        return 0.5 * r @ t(a) @ r

    assert abs(loss.value(z) / f(t(z)).item() - 1) <= RTOL64
    assert (
        rel_err(
            loss.gradient(z),
            torch.autograd.functional.jacobian(f, t(z)).numpy(),
        )
        <= RTOL64
    )
    assert (
        rel_err(
            loss.hessian(z),
            torch.autograd.functional.hessian(f, t(z)).reshape(12, 12).numpy(),
        )
        <= RTOL64
    )


def test_softmax_cross_entropy_gradient_and_hessian_match_torch_autograd():
    """SoftmaxCrossEntropy value, gradient and Hessian equal torch's
    cross_entropy autograd to 1e-10."""
    rng = np.random.default_rng(7)
    z, labels = rng.normal(size=(5, 4)) * 3, rng.integers(0, 4, size=5)

    def f(v):
        return torch.nn.functional.cross_entropy(v, torch.from_numpy(labels))

    loss = SoftmaxCrossEntropy(labels)
    assert abs(loss.value(z) / f(t(z)).item() - 1) <= RTOL64
    assert (
        rel_err(
            loss.gradient(z),
            torch.autograd.functional.jacobian(f, t(z)).numpy(),
        )
        <= RTOL64
    )
    assert (
        rel_err(
            loss.hessian(z),
            torch.autograd.functional.hessian(f, t(z)).reshape(20, 20).numpy(),
        )
        <= RTOL64
    )


def test_softmax_cross_entropy_unit_hessian_is_diagonal_and_positive_semidefinite():
    """H_jj of cross-entropy is diag(p_j (1 - p_j)) / m: examples do not interact, and H_jj >= 0."""
    rng = np.random.default_rng(8)
    z, labels = rng.normal(size=(6, 3)), rng.integers(0, 3, size=6)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    _, h = unit_derivatives(SoftmaxCrossEntropy(labels), z, 2)
    assert rel_err(h, np.diag(p[:, 2] * (1 - p[:, 2]) / 6)) <= RTOL64


# --------------------------------------------------------------------------- Theorem 4.2


@pytest.mark.parametrize("kind", ["quadratic", "cross_entropy"])
def test_bn_loss_hessian_matches_torch_autograd(kind):
    """bn_loss_hessian(g, H, y_j, gamma) equals torch's Hessian of y_j -> L(BN(y))
    for every unit, to 1e-10."""
    x, weight, gamma, beta, labels = _network(9)
    layer = linear_bn(x, weight, gamma, beta)
    m, n = layer.z.shape
    if kind == "quadratic":
        rng = np.random.default_rng(10)
        a, target = _random_symmetric(rng, m * n), rng.normal(size=(m, n))
        loss = QuadraticLoss(a, target)

        def torch_loss(z):
            r = z.reshape(-1) - t(target).reshape(-1)
            return 0.5 * r @ t(a) @ r

    else:
        loss = SoftmaxCrossEntropy(labels)

        def torch_loss(z):
            return torch.nn.functional.cross_entropy(
                z, torch.from_numpy(labels)
            )

    for unit in range(n):
        f = _torch_unit_loss(torch_loss, layer.y, gamma, beta, unit)
        ref = torch.autograd.functional.hessian(f, t(layer.y[:, unit])).numpy()
        g, h = unit_derivatives(loss, layer.z, unit)
        assert (
            rel_err(bn_loss_hessian(g, h, layer.y[:, unit], gamma[unit]), ref)
            <= RTOL64
        )


@pytest.mark.parametrize("kind", ["quadratic", "cross_entropy"])
def test_both_sides_of_the_first_form_from_torch_autograd_agree(kind):
    """LHS from torch's gradient and Hessian of L_hat, RHS from torch's g and H_jj
    of L at z: equal to 1e-10."""
    x, weight, gamma, beta, labels = _network(11, m=8, n=3)
    layer = linear_bn(x, weight, gamma, beta)
    m, n = layer.z.shape
    rng = np.random.default_rng(12)
    a, target = (
        _random_symmetric(rng, m * n, psd=True),
        rng.normal(size=(m, n)),
    )
    if kind == "quadratic":

        def torch_loss(z):
            r = z.reshape(-1) - t(target).reshape(-1)
            return 0.5 * r @ t(a) @ r

    else:

        def torch_loss(z):
            return torch.nn.functional.cross_entropy(
                z, torch.from_numpy(labels)
            )

    z_t = t(layer.z)
    for unit in range(n):
        y_j = layer.y[:, unit]
        f_hat = _torch_unit_loss(torch_loss, layer.y, gamma, beta, unit)
        d = torch.autograd.functional.jacobian(f_hat, t(y_j)).numpy()
        lhs = float(
            d @ torch.autograd.functional.hessian(f_hat, t(y_j)).numpy() @ d
        )

        def f_plain(z_unit, unit=unit):
            return torch_loss(
                torch.stack(
                    [z_unit if i == unit else z_t[:, i] for i in range(n)],
                    dim=1,
                )
            )

        g = torch.autograd.functional.jacobian(f_plain, z_t[:, unit]).numpy()
        h = torch.autograd.functional.hessian(f_plain, z_t[:, unit]).numpy()
        sigma = standardize(y_j).sigma
        y_hat = standardize(y_j).y_hat
        rhs = gamma[unit] ** 2 / sigma**2 * (d @ h @ d) - gamma[unit] / (
            m * sigma**2
        ) * (g @ y_hat) * (d @ d)
        magnitude = gamma[unit] ** 2 / sigma**2 * np.linalg.norm(h, 2) * (
            d @ d
        ) + abs(rhs)
        assert abs(lhs - rhs) <= RTOL64 * magnitude
        terms = hessian_quadratic_form(g, h, y_j, gamma[unit])
        assert (
            abs(terms.lhs - lhs) <= RTOL64 * magnitude
            and abs(terms.rhs_first - rhs) <= RTOL64 * magnitude
        )


@settings(max_examples=200, deadline=None)
@given(unit_instances())
def test_first_form_of_theorem_4_2_is_an_equality_without_its_assumptions(
    instance,
):
    """d^T Hhat d = gamma^2/sigma^2 d^T H d - gamma/(m sigma^2) <g, y_hat> ||d||^2
    for indefinite H, any signs."""
    # Tolerance: 1e-10 of
    # (||Hhat|| + gamma^2/sigma^2 ||H|| + |gamma <g, y_hat>| / (m sigma^2)) ||d||
    # (|gamma|/sigma) ||g||,
    # the size of each term when d is not small, and of the rounding in d when it is
    # (d = 0 exactly for m = 2).
    y, g, h, gamma = instance
    terms = hessian_quadratic_form(g, h, y, gamma)
    curvature = (
        np.linalg.norm(bn_loss_hessian(g, h, y, gamma), 2)
        + terms.scale * np.linalg.norm(h, 2)
        + abs(gamma * terms.correlation) / (y.size * standardize(y).sigma ** 2)
    )
    magnitude = curvature * np.sqrt(
        terms.bn_gradient_norm_sq * terms.scale * terms.plain_gradient_norm_sq
    )
    assert abs(terms.lhs - terms.rhs_first) <= RTOL64 * magnitude


def _identity_counterexample(gamma_over_sigma):
    """A convex quadratic loss with H = I and <y_hat, g> > 0 at a BN output,
    and its Theorem 4.2 terms."""
    rng = np.random.default_rng(13)
    m = 10
    y = rng.normal(size=m) * 2 + 1
    stats = standardize(y)
    gamma = gamma_over_sigma * stats.sigma
    z = gamma * stats.y_hat
    g = rng.normal(size=m) + 0.5 * stats.y_hat
    loss = QuadraticLoss(
        np.eye(m), (z - g)[:, None]
    )  # gradient at z is exactly g, Hessian I
    g_z, h = unit_derivatives(loss, z[:, None], 0)
    return hessian_quadratic_form(g_z, h, y, gamma), h


def test_second_form_fails_for_the_identity_hessian_when_gamma_exceeds_sigma():
    """H = I (convex, preserves every norm), <y_hat, g> > 0, gamma = 3 sigma: LHS
    exceeds the second printed RHS."""
    terms, h = _identity_counterexample(3.0)
    assert np.linalg.eigvalsh(h).min() >= 0 and terms.correlation > 0
    assert terms.bn_gradient_norm_sq > terms.plain_gradient_norm_sq
    assert terms.lhs > terms.rhs_second + 0.5 * abs(terms.rhs_second)
    assert terms.lhs == pytest.approx(
        terms.rhs_first, rel=1e-12
    )  # the first form still holds exactly


def test_second_form_holds_for_the_identity_hessian_when_gamma_equals_sigma():
    """The same instance with gamma = sigma satisfies the second printed form."""
    terms, _ = _identity_counterexample(1.0)
    assert terms.lhs < terms.rhs_second


def test_second_form_fails_at_gamma_equal_sigma_when_h_does_not_preserve_relative_norms():
    """A rank-one H >= 0 with g^T H g = 0 < d^T H d breaks the second form even at
    gamma = sigma, <y_hat, g> = 0."""
    rng = np.random.default_rng(14)
    m = 6
    y = rng.normal(size=m)
    stats = standardize(y)
    u = np.ones(m) / np.sqrt(m)
    e = rng.normal(size=m)
    e -= (e @ u) * u + (
        e @ stats.y_hat
    ) * stats.y_hat / m  # e is orthogonal to 1 and to y_hat
    e /= np.linalg.norm(e)
    g = e + 2.0 * u  # <g, y_hat> = 0
    w = e - 0.5 * u  # <w, g> = 1 - 1 = 0
    h = np.outer(w, w)
    terms = hessian_quadratic_form(g, h, y, stats.sigma)
    assert (
        abs(terms.correlation) < 1e-12 and abs(terms.plain_curvature) < 1e-12
    )
    assert terms.bn_curvature == pytest.approx(1.0, rel=1e-12)
    assert (
        terms.lhs == pytest.approx(1.0, rel=1e-10)
        and terms.lhs > terms.rhs_second + 0.9
    )


def _equal_rayleigh_hessian(rng, g, d, rho):
    """rho I + Q with Q >= 0 vanishing on span{g, d}: the same Rayleigh
    quotient rho along g and d."""
    m = g.size
    basis, _, _ = np.linalg.svd(np.column_stack([g, d]))
    rank = np.linalg.matrix_rank(np.column_stack([g, d]))
    complement = basis[:, rank:]
    b = complement @ rng.normal(
        size=(complement.shape[1], complement.shape[1])
    )
    return rho * np.eye(m) + b @ b.T


@settings(max_examples=150, deadline=None)
@given(
    unit_instances(min_m=3), st.floats(0.01, 10.0), st.integers(0, 2**32 - 1)
)
def test_with_equal_rayleigh_quotients_the_second_form_holds_iff_the_bn_gradient_is_shorter(
    instance, rho, seed
):
    """If d^T H d / ||d||^2 = g^T H g / ||g||^2 = rho > 0, the second form holds
    exactly when ||d|| <= ||g||."""
    y, g, _, gamma = instance
    d = hessian_quadratic_form(
        g, np.zeros((y.size, y.size)), y, gamma
    ).bn_gradient
    assume(np.linalg.norm(d) > 1e-6 * np.linalg.norm(g))
    h = _equal_rayleigh_hessian(np.random.default_rng(seed), g, d, rho)
    terms = hessian_quadratic_form(g, h, y, gamma)
    assert terms.bn_curvature == pytest.approx(
        rho * terms.bn_gradient_norm_sq, rel=1e-9
    )
    assert terms.plain_curvature == pytest.approx(
        rho * terms.plain_gradient_norm_sq, rel=1e-9
    )
    gap = (
        terms.scale
        * rho
        * (terms.bn_gradient_norm_sq - terms.plain_gradient_norm_sq)
    )
    assume(
        abs(gap)
        > 1e-8 * (abs(terms.lhs) + abs(terms.rhs_second) + abs(terms.shift))
    )
    assert (terms.lhs <= terms.rhs_second) == (
        terms.bn_gradient_norm_sq <= terms.plain_gradient_norm_sq
    )


@settings(max_examples=150, deadline=None)
@given(
    unit_instances(min_m=3),
    st.floats(0.0, 1.0),
    st.floats(0.0, 10.0),
    st.integers(0, 2**32 - 1),
)
def test_second_form_holds_with_equal_rayleigh_quotients_and_abs_gamma_at_most_sigma(
    instance, ratio, rho, seed
):
    """With |gamma| <= sigma and H >= 0 with equal Rayleigh quotients along g and d,
    LHS <= second printed RHS."""
    y, g, _, sign_gamma = instance
    gamma = np.sign(sign_gamma) * ratio * standardize(y).sigma
    d = hessian_quadratic_form(
        g, np.zeros((y.size, y.size)), y, gamma
    ).bn_gradient
    h = _equal_rayleigh_hessian(np.random.default_rng(seed), g, d, rho)
    terms = hessian_quadratic_form(g, h, y, gamma)
    magnitude = terms.scale * np.linalg.norm(
        h, 2
    ) * terms.plain_gradient_norm_sq + abs(terms.shift)
    assert terms.lhs <= terms.rhs_second + RTOL64 * magnitude


# --------------------------------------------------------------------------- Observation 4.3


@settings(max_examples=100, deadline=None)
@given(
    st.integers(2, 20),
    st.integers(1, 5),
    st.integers(1, 5),
    st.integers(0, 2**32 - 1),
    st.floats(-50, 50),
)
def test_gamma_sigma_beta_mu_reproduce_the_plain_activations(
    m, n, d, seed, offset
):
    """With (gamma, beta) = (sigma_j, mu_j), BN(Wx) gives back y = Wx on
    the batch (Observation 4.3)."""
    rng = np.random.default_rng(seed)
    x, weight = rng.normal(size=(m, d)) + offset, rng.normal(size=(n, d))
    y = x @ weight.T
    assume(np.all(np.ptp(y, axis=0) > 1e-6 * (np.abs(y).max() + 1)))
    gamma, beta = reproduce_activations(x, weight)
    assert np.all(gamma > 0)
    z = linear_bn(x, weight, gamma, beta).z
    assert np.abs(z - y).max() <= 1e-12 * (np.abs(y).max() + 1)


def test_reproducing_parameters_fit_their_batch_only():
    """The (gamma, beta) that reproduce y on one batch do not reproduce it on another batch."""
    rng = np.random.default_rng(15)
    x1, x2, weight = (
        rng.normal(size=(8, 3)),
        rng.normal(size=(8, 3)) * 2 + 1,
        rng.normal(size=(2, 3)),
    )
    gamma, beta = reproduce_activations(x1, weight)
    assert (
        np.abs(linear_bn(x2, weight, gamma, beta).z - x2 @ weight.T).max()
        > 0.1
    )


# --------------------------------------------------------------------------- Lemma 4.5


@st.composite
def weight_pairs(draw):
    shape = draw(st.sampled_from([(3,), (2, 4), (5, 3)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w_star = rng.normal(size=shape) * draw(st.floats(0.1, 10.0))
    w0 = rng.normal(size=shape) * draw(st.floats(0.1, 10.0))
    return w0, w_star


@settings(max_examples=200, deadline=None)
@given(weight_pairs())
def test_lemma_4_5_holds_with_equality_at_the_nearest_point_of_the_ray(pair):
    """||W0 - kW*||^2 equals the lemma's bound, and the gain
    is ||W*||^2 (1 - k)^2, for <W0, W*> > 0."""
    w0, w_star = pair
    assume(
        np.sum(w0 * w_star)
        > 1e-6 * np.linalg.norm(w0) * np.linalg.norm(w_star)
    )
    r = initialization_gain(w0, w_star)
    scale = np.sum(w0**2) + np.sum(w_star**2)
    assert r.k == pytest.approx(
        np.sum(w0 * w_star) / np.sum(w_star**2), rel=1e-14
    )
    assert abs(r.bn_distance_sq - r.bound) <= RTOL64 * scale
    assert abs(r.gain - np.sum(w_star**2) * (1 - r.k) ** 2) <= RTOL64 * scale


@settings(max_examples=100, deadline=None)
@given(weight_pairs(), st.floats(1e-3, 1e3))
def test_lemma_4_5_k_is_the_nearest_point_of_the_ray(pair, other_k):
    """No other k > 0 brings k W* closer to W0 than the lemma's k."""
    w0, w_star = pair
    assume(np.sum(w0 * w_star) > 0)
    r = initialization_gain(w0, w_star)
    assert r.bn_distance_sq <= np.sum((w0 - other_k * w_star) ** 2) * (
        1 + 1e-12
    )


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_lemma_4_5_bound_is_the_right_hand_side_computed_from_w0_and_w_star(
    seed, per_row
):
    """bound = ||W0 - W*||^2 - (||W*||^2 - <W*, W0>)^2 / ||W*||^2, from the
    inputs alone, in both modes."""
    rng = np.random.default_rng(seed)
    w_star = rng.normal(size=(4, 3))
    w0 = w_star * rng.uniform(0.2, 4.0, size=(4, 1)) + 0.3 * rng.normal(
        size=(4, 3)
    )
    assume(np.all(np.einsum("ij,ij->i", w0, w_star) > 0))
    norm_sq, inner = np.sum(w_star**2), np.sum(w_star * w0)
    rhs = np.sum((w0 - w_star) ** 2) - (norm_sq - inner) ** 2 / norm_sq
    r = initialization_gain(w0, w_star, per_row=per_row)
    assert abs(r.bound - rhs) <= RTOL64 * (np.sum(w0**2) + norm_sq)


def test_lemma_4_5_bound_is_not_the_per_row_distance():
    """Rows that are optima at other scales: the per-row distance is 0 and the bound
    keeps the single ray's 3.125."""
    w_star = np.array([[1.0, 0.0], [0.0, 1.0]])
    w0 = np.array([[3.0, 0.0], [0.0, 0.5]])
    r = initialization_gain(w0, w_star, per_row=True)
    # ||W0 - W*||^2 = 4.25, ||W*||^2 = 2, <W*, W0> = 3.5: 4.25 - 1.5^2 / 2
    assert r.bn_distance_sq == 0.0
    assert r.bound == pytest.approx(4.25 - 1.5**2 / 2, rel=1e-15)


@pytest.mark.parametrize("sign", [0.0, -1.0])
def test_lemma_4_5_refuses_a_nonpositive_inner_product(sign):
    """<W0, W*> <= 0 raises a ValueError that names the requirement."""
    w_star = np.array([1.0, 0.0])
    w0 = np.array([sign, 1.0])
    with pytest.raises(ValueError, match=r"<w0, w_star> > 0"):
        initialization_gain(w0, w_star)


def test_bn_layer_is_invariant_to_a_positive_scale_per_row():
    """linear_bn(x, diag(k) W) = linear_bn(x, W) for k > 0: the premise of Lemma 4.5, per unit."""
    rng = np.random.default_rng(16)
    x, weight = rng.normal(size=(9, 4)), rng.normal(size=(3, 4))
    k = np.array([0.01, 1.0, 250.0])
    a = linear_bn(x, weight, 1.5, 0.2).z
    b = linear_bn(x, k[:, None] * weight, 1.5, 0.2).z
    assert np.abs(a - b).max() <= 1e-12


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_a_scale_per_row_gets_at_least_as_close_as_the_single_ray(seed):
    """With one k_i per unit, ||W0 - diag(k) W*||^2 <= the lemma's bound
    (per-unit BN has more optima)."""
    rng = np.random.default_rng(seed)
    w_star = rng.normal(size=(4, 3))
    w0 = w_star * rng.uniform(0.1, 5.0, size=(4, 1)) + 0.3 * rng.normal(
        size=(4, 3)
    )
    assume(np.all(np.einsum("ij,ij->i", w0, w_star) > 0))
    per_row = initialization_gain(w0, w_star, per_row=True)
    assert per_row.bn_distance_sq <= per_row.bound * (1 + 1e-12)


def test_a_scale_per_row_can_be_strictly_closer():
    """Rows of W0 that are W* rows at different scales are optima themselves: distance 0,
    while the ray leaves a gap."""
    w_star = np.array([[1.0, 0.0], [0.0, 1.0]])
    w0 = np.array([[3.0, 0.0], [0.0, 0.5]])
    single, per_row = (
        initialization_gain(w0, w_star),
        initialization_gain(w0, w_star, per_row=True),
    )
    assert (
        per_row.bn_distance_sq == 0.0
        and single.bn_distance_sq == pytest.approx(2 * 1.25**2, rel=1e-15)
    )


# --------------------------------------------------------------------------- bad input


BAD_CALLS = [
    (lambda: standardize(np.ones(4)), ValueError, "constant over the batch"),
    (
        lambda: standardize(np.array([[1.0, 2.0], [1.0, 3.0]])),
        ValueError,
        "column 0 of y is constant",
    ),
    (lambda: standardize(np.array([1.0])), ValueError, "m >= 2"),
    (
        lambda: standardize(np.ones((2, 2, 2))),
        ValueError,
        r"shape \(m,\) or \(m, n\)",
    ),
    (lambda: standardize(np.array([1.0, np.nan])), ValueError, "non-finite"),
    (lambda: standardize(np.array([1, 2, 3])), TypeError, "floating dtype"),
    (
        lambda: bn_jacobian(np.ones((3, 2)) * [[1.0], [2.0], [3.0]]),
        ValueError,
        r"one unit's batch",
    ),
    (
        lambda: bn_backward(np.ones(3), np.arange(4.0), 1.0),
        ValueError,
        r"grad_z must have shape \(4,\)",
    ),
    (
        lambda: bn_backward(np.ones(4), np.arange(4.0), np.inf),
        ValueError,
        "gamma must be a finite real",
    ),
    (
        lambda: bn_backward(np.ones(4), np.arange(4.0), True),
        ValueError,
        "gamma must be a finite real",
    ),
    (
        lambda: bn_backward(np.ones(4), np.arange(4.0), np.ones(2)),
        ValueError,
        "gamma must be a finite real",
    ),
    (
        lambda: gradient_norm_bound(np.ones(4), np.arange(4.0), 1.0, "1/m^2"),
        ValueError,
        "coefficient must be",
    ),
    (
        lambda: bn_loss_hessian(
            np.ones(3), np.triu(np.ones((3, 3))), np.arange(3.0), 1.0
        ),
        ValueError,
        "symmetric",
    ),
    (
        lambda: hessian_quadratic_form(
            np.ones(3), np.eye(4), np.arange(3.0), 1.0
        ),
        ValueError,
        r"hess_z must have shape",
    ),
    (
        lambda: linear_bn(np.ones((4, 3)), np.ones((2, 2))),
        ValueError,
        "weight must have shape",
    ),
    (
        lambda: linear_bn(np.eye(3), np.eye(3), gamma=np.ones(2)),
        ValueError,
        r"gamma must be a scalar or have shape \(3,\)",
    ),
    (
        lambda: reproduce_activations(np.ones((5, 2)), np.eye(2)),
        ValueError,
        "column 0 of y is constant",
    ),
    (
        lambda: unit_derivatives(
            SoftmaxCrossEntropy(np.zeros(3, dtype=int)), np.ones((3, 2)), 2
        ),
        ValueError,
        "unit must be",
    ),
    (
        lambda: SoftmaxCrossEntropy(np.array([0, 5])).gradient(
            np.zeros((2, 3))
        ),
        ValueError,
        r"labels must lie in \[0, 3\)",
    ),
    (
        lambda: SoftmaxCrossEntropy(np.array([0.0, 1.0])),
        TypeError,
        "integer dtype",
    ),
    (
        lambda: QuadraticLoss(np.eye(3), np.zeros((2, 2))),
        ValueError,
        r"curvature must have shape \(4, 4\)",
    ),
    (
        lambda: initialization_gain(np.ones(3), np.zeros(3)),
        ValueError,
        "must not be zero",
    ),
    (
        lambda: initialization_gain(np.ones(3), np.ones(2)),
        ValueError,
        "same shape",
    ),
    (
        lambda: initialization_gain(np.ones(3), np.ones(3), per_row=True),
        ValueError,
        r"shape \(n, d\)",
    ),
    (
        lambda: initialization_gain(
            np.eye(2), np.array([[1.0, 0.0], [0.0, -1.0]]), per_row=True
        ),
        ValueError,
        "row 1",
    ),
]


@pytest.mark.parametrize(
    "call, error, message", BAD_CALLS, ids=[c[2] for c in BAD_CALLS]
)
def test_bad_input_raises_an_error_naming_the_problem(call, error, message):
    """Each bad input raises the documented error type with a message that names the problem."""
    with pytest.raises(error, match=message):
        call()


def test_calls_do_not_modify_their_inputs():
    """No function of bnnotes.theory writes into the arrays it is given."""
    rng = np.random.default_rng(17)
    y, g, h = rng.normal(size=6), rng.normal(size=6), _random_symmetric(rng, 6)
    x, weight, w0, w_star = (
        rng.normal(size=(6, 3)),
        rng.normal(size=(2, 3)),
        rng.normal(size=(2, 3)),
        rng.normal(size=(2, 3)),
    )
    w0 = w0 + 3 * w_star
    arrays = [y, g, h, x, weight, w0, w_star]
    before = [a.copy() for a in arrays]
    (
        standardize(y),
        bn_jacobian(y),
        bn_backward(g, y, 2.0),
        gradient_norm_bound(g, y, 2.0),
    )
    bn_loss_hessian(g, h, y, 2.0), hessian_quadratic_form(g, h, y, 2.0)
    (
        linear_bn(x, weight),
        reproduce_activations(x, weight),
        initialization_gain(w0, w_star),
    )
    for a, b in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(a, b)
