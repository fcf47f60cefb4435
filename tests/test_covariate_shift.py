"""The covariate-shift demonstration: the shifted classifier, the moving layer input, what BN pins
and what it does not, and the batch noise."""

import copy
from itertools import pairwise

import numpy as np
import pytest
import torch
from helpers import RTOL64, rel_err
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

import bnnotes.covariate_shift as cs
from bnnotes.batchnorm import batch_norm_forward
from bnnotes.covariate_shift import (
    SOURCE_MEAN,
    TARGET_MEAN,
    TwoLayerNet,
    covariate_shift_report,
    features,
    fit_logistic,
    hidden_moments,
    label,
    prediction_spread,
    sample_domain,
)
from bnnotes.experiments import covariate_shift as experiment
from bnnotes.experiments.covariate_shift import layer_input_drift
from bnnotes.figure_text import LANGUAGES

EXAMPLE = np.array([SOURCE_MEAN, 2.5])


@pytest.fixture(scope="module")
def reports():
    """One report per feature set, seed 0, n = 2000."""
    return {
        kind: covariate_shift_report(kind, n=2000, seed=0)
        for kind in cs.FEATURE_SETS
    }


@pytest.fixture(scope="module")
def traces():
    """200 SGD steps at seed 0: no BN, BN with learned gamma and beta, BN with them fixed."""
    return {
        "plain": layer_input_drift(batch_norm=False, seed=0),
        "bn": layer_input_drift(batch_norm=True, seed=0),
        "bn_fixed": layer_input_drift(
            batch_norm=True, learn_affine=False, seed=0
        ),
    }


def _state(net: torch.nn.Module) -> tuple[dict, bool]:
    return {k: v.clone() for k, v in net.state_dict().items()}, net.training


def _same_state(net: torch.nn.Module, state: tuple[dict, bool]) -> bool:
    tensors, training = state
    now = net.state_dict()
    return (
        net.training == training
        and now.keys() == tensors.keys()
        and all(torch.equal(now[k], tensors[k]) for k in now)
    )


# ------------------------------------------------------------------------- the domains and the rule


@settings(max_examples=30, deadline=None)
@given(st.floats(-4.0, 4.0), st.integers(0, 2**31 - 1))
def test_labels_of_every_domain_are_the_fixed_rule(x1_mean, seed):
    """p(y|x) does not depend on the domain: sample_domain's labels are 1[x2 > x1^2/2] of its
    inputs, wherever x1 is centred."""
    x, y = sample_domain(300, x1_mean, seed)
    np.testing.assert_array_equal(
        y, (x[:, 1] > 0.5 * x[:, 0] ** 2).astype(np.int64)
    )
    np.testing.assert_array_equal(y, label(x))


@settings(max_examples=20, deadline=None)
@given(st.floats(-4.0, 4.0), st.integers(0, 2**31 - 1))
def test_both_classes_have_probability_one_half_in_every_domain(x1_mean, seed):
    """The class balance is 1/2 wherever the domain lies (within 5 binomial sd at n = 4000), so 0.5
    accuracy is chance level."""
    _, y = sample_domain(4000, x1_mean, seed)
    assert abs(y.mean() - 0.5) <= 5 * 0.5 / np.sqrt(4000)


def test_domains_differ_only_in_where_x1_lies():
    """Source and target x1 have means -2 and +2 and sd 0.5; x2 - f(x1) is N(0, 1) in both."""
    for mean in (SOURCE_MEAN, TARGET_MEAN):
        x, _ = sample_domain(20_000, mean, seed=3)
        assert (
            abs(x[:, 0].mean() - mean) < 0.02
            and abs(x[:, 0].std() - 0.5) < 0.02
        )
        residual = x[:, 1] - cs.boundary(x[:, 0])
        assert abs(residual.mean()) < 0.03 and abs(residual.std() - 1.0) < 0.03


# --------------------------------------------------------------------------- the logistic fit


