"""BN across devices: merged moments, SyncBatchNorm on gloo processes
against full-batch BN, ghost BN.

The process tests start 2 and 3 processes on the loopback interface (gloo backend, file
store). Each world size runs one worker that does every step; the tests below then check
one claim each on what the ranks returned.
"""

import time

import numpy as np
import pytest
import torch
from helpers import RTOL64, rel_err, t
from hypothesis import given, settings
from hypothesis import strategies as st

from bnnotes.batchnorm import batch_norm_backward, batch_norm_forward
from bnnotes.distributed import (
    SyncBatchNorm,
    convert_sync_batchnorm,
    ghost_batch_norm,
    ghost_batch_norm_backward,
    merge_moments,
    shard_moments,
    sync_bn_shard_step,
)
from bnnotes.processes import RankFailure, spawn_ranks

EPS = 1e-5
U = np.finfo(np.float64).eps


def _split(x, sizes):
    return np.split(x, np.cumsum(sizes)[:-1])


def _full_batch_bn(x, dy, weight, bias):
    """torch.nn.BatchNorm on the whole batch in float64: y, dx, dweight, dbias."""
    bn = {2: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d}[x.ndim](
        x.shape[1], dtype=torch.float64
    )
    with torch.no_grad():
        bn.weight.copy_(t(weight))
        bn.bias.copy_(t(bias))
    xt = t(x).requires_grad_()
    y = bn(xt)
    y.backward(t(dy))
    return (
        y.detach().numpy(),
        xt.grad.numpy(),
        bn.weight.grad.numpy(),
        bn.bias.grad.numpy(),
    )


# --------------------------------------------------------------------------- merging moments


@pytest.mark.parametrize("sizes", [[5, 1, 12], [2, 0, 7, 3], [20]], ids=str)
def test_merged_moments_equal_statistics_of_the_concatenation(sizes):
    """merge_moments of uneven shards (an empty one too) gives the count, mean
    and M2 of the whole batch."""
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(sum(sizes), 4, 3))
    n, mean, m2 = merge_moments(
        *zip(*(shard_moments(s) for s in _split(x, sizes)), strict=True)
    )
    assert n == x.shape[0] * 3
    assert rel_err(mean, x.mean(axis=(0, 2))) <= 1e-14
    assert rel_err(m2 / n, x.var(axis=(0, 2))) <= 1e-13


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 9), min_size=1, max_size=6).filter(
        lambda s: sum(s) >= 2
    ),
    offset=st.sampled_from([0.0, -1e4, 1e8]),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
    seed=st.integers(0, 2**32 - 1),
)
def test_merge_error_grows_like_u_times_offset_over_spread(
    sizes, offset, scale, seed
):
    """The merged variance is within a few u*(1 + |offset|/sigma) of np.var,
    for any split and offset."""
    x = np.random.default_rng(seed).normal(offset, scale, size=(sum(sizes), 2))
    n, _, m2 = merge_moments(
        *zip(*(shard_moments(s) for s in _split(x, sizes)), strict=True)
    )
    ref = x.var(axis=0)
    kappa = 1.0 + np.abs(x.mean(axis=0)) / np.sqrt(ref)
    assert np.all(np.abs(m2 / n - ref) <= 16 * U * kappa * ref)


def test_textbook_formula_fails_where_the_merge_does_not():
    """At offset 1e8, sum(x^2)/N - mean^2 loses the variance entirely; the merge keeps 8 digits."""
    x = np.random.default_rng(1).normal(1e8, 1.0, size=(1000, 1))
    shards = _split(x, [300, 1, 699])
    n, _, m2 = merge_moments(
        *zip(*(shard_moments(s) for s in shards), strict=True)
    )
    sum_x = sum(s.sum(axis=0) for s in shards)
    sum_x2 = sum((s**2).sum(axis=0) for s in shards)
    textbook = sum_x2 / n - (sum_x / n) ** 2
    assert rel_err(m2 / n, x.var(axis=0)) <= 1e-8
    assert rel_err(textbook, x.var(axis=0)) >= 1.0


