"""Layer normalization: forward and backward against torch in float64, finite
differences, properties, errors."""

import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import RTOL64, central_difference, rel_err, t
from hypothesis import given, settings
from hypothesis import strategies as st

import bnnotes.layernorm as ln
from bnnotes.layernorm import layer_norm_backward, layer_norm_forward

# (input shape, normalized_shape)
CASES = [
    ((6, 5), (5,)),
    ((3, 4, 7), (7,)),
    ((2, 3, 4, 5), (3, 4, 5)),
    ((2, 3, 4, 5), (4, 5)),
    ((5,), (5,)),
]


def _affine(rng, shape, affine):
    return (
        (rng.normal(size=shape), rng.normal(size=shape))
        if affine
        else (None, None)
    )


@pytest.mark.parametrize(("shape", "normalized"), CASES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("eps", [1e-5, 1e-1])
def test_forward_matches_torch_layer_norm(shape, normalized, affine, eps):
    """y equals F.layer_norm to 1e-10 relative, for one or several normalized
    axes, with and without affine."""
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=shape)
    gamma, beta = _affine(rng, normalized, affine)
    y, _ = layer_norm_forward(x, normalized, gamma, beta, eps=eps)
    ref = F.layer_norm(t(x), normalized, t(gamma), t(beta), eps=eps)
    assert rel_err(y, ref.numpy()) <= RTOL64