@pytest.mark.parametrize("kind", cs.FEATURE_SETS)
def test_fit_is_a_stationary_point_of_the_penalized_loss_by_autograd(kind):
    """The gradient of the penalized mean log-loss, computed by torch autograd in float64,
    vanishes at the fit (< 1e-10)."""
    x, y = sample_domain(800, SOURCE_MEAN, seed=5)
    fit = fit_logistic(x, y, kind, l2=1e-3)
    w = torch.tensor(fit.weights, requires_grad=True)
    phi = torch.from_numpy(features(x, kind))
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        phi @ w, torch.from_numpy(y.astype(np.float64))
    )
    (loss + 0.5e-3 * w @ w).backward()
    assert w.grad.abs().max().item() < 1e-10


@pytest.mark.parametrize("kind", cs.FEATURE_SETS)
def test_fit_matches_scikit_learn(kind):
    """Newton's minimizer equals scikit-learn's lbfgs one for the same objective (C = 1/(n l2), no
    separate intercept) to 1e-5."""
    x, y = sample_domain(800, SOURCE_MEAN, seed=6)
    l2 = 1e-2
    fit = fit_logistic(x, y, kind, l2=l2)
    ref = LogisticRegression(
        C=1.0 / (len(y) * l2), fit_intercept=False, tol=1e-12, max_iter=10_000
    )
    ref.fit(features(x, kind), y)
    assert rel_err(fit.weights, ref.coef_[0]) < 1e-5


def test_fit_is_deterministic_and_takes_few_newton_steps():
    """Two fits of the same data are bit-identical and converge in fewer than 30 Newton steps."""
    x, y = sample_domain(500, SOURCE_MEAN, seed=7)
    a, b = fit_logistic(x, y, "quadratic"), fit_logistic(x, y, "quadratic")
    np.testing.assert_array_equal(a.weights, b.weights)
    assert a.iterations < 30


# --------------------------------------------------------------------------- covariate shift


def test_linear_model_loses_its_accuracy_under_the_shift(reports):
    """Trained on the source, the linear model is right >= 90% of the time there and
    at most 60% in the target."""
    r = reports["linear"]
    assert r.source_train_accuracy >= 0.9 and r.source_test_accuracy >= 0.9
    assert r.target_accuracy <= 0.6 and r.drop >= 0.3


def test_linear_model_learns_the_tangent_and_calls_every_target_point_positive(
    reports,
):
    """Its boundary has slope near f'(-2) = -2, and it predicts y = 1 for >= 95% of target inputs:
    accuracy falls to P(y = 1) = 1/2."""
    fit = reports["linear"].fit
    slope = -fit.weights[1] / fit.weights[2]
    assert abs(slope - (-2.0)) < 0.4
    x, _ = sample_domain(2000, TARGET_MEAN, seed=11)
    assert fit.predict(x).mean() >= 0.95


@pytest.mark.parametrize("kind", cs.FEATURE_SETS)
def test_retraining_on_the_target_restores_the_accuracy(reports, kind):
    """The same family fitted on target data is >= 0.9 accurate there: the rule is
    learnable, only p(x) moved."""
    r = reports[kind]
    assert r.retrained_target_accuracy >= 0.9
    assert r.retrained_target_accuracy - r.target_accuracy >= 0.05


def test_a_family_that_contains_the_rule_can_still_fail_where_it_saw_no_data(
    reports,
):
    """The full quadratic family (which contains the parabola) is >= 97% right in the source
    and <= 70% in the target."""
    r = reports["quadratic"]
    assert r.source_test_accuracy >= 0.97 and r.target_accuracy <= 0.7


def test_the_matched_family_extrapolates(reports):
    """With features (1, x1, x2, x1^2) the target accuracy stays >= 0.85, far above the
    linear and quadratic models'."""
    assert reports["matched"].target_accuracy >= 0.85
    assert (
        reports["matched"].target_accuracy
        - max(
            reports["linear"].target_accuracy,
            reports["quadratic"].target_accuracy,
        )
        >= 0.2
    )


