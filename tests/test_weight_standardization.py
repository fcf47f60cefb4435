"""Weight standardization: the estimator, agreement with the authors' PyTorch code, the backward
pass and the gradient-norm identity."""

import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import RTOL64, central_difference, rel_err, t
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils import parametrize

import bnnotes.torch_layers as tl
import bnnotes.weight_standardization as ws
from bnnotes.batchnorm import batch_norm_backward, batch_norm_forward
from bnnotes.torch_layers import WeightStandardization, WSConv2d
from bnnotes.weight_standardization import (
    gradient_norm_terms,
    weight_standardization_backward,
    weight_standardization_forward,
)

SHAPES = [(4, 6), (3, 2, 3, 3), (5, 1, 3), (2, 3, 2, 2, 2)]


def _authors_pytorch(weight):
    """The snippet of the authors' README: torch.std_mean (Bessel-corrected)
    and eps added to the std."""
    std, mean = torch.std_mean(
        weight, dim=tuple(range(1, weight.ndim)), keepdim=True
    )
    return (weight - mean) / (std + 1e-5)


def _population_torch(weight, eps):
    """The paper's formula in torch: population std, eps added to the std."""
    std, mean = torch.std_mean(
        weight, dim=tuple(range(1, weight.ndim)), keepdim=True, correction=0
    )
    return (weight - mean) / (std + eps)


def test_default_is_the_papers_population_formula():
    """With default arguments, W_hat = (W - mean) / (sqrt(mean((W - mean)^2)) + 1e-5): the paper's
    1/I estimator, as documented."""
    w = np.random.default_rng(0).normal(size=(4, 3, 3, 3))
    rows = w.reshape(4, -1)
    mu = rows.mean(axis=1, keepdims=True)
    sigma = np.sqrt(np.mean((rows - mu) ** 2, axis=1, keepdims=True))
    w_hat, cache = weight_standardization_forward(w)
    assert (
        ws.DEFAULT_CORRECTION
        == 0
        == inspect
        .signature(weight_standardization_forward)
        .parameters["correction"]
        .default
    )
    assert rel_err(w_hat.reshape(4, -1), (rows - mu) / (sigma + 1e-5)) <= 1e-14
    np.testing.assert_allclose(cache.sigma, sigma[:, 0], rtol=1e-14)


def test_the_docstring_states_the_estimator_the_code_uses():
    """The forward docstring's example writes out the 1/I formula and checks it (labml's WS doc said
    1/I while its code used 1/(I-1))."""
    doc = inspect.getdoc(weight_standardization_forward)
    flat = " ".join(doc.replace("...", " ").split())
    assert "/ rows.shape[1] ) # 1/I" in flat
    assert "ddof=1" in doc and "correction=1" in doc


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_correction_one_matches_the_authors_pytorch_snippet_forward_and_backward(
    shape,
):
    """correction=1 reproduces torch.std_mean-based WS (the official PyTorch snippet)
    and its autograd to 1e-10."""
    rng = np.random.default_rng(1)
    w, g = rng.normal(size=shape), rng.normal(size=shape)
    w_hat, cache = weight_standardization_forward(w, correction=1)
    wt = t(w).requires_grad_()
    ref = _authors_pytorch(wt)
    ref.backward(t(g))
    assert rel_err(w_hat, ref.detach().numpy()) <= RTOL64
    assert (
        rel_err(weight_standardization_backward(g, cache), wt.grad.numpy())
        <= RTOL64
    )


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("eps", [0.0, 1e-5, 0.5])
def test_population_formula_matches_torch_autograd(shape, eps):
    """correction=0 equals the paper's formula written in torch, forward and backward,
    for eps = 0, 1e-5 and 0.5."""
    rng = np.random.default_rng(2)
    w, g = rng.normal(size=shape), rng.normal(size=shape)
    w_hat, cache = weight_standardization_forward(w, eps=eps)
    wt = t(w).requires_grad_()
    ref = _population_torch(wt, eps)
    ref.backward(t(g))
    assert rel_err(w_hat, ref.detach().numpy()) <= RTOL64
    assert (
        rel_err(weight_standardization_backward(g, cache), wt.grad.numpy())
        <= RTOL64
    )


