r"""Batch normalization across devices: merged moments, synchronized BN and ghost batches.

In data-parallel training each process holds a shard of the batch. Plain BN then
normalizes every shard with its own statistics; synchronized BN computes the statistics of
the whole batch by exchanging, per channel, the count, mean and sum of squared deviations
of each shard, and exchanges two gradient sums in the backward pass. Ghost BN goes the
other way: it normalizes virtual sub-batches of one large batch separately.

- [`shard_moments`][bnnotes.distributed.shard_moments] and
  [`merge_moments`][bnnotes.distributed.merge_moments]: per-shard moments and their
  numerically stable merge, in NumPy.
- [`SyncBatchNorm`][bnnotes.distributed.SyncBatchNorm]: a ``torch.nn.Module`` whose
  training forward and backward go through a custom ``torch.autograd.Function`` with
  ``torch.distributed`` collectives. Unlike ``torch.nn.SyncBatchNorm`` it runs on the CPU
  with the gloo backend.
- [`ghost_batch_norm`][bnnotes.distributed.ghost_batch_norm] and its backward, in NumPy.
- [`sync_bn_shard_step`][bnnotes.distributed.sync_bn_shard_step]: one rank's training step,
  to run in the processes that [`spawn_ranks`][bnnotes.processes.spawn_ranks] of
  ``bnnotes.processes`` starts.

References
----------
- T. F. Chan, G. H. Golub and R. J. LeVeque, "Algorithms for computing the sample
  variance: analysis and recommendations", The American Statistician 37(3), 1983.
- Y. Wu and K. He, "Group Normalization", ECCV 2018, arXiv:1803.08494.
- E. Hoffer, I. Hubara and D. Soudry, "Train longer, generalize better: closing the
  generalization gap in large batch training of neural networks", NeurIPS 2017,
  arXiv:1705.08741.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Integral
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.autograd.function import once_differentiable

from bnnotes import _kernels as kernels
from bnnotes import _validation as check
from bnnotes.batchnorm import (
    DEFAULT_EPS,
    BatchNormCache,
    batch_norm_backward,
    batch_norm_forward,
)

__all__ = [
    "SyncBatchNorm",
    "convert_sync_batchnorm",
    "ghost_batch_norm",
    "ghost_batch_norm_backward",
    "merge_moments",
    "shard_moments",
    "sync_bn_shard_step",
]


# --------------------------------------------------------------------------- moments


def shard_moments(x: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    r"""Count, mean and sum of squared deviations of one shard, per channel.

    Parameters
    ----------
    x : numpy.ndarray
        A shard of shape ``(n, C)`` or ``(n, C, *spatial)`` with a floating dtype; ``n`` may
        be 0 (a process that received no examples).

    Returns
    -------
    count : int
        $n_k = n \cdot \prod\text{spatial}$, the number of values per channel.
    mean : numpy.ndarray
        $\mu_k$, shape ``(C,)`` (zeros when the shard is empty).
    m2 : numpy.ndarray
        $M_{2,k} = \sum_i (x_i - \mu_k)^2$, shape ``(C,)`` (zeros when the shard is empty).

    Raises
    ------
    TypeError
        If ``x`` does not have a floating dtype.
    ValueError
        If ``x`` has fewer than 2 dimensions or contains non-finite values.

    Notes
    -----
    The mean is computed first and the squared deviations from it afterwards (two passes),
    so a large common offset in the data does not cancel digits.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.distributed import shard_moments
    >>> count, mean, m2 = shard_moments(np.array([[1.0], [2.0], [6.0]]))
    >>> count, mean.tolist(), m2.tolist()
    (3, [3.0], [14.0])
    """
    x = check.channels_input(x)
    count = kernels.values_per_channel(x.shape)
    if count == 0:
        zeros = np.zeros(x.shape[1], dtype=x.dtype)
        return 0, zeros, zeros.copy()
    mean, centered = kernels.centered_channels(x)
    return count, mean, kernels.channel_dot(centered, centered)


def _merge(counts, means, m2s, total):
    """The K-way merge on NumPy arrays or torch tensors alike: counts
    (K, 1), means and m2s (K, C)."""
    mean = (counts * means).sum(0) / total
    m2 = m2s.sum(0) + (counts * (means - mean) ** 2).sum(0)
    return mean, m2


def merge_moments(counts, means, m2s) -> tuple[int, np.ndarray, np.ndarray]:
    r"""Merge per-shard (count, mean, $M_2$) into the statistics of the union of the shards.

    Parameters
    ----------
    counts : sequence of int
        $n_k \ge 0$, the number of values (per channel) in each of the $K$ shards.
    means : array_like
        $\mu_k$, shape ``(K,)`` or ``(K, C)``; the value of a shard with $n_k = 0$ is
        ignored but must be finite.
    m2s : array_like
        $M_{2,k} = \sum_{i \in k}(x_i - \mu_k)^2 \ge 0$, same shape as ``means``.

    Returns
    -------
    count : int
        $N = \sum_k n_k$.
    mean : numpy.ndarray
        $\mu = \frac1N \sum_k n_k \mu_k$, shape ``means.shape[1:]``.
    m2 : numpy.ndarray
        $M_2 = \sum_i (x_i - \mu)^2$ over all shards; the biased variance is ``m2 / count``
        and the unbiased one ``m2 / (count - 1)``.

    Raises
    ------
    TypeError
        If ``counts`` are not integers or ``means``/``m2s`` are not floating.
    ValueError
        If the shapes disagree, a count or an $M_2$ is negative, a value is not finite, or
        all counts are 0.

    Notes
    -----
    Chan, Golub and LeVeque's update merges two parts $a$ and $b$ as
    $M_2 = M_{2,a} + M_{2,b} + \delta^2\, n_a n_b / (n_a + n_b)$ with $\delta = \mu_b - \mu_a$.
    For $K$ parts at once the same identity reads

    $$M_2 = \sum_k M_{2,k} + \sum_k n_k (\mu_k - \mu)^2,$$

    which follows from $x_i - \mu = (x_i - \mu_k) + (\mu_k - \mu)$ and
    $\sum_{i\in k}(x_i - \mu_k) = 0$. Every term is non-negative, so nothing cancels; the
    textbook $\sum x^2 - N\mu^2$ instead subtracts two nearly equal numbers when the mean is
    large against the spread.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.distributed import merge_moments, shard_moments
    >>> x = np.random.default_rng(0).normal(1e8, 1.0, size=(10, 2))
    >>> parts = [shard_moments(s) for s in (x[:3], x[3:4], x[4:])]
    >>> n, mean, m2 = merge_moments(*zip(*parts))
    >>> n, bool(np.allclose(m2 / n, x.var(axis=0), rtol=1e-6))
    (10, True)
    """
    counts_arr = np.asarray(counts)
    if counts_arr.ndim != 1 or counts_arr.size == 0:
        raise ValueError(
            f"counts must be a non-empty 1-d sequence, got shape {counts_arr.shape}"
        )
    if counts_arr.dtype == bool or not np.issubdtype(
        counts_arr.dtype, np.integer
    ):
        raise TypeError(
            f"counts must be integers, got dtype {counts_arr.dtype}"
        )
    if (counts_arr < 0).any():
        raise ValueError(f"counts must be >= 0, got {counts_arr.tolist()}")
    means = np.asarray(means)
    m2s = np.asarray(m2s)
    for name, value in (("means", means), ("m2s", m2s)):
        check.floating(value, name)
        if value.ndim == 0 or value.shape[0] != counts_arr.size:
            raise ValueError(
                f"{name} must have one row per shard ({counts_arr.size}), got shape {value.shape}"
            )
        check.finite_floating(value, name)
    if means.shape != m2s.shape:
        raise ValueError(
            f"means and m2s must have the same shape, got {means.shape} and {m2s.shape}"
        )
    if (m2s < 0).any():
        raise ValueError("m2s must be >= 0 (a sum of squares)")
    total = int(counts_arr.sum())
    if total == 0:
        raise ValueError("all counts are 0: there is nothing to merge")
    weights = counts_arr.astype(means.dtype).reshape(
        (-1,) + (1,) * (means.ndim - 1)
    )
    mean, m2 = _merge(weights, means, m2s, total)
    return total, mean, m2


# --------------------------------------------------------------------------- synchronized BN


def _spatial_axes(ndim: int) -> list[int]:
    return [0, *range(2, ndim)]


def _collective(what: str, op: Callable, *args, group) -> None:
    """Run a collective; turn a backend failure into an error that says what happened where."""
    try:
        op(*args, group=group)
    except (
        Exception
    ) as err:  # gloo raises RuntimeError subclasses (DistBackendError, ...)
        rank, world = dist.get_rank(), dist.get_world_size(group)
        raise RuntimeError(
            f"SyncBatchNorm: {what} failed on rank {rank} of {world}; another rank raised, "
            f"exited, or did not reach the collective within the process group's timeout "
            f"({type(err).__name__}: {err})"
        ) from err


class _SyncBatchNormFunction(torch.autograd.Function):
    """Training-mode BN whose statistics and gradient sums span a process group.

    forward returns (y, mean, biased var, total count); only y is differentiable.
    All arithmetic is done in float64 and y is cast back to the input's dtype.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps, group, sync):
        c = x.shape[1]
        axes = _spatial_axes(x.dim())
        bshape = kernels.channel_shape(x.dim())
        xd = x.to(torch.float64)
        count = x.numel() // c
        if count > 0:
            local_mean = xd.mean(dim=axes)
            local_m2 = ((xd - local_mean.view(bshape)) ** 2).sum(dim=axes)
        else:
            local_mean = local_m2 = torch.zeros(
                c, dtype=torch.float64, device=x.device
            )
        packed = torch.cat([
            torch.tensor([float(count)], dtype=torch.float64, device=x.device),
            local_mean,
            local_m2,
        ])
        if sync:
            # all_gather, not all_reduce: the ranks' counts differ, and every rank then merges
            # the same K rows in the same order, so the statistics are identical on all ranks.
            gathered = [
                torch.empty_like(packed)
                for _ in range(dist.get_world_size(group))
            ]
            _collective(
                "the all_gather of the shard statistics",
                dist.all_gather,
                gathered,
                packed,
                group=group,
            )
            rows = torch.stack(gathered)
        else:
            rows = packed.unsqueeze(0)
        counts, means, m2s = rows[:, :1], rows[:, 1 : c + 1], rows[:, c + 1 :]
        total = round(float(counts.sum()))
        if total < 2:
            raise ValueError(
                f"expected more than 1 value per channel to compute batch statistics, got {total} "
                f"in total (this rank's input shape {tuple(x.shape)})"
            )
        mean, m2 = _merge(counts, means, m2s, total)
        var = m2 / total
        inv_std = torch.rsqrt(var + eps)
        x_hat = (xd - mean.view(bshape)) * inv_std.view(bshape)
        y = x_hat
        if weight is not None:
            y = y * weight.to(torch.float64).view(bshape)
        if bias is not None:
            y = y + bias.to(torch.float64).view(bshape)
        ctx.save_for_backward(weight)
        ctx.x_hat, ctx.inv_std, ctx.total = x_hat, inv_std, total
        ctx.group, ctx.sync, ctx.x_dtype = group, sync, x.dtype
        ctx.bias_dtype = None if bias is None else bias.dtype
        mean, var = mean.to(x.dtype), var.to(x.dtype)
        ctx.mark_non_differentiable(mean, var)
        # a copy when y is still x_hat: the caller may change y in place, the backward pass
        # reads x_hat
        return y.to(x.dtype, copy=y is x_hat), mean, var, total

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, _dmean, _dvar, _dtotal):
        (weight,) = ctx.saved_tensors
        x_hat, inv_std, total = ctx.x_hat, ctx.inv_std, ctx.total
        axes = _spatial_axes(x_hat.dim())
        bshape = kernels.channel_shape(x_hat.dim())
        dyd = dy.to(torch.float64)
        sum_dy = dyd.sum(dim=axes)
        sum_dy_xhat = (dyd * x_hat).sum(dim=axes)
        dx = dweight = dbias = None
        if ctx.needs_input_grad[0]:
            sums = torch.cat([sum_dy, sum_dy_xhat])
            if ctx.sync:
                _collective(
                    "the all_reduce of the gradient sums",
                    dist.all_reduce,
                    sums,
                    group=ctx.group,
                )
            g_sum_dy, g_sum_dy_xhat = sums.chunk(2)
            gamma = (
                torch.ones_like(inv_std)
                if weight is None
                else weight.to(torch.float64)
            )
            # dx = gamma * inv_std / M * (M * dy - sum(dy) - x_hat * sum(dy * x_hat)),
            # sums over all ranks
            scale = (gamma * inv_std / total).view(bshape)
            dx = scale * (
                total * dyd
                - g_sum_dy.view(bshape)
                - x_hat * g_sum_dy_xhat.view(bshape)
            )
            dx = dx.to(ctx.x_dtype)
        if weight is not None and ctx.needs_input_grad[1]:
            dweight = sum_dy_xhat.to(
                weight.dtype
            )  # this rank's part; the ranks' parts add up
        if ctx.needs_input_grad[2]:
            dbias = sum_dy.to(ctx.bias_dtype)
        return dx, dweight, dbias, None, None, None