def test_merging_is_associative():
    """Merging shards two at a time, in a tree, gives the same statistics as
    merging them all at once."""
    x = np.random.default_rng(2).normal(50.0, 3.0, size=(17, 3))
    a, b, c, d = (shard_moments(s) for s in _split(x, [4, 6, 2, 5]))
    ab = merge_moments(*zip(a, b, strict=True))
    cd = merge_moments(*zip(c, d, strict=True))
    tree = merge_moments(*zip(ab, cd, strict=True))
    flat = merge_moments(*zip(a, b, c, d, strict=True))
    assert tree[0] == flat[0] == 17
    assert rel_err(tree[1], flat[1]) <= 1e-15
    assert rel_err(tree[2], flat[2]) <= 1e-13


def test_empty_shard_has_zero_moments():
    """A shard with no examples has count 0 and zero mean and M2 (and merges as if absent)."""
    n, mean, m2 = shard_moments(np.zeros((0, 3, 2)))
    assert n == 0 and mean.tolist() == [0.0] * 3 and m2.tolist() == [0.0] * 3


@pytest.mark.parametrize(
    "counts, means, m2s, error, match",
    [
        ([2, -1], [0.0, 0.0], [0.0, 0.0], ValueError, "counts must be >= 0"),
        ([0, 0], [0.0, 0.0], [0.0, 0.0], ValueError, "all counts are 0"),
        (
            [2.0, 3.0],
            [0.0, 0.0],
            [0.0, 0.0],
            TypeError,
            "counts must be integers",
        ),
        (
            [2, 3],
            [0.0, 0.0, 1.0],
            [0.0, 0.0, 1.0],
            ValueError,
            "one row per shard",
        ),
        ([2, 3], [0.0, 0.0], [0.0, -1.0], ValueError, "m2s must be >= 0"),
        ([2, 3], [0.0, np.nan], [0.0, 0.0], ValueError, "non-finite"),
        ([2, 3], [0, 1], [0.0, 0.0], TypeError, "floating"),
    ],
)
def test_merge_moments_rejects_invalid_input(counts, means, m2s, error, match):
    """Invalid counts, shapes or values raise with a message naming the problem."""
    with pytest.raises(error, match=match):
        merge_moments(counts, np.asarray(means), np.asarray(m2s))


# --------------------------------------------------------------------- SyncBatchNorm in one process


@pytest.mark.parametrize("momentum", [0.1, None])
def test_without_a_process_group_sync_bn_is_torch_batchnorm(momentum):
    """With no process group, outputs, gradients and running statistics
    equal torch.nn.BatchNorm2d's."""
    rng = np.random.default_rng(3)
    ours = SyncBatchNorm(3, momentum=momentum, dtype=torch.float64)
    ref = torch.nn.BatchNorm2d(3, momentum=momentum, dtype=torch.float64)
    with torch.no_grad():
        for layer in (ours, ref):
            layer.weight.copy_(t([0.5, -1.0, 2.0]))
            layer.bias.copy_(t([0.1, 0.2, -0.3]))
    for step in range(3):
        x, dy = (
            rng.normal(step, 1.0 + step, size=(4, 3, 2, 3)),
            rng.normal(size=(4, 3, 2, 3)),
        )
        xa, xb = t(x).requires_grad_(), t(x).requires_grad_()
        ya, yb = ours(xa), ref(xb)
        ya.backward(t(dy))
        yb.backward(t(dy))
        assert rel_err(ya.detach().numpy(), yb.detach().numpy()) <= RTOL64
        assert rel_err(xa.grad.numpy(), xb.grad.numpy()) <= RTOL64
    assert rel_err(ours.weight.grad.numpy(), ref.weight.grad.numpy()) <= RTOL64
    assert rel_err(ours.bias.grad.numpy(), ref.bias.grad.numpy()) <= RTOL64
    assert (
        rel_err(ours.running_mean.numpy(), ref.running_mean.numpy()) <= RTOL64
    )
    assert rel_err(ours.running_var.numpy(), ref.running_var.numpy()) <= RTOL64
    assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked) == 3
    ours.eval()
    ref.eval()
    x = t(rng.normal(size=(1, 3, 2, 3)))
    assert rel_err(ours(x).detach().numpy(), ref(x).detach().numpy()) <= RTOL64


