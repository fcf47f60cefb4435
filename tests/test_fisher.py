"""Curvature toolkit: closed forms against torch autograd, Fisher = expected Hessian, empirical
Fisher, KL, natural gradient, bounds."""

import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import RTOL64, rel_err, t
from hypothesis import given, settings
from hypothesis import strategies as st

import bnnotes.fisher as fi
from bnnotes.fisher import (
    categorical_kl,
    empirical_fisher,
    expected_hessian,
    fisher_from_scores,
    lipschitz_ratio,
    natural_gradient,
    per_label_scores_and_hessians,
    quadratic_form,
    second_difference,
    smoothness_ratio,
    softmax_regression_grad,
    softmax_regression_hessian,
    softmax_regression_lipschitz_bound,
    softmax_regression_nll,
    softmax_regression_probs,
    softmax_regression_scores,
    softmax_regression_smoothness_bound,
    tanh_network_log_probs,
    tanh_network_num_params,
    weight_normalized_kl_curvature,
    weight_normalized_probs,
)


def _problem(seed, k=3, d=4, n=25):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(k, d)),
        rng.normal(size=(n, d)),
        rng.integers(0, k, size=n),
    )


def _torch_nll(theta, x, y, k):
    return F.cross_entropy(t(x) @ theta.reshape(k, -1).T, torch.from_numpy(y))


def test_softmax_regression_closed_forms_match_torch_autograd():
    """NLL, gradient and Hessian of softmax regression equal F.cross_entropy, its gradient and its
    autograd Hessian to 1e-10."""
    w, x, y = _problem(0)
    theta = t(w).reshape(-1).requires_grad_()
    loss = _torch_nll(theta, x, y, 3)
    loss.backward()
    hess = torch.autograd.functional.hessian(
        lambda th: _torch_nll(th, x, y, 3), t(w).reshape(-1)
    )
    assert abs(softmax_regression_nll(w, x, y) / loss.item() - 1) <= RTOL64
    assert (
        rel_err(
            softmax_regression_grad(w, x, y).reshape(-1), theta.grad.numpy()
        )
        <= RTOL64
    )
    assert rel_err(softmax_regression_hessian(w, x), hess.numpy()) <= RTOL64


def test_scores_match_torch_autograd_for_every_label():
    """softmax_regression_scores[i, c] equals the autograd gradient of log p(c | x_i)."""
    w, x, _ = _problem(1, n=4)
    scores = softmax_regression_scores(w, x)
    for i in range(4):
        for c in range(3):
            theta = t(w).reshape(-1).requires_grad_()
            torch.log_softmax(t(x[i]) @ theta.reshape(3, -1).T, dim=-1)[
                c
            ].backward()
            assert rel_err(scores[i, c], theta.grad.numpy()) <= RTOL64


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 4), st.integers(1, 4))
def test_fisher_is_the_score_covariance_and_equals_the_nll_hessian(seed, k, d):
    """For softmax regression, E_{y~p}[s] = 0 and E_{y~p}[s s'] equals the NLL Hessian
    (labels drop out) to 1e-12."""
    w, x, _ = _problem(seed, k=k, d=d, n=12)
    s, p = softmax_regression_scores(w, x), softmax_regression_probs(w, x)
    np.testing.assert_allclose(np.einsum("ic,icp->ip", p, s), 0.0, atol=1e-14)
    np.testing.assert_allclose(
        fisher_from_scores(s, p),
        softmax_regression_hessian(w, x),
        rtol=0,
        atol=1e-12,
    )


def _tanh_problem(seed, n=10, d=2, hidden=3, k=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    theta = rng.normal(size=tanh_network_num_params(d, hidden, k))
    y = rng.integers(0, k, size=n)

    def fn(th, xx):
        return tanh_network_log_probs(th, xx, hidden, k)

    return fn, theta, x, y


def test_fisher_equals_the_expected_hessian_under_model_labels_not_under_observed_labels():
    """On a tanh network the NLL Hessian depends on the label: F = E_{y~p}[H(y)] to 1e-10, while the
    observed-label Hessian differs."""
    fn, theta, x, y = _tanh_problem(2)
    p, s, h = per_label_scores_and_hessians(fn, theta, x)
    fisher = fisher_from_scores(s, p)
    assert rel_err(expected_hessian(h, p), fisher) <= RTOL64
    observed = h[np.arange(len(y)), y].mean(axis=0)
    assert rel_err(observed, fisher) > 0.1
    assert (
        np.linalg.eigvalsh(observed).min() < -1e-3
    )  # not even positive semi-definite, unlike F
    assert np.linalg.eigvalsh(fisher).min() > -1e-12


def test_torch_func_scores_and_hessians_match_autograd():
    """per_label_scores_and_hessians agrees with torch.autograd on one example and one label."""
    fn, theta, x, _ = _tanh_problem(3, n=3)
    p, s, h = per_label_scores_and_hessians(fn, theta, x)
    th = t(theta).requires_grad_()
    fn(th, t(x))[1, 2].backward()
    assert rel_err(s[1, 2], th.grad.numpy()) <= RTOL64
    hess = torch.autograd.functional.hessian(
        lambda v: -fn(v, t(x))[1, 2], t(theta)
    )
    assert rel_err(h[1, 2], hess.numpy()) <= RTOL64
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-14)


