"""Algorithm 1 forward pass against torch.nn.functional.batch_norm in float64."""

import numpy as np
import pytest
import torch.nn.functional as F
from helpers import RTOL64, rel_err, t

from bnnotes.batchnorm import batch_norm_forward

SHAPES = [(7, 3), (5, 4, 6), (4, 3, 5, 6), (2, 3, 3, 4, 5)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_forward_matches_torch(shape, affine):
    """y equals F.batch_norm(training=True) to 1e-10 relative, for (N, C) and (N, C, *spatial)."""
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=shape)
    c = shape[1]
    gamma, beta = (
        (rng.normal(size=c), rng.normal(size=c)) if affine else (None, None)
    )
    y, _ = batch_norm_forward(x, gamma, beta, eps=1e-3)
    ref = F.batch_norm(
        t(x), None, None, t(gamma), t(beta), training=True, eps=1e-3
    )
    assert rel_err(y, ref.numpy()) <= RTOL64


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_cache_statistics_are_biased_batch_statistics(shape):
    """The cache holds the per-channel mean and the biased (1/m) variance over all axes but 1."""
    x = np.random.default_rng(1).normal(size=shape)
    _, cache = batch_norm_forward(x, None, None)
    axes = (0, *range(2, len(shape)))
    assert cache.m == x.size // shape[1]
    np.testing.assert_allclose(cache.mean, x.mean(axis=axes), rtol=1e-13)
    np.testing.assert_allclose(cache.var, x.var(axis=axes, ddof=0), rtol=1e-12)


def test_output_keeps_input_dtype():
    """A float32 input gives a float32 output even with float64 gamma and beta."""
    x = np.random.default_rng(2).normal(size=(8, 3)).astype(np.float32)
    y, _ = batch_norm_forward(x, np.ones(3), np.zeros(3))
    assert y.dtype == np.float32


def test_identity_is_recoverable_with_gamma_sigma_beta_mu():
    """gamma = sqrt(var + eps), beta = mean reproduce the input exactly (the
    paper's identity argument)."""
    x = np.random.default_rng(3).normal(4.0, 2.0, size=(10, 5))
    mean, var = x.mean(axis=0), x.var(axis=0)
    y, _ = batch_norm_forward(x, np.sqrt(var + 1e-5), mean)
    assert rel_err(y, x) <= 1e-13


def test_forward_does_not_modify_input():
    """The input array is left untouched."""
    x = np.random.default_rng(4).normal(size=(6, 2, 3))
    before = x.copy()
    batch_norm_forward(x, np.ones(2), np.zeros(2))
    np.testing.assert_array_equal(x, before)


def test_batch_norm_2d_module_matches_reshape():
    """BN on (N, C, H, W) equals BN on the (N*H*W, C) reshape: statistics over m' = N*p*q values."""
    x = np.random.default_rng(5).normal(size=(3, 4, 5, 2))
    y4, _ = batch_norm_forward(x, None, None)
    flat = x.transpose(0, 2, 3, 1).reshape(-1, 4)
    y2, cache = batch_norm_forward(flat, None, None)
    assert cache.m == 3 * 5 * 2
    assert rel_err(y4, y2.reshape(3, 5, 2, 4).transpose(0, 3, 1, 2)) <= 1e-14