def test_custom_backward_passes_gradcheck():
    """The layer's hand-written backward agrees with finite differences for x, weight and bias."""
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    weight = torch.tensor([0.7, -1.3], dtype=torch.float64, requires_grad=True)
    bias = torch.tensor([0.2, 0.5], dtype=torch.float64, requires_grad=True)
    layer = SyncBatchNorm(2, eps=EPS, dtype=torch.float64)

    def bn(
        x, weight, bias
    ):  # a nonlinearity after BN, so the loss is not linear in y
        y = torch.func.functional_call(
            layer, {"weight": weight, "bias": bias}, (x,)
        )
        return torch.nn.functional.silu(y)

    assert torch.autograd.gradcheck(bn, (x, weight, bias))


def test_sync_bn_keeps_the_input_dtype():
    """A float32 input gives a float32 output close to torch's float32 BatchNorm."""
    x = torch.randn(6, 2, 5) * 3 + 100
    y = SyncBatchNorm(2)(x)
    assert y.dtype == torch.float32
    assert torch.allclose(y, torch.nn.BatchNorm1d(2)(x), atol=1e-4)


@pytest.mark.parametrize(
    "x, error, match",
    [
        (np.zeros((4, 3)), TypeError, "torch.Tensor"),
        (torch.zeros(4, 3, dtype=torch.int64), TypeError, "floating dtype"),
        (
            torch.zeros(3, dtype=torch.float64),
            ValueError,
            "at least 2 dimensions",
        ),
        (
            torch.zeros(4, 2, dtype=torch.float64),
            ValueError,
            "expected 3 channels",
        ),
        (
            torch.full((4, 3), float("nan"), dtype=torch.float64),
            ValueError,
            "non-finite",
        ),
        (
            torch.zeros(1, 3, dtype=torch.float64),
            ValueError,
            "more than 1 value per channel",
        ),
    ],
    ids=["numpy", "int", "1-d", "channels", "nan", "one-value"],
)
def test_invalid_input_raises_and_changes_nothing(x, error, match):
    """A rejected input raises a clear error and leaves the running statistics
    and counter as they were."""
    layer = SyncBatchNorm(3, dtype=torch.float64)
    layer(torch.randn(5, 3, dtype=torch.float64) + 2)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    with pytest.raises(error, match=match):
        layer(x)
    assert all(
        torch.equal(before[k], v) for k, v in layer.state_dict().items()
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_features": 0}, "num_features"),
        ({"eps": 0.0}, "eps"),
        ({"momentum": 1.5}, "momentum"),
    ],
)
def test_invalid_constructor_arguments_raise(kwargs, match):
    """A non-positive num_features or eps, or a momentum outside [0, 1], is
    rejected at construction."""
    with pytest.raises(ValueError, match=match):
        SyncBatchNorm(**{"num_features": 3, **kwargs})


def test_state_dict_is_interchangeable_with_torch_batchnorm():
    """SyncBatchNorm loads a torch.nn.BatchNorm2d state dict (same keys
    and shapes) and vice versa."""
    ref = torch.nn.BatchNorm2d(4, dtype=torch.float64)
    ref(torch.randn(3, 4, 2, 2, dtype=torch.float64))
    ours = SyncBatchNorm(4, dtype=torch.float64)
    ours.load_state_dict(ref.state_dict())
    torch.nn.BatchNorm2d(4, dtype=torch.float64).load_state_dict(
        ours.state_dict()
    )
    assert torch.equal(ours.running_var, ref.running_var)


def test_convert_replaces_every_batchnorm_where_torch_does():
    """convert_sync_batchnorm swaps the BN layers that torch's converter
    swaps, sharing their tensors."""

    def net():
        return torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3),
            torch.nn.BatchNorm2d(4),
            torch.nn.Sequential(
                torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4, momentum=None)
            ),
            torch.nn.GroupNorm(2, 4),
            torch.nn.InstanceNorm2d(4),
        )

    original = net()
    weight, running_mean = original[1].weight, original[2][1].running_mean
    ours = convert_sync_batchnorm(original)
    theirs = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net())
    swapped_ours = [
        name
        for name, m in ours.named_modules()
        if isinstance(m, SyncBatchNorm)
    ]
    swapped_theirs = [
        name
        for name, m in theirs.named_modules()
        if isinstance(m, torch.nn.SyncBatchNorm)
    ]
    assert swapped_ours == swapped_theirs == ["1", "2.1"]
    assert ours[1].weight is weight and ours[2][1].running_mean is running_mean
    assert ours[2][1].momentum is None


# --------------------------------------------------------------------------- ghost BN