@pytest.mark.parametrize("correction", [0, 1])
def test_backward_matches_central_finite_differences(correction):
    """dL/dW matches a central difference of <G, W_hat(W)> (h = 1e-6,
    rel 1e-7) for both estimators."""
    rng = np.random.default_rng(3)
    w, g = rng.normal(size=(3, 2, 2)), rng.normal(size=(3, 2, 2))
    _, cache = weight_standardization_forward(w, correction=correction)
    dw = weight_standardization_backward(g, cache)
    numeric = central_difference(
        lambda a: float(
            np.sum(
                g * weight_standardization_forward(a, correction=correction)[0]
            )
        ),
        w,
    )
    assert rel_err(dw, numeric) <= 1e-7


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 5),
    st.integers(2, 12),
    st.sampled_from([0, 1]),
)
def test_gradient_norm_identity_holds_with_equality(
    seed, out, fan_in, correction
):
    """||dL/dW||^2 = (||G||^2 - <1,G>^2/I - <W_hat,G>^2/(I-k)) / sigma^2 per output
    channel, to 1e-9 relative."""
    rng = np.random.default_rng(seed)
    w, g = (
        rng.normal(size=(out, fan_in)) * rng.uniform(0.1, 10),
        rng.normal(size=(out, fan_in)),
    )
    terms = gradient_norm_terms(w, g, correction=correction)
    np.testing.assert_allclose(
        terms.grad_norm_sq,
        terms.predicted,
        rtol=1e-9,
        atol=1e-12 * terms.total.max() / terms.sigma.min() ** 2,
    )
    assert np.all(
        terms.grad_norm_sq <= terms.total / terms.sigma**2 * (1 + 1e-12)
    )


def test_the_population_one_over_i_radial_coefficient_is_wrong_for_the_bessel_estimator():
    """With correction=1 the radial term needs 1/(I-1): using the population formula's 1/I
    misses ||dL/dW||^2 (why `correction` matters)."""
    rng = np.random.default_rng(4)
    w, g = rng.normal(size=(1, 4)), rng.normal(size=(1, 4))
    terms = gradient_norm_terms(w, g, correction=1)
    w_hat, _ = weight_standardization_forward(w, eps=0.0, correction=1)
    with_one_over_i = (
        terms.total - terms.mean_term - np.sum(w_hat * g) ** 2 / 4
    ) / terms.sigma**2
    assert rel_err(terms.grad_norm_sq, terms.predicted) <= 1e-12
    assert abs(with_one_over_i[0] / terms.grad_norm_sq[0] - 1) > 1e-2


def test_bessel_standardized_rows_are_smaller_by_sqrt_i_minus_one_over_i():
    """At eps = 0, ||W_hat_i||^2 = I with correction 0 and I - 1 with correction 1."""
    w = np.random.default_rng(5).normal(size=(3, 9))
    for k in (0, 1):
        w_hat, _ = weight_standardization_forward(w, eps=0.0, correction=k)
        np.testing.assert_allclose((w_hat**2).sum(axis=1), 9 - k, rtol=1e-13)


