r"""Group normalization and instance normalization in NumPy (Wu & He, 2018; Ulyanov et al., 2016).

All four common normalizations compute $\hat x_i = (x_i - \mu_i)/\sigma_i$ with

$$\mu_i = \frac1m \sum_{k \in S_i} x_k, \qquad
\sigma_i = \sqrt{\frac1m \sum_{k \in S_i} (x_k - \mu_i)^2 + \epsilon}$$

and differ only in the set $S_i$ of $m$ elements that element $i$ is normalized with. For
an ``(N, C, H, W)`` tensor and an index $i = (i_N, i_C, i_H, i_W)$:

| Method | $S_i$ | statistics over |
|---|---|---|
| batch norm | $\{k : k_C = i_C\}$ | (N, H, W), per channel |
| layer norm | $\{k : k_N = i_N\}$ | (C, H, W), per example |
| instance norm | $\{k : k_N = i_N,\ k_C = i_C\}$ | (H, W), per example and channel |
| group norm | $\{k : k_N = i_N,\ \lfloor k_C / (C/G) \rfloor = \lfloor i_C / (C/G) \rfloor\}$ | (C/G, H, W), per example and group |

[`normalization_mask`][bnnotes.groupnorm.normalization_mask] returns $S_i$ as a boolean
array, which is what a figure of the four methods draws. Group norm with $G = 1$ is layer
norm over (C, H, W) and with $G = C$ it is instance norm; both are checked in the tests.
Group and instance norm follow the layer with a per-channel scale $\gamma$ and shift $\beta$.

References
----------
- Y. Wu and K. He, "Group Normalization", ECCV 2018, arXiv:1803.08494.
- D. Ulyanov, A. Vedaldi and V. Lempitsky, "Instance Normalization: The Missing
  Ingredient for Fast Stylization", arXiv:1607.08022, 2016.
"""  # noqa: E501 (a Markdown table row cannot be wrapped)

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from bnnotes import _kernels as kernels
from bnnotes import _validation as check
from bnnotes._layers import (
    NormLayer,
    fixed_affine_backward,
    fixed_affine_cache,
)
from bnnotes.batchnorm import DEFAULT_EPS, batch_norm_inference

__all__ = [
    "DEFAULT_EPS",
    "METHODS",
    "GroupNorm",
    "GroupNormCache",
    "InstanceNorm",
    "group_norm_backward",
    "group_norm_forward",
    "instance_norm_backward",
    "instance_norm_forward",
    "normalization_mask",
    "normalization_set",
]

METHODS = ("batch", "layer", "instance", "group")
"""The method names [`normalization_mask`][bnnotes.groupnorm.normalization_mask] accepts."""


def _check_input(x) -> np.ndarray:
    """An input (N, C, *spatial) with values in every axis but N (an empty batch is fine)."""
    x = check.channels_input(x)
    check.nonempty_axes(x.shape, tuple(range(1, x.ndim)))
    return x


@dataclass(frozen=True)
class GroupNormCache:
    r"""What [`group_norm_forward`][bnnotes.groupnorm.group_norm_forward]
    keeps for the backward pass.

    Attributes
    ----------
    x_hat : numpy.ndarray
        The normalized input, shape of the input.
    mean : numpy.ndarray
        $\mu$ per example and group, shape ``(N, G)``.
    var : numpy.ndarray
        The biased (1/m) variance per example and group, shape ``(N, G)``.
    inv_std : numpy.ndarray
        $1/\sqrt{\sigma^2 + \epsilon}$, shape ``(N, G)``.
    gamma : numpy.ndarray or None
        The per-channel scale used in the forward pass (None means 1).
    eps : float
        The $\epsilon$ used in the forward pass.
    num_groups : int
        $G$.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.groupnorm import group_norm_forward
    >>> x = np.arange(12.0).reshape(1, 4, 3)
    >>> _, cache = group_norm_forward(x, 2)
    >>> cache.mean.tolist(), cache.num_groups
    ([[2.5, 8.5]], 2)
    """

    x_hat: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    inv_std: np.ndarray
    gamma: np.ndarray | None
    eps: float
    num_groups: int