def test_ghost_bn_is_bn_of_each_virtual_batch():
    """Each virtual batch, the smaller last one included, is normalized by its own statistics."""
    rng = np.random.default_rng(4)
    x, gamma, beta = (
        rng.normal(2.0, 3.0, size=(11, 3, 2)),
        rng.normal(size=3),
        rng.normal(size=3),
    )
    y, caches = ghost_batch_norm(x, gamma, beta, virtual_batch_size=4)
    for rows in (slice(0, 4), slice(4, 8), slice(8, 11)):
        expected, _ = batch_norm_forward(x[rows], gamma, beta)
        assert rel_err(y[rows], expected) <= 1e-14
    assert [c.m for c in caches] == [8, 8, 6]


@pytest.mark.parametrize("virtual_batch_size", [9, 10, 1000])
def test_ghost_bn_with_one_virtual_batch_is_plain_bn(virtual_batch_size):
    """A virtual batch size of at least N leaves one virtual batch: ordinary batch normalization."""
    x = np.random.default_rng(5).normal(size=(9, 2, 3))
    y, caches = ghost_batch_norm(x, None, None, virtual_batch_size)
    assert len(caches) == 1
    assert np.array_equal(y, batch_norm_forward(x, None, None)[0])


def test_ghost_bn_gradient_matches_autograd_through_per_chunk_bn():
    """ghost_batch_norm_backward equals torch autograd through
    F.batch_norm applied to each chunk."""
    rng = np.random.default_rng(6)
    x, dy = rng.normal(size=(10, 3, 2)), rng.normal(size=(10, 3, 2))
    gamma, beta = rng.normal(size=3), rng.normal(size=3)
    _, caches = ghost_batch_norm(x, gamma, beta, 4)
    dx, dgamma, dbeta = ghost_batch_norm_backward(dy, caches)
    xt, gt, bt = (
        t(x).requires_grad_(),
        t(gamma).requires_grad_(),
        t(beta).requires_grad_(),
    )
    y = torch.cat([
        torch.nn.functional.batch_norm(
            chunk, None, None, gt, bt, training=True, eps=EPS
        )
        for chunk in xt.split(4)
    ])
    y.backward(t(dy))
    assert rel_err(dx, xt.grad.numpy()) <= RTOL64
    assert rel_err(dgamma, gt.grad.numpy()) <= RTOL64
    assert rel_err(dbeta, bt.grad.numpy()) <= RTOL64


@pytest.mark.parametrize(
    "shape, v, error, match",
    [
        ((9, 2), 4, ValueError, "virtual batch 2 holds 1 example"),
        ((9, 2), 0, ValueError, ">= 1"),
        ((9, 2), 2.5, TypeError, "integer"),
        ((9, 2), True, TypeError, "integer"),
    ],
)
def test_ghost_bn_rejects_virtual_batches_without_statistics(
    shape, v, error, match
):
    """A virtual batch with one value per channel, or a non-integer or
    non-positive size, is an error."""
    with pytest.raises(error, match=match):
        ghost_batch_norm(np.zeros(shape), None, None, v)


def test_ghost_bn_accepts_a_last_example_with_spatial_values():
    """A last virtual batch of one example is fine when that example has
    several values per channel."""
    _, caches = ghost_batch_norm(
        np.random.default_rng(7).normal(size=(5, 2, 3)), None, None, 2
    )
    assert [c.m for c in caches] == [6, 6, 3]


# --------------------------------------------------------------------------- processes: the worker

STEP_SIZES = {
    2: [[3, 5], [6, 2], [4, 4]],
    3: [[2, 5, 3], [4, 1, 4], [3, 3, 6]],
}
CASE_SIZES = {
    2: [[5, 2], [1, 9], [0, 6]],
    3: [[4, 7, 2], [6, 0, 3], [1, 1, 1]],
}


def _cases(world_size):
    """Batches for the one-step cases (4-d, then 2-d) and the three running-statistics steps."""
    rng = np.random.default_rng(world_size)
    cases = []
    for i, sizes in enumerate(CASE_SIZES[world_size]):
        shape = (sum(sizes), 3, 2, 2) if i == 0 else (sum(sizes), 3)
        cases.append({
            "x": rng.normal(2.0 + i, 1.5, size=shape),
            "dy": rng.normal(size=shape),
            "sizes": sizes,
            "weight": rng.normal(size=3),
            "bias": rng.normal(size=3),
        })
    steps = [
        rng.normal(step - 1.0, 1.0 + step, size=(sum(s), 3, 4))
        for step, s in enumerate(STEP_SIZES[world_size])
    ]
    x_eval = rng.normal(size=(1, 3, 4))
    x_local = rng.normal(4.0, 2.0, size=(3, 3, 4))
    return {
        "cases": cases,
        "steps": steps,
        "x_eval": x_eval,
        "x_local": x_local,
    }


