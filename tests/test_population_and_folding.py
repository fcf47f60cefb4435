"""Algorithm 2's population statistics, and folding BN into the preceding layer."""

import numpy as np
import pytest
import torch
from helpers import RTOL64, rel_err, t

from bnnotes.batchnorm import (
    BatchNorm,
    batch_norm_inference,
    fold_batch_norm,
    population_statistics,
)


def test_population_statistics_is_mean_of_means_and_corrected_mean_of_variances():
    """mean = E_B[mu_B] and var = m/(m-1) E_B[sigma_B^2], over batches of (N, C, H, W)."""
    rng = np.random.default_rng(0)
    batches = [rng.normal(2.0, 3.0, size=(4, 3, 2, 2)) for _ in range(7)]
    mean, var = population_statistics(iter(batches))
    m = 4 * 2 * 2
    mus = [b.mean(axis=(0, 2, 3)) for b in batches]
    sig = [b.var(axis=(0, 2, 3)) for b in batches]
    np.testing.assert_allclose(mean, np.mean(mus, axis=0), rtol=1e-13)
    np.testing.assert_allclose(
        var, m / (m - 1) * np.mean(sig, axis=0), rtol=1e-13
    )


def test_population_variance_is_unbiased():
    """Averaged over many batches of 2, the corrected estimate is close to the true variance and the
    uncorrected one is half of it."""
    rng = np.random.default_rng(1)
    batches = rng.normal(0.0, 2.0, size=(40000, 2, 1))
    _, var = population_statistics(np.split(batches, 20000))
    assert abs(var[0] - 4.0) / 4.0 < 0.03
    assert (
        abs(var[0] / 2 - 2.0) / 2.0 < 0.03
    )  # the biased mean of sigma_B^2 is (m-1)/m * 4 = 2


def test_single_batch_momentum_one_equals_population_statistics():
    """One batch: population_statistics equals the layer's running stats after a momentum-1 step."""
    x = np.random.default_rng(2).normal(size=(10, 4))
    layer = BatchNorm(4, momentum=1.0)
    layer(x)
    mean, var = population_statistics([x])
    np.testing.assert_allclose(layer.running_mean, mean, rtol=1e-14)
    np.testing.assert_allclose(layer.running_var, var, rtol=1e-14)


def _trained_bn(c, rng):
    bn = torch.nn.BatchNorm2d(c, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.normal_()
        bn.bias.normal_()
        bn.running_mean.copy_(t(rng.normal(size=c)))
        bn.running_var.copy_(t(rng.uniform(0.5, 2.0, size=c)))
    return bn.eval()


@pytest.mark.parametrize("with_bias", [True, False])
def test_folding_a_convolution_matches_torch_fuse_conv_bn_eval(with_bias):
    """fold_batch_norm on a conv weight equals torch's fuse_conv_bn_eval, and the
    fused conv equals conv -> BN."""
    torch.manual_seed(0)
    rng = np.random.default_rng(3)
    conv = torch.nn.Conv2d(2, 3, 3, bias=with_bias, dtype=torch.float64).eval()
    bn = _trained_bn(3, rng)
    fused = torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn)
    w, b = fold_batch_norm(
        conv.weight.detach().numpy(),
        None if conv.bias is None else conv.bias.detach().numpy(),
        bn.running_mean.numpy(),
        bn.running_var.numpy(),
        bn.weight.detach().numpy(),
        bn.bias.detach().numpy(),
        bn.eps,
    )
    assert rel_err(w, fused.weight.detach().numpy()) <= RTOL64
    assert rel_err(b, fused.bias.detach().numpy()) <= RTOL64
    u = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    unfused = bn(conv(u)).detach().numpy()
    folded = torch.nn.functional.conv2d(u, t(w), t(b)).numpy()
    assert rel_err(folded, unfused) <= RTOL64


def test_folding_a_linear_layer_matches_torch_fuse_linear_bn_eval():
    """fold_batch_norm on a (out, in) weight equals fuse_linear_bn_eval
    and the unfused eval output."""
    torch.manual_seed(1)
    rng = np.random.default_rng(4)
    lin = torch.nn.Linear(5, 4, dtype=torch.float64).eval()
    bn = torch.nn.BatchNorm1d(4, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.normal_()
        bn.bias.normal_()
        bn.running_mean.copy_(t(rng.normal(size=4)))
        bn.running_var.copy_(t(rng.uniform(0.5, 2.0, size=4)))
    bn.eval()
    fused = torch.nn.utils.fusion.fuse_linear_bn_eval(lin, bn)
    args = [
        p.detach().numpy()
        for p in (
            lin.weight,
            lin.bias,
            bn.running_mean,
            bn.running_var,
            bn.weight,
            bn.bias,
        )
    ]
    w, b = fold_batch_norm(*args, eps=bn.eps)
    assert rel_err(w, fused.weight.detach().numpy()) <= RTOL64
    assert rel_err(b, fused.bias.detach().numpy()) <= RTOL64
    u = rng.normal(size=(3, 5))
    y = batch_norm_inference(u @ args[0].T + args[1], *args[2:], eps=bn.eps)
    assert rel_err(u @ w.T + b, y) <= RTOL64


def test_folding_without_affine_uses_unit_scale_and_zero_shift():
    """gamma=None and beta=None fold as gamma = 1, beta = 0."""
    rng = np.random.default_rng(5)
    w, mean, var = (
        rng.normal(size=(2, 3)),
        rng.normal(size=2),
        rng.uniform(1, 2, size=2),
    )
    w1, b1 = fold_batch_norm(w, None, mean, var, None, None)
    w2, b2 = fold_batch_norm(
        w, np.zeros(2), mean, var, np.ones(2), np.zeros(2)
    )
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(b1, b2)
