"""Group and instance normalization against torch in float64, the sets S_i, and
GN's special cases LN and IN."""

import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import RTOL64, central_difference, rel_err, t
from hypothesis import given, settings
from hypothesis import strategies as st

import bnnotes.groupnorm as gn
from bnnotes.batchnorm import batch_norm_forward
from bnnotes.groupnorm import (
    group_norm_backward,
    group_norm_forward,
    instance_norm_backward,
    instance_norm_forward,
    normalization_mask,
    normalization_set,
)
from bnnotes.layernorm import layer_norm_backward, layer_norm_forward

# (input shape, num_groups)
CASES = [
    ((4, 6), 3),
    ((3, 6, 5), 2),
    ((2, 8, 3, 4), 4),
    ((2, 4, 2, 3, 2), 1),
    ((2, 4, 3, 3), 4),
]


def _affine(rng, c, affine):
    return (rng.normal(size=c), rng.normal(size=c)) if affine else (None, None)


@pytest.mark.parametrize(("shape", "groups"), CASES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_forward_matches_torch(shape, groups, affine):
    """y equals F.group_norm to 1e-10 relative, for (N, C) and (N, C,
    *spatial) and G from 1 to C."""
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=shape)
    gamma, beta = _affine(rng, shape[1], affine)
    y, _ = group_norm_forward(x, groups, gamma, beta, eps=1e-3)
    assert (
        rel_err(
            y, F.group_norm(t(x), groups, t(gamma), t(beta), eps=1e-3).numpy()
        )
        <= RTOL64
    )


@pytest.mark.parametrize(("shape", "groups"), CASES, ids=str)
def test_group_norm_backward_matches_torch_autograd(shape, groups):
    """dx, dgamma, dbeta equal autograd through F.group_norm to 1e-10 relative."""
    rng = np.random.default_rng(1)
    x, dy = rng.normal(1.0, 2.0, size=shape), rng.normal(size=shape)
    gamma, beta = rng.normal(size=shape[1]), rng.normal(size=shape[1])
    _, cache = group_norm_forward(x, groups, gamma, beta, eps=1e-3)
    ours = group_norm_backward(dy, cache)
    xt, gt, bt = (t(a).requires_grad_() for a in (x, gamma, beta))
    F.group_norm(xt, groups, gt, bt, eps=1e-3).backward(t(dy))
    for a, b in zip(ours, (xt.grad, gt.grad, bt.grad), strict=True):
        assert rel_err(a, b.numpy()) <= RTOL64


@pytest.mark.parametrize(
    "shape", [(3, 4, 5), (2, 3, 4, 4), (2, 2, 2, 3, 2)], ids=str
)
@pytest.mark.parametrize("affine", [True, False])
def test_instance_norm_matches_torch_forward_and_backward(shape, affine):
    """instance_norm_forward/backward equal F.instance_norm(use_input_stats=True)
    and its autograd to 1e-10."""
    rng = np.random.default_rng(2)
    x, dy = rng.normal(-1.0, 2.0, size=shape), rng.normal(size=shape)
    gamma, beta = _affine(rng, shape[1], affine)
    y, cache = instance_norm_forward(x, gamma, beta, eps=1e-4)
    dx, dgamma, dbeta = instance_norm_backward(dy, cache)
    xt = t(x).requires_grad_()
    gt = t(gamma if affine else np.ones(shape[1])).requires_grad_()
    bt = t(beta if affine else np.zeros(shape[1])).requires_grad_()
    ref = F.instance_norm(
        xt, weight=gt, bias=bt, use_input_stats=True, eps=1e-4
    )
    ref.backward(t(dy))
    assert rel_err(y, ref.detach().numpy()) <= RTOL64
    assert rel_err(dx, xt.grad.numpy()) <= RTOL64
    assert rel_err(dgamma, gt.grad.numpy()) <= RTOL64
    assert rel_err(dbeta, bt.grad.numpy()) <= RTOL64


