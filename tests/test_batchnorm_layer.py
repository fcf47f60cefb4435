"""The BatchNorm layer against torch.nn.BatchNorm1d/2d/3d in float64: outputs,
running statistics, eval."""

import numpy as np
import pytest
import torch
from helpers import RTOL64, rel_err, t, torch_module_for

from bnnotes.batchnorm import BatchNorm

SHAPES = [(8, 3), (6, 3, 5), (4, 3, 4, 5), (3, 3, 2, 3, 4)]


def _pair(shape, **kwargs):
    ours = BatchNorm(shape[1], **kwargs)
    ref = torch_module_for(len(shape))(shape[1], dtype=torch.float64, **kwargs)
    if ours.affine:
        rng = np.random.default_rng(99)
        ours.weight, ours.bias = (
            rng.normal(size=shape[1]),
            rng.normal(size=shape[1]),
        )
        with torch.no_grad():
            ref.weight.copy_(t(ours.weight))
            ref.bias.copy_(t(ours.bias))
    return ours, ref


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("momentum", [0.1, 1.0, None])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("track", [True, False])
def test_layer_matches_torch_over_training_then_eval(
    shape, momentum, affine, track
):
    """Three training steps then eval: outputs, running stats and
    num_batches_tracked equal torch's."""
    ours, ref = _pair(
        shape, momentum=momentum, affine=affine, track_running_stats=track
    )
    rng = np.random.default_rng(7)
    for step in range(3):
        x = rng.normal(step, 1.0 + step, size=shape)
        assert rel_err(ours(x), ref(t(x)).detach().numpy()) <= RTOL64
    if track:
        assert rel_err(ours.running_mean, ref.running_mean.numpy()) <= RTOL64
        assert rel_err(ours.running_var, ref.running_var.numpy()) <= RTOL64
        assert ours.num_batches_tracked == int(ref.num_batches_tracked) == 3
    else:
        assert ours.running_mean is None and ref.running_mean is None
    ours.eval()
    ref.eval()
    x = rng.normal(0.5, 2.0, size=shape)
    assert rel_err(ours(x), ref(t(x)).detach().numpy()) <= RTOL64


@pytest.mark.parametrize("track", [True, False])
def test_layer_backward_matches_torch_in_both_modes(track):
    """layer.backward gives torch's input, weight and bias gradients in
    training and in eval mode."""
    shape = (5, 3, 4)
    rng = np.random.default_rng(8)
    for training in (True, False):
        ours, ref = _pair(shape, track_running_stats=track)
        warm = rng.normal(size=shape)
        ours(warm)
        ref(t(warm))
        ours.train(training)
        ref.train(training)
        x, dy = rng.normal(size=shape), rng.normal(size=shape)
        xt = t(x).requires_grad_()
        ref(xt).backward(t(dy))
        ours(x)
        dx = ours.backward(dy)
        assert rel_err(dx, xt.grad.numpy()) <= RTOL64
        assert rel_err(ours.weight_grad, ref.weight.grad.numpy()) <= RTOL64
        assert rel_err(ours.bias_grad, ref.bias.grad.numpy()) <= RTOL64


def test_eval_mode_without_tracking_uses_batch_statistics():
    """With track_running_stats=False, eval mode normalizes with the batch's
    own statistics, as in torch."""
    layer = BatchNorm(2, track_running_stats=False, affine=False).eval()
    x = np.random.default_rng(3).normal(10.0, 5.0, size=(50, 2))
    y = layer(x)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-12)


def test_eval_accepts_a_single_example():
    """With running statistics, evaluation mode works for a batch of one."""
    layer = BatchNorm(4).eval()
    assert layer(np.ones((1, 4))).shape == (1, 4)


def test_momentum_none_is_cumulative_average():
    """momentum=None: running_mean is the plain average of the batch means seen so far."""
    layer = BatchNorm(2, momentum=None)
    rng = np.random.default_rng(4)
    batches = [rng.normal(i, 1.0, size=(10, 2)) for i in range(5)]
    for b in batches:
        layer(b)
    np.testing.assert_allclose(
        layer.running_mean,
        np.mean([b.mean(axis=0) for b in batches], axis=0),
        rtol=1e-13,
    )
    np.testing.assert_allclose(
        layer.running_var,
        np.mean([b.var(axis=0, ddof=1) for b in batches], axis=0),
        rtol=1e-13,
    )


def test_momentum_zero_freezes_running_statistics_but_counts_batches():
    """momentum=0 leaves the running statistics at their initial values while
    num_batches_tracked counts."""
    layer = BatchNorm(2, momentum=0.0)
    layer(np.random.default_rng(5).normal(size=(4, 2)))
    np.testing.assert_array_equal(layer.running_mean, [0.0, 0.0])
    np.testing.assert_array_equal(layer.running_var, [1.0, 1.0])
    assert layer.num_batches_tracked == 1


def test_train_and_eval_return_the_layer_and_set_training():
    """.train() and .eval() return the layer itself and set .training, like torch.nn.Module."""
    layer = BatchNorm(3)
    assert layer.training is True
    assert layer.eval() is layer and layer.training is False
    assert layer.train() is layer and layer.training is True
    assert layer.train(False).training is False


def test_defaults_match_torch():
    """eps, momentum, initial weight/bias and running statistics match torch's defaults."""
    ours, ref = BatchNorm(3), torch.nn.BatchNorm1d(3)
    assert ours.eps == ref.eps and ours.momentum == ref.momentum
    np.testing.assert_array_equal(ours.weight, ref.weight.detach().numpy())
    np.testing.assert_array_equal(ours.bias, ref.bias.detach().numpy())
    np.testing.assert_array_equal(ours.running_mean, ref.running_mean.numpy())
    np.testing.assert_array_equal(ours.running_var, ref.running_var.numpy())
    assert ours.num_batches_tracked == int(ref.num_batches_tracked)