def group_norm_forward(
    x: np.ndarray,
    num_groups: int,
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    eps: float = DEFAULT_EPS,
) -> tuple[np.ndarray, GroupNormCache]:
    r"""Group normalization: statistics per example over groups of $C/G$ channels.

    Parameters
    ----------
    x : numpy.ndarray
        Input of shape ``(N, C)`` or ``(N, C, *spatial)`` with a floating dtype.
    num_groups : int
        $G$, a divisor of $C$. Channels $c$ and $c'$ share statistics when
        $\lfloor c/(C/G) \rfloor = \lfloor c'/(C/G) \rfloor$ (consecutive channels, as in PyTorch).
    gamma, beta : numpy.ndarray or None, optional
        Per-channel scale and shift of shape ``(C,)``; None means 1 and 0.
    eps : float, optional
        $\epsilon > 0$ added to the variance, default ``1e-5``.

    Returns
    -------
    y : numpy.ndarray
        $y = \gamma_c \hat x + \beta_c$, same shape and dtype as ``x``.
    cache : GroupNormCache
        What [`group_norm_backward`][bnnotes.groupnorm.group_norm_backward] needs.

    Raises
    ------
    TypeError
        If ``x``, ``gamma`` or ``beta`` does not have a floating dtype.
    ValueError
        If ``x`` has fewer than 2 dimensions or an axis of size 0 other than N (an empty
        batch gives an empty output, as in PyTorch), ``num_groups`` is not a
        positive divisor of $C$, a group holds a single value ($C/G \cdot \prod\text{spatial}
        = 1$), a channel vector has the wrong shape, ``eps <= 0``, or a value is not finite.

    Notes
    -----
    Each group of an example holds $m = (C/G)\prod\text{spatial}$ values. A group of one
    value is refused, as [`instance_norm_forward`][bnnotes.groupnorm.instance_norm_forward]
    refuses a single spatial value: the value is its own mean, so the output would be
    $\beta$ whatever the input. This differs from PyTorch:
    ``torch.nn.functional.group_norm`` returns that $\beta$ without a word.
    ``num_groups=1`` is layer normalization over ``(C, *spatial)`` followed by a per-channel
    affine map, and ``num_groups=C`` is instance normalization.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.groupnorm import group_norm_forward
    >>> x = np.random.default_rng(0).normal(1.0, 3.0, size=(2, 6, 4, 4))
    >>> y, cache = group_norm_forward(x, num_groups=3)
    >>> cache.mean.shape
    (2, 3)
    >>> groups = y.reshape(2, 3, -1)  # 2 channels x 16 positions per group
    >>> (
    ...     bool(np.allclose(groups.mean(axis=2), 0.0)),
    ...     bool(np.allclose(groups.var(axis=2), 1.0, atol=1e-4)),
    ... )
    (True, True)
    """
    x = _check_input(x)
    n, c = x.shape[:2]
    num_groups = check.num_groups(num_groups, c)
    per_group, spatial = c // num_groups, math.prod(x.shape[2:])
    if per_group * spatial < 2:
        raise ValueError(
            f"group norm needs more than 1 value per group, got {per_group} channel per group x "
            f"{spatial} spatial value = 1 (input shape {x.shape}, num_groups={num_groups}); "
            "the output would be beta whatever the input"
        )
    gamma = check.optional_vector(gamma, (c,), "gamma")
    beta = check.optional_vector(beta, (c,), "beta")
    eps = check.eps_value(eps)

    rows = x.reshape(n * num_groups, per_group * spatial)
    x_hat, mean, var, inv_std = kernels.normalize_rows(rows, eps)
    x_hat = x_hat.reshape(x.shape)
    y = x_hat
    bshape = kernels.channel_shape(x.ndim)
    if gamma is not None:
        y = y * gamma.astype(x.dtype, copy=False).reshape(bshape)
    if beta is not None:
        y = y + beta.astype(x.dtype, copy=False).reshape(bshape)
    if (
        y is x_hat
    ):  # no affine map: a copy, so that changing y in place cannot change the cache
        y = x_hat.copy(order="K")
    grid = (n, num_groups)
    cache = GroupNormCache(
        x_hat=x_hat,
        mean=mean.reshape(grid),
        var=var.reshape(grid),
        inv_std=inv_std.reshape(grid),
        gamma=gamma,
        eps=eps,
        num_groups=num_groups,
    )
    return y, cache