def test_empirical_fisher_is_a_different_matrix():
    """With observed labels, (1/n) sum s s' differs from the Fisher, and the observed
    scores do not average to zero."""
    w, x, y = _problem(4, n=30)
    s, p = softmax_regression_scores(w, x), softmax_regression_probs(w, x)
    assert rel_err(empirical_fisher(s, y), fisher_from_scores(s, p)) > 0.1
    assert np.linalg.norm(s[np.arange(30), y].mean(axis=0)) > 0.1


def test_empirical_fisher_averages_to_the_fisher_when_labels_come_from_the_model():
    """Averaged over labels sampled from p_theta (4000 draws), the empirical Fisher
    approaches F (within 5%)."""
    w, x, _ = _problem(5, n=10)
    s, p = softmax_regression_scores(w, x), softmax_regression_probs(w, x)
    rng = np.random.default_rng(0)
    draws = 4000
    cum = p.cumsum(axis=1)
    labels = (rng.random((draws, len(x), 1)) > cum[None]).sum(axis=2)
    observed = s[np.arange(len(x))[None, :], labels]  # (draws, n, P)
    mean_empirical = np.einsum("dip,diq->pq", observed, observed) / (
        draws * len(x)
    )
    assert rel_err(mean_empirical, fisher_from_scores(s, p)) < 0.05


def test_kl_divergence_is_half_the_fisher_quadratic_form_to_second_order():
    """KL(p_W || p_{W + tD}) / (t^2 D'FD / 2) -> 1 with an error that falls about linearly in t."""
    w, x, _ = _problem(6)
    direction = np.random.default_rng(1).normal(size=w.shape)
    quad = quadratic_form(softmax_regression_hessian(w, x), direction)
    p = softmax_regression_probs(w, x)
    errors = []
    for step in (1e-1, 1e-2, 1e-3):
        kl = categorical_kl(
            p, softmax_regression_probs(w + step * direction, x)
        )
        errors.append(abs(kl / (0.5 * step**2 * quad) - 1))
    assert errors[2] < 1e-2
    assert errors[1] < errors[0] / 5 and errors[2] < errors[1] / 5


def test_fisher_is_the_hessian_of_the_kl_divergence_at_the_model():
    """The autograd Hessian of theta' -> KL(p_theta || p_theta') at
    theta' = theta equals F to 1e-10."""
    w, x, _ = _problem(7)
    p = t(softmax_regression_probs(w, x))

    def kl(theta):
        log_q = torch.log_softmax(t(x) @ theta.reshape(3, -1).T, dim=-1)
        return (p * (p.log() - log_q)).sum(dim=1).mean()

    hess = torch.autograd.functional.hessian(kl, t(w).reshape(-1))
    s = softmax_regression_scores(w, x)
    assert (
        rel_err(
            hess.numpy(), fisher_from_scores(s, softmax_regression_probs(w, x))
        )
        <= RTOL64
    )


def _identifiable(seed):
    """Softmax regression with the last class's weights fixed at 0: the Fisher over the free
    parameters is invertible."""
    w, x, y = _problem(seed, k=3, d=3, n=40)
    w[-1] = 0.0
    free = 2 * 3
    fisher = fisher_from_scores(
        softmax_regression_scores(w, x), softmax_regression_probs(w, x)
    )[:free, :free]
    grad = softmax_regression_grad(w, x, y)[:-1].reshape(-1)
    return fisher, grad