class SyncBatchNorm(torch.nn.Module):
    r"""Batch normalization whose training statistics span a ``torch.distributed`` process group.

    The semantics are those of ``torch.nn.SyncBatchNorm``; the implementation runs on any
    device whose backend has ``all_gather`` and ``all_reduce``, the CPU with gloo included.
    Second derivatives are not supported.

    Parameters
    ----------
    num_features : int
        Number of channels $C$ (axis 1 of the input). Inputs of any rank $\ge 2$ are
        accepted, ``(N, C)``, ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``.
    eps : float, optional
        $\epsilon > 0$ added to the variance, default ``1e-5``.
    momentum : float or None, optional
        Weight of the *new* statistic in the running averages, in ``[0, 1]``, default
        ``0.1``; None gives a cumulative average.
    affine : bool, optional
        Whether to learn a per-channel scale ``weight`` and shift ``bias``. Default True.
    track_running_stats : bool, optional
        Whether to keep ``running_mean``, ``running_var`` and ``num_batches_tracked``. Default True.
    process_group : torch.distributed.ProcessGroup or None, optional
        The group whose ranks share statistics; None means the default (world) group.
    device, dtype : optional
        Device and dtype of the parameters and buffers.

    Raises
    ------
    ValueError
        If ``num_features`` is not a positive integer, ``eps <= 0`` or ``momentum`` is
        outside ``[0, 1]``.

    Notes
    -----
    In training mode, with a process group of more than one rank, every rank sends its
    per-channel $(n_k, \mu_k, M_{2,k})$ to all others (one ``all_gather``) and merges them as
    [`merge_moments`][bnnotes.distributed.merge_moments] does, so all ranks normalize with the
    mean $\mu$ and biased variance $\sigma^2 = M_2/M$ of the whole batch of $M = \sum_k n_k$
    values. The backward pass all-reduces $\sum_i \partial\ell/\partial y_i$ and
    $\sum_i \hat x_i\,\partial\ell/\partial y_i$ and applies

    $$\frac{\partial\ell}{\partial x_i} = \frac{\gamma}{M\sqrt{\sigma^2+\epsilon}}
    \Big(M\frac{\partial\ell}{\partial y_i} - \sum_j \frac{\partial\ell}{\partial y_j}
    - \hat x_i \sum_j \frac{\partial\ell}{\partial y_j}\hat x_j\Big),$$

    the sums running over all ranks. The gradients of ``weight`` and ``bias`` are each
    rank's own part; their sum over the ranks is the full-batch gradient (DDP's gradient
    all-reduce averages them).

    The running statistics are updated with the global mean and the unbiased variance
    $\frac{M}{M-1}\sigma^2$, on every rank alike. Evaluation mode uses the running statistics
    and communicates nothing; with ``track_running_stats=False`` it normalizes each rank's
    input with that rank's own statistics, as ``torch.nn.SyncBatchNorm`` does. Without an
    initialized process group, or with a group of one rank, the layer is plain BN.

    A call that raises leaves parameters and buffers as they were. An error on one rank
    before the collective makes the other ranks fail when the process group's timeout
    expires (or earlier, when the failing process exits), with a message naming the rank.

    Examples
    --------
    >>> import torch
    >>> from bnnotes.distributed import SyncBatchNorm
    >>> layer = SyncBatchNorm(
    ...     3, dtype=torch.float64
    ... )  # no process group: plain BN
    >>> x = torch.randn(8, 3, 4, dtype=torch.float64)
    >>> ref = torch.nn.BatchNorm1d(3, dtype=torch.float64)
    >>> bool(torch.allclose(layer(x), ref(x)))
    True
    >>> (
    ...     bool(torch.allclose(layer.running_var, ref.running_var)),
    ...     int(layer.num_batches_tracked),
    ... )
    (True, 1)
    """

    def __init__(
        self,
        num_features: int,
        eps: float = DEFAULT_EPS,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group: Any = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        num_features = check.positive_int(num_features, "num_features")
        eps = check.eps_value(eps)
        momentum = check.momentum_value(momentum)
        factory = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.process_group = process_group
        if self.affine:
            self.weight = torch.nn.Parameter(
                torch.ones(num_features, **factory)
            )
            self.bias = torch.nn.Parameter(
                torch.zeros(num_features, **factory)
            )
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer(
                "running_mean", torch.zeros(num_features, **factory)
            )
            self.register_buffer(
                "running_var", torch.ones(num_features, **factory)
            )
            self.register_buffer(
                "num_batches_tracked",
                torch.tensor(0, dtype=torch.long, device=device),
            )
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
        )

    def _sync_group(self):
        """(group, sync): whether this training call all-gathers, and over which group."""
        if not (dist.is_available() and dist.is_initialized()):
            return None, False
        group = (
            self.process_group
            if self.process_group is not None
            else dist.group.WORLD
        )
        return group, dist.get_world_size(group) > 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize ``x``; see the class notes for what is communicated and updated.

        Raises
        ------
        TypeError
            If ``x`` is not a floating tensor.
        ValueError
            If ``x`` has fewer than 2 dimensions, the wrong number of channels, non-finite
            values, or (in training) at most 1 value per channel across the group.
        RuntimeError
            If a collective fails: another rank raised, exited or timed out.
        """
        check.channels_tensor(x, self.num_features)
        if not self.training and self.running_mean is not None:
            bshape = kernels.channel_shape(x.dim())
            inv_std = torch.rsqrt(self.running_var + self.eps)
            y = (x - self.running_mean.view(bshape)) * inv_std.view(bshape)
            if self.weight is not None:
                y = y * self.weight.view(bshape)
            if self.bias is not None:
                y = y + self.bias.view(bshape)
            return y
        group, sync = self._sync_group() if self.training else (None, False)
        y, mean, var, total = _SyncBatchNormFunction.apply(
            x, self.weight, self.bias, self.eps, group, sync
        )
        if self.training and self.track_running_stats:
            with torch.no_grad():
                steps = int(self.num_batches_tracked) + 1
                factor = (
                    1.0 / steps if self.momentum is None else self.momentum
                )
                unbiased = var * (total / (total - 1))
                self.running_mean.mul_(1.0 - factor).add_(
                    factor * mean.to(self.running_mean.dtype)
                )
                self.running_var.mul_(1.0 - factor).add_(
                    factor * unbiased.to(self.running_var.dtype)
                )
                self.num_batches_tracked.add_(1)
        return y


def convert_sync_batchnorm(
    module: torch.nn.Module, process_group: Any = None
) -> torch.nn.Module:
    r"""Replace every ``torch.nn.BatchNorm1d/2d/3d`` (and ``torch.nn.SyncBatchNorm``) in a model by
    a [`SyncBatchNorm`][bnnotes.distributed.SyncBatchNorm].

    Parameters
    ----------
    module : torch.nn.Module
        The model (or a single BN layer).
    process_group : optional
        The group the new layers synchronize over; None means the world group.

    Returns
    -------
    torch.nn.Module
        ``module`` with its BN layers replaced in place, or a new layer when ``module``
        itself is a BN layer. The new layers share the old ones' parameters and buffers
        (the same tensor objects) and training flag, as
        ``torch.nn.SyncBatchNorm.convert_sync_batchnorm`` does.

    Raises
    ------
    TypeError
        If ``module`` is not a ``torch.nn.Module``.

    Examples
    --------
    >>> import torch
    >>> from bnnotes.distributed import SyncBatchNorm, convert_sync_batchnorm
    >>> net = torch.nn.Sequential(
    ...     torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU()
    ... )
    >>> bn_weight = net[1].weight
    >>> net = convert_sync_batchnorm(net)
    >>> type(net[1]).__name__, net[1].weight is bn_weight
    ('SyncBatchNorm', True)
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"module must be a torch.nn.Module, got {type(module).__name__}"
        )
    bn_types = (
        torch.nn.BatchNorm1d,
        torch.nn.BatchNorm2d,
        torch.nn.BatchNorm3d,
        torch.nn.SyncBatchNorm,
    )
    output = module
    if isinstance(module, bn_types):
        output = SyncBatchNorm(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
            process_group,
        )
        if module.affine:
            output.weight = module.weight
            output.bias = module.bias
        output.running_mean = module.running_mean
        output.running_var = module.running_var
        output.num_batches_tracked = module.num_batches_tracked
        output.training = module.training
    for name, child in module.named_children():
        output.add_module(name, convert_sync_batchnorm(child, process_group))
    return output


