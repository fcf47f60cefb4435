"""LayerNorm, GroupNorm and InstanceNorm layers: torch's semantics in
float64, BatchNorm's conventions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import RTOL64, assert_same_state, rel_err, state_snapshot, t

from bnnotes.batchnorm import BatchNorm
from bnnotes.groupnorm import GroupNorm, InstanceNorm
from bnnotes.layernorm import LayerNorm

TORCH_INSTANCE_NORM = {
    3: torch.nn.InstanceNorm1d,
    4: torch.nn.InstanceNorm2d,
    5: torch.nn.InstanceNorm3d,
}


def _randomize(torch_layer, rng):
    """Random weight and bias in a torch layer (so that the affine map is
    tested), returned as NumPy state."""
    with torch.no_grad():
        for p in torch_layer.parameters():
            p.copy_(t(rng.normal(size=tuple(p.shape))))
    return {k: v.numpy().copy() for k, v in torch_layer.state_dict().items()}


def _forward_backward(ours, theirs, x, dy):
    """Forward and backward through both layers; the relative errors of y,
    dx and the parameter grads."""
    xt = t(x).requires_grad_()
    y_t = theirs(xt)
    y_t.backward(t(dy))
    y = ours(x)
    dx = ours.backward(dy)
    errors = {
        "y": rel_err(y, y_t.detach().numpy()),
        "dx": rel_err(dx, xt.grad.numpy()),
    }
    if ours.weight is not None:
        errors["weight"] = rel_err(
            ours.weight_grad, theirs.weight.grad.numpy()
        )
    if ours.bias is not None:
        errors["bias"] = rel_err(ours.bias_grad, theirs.bias.grad.numpy())
    return errors


LAYER_NORM_CASES = [
    ((4, 5), 5, True, True),
    ((3, 2, 4), (2, 4), True, True),
    ((3, 2, 4), (4,), True, False),
    ((2, 3, 4, 4), (3, 4, 4), False, False),
]


@pytest.mark.parametrize(
    ("shape", "normalized_shape", "affine", "bias"), LAYER_NORM_CASES, ids=str
)
def test_layer_norm_layer_matches_torch_in_float64(
    shape, normalized_shape, affine, bias
):
    """y, dx and the parameter gradients equal torch.nn.LayerNorm's to 1e-10 (relative)."""
    rng = np.random.default_rng(0)
    theirs = torch.nn.LayerNorm(
        normalized_shape,
        elementwise_affine=affine,
        bias=bias,
        dtype=torch.float64,
    )
    ours = LayerNorm(normalized_shape, elementwise_affine=affine, bias=bias)
    ours.load_state_dict(_randomize(theirs, rng))
    x, dy = rng.normal(2.0, 3.0, size=shape), rng.normal(size=shape)
    errors = _forward_backward(ours, theirs, x, dy)
    assert max(errors.values()) <= RTOL64, errors


GROUP_NORM_CASES = [
    ((4, 6, 5), 3, True),
    ((2, 6), 2, True),
    ((2, 4, 3, 3), 2, False),
    ((2, 4, 3, 3), 4, True),
    ((2, 4, 2, 2, 2), 1, True),
]


@pytest.mark.parametrize(
    ("shape", "groups", "affine"), GROUP_NORM_CASES, ids=str
)
def test_group_norm_layer_matches_torch_in_float64(shape, groups, affine):
    """y, dx and the parameter gradients equal torch.nn.GroupNorm's to 1e-10 (relative)."""
    rng = np.random.default_rng(1)
    c = shape[1]
    theirs = torch.nn.GroupNorm(groups, c, affine=affine, dtype=torch.float64)
    ours = GroupNorm(groups, c, affine=affine)
    ours.load_state_dict(_randomize(theirs, rng))
    x, dy = rng.normal(-1.0, 2.0, size=shape), rng.normal(size=shape)
    errors = _forward_backward(ours, theirs, x, dy)
    assert max(errors.values()) <= RTOL64, errors


INSTANCE_CASES = [
    (shape, affine, track)
    for shape in [(4, 3, 6), (2, 3, 4, 5), (2, 2, 3, 3, 2)]
    for affine in (False, True)
    for track in (False, True)
]