def _worker(rank, world_size, data):
    """Everything one rank does; runs in a spawned process."""
    out = {"cases": [], "local": []}
    for case in data["cases"]:
        out["cases"].append(
            sync_bn_shard_step(
                rank,
                world_size,
                case["x"],
                case["dy"],
                case["sizes"],
                case["weight"],
                case["bias"],
            )
        )
        # What plain data-parallel training computes: torch BN on this rank's shard alone.
        shard = _split(case["x"], case["sizes"])[rank]
        if shard.shape[0] * int(np.prod(shard.shape[2:])) < 2:
            out["local"].append(None)
            continue
        bn = {2: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d}[shard.ndim](
            3, dtype=torch.float64
        )
        with torch.no_grad():
            bn.weight.copy_(torch.from_numpy(case["weight"]))
            bn.bias.copy_(torch.from_numpy(case["bias"]))
        xs = torch.from_numpy(shard.copy()).requires_grad_()
        y = bn(xs)
        y.backward(
            torch.from_numpy(_split(case["dy"], case["sizes"])[rank].copy())
        )
        out["local"].append({"y": y.detach().numpy(), "dx": xs.grad.numpy()})

    layers = {
        m: SyncBatchNorm(3, momentum=m, dtype=torch.float64)
        for m in (0.1, None)
    }
    untracked = SyncBatchNorm(
        3, track_running_stats=False, dtype=torch.float64
    )
    for x, sizes in zip(data["steps"], STEP_SIZES[world_size], strict=True):
        shard = torch.from_numpy(_split(x, sizes)[rank].copy())
        for layer in (*layers.values(), untracked):
            layer(shard)
    out["running"] = {
        m: (
            layer.running_mean.numpy(),
            layer.running_var.numpy(),
            int(layer.num_batches_tracked),
        )
        for m, layer in layers.items()
    }
    # Evaluation mode communicates nothing: rank 0 alone evaluates, after the others have left.
    if rank == 0:
        out["eval"] = {
            m: layer.eval()(torch.from_numpy(data["x_eval"])).detach().numpy()
            for m, layer in layers.items()
        }
        out["untracked_eval"] = (
            untracked
            .eval()(torch.from_numpy(data["x_local"]))
            .detach()
            .numpy()
        )
    return out


@pytest.fixture(scope="module", params=[2, 3], ids=lambda w: f"{w}-ranks")
def ranks(request):
    """(world_size, data, per-rank results) of one spawn of _worker."""
    data = _cases(request.param)
    return (
        request.param,
        data,
        spawn_ranks(_worker, request.param, data, timeout=20),
    )


# --------------------------------------------------------------------------- processes: the claims


def test_sync_bn_outputs_equal_full_batch_bn(ranks):
    """Concatenated over ranks, synchronized BN's outputs equal torch BN on the
    whole batch (uneven shards)."""
    _, data, results = ranks
    for i, case in enumerate(data["cases"]):
        y_ref, _, _, _ = _full_batch_bn(
            case["x"], case["dy"], case["weight"], case["bias"]
        )
        y = np.concatenate([r["cases"][i]["y"] for r in results])
        assert rel_err(y, y_ref) <= RTOL64


def test_sync_bn_input_gradients_equal_full_batch_bn(ranks):
    """Every rank's input gradient is its rows of the full-batch BN input gradient."""
    _, data, results = ranks
    for i, case in enumerate(data["cases"]):
        _, dx_ref, _, _ = _full_batch_bn(
            case["x"], case["dy"], case["weight"], case["bias"]
        )
        for r, dx_ref_rows in zip(
            results, _split(dx_ref, case["sizes"]), strict=True
        ):
            if len(dx_ref_rows):
                assert rel_err(r["cases"][i]["dx"], dx_ref_rows) <= RTOL64