# --------------------------------------------------------------------------- hidden moments


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(3, 50), st.integers(1, 5))
def test_positive_per_unit_affine_maps_leave_shape_and_correlations_unchanged(
    seed, m, k
):
    """For h -> a h + b with a > 0 per unit: mean a mu + b, variance a^2 var, and the same skewness,
    kurtosis and correlations (1e-9)."""
    rng = np.random.default_rng(seed)
    h = rng.exponential(size=(m, k)) + rng.normal(size=(m, k))
    a, b = rng.uniform(0.1, 10.0, size=k), rng.normal(size=k) * 5
    before, after = hidden_moments(h), hidden_moments(h * a + b)
    np.testing.assert_allclose(
        after.mean, a * before.mean + b, rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(
        after.variance, a**2 * before.variance, rtol=1e-9
    )
    for name in ("skewness", "kurtosis", "correlation"):
        np.testing.assert_allclose(
            getattr(after, name), getattr(before, name), rtol=1e-9, atol=1e-9
        )


def test_moments_agree_with_closed_forms_from_numpy():
    """Mean, biased variance, E[u^3], E[u^4] and np.corrcoef, computed independently,
    match hidden_moments to 1e-10."""
    h = np.random.default_rng(8).gamma(2.0, size=(400, 4))
    moments = hidden_moments(h)
    z = (h - h.mean(axis=0)) / h.std(axis=0)
    assert rel_err(moments.variance, h.var(axis=0)) <= RTOL64
    assert rel_err(moments.skewness, (z**3).mean(axis=0)) <= RTOL64
    assert rel_err(moments.kurtosis, (z**4).mean(axis=0)) <= RTOL64
    assert rel_err(moments.correlation, np.corrcoef(h.T)) <= RTOL64


def test_moments_are_accurate_with_a_large_offset():
    """Two passes: a unit at offset 1e8 with spread 1e-2 keeps its variance to 1e-6 relative
    (one pass would lose it)."""
    rng = np.random.default_rng(9)
    base = rng.normal(size=(1000, 2)) * 1e-2
    moments = hidden_moments(base + 1e8)
    assert rel_err(moments.variance, hidden_moments(base).variance) < 1e-6


# ---------------------------------------------------------------- what BN pins and what it does not


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(4, 64), st.floats(1e-8, 1e-2))
def test_bn_pins_mean_to_beta_and_variance_to_gamma_squared_for_any_first_layer(
    seed, m, eps
):
    """For random W1, gamma, beta and input batch: batch mean of h is beta and its variance gamma^2
    sigma^2/(sigma^2 + eps) (1e-10)."""
    rng = np.random.default_rng(seed)
    net = TwoLayerNet(width=6, batch_norm=True, eps=eps)
    with torch.no_grad():
        net.first.weight.copy_(
            torch.from_numpy(rng.normal(size=(6, 2)) * rng.uniform(0.1, 10))
        )
        net.norm.weight.copy_(torch.from_numpy(rng.uniform(0.2, 3.0, size=6)))
        net.norm.bias.copy_(torch.from_numpy(rng.normal(size=6)))
    x = rng.normal(size=(m, 2)) * 3 + rng.normal(size=2) * 10
    z, h = net.batch_hidden(torch.from_numpy(x))
    gamma, beta = net.affine()
    sigma2 = z.numpy().var(axis=0)
    moments = hidden_moments(h.numpy())
    np.testing.assert_allclose(
        moments.mean, beta, rtol=0, atol=1e-10 * (1 + np.abs(gamma).max())
    )
    np.testing.assert_allclose(
        moments.variance, gamma**2 * sigma2 / (sigma2 + eps), rtol=1e-10
    )


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(4, 64))
def test_bn_leaves_skewness_kurtosis_and_correlations_as_the_first_layer_makes_them(
    seed, m
):
    """With gamma > 0, the skewness, kurtosis and correlations of h = BN(W1 x)
    equal those of W1 x (1e-9)."""
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = TwoLayerNet(width=5, batch_norm=True)
    with torch.no_grad():
        net.norm.weight.copy_(torch.from_numpy(rng.uniform(0.2, 3.0, size=5)))
    x, _ = sample_domain(m, SOURCE_MEAN, seed)
    z, h = net.batch_hidden(torch.from_numpy(x))
    before, after = hidden_moments(z.numpy()), hidden_moments(h.numpy())
    for name in ("skewness", "kurtosis", "correlation"):
        np.testing.assert_allclose(
            getattr(after, name), getattr(before, name), rtol=1e-9, atol=1e-9
        )


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 200))
def test_bn_bounds_each_normalized_value_by_sqrt_m_minus_one(seed, m):
    """Samuelson's inequality: |x_hat_i| <= sqrt(m - 1) for every batch; one outlier among equal
    values reaches sqrt(m - 1) sigma/sqrt(sigma^2 + eps)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_cauchy(size=(m, 3))
    x_hat, _ = batch_norm_forward(x, None, None)
    assert np.abs(x_hat).max() <= np.sqrt(m - 1) * (1 + 1e-12)
    spike = np.zeros((m, 1))
    spike[0] = 7.0
    x_hat, cache = batch_norm_forward(spike, None, None)
    sigma2 = 49.0 * (m - 1) / m**2
    expected = np.sqrt(m - 1) * np.sqrt(sigma2 / (sigma2 + cache.eps))
    assert abs(x_hat[0, 0] - expected) <= 1e-12 * np.sqrt(m)


def test_without_bn_the_mean_and_variance_of_the_hidden_units_move_at_every_step(
    traces,
):
    """No BN: every SGD step of the first layer changes some unit's mean (> 1e-3) and variance
    (> 1e-4) on the probe batch."""
    plain = traces["plain"]
    assert (
        plain.mean_change.min() > 1e-3 and plain.variance_change.min() > 1e-4
    )


def test_with_bn_the_probe_mean_is_beta_and_the_variance_follows_gamma_at_every_step(
    traces,
):
    """BN, learned gamma and beta: at each of 201 measurements, mean = beta (1e-12) and variance =
    gamma^2 sigma^2/(sigma^2 + eps) (1e-10)."""
    bn = traces["bn"]
    np.testing.assert_allclose(bn.means, bn.betas, rtol=0, atol=1e-12)
    pinned = bn.gammas**2 * bn.pre_variances / (bn.pre_variances + bn.eps)
    np.testing.assert_allclose(bn.variances, pinned, rtol=1e-10)


def test_with_learned_affine_the_mean_moves_exactly_as_beta_moves(traces):
    """The per-step change of the hidden means equals the largest
    per-step change of beta (1e-12)."""
    bn = traces["bn"]
    beta_change = np.abs(np.diff(bn.betas, axis=0)).max(axis=1)
    np.testing.assert_allclose(bn.mean_change, beta_change, rtol=0, atol=1e-12)


def test_with_fixed_affine_the_mean_does_not_move_and_the_variance_moves_only_through_eps(
    traces,
):
    """gamma = 1, beta = 0 fixed: the mean changes by <= 1e-12 per step; the variance
    stays within eps/sigma^2 of 1."""
    fixed = traces["bn_fixed"]
    assert fixed.mean_change.max() <= 1e-12
    assert np.all(
        np.abs(fixed.variances - 1.0)
        <= fixed.eps / fixed.pre_variances * (1 + 1e-9)
    )
    assert np.median(fixed.variance_change) < 1e-2 * np.median(
        traces["plain"].variance_change
    )


def test_with_bn_the_shape_and_the_correlations_still_move_at_every_step(
    traces,
):
    """Even with gamma and beta fixed, every step changes some unit's skewness and kurtosis (> 1e-3)
    and some correlation (> 1e-3)."""
    fixed = traces["bn_fixed"]
    assert (
        fixed.skewness_change.min() > 1e-3
        and fixed.kurtosis_change.min() > 1e-3
    )
    assert fixed.correlation_change.min() > 1e-3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_in_this_example_bn_slows_the_mean_and_speeds_up_the_correlations(
    seed,
):
    """Learned gamma, beta, seeds 0-2: median per-step mean change >= 3x smaller with BN,
    correlation change >= 3x larger."""
    plain, bn = (
        layer_input_drift(False, seed=seed),
        layer_input_drift(True, seed=seed),
    )
    assert np.median(bn.mean_change) * 3 <= np.median(plain.mean_change)
    assert np.median(bn.correlation_change) >= 3 * np.median(
        plain.correlation_change
    )


def test_in_this_example_the_bn_network_reaches_a_lower_training_loss(traces):
    """Mean mini-batch loss over the last 50 of 200 steps: BN at most 0.7
    times the plain network's."""
    assert (
        traces["bn"].losses[-50:].mean()
        <= 0.7 * traces["plain"].losses[-50:].mean()
    )