def group_norm_backward(
    dy: np.ndarray, cache: GroupNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gradients of group normalization.

    Parameters
    ----------
    dy : numpy.ndarray
        Upstream gradient, same shape as the forward input.
    cache : GroupNormCache
        The cache returned by [`group_norm_forward`][bnnotes.groupnorm.group_norm_forward]
        or [`instance_norm_forward`][bnnotes.groupnorm.instance_norm_forward].

    Returns
    -------
    dx : numpy.ndarray
        $\partial\ell/\partial x$, same shape as ``dy``.
    dgamma, dbeta : numpy.ndarray
        $\sum \frac{\partial\ell}{\partial y}\hat x$ and $\sum \frac{\partial\ell}{\partial y}$
        over every axis but 1, shape ``(C,)``.

    Raises
    ------
    TypeError
        If ``dy`` does not have a floating dtype, or ``cache`` is not a
        [`GroupNormCache`][bnnotes.groupnorm.GroupNormCache].
    ValueError
        If ``dy`` does not have the input's shape or is not finite.

    Notes
    -----
    Within each group of $m$ values, with $\delta = \gamma_c\,\partial\ell/\partial y$,
    $\partial\ell/\partial x_i
    = \big(\delta_i - \bar\delta - \hat x_i\,\overline{\delta\hat x}\big)/\sqrt{\sigma^2+\epsilon}$,
    the same formula as for batch and layer normalization over a different set $S_i$.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.groupnorm import group_norm_backward, group_norm_forward
    >>> rng = np.random.default_rng(1)
    >>> x, dy = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 4, 3))
    >>> _, cache = group_norm_forward(x, 2, gamma=rng.normal(size=4))
    >>> dx, dgamma, dbeta = group_norm_backward(dy, cache)
    >>> bool(
    ...     np.allclose(dx.reshape(2, 2, -1).sum(axis=2), 0.0)
    ... )  # each group's gradient sums to 0
    True
    """
    check.cache_of(
        cache, GroupNormCache, "group_norm_forward or instance_norm_forward"
    )
    dy = check.same_shape(dy, cache.x_hat.shape)
    n = dy.shape[0]
    axes = (0, *range(2, dy.ndim))
    dgamma = (dy * cache.x_hat).sum(axis=axes)
    dbeta = dy.sum(axis=axes)
    dx_hat = (
        dy
        if cache.gamma is None
        else dy
        * cache.gamma.astype(dy.dtype, copy=False).reshape(
            kernels.channel_shape(dy.ndim)
        )
    )
    rows = (n * cache.num_groups, dy.size // max(n * cache.num_groups, 1))
    dx = kernels.rows_input_grad(
        dx_hat.reshape(rows),
        cache.x_hat.reshape(rows),
        cache.inv_std.reshape(-1),
    )
    return dx.reshape(dy.shape), dgamma, dbeta


def instance_norm_forward(
    x: np.ndarray,
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    eps: float = DEFAULT_EPS,
) -> tuple[np.ndarray, GroupNormCache]:
    r"""Instance normalization: statistics per example and channel over the spatial axes.

    This is [`group_norm_forward`][bnnotes.groupnorm.group_norm_forward] with one group per
    channel, $G = C$, and equals ``torch.nn.functional.instance_norm`` with
    ``use_input_stats=True``.

    Parameters
    ----------
    x : numpy.ndarray
        Input of shape ``(N, C, *spatial)`` with more than one spatial value.
    gamma, beta : numpy.ndarray or None, optional
        Per-channel scale and shift of shape ``(C,)``.
    eps : float, optional
        $\epsilon > 0$, default ``1e-5``.

    Returns
    -------
    y : numpy.ndarray
        Same shape and dtype as ``x``.
    cache : GroupNormCache
        For [`instance_norm_backward`][bnnotes.groupnorm.instance_norm_backward]; its
        ``mean`` and ``var`` have shape ``(N, C)``.

    Raises
    ------
    TypeError, ValueError
        As [`group_norm_forward`][bnnotes.groupnorm.group_norm_forward], and a ValueError
        when there is only one spatial value (PyTorch refuses it too: the output would be
        $\beta$ whatever the input).

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.groupnorm import instance_norm_forward
    >>> x = np.random.default_rng(2).normal(size=(2, 3, 5, 5))
    >>> y, cache = instance_norm_forward(x)
    >>> cache.var.shape, bool(np.allclose(y.mean(axis=(2, 3)), 0.0))
    ((2, 3), True)
    """
    x = _check_input(x)
    if math.prod(x.shape[2:]) <= 1:
        raise ValueError(
            f"instance norm needs more than 1 spatial value per channel, got input shape {x.shape}"
        )
    return group_norm_forward(x, x.shape[1], gamma, beta, eps)


def instance_norm_backward(
    dy: np.ndarray, cache: GroupNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gradients of instance normalization:
    [`group_norm_backward`][bnnotes.groupnorm.group_norm_backward] with $G = C$.

    Returns
    -------
    dx, dgamma, dbeta : numpy.ndarray
        As for group normalization.

    Raises
    ------
    TypeError
        If ``cache`` is not the cache of
        [`instance_norm_forward`][bnnotes.groupnorm.instance_norm_forward] (a group norm
        cache with fewer groups than channels is refused), or ``dy`` is not floating.
    ValueError
        If ``dy`` does not have the input's shape or is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.groupnorm import (
    ...     instance_norm_backward,
    ...     instance_norm_forward,
    ... )
    >>> rng = np.random.default_rng(3)
    >>> x, dy = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3, 4))
    >>> dx, _, _ = instance_norm_backward(dy, instance_norm_forward(x)[1])
    >>> bool(np.allclose(dx.sum(axis=2), 0.0))
    True
    """
    check.cache_of(cache, GroupNormCache, "instance_norm_forward")
    if cache.num_groups != cache.x_hat.shape[1]:
        raise TypeError(
            f"cache must be the GroupNormCache returned by instance_norm_forward, got the "
            f"cache of a group norm with {cache.num_groups} groups of "
            f"{cache.x_hat.shape[1]} channels"
        )
    return group_norm_backward(dy, cache)