# --------------------------------------------------------------------------- ghost BN


def _virtual_batches(n: int, virtual_batch_size) -> list[slice]:
    if isinstance(virtual_batch_size, bool) or not isinstance(
        virtual_batch_size, Integral
    ):
        raise TypeError(
            f"virtual_batch_size must be an integer, got {virtual_batch_size!r}"
        )
    if virtual_batch_size < 1:
        raise ValueError(
            f"virtual_batch_size must be >= 1, got {virtual_batch_size}"
        )
    v = int(virtual_batch_size)
    return [slice(start, min(start + v, n)) for start in range(0, n, v)]


def ghost_batch_norm(
    x: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    virtual_batch_size: int,
    eps: float = DEFAULT_EPS,
) -> tuple[np.ndarray, list[BatchNormCache]]:
    r"""Ghost batch normalization: BN over consecutive virtual batches of a large batch.

    Parameters
    ----------
    x : numpy.ndarray
        Input of shape ``(N, C)`` or ``(N, C, *spatial)`` with a floating dtype.
    gamma, beta : numpy.ndarray or None
        Per-channel scale and shift shared by all virtual batches, or None.
    virtual_batch_size : int
        Number of examples per virtual batch. The examples ``[0, v)``, ``[v, 2v)``, ... form
        the virtual batches; the last one holds the remainder and may be smaller. A value
        ``>= N`` gives ordinary BN.
    eps : float, optional
        $\epsilon > 0$, default ``1e-5``.

    Returns
    -------
    y : numpy.ndarray
        The output, same shape and dtype as ``x``.
    caches : list of BatchNormCache
        One cache per virtual batch, for
        [`ghost_batch_norm_backward`][bnnotes.distributed.ghost_batch_norm_backward].

    Raises
    ------
    TypeError
        If ``virtual_batch_size`` is not an integer or ``x`` is not floating.
    ValueError
        If ``virtual_batch_size < 1``, a virtual batch would have only one value per
        channel, or any check of [`batch_norm_forward`][bnnotes.batchnorm.batch_norm_forward] fails.

    Notes
    -----
    Virtual batch $g$ of $m_g$ values per channel is normalized with its own
    $\mu_g$ and $\sigma^2_g$, $y_i = \gamma\,(x_i - \mu_g)/\sqrt{\sigma^2_g + \epsilon} + \beta$.
    Hoffer, Hubara and Soudry (2017) proposed it to keep the statistics as noisy as those of
    small batches when training with large ones.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.distributed import ghost_batch_norm
    >>> x = np.random.default_rng(0).normal(size=(10, 3))
    >>> y, caches = ghost_batch_norm(x, None, None, virtual_batch_size=4)
    >>> [c.m for c in caches]
    [4, 4, 2]
    >>> (
    ...     bool(np.allclose(y[:4].mean(axis=0), 0.0)),
    ...     bool(np.allclose(y[8:].mean(axis=0), 0.0)),
    ... )
    (True, True)
    """
    x = check.channels_input(x)
    eps = check.eps_value(eps)
    chunks = _virtual_batches(x.shape[0], virtual_batch_size)
    spatial = kernels.values_per_channel((1, *x.shape[1:]))
    for index, chunk in enumerate(chunks):
        size = chunk.stop - chunk.start
        if size * spatial < 2:
            raise ValueError(
                f"virtual batch {index} holds {size} example(s) of {spatial} value(s) per channel: "
                f"ghost batch normalization needs more than 1 value per channel in every virtual "
                f"batch (N={x.shape[0]}, virtual_batch_size={virtual_batch_size})"
            )
    outputs, caches = [], []
    for chunk in chunks:
        y, cache = batch_norm_forward(x[chunk], gamma, beta, eps)
        outputs.append(y)
        caches.append(cache)
    return np.concatenate(outputs, axis=0), caches


