r"""Batch normalization in NumPy: Algorithm 1 and 2 of Ioffe & Szegedy (2015).

The functions here follow the paper's notation. For an input of shape ``(N, C)`` or
``(N, C, *spatial)`` every channel ``c`` is normalized with statistics taken over all
axes but axis 1, that is over $m = N \cdot \prod \text{spatial}$ values.

The layer [`BatchNorm`][bnnotes.batchnorm.BatchNorm] adds PyTorch's conventions on top: the
momentum of the running averages weights the *new* value, the running variance is the unbiased
estimate, ``momentum=None`` gives a cumulative average, and evaluation mode uses the running
statistics unless they are not tracked.

References
----------
- S. Ioffe and C. Szegedy, "Batch Normalization: Accelerating Deep Network Training
  by Reducing Internal Covariate Shift", ICML 2015, arXiv:1502.03167.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from bnnotes import _kernels as kernels
from bnnotes import _validation as check
from bnnotes._layers import (
    NormLayer,
    fixed_affine_backward,
    fixed_affine_cache,
)

__all__ = [
    "DEFAULT_EPS",
    "BatchNorm",
    "BatchNormCache",
    "batch_norm_backward",
    "batch_norm_forward",
    "batch_norm_inference",
    "fold_batch_norm",
    "population_statistics",
]

DEFAULT_EPS = 1e-5
r"""The default $\epsilon$ of every function and of the layer in this
module; it equals PyTorch's."""


# --------------------------------------------------------------------------- Algorithm 1


@dataclass(frozen=True)
class BatchNormCache:
    r"""What the forward pass keeps for the backward pass.

    Attributes
    ----------
    x_hat : numpy.ndarray
        The normalized input
        $\hat x_i = (x_i - \mu_\mathcal{B}) / \sqrt{\sigma^2_\mathcal{B} + \epsilon}$.
    mean : numpy.ndarray
        $\mu_\mathcal{B}$, one value per channel.
    var : numpy.ndarray
        $\sigma^2_\mathcal{B}$, the biased (1/m) variance, one value per channel.
    inv_std : numpy.ndarray
        $1 / \sqrt{\sigma^2_\mathcal{B} + \epsilon}$, one value per channel.
    gamma : numpy.ndarray or None
        The scale used in the forward pass (None means $\gamma = 1$).
    eps : float
        The $\epsilon$ used in the forward pass.
    m : int
        Number of values per channel, $N \cdot \prod \text{spatial}$.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.batchnorm import batch_norm_forward
    >>> x = np.array([[1.0, 2.0], [3.0, 6.0]])
    >>> _, cache = batch_norm_forward(x, None, None, eps=1e-12)
    >>> cache.m, cache.mean.tolist(), cache.var.tolist()
    (2, [2.0, 4.0], [1.0, 4.0])
    >>> cache.x_hat.round(6).tolist()
    [[-1.0, -1.0], [1.0, 1.0]]
    """

    x_hat: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    inv_std: np.ndarray
    gamma: np.ndarray | None
    eps: float
    m: int