# --------------------------------------------------------------------------- the layers


class GroupNorm(NormLayer):
    r"""A group normalization layer with PyTorch's semantics, in NumPy.

    The counterpart of ``torch.nn.GroupNorm``, with the conventions of
    [`BatchNorm`][bnnotes.batchnorm.BatchNorm]: ``train()`` / ``eval()``, the parameters
    ``weight`` and ``bias``, a ``state_dict`` with torch's keys, and a
    [`backward`][bnnotes.groupnorm.GroupNorm.backward] that sets ``weight_grad`` and
    ``bias_grad``.

    Parameters
    ----------
    num_groups : int
        $G$, a divisor of ``num_channels``.
    num_channels : int
        $C$, the channels on axis 1 of the input.
    eps : float, optional
        $\epsilon > 0$ added to the variance, default ``1e-5``.
    affine : bool, optional
        Whether there is a per-channel scale ``weight`` (initialized to 1) and shift
        ``bias`` (initialized to 0). Default True.
    dtype : numpy dtype, optional
        Dtype of the parameters, default ``numpy.float64``.

    Raises
    ------
    TypeError, ValueError
        On a ``num_groups`` that is not a positive divisor of ``num_channels``, an ``eps``
        that is not a finite number > 0, or a non-floating dtype.

    Notes
    -----
    The statistics are per example, so training and evaluation mode compute the same
    thing. Unlike torch, a group of one value is refused (see
    [`group_norm_forward`][bnnotes.groupnorm.group_norm_forward]). A call that raises
    leaves every attribute as it was.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.groupnorm import GroupNorm
    >>> layer = GroupNorm(2, 4)
    >>> x = np.random.default_rng(0).normal(size=(3, 4, 5))
    >>> y = layer(x)
    >>> bool(np.allclose(y.reshape(3, 2, -1).mean(axis=2), 0.0))
    True
    >>> sorted(layer.state_dict())
    ['bias', 'weight']
    """

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = DEFAULT_EPS,
        affine: bool = True,
        dtype=np.float64,
    ) -> None:
        self.num_channels = check.positive_int(num_channels, "num_channels")
        self.num_groups = check.num_groups(num_groups, self.num_channels)
        self.eps = check.eps_value(eps)
        self.dtype = check.floating_dtype(dtype)
        self.affine = bool(affine)
        c = self.num_channels
        self.weight = np.ones(c, self.dtype) if self.affine else None
        self.bias = np.zeros(c, self.dtype) if self.affine else None
        self.training = True
        self.weight_grad = self.bias_grad = None
        self._cache = None

    def __repr__(self) -> str:
        return (
            f"GroupNorm({self.num_groups}, {self.num_channels}, eps={self.eps}, "
            f"affine={self.affine})"
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Normalize ``x`` of shape ``(N, C, *spatial)`` per example and group.

        Raises
        ------
        TypeError, ValueError
            As [`group_norm_forward`][bnnotes.groupnorm.group_norm_forward], and a
            ValueError when axis 1 of ``x`` does not hold ``num_channels`` channels.
        """
        check.channels_shape(np.shape(x), self.num_channels)
        y, self._cache = group_norm_forward(
            x, self.num_groups, self.weight, self.bias, self.eps
        )
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        r"""Gradient with respect to the input of the last forward call.

        Sets ``weight_grad`` and ``bias_grad`` (when ``affine``) and returns
        $\partial\ell/\partial x$.

        Raises
        ------
        RuntimeError
            If no forward pass has been made.
        TypeError, ValueError
            As [`group_norm_backward`][bnnotes.groupnorm.group_norm_backward].
        """
        dx, dgamma, dbeta = group_norm_backward(dy, self._last_cache())
        self._set_grads(dgamma, dbeta)
        return dx


class InstanceNorm(NormLayer):
    r"""An instance normalization layer with PyTorch's semantics, in NumPy.

    One class serves inputs ``(N, C, L)``, ``(N, C, H, W)`` and ``(N, C, D, H, W)``, like
    ``torch.nn.InstanceNorm1d/2d/3d`` together, with their ``affine`` and
    ``track_running_stats`` and the conventions of
    [`BatchNorm`][bnnotes.batchnorm.BatchNorm].

    Parameters
    ----------
    num_features : int
        Number of channels $C$ (axis 1 of the input).
    eps : float, optional
        $\epsilon > 0$ added to the variance, default ``1e-5``.
    momentum : float, optional
        Weight of the *new* value in the running averages, in ``[0, 1]``; default ``0.1``.
    affine : bool, optional
        Whether there is a per-channel scale ``weight`` (1) and shift ``bias`` (0).
        Default False, as in torch.
    track_running_stats : bool, optional
        Whether to keep ``running_mean``, ``running_var`` and ``num_batches_tracked`` and
        use them in evaluation mode. Default False, as in torch.
    dtype : numpy dtype, optional
        Dtype of the parameters and running statistics, default ``numpy.float64``.

    Raises
    ------
    TypeError, ValueError
        On a ``num_features`` that is not a positive integer, an ``eps`` that is not a
        finite number > 0, a ``momentum`` outside ``[0, 1]`` (None included), or a
        non-floating dtype.

    Notes
    -----
    Training mode (and evaluation mode without running statistics) normalizes every
    example and channel over its spatial values, as
    [`instance_norm_forward`][bnnotes.groupnorm.instance_norm_forward]. With
    ``track_running_stats`` a training call then updates, with $\alpha$ = ``momentum``,

    $$\hat\mu \leftarrow (1 - \alpha)\,\hat\mu + \alpha\,\overline{\mu_{n}}, \qquad
    \hat\sigma^2 \leftarrow (1 - \alpha)\,\hat\sigma^2
    + \alpha\,\overline{\tfrac{m}{m-1}\sigma^2_{n}},$$

    the bars averaging the $N$ examples' statistics of each channel ($m$ spatial values
    each), and evaluation mode applies the fixed map of
    [`batch_norm_inference`][bnnotes.batchnorm.batch_norm_inference] with them. As in
    torch, ``num_batches_tracked`` is kept for the state dict's keys and stays 0.

    Differences from torch: ``momentum=None`` is refused (torch's InstanceNorm then keeps
    the running statistics at their initial values without a word); the input must have
    ``num_features`` channels also without ``affine`` (torch only warns); an unbatched
    input ``(C, *spatial)`` is not accepted. A call that raises leaves every attribute as
    it was.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.groupnorm import InstanceNorm
    >>> layer = InstanceNorm(3, affine=True, track_running_stats=True)
    >>> x = np.random.default_rng(0).normal(2.0, 1.0, size=(4, 3, 8))
    >>> y = layer(x)
    >>> bool(np.allclose(y.mean(axis=2), 0.0))
    True
    >>> sorted(layer.state_dict())
    ['bias', 'num_batches_tracked', 'running_mean', 'running_var', 'weight']
    >>> layer.eval()(x[:1]).shape  # running statistics in evaluation mode
    (1, 3, 8)
    """

    def __init__(
        self,
        num_features: int,
        eps: float = DEFAULT_EPS,
        momentum: float = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        dtype=np.float64,
    ) -> None:
        self.num_features = check.positive_int(num_features, "num_features")
        self.eps = check.eps_value(eps)
        self.momentum = check.momentum_value(momentum, allow_none=False)
        self.dtype = check.floating_dtype(dtype)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        c = self.num_features
        self.weight = np.ones(c, self.dtype) if self.affine else None
        self.bias = np.zeros(c, self.dtype) if self.affine else None
        if self.track_running_stats:
            self.running_mean = np.zeros(c, self.dtype)
            self.running_var = np.ones(c, self.dtype)
            self.num_batches_tracked = 0
        else:
            self.running_mean = self.running_var = None
            self.num_batches_tracked = None
        self.training = True
        self.weight_grad = self.bias_grad = None
        self._cache = None

    def __repr__(self) -> str:
        return (
            f"InstanceNorm({self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats})"
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Normalize ``x`` of shape ``(N, C, *spatial)``; see the class notes for the modes.

        Raises
        ------
        TypeError, ValueError
            As [`instance_norm_forward`][bnnotes.groupnorm.instance_norm_forward] (in
            evaluation mode with running statistics, as
            [`batch_norm_inference`][bnnotes.batchnorm.batch_norm_inference]), and a
            ValueError when axis 1 of ``x`` does not hold ``num_features`` channels.
        """
        shape = np.shape(x)
        check.channels_shape(shape, self.num_features)
        if len(shape) < 3:
            raise ValueError(
                "expected an input with at least 3 dimensions (N, C, *spatial), "
                f"got shape {shape}"
            )
        if self.training or not self.track_running_stats:
            y, cache = instance_norm_forward(
                x, self.weight, self.bias, self.eps
            )
            if self.training and self.track_running_stats:
                self._update_running_stats(cache)
            self._cache = cache
            return y
        y = batch_norm_inference(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.eps,
        )
        self._cache = fixed_affine_cache(self, np.asarray(x))
        return y

    def _update_running_stats(self, cache: GroupNormCache) -> None:
        n = cache.mean.shape[0]
        if n == 0:  # an empty batch has no statistics to average
            return
        m = cache.x_hat[0, 0].size
        mean = cache.mean.mean(axis=0)
        unbiased = (cache.var * (m / (m - 1))).mean(axis=0)
        a = self.momentum
        # New arrays, assigned only after both are computed.
        running_mean = ((1.0 - a) * self.running_mean + a * mean).astype(
            self.dtype
        )
        running_var = ((1.0 - a) * self.running_var + a * unbiased).astype(
            self.dtype
        )
        self.running_mean, self.running_var = running_mean, running_var

    def backward(self, dy: np.ndarray) -> np.ndarray:
        r"""Gradient with respect to the input of the last forward call.

        Sets ``weight_grad`` and ``bias_grad`` (when ``affine``) and returns
        $\partial\ell/\partial x$. In evaluation mode with running statistics the layer
        is a fixed affine map per channel.

        Raises
        ------
        RuntimeError
            If no forward pass has been made.
        TypeError, ValueError
            As [`instance_norm_backward`][bnnotes.groupnorm.instance_norm_backward].
        """
        cache = self._last_cache()
        if isinstance(cache, GroupNormCache):
            dx, dgamma, dbeta = instance_norm_backward(dy, cache)
        else:
            dx, dgamma, dbeta = fixed_affine_backward(dy, cache)
        self._set_grads(dgamma, dbeta)
        return dx