@pytest.mark.parametrize(("shape", "normalized"), CASES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_backward_matches_torch_autograd(shape, normalized, affine):
    """dx, dgamma, dbeta equal autograd through F.layer_norm to 1e-10 relative."""
    rng = np.random.default_rng(1)
    x, dy = rng.normal(1.0, 2.0, size=shape), rng.normal(size=shape)
    gamma, beta = _affine(rng, normalized, affine)
    _, cache = layer_norm_forward(x, normalized, gamma, beta, eps=1e-3)
    dx, dgamma, dbeta = layer_norm_backward(dy, cache)
    xt = t(x).requires_grad_()
    gt = t(gamma if affine else np.ones(normalized)).requires_grad_()
    bt = t(beta if affine else np.zeros(normalized)).requires_grad_()
    F.layer_norm(xt, normalized, gt, bt, eps=1e-3).backward(t(dy))
    assert rel_err(dx, xt.grad.numpy()) <= RTOL64
    assert rel_err(dgamma, gt.grad.numpy()) <= RTOL64
    assert rel_err(dbeta, bt.grad.numpy()) <= RTOL64


def test_backward_matches_central_finite_differences():
    """Every entry of dx, dgamma, dbeta matches a central difference of
    <dy, y> (h = 1e-6, rel 1e-7)."""
    rng = np.random.default_rng(2)
    x, dy = rng.normal(size=(3, 2, 4)), rng.normal(size=(3, 2, 4))
    gamma, beta = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    _, cache = layer_norm_forward(x, (2, 4), gamma, beta)
    dx, dgamma, dbeta = layer_norm_backward(dy, cache)

    def loss(x_, g_, b_):
        return float(np.sum(dy * layer_norm_forward(x_, (2, 4), g_, b_)[0]))

    assert (
        rel_err(dx, central_difference(lambda v: loss(v, gamma, beta), x))
        <= 1e-7
    )
    assert (
        rel_err(dgamma, central_difference(lambda v: loss(x, v, beta), gamma))
        <= 1e-7
    )
    assert (
        rel_err(dbeta, central_difference(lambda v: loss(x, gamma, v), beta))
        <= 1e-7
    )


def test_cache_holds_per_example_mean_and_biased_variance():
    """The statistics are one mean and one biased (1/H) variance per example, over
    the normalized axes only."""
    x = np.random.default_rng(3).normal(size=(2, 3, 4, 5))
    _, cache = layer_norm_forward(x, (4, 5))
    assert cache.mean.shape == (2, 3)
    np.testing.assert_allclose(cache.mean, x.mean(axis=(2, 3)), rtol=1e-13)
    np.testing.assert_allclose(
        cache.var, x.var(axis=(2, 3), ddof=0), rtol=1e-12
    )


def test_output_of_an_example_does_not_depend_on_the_batch():
    """Each example normalizes the same alone (batch of 1) as in a batch of 64:
    LN has no batch statistics."""
    x = np.random.default_rng(4).normal(size=(64, 10))
    y_batch, _ = layer_norm_forward(x, 10)
    for i in (0, 17, 63):
        y_alone, _ = layer_norm_forward(x[i : i + 1], 10)
        assert rel_err(y_alone[0], y_batch[i]) <= 1e-15
    y_half, _ = layer_norm_forward(x[:32], 10)
    assert rel_err(y_half, y_batch[:32]) <= 1e-15


def test_training_and_evaluation_compute_the_same_thing():
    """torch.nn.LayerNorm gives the same output in train() and eval(), and it equals
    ours: no running statistics."""
    rng = np.random.default_rng(5)
    layer = torch.nn.LayerNorm(6, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(t(rng.normal(size=6)))
        layer.bias.copy_(t(rng.normal(size=6)))
    x = rng.normal(size=(4, 6))
    train_out = layer.train()(t(x)).detach().numpy()
    eval_out = layer.eval()(t(x)).detach().numpy()
    np.testing.assert_array_equal(train_out, eval_out)
    assert not [name for name, _ in layer.named_buffers()]
    ours, _ = layer_norm_forward(
        x, 6, layer.weight.detach().numpy(), layer.bias.detach().numpy()
    )
    assert rel_err(ours, train_out) <= RTOL64


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.tuples(st.integers(1, 5), st.integers(2, 9)),
    st.floats(1e-2, 1e3),
    st.floats(-1e4, 1e4),
)
def test_normalized_rows_have_zero_mean_and_variance_var_over_var_plus_eps(
    seed, shape, scale, offset
):
    """Per example, x_hat has mean 0 and biased variance var / (var + eps)."""
    x = np.random.default_rng(seed).normal(size=shape) * scale + offset
    _, cache = layer_norm_forward(x, shape[1])
    var = x.var(axis=1)
    np.testing.assert_allclose(cache.x_hat.mean(axis=1), 0.0, atol=1e-9)
    np.testing.assert_allclose(
        cache.x_hat.var(axis=1), var / (var + 1e-5), rtol=1e-9, atol=1e-12
    )


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.floats(1e-2, 1e2) | st.floats(-1e2, -1e-2),
    st.floats(-1e3, 1e3),
)
def test_rescaling_by_alpha_equals_sign_alpha_times_ln_with_eps_over_alpha_squared(
    seed, alpha, shift
):
    """LN_eps(alpha x + b) = sign(alpha) LN_{eps/alpha^2}(x) for any alpha != 0 (the exact form of
    LN's scale 'invariance')."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(4, 8))
    gamma, beta = rng.normal(size=8), rng.normal(size=8)
    eps = 1e-3
    lhs, _ = layer_norm_forward(alpha * x + shift, 8, eps=eps)
    rhs, _ = layer_norm_forward(x, 8, eps=eps / alpha**2)
    np.testing.assert_allclose(lhs, np.sign(alpha) * rhs, rtol=1e-9, atol=1e-9)
    # The gain and bias act after the sign: y = gamma * sign(alpha) * x_hat + beta.
    lhs_affine, _ = layer_norm_forward(alpha * x, 8, gamma, beta, eps=eps)
    np.testing.assert_allclose(
        lhs_affine, gamma * np.sign(alpha) * rhs + beta, rtol=1e-9, atol=1e-9
    )


def test_ln_is_not_invariant_to_negative_or_small_scales():
    """'LN(alpha x) = LN(x) for any alpha != 0' is false: alpha = -1 flips the sign, alpha = 1e-3
    lets eps dominate (d2l pitfall)."""
    x = np.random.default_rng(6).normal(size=(3, 16))
    y, _ = layer_norm_forward(x, 16)
    y_neg, _ = layer_norm_forward(-x, 16)
    y_small, _ = layer_norm_forward(1e-3 * x, 16)
    np.testing.assert_allclose(y_neg, -y, rtol=1e-12, atol=1e-12)
    assert rel_err(y_neg, y) > 1.0
    assert rel_err(y_small, y) > 0.5  # var ~1e-6 against eps = 1e-5
    assert (
        rel_err(layer_norm_forward(1e3 * x, 16)[0], y) < 1e-4
    )  # a large positive alpha acts only through eps


def test_float32_with_large_offset_keeps_the_variance():
    """float32 rows + 1e4: the variance stays within 1e-5 relative, where E[x^2] - E[x]^2 in
    float32 is off by more than 10%."""
    x32 = (np.random.default_rng(7).normal(size=(8, 512)) + 1e4).astype(
        np.float32
    )
    y, cache = layer_norm_forward(x32, 512)
    exact = x32.astype(np.float64).var(axis=1)
    one_pass = (x32 * x32).mean(axis=1) - x32.mean(axis=1) ** 2
    assert y.dtype == np.float32
    assert np.max(np.abs(cache.var / exact - 1)) < 1e-5
    assert np.max(np.abs(one_pass / exact - 1)) > 1e-1
    y64, _ = layer_norm_forward(x32.astype(np.float64), 512)
    assert np.max(np.abs(y - y64)) < 1e-4


BAD = [
    (np.ones((4, 5), dtype=np.int64), 5, TypeError, "floating dtype"),
    (np.array([[np.nan, 1.0]]), 2, ValueError, "non-finite"),
    (np.array([[np.inf, 1.0]]), 2, ValueError, "non-finite"),
    (np.ones((4, 5)), 4, ValueError, "must equal normalized_shape"),
    (np.ones((4, 5)), (4, 5, 1), ValueError, "must equal normalized_shape"),
    (np.ones((4, 5)), 0, ValueError, "positive ints"),
    (np.ones((4, 5)), (), ValueError, "non-empty"),
    (np.ones((4, 5)), "5", ValueError, "positive ints"),
    (np.ones((4, 5)), 2.5, TypeError, "int or a tuple"),
]


@pytest.mark.parametrize(
    ("x", "normalized", "error", "message"), BAD, ids=lambda v: str(v)[:24]
)
def test_bad_input_raises_a_named_error_and_leaves_the_input_unchanged(
    x, normalized, error, message
):
    """A rejected call raises the named error and does not modify its argument."""
    before = x.copy()
    with pytest.raises(error, match=message):
        layer_norm_forward(x, normalized)
    np.testing.assert_array_equal(x, before)


def test_bad_affine_eps_and_upstream_gradient_are_named():
    """Wrong gamma/beta shapes, eps <= 0 and a wrong dy shape name the argument."""
    x = np.random.default_rng(8).normal(size=(3, 4))
    with pytest.raises(ValueError, match=r"gamma must have shape \(4,\)"):
        layer_norm_forward(x, 4, gamma=np.ones(3))
    with pytest.raises(ValueError, match=r"beta must have shape \(4,\)"):
        layer_norm_forward(x, 4, beta=np.ones((1, 4)))
    for eps in (0.0, -1.0, float("nan"), True):
        with pytest.raises(ValueError, match="eps must be"):
            layer_norm_forward(x, 4, eps=eps)
    _, cache = layer_norm_forward(x, 4)
    with pytest.raises(ValueError, match="forward output's shape"):
        layer_norm_backward(np.ones((3, 5)), cache)
    with pytest.raises(ValueError, match="non-finite"):
        layer_norm_backward(np.full((3, 4), np.nan), cache)


def test_forward_and_backward_do_not_modify_their_arguments():
    """x, gamma, beta and dy are read, never written."""
    rng = np.random.default_rng(9)
    x, gamma, beta, dy = (
        rng.normal(size=(3, 4)),
        rng.normal(size=4),
        rng.normal(size=4),
        rng.normal(size=(3, 4)),
    )
    copies = [a.copy() for a in (x, gamma, beta, dy)]
    _, cache = layer_norm_forward(x, 4, gamma, beta)
    layer_norm_backward(dy, cache)
    for a, b in zip((x, gamma, beta, dy), copies, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.shares_memory(cache.x_hat, x)


@pytest.mark.parametrize("affine", [False, True])
def test_changing_y_in_place_leaves_the_backward_pass_unchanged(affine):
    """y is a fresh array (also without gamma and beta): writing into it does
    not alter the cache or dx."""
    rng = np.random.default_rng(11)
    x, dy = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    gamma, beta = (
        (rng.normal(size=4), rng.normal(size=4)) if affine else (None, None)
    )
    y, cache = layer_norm_forward(x, 4, gamma, beta)
    expected = [a.copy() for a in layer_norm_backward(dy, cache)]
    y *= 5.0
    y += 1.0
    for a, b in zip(layer_norm_backward(dy, cache), expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_every_public_function_has_a_running_example():
    """Each public function and class of bnnotes.layernorm documents itself with an executed
    example or its attributes."""
    for name in ln.__all__:
        if name == "DEFAULT_EPS":
            continue
        doc = inspect.getdoc(getattr(ln, name)) or ""
        assert ("Examples\n--------\n>>>" in doc) or (
            "Attributes" in doc and name.endswith("Cache")
        ), name