def batch_norm_forward(
    x: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    eps: float = DEFAULT_EPS,
) -> tuple[np.ndarray, BatchNormCache]:
    r"""Batch normalizing transform over a mini-batch (Algorithm 1 of the paper).

    Parameters
    ----------
    x : numpy.ndarray
        Input of shape ``(N, C)`` or ``(N, C, *spatial)`` with a floating dtype.
    gamma : numpy.ndarray or None
        Per-channel scale $\gamma$ of shape ``(C,)``; None means no scale ($\gamma = 1$).
    beta : numpy.ndarray or None
        Per-channel shift $\beta$ of shape ``(C,)``; None means no shift ($\beta = 0$).
    eps : float, optional
        The constant $\epsilon > 0$ added to the variance. Default ``1e-5``.

    Returns
    -------
    y : numpy.ndarray
        The output $y_i = \gamma \hat x_i + \beta$, same shape and dtype as ``x``.
    cache : BatchNormCache
        The quantities [`batch_norm_backward`][bnnotes.batchnorm.batch_norm_backward] needs.

    Raises
    ------
    TypeError
        If ``x`` (or ``gamma``, ``beta``) does not have a floating dtype.
    ValueError
        If ``x`` has fewer than 2 dimensions, a channel vector has the wrong shape, there
        is only one value per channel, ``eps <= 0``, or any value is not finite.

    Notes
    -----
    With $m$ values per channel,

    $$\mu_\mathcal{B} = \frac1m \sum_{i=1}^m x_i, \qquad
    \sigma^2_\mathcal{B} = \frac1m \sum_{i=1}^m (x_i - \mu_\mathcal{B})^2, \qquad
    \hat x_i = \frac{x_i - \mu_\mathcal{B}}{\sqrt{\sigma^2_\mathcal{B} + \epsilon}}, \qquad
    y_i = \gamma \hat x_i + \beta .$$

    The variance is computed in two passes (first the mean, then the mean of squared
    deviations), never as $E[x^2] - E[x]^2$, which loses every significant digit when
    the mean is large against the spread.

    References
    ----------
    Ioffe & Szegedy (2015), Algorithm 1.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.batchnorm import batch_norm_forward
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, size=(8, 4))
    >>> y, cache = batch_norm_forward(x, np.ones(4), np.zeros(4))
    >>> (
    ...     bool(np.allclose(y.mean(axis=0), 0.0)),
    ...     bool(np.allclose(y.var(axis=0), 1.0, atol=1e-4)),
    ... )
    (True, True)
    >>> cache.m
    8
    """
    x = check.channels_input(x, finite=False)
    # sum_i x_i per channel, for the mean: a nan or inf in x shows in it
    sum_x = check.finite_channel_sum(x, "input")
    eps = check.eps_value(eps)
    gamma = check.channel_vector(gamma, x.shape[1], "gamma")
    beta = check.channel_vector(beta, x.shape[1], "beta")
    m = kernels.values_per_channel(x.shape)
    check.more_than_one_value(
        m, "channel", x.shape, " to compute batch statistics"
    )

    # mu_B = 1/m sum_i x_i, and x_i - mu_B (two passes: centered_channels)
    mu, x_minus_mu = kernels.centered_channels(x, sum_x)
    # sigma2_B = 1/m sum_i (x_i - mu_B)^2
    var = kernels.channel_dot(x_minus_mu, x_minus_mu) / m
    # x_hat_i = (x_i - mu_B) / sqrt(sigma2_B + eps), in place of x_i - mu_B
    inv_std = 1.0 / np.sqrt(var + np.asarray(eps, dtype=x.dtype))
    x_hat = kernels.scale_channels(x_minus_mu, inv_std)
    # y_i = gamma x_hat_i + beta
    y = kernels.affine_channels(x_hat, gamma, beta)

    cache = BatchNormCache(
        x_hat=x_hat,
        mean=mu,
        var=var,
        inv_std=inv_std,
        gamma=gamma,
        eps=eps,
        m=m,
    )
    return y, cache


