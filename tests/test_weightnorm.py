"""Weight normalization against torch's weight_norm parametrization, its gradient geometry,
initialization and mean-only BN."""

import copy
import inspect

import numpy as np
import pytest
import torch
from helpers import RTOL64, central_difference, rel_err, t
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.parametrizations import weight_norm

import bnnotes.weightnorm as wn
from bnnotes.torch_layers import MeanOnlyBatchNorm, weight_norm_data_init_
from bnnotes.weightnorm import (
    data_dependent_init,
    mean_only_batch_norm_backward,
    mean_only_batch_norm_forward,
    norm_growth,
    projection_matrix,
    weight_norm_backward,
    weight_norm_forward,
)


def _torch_layer(kind, dim):
    torch.manual_seed(0)
    layer = (
        torch.nn.Linear(5, 3) if kind == "linear" else torch.nn.Conv2d(2, 4, 3)
    )
    return weight_norm(layer.double(), dim=dim)


def _g_for_numpy(g_torch, dim):
    """torch stores g with singleton axes; bnnotes takes shape (v.shape[dim],) or ()."""
    return (
        g_torch.detach().numpy().reshape(-1)
        if dim is not None
        else g_torch.detach().numpy().reshape(())
    )


@pytest.mark.parametrize(
    ("kind", "dim"),
    [
        ("linear", 0),
        ("conv", 0),
        ("conv", 1),
        ("linear", None),
        ("conv", None),
    ],
)
def test_forward_and_backward_match_torch_weight_norm_parametrization(
    kind, dim
):
    """w, dL/dv and dL/dg equal torch.nn.utils.parametrizations.weight_norm
    and its autograd to 1e-10."""
    layer = _torch_layer(kind, dim)
    p = layer.parametrizations.weight
    with torch.no_grad():
        p.original0.mul_(
            torch.linspace(
                0.5, 2.0, p.original0.numel(), dtype=torch.float64
            ).reshape(p.original0.shape)
        )
    g, v = _g_for_numpy(p.original0, dim), p.original1.detach().numpy()
    w, cache = weight_norm_forward(v, g, dim=dim)
    assert rel_err(w, layer.weight.detach().numpy()) <= RTOL64
    dw = np.random.default_rng(1).normal(size=v.shape)
    (layer.weight * t(dw)).sum().backward()
    dv, dg = weight_norm_backward(dw, cache)
    assert rel_err(dv, p.original1.grad.numpy()) <= RTOL64
    assert rel_err(dg, _g_for_numpy(p.original0.grad, dim)) <= RTOL64


def test_dim_minus_one_is_the_last_axis_here_and_the_whole_tensor_in_torch():
    """Pinned difference: dim=-1 gives one g per slice of the last axis here; torch's
    weight_norm reads it as dim=None."""
    rng = np.random.default_rng(3)
    v = rng.normal(size=(3, 4))
    g_last = np.array([0.5, 1.0, 2.0, 3.0])
    w_last, cache = weight_norm_forward(v, g_last, dim=-1)
    assert cache.dim == 1
    np.testing.assert_allclose(
        np.linalg.norm(w_last, axis=0), g_last, rtol=1e-14
    )
    layer = weight_norm(torch.nn.Linear(4, 3, dtype=torch.float64), dim=-1)
    params = layer.parametrizations.weight
    with torch.no_grad():
        params.original1.copy_(t(v))
        params.original0.fill_(2.0)
    assert tuple(params.original0.shape) == ()
    w_whole, _ = weight_norm_forward(v, np.array(2.0), dim=None)
    assert rel_err(layer.weight.detach().numpy(), w_whole) <= RTOL64