def test_group_norm_backward_matches_central_finite_differences():
    """Every entry of dx, dgamma, dbeta matches a central difference of
    <dy, y> (h = 1e-6, rel 1e-7)."""
    rng = np.random.default_rng(3)
    x, dy = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 4, 3))
    gamma, beta = rng.normal(size=4), rng.normal(size=4)
    _, cache = group_norm_forward(x, 2, gamma, beta)
    dx, dgamma, dbeta = group_norm_backward(dy, cache)

    def loss(x_, g_, b_):
        return float(np.sum(dy * group_norm_forward(x_, 2, g_, b_)[0]))

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


def test_group_norm_with_one_group_is_layer_norm_over_channels_and_space():
    """GN with G = 1 equals LN over (C, H, W) followed by the per-channel affine
    map, forward and backward."""
    rng = np.random.default_rng(4)
    x, dy = rng.normal(size=(3, 4, 2, 5)), rng.normal(size=(3, 4, 2, 5))
    gamma, beta = rng.normal(size=4), rng.normal(size=4)
    y_gn, cache_gn = group_norm_forward(x, 1, gamma, beta)
    y_ln, cache_ln = layer_norm_forward(x, (4, 2, 5))
    assert (
        rel_err(y_gn, gamma[:, None, None] * y_ln + beta[:, None, None])
        <= 1e-14
    )
    np.testing.assert_allclose(cache_gn.var[:, 0], cache_ln.var, rtol=1e-14)
    dx_gn, _, _ = group_norm_backward(dy, group_norm_forward(x, 1)[1])
    dx_ln, _, _ = layer_norm_backward(dy, cache_ln)
    assert rel_err(dx_gn, dx_ln) <= 1e-13


def test_group_norm_with_one_channel_per_group_is_instance_norm():
    """GN with G = C equals F.instance_norm, forward and backward."""
    rng = np.random.default_rng(5)
    x, dy = rng.normal(size=(2, 5, 3, 3)), rng.normal(size=(2, 5, 3, 3))
    y, cache = group_norm_forward(x, 5)
    xt = t(x).requires_grad_()
    ref = F.instance_norm(xt, use_input_stats=True)
    ref.backward(t(dy))
    assert rel_err(y, ref.detach().numpy()) <= RTOL64
    assert (
        rel_err(group_norm_backward(dy, cache)[0], xt.grad.numpy()) <= RTOL64
    )


SHAPE = (2, 4, 2, 3)


def _method_statistics(method, x, num_groups):
    """(mean, var) per element from the method's own implementation, broadcast to x's shape."""
    if method == "batch":
        _, c = batch_norm_forward(x, None, None)
        return np.broadcast_to(
            c.mean[None, :, None, None], x.shape
        ), np.broadcast_to(c.var[None, :, None, None], x.shape)
    if method == "layer":
        _, c = layer_norm_forward(x, x.shape[1:])
        return np.broadcast_to(
            c.mean[:, None, None, None], x.shape
        ), np.broadcast_to(c.var[:, None, None, None], x.shape)
    g = x.shape[1] if method == "instance" else num_groups
    _, c = group_norm_forward(x, g)
    per = x.shape[1] // g
    mean = np.repeat(c.mean, per, axis=1)[:, :, None, None]
    var = np.repeat(c.var, per, axis=1)[:, :, None, None]
    return np.broadcast_to(mean, x.shape), np.broadcast_to(var, x.shape)


@pytest.mark.parametrize("method", gn.METHODS)
def test_statistics_over_the_set_s_i_are_the_ones_each_method_uses(method):
    """For every element i, the mean and variance over normalization_mask(i) equal those of
    BN, LN, IN or GN (G = 2)."""
    x = np.random.default_rng(6).normal(size=SHAPE)
    groups = 2 if method == "group" else None
    mean, var = _method_statistics(method, x, groups)
    for index in np.ndindex(SHAPE):
        values = x[normalization_mask(method, SHAPE, index, num_groups=groups)]
        assert abs(values.mean() - mean[index]) <= 1e-14
        assert abs(values.var() - var[index]) <= 1e-13