def test_drift_is_deterministic_and_leaves_the_global_torch_generator_alone():
    """Same seed, bit-identical trace; a different seed, a different one; torch's global RNG state
    is unchanged by the call."""
    state = torch.get_rng_state()
    a, b = (
        layer_input_drift(True, steps=5, seed=4),
        layer_input_drift(True, steps=5, seed=4),
    )
    c = layer_input_drift(True, steps=5, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    np.testing.assert_array_equal(a.correlations, b.correlations)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert not np.array_equal(a.losses, c.losses)


def test_drift_restores_the_number_of_torch_threads():
    """layer_input_drift runs on one thread and sets torch's thread count back afterwards."""
    before = torch.get_num_threads()
    layer_input_drift(False, steps=2)
    assert torch.get_num_threads() == before


# --------------------------------------------------------------------------- the batch noise


@pytest.fixture(scope="module")
def bn_net(traces):
    return traces["bn"].net


def test_batch_statistics_path_equals_the_modules_training_forward(bn_net):
    """The vectorized batch-statistics forward used by prediction_spread equals net(x)
    in training mode (1e-12)."""
    x, _ = sample_domain(16, SOURCE_MEAN, seed=12)
    net = copy.deepcopy(bn_net).train()
    expected = net(torch.from_numpy(x)).detach().numpy()
    _, h = bn_net.batch_hidden(torch.from_numpy(x)[None])
    got = bn_net.second(torch.relu(h))[0, :, 0].detach().numpy()
    assert rel_err(got, expected) <= 1e-12


def test_one_example_gets_different_outputs_in_different_batches(bn_net):
    """In training mode the same example's logit varies over random
    companions (sd > 0.05 at m = 16)."""
    assert prediction_spread(bn_net, EXAMPLE, 16) > 0.05


def test_the_spread_shrinks_as_the_batch_grows(bn_net):
    """The spread of the logit falls strictly from m = 4 to 16 to 64 to 256,
    and by >= 4x from 4 to 256."""
    spreads = [prediction_spread(bn_net, EXAMPLE, m) for m in (4, 16, 64, 256)]
    assert all(a > b for a, b in pairwise(spreads))
    assert spreads[0] >= 4 * spreads[-1]


def test_the_noise_vanishes_with_fixed_statistics_and_without_bn(
    bn_net, traces
):
    """In evaluation mode (running statistics), and for a network without
    BN, the spread is exactly 0."""
    assert prediction_spread(bn_net, EXAMPLE, 16, training=False) == 0.0
    assert prediction_spread(traces["plain"].net, EXAMPLE, 16) == 0.0


def test_prediction_spread_leaves_the_network_unchanged(bn_net):
    """Parameters, running statistics and the train/eval mode are the same
    after both kinds of call."""
    state = _state(bn_net)
    prediction_spread(bn_net, EXAMPLE, 8)
    prediction_spread(bn_net, EXAMPLE, 8, training=False)
    assert _same_state(bn_net, state)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: label(np.zeros((3, 3))), ValueError, r"shape \(n, 2\)"),
        (
            lambda: label(np.zeros((3, 2), dtype=np.int64)),
            TypeError,
            "floating dtype",
        ),
        (lambda: label(np.array([[0.0, np.nan]])), ValueError, "non-finite"),
        (
            lambda: sample_domain(0, 0.0),
            ValueError,
            "n must be an integer >= 1",
        ),
        (
            lambda: sample_domain(5, np.inf),
            ValueError,
            "x1_mean must be a finite real number",
        ),
        (
            lambda: sample_domain(5, 0.0, x1_sd=0.0),
            ValueError,
            "x1_sd must be a finite number > 0",
        ),
        (
            lambda: sample_domain(5, 0.0, seed=-1),
            ValueError,
            "seed must be an integer >= 0",
        ),
        (
            lambda: features(np.zeros((2, 2)), "cubic"),
            ValueError,
            "kind must be one of",
        ),
        (
            lambda: fit_logistic(np.zeros((4, 2)), np.array([0, 1, 2, 0])),
            ValueError,
            "only the labels 0 and 1",
        ),
        (
            lambda: fit_logistic(np.zeros((4, 2)), np.array([0, 1, 0])),
            ValueError,
            r"y must have shape \(4,\)",
        ),
        (
            lambda: fit_logistic(
                np.zeros((4, 2)), np.array([True, False, True, False])
            ),
            TypeError,
            "integers 0 and 1",
        ),
        (
            lambda: fit_logistic(
                np.zeros((4, 2)), np.array([0, 1, 0, 1]), l2=0.0
            ),
            ValueError,
            "l2 must be a finite number > 0",
        ),
        (
            lambda: fit_logistic(
                np.zeros((4, 2)), np.array([0, 1, 0, 1]), max_iter=0
            ),
            ValueError,
            "max_iter",
        ),
        (lambda: hidden_moments(np.zeros((1, 3))), ValueError, "m >= 2"),
        (lambda: hidden_moments(np.ones((5, 2))), ValueError, "variance 0"),
        (
            lambda: TwoLayerNet(width=0),
            ValueError,
            "width must be an integer >= 1",
        ),
        (
            lambda: TwoLayerNet(batch_norm=True, eps=0.0),
            ValueError,
            "eps must be a finite number > 0",
        ),
        (lambda: TwoLayerNet().affine(), ValueError, "has no BN"),
        (
            lambda: layer_input_drift(True, lr=-0.1),
            ValueError,
            "lr must be a finite number > 0",
        ),
        (
            lambda: layer_input_drift(True, batch_size=1),
            ValueError,
            "batch_size must be an integer >= 2",
        ),
        (
            lambda: layer_input_drift(True, batch_size=64, n_train=32),
            ValueError,
            r"must not exceed n_train",
        ),
        (
            lambda: layer_input_drift(True, steps=0),
            ValueError,
            "steps must be an integer >= 1",
        ),
        (
            lambda: prediction_spread(torch.nn.Linear(2, 1), EXAMPLE, 4),
            TypeError,
            "TwoLayerNet",
        ),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match):
    """Each invalid argument raises the documented error type with a message naming the problem."""
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize(
    "example, batch_size, draws, match",
    [
        (np.zeros(3), 4, 10, r"shape \(2,\)"),
        (np.array([0.0, np.inf]), 4, 10, "non-finite"),
        (EXAMPLE, 1, 10, "batch_size must be an integer >= 2"),
        (EXAMPLE, 4, 1, "draws must be an integer >= 2"),
    ],
)
def test_a_failed_prediction_spread_changes_nothing(
    bn_net, example, batch_size, draws, match
):
    """A bad example, batch size or number of draws raises ValueError and leaves the
    network exactly as it was."""
    state = _state(bn_net)
    with pytest.raises(ValueError, match=match):
        prediction_spread(bn_net, example, batch_size, draws=draws)
    assert _same_state(bn_net, state)


