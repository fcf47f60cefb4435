"""Regression tests for pitfalls found in other normalization tutorials
and libraries (anchors §9)."""

import inspect

import numpy as np
import pytest
import torch
from helpers import RTOL64, rel_err, t

import bnnotes.batchnorm as bn
from bnnotes.batchnorm import BatchNorm


def test_mode_is_chosen_by_training_flag_not_by_gradient_mode():
    """eval() uses running statistics even under torch.enable_grad (d2l chose the
    mode from is_grad_enabled)."""
    rng = np.random.default_rng(0)
    ours, ref = BatchNorm(3), torch.nn.BatchNorm1d(3, dtype=torch.float64)
    x = rng.normal(3.0, 2.0, size=(8, 3))
    ours(x)
    ref(t(x))
    ours.eval()
    ref.eval()
    x2 = rng.normal(size=(8, 3))
    with torch.enable_grad():
        expected = ref(t(x2).requires_grad_()).detach().numpy()
    assert rel_err(ours(x2), expected) <= RTOL64
    assert (
        rel_err(ours.running_mean, ref.running_mean.numpy()) <= RTOL64
    )  # eval did not update


def test_running_statistics_survive_a_state_dict_round_trip():
    """Running statistics are state, not loose attributes: state_dict/load_state_dict
    keep them (d2l-zh PR 1265)."""
    a = BatchNorm(2)
    a(np.random.default_rng(1).normal(5.0, 3.0, size=(6, 2)))
    b = BatchNorm(2)
    b.load_state_dict(a.state_dict())
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(getattr(b, key), value)


def test_state_dict_uses_torch_keys_and_loads_a_torch_state():
    """The keys are torch's, so a torch BatchNorm's state loads and gives the same eval output."""
    ref = torch.nn.BatchNorm1d(2, dtype=torch.float64)
    ref(torch.randn(6, 2, dtype=torch.float64) * 3 + 1)
    ours = BatchNorm(2)
    ours.load_state_dict({
        k: v.detach().numpy() for k, v in ref.state_dict().items()
    })
    ref.eval()
    ours.eval()
    x = np.random.default_rng(2).normal(size=(4, 2))
    assert rel_err(ours(x), ref(t(x)).detach().numpy()) <= RTOL64


def test_running_statistics_do_not_alias_the_input():
    """The running averages hold no reference to the batch (labml/d2l kept
    the autograd history of x)."""
    x = np.random.default_rng(3).normal(size=(5, 2))
    layer = BatchNorm(2, momentum=1.0)
    layer(x)
    saved = layer.running_mean.copy()
    assert not np.shares_memory(layer.running_mean, x)
    x[:] = 1e6
    np.testing.assert_array_equal(layer.running_mean, saved)


def test_running_variance_is_unbiased():
    """After one step with momentum 1, running_var is x.var(ddof=1), not the biased variance
    (d2l, labml, ARENA #415)."""
    x = np.random.default_rng(4).normal(size=(4, 3, 2, 2))
    layer = BatchNorm(3, momentum=1.0)
    layer(x)
    np.testing.assert_allclose(
        layer.running_var, x.var(axis=(0, 2, 3), ddof=1), rtol=1e-14
    )
    assert not np.allclose(layer.running_var, x.var(axis=(0, 2, 3), ddof=0))


@pytest.mark.parametrize("old_weight_momentum", [0.9, 0.99])
def test_momentum_that_weights_the_old_value_maps_to_one_minus_momentum(
    old_weight_momentum,
):
    """Keras/Flax/MindSpore momentum rho (weight of the old value) equals PyTorch
    momentum 1 - rho (d2l PR 2213)."""
    rng = np.random.default_rng(5)
    layer = BatchNorm(2, momentum=1 - old_weight_momentum)
    keras_mean = np.zeros(2)
    for _ in range(4):
        x = rng.normal(2.0, 1.0, size=(8, 2))
        layer(x)
        keras_mean = old_weight_momentum * keras_mean + (
            1 - old_weight_momentum
        ) * x.mean(axis=0)
    np.testing.assert_allclose(layer.running_mean, keras_mean, rtol=1e-13)


def test_one_pass_variance_is_never_used():
    """float32 x + 1e4: the variance keeps 5 digits where E[x^2] - E[x]^2 keeps none
    (labml BN/LN/GN, objax #182)."""
    x = (np.random.default_rng(6).normal(size=(512, 4)) + 1e4).astype(
        np.float32
    )
    _, cache = bn.batch_norm_forward(x, None, None)
    exact = x.astype(np.float64).var(axis=0)
    assert np.max(np.abs(cache.var / exact - 1)) < 1e-5


def test_eps_default_is_single_sourced_and_equals_torch():
    """Every eps default in bnnotes.batchnorm is DEFAULT_EPS, which equals torch's default
    (d2l mixed 1e-12 and 1e-5)."""
    defaults = [
        inspect.signature(obj).parameters["eps"].default
        for name in bn.__all__
        if (inspect.isfunction(obj := getattr(bn, name)) or obj is BatchNorm)
        and "eps" in inspect.signature(obj).parameters
    ]
    assert (
        len(defaults) == 4
    )  # BatchNorm, batch_norm_forward, batch_norm_inference, fold_batch_norm
    assert set(defaults) == {bn.DEFAULT_EPS} == {torch.nn.BatchNorm1d(1).eps}


def test_every_public_function_has_a_running_example():
    """Each public name has an Examples section, so its documentation is executed (stale docstrings
    in torch's SyncBatchNorm)."""
    for name in bn.__all__:
        doc = inspect.getdoc(getattr(bn, name)) or ""
        if name == "DEFAULT_EPS":
            continue
        if name == "BatchNormCache":
            assert "Attributes" in doc
            continue
        assert "Examples\n--------\n>>>" in doc, name