def ghost_batch_norm_backward(
    dy: np.ndarray, caches: Sequence[BatchNormCache]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gradients of [`ghost_batch_norm`][bnnotes.distributed.ghost_batch_norm].

    Parameters
    ----------
    dy : numpy.ndarray
        $\partial\ell/\partial y$, same shape as the forward input.
    caches : sequence of BatchNormCache
        The caches returned by the forward pass.

    Returns
    -------
    dx : numpy.ndarray
        $\partial\ell/\partial x$: each virtual batch's BN gradient, concatenated.
    dgamma, dbeta : numpy.ndarray
        The parameter gradients, summed over the virtual batches, shape ``(C,)``.

    Raises
    ------
    TypeError
        If ``caches`` is not a non-empty sequence of BatchNormCache.
    ValueError
        If ``dy`` does not have the forward output's shape or is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.distributed import (
    ...     ghost_batch_norm,
    ...     ghost_batch_norm_backward,
    ... )
    >>> rng = np.random.default_rng(1)
    >>> x, dy = rng.normal(size=(9, 2)), rng.normal(size=(9, 2))
    >>> y, caches = ghost_batch_norm(
    ...     x, np.ones(2), np.zeros(2), virtual_batch_size=3
    ... )
    >>> dx, dgamma, dbeta = ghost_batch_norm_backward(dy, caches)
    >>> bool(
    ...     np.allclose(dx[:3].sum(axis=0), 0.0)
    ... )  # each virtual batch's gradient sums to 0
    True
    """
    if (
        not isinstance(caches, Sequence)
        or not caches
        or not all(isinstance(c, BatchNormCache) for c in caches)
    ):
        raise TypeError(
            "caches must be the non-empty list of BatchNormCache returned by ghost_batch_norm"
        )
    expected = (
        sum(c.x_hat.shape[0] for c in caches),
        *caches[0].x_hat.shape[1:],
    )
    dy = check.same_shape(dy, expected)
    dxs, dgamma, dbeta, start = [], 0.0, 0.0, 0
    for cache in caches:
        stop = start + cache.x_hat.shape[0]
        dx, dg, db = batch_norm_backward(dy[start:stop], cache)
        dxs.append(dx)
        dgamma, dbeta, start = dgamma + dg, dbeta + db, stop
    return np.concatenate(dxs, axis=0), dgamma, dbeta


def sync_bn_shard_step(
    rank, world_size, x, dy, sizes, weight=None, bias=None, eps=DEFAULT_EPS
) -> dict:
    r"""One training step of [`SyncBatchNorm`][bnnotes.distributed.SyncBatchNorm] on
    this rank's shard of a batch.

    Meant to run under [`spawn_ranks`][bnnotes.processes.spawn_ranks]: rank $k$ takes
    examples ``sum(sizes[:k]) : sum(sizes[:k + 1])`` of ``x`` and ``dy``.

    Parameters
    ----------
    rank, world_size : int
        Supplied by ``spawn_ranks``.
    x, dy : numpy.ndarray
        The whole batch and the upstream gradient, float64, shape ``(N, C, *spatial)``.
    sizes : sequence of int
        Examples per rank, ``len(sizes) == world_size`` and ``sum(sizes) == N``; sizes may
        differ and may be 0.
    weight, bias : numpy.ndarray or None, optional
        $\gamma$ and $\beta$ (default 1 and 0).
    eps : float, optional
        $\epsilon$, default ``1e-5``.

    Returns
    -------
    dict
        NumPy arrays ``y``, ``dx`` (this rank's rows), ``weight_grad``, ``bias_grad`` (this
        rank's parts), ``running_mean``, ``running_var`` and the int ``num_batches_tracked``.

    Raises
    ------
    ValueError
        If ``sizes`` does not split ``x`` into ``world_size`` shards.

    Examples
    --------
    Without a process group (one process, rank 0 of 1) the step is plain BN on the batch:

    >>> import numpy as np
    >>> from bnnotes.distributed import sync_bn_shard_step
    >>> rng = np.random.default_rng(0)
    >>> x, dy = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    >>> out = sync_bn_shard_step(0, 1, x, dy, [6])
    >>> (
    ...     bool(np.allclose(out["y"].mean(axis=0), 0.0)),
    ...     out["num_batches_tracked"],
    ... )
    (True, 1)
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) != world_size or sum(sizes) != len(x) or min(sizes) < 0:
        raise ValueError(
            f"sizes {sizes} must split the {len(x)} examples into {world_size} shards"
        )
    start = sum(sizes[:rank])
    rows = slice(start, start + sizes[rank])
    layer = SyncBatchNorm(x.shape[1], eps=eps, dtype=torch.float64)
    with torch.no_grad():
        if weight is not None:
            layer.weight.copy_(torch.as_tensor(weight, dtype=torch.float64))
        if bias is not None:
            layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float64))
    shard = torch.tensor(x[rows], dtype=torch.float64, requires_grad=True)
    y = layer(shard)
    y.backward(torch.tensor(dy[rows], dtype=torch.float64))
    return {
        "y": y.detach().numpy(),
        "dx": shard.grad.numpy(),
        "weight_grad": layer.weight.grad.numpy(),
        "bias_grad": layer.bias.grad.numpy(),
        "running_mean": layer.running_mean.numpy(),
        "running_var": layer.running_var.numpy(),
        "num_batches_tracked": int(layer.num_batches_tracked),
    }