# --------------------------------------------------------------------------- the sets S_i


def normalization_mask(
    method: str,
    shape: tuple[int, ...],
    index: tuple[int, ...],
    num_groups: int | None = None,
) -> np.ndarray:
    r"""The set $S_i$ of elements that element ``index`` is normalized with, as a boolean array.

    Parameters
    ----------
    method : {"batch", "layer", "instance", "group"}
        The normalization.
    shape : tuple of int
        Shape of the tensor, ``(N, C, *spatial)``.
    index : tuple of int
        The element $i$, one index per axis of ``shape`` (negative indices count from the end).
    num_groups : int or None
        $G$; required for ``"group"`` (a divisor of $C$), refused for the other methods.

    Returns
    -------
    numpy.ndarray
        Boolean array of shape ``shape``, True on $S_i$. Its mean and variance over the True
        entries are the statistics the method uses for element $i$.

    Raises
    ------
    TypeError
        If ``index`` is not a sequence of integers (a bool, float or str entry is refused).
    ValueError
        On an unknown method, a shape with fewer than 2 axes or a non-positive size, an
        index of the wrong length or out of range, or a missing or invalid ``num_groups``.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.groupnorm import normalization_mask
    >>> shape = (2, 4, 3, 3)
    >>> [
    ...     int(
    ...         normalization_mask(
    ...             m,
    ...             shape,
    ...             (0, 1, 0, 0),
    ...             num_groups=2 if m == "group" else None,
    ...         ).sum()
    ...     )
    ...     for m in ("batch", "layer", "instance", "group")
    ... ]
    [18, 36, 9, 18]
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    shape = tuple(shape)
    if len(shape) < 2 or any(
        isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1
        for s in shape
    ):
        raise ValueError(
            f"shape must be (N, C, *spatial) with positive integer sizes, got {shape}"
        )
    if isinstance(index, (str, bytes)):
        raise TypeError(
            f"index must be a sequence of integers, got the string {index!r}"
        )
    try:
        index = tuple(index)
    except TypeError:
        raise TypeError(
            f"index must be a sequence of integers, got {type(index).__name__}"
        ) from None
    bad = [
        i for i in index if isinstance(i, bool) or not isinstance(i, Integral)
    ]
    if bad:
        raise TypeError(
            f"index entries must be integers (not bool, float or str), got {bad[0]!r} "
            f"of type {type(bad[0]).__name__} in {index!r}"
        )
    if len(index) != len(shape):
        raise ValueError(
            f"index must have {len(shape)} entries for shape {shape}, got {index}"
        )
    if any(not -s <= i < s for i, s in zip(index, shape, strict=True)):
        raise ValueError(f"index {index} is out of range for shape {shape}")
    index = tuple(int(i) % s for i, s in zip(index, shape, strict=True))
    if method == "group":
        if num_groups is None:
            raise ValueError("method 'group' needs num_groups")
        num_groups = check.num_groups(num_groups, shape[1])
    elif num_groups is not None:
        raise ValueError(
            f"num_groups applies to method 'group' only, got num_groups={num_groups!r} with "
            f"{method!r}"
        )

    n_idx = np.arange(shape[0]).reshape((-1,) + (1,) * (len(shape) - 1))
    c_idx = np.arange(shape[1]).reshape(kernels.channel_shape(len(shape)))
    same_n = n_idx == index[0]
    same_c = c_idx == index[1]
    if method == "batch":
        mask = same_c
    elif method == "layer":
        mask = same_n
    elif method == "instance":
        mask = same_n & same_c
    else:
        per_group = shape[1] // num_groups
        mask = same_n & (c_idx // per_group == index[1] // per_group)
    return np.broadcast_to(mask, shape).copy()


def normalization_set(
    method: str,
    shape: tuple[int, ...],
    index: tuple[int, ...],
    num_groups: int | None = None,
) -> frozenset[tuple[int, ...]]:
    r"""The set $S_i$ as a set of index tuples; see
    [`normalization_mask`][bnnotes.groupnorm.normalization_mask].

    Returns
    -------
    frozenset of tuple of int
        Every index $k$ with $k \in S_i$.

    Raises
    ------
    ValueError
        As [`normalization_mask`][bnnotes.groupnorm.normalization_mask].

    Examples
    --------
    >>> from bnnotes.groupnorm import normalization_set
    >>> sorted(normalization_set("instance", (2, 2, 2), (1, 0, 1)))
    [(1, 0, 0), (1, 0, 1)]
    """
    mask = normalization_mask(method, shape, index, num_groups)
    return frozenset(tuple(int(i) for i in k) for k in np.argwhere(mask))