def test_set_sizes_are_those_of_the_table():
    """|S_i| is N*H*W for BN, C*H*W for LN, H*W for IN and (C/G)*H*W for GN."""
    n, c, h, w = SHAPE
    sizes = {
        m: int(
            normalization_mask(
                m, SHAPE, (1, 3, 0, 2), num_groups=2 if m == "group" else None
            ).sum()
        )
        for m in gn.METHODS
    }
    assert sizes == {
        "batch": n * h * w,
        "layer": c * h * w,
        "instance": h * w,
        "group": c // 2 * h * w,
    }


def test_group_sets_at_g_equal_1_and_g_equal_c_are_the_layer_and_instance_sets():
    """S_i of GN is S_i of LN at G = 1 and S_i of IN at G = C, for every element."""
    for index in np.ndindex(SHAPE):
        np.testing.assert_array_equal(
            normalization_mask("group", SHAPE, index, 1),
            normalization_mask("layer", SHAPE, index),
        )
        np.testing.assert_array_equal(
            normalization_mask("group", SHAPE, index, SHAPE[1]),
            normalization_mask("instance", SHAPE, index),
        )


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_sets_are_equivalence_classes(data):
    """i is in S_i, and k in S_i implies S_k = S_i: the sets partition the tensor."""
    shape = (
        data.draw(st.integers(1, 3)),
        data.draw(st.sampled_from([1, 2, 4, 6])),
        data.draw(st.integers(1, 3)),
    )
    method = data.draw(st.sampled_from(gn.METHODS))
    groups = (
        data.draw(
            st.sampled_from([g for g in (1, 2, 3, 6) if shape[1] % g == 0])
        )
        if method == "group"
        else None
    )
    index = tuple(data.draw(st.integers(0, s - 1)) for s in shape)
    s_i = normalization_set(method, shape, index, groups)
    assert index in s_i
    k = data.draw(st.sampled_from(sorted(s_i)))
    assert normalization_set(method, shape, k, groups) == s_i


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(1e-2, 1e2), st.floats(-1e3, 1e3))
def test_group_norm_is_invariant_to_a_per_group_shift_and_positive_scale(
    seed, scale, shift
):
    """GN_eps(a x + b) = GN_{eps/a^2}(x) when a > 0 and b are constant within
    each group of each example."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, 6, 4))
    b = np.repeat(rng.uniform(-1, 1, size=(2, 3)) * shift, 2, axis=1)[
        :, :, None
    ]
    y, _ = group_norm_forward(x, 3, eps=1e-3)
    y2, _ = group_norm_forward(scale * x + b, 3, eps=1e-3 * scale**2)
    np.testing.assert_allclose(y2, y, rtol=1e-8, atol=1e-8)


def test_float32_with_large_offset_keeps_the_variance():
    """float32 groups + 1e4: the group variance stays within 1e-5 relative of
    float64 (no E[x^2] - E[x]^2)."""
    x32 = (np.random.default_rng(7).normal(size=(4, 8, 16, 16)) + 1e4).astype(
        np.float32
    )
    y, cache = group_norm_forward(x32, 4)
    exact = x32.astype(np.float64).reshape(4, 4, -1).var(axis=2)
    assert y.dtype == np.float32
    assert np.max(np.abs(cache.var / exact - 1)) < 1e-5


@pytest.mark.parametrize("shape", [(3, 4), (3, 4, 1), (3, 4, 1, 1)], ids=str)
def test_a_group_of_one_value_is_refused(shape):
    """Pinned difference: one value per group is a named ValueError here, where
    torch returns beta whatever x."""
    x = np.random.default_rng(8).normal(size=shape)
    beta = np.arange(4.0)
    with pytest.raises(ValueError, match="more than 1 value per group"):
        group_norm_forward(x, 4, beta=beta)
    torch_y = F.group_norm(t(x), 4, t(np.ones(4)), t(beta)).numpy()
    expected = np.broadcast_to(
        beta.reshape(1, 4, *[1] * (x.ndim - 2)), x.shape
    )
    np.testing.assert_allclose(torch_y, expected, rtol=0, atol=1e-12)


def test_two_channels_of_one_position_per_group_are_accepted():
    """C/G = 2 on a 1x1 map gives groups of two values, which normalize to -1 and +1 (up to eps)."""
    x = np.array([[1.0, 3.0, -2.0, 6.0]])[:, :, None, None]
    y, _ = group_norm_forward(x, 2, eps=1e-300)
    np.testing.assert_allclose(
        y.ravel(), [-1.0, 1.0, -1.0, 1.0], rtol=1e-15, atol=0
    )


@pytest.mark.parametrize("affine", [False, True])
def test_changing_y_in_place_leaves_the_backward_pass_unchanged(affine):
    """y is a fresh array (also without gamma and beta): writing into it does
    not alter the cache or dx."""
    rng = np.random.default_rng(10)
    x, dy = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 4, 3))
    gamma, beta = _affine(rng, 4, affine)
    y, cache = group_norm_forward(x, 2, gamma, beta)
    expected = [a.copy() for a in group_norm_backward(dy, cache)]
    y *= 5.0
    y += 1.0
    for a, b in zip(group_norm_backward(dy, cache), expected, strict=True):
        np.testing.assert_array_equal(a, b)


BAD = [
    (np.ones(4), 1, ValueError, "at least 2 dimensions"),
    (np.ones((2, 6), dtype=np.int32), 2, TypeError, "floating dtype"),
    (np.array([[np.nan, 1.0]]), 1, ValueError, "non-finite"),
    (np.ones((2, 6, 3)), 4, ValueError, "must divide"),
    (np.ones((2, 6, 3)), 0, ValueError, "positive integer"),
    (np.ones((2, 6, 3)), True, ValueError, "positive integer"),
    (np.ones((2, 6, 3)), 2.0, ValueError, "positive integer"),
    (np.ones((2, 0, 3)), 1, ValueError, r"size 0 along axis 1 \(C"),
    (
        np.ones((2, 6, 0)),
        2,
        ValueError,
        r"size 0 along axis 2 \(a spatial axis",
    ),
    (np.ones((2, 6, 3, 0)), 2, ValueError, "size 0 along axis 3"),
]


@pytest.mark.parametrize(
    ("x", "groups", "error", "message"), BAD, ids=lambda v: str(v)[:24]
)
def test_bad_group_norm_input_raises_a_named_error_and_leaves_the_input_unchanged(
    x, groups, error, message
):
    """A rejected call raises the named error and does not modify its argument."""
    before = x.copy()
    with pytest.raises(error, match=message):
        group_norm_forward(x, groups)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 1), (2, 3, 1, 1)], ids=str)
def test_instance_norm_needs_more_than_one_spatial_value(shape):
    """IN of (N, C) or a 1x1 map is refused, as torch refuses it."""
    with pytest.raises(ValueError, match="more than 1 spatial value"):
        instance_norm_forward(np.ones(shape))


@pytest.mark.parametrize(
    "shape", [(2, 0, 4), (2, 3, 0), (2, 3, 4, 0)], ids=str
)
def test_instance_norm_refuses_an_empty_axis(shape):
    """An empty channel or spatial axis is a named ValueError for IN as for GN."""
    with pytest.raises(ValueError, match="size 0 along axis"):
        instance_norm_forward(np.ones(shape))


def test_bad_affine_eps_and_upstream_gradient_are_named():
    """Wrong gamma shape, eps <= 0 and a wrong dy shape name the argument."""
    x = np.random.default_rng(9).normal(size=(2, 4, 3))
    with pytest.raises(ValueError, match=r"gamma must have shape \(4,\)"):
        group_norm_forward(x, 2, gamma=np.ones(2))
    with pytest.raises(ValueError, match="eps must be"):
        group_norm_forward(x, 2, eps=0.0)
    _, cache = group_norm_forward(x, 2)
    with pytest.raises(ValueError, match="forward output's shape"):
        group_norm_backward(np.ones((2, 4)), cache)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("weird", SHAPE, (0, 0, 0, 0)), {}, "method must be one of"),
        (("group", SHAPE, (0, 0, 0, 0)), {}, "needs num_groups"),
        (("group", SHAPE, (0, 0, 0, 0)), {"num_groups": 3}, "must divide"),
        (
            ("layer", SHAPE, (0, 0, 0, 0)),
            {"num_groups": 2},
            "applies to method 'group' only",
        ),
        (("layer", SHAPE, (0, 0, 0)), {}, "must have 4 entries"),
        (("layer", SHAPE, (2, 0, 0, 0)), {}, "out of range"),
        (("layer", (4,), (0,)), {}, "shape must be"),
        (("layer", (2, 0), (0, 0)), {}, "shape must be"),
    ],
)
def test_bad_set_queries_raise_a_named_error(args, kwargs, message):
    """normalization_mask refuses unknown methods, missing or invalid num_groups,
    and bad shapes or indices."""
    with pytest.raises(ValueError, match=message):
        normalization_mask(*args, **kwargs)


@pytest.mark.parametrize(
    "index",
    [(0, 0, 0, True), (0, 0, 0, 1.0), (0, 1.5, 0, 0), (0, 0, "1", 0)],
    ids=str,
)
def test_non_integer_index_entries_are_refused(index):
    """A bool, float or str index entry is a TypeError naming the entry."""
    with pytest.raises(TypeError, match="index entries must be integers"):
        normalization_mask("layer", SHAPE, index)


@pytest.mark.parametrize("index", ["0000", 3, None], ids=str)
def test_an_index_that_is_not_a_sequence_is_refused(index):
    """A string, a bare number or None as the index is a TypeError."""
    with pytest.raises(
        TypeError, match="index must be a sequence of integers"
    ):
        normalization_mask("layer", SHAPE, index)


def test_numpy_integer_index_entries_are_accepted():
    """np.int64 entries index like Python ints."""
    np.testing.assert_array_equal(
        normalization_mask(
            "instance", SHAPE, tuple(np.int64(i) for i in (1, 2, 0, 1))
        ),
        normalization_mask("instance", SHAPE, (1, 2, 0, 1)),
    )


def test_negative_indices_count_from_the_end():
    """index (-1, -1, -1, -1) is the last element, as in NumPy indexing."""
    last = tuple(s - 1 for s in SHAPE)
    np.testing.assert_array_equal(
        normalization_mask("instance", SHAPE, (-1, -1, -1, -1)),
        normalization_mask("instance", SHAPE, last),
    )


def test_every_public_function_has_a_running_example():
    """Each public function of bnnotes.groupnorm has an executed Examples section; the cache
    documents its attributes."""
    for name in gn.__all__:
        obj = getattr(gn, name)
        if name in ("DEFAULT_EPS", "METHODS"):
            continue
        doc = inspect.getdoc(obj) or ""
        assert ("Examples\n--------\n>>>" in doc) or (
            name.endswith("Cache") and "Attributes" in doc
        ), name


@pytest.mark.parametrize(
    ("forward", "reference"),
    [
        (
            lambda x: group_norm_forward(x, 3),
            lambda x: F.group_norm(x, 3),
        ),
        (
            instance_norm_forward,
            F.instance_norm,
        ),
    ],
    ids=["group", "instance"],
)
def test_an_empty_batch_gives_an_empty_output_as_in_torch(forward, reference):
    """N = 0: an empty output and empty (0, G) statistics, as torch returns an empty output."""
    x = np.ones((0, 6, 4))
    y, cache = forward(x)
    expected = reference(torch.from_numpy(x))
    assert y.shape == tuple(expected.shape) == (0, 6, 4)
    assert cache.mean.shape[0] == cache.inv_std.shape[0] == 0
    dx, dgamma, dbeta = group_norm_backward(np.ones_like(x), cache)
    assert dx.shape == (0, 6, 4)
    np.testing.assert_array_equal(dgamma, np.zeros(6))
    np.testing.assert_array_equal(dbeta, np.zeros(6))