@pytest.mark.parametrize(("shape", "affine", "track"), INSTANCE_CASES, ids=str)
def test_instance_norm_layer_matches_torch_in_training_and_evaluation(
    shape, affine, track
):
    """Three training steps then evaluation: outputs, gradients and the state dict
    equal torch's InstanceNorm*d."""
    rng = np.random.default_rng(2)
    c = shape[1]
    theirs = TORCH_INSTANCE_NORM[len(shape)](
        c,
        momentum=0.3,
        affine=affine,
        track_running_stats=track,
        dtype=torch.float64,
    )
    ours = InstanceNorm(
        c, momentum=0.3, affine=affine, track_running_stats=track
    )
    ours.load_state_dict(_randomize(theirs, rng))
    for step in range(4):
        if step == 3:
            ours.eval()
            theirs.eval()
        theirs.zero_grad()
        x = rng.normal(1.0 + step, 2.0, size=shape)
        errors = _forward_backward(ours, theirs, x, rng.normal(size=shape))
        assert max(errors.values()) <= RTOL64, (step, errors)
        state = theirs.state_dict()
        assert list(ours.state_dict()) == list(state)
        for key, value in ours.state_dict().items():
            assert rel_err(value, state[key].numpy()) <= RTOL64, (step, key)


@pytest.mark.parametrize(
    "make",
    [
        lambda: (LayerNorm(4), torch.nn.LayerNorm(4)),
        lambda: (LayerNorm(4, bias=False), torch.nn.LayerNorm(4, bias=False)),
        lambda: (
            LayerNorm(4, elementwise_affine=False),
            torch.nn.LayerNorm(4, elementwise_affine=False),
        ),
        lambda: (GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)),
        lambda: (
            GroupNorm(2, 4, affine=False),
            torch.nn.GroupNorm(2, 4, affine=False),
        ),
        lambda: (InstanceNorm(4), torch.nn.InstanceNorm2d(4)),
        lambda: (
            InstanceNorm(4, affine=True, track_running_stats=True),
            torch.nn.InstanceNorm2d(4, affine=True, track_running_stats=True),
        ),
        lambda: (BatchNorm(4), torch.nn.BatchNorm2d(4)),
    ],
    ids=[
        "LN",
        "LN-no-bias",
        "LN-no-affine",
        "GN",
        "GN-no-affine",
        "IN",
        "IN-affine-tracked",
        "BN",
    ],
)
def test_state_dict_keys_are_torchs(make):
    """Every layer's state_dict has exactly torch's keys, in torch's order."""
    ours, theirs = make()
    assert list(ours.state_dict()) == list(theirs.state_dict())


@pytest.mark.parametrize(
    "layer",
    [LayerNorm(3), GroupNorm(1, 3), InstanceNorm(3), BatchNorm(3)],
    ids=lambda layer: type(layer).__name__,
)
def test_train_and_eval_set_the_mode_and_return_the_layer(layer):
    """train() and eval() return the layer itself and set .training, as torch's."""
    assert layer.training
    assert layer.eval() is layer and not layer.training
    assert layer.train() is layer and layer.training
    assert layer.train(False) is layer and not layer.training


BAD = [
    (np.ones((2, 3, 4), dtype=np.int64), TypeError, "floating dtype"),
    (np.full((2, 3, 4), np.nan), ValueError, "non-finite"),
    (np.ones((2, 5, 4)), ValueError, "expected 3 channels|normalized_shape"),
    (np.ones((1, 3, 1)), ValueError, "more than 1"),
]


def _layers():
    return [
        LayerNorm((3, 4)),
        GroupNorm(3, 3),
        InstanceNorm(3, affine=True, track_running_stats=True),
        BatchNorm(3),
    ]


@pytest.mark.parametrize("case", range(len(BAD)))
@pytest.mark.parametrize("index", range(4), ids=["LN", "GN", "IN", "BN"])
def test_a_rejected_input_raises_and_changes_no_state(index, case):
    """Bad input raises the named error; parameters, running statistics, counters and the
    cache stay bit-identical."""
    layer = _layers()[index]
    x, error, message = BAD[case]
    if isinstance(layer, LayerNorm) and case == 3:
        x, message = (
            np.ones((2, 3, 5)),
            "normalized_shape",
        )  # LN has no 1-value case here
    layer(np.random.default_rng(3).normal(size=(4, 3, 4)))
    before = state_snapshot(layer)
    with pytest.raises(error, match=message):
        layer(x)
    assert_same_state(layer, before)