def test_natural_gradient_step_is_invariant_to_a_linear_reparameterization():
    """With theta = A phi, A F_phi^{-1} g_phi = F_theta^{-1} g_theta (1e-10), while the plain
    gradient step changes to A A' g."""
    fisher, grad = _identifiable(8)
    a = np.random.default_rng(2).normal(size=(6, 6)) + 3 * np.eye(6)
    step_theta = natural_gradient(fisher, grad)
    step_phi = natural_gradient(a.T @ fisher @ a, a.T @ grad)
    assert rel_err(a @ step_phi, step_theta) <= 1e-10
    assert rel_err(a @ (a.T @ grad), grad) > 0.5


def test_pseudo_inverse_natural_gradient_ignores_directions_the_model_cannot_see():
    """For the full softmax model F is singular along 1 (x) c; the damping-free natural
    gradient has no component there."""
    w, x, y = _problem(9, k=3, d=2)
    fisher = fisher_from_scores(
        softmax_regression_scores(w, x), softmax_regression_probs(w, x)
    )
    grad = softmax_regression_grad(w, x, y)
    step = natural_gradient(fisher, grad)
    assert step.shape == (3, 2)
    np.testing.assert_allclose(
        step.sum(axis=0), 0.0, atol=1e-10
    )  # orthogonal to every 1 (x) c
    np.testing.assert_allclose(
        fisher @ step.reshape(-1), grad.reshape(-1), atol=1e-10
    )
    damped = natural_gradient(fisher, grad, damping=1e-3)
    np.testing.assert_allclose(
        (fisher + 1e-3 * np.eye(6)) @ damped.reshape(-1),
        grad.reshape(-1),
        atol=1e-12,
    )


def test_second_difference_approaches_the_hessian_quadratic_form():
    """(f(w+hd) - 2f(w) + f(w-hd))/h^2 equals d'Hd to 1e-6 relative: the
    curvature of the loss along d."""
    w, x, y = _problem(10)
    d = np.random.default_rng(3).normal(size=w.shape)
    exact = quadratic_form(softmax_regression_hessian(w, x), d)
    estimate = second_difference(
        lambda v: softmax_regression_nll(v, x, y), w, d, h=1e-4
    )
    assert abs(estimate / exact - 1) < 1e-6


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(1e-3, 10.0))
def test_sampled_ratios_respect_the_lipschitz_and_smoothness_bounds(
    seed, distance
):
    """|f(a)-f(b)|/||a-b|| <= sqrt(2) mean||x|| and ||grad f(a) - grad f(b)||/||a-b|| <=
    lambda_max(X'X/n)/2 for random a, b."""
    w, x, y = _problem(seed, n=15)
    rng = np.random.default_rng(seed + 1)
    a = w + rng.normal(size=w.shape)
    b = a + distance * rng.normal(size=w.shape) / np.sqrt(w.size)
    lip = lipschitz_ratio(lambda v: softmax_regression_nll(v, x, y), a, b)
    smooth = smoothness_ratio(lambda v: softmax_regression_grad(v, x, y), a, b)
    assert lip <= softmax_regression_lipschitz_bound(x) * (1 + 1e-12)
    assert smooth <= softmax_regression_smoothness_bound(x) * (1 + 1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.1, 10.0))
def test_hessian_eigenvalues_lie_between_zero_and_the_smoothness_bound(
    seed, scale
):
    """Every eigenvalue of the softmax-regression Hessian is in [0, beta], beta =
    lambda_max(X'X/n)/2, for any W."""
    w, x, _ = _problem(seed)
    eig = np.linalg.eigvalsh(softmax_regression_hessian(scale * w, x))
    assert eig.min() >= -1e-12
    assert eig.max() <= softmax_regression_smoothness_bound(x) * (1 + 1e-12)


def test_lipschitz_bound_is_sqrt_two_times_the_mean_input_norm_and_is_approached():
    """The bound is sqrt(2) mean ||x_i||, and aligned inputs whose scores favour a wrong class
    push the gradient norm to it."""
    u = np.array([0.6, 0.8])
    scales = np.array([0.5, 1.0, 2.5])
    x, y = scales[:, None] * u, np.zeros(3, dtype=np.int64)
    bound = softmax_regression_lipschitz_bound(x)
    assert bound == pytest.approx(np.sqrt(2.0) * scales.mean(), rel=1e-15)
    # class 1 scores 40 * scale_i, classes 0 and 2 score 0: p_i -> e_1, p_i - e_0 -> (-1, 1, 0)
    w = np.vstack([np.zeros(2), 40.0 * u, np.zeros(2)])
    norm = np.linalg.norm(softmax_regression_grad(w, x, y))
    assert norm <= bound * (1 + 1e-12)
    assert norm == pytest.approx(bound, rel=1e-6)