def test_backward_matches_central_finite_differences():
    """dv and dg match central differences of <dw, w(v, g)> (h = 1e-6, rel 1e-7)."""
    rng = np.random.default_rng(2)
    v, g, dw = (
        rng.normal(size=(3, 4)),
        rng.normal(size=3),
        rng.normal(size=(3, 4)),
    )
    dv, dg = weight_norm_backward(dw, weight_norm_forward(v, g)[1])

    def loss(v_, g_):
        return float(np.sum(dw * weight_norm_forward(v_, g_)[0]))

    assert rel_err(dv, central_difference(lambda a: loss(a, g), v)) <= 1e-7
    assert rel_err(dg, central_difference(lambda a: loss(v, a), g)) <= 1e-7


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 6))
def test_v_gradient_is_the_projected_scaled_weight_gradient(seed, out, fan_in):
    """Row by row, dL/dv = (g/||v||) M_w dL/dw with M_w = I - w w'/||w||^2,
    and dL/dg = dL/dw . v/||v||."""
    rng = np.random.default_rng(seed)
    v, g, dw = (
        rng.normal(size=(out, fan_in)),
        rng.normal(size=out),
        rng.normal(size=(out, fan_in)),
    )
    w, cache = weight_norm_forward(v, g)
    dv, dg = weight_norm_backward(dw, cache)
    for k in range(out):
        norm = np.linalg.norm(v[k])
        np.testing.assert_allclose(
            dv[k],
            g[k] / norm * projection_matrix(w[k]) @ dw[k],
            rtol=1e-10,
            atol=1e-12,
        )
        np.testing.assert_allclose(
            dg[k], dw[k] @ v[k] / norm, rtol=1e-10, atol=1e-12
        )


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(1e-3, 1e3))
def test_v_gradient_is_orthogonal_to_v_and_scales_as_one_over_the_length_of_v(
    seed, a
):
    """<dL/dv, v> = 0 per slice; w(a v) = w(v) and dL/d(a v) = dL/dv / a for a > 0."""
    rng = np.random.default_rng(seed)
    v, g, dw = (
        rng.normal(size=(3, 2, 2)),
        rng.normal(size=3),
        rng.normal(size=(3, 2, 2)),
    )
    w, cache = weight_norm_forward(v, g)
    dv, _ = weight_norm_backward(dw, cache)
    cos = (dv * v).sum(axis=(1, 2)) / (
        np.linalg.norm(dv.reshape(3, -1), axis=1)
        * np.linalg.norm(v.reshape(3, -1), axis=1)
    )
    assert np.max(np.abs(cos)) <= 1e-12
    w_a, cache_a = weight_norm_forward(a * v, g)
    assert rel_err(w_a, w) <= 1e-13
    assert rel_err(weight_norm_backward(dw, cache_a)[0], dv / a) <= 1e-12


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 100.0))
def test_a_gradient_step_lengthens_v_by_sqrt_one_plus_c_squared(seed, lr):
    """v' = v - lr dL/dv has ||v'|| = sqrt(1 + c^2) ||v|| >= ||v||, c =
    lr ||dL/dv|| / ||v|| (norm growth)."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(1, 7))
    dv, _ = weight_norm_backward(
        rng.normal(size=(1, 7)), weight_norm_forward(v, np.array([1.5]))[1]
    )
    step = norm_growth(v, dv, lr)
    assert abs(step.cosine) <= 1e-12
    assert step.norm_after >= step.norm_before * (1 - 1e-15)
    assert abs(step.norm_after / step.predicted - 1) <= 1e-12


def test_norm_growth_prediction_fails_for_a_gradient_not_orthogonal_to_v():
    """Without weight normalization the gradient has a radial part and ||v'|| differs
    from sqrt(1 + c^2) ||v||."""
    v = np.array([1.0, 0.0])
    step = norm_growth(v, np.array([1.0, 1.0]), lr=0.5)
    assert step.cosine > 0.7
    assert abs(step.norm_after / step.predicted - 1) > 0.1


@pytest.mark.parametrize(
    ("grad", "cosine"),
    [
        ([2.0, 0.0, 0.0], 1.0),
        ([-3.0, 0.0, 0.0], -1.0),
        ([1.0, 1.0, 0.0], 0.5**0.5),
    ],
    ids=["along-v", "against-v", "45-degrees"],
)
def test_norm_growth_cosine_has_the_sign_of_the_angle_between_v_and_the_gradient(
    grad, cosine
):
    """cos(v, grad_v): +1 along v, -1 against it, cos 45 degrees in between, for v = (1, 0, 0)."""
    step = norm_growth(np.array([1.0, 0.0, 0.0]), np.array(grad), lr=0.1)
    assert step.cosine == pytest.approx(cosine, rel=1e-15)


def test_norm_growth_shrinks_v_when_the_gradient_points_along_it():
    """A step against a gradient along v shortens v: cosine > 0 goes with
    norm_after < norm_before."""
    v = np.array([3.0, 4.0])
    step = norm_growth(v, 0.5 * v, lr=0.2)
    assert step.cosine > 0 and step.norm_after == pytest.approx(
        0.9 * 5.0, rel=1e-15
    )


def test_projection_matrix_is_an_orthogonal_projection_that_kills_w():
    """M_w is symmetric, idempotent, has M_w w = 0 and rank d - 1."""
    w = np.random.default_rng(3).normal(size=5)
    m = projection_matrix(w)
    np.testing.assert_allclose(m, m.T, atol=1e-15)
    np.testing.assert_allclose(m @ m, m, atol=1e-14)
    np.testing.assert_allclose(m @ w, 0.0, atol=1e-14)
    assert np.linalg.matrix_rank(m) == 4


def test_data_dependent_init_gives_zero_mean_unit_variance_pre_activations():
    """After g <- g/sigma[t], b <- -mu[t]/sigma[t], each unit has mean 0 and population std 1 on the
    init batch (with g != 1 too)."""
    rng = np.random.default_rng(4)
    x, v = (
        rng.normal(1.0, 4.0, size=(32, 6)),
        rng.normal(0.0, 0.05, size=(3, 6)),
    )
    g0 = np.array([1.0, 0.3, 2.0])
    w, _ = weight_norm_forward(v, g0)
    g, b = data_dependent_init(x @ w.T, g0)
    out = x @ weight_norm_forward(v, g)[0].T + b
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-13)
    np.testing.assert_allclose(out.std(axis=0), 1.0, rtol=1e-13)


def test_torch_data_dependent_init_matches_numpy_on_a_convolution():
    """weight_norm_data_init_ on a weight-normalized Conv2d sets the same g and
    b as data_dependent_init."""
    torch.manual_seed(1)
    layer = weight_norm(torch.nn.Conv2d(2, 3, 3, dtype=torch.float64))
    x = 2.0 * torch.randn(8, 2, 6, 6, dtype=torch.float64) + 1.0
    with torch.no_grad():
        t_out = (layer(x) - layer.bias.reshape(1, -1, 1, 1)).numpy()
    g_expected, b_expected = data_dependent_init(
        t_out,
        layer.parametrizations.weight.original0.detach().numpy().reshape(-1),
    )
    weight_norm_data_init_(layer, x)
    assert (
        rel_err(
            layer.parametrizations.weight.original0
            .detach()
            .numpy()
            .reshape(-1),
            g_expected,
        )
        <= RTOL64
    )
    assert rel_err(layer.bias.detach().numpy(), b_expected) <= RTOL64
    out = layer(x).detach().numpy()
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)


def test_torch_data_dependent_init_refuses_unsuitable_layers_without_changing_them():
    """A layer without weight_norm, with dim=None, without bias, or a constant unit
    raises and keeps its state."""
    x = torch.randn(4, 3, dtype=torch.float64)
    plain = torch.nn.Linear(3, 2, dtype=torch.float64)
    whole = weight_norm(torch.nn.Linear(3, 2, dtype=torch.float64), dim=None)
    no_bias = weight_norm(
        torch.nn.Linear(3, 2, bias=False, dtype=torch.float64)
    )
    for layer, message in (
        (plain, "parametrized"),
        (whole, "dim=0"),
        (no_bias, "needs a layer with a bias"),
    ):
        before = copy.deepcopy(layer.state_dict())
        with pytest.raises(ValueError, match=message):
            weight_norm_data_init_(layer, x)
        for key, value in layer.state_dict().items():
            assert torch.equal(value, before[key])
    layer = weight_norm(torch.nn.Linear(3, 2, dtype=torch.float64))
    before = copy.deepcopy(layer.state_dict())
    with pytest.raises(ValueError, match="constant"):
        weight_norm_data_init_(layer, torch.ones(4, 3, dtype=torch.float64))
    for key, value in layer.state_dict().items():
        assert torch.equal(value, before[key])


@pytest.mark.parametrize(
    ("x", "error", "message"),
    [
        (torch.full((4, 3), float("nan")), ValueError, "non-finite"),
        (torch.ones(4, 3, dtype=torch.int64), TypeError, "floating dtype"),
        (torch.ones(4, 5), ValueError, "expected 3 channels"),
    ],
    ids=["nan", "int", "features"],
)
def test_torch_data_dependent_init_refuses_a_bad_batch_without_changing_the_layer(
    x, error, message
):
    """A nan, integer or wrongly shaped batch is a named error before any parameter changes."""
    layer = weight_norm(torch.nn.Linear(3, 2, dtype=torch.float64))
    before = copy.deepcopy(layer.state_dict())
    with pytest.raises(error, match=message):
        weight_norm_data_init_(layer, x)
    for key, value in layer.state_dict().items():
        assert torch.equal(value, before[key])


def test_mean_only_batch_norm_module_refuses_non_finite_and_integer_input():
    """nan input would flow into running_mean and int input into torch's internals: both are
    named errors, state kept."""
    layer = MeanOnlyBatchNorm(2)
    layer(torch.randn(5, 2))
    saved = layer.running_mean.clone()
    with pytest.raises(ValueError, match="non-finite"):
        layer(torch.tensor([[1.0, float("inf")], [0.0, 1.0]]))
    with pytest.raises(TypeError, match="floating dtype"):
        layer(torch.ones(3, 2, dtype=torch.int64))
    assert torch.equal(layer.running_mean, saved)


def test_mean_only_batch_norm_matches_autograd_and_finite_differences():
    """y = x - mean(x) + beta; dx = dy - mean(dy) and dbeta = sum(dy), against torch
    autograd and central differences."""
    rng = np.random.default_rng(5)
    x, dy, beta = (
        rng.normal(3.0, 2.0, size=(6, 3, 4)),
        rng.normal(size=(6, 3, 4)),
        rng.normal(size=3),
    )
    y, cache = mean_only_batch_norm_forward(x, beta)
    dx, dbeta = mean_only_batch_norm_backward(dy, cache)
    xt, bt = t(x).requires_grad_(), t(beta).requires_grad_()
    ref = xt - xt.mean(dim=(0, 2), keepdim=True) + bt.reshape(1, -1, 1)
    ref.backward(t(dy))
    assert rel_err(y, ref.detach().numpy()) <= RTOL64
    assert rel_err(dx, xt.grad.numpy()) <= RTOL64
    assert rel_err(dbeta, bt.grad.numpy()) <= RTOL64
    numeric = central_difference(
        lambda a: float(np.sum(dy * mean_only_batch_norm_forward(a, beta)[0])),
        x,
    )
    assert rel_err(dx, numeric) <= 1e-7


def test_mean_only_batch_norm_module_follows_the_numpy_reference_and_the_running_mean_rule():
    """MeanOnlyBatchNorm subtracts the batch mean in training, updates 0.9 old + 0.1 new, and
    subtracts running_mean in eval."""
    rng = np.random.default_rng(6)
    layer = MeanOnlyBatchNorm(3).double()
    with torch.no_grad():
        layer.bias.copy_(t(rng.normal(size=3)))
    x = rng.normal(5.0, 2.0, size=(8, 3, 2, 2))
    y = layer(t(x)).detach().numpy()
    y_ref, cache = mean_only_batch_norm_forward(x, layer.bias.detach().numpy())
    assert rel_err(y, y_ref) <= RTOL64
    np.testing.assert_allclose(
        layer.running_mean.numpy(), 0.1 * cache.mean, rtol=1e-14
    )
    layer.eval()
    x2 = rng.normal(size=(1, 3, 2, 2))
    expected = (
        x2
        - layer.running_mean.numpy()[None, :, None, None]
        + layer.bias.detach().numpy()[None, :, None, None]
    )
    assert rel_err(layer(t(x2)).detach().numpy(), expected) <= RTOL64


def test_mean_only_batch_norm_module_keeps_its_state_on_bad_input():
    """A wrong channel count or a single value per channel raises and
    leaves running_mean unchanged."""
    layer = MeanOnlyBatchNorm(3)
    layer(torch.randn(4, 3))
    saved = layer.running_mean.clone()
    for bad in (torch.randn(4, 2), torch.randn(1, 3), torch.randn(3)):
        with pytest.raises(ValueError):
            layer(bad)
        assert torch.equal(layer.running_mean, saved)
    with pytest.raises(ValueError, match="momentum"):
        MeanOnlyBatchNorm(3, momentum=1.5)
    with pytest.raises(ValueError, match="num_features"):
        MeanOnlyBatchNorm(0)


@pytest.mark.parametrize(
    ("v", "g", "dim", "error", "message"),
    [
        (np.zeros((2, 3)), np.ones(2), 0, ValueError, "slice of zeros"),
        (
            np.ones((2, 3)),
            np.ones(3),
            0,
            ValueError,
            r"g must have shape \(2,\)",
        ),
        (
            np.ones((2, 3)),
            np.ones((2, 1)),
            0,
            ValueError,
            r"g must have shape \(2,\)",
        ),
        (np.ones((2, 3)), np.ones(2), 2, ValueError, "dim must be"),
        (np.ones((2, 3)), np.ones(2), True, ValueError, "dim must be"),
        (
            np.ones((2, 3), dtype=np.int64),
            np.ones(2),
            0,
            TypeError,
            "v must have a floating dtype",
        ),
        (
            np.ones((2, 3)),
            np.array([1.0, np.nan]),
            0,
            ValueError,
            "g contains non-finite",
        ),
        (
            np.array(1.0),
            np.array(1.0),
            None,
            ValueError,
            "at least 1 dimension",
        ),
    ],
)
def test_bad_weight_norm_input_raises_a_named_error_and_leaves_inputs_unchanged(
    v, g, dim, error, message
):
    """Bad v, g or dim raise an error naming the problem; the arrays are not modified."""
    v_before, g_before = v.copy(), g.copy()
    with pytest.raises(error, match=message):
        weight_norm_forward(v, g, dim=dim)
    np.testing.assert_array_equal(v, v_before)
    np.testing.assert_array_equal(g, g_before)


def test_bad_gradients_steps_and_batches_are_named():
    """A wrong dw shape, a negative lr, a zero v, a constant unit and a
    one-value batch give clear errors."""
    _, cache = weight_norm_forward(np.ones((2, 3)), np.ones(2))
    with pytest.raises(
        ValueError, match="dw must have the forward output's shape"
    ):
        weight_norm_backward(np.ones((3, 2)), cache)
    with pytest.raises(ValueError, match="lr must be"):
        norm_growth(np.ones(3), np.ones(3), -0.1)
    with pytest.raises(ValueError, match="v must be non-zero"):
        norm_growth(np.zeros(3), np.ones(3), 0.1)
    with pytest.raises(ValueError, match="w must be non-zero"):
        projection_matrix(np.zeros(3))
    with pytest.raises(ValueError, match="constant over the batch"):
        data_dependent_init(np.ones((4, 2)))
    with pytest.raises(ValueError, match="more than 1 value per unit"):
        mean_only_batch_norm_forward(np.ones((1, 2)))


def test_the_cache_does_not_alias_the_parameters():
    """Changing v or g after the forward pass does not change what the backward pass uses."""
    v, g = np.random.default_rng(7).normal(size=(2, 3)), np.array([1.0, 2.0])
    dw = np.ones((2, 3))
    _, cache = weight_norm_forward(v, g)
    expected = weight_norm_backward(dw, cache)
    v[:] = 5.0
    g[:] = -1.0
    for a, b in zip(weight_norm_backward(dw, cache), expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_every_public_function_has_a_running_example():
    """Each public function of bnnotes.weightnorm has an executed Examples section; each result
    class documents its attributes."""
    for name in wn.__all__:
        obj = getattr(wn, name)
        doc = inspect.getdoc(obj) or ""
        if inspect.isclass(obj):
            assert "Attributes" in doc, name
        else:
            assert "Examples\n--------\n>>>" in doc, name