def test_parameter_gradients_add_up_to_full_batch_gradients(ranks):
    """The ranks' weight and bias gradients sum to the full-batch gradients (DDP's
    all-reduce averages them)."""
    _, data, results = ranks
    for i, case in enumerate(data["cases"]):
        _, _, dw_ref, db_ref = _full_batch_bn(
            case["x"], case["dy"], case["weight"], case["bias"]
        )
        assert (
            rel_err(sum(r["cases"][i]["weight_grad"] for r in results), dw_ref)
            <= RTOL64
        )
        assert (
            rel_err(sum(r["cases"][i]["bias_grad"] for r in results), db_ref)
            <= RTOL64
        )


def test_every_rank_holds_bitwise_identical_statistics(ranks):
    """All ranks merge the same gathered rows in the same order, so their running
    statistics are identical."""
    _, _, results = ranks
    for r in results[1:]:
        for m in (0.1, None):
            assert all(
                np.array_equal(a, b)
                for a, b in zip(
                    r["running"][m], results[0]["running"][m], strict=True
                )
            )


def test_unsynchronized_bn_is_global_bn_then_a_per_rank_affine_map(ranks):
    """Per-rank BN equals gamma*(a_k x_hat + b_k) + beta, with a_k = s/s_k
    and b_k = (mu - mu_k)/s_k."""
    _, data, results = ranks
    compared = 0
    for i, case in enumerate(data["cases"]):
        axes = (0, *range(2, case["x"].ndim))
        bshape = (1, -1) + (1,) * (case["x"].ndim - 2)
        mu, s = (
            case["x"].mean(axis=axes),
            np.sqrt(case["x"].var(axis=axes) + EPS),
        )
        for r, shard in zip(
            results, _split(case["x"], case["sizes"]), strict=True
        ):
            if r["local"][i] is None or len(shard) == len(case["x"]):
                continue  # no local BN, or the shard is the whole batch
            mu_k, s_k = (
                shard.mean(axis=axes),
                np.sqrt(shard.var(axis=axes) + EPS),
            )
            x_hat = (shard - mu.reshape(bshape)) / s.reshape(bshape)
            a, b = s / s_k, (mu - mu_k) / s_k
            predicted = case["weight"].reshape(bshape) * (
                a.reshape(bshape) * x_hat + b.reshape(bshape)
            )
            predicted += case["bias"].reshape(bshape)
            assert rel_err(r["local"][i]["y"], predicted) <= RTOL64
            assert np.abs(b).max() > 1e-3  # the shards' statistics do differ
            compared += 1
    assert compared >= 3


def test_unsynchronized_gradient_is_the_shard_own_bn_gradient(ranks):
    """Without synchronization each rank's input gradient is the BN gradient of its shard alone."""
    _, data, results = ranks
    for i, case in enumerate(data["cases"]):
        dys = _split(case["dy"], case["sizes"])
        for k, (r, shard) in enumerate(
            zip(results, _split(case["x"], case["sizes"]), strict=True)
        ):
            if r["local"][i] is not None and len(shard) < len(case["x"]):
                _, cache = batch_norm_forward(
                    shard, case["weight"], case["bias"]
                )
                assert (
                    rel_err(
                        r["local"][i]["dx"],
                        batch_norm_backward(dys[k], cache)[0],
                    )
                    <= RTOL64
                )
                assert rel_err(r["local"][i]["dx"], r["cases"][i]["dx"]) > 1e-3


def test_a_rank_with_no_examples_takes_part(ranks):
    """A rank with an empty shard joins both collectives, returns an empty output and
    zero parameter gradients."""
    _, data, results = ranks
    empty = [
        (i, k)
        for i, case in enumerate(data["cases"])
        for k, n in enumerate(case["sizes"])
        if n == 0
    ]
    assert empty
    for i, k in empty:
        r = results[k]["cases"][i]
        assert r["y"].shape == r["dx"].shape == (0, 3)
        assert not r["weight_grad"].any() and not r["bias_grad"].any()


@pytest.mark.parametrize("momentum", [0.1, None])
def test_running_statistics_follow_bn_on_the_concatenated_batches(
    ranks, momentum
):
    """Running mean, unbiased variance (global count) and num_batches_tracked equal
    torch BN fed whole batches."""
    _, data, results = ranks
    ref = torch.nn.BatchNorm1d(3, momentum=momentum, dtype=torch.float64)
    for x in data["steps"]:
        ref(t(x))
    for r in results:
        mean, var, n = r["running"][momentum]
        assert rel_err(mean, ref.running_mean.numpy()) <= RTOL64
        assert rel_err(var, ref.running_var.numpy()) <= RTOL64
        assert n == int(ref.num_batches_tracked) == 3