def test_smoothness_bound_is_attained_for_two_classes_at_equal_probabilities():
    """At W = 0 with K = 2 (p = 1/2), the largest Hessian eigenvalue equals the
    bound: it cannot be lowered."""
    x = np.random.default_rng(11).normal(size=(20, 3))
    eig = np.linalg.eigvalsh(softmax_regression_hessian(np.zeros((2, 3)), x))
    assert abs(eig.max() / softmax_regression_smoothness_bound(x) - 1) < 1e-12


def _weight_normalized_problem(seed, k=3, d=4, n=30):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(k, d)),
        rng.normal(size=(n, d)),
        rng.normal(size=d),
        rng.uniform(0.5, 2.0, size=k),
    )


def test_weight_normalized_curvature_is_the_second_derivative_of_the_kl_divergence():
    """d'F_kk d equals the autograd second derivative of t -> KL(p_W || p_{W + t
    e_k d'}) at t = 0, to 1e-10."""
    w, x, d, g = _weight_normalized_problem(13)
    unit = 1
    p = t(weight_normalized_probs(w, x, g))

    def kl(step):
        moved = t(w).clone()
        moved[unit] = moved[unit] + step * t(d)
        logits = (t(x) @ moved.T) * (t(g) / moved.norm(dim=1))
        log_q = torch.log_softmax(logits, dim=-1)
        return (p * (p.log() - log_q)).sum(dim=1).mean()

    second = torch.autograd.functional.hessian(
        kl, torch.zeros((), dtype=torch.float64)
    )
    curvature = weight_normalized_kl_curvature(w, x, unit, d, g)
    assert abs(curvature / second.item() - 1) <= RTOL64


def test_scaling_a_units_weights_leaves_the_weight_normalized_output_unchanged():
    """Scaling one row of W by c > 0 changes no probability (to 1e-15): the
    output ignores the weight norm."""
    w, x, _, g = _weight_normalized_problem(14)
    scaled = w.copy()
    scaled[2] *= 2.0
    np.testing.assert_allclose(
        weight_normalized_probs(scaled, x, g),
        weight_normalized_probs(w, x, g),
        rtol=0,
        atol=1e-15,
    )


@pytest.mark.parametrize("factor", [2.0, 3.0, 0.5])
def test_scaling_a_units_weights_by_c_divides_the_kl_curvature_along_them_by_c_squared(
    factor,
):
    """w_k -> c w_k multiplies d'F_kk d by 1/c^2 (1e-12): doubling the weight norm quarters the
    curvature (Ba et al., Eq. 13), not halves it."""
    w, x, d, g = _weight_normalized_problem(15)
    scaled = w.copy()
    scaled[0] *= factor
    ratio = weight_normalized_kl_curvature(
        scaled, x, 0, d, g
    ) / weight_normalized_kl_curvature(w, x, 0, d, g)
    assert abs(ratio * factor**2 - 1) < 1e-12