def test_standardizing_a_row_is_batch_norm_of_its_weights():
    """WS of one output channel (eps = 0, k = 0) is BN over a batch of its I weights, forward and
    backward: same two projections."""
    rng = np.random.default_rng(6)
    w, g = rng.normal(size=(1, 10)), rng.normal(size=(1, 10))
    w_hat, cache = weight_standardization_forward(w, eps=0.0)
    y, bn_cache = batch_norm_forward(w.T, None, None, eps=np.finfo(float).tiny)
    assert rel_err(w_hat, y.T) <= 1e-14
    assert (
        rel_err(
            weight_standardization_backward(g, cache),
            batch_norm_backward(g.T, bn_cache)[0].T,
        )
        <= 1e-13
    )


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(1e-3, 1e3), st.floats(-1e3, 1e3))
def test_standardization_ignores_a_per_channel_shift_and_positive_scale(
    seed, a, b
):
    """WS(a W + b) = WS(W) for a > 0 at eps = 0, with a and b chosen per output channel."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(3, 8))
    scale = a * rng.uniform(0.5, 2.0, size=(3, 1))
    shift = b * rng.uniform(-1.0, 1.0, size=(3, 1))
    w_hat, _ = weight_standardization_forward(w, eps=0.0)
    w_hat2, _ = weight_standardization_forward(scale * w + shift, eps=0.0)
    np.testing.assert_allclose(w_hat2, w_hat, rtol=1e-8, atol=1e-8)


def test_float32_with_large_offset_keeps_sigma():
    """float32 weights + 1e4: sigma stays within 1e-5 relative of float64, where
    the one-pass formula fails."""
    w32 = (np.random.default_rng(7).normal(size=(4, 512)) + 1e4).astype(
        np.float32
    )
    w_hat, cache = weight_standardization_forward(w32)
    exact = w32.astype(np.float64).std(axis=1)
    one_pass = np.sqrt(
        np.maximum((w32 * w32).mean(axis=1) - w32.mean(axis=1) ** 2, 0)
    )
    assert w_hat.dtype == np.float32
    assert np.max(np.abs(cache.sigma / exact - 1)) < 1e-5
    assert np.max(np.abs(one_pass / exact - 1)) > 1e-1


def test_constant_row_standardizes_to_zero_when_eps_is_positive():
    """A constant output channel gives W_hat = 0 and a finite gradient (G -
    mean G)/eps with eps > 0."""
    w = np.vstack([np.full(4, 3.0), np.arange(4.0)])
    g = np.random.default_rng(8).normal(size=(2, 4))
    w_hat, cache = weight_standardization_forward(w, eps=1e-3)
    np.testing.assert_array_equal(w_hat[0], 0.0)
    dw = weight_standardization_backward(g, cache)
    np.testing.assert_allclose(dw[0], (g[0] - g[0].mean()) / 1e-3, rtol=1e-12)


@pytest.mark.parametrize("correction", [0, 1])
def test_torch_modules_match_the_numpy_reference(correction):
    """WSConv2d and the WeightStandardization parametrization use the same W_hat as
    weight_standardization_forward."""
    torch.manual_seed(0)
    conv = WSConv2d(
        3, 4, 3, padding=1, correction=correction, dtype=torch.float64
    )
    w_hat, _ = weight_standardization_forward(
        conv.weight.detach().numpy(), correction=correction
    )
    assert (
        rel_err(conv.standardized_weight().detach().numpy(), w_hat) <= RTOL64
    )
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    expected = F.conv2d(x, t(w_hat), conv.bias, padding=1)
    assert (
        rel_err(conv(x).detach().numpy(), expected.detach().numpy()) <= RTOL64
    )
    layer = torch.nn.Conv2d(3, 4, 3, dtype=torch.float64)
    raw = layer.weight.detach().numpy().copy()
    parametrize.register_parametrization(
        layer, "weight", WeightStandardization(correction=correction)
    )
    assert (
        rel_err(
            layer.weight.detach().numpy(),
            weight_standardization_forward(raw, correction=correction)[0],
        )
        <= RTOL64
    )


def test_torch_module_gradient_flows_through_the_standardization():
    """The gradient WSConv2d gives its raw weight equals weight_standardization_backward
    of the gradient at W_hat."""
    torch.manual_seed(1)
    conv = WSConv2d(2, 3, 3, bias=False, dtype=torch.float64)
    x = torch.randn(4, 2, 6, 6, dtype=torch.float64)
    w_hat_t = conv.standardized_weight().detach().requires_grad_()
    F.conv2d(x, w_hat_t).square().sum().backward()
    conv(x).square().sum().backward()
    _, cache = weight_standardization_forward(conv.weight.detach().numpy())
    expected = weight_standardization_backward(w_hat_t.grad.numpy(), cache)
    assert rel_err(conv.weight.grad.numpy(), expected) <= RTOL64


@pytest.mark.parametrize(
    ("weight", "kwargs", "error", "message"),
    [
        (np.ones(4), {}, ValueError, "weight must have shape"),
        (np.ones((2, 3), dtype=np.int32), {}, TypeError, "floating dtype"),
        (np.array([[1.0, np.nan]]), {}, ValueError, "non-finite"),
        (
            np.random.default_rng(0).normal(size=(2, 3)),
            {"eps": -1e-5},
            ValueError,
            "eps must be",
        ),
        (
            np.random.default_rng(0).normal(size=(2, 3)),
            {"correction": 3},
            ValueError,
            "must be smaller than",
        ),
        (
            np.random.default_rng(0).normal(size=(2, 3)),
            {"correction": -1},
            ValueError,
            "correction must be",
        ),
        (
            np.random.default_rng(0).normal(size=(2, 3)),
            {"correction": 0.5},
            ValueError,
            "correction must be",
        ),
        (np.ones((2, 3)), {"eps": 0.0}, ValueError, "constant weights"),
    ],
)
def test_bad_input_raises_a_named_error_and_leaves_the_weight_unchanged(
    weight, kwargs, error, message
):
    """A rejected weight or setting raises the named error and does not modify the weight."""
    before = weight.copy()
    with pytest.raises(error, match=message):
        weight_standardization_forward(weight, **kwargs)
    np.testing.assert_array_equal(weight, before)


def test_bad_gradient_and_module_settings_are_named():
    """A dw_hat of the wrong shape, and invalid eps or correction of the torch
    modules, give clear errors."""
    _, cache = weight_standardization_forward(
        np.random.default_rng(9).normal(size=(2, 3))
    )
    with pytest.raises(ValueError, match="dw_hat must have"):
        weight_standardization_backward(np.ones((3, 2)), cache)
    with pytest.raises(ValueError, match="correction must be"):
        WSConv2d(2, 2, 3, correction=-1)
    with pytest.raises(ValueError, match="eps must be"):
        WeightStandardization(eps=-1.0)


def test_torch_gradient_at_a_channel_of_equal_weights_is_the_true_derivative():
    """At a constant row (sigma = 0) W_hat = c/(a||c|| + eps) has Jacobian P/eps: torch's
    gradient is finite and equals it."""
    w = torch.tensor(
        [[0.7] * 6, [0.1, -0.4, 0.9, 0.3, -1.2, 0.5]],
        dtype=torch.float64,
        requires_grad=True,
    )
    g = torch.tensor(np.random.default_rng(11).normal(size=(2, 6)))
    (WeightStandardization(eps=1e-5)(w) * g).sum().backward()
    assert bool(torch.isfinite(w.grad).all())
    expected = (g[0] - g[0].mean()) / 1e-5
    assert rel_err(w.grad[0].numpy(), expected.numpy()) <= RTOL64
    _, cache = weight_standardization_forward(w.detach().numpy())
    numpy_grad = weight_standardization_backward(g.numpy(), cache)
    assert rel_err(w.grad.numpy(), numpy_grad) <= RTOL64


def test_torch_gradient_at_a_constant_row_matches_central_differences():
    """With eps = 0.1 the derivative at a constant row is (G - mean G)/eps; central differences
    (h = 1e-7) agree to 1e-6."""
    w = np.vstack([np.full(5, -2.0), np.arange(5.0)])
    g = np.random.default_rng(12).normal(size=w.shape)
    module = WeightStandardization(eps=0.1)

    def loss(a):
        return float((module(torch.from_numpy(a)) * torch.from_numpy(g)).sum())

    wt = torch.from_numpy(w).requires_grad_()
    (module(wt) * torch.from_numpy(g)).sum().backward()
    numeric = central_difference(loss, w, h=1e-7)
    assert rel_err(wt.grad.numpy(), numeric) <= 1e-6


@pytest.mark.parametrize(
    ("make_input", "error", "message"),
    [
        (
            lambda: torch.ones(2, 3, 5, 5, dtype=torch.int64),
            TypeError,
            "floating dtype",
        ),
        (
            lambda: torch.full((2, 3, 5, 5), float("nan")),
            ValueError,
            "non-finite",
        ),
        (
            lambda: torch.ones(2, 4, 5, 5),
            ValueError,
            r"expected an input of shape \(N, 3, H, W\)",
        ),
        (lambda: np.ones((2, 3, 5, 5)), TypeError, "torch.Tensor"),
    ],
    ids=["int", "nan", "channels", "ndarray"],
)
def test_ws_conv_refuses_bad_input_with_a_named_error(
    make_input, error, message
):
    """WSConv2d checks its input as the NumPy functions do, instead of failing inside torch."""
    conv = WSConv2d(3, 2, 3)
    with pytest.raises(error, match=message):
        conv(make_input())


def test_ws_with_eps_zero_refuses_a_channel_of_equal_weights_instead_of_returning_nan():
    """eps = 0 and sigma = 0 would be 0/0: the parametrization raises, as
    weight_standardization_forward does."""
    w = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 2.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="constant weights"):
        WeightStandardization(eps=0.0)(w)
    conv = WSConv2d(1, 2, (1, 3), ws_eps=0.0, bias=False)
    with torch.no_grad():
        conv.weight.copy_(w.float().reshape(2, 1, 1, 3))
    with pytest.raises(ValueError, match="constant weights"):
        conv(torch.ones(1, 1, 1, 3))


def test_ws_refuses_non_finite_weights():
    """A nan in the weight is a named ValueError, not a silently nan standardized weight."""
    with pytest.raises(ValueError, match="weight contains non-finite"):
        WeightStandardization()(torch.tensor([[1.0, float("nan")]]))


@pytest.mark.parametrize("module", [ws, tl])
def test_every_public_function_has_a_running_example(module):
    """Each public function and layer of bnnotes.weight_standardization and
    bnnotes.torch_layers has an executed example."""
    for name in module.__all__:
        obj = getattr(module, name)
        if not callable(obj):
            continue
        doc = inspect.getdoc(obj) or ""
        if (
            inspect.isclass(obj)
            and "Attributes" in doc
            and not hasattr(obj, "forward")
        ):
            continue  # result containers document their attributes
        assert (
            "Examples\n--------\n" in doc
            and ">>>" in doc.split("Examples\n--------\n")[1]
        ), name