@pytest.mark.parametrize("momentum", [0.1, None])
def test_eval_uses_running_statistics_without_communicating(ranks, momentum):
    """In eval mode rank 0 alone normalizes one example with the running
    statistics, as torch BN would."""
    _, data, results = ranks
    ref = torch.nn.BatchNorm1d(3, momentum=momentum, dtype=torch.float64)
    for x in data["steps"]:
        ref(t(x))
    expected = ref.eval()(t(data["x_eval"])).detach().numpy()
    assert rel_err(results[0]["eval"][momentum], expected) <= RTOL64


def test_eval_without_running_statistics_uses_the_rank_own_batch(ranks):
    """With track_running_stats=False, eval mode normalizes with the rank's own
    batch statistics (no sync)."""
    _, data, results = ranks
    ref = torch.nn.BatchNorm1d(
        3, track_running_stats=False, dtype=torch.float64
    ).eval()
    expected = ref(t(data["x_local"])).detach().numpy()
    assert rel_err(results[0]["untracked_eval"], expected) <= RTOL64


def _torch_sync_bn_on_cpu_worker(rank, world_size):
    """torch.nn.SyncBatchNorm in training mode on a CPU input, with a process group initialized."""
    layer = torch.nn.SyncBatchNorm(3)
    try:
        layer(torch.randn(4, 3))
    except ValueError as error:
        return str(error)
    return None


def test_torch_sync_batchnorm_refuses_a_cpu_input_even_in_a_one_rank_group():
    """torch checks the device before the world size: in training mode with any process group, a CPU
    input raises, one rank included."""
    [message] = spawn_ranks(_torch_sync_bn_on_cpu_worker, 1, timeout=20)
    assert message is not None
    assert message.startswith(
        "SyncBatchNorm expected input tensor to be on GPU"
    ), message


# --------------------------------------------------------------------------- processes: failures


def _crash_worker(rank, world_size):
    """Rank 1 feeds the wrong number of channels, so it raises before the all_gather."""
    torch.distributed.barrier()  # both ranks are past init_process_group before rank 1 fails
    layer = SyncBatchNorm(3, dtype=torch.float64)
    return float(
        layer(torch.randn(4, 2 if rank == 1 else 3, dtype=torch.float64)).sum()
    )


def _stall_worker(rank, world_size, seconds):
    """Rank 1 never reaches the collective: it waits longer than the process
    group's timeout, then returns."""
    if rank == 1:
        time.sleep(seconds)
        return None
    return float(
        SyncBatchNorm(3, dtype=torch.float64)(
            torch.randn(4, 3, dtype=torch.float64)
        ).sum()
    )


def test_a_rank_that_raises_fails_every_rank_with_a_clear_error():
    """When one rank raises before the collective, the run ends promptly with its error and the
    peer's, naming both ranks."""
    start = time.monotonic()
    with pytest.raises(RankFailure) as info:
        spawn_ranks(_crash_worker, 2, timeout=20)
    assert time.monotonic() - start < 20 + 30
    errors = info.value.errors
    assert (
        errors[1]
        == "ValueError: expected 3 channels on axis 1, got 2 (input shape (4, 2))"
    ), errors
    assert errors[0].startswith(
        "RuntimeError: SyncBatchNorm: the all_gather of the shard statistics failed on rank 0 of 2"
    ), errors


def test_a_rank_that_never_arrives_makes_the_peer_time_out():
    """A peer stuck outside the collective makes the waiting rank raise after the
    group's timeout, not hang."""
    timeout = 3.0
    start = time.monotonic()
    with pytest.raises(RankFailure) as info:
        spawn_ranks(_stall_worker, 2, timeout + 2.0, timeout=timeout)
    elapsed = time.monotonic() - start
    assert list(info.value.errors) == [0], info.value.errors
    assert (
        "all_gather of the shard statistics failed on rank 0 of 2"
        in info.value.errors[0]
    ), info.value.errors
    assert timeout <= elapsed < timeout + 30
