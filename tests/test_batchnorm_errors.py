"""Bad input raises a clear error that names the problem, and a failed call changes no state."""

import numpy as np
import pytest
from helpers import assert_same_state, state_snapshot

from bnnotes.batchnorm import (
    BatchNorm,
    batch_norm_backward,
    batch_norm_forward,
    batch_norm_inference,
    fold_batch_norm,
    population_statistics,
)

BAD_INPUTS = [
    (np.ones(4), ValueError, "at least 2 dimensions"),
    (np.ones((4, 5)), ValueError, "expected 3 channels"),
    (np.ones((1, 3)), ValueError, "more than 1 value per channel"),
    (np.ones((1, 3, 1, 1)), ValueError, "more than 1 value per channel"),
    (
        np.array([[np.nan, 1.0, 2.0], [1.0, 2.0, 3.0]]),
        ValueError,
        "non-finite",
    ),
    (
        np.array([[np.inf, 1.0, 2.0], [1.0, 2.0, 3.0]]),
        ValueError,
        "non-finite",
    ),
    (np.ones((4, 3), dtype=np.int64), TypeError, "floating dtype"),
]


@pytest.mark.parametrize(
    ("x", "error", "message"),
    BAD_INPUTS,
    ids=lambda v: getattr(v, "__name__", None) or str(v)[:20],
)
def test_bad_training_input_raises_named_error_and_keeps_state(
    x, error, message
):
    """A rejected training batch raises the named error and leaves every attribute as it was."""
    layer = BatchNorm(3, momentum=0.3)
    layer(np.random.default_rng(0).normal(size=(5, 3)))
    snap = state_snapshot(layer)
    with pytest.raises(error, match=message):
        layer(x)
    assert_same_state(layer, snap)


def test_eps_must_be_positive():
    """eps <= 0 (or not finite) is rejected by the functions and the layer."""
    x = np.ones((2, 2))
    for eps in (0.0, -1e-5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="eps must be"):
            batch_norm_forward(x, None, None, eps=eps)
        with pytest.raises(ValueError, match="eps must be"):
            BatchNorm(2, eps=eps)


@pytest.mark.parametrize("momentum", [-0.1, 1.5, float("nan")])
def test_momentum_out_of_range_is_rejected(momentum):
    """momentum must be None or in [0, 1]."""
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm(2, momentum=momentum)


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_num_features_must_be_a_positive_integer(n):
    """num_features is a positive int."""
    with pytest.raises(ValueError, match="num_features"):
        BatchNorm(n)


def test_wrong_gamma_shape_names_gamma():
    """A gamma of the wrong length is named in the message."""
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\)"):
        batch_norm_forward(np.ones((4, 3)), np.ones(2), None)


def test_wrong_weight_assigned_to_layer_fails_without_state_change():
    """A layer whose weight was replaced by a wrong-length array fails
    before updating running stats."""
    layer = BatchNorm(3)
    layer.weight = np.ones(2)
    snap = state_snapshot(layer)
    with pytest.raises(ValueError, match="gamma must have shape"):
        layer(np.random.default_rng(1).normal(size=(4, 3)))
    assert_same_state(layer, snap)


def test_eval_input_is_validated_too():
    """Evaluation mode rejects non-finite values and a wrong channel count."""
    layer = BatchNorm(2).eval()
    with pytest.raises(ValueError, match="non-finite"):
        layer(np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="expected 2 channels"):
        layer(np.ones((1, 3)))


def test_backward_checks_dy_shape_and_order():
    """dy of the wrong shape, and backward before forward, give clear errors."""
    _, cache = batch_norm_forward(
        np.random.default_rng(2).normal(size=(4, 2)), None, None
    )
    with pytest.raises(ValueError, match="forward output's shape"):
        batch_norm_backward(np.ones((4, 3)), cache)
    with pytest.raises(ValueError, match="form must be"):
        batch_norm_backward(np.ones((4, 2)), cache, form="other")
    with pytest.raises(RuntimeError, match="before forward"):
        BatchNorm(2).backward(np.ones((4, 2)))


def test_population_statistics_rejects_empty_and_ragged_input():
    """No batches, batches of different shapes, and one value per channel are all rejected."""
    with pytest.raises(ValueError, match="at least one mini-batch"):
        population_statistics([])
    with pytest.raises(ValueError, match="same shape"):
        population_statistics([np.ones((4, 2)), np.ones((5, 2))])
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        population_statistics([np.ones((1, 2))])


def test_negative_variance_is_rejected():
    """A negative running variance is refused by inference and folding."""
    with pytest.raises(ValueError, match="var must be >= 0"):
        batch_norm_inference(
            np.ones((2, 1)), np.zeros(1), -np.ones(1), None, None
        )
    with pytest.raises(ValueError, match="running_var must be >= 0"):
        fold_batch_norm(
            np.ones((1, 2)), None, np.zeros(1), -np.ones(1), None, None
        )


def test_load_state_dict_is_all_or_nothing():
    """A state with a bad entry raises and loads nothing, not even its valid entries."""
    layer = BatchNorm(2)
    snap = state_snapshot(layer)
    bad = {
        "weight": np.full(2, 3.0),
        "bias": np.zeros(2),
        "running_mean": np.ones(2),
        "running_var": np.ones(3),
        "num_batches_tracked": 4,
    }
    with pytest.raises(ValueError, match="running_var must have shape"):
        layer.load_state_dict(bad)
    with pytest.raises(KeyError, match="missing"):
        layer.load_state_dict({"weight": np.ones(2)})
    assert_same_state(layer, snap)
