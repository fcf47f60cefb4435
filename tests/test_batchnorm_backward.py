"""Backward pass: both forms against torch autograd and against central finite differences."""

import numpy as np
import pytest
import torch.nn.functional as F
from helpers import RTOL64, central_difference, rel_err, t

from bnnotes.batchnorm import batch_norm_backward, batch_norm_forward

SHAPES = [(6, 3), (4, 2, 5), (3, 2, 4, 3), (2, 2, 2, 3, 2)]


def _torch_grads(x, gamma, beta, dy, eps):
    xt = t(x).requires_grad_()
    gt = t(gamma).requires_grad_()
    bt = t(beta).requires_grad_()
    F.batch_norm(xt, None, None, gt, bt, training=True, eps=eps).backward(
        t(dy)
    )
    return xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy()


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("form", ["compact", "paper"])
def test_backward_matches_torch_autograd(shape, form):
    """dx, dgamma, dbeta equal torch autograd through F.batch_norm to 1e-10 relative."""
    rng = np.random.default_rng(10)
    c = shape[1]
    x, dy = rng.normal(1.0, 2.0, size=shape), rng.normal(size=shape)
    gamma, beta = rng.normal(size=c), rng.normal(size=c)
    _, cache = batch_norm_forward(x, gamma, beta, eps=1e-2)
    ours = batch_norm_backward(dy, cache, form=form)
    ref = _torch_grads(x, gamma, beta, dy, eps=1e-2)
    for a, b in zip(ours, ref, strict=True):
        assert rel_err(a, b) <= RTOL64


@pytest.mark.parametrize("eps", [1e-5, 1e-1, 10.0])
def test_paper_and_compact_forms_agree(eps):
    """The paper's chain-rule form and the compact form agree for any eps (not only eps -> 0)."""
    rng = np.random.default_rng(11)
    x, dy = rng.normal(size=(9, 4, 3)), rng.normal(size=(9, 4, 3))
    _, cache = batch_norm_forward(x, rng.normal(size=4), None, eps=eps)
    dx_c, dg_c, db_c = batch_norm_backward(dy, cache, form="compact")
    dx_p, dg_p, db_p = batch_norm_backward(dy, cache, form="paper")
    assert rel_err(dx_p, dx_c) <= 1e-12
    np.testing.assert_array_equal(dg_p, dg_c)
    np.testing.assert_array_equal(db_p, db_c)


def test_backward_matches_central_finite_differences():
    """Every entry of dx, dgamma, dbeta matches a central difference of
    <dy, y> (h = 1e-6, rel 1e-7)."""
    rng = np.random.default_rng(12)
    x, dy = rng.normal(size=(5, 2, 3)), rng.normal(size=(5, 2, 3))
    gamma, beta = rng.normal(size=2), rng.normal(size=2)
    _, cache = batch_norm_forward(x, gamma, beta)
    dx, dgamma, dbeta = batch_norm_backward(dy, cache)

    def loss(x_, g_, b_):
        return float(np.sum(dy * batch_norm_forward(x_, g_, b_)[0]))

    def numeric(arr, f):
        return central_difference(f, arr)

    assert rel_err(dx, numeric(x, lambda v: loss(v, gamma, beta))) <= 1e-7
    assert rel_err(dgamma, numeric(gamma, lambda v: loss(x, v, beta))) <= 1e-7
    assert rel_err(dbeta, numeric(beta, lambda v: loss(x, gamma, v))) <= 1e-7


def test_mean_term_of_dmu_vanishes():
    """The variance term in the paper's dl/dmu is exactly zero up to rounding: sum(x - mu) = 0."""
    x = np.random.default_rng(13).normal(5.0, 1.0, size=(50, 3))
    centered = x - x.mean(axis=0)
    assert np.max(np.abs(centered.sum(axis=0))) <= 1e-12


def test_input_gradient_sums_to_zero_and_is_orthogonal_to_x_hat():
    """Per channel, sum_i dx_i = 0 and sum_i dx_i * x_hat_i = 0: BN's output
    ignores shifts and scales of x."""
    rng = np.random.default_rng(14)
    x, dy = rng.normal(size=(8, 3, 2)), rng.normal(size=(8, 3, 2))
    _, cache = batch_norm_forward(
        x, rng.normal(size=3), rng.normal(size=3), eps=1e-12
    )
    dx, _, _ = batch_norm_backward(dy, cache)
    np.testing.assert_allclose(dx.sum(axis=(0, 2)), 0.0, atol=1e-12)
    np.testing.assert_allclose(
        (dx * cache.x_hat).sum(axis=(0, 2)), 0.0, atol=1e-10
    )


@pytest.mark.parametrize(
    ("gamma", "beta"), [(None, None), (None, 0.5), (2.0, None), (2.0, 0.5)]
)
def test_changing_y_in_place_leaves_the_backward_pass_unchanged(gamma, beta):
    """y is a fresh array (also without gamma and beta): writing into it does
    not alter the cache or dx."""
    rng = np.random.default_rng(12)
    x, dy = rng.normal(size=(6, 3, 2)), rng.normal(size=(6, 3, 2))
    gamma = None if gamma is None else np.full(3, gamma)
    beta = None if beta is None else np.full(3, beta)
    y, cache = batch_norm_forward(x, gamma, beta)
    expected = [a.copy() for a in batch_norm_backward(dy, cache)]
    y *= 5.0
    y += 1.0
    for a, b in zip(batch_norm_backward(dy, cache), expected, strict=True):
        np.testing.assert_array_equal(a, b)