def batch_norm_backward(
    dy: np.ndarray,
    cache: BatchNormCache,
    *,
    form: Literal["compact", "paper"] = "compact",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gradients of the batch normalizing transform.

    Parameters
    ----------
    dy : numpy.ndarray
        Upstream gradient $\partial\ell/\partial y$, same shape as the forward input.
    cache : BatchNormCache
        The cache returned by [`batch_norm_forward`][bnnotes.batchnorm.batch_norm_forward].
    form : {"compact", "paper"}, optional
        ``"paper"`` evaluates the chain rule step by step as printed in the paper (through
        $\partial\ell/\partial\sigma^2_\mathcal{B}$ and $\partial\ell/\partial\mu_\mathcal{B}$);
        ``"compact"`` (the default) evaluates the simplified closed form. Both give the same
        result up to rounding.

    Returns
    -------
    dx : numpy.ndarray
        $\partial\ell/\partial x$, same shape as ``dy``.
    dgamma : numpy.ndarray
        $\partial\ell/\partial\gamma = \sum_i \frac{\partial\ell}{\partial y_i}\hat x_i$, shape
        ``(C,)`` (the gradient with respect to the scale even when the forward pass used none).
    dbeta : numpy.ndarray
        $\partial\ell/\partial\beta = \sum_i \frac{\partial\ell}{\partial y_i}$, shape ``(C,)``.

    Raises
    ------
    ValueError
        If ``dy`` does not have the forward output's shape, contains non-finite values, or
        ``form`` is unknown.
    TypeError
        If ``dy`` does not have a floating dtype, or ``cache`` is not the
        [`BatchNormCache`][bnnotes.batchnorm.BatchNormCache] of a forward pass.

    Notes
    -----
    The paper's chain rule, with $s = \sqrt{\sigma^2_\mathcal{B} + \epsilon}$:

    $$\frac{\partial\ell}{\partial\hat x_i} = \frac{\partial\ell}{\partial y_i}\gamma, \qquad
    \frac{\partial\ell}{\partial\sigma^2_\mathcal{B}} = \sum_i \frac{\partial\ell}{\partial\hat x_i}
    (x_i - \mu_\mathcal{B}) \cdot \frac{-1}{2} s^{-3},$$

    $$\frac{\partial\ell}{\partial\mu_\mathcal{B}} = \sum_i
    \frac{\partial\ell}{\partial\hat x_i}\cdot\frac{-1}{s}
    + \frac{\partial\ell}{\partial\sigma^2_\mathcal{B}}
    \cdot\frac{\sum_i -2(x_i - \mu_\mathcal{B})}{m},$$

    $$\frac{\partial\ell}{\partial x_i} = \frac{\partial\ell}{\partial\hat x_i}\cdot\frac1s
    + \frac{\partial\ell}{\partial\sigma^2_\mathcal{B}}\cdot\frac{2(x_i - \mu_\mathcal{B})}{m}
    + \frac{\partial\ell}{\partial\mu_\mathcal{B}}\cdot\frac1m .$$

    Since $\sum_i (x_i - \mu_\mathcal{B}) = 0$ and $x_i - \mu_\mathcal{B} = s\,\hat x_i$, it
    collapses to the compact form

    $$\frac{\partial\ell}{\partial x_i} = \frac{\gamma}{m s}\Big(m\frac{\partial\ell}{\partial y_i}
    - \sum_j \frac{\partial\ell}{\partial y_j} - \hat x_i \sum_j
    \frac{\partial\ell}{\partial y_j}\hat x_j\Big),$$

    which is exact for any $\epsilon$.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.batchnorm import batch_norm_forward, batch_norm_backward
    >>> rng = np.random.default_rng(1)
    >>> x, dy = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    >>> y, cache = batch_norm_forward(
    ...     x, rng.normal(size=3), rng.normal(size=3)
    ... )
    >>> dx, dgamma, dbeta = batch_norm_backward(dy, cache)
    >>> dx_paper, _, _ = batch_norm_backward(dy, cache, form="paper")
    >>> bool(np.allclose(dx, dx_paper, rtol=1e-12, atol=1e-14))
    True
    >>> bool(
    ...     np.allclose(dx.sum(axis=0), 0.0)
    ... )  # the gradient is orthogonal to a shift of x
    True
    """
    check.cache_of(cache, BatchNormCache, "batch_norm_forward")
    dy = check.floating(dy, "dy")
    check.output_shape(dy, cache.x_hat.shape)
    if form not in ("compact", "paper"):
        raise ValueError(f"form must be 'compact' or 'paper', got {form!r}")
    x_hat, m = cache.x_hat, cache.m
    gamma = (
        np.ones_like(cache.inv_std)
        if cache.gamma is None
        else cache.gamma.astype(dy.dtype, copy=False)
    )

    # dl/dbeta = sum_i dl/dy_i (a nan or inf in dy shows in the sum)
    dbeta = check.finite_channel_sum(dy, "dy")
    # dl/dgamma = sum_i dl/dy_i x_hat_i
    dgamma = kernels.channel_dot(dy, x_hat)
    if form == "paper":
        return _paper_input_grad(dy, cache, gamma), dgamma, dbeta
    # dl/dx_i = gamma / (m s) (m dl/dy_i - dl/dbeta - x_hat_i dl/dgamma),
    # evaluated as gamma / s (dl/dy_i - x_hat_i dl/dgamma / m - dl/dbeta / m)
    dx = kernels.batch_norm_input_grad(
        dy, x_hat, dgamma / m, dbeta / m, gamma * cache.inv_std
    )
    return dx, dgamma, dbeta


def _paper_input_grad(
    dy: np.ndarray, cache: BatchNormCache, gamma: np.ndarray
) -> np.ndarray:
    """dl/dx by the paper's chain rule, term by term, through dl/dsigma2_B and dl/dmu_B."""
    bshape = kernels.channel_shape(dy.ndim)
    m = cache.m
    s = 1.0 / cache.inv_std  # sqrt(sigma2_B + eps)
    x_minus_mu = cache.x_hat * s.reshape(bshape)
    # dl/dx_hat_i = dl/dy_i gamma
    dx_hat = dy * gamma.reshape(bshape)
    # dl/dsigma2_B = sum_i dl/dx_hat_i (x_i - mu_B) (-1/2) s^-3
    dvar = kernels.channel_dot(dx_hat, x_minus_mu) * (-0.5) * s**-3
    # dl/dmu_B = sum_i dl/dx_hat_i (-1/s) + dl/dsigma2_B sum_i -2 (x_i - mu_B) / m
    dmean = (
        kernels.channel_sum(dx_hat) * (-1.0 / s)
        + dvar * (-2.0 * kernels.channel_sum(x_minus_mu)) / m
    )
    # dl/dx_i = dl/dx_hat_i / s + dl/dsigma2_B 2 (x_i - mu_B) / m + dl/dmu_B / m
    return (
        dx_hat * (1.0 / s).reshape(bshape)
        + dvar.reshape(bshape) * 2.0 * x_minus_mu / m
        + dmean.reshape(bshape) / m
    )


def batch_norm_inference(
    x: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    eps: float = DEFAULT_EPS,
) -> np.ndarray:
    r"""Batch normalization with fixed statistics: one affine map per channel.

    Parameters
    ----------
    x : numpy.ndarray
        Input of shape ``(N, C)`` or ``(N, C, *spatial)``; any ``N``, including 1.
    mean, var : numpy.ndarray
        Population (or running) mean $E[x]$ and variance $\mathrm{Var}[x]$, shape ``(C,)``.
    gamma, beta : numpy.ndarray or None
        Per-channel scale and shift, or None for $\gamma = 1$, $\beta = 0$.
    eps : float, optional
        $\epsilon > 0$, default ``1e-5``.

    Returns
    -------
    numpy.ndarray
        $y = \frac{\gamma}{\sqrt{\mathrm{Var}[x] + \epsilon}}\, x
        + \Big(\beta - \frac{\gamma E[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}}\Big)$,
        same shape and dtype as ``x``.

    Raises
    ------
    TypeError, ValueError
        On the same kinds of bad input as
        [`batch_norm_forward`][bnnotes.batchnorm.batch_norm_forward], and on a negative variance.

    Notes
    -----
    This is line 11 of the paper's Algorithm 2: at inference the transform is a fixed
    affine map, so each output depends on its own input only.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.batchnorm import batch_norm_inference
    >>> y = batch_norm_inference(
    ...     np.array([[1.0], [3.0]]),
    ...     np.array([2.0]),
    ...     np.array([4.0]),
    ...     None,
    ...     None,
    ...     eps=1e-12,
    ... )
    >>> bool(np.allclose(y.ravel(), [-0.5, 0.5]))
    True
    """
    x = check.channels_input(x)
    eps = check.eps_value(eps)
    c = x.shape[1]
    mean = check.channel_vector(mean, c, "mean")
    var = check.channel_vector(var, c, "var")
    if (var < 0).any():
        raise ValueError("var must be >= 0 in every channel")
    gamma = check.channel_vector(gamma, c, "gamma")
    beta = check.channel_vector(beta, c, "beta")
    scale, shift = _affine_from_statistics(mean, var, gamma, beta, eps)
    bshape = kernels.channel_shape(x.ndim)
    y = x * scale.astype(x.dtype, copy=False).reshape(bshape)
    y += shift.astype(x.dtype, copy=False).reshape(bshape)
    return y


def _affine_from_statistics(mean, var, gamma, beta, eps):
    """Per-channel (scale, shift) of the inference-time BN map."""
    scale = 1.0 / np.sqrt(var + eps)
    if gamma is not None:
        scale = scale * gamma
    shift = -mean * scale
    if beta is not None:
        shift = shift + beta
    return scale, shift


# --------------------------------------------------------------------------- Algorithm 2


def population_statistics(
    batches: Iterable[np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    r"""Population mean and unbiased variance from mini-batches (Algorithm 2, line 10).

    Parameters
    ----------
    batches : iterable of numpy.ndarray
        Mini-batches of one shape ``(N, C, *spatial)`` (or ``(N, C)``), each with
        $m = N\cdot\prod\text{spatial} > 1$ values per channel. A generator is consumed once.

    Returns
    -------
    mean : numpy.ndarray
        $E[x] = E_\mathcal{B}[\mu_\mathcal{B}]$, shape ``(C,)``.
    var : numpy.ndarray
        $\mathrm{Var}[x] = \frac{m}{m-1} E_\mathcal{B}[\sigma^2_\mathcal{B}]$, shape ``(C,)``.

    Raises
    ------
    ValueError
        If there are no batches, the batches differ in shape, a batch has one value per
        channel, or a batch contains non-finite values.
    TypeError
        If a batch does not have a floating dtype.

    Notes
    -----
    Each $\sigma^2_\mathcal{B}$ is the biased (1/m) variance of its batch, so
    $E[\sigma^2_\mathcal{B}] = \frac{m-1}{m}\mathrm{Var}[x]$ for i.i.d. samples; the factor
    $\frac{m}{m-1}$ removes that bias. Averaging over batches of equal size is what the paper
    prescribes; with equal sizes, the average of the batch means is the overall mean.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.batchnorm import population_statistics
    >>> rng = np.random.default_rng(0)
    >>> data = rng.normal(1.0, 3.0, size=(20000, 2))
    >>> mean, var = population_statistics(
    ...     np.split(data, 5000)
    ... )  # 5000 batches of 4
    >>> bool(np.allclose(mean, data.mean(axis=0)))
    True
    >>> bool(np.allclose(var, 9.0, rtol=0.05))
    True
    """
    sum_mean = sum_var = None
    shape = None
    count = 0
    for batch in batches:
        batch = check.channels_input(batch)
        if shape is None:
            shape = batch.shape
            m = kernels.values_per_channel(shape)
            check.more_than_one_value(m, "channel", shape, " in each batch")
        elif batch.shape != shape:
            raise ValueError(
                f"all batches must have the same shape; batch {count} has shape {batch.shape}, "
                f"the first had {shape}"
            )
        mu, centered = kernels.centered_channels(batch)
        sigma2 = kernels.channel_dot(centered, centered) / m
        if sum_mean is None:
            sum_mean, sum_var = (
                mu.astype(np.float64),
                sigma2.astype(np.float64),
            )
        else:
            sum_mean += mu
            sum_var += sigma2
        count += 1
    if count == 0:
        raise ValueError("population_statistics needs at least one mini-batch")
    mean = sum_mean / count
    var = m / (m - 1) * (sum_var / count)
    return mean, var


# --------------------------------------------------------------------------- folding


def fold_batch_norm(
    weight: np.ndarray,
    bias: np.ndarray | None,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    eps: float = DEFAULT_EPS,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Fold an evaluation-mode BN into the linear or convolution layer before it.

    Parameters
    ----------
    weight : numpy.ndarray
        Weight of the preceding layer: ``(out, in)`` for a linear layer or
        ``(out, in, *kernel)`` for a convolution (``out`` is BN's channel count).
    bias : numpy.ndarray or None
        The layer's bias of shape ``(out,)``, or None for a layer without one.
    running_mean, running_var : numpy.ndarray
        BN's statistics, shape ``(out,)``.
    gamma, beta : numpy.ndarray or None
        BN's scale and shift, or None when BN has no affine parameters.
    eps : float, optional
        BN's $\epsilon > 0$, default ``1e-5``.

    Returns
    -------
    weight : numpy.ndarray
        $W' = \mathrm{diag}(\gamma / \sqrt{\mathrm{Var}[x] + \epsilon})\, W$ (scaled along axis 0).
    bias : numpy.ndarray
        $b' = (b - E[x])\,\gamma / \sqrt{\mathrm{Var}[x] + \epsilon} + \beta$.

    Raises
    ------
    TypeError, ValueError
        On a non-floating dtype, mismatched shapes, a negative variance, non-finite
        values or ``eps <= 0``.

    Notes
    -----
    At inference BN is $y = a \odot z + c$ with $a = \gamma/\sqrt{\mathrm{Var}[x]+\epsilon}$ and
    $c = \beta - a\,E[x]$, and the layer before it is $z = Wu + b$. Hence
    $y = (\mathrm{diag}(a) W) u + (a \odot b + c)$: one layer of the same shape. For a
    convolution the same holds per output channel, since convolution is linear in its weight.
    The formula is the one of ``torch.nn.utils.fusion.fuse_conv_bn_weights``.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.batchnorm import fold_batch_norm, batch_norm_inference
    >>> rng = np.random.default_rng(0)
    >>> W, b, u = (
    ...     rng.normal(size=(3, 5)),
    ...     rng.normal(size=3),
    ...     rng.normal(size=(4, 5)),
    ... )
    >>> mean, var = rng.normal(size=3), rng.uniform(0.5, 2.0, size=3)
    >>> gamma, beta = rng.normal(size=3), rng.normal(size=3)
    >>> W2, b2 = fold_batch_norm(W, b, mean, var, gamma, beta)
    >>> bool(
    ...     np.allclose(
    ...         u @ W2.T + b2,
    ...         batch_norm_inference(u @ W.T + b, mean, var, gamma, beta),
    ...     )
    ... )
    True
    """
    weight = check.finite_floating(weight, "weight")
    if weight.ndim < 2:
        raise ValueError(
            f"weight must have shape (out, in) or (out, in, *kernel), got {weight.shape}"
        )
    eps = check.eps_value(eps)
    out = weight.shape[0]
    bias = check.channel_vector(bias, out, "bias")
    running_mean = check.channel_vector(running_mean, out, "running_mean")
    running_var = check.channel_vector(running_var, out, "running_var")
    if (running_var < 0).any():
        raise ValueError("running_var must be >= 0 in every channel")
    gamma = check.channel_vector(gamma, out, "gamma")
    beta = check.channel_vector(beta, out, "beta")
    scale, shift = _affine_from_statistics(
        running_mean, running_var, gamma, beta, eps
    )
    new_weight = weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    new_bias = shift if bias is None else bias * scale + shift
    return new_weight, new_bias


# --------------------------------------------------------------------------- the layer


class BatchNorm(NormLayer):
    r"""A batch normalization layer with PyTorch's semantics, in NumPy.

    One class serves inputs of shape ``(N, C)``, ``(N, C, L)``, ``(N, C, H, W)`` and
    ``(N, C, D, H, W)``, like ``torch.nn.BatchNorm1d/2d/3d`` together.

    Parameters
    ----------
    num_features : int
        Number of channels $C$ (axis 1 of the input).
    eps : float, optional
        $\epsilon > 0$ added to the variance, default ``1e-5``.
    momentum : float or None, optional
        Weight of the *new* batch statistic in the running averages, in ``[0, 1]``;
        default ``0.1``. ``None`` gives a cumulative average over all batches seen.
    affine : bool, optional
        Whether the layer has a learnable scale ``weight`` ($\gamma$, initialized to 1) and
        shift ``bias`` ($\beta$, initialized to 0). Default True.
    track_running_stats : bool, optional
        Whether to keep ``running_mean``, ``running_var`` and ``num_batches_tracked``.
        Without them, evaluation mode normalizes with the batch's own statistics. Default True.
    dtype : numpy dtype, optional
        Dtype of the parameters and running statistics, default ``numpy.float64``.

    Attributes
    ----------
    weight, bias : numpy.ndarray or None
        $\gamma$ and $\beta$, shape ``(C,)``, or None when ``affine=False``.
    running_mean, running_var : numpy.ndarray or None
        Running estimates of the mean and the *unbiased* variance; None when not tracked.
    num_batches_tracked : int or None
        Number of training batches that updated the running statistics.
    training : bool
        True in training mode (the default), False after ``eval()``.
    weight_grad, bias_grad : numpy.ndarray or None
        Gradients from the last [`backward`][bnnotes.batchnorm.BatchNorm.backward] call.

    Notes
    -----
    In training mode the layer normalizes with the batch statistics (biased variance) and
    then updates, with $\alpha$ = ``momentum``,

    $$\hat\mu \leftarrow (1 - \alpha)\,\hat\mu + \alpha\,\mu_\mathcal{B}, \qquad
    \hat\sigma^2 \leftarrow (1 - \alpha)\,\hat\sigma^2 +
    \alpha\,\tfrac{m}{m-1}\sigma^2_\mathcal{B},$$

    with $\alpha = 1/t$ at the $t$-th batch when ``momentum`` is None. Frameworks that
    weight the old value (Keras, Flax, MindSpore) use $1 - \alpha$ as their "momentum".
    A call that raises leaves every attribute as it was.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.batchnorm import BatchNorm
    >>> layer = BatchNorm(3, momentum=1.0)
    >>> x = np.random.default_rng(0).normal(5.0, 2.0, size=(16, 3, 4, 4))
    >>> y = layer(x)
    >>> bool(np.allclose(layer.running_var, x.var(axis=(0, 2, 3), ddof=1)))
    True
    >>> layer.num_batches_tracked
    1
    >>> y_eval = layer.eval()(x[:1])  # one example is fine in evaluation mode
    >>> y_eval.shape
    (1, 3, 4, 4)
    """

    def __init__(
        self,
        num_features: int,
        eps: float = DEFAULT_EPS,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype=np.float64,
    ) -> None:
        num_features = check.positive_int(num_features, "num_features")
        self.eps = check.eps_value(eps)
        momentum = check.momentum_value(momentum)
        dtype = check.floating_dtype(dtype)
        self.num_features = num_features
        self.momentum = momentum
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.dtype = dtype
        self.weight = np.ones(num_features, dtype) if affine else None
        self.bias = np.zeros(num_features, dtype) if affine else None
        if track_running_stats:
            self.running_mean = np.zeros(num_features, dtype)
            self.running_var = np.ones(num_features, dtype)
            self.num_batches_tracked = 0
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = (
                None
            )
        self.training = True
        self.weight_grad = self.bias_grad = None
        self._cache = None

    def __repr__(self) -> str:
        return (
            f"BatchNorm({self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats})"
        )

    # -- forward / backward ----------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        r"""Normalize ``x`` of shape ``(N, C, *spatial)``.

        Batch statistics are used in training mode, and in evaluation mode when running
        statistics are not tracked; otherwise the running statistics are used.

        Raises
        ------
        TypeError
            If ``x`` does not have a floating dtype.
        ValueError
            If ``x`` has fewer than 2 dimensions, the wrong channel count, non-finite
            values, or one value per channel where batch statistics are needed.
        """
        # Finiteness is checked by batch_norm_forward or batch_norm_inference, not twice.
        x = check.channels_input(x, self.num_features, finite=False)
        if self.training or self.running_mean is None:
            y, cache = batch_norm_forward(x, self.weight, self.bias, self.eps)
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
        self._cache = fixed_affine_cache(self, x)
        return y

    def _update_running_stats(self, cache: BatchNormCache) -> None:
        self.num_batches_tracked += 1
        factor = (
            1.0 / self.num_batches_tracked
            if self.momentum is None
            else self.momentum
        )
        unbiased = cache.var * (cache.m / (cache.m - 1))
        # New arrays (no aliasing of any input or cache array), assigned only after success.
        self.running_mean = (
            (1.0 - factor) * self.running_mean + factor * cache.mean
        ).astype(self.dtype)
        self.running_var = (
            (1.0 - factor) * self.running_var + factor * unbiased
        ).astype(self.dtype)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        r"""Gradient with respect to the input of the last
        [`forward`][bnnotes.batchnorm.BatchNorm.forward] call.

        Sets `weight_grad` and `bias_grad` (when ``affine``) and returns
        $\partial\ell/\partial x$. In evaluation mode with running statistics the layer is
        a fixed affine map, so
        $\partial\ell/\partial x = \gamma\,\partial\ell/\partial y / \sqrt{\hat\sigma^2+\epsilon}$.

        Raises
        ------
        RuntimeError
            If no forward pass has been made.
        ValueError
            If ``dy`` does not match the last input's shape or is not finite.
        """
        cache = self._last_cache()
        if isinstance(cache, BatchNormCache):
            dx, dgamma, dbeta = batch_norm_backward(dy, cache)
        else:
            dx, dgamma, dbeta = fixed_affine_backward(dy, cache)
        self._set_grads(dgamma, dbeta)
        return dx