def test_newton_reports_non_convergence():
    """With one Newton step allowed and a tolerance of 0, fit_logistic raises RuntimeError instead
    of returning a non-minimizer."""
    x, y = sample_domain(100, SOURCE_MEAN, seed=13)
    with pytest.raises(RuntimeError, match="did not converge"):
        fit_logistic(x, y, max_iter=1, tol=1e-300)


# --------------------------------------------------------------------------- figures


def test_committed_figures_are_exactly_what_the_code_renders(tmp_path):
    """docs/assets/figures/<lang>/covariate-shift-*.svg equal a fresh rendering byte for
    byte, in every language."""
    from bnnotes.experiments import FIGURES_DIR

    written = experiment.write_figures(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        f"{lang}/{name}"
        for lang in LANGUAGES
        for name in experiment.FIGURE_NAMES
    ]
    for path in written:
        committed = FIGURES_DIR / path.relative_to(tmp_path)
        assert committed.is_file(), (
            f"{committed} is missing: run python -m bnnotes.experiments figures"
        )
        assert committed.read_bytes() == path.read_bytes(), (
            f"{committed} is stale: run python -m bnnotes.experiments figures"
        )


def test_figures_speak_the_language_asked_for():
    """figures(lang=...) puts that language's words on the figures and refuses others."""
    assert (
        "타깃 정확도"
        in experiment.figures(lang="ko")["covariate-shift-domains.svg"]
    )
    with pytest.raises(ValueError, match="lang must be one of"):
        experiment.figures(lang="fr")