def test_kl_is_zero_for_equal_distributions_and_positive_otherwise():
    """KL(p || p) = 0, KL(p || q) > 0 for p != q, and zero-probability terms count as 0."""
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    q = np.array([[0.4, 0.4, 0.2], [0.2, 0.3, 0.5]])
    assert categorical_kl(p, p) == 0.0
    assert categorical_kl(p, q) == pytest.approx(
        0.5 * np.log(0.5 / 0.4), rel=1e-14
    )


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: softmax_regression_nll(
                np.zeros((3, 2)), np.ones((4, 2)), np.array([0, 1, 2, 3])
            ),
            ValueError,
            r"labels must lie in \[0, 3\)",
        ),
        (
            lambda: softmax_regression_nll(
                np.zeros((3, 2)), np.ones((2, 2)), np.array([0.0, 1.0])
            ),
            TypeError,
            "integer dtype",
        ),
        (
            lambda: softmax_regression_nll(
                np.zeros((3, 2)), np.ones((2, 2)), np.array([0])
            ),
            ValueError,
            r"shape \(2,\)",
        ),
        (
            lambda: softmax_regression_probs(
                np.zeros((1, 2)), np.ones((2, 2))
            ),
            ValueError,
            "K >= 2",
        ),
        (
            lambda: softmax_regression_probs(
                np.zeros((3, 2)), np.ones((2, 3))
            ),
            ValueError,
            "features",
        ),
        (
            lambda: softmax_regression_probs(
                np.zeros((3, 2)), np.full((2, 2), np.nan)
            ),
            ValueError,
            "non-finite",
        ),
        (
            lambda: fisher_from_scores(
                np.zeros((2, 3, 4)), np.full((2, 3), 0.5)
            ),
            ValueError,
            "probability vector",
        ),
        (
            lambda: fisher_from_scores(
                np.zeros((2, 3, 4)), np.full((2, 2), 0.5)
            ),
            ValueError,
            "to match scores",
        ),
        (
            lambda: expected_hessian(
                np.zeros((2, 3, 4)), np.full((2, 3), 1 / 3)
            ),
            ValueError,
            r"\(n, K, P, P\)",
        ),
        (
            lambda: categorical_kl(
                np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
            ),
            ValueError,
            "infinite",
        ),
        (
            lambda: natural_gradient(np.eye(3), np.ones(2)),
            ValueError,
            "3 entries",
        ),
        (
            lambda: natural_gradient(np.eye(2), np.ones(2), damping=-1.0),
            ValueError,
            "damping must be",
        ),
        (
            lambda: natural_gradient(np.ones((2, 3)), np.ones(2)),
            ValueError,
            "square matrix",
        ),
        (
            lambda: second_difference(
                lambda v: 0.0, np.ones(2), np.ones(2), h=0.0
            ),
            ValueError,
            "h must be",
        ),
        (
            lambda: second_difference(lambda v: 0.0, np.ones(2), np.ones(3)),
            ValueError,
            "shape of theta",
        ),
        (
            lambda: lipschitz_ratio(lambda v: 0.0, np.ones(2), np.ones(2)),
            ValueError,
            "different points",
        ),
        (
            lambda: smoothness_ratio(lambda v: v, np.ones(2), np.ones(3)),
            ValueError,
            "same shape",
        ),
        (
            lambda: quadratic_form(np.eye(2), np.ones(3)),
            ValueError,
            "2 entries",
        ),
        (lambda: tanh_network_num_params(2, 3, 1), ValueError, "at least 2"),
        (
            lambda: tanh_network_log_probs(
                torch.zeros(5, dtype=torch.float64),
                torch.ones(1, 2, dtype=torch.float64),
                3,
                2,
            ),
            ValueError,
            "theta must have shape",
        ),
        (
            lambda: per_label_scores_and_hessians(
                lambda th, xx: th, np.ones(3), np.ones((2, 2))
            ),
            ValueError,
            r"shape \(n, K\)",
        ),
        (
            lambda: weight_normalized_probs(
                np.array([[1.0, 0.0], [0.0, 0.0]]), np.ones((2, 2))
            ),
            ValueError,
            "every row of weight must be nonzero",
        ),
        (
            lambda: weight_normalized_probs(
                np.eye(2), np.ones((2, 2)), gain=np.ones(3)
            ),
            ValueError,
            r"gain must have shape \(2,\)",
        ),
        (
            lambda: weight_normalized_kl_curvature(
                np.eye(2), np.ones((2, 2)), 2, np.ones(2)
            ),
            ValueError,
            r"unit must be an integer in \[0, 2\)",
        ),
        (
            lambda: weight_normalized_kl_curvature(
                np.eye(2), np.ones((2, 2)), 0, np.ones(3)
            ),
            ValueError,
            r"direction must have shape \(2,\)",
        ),
    ],
)
def test_bad_input_raises_a_named_error(call, error, message):
    """Labels out of range or not integers, non-probability rows, infinite KL and mismatched
    sizes raise clear errors."""
    with pytest.raises(error, match=message):
        call()


def test_functions_do_not_modify_their_arguments():
    """Closed forms, Fisher matrices and the natural gradient read their
    inputs and never write them."""
    w, x, y = _problem(12)
    arrays = (w, x, y)
    copies = [a.copy() for a in arrays]
    s, p = softmax_regression_scores(w, x), softmax_regression_probs(w, x)
    s_copy, p_copy = s.copy(), p.copy()
    fisher = fisher_from_scores(s, p)
    empirical_fisher(s, y)
    softmax_regression_grad(w, x, y)
    natural_gradient(fisher, softmax_regression_grad(w, x, y), damping=1e-3)
    for a, b in zip((*arrays, s, p), [*copies, s_copy, p_copy], strict=True):
        np.testing.assert_array_equal(a, b)


def test_every_public_function_has_a_running_example():
    """Each public function of bnnotes.fisher has an executed Examples section."""
    for name in fi.__all__:
        doc = inspect.getdoc(getattr(fi, name)) or ""
        assert "Examples\n--------\n>>>" in doc, name