@pytest.mark.parametrize(
    "layer",
    [LayerNorm(3), GroupNorm(1, 3), InstanceNorm(3)],
    ids=lambda layer: type(layer).__name__,
)
def test_backward_before_forward_is_a_runtime_error(layer):
    """backward() without a forward pass raises RuntimeError, as BatchNorm's."""
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((2, 3, 4)))


def test_instance_norm_refuses_momentum_none_where_torch_keeps_its_initial_statistics():
    """Pinned difference: torch's InstanceNorm with momentum=None never updates its running
    statistics; ours refuses None."""
    theirs = torch.nn.InstanceNorm1d(
        2, momentum=None, track_running_stats=True, dtype=torch.float64
    )
    theirs(torch.randn(4, 2, 5, dtype=torch.float64) + 3.0)
    assert torch.equal(
        theirs.running_mean, torch.zeros(2, dtype=torch.float64)
    )
    with pytest.raises(
        ValueError, match=r"momentum must be a number in \[0, 1\], got None"
    ):
        InstanceNorm(2, momentum=None, track_running_stats=True)


def test_instance_norm_keeps_num_batches_tracked_at_zero_as_torch():
    """InstanceNorm has num_batches_tracked for the state dict's keys and,
    like torch's, never counts."""
    ours = InstanceNorm(2, track_running_stats=True)
    theirs = torch.nn.InstanceNorm1d(2, track_running_stats=True)
    x = np.random.default_rng(4).normal(size=(3, 2, 5))
    for _ in range(2):
        ours(x)
        theirs(torch.from_numpy(x).float())
    assert ours.num_batches_tracked == int(theirs.num_batches_tracked) == 0


@pytest.mark.parametrize(
    "make",
    [
        lambda: LayerNorm(0),
        lambda: LayerNorm(3, eps=0.0),
        lambda: LayerNorm(3, eps=True),
        lambda: GroupNorm(4, 6),
        lambda: GroupNorm(2, 4, eps=-1.0),
        lambda: InstanceNorm(3, momentum=1.5),
        lambda: InstanceNorm(3, momentum=True),
        lambda: InstanceNorm(3, eps=float("nan")),
    ],
    ids=[
        "LN-shape",
        "LN-eps0",
        "LN-eps-bool",
        "GN-divide",
        "GN-eps",
        "IN-momentum",
        "IN-momentum-bool",
        "IN-eps-nan",
    ],
)
def test_bad_constructor_arguments_are_named_value_errors(make):
    """A bad normalized_shape, eps (bools included), num_groups or momentum is a ValueError."""
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize(
    ("make", "x", "torch_reference"),
    [
        (
            lambda: LayerNorm(4),
            np.ones((0, 4)),
            lambda xt: torch.nn.functional.layer_norm(xt, (4,)),
        ),
        (
            lambda: GroupNorm(1, 3),
            np.ones((0, 3, 4)),
            lambda xt: torch.nn.functional.group_norm(xt, 1),
        ),
        (
            lambda: InstanceNorm(3, track_running_stats=True),
            np.ones((0, 3, 4)),
            torch.nn.functional.instance_norm,
        ),
        (
            lambda: BatchNorm(3).eval(),
            np.ones((0, 3)),
            lambda xt: torch.nn.functional.batch_norm(
                xt, torch.zeros(3).double(), torch.ones(3).double()
            ),
        ),
    ],
    ids=["LN", "GN", "IN", "BN-eval"],
)
def test_an_empty_batch_gives_an_empty_output_where_every_statistic_has_values(
    make, x, torch_reference
):
    """N = 0 with per-example statistics (or fixed ones): an empty output as
    torch's, and no nan in the state."""
    layer = make()
    before = state_snapshot(layer)
    y = layer(x)
    assert y.shape == tuple(torch_reference(t(x)).shape) == x.shape
    for key in ("running_mean", "running_var"):
        value = before.get(key, (None, None))[1]
        if value is not None:
            np.testing.assert_array_equal(getattr(layer, key), value)


def test_batch_statistics_of_an_empty_batch_are_refused_and_change_no_state():
    """BN in training needs values to average: N = 0 is the named ValueError (torch returns an empty
    output without statistics)."""
    layer = BatchNorm(3)
    layer(np.random.default_rng(5).normal(size=(4, 3)))
    before = state_snapshot(layer)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        layer(np.ones((0, 3)))
    assert_same_state(layer, before)
