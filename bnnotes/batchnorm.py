r"""Batch normalization in NumPy: Algorithm 1 and 2 of Ioffe & Szegedy (2015).

The functions here follow the paper's notation. For an input of shape ``(N, C)`` or
``(N, C, *spatial)`` every channel ``c`` is normalized with statistics taken over all
axes but axis 1, that is over $m = N \cdot \prod \text{spatial}$ values.

The layer [`BatchNorm`][bnnotes.batchnorm.BatchNorm] adds PyTorch's conventions on top: the momentum of the
running averages weights the *new* value, the running variance is the unbiased
estimate, ``momentum=None`` gives a cumulative average, and evaluation mode uses the
running statistics unless they are not tracked.

References
----------
- S. Ioffe and C. Szegedy, "Batch Normalization: Accelerating Deep Network Training
  by Reducing Internal Covariate Shift", ICML 2015, arXiv:1502.03167.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Callable, Iterable, Literal

import numpy as np

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
r"""The default $\epsilon$ of every function and of the layer in this module; it equals PyTorch's."""


# --------------------------------------------------------------------------- validation


def _check_floating(x: np.ndarray, name: str) -> np.ndarray:
    """Return ``x`` as an ndarray after checking that it has a floating dtype."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}")
    return x


def _check_float_array(x: np.ndarray, name: str) -> np.ndarray:
    """Return ``x`` as an ndarray after checking that it is floating and finite."""
    x = _check_floating(x, name)
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains non-finite values (nan or inf)")
    return x


def _checked_channel_sum(x: np.ndarray, name: str) -> np.ndarray | None:
    """Per-channel sum of a floating ``x``, checking on the way that ``x`` is finite.

    The sum is needed anyway (for the mean, or for dbeta), and a nan or inf in ``x`` makes
    it nan or inf, so only a non-finite sum calls for the full scan of
    ``_check_float_array``, which then raises. Returns None where the caller must do
    without the sum: a dtype other than float32 and float64, or finite values whose sum
    overflowed.
    """
    if x.dtype not in _BLAS_DTYPES:
        _check_float_array(x, name)
        return None
    total = _channel_sum(x)
    if np.isfinite(total).all():
        return total
    _check_float_array(x, name)
    return None


def _check_input(
    x: np.ndarray, num_features: int | None = None, *, finite: bool = True
) -> np.ndarray:
    """Check an input of shape (N, C, *spatial); ``finite=False`` leaves out the finiteness scan."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(
            f"expected an input with at least 2 dimensions (N, C, *spatial), "
            f"got shape {x.shape}"
        )
    if num_features is not None and x.shape[1] != num_features:
        raise ValueError(
            f"expected {num_features} channels on axis 1, got {x.shape[1]} "
            f"(input shape {x.shape})"
        )
    return (
        _check_float_array(x, "input")
        if finite
        else _check_floating(x, "input")
    )


def _check_eps(eps: float) -> float:
    if not isinstance(eps, Real) or not np.isfinite(eps) or eps <= 0:
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    return float(eps)


def _check_layer_args(
    num_features, eps, momentum
) -> tuple[int, float, float | None]:
    """Validate the constructor arguments shared by the BN layers; return them normalized."""
    if (
        isinstance(num_features, bool)
        or not isinstance(num_features, Integral)
        or num_features < 1
    ):
        raise ValueError(
            f"num_features must be a positive integer, got {num_features!r}"
        )
    eps = _check_eps(eps)
    if momentum is not None and (
        not isinstance(momentum, Real)
        or not np.isfinite(momentum)
        or not 0.0 <= momentum <= 1.0
    ):
        raise ValueError(
            f"momentum must be None or a number in [0, 1], got {momentum!r}"
        )
    return (
        int(num_features),
        eps,
        None if momentum is None else float(momentum),
    )


def _check_channel_vector(
    v, num_channels: int, name: str
) -> np.ndarray | None:
    if v is None:
        return None
    v = _check_float_array(v, name)
    if v.shape != (num_channels,):
        raise ValueError(
            f"{name} must have shape ({num_channels},), got {v.shape}"
        )
    return v


def _values_per_channel(shape: tuple[int, ...]) -> int:
    return int(shape[0] * math.prod(shape[2:]))


_BLAS_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _channel_sum(a: np.ndarray) -> np.ndarray:
    """Per-channel sum over every axis but 1 of a float32 or float64 array.

    For a C-ordered array it is a product with a vector of ones (BLAS, multithreaded): the
    sum over N of the ``(N, C * S)`` matrix, then over S per channel. It is faster than
    ``a.sum(axis=0)`` of that matrix and, for tall matrices, much more accurate in float32 (BLAS
    accumulates in blocks; numpy adds the N rows one after the other).
    """
    if not a.flags.c_contiguous or a.size == 0:
        return a.sum(axis=_reduce_axes(a.ndim))
    n, c = a.shape[:2]
    over_batch = np.ones(n, a.dtype) @ a.reshape(n, -1)
    return over_batch if a.ndim == 2 else over_batch.reshape(c, -1).sum(axis=1)


def _reduce_axes(ndim: int) -> tuple[int, ...]:
    return (0,) + tuple(range(2, ndim))


def _bshape(ndim: int) -> tuple[int, ...]:
    """Shape that broadcasts a per-channel vector against (N, C, *spatial)."""
    return (1, -1) + (1,) * (ndim - 2)


_ROW_LENGTH = (
    16384  # _rows_view puts several samples in a row up to this many values
)


def _rows_view(
    a: np.ndarray,
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """A C-ordered (N, C, *spatial) array seen as long rows, and how to lay a per-channel vector along one row.

    Broadcasting a ``(1, C, 1, ...)`` vector makes numpy run its inner loop once per
    (sample, channel) pair, over ``prod(spatial)`` values, and that per-call overhead costs as
    much as the arithmetic. Viewed as rows of ``k`` whole samples (``k`` a power of two that
    divides N), a per-channel vector becomes one row, each value repeated ``prod(spatial)``
    times and the whole ``k`` times, and the inner loop runs over whole rows. Arrays that are
    not C-ordered are returned as they are, with the usual ``(1, C, 1, ...)`` broadcast.
    """
    if not a.flags.c_contiguous or a.size == 0:
        bshape = _bshape(a.ndim)
        return a, lambda v: np.reshape(v, bshape)
    n = a.shape[0]
    sample = a.size // n
    spatial = sample // a.shape[1]
    k = 1
    while n % (2 * k) == 0 and 2 * k * sample <= _ROW_LENGTH:
        k *= 2

    def along(v: np.ndarray) -> np.ndarray:
        row = np.empty((k, v.size, spatial), np.result_type(v))
        row[...] = v[:, None]
        return row.reshape(-1)

    return a.reshape(n // k, k * sample), along


# --------------------------------------------------------------------------- Algorithm 1


@dataclass(frozen=True)
class BatchNormCache:
    r"""What the forward pass keeps for the backward pass.

    Attributes
    ----------
    x_hat : numpy.ndarray
        The normalized input $\hat x_i = (x_i - \mu_\mathcal{B}) / \sqrt{\sigma^2_\mathcal{B} + \epsilon}$.
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
    x = _check_input(x, finite=False)
    total = _checked_channel_sum(
        x, "input"
    )  # sum of x per channel, for the mean
    eps = _check_eps(eps)
    num_channels = x.shape[1]
    gamma = _check_channel_vector(gamma, num_channels, "gamma")
    beta = _check_channel_vector(beta, num_channels, "beta")
    m = _values_per_channel(x.shape)
    if m < 2:
        raise ValueError(
            f"expected more than 1 value per channel to compute batch statistics, "
            f"got input shape {x.shape}"
        )

    axes = _reduce_axes(x.ndim)
    bshape = _bshape(x.ndim)
    mean, x_hat = _centered(
        x, axes, bshape, total
    )  # x_hat holds x - mu until it is scaled below
    var = _centered_sum_of_squares(x_hat) / m
    inv_std = 1.0 / np.sqrt(var + np.asarray(eps, dtype=x.dtype))
    rows, along = _rows_view(
        x_hat
    )  # per-channel passes over long rows, see _rows_view
    rows *= along(inv_std)
    if gamma is None and beta is None:
        y = x_hat.copy(
            order="K"
        )  # a copy, so that changing y in place cannot change the cache
    else:
        # y = gamma * x_hat + beta: one new array, one pass per term, no copy of x_hat first.
        if gamma is not None:
            y = rows * along(gamma.astype(x.dtype, copy=False))
            if beta is not None:
                y += along(beta.astype(x.dtype, copy=False))
        else:
            y = rows + along(beta.astype(x.dtype, copy=False))
        y = y.reshape(x.shape)
    cache = BatchNormCache(
        x_hat=x_hat,
        mean=mean,
        var=var,
        inv_std=inv_std,
        gamma=gamma,
        eps=eps,
        m=m,
    )
    return y, cache


def _centered(
    x: np.ndarray,
    axes: tuple[int, ...],
    bshape: tuple[int, ...],
    total: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and the centered array ``x - mean`` (a new array).

    Below float64 the mean is subtracted in two parts, a rounded ``hi`` and the remainder
    ``lo``: ``x - hi`` is exact when x is close to the mean (Sterbenz), so a large common
    offset costs no accuracy in float32. Without ``total`` the mean is accumulated in
    float64 and split. With ``total``, the per-channel sum of a float32 or float64 ``x``,
    ``hi`` is ``total / m`` and ``lo`` is the mean of ``x - hi``: every value it sums is
    small, so it is accurate in float32, and both sums are BLAS products.
    """
    if total is not None:
        m = _values_per_channel(x.shape)
        hi = total / m
        rows, along = _rows_view(x)
        centered = np.subtract(
            rows, along(hi), out=np.empty(rows.shape, x.dtype)
        ).reshape(x.shape)
        if x.dtype == np.float64:
            return hi, centered
        lo = _channel_sum(centered) / m
        rows, along = _rows_view(centered)
        rows -= along(lo)
        return (hi.astype(np.float64) + lo).astype(x.dtype), centered
    if x.dtype == np.float64:
        mean = x.mean(axis=axes)
        return mean, x - mean.reshape(bshape)
    mean64 = x.mean(axis=axes, dtype=np.float64)
    hi = mean64.astype(x.dtype)
    lo = (mean64 - hi).astype(x.dtype)
    centered = x - hi.reshape(bshape)
    centered -= lo.reshape(bshape)
    return hi, centered


def _centered_sum_of_squares(xc: np.ndarray) -> np.ndarray:
    """Per-channel sum of squares of an already centered (N, C, *spatial) array."""
    n, c = xc.shape[:2]
    # (C, N, S) view order: a per-channel dot product of the centered values with themselves.
    flat = xc.reshape(n, c, -1)
    return np.einsum("ncs,ncs->c", flat, flat)


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
        $\partial\ell/\partial\gamma = \sum_i \frac{\partial\ell}{\partial y_i}\hat x_i$, shape ``(C,)``
        (the gradient with respect to the scale even when the forward pass used none).
    dbeta : numpy.ndarray
        $\partial\ell/\partial\beta = \sum_i \frac{\partial\ell}{\partial y_i}$, shape ``(C,)``.

    Raises
    ------
    ValueError
        If ``dy`` does not have the forward input's shape, contains non-finite values, or
        ``form`` is unknown.
    TypeError
        If ``dy`` does not have a floating dtype.

    Notes
    -----
    The paper's chain rule, with $s = \sqrt{\sigma^2_\mathcal{B} + \epsilon}$:

    $$\frac{\partial\ell}{\partial\hat x_i} = \frac{\partial\ell}{\partial y_i}\gamma, \qquad
    \frac{\partial\ell}{\partial\sigma^2_\mathcal{B}} = \sum_i \frac{\partial\ell}{\partial\hat x_i}
    (x_i - \mu_\mathcal{B}) \cdot \frac{-1}{2} s^{-3},$$

    $$\frac{\partial\ell}{\partial\mu_\mathcal{B}} = \sum_i \frac{\partial\ell}{\partial\hat x_i}\cdot\frac{-1}{s}
    + \frac{\partial\ell}{\partial\sigma^2_\mathcal{B}}\cdot\frac{\sum_i -2(x_i - \mu_\mathcal{B})}{m},$$

    $$\frac{\partial\ell}{\partial x_i} = \frac{\partial\ell}{\partial\hat x_i}\cdot\frac1s
    + \frac{\partial\ell}{\partial\sigma^2_\mathcal{B}}\cdot\frac{2(x_i - \mu_\mathcal{B})}{m}
    + \frac{\partial\ell}{\partial\mu_\mathcal{B}}\cdot\frac1m .$$

    Since $\sum_i (x_i - \mu_\mathcal{B}) = 0$ and $x_i - \mu_\mathcal{B} = s\,\hat x_i$, it
    collapses to the compact form

    $$\frac{\partial\ell}{\partial x_i} = \frac{\gamma}{m s}\Big(m\frac{\partial\ell}{\partial y_i}
    - \sum_j \frac{\partial\ell}{\partial y_j} - \hat x_i \sum_j \frac{\partial\ell}{\partial y_j}\hat x_j\Big),$$

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
    if not isinstance(cache, BatchNormCache):
        raise TypeError(
            f"cache must be the BatchNormCache from batch_norm_forward, got {type(cache).__name__}"
        )
    dy = np.asarray(dy)
    if dy.shape != cache.x_hat.shape:
        raise ValueError(
            f"dy must have the forward input's shape {cache.x_hat.shape}, got {dy.shape}"
        )
    dy = _check_floating(dy, "dy")
    dbeta = _checked_channel_sum(dy, "dy")
    if form not in ("compact", "paper"):
        raise ValueError(f"form must be 'compact' or 'paper', got {form!r}")

    ndim = dy.ndim
    axes = _reduce_axes(ndim)
    bshape = _bshape(ndim)
    x_hat, m = cache.x_hat, cache.m
    if dbeta is None:
        dbeta = dy.sum(axis=axes)
    dgamma = _channel_dot(dy, x_hat)
    gamma = (
        np.ones_like(cache.inv_std)
        if cache.gamma is None
        else cache.gamma.astype(dy.dtype, copy=False)
    )

    if form == "compact":
        # dx = gamma * inv_std / m * (m * dy - sum(dy) - x_hat * sum(dy * x_hat)),
        # evaluated as gamma * inv_std * (dy - (x_hat * dgamma / m + dbeta / m)): four passes, no temporary.
        rows, along = _rows_view(
            x_hat
        )  # per-channel passes over long rows, see _rows_view
        dx = rows * along(dgamma / m)
        dx += along(dbeta / m)
        np.subtract(dy, dx.reshape(dy.shape), out=dx.reshape(dy.shape))
        dx *= along(gamma * cache.inv_std)
        return dx.reshape(dy.shape), dgamma, dbeta

    # The paper's chain rule, term by term.
    s = 1.0 / cache.inv_std
    centered = x_hat * s.reshape(bshape)  # x_i - mu_B
    dx_hat = dy * gamma.reshape(bshape)
    dvar = _channel_dot(dx_hat, centered) * (-0.5) * s**-3
    dmean = (
        dx_hat.sum(axis=axes) * (-1.0 / s)
        + dvar * (-2.0 * centered.sum(axis=axes)) / m
    )
    dx = (
        dx_hat * (1.0 / s).reshape(bshape)
        + dvar.reshape(bshape) * 2.0 * centered / m
        + dmean.reshape(bshape) / m
    )
    return dx, dgamma, dbeta


def _channel_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-channel sum of a * b over every axis but 1."""
    n, c = a.shape[:2]
    return np.einsum("ncs,ncs->c", a.reshape(n, c, -1), b.reshape(n, c, -1))


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
        + \Big(\beta - \frac{\gamma E[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}}\Big)$, same shape and dtype as ``x``.

    Raises
    ------
    TypeError, ValueError
        On the same kinds of bad input as [`batch_norm_forward`][bnnotes.batchnorm.batch_norm_forward], and on a negative variance.

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
    x = _check_input(x)
    eps = _check_eps(eps)
    c = x.shape[1]
    mean = _check_channel_vector(mean, c, "mean")
    var = _check_channel_vector(var, c, "var")
    if (var < 0).any():
        raise ValueError("var must be >= 0 in every channel")
    gamma = _check_channel_vector(gamma, c, "gamma")
    beta = _check_channel_vector(beta, c, "beta")
    scale, shift = _affine_from_statistics(mean, var, gamma, beta, eps)
    bshape = _bshape(x.ndim)
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
        batch = _check_input(batch)
        if shape is None:
            shape = batch.shape
            m = _values_per_channel(shape)
            if m < 2:
                raise ValueError(
                    f"expected more than 1 value per channel in each batch, got batch shape {shape}"
                )
        elif batch.shape != shape:
            raise ValueError(
                f"all batches must have the same shape; batch {count} has shape {batch.shape}, "
                f"the first had {shape}"
            )
        mu, centered = _centered(
            batch, _reduce_axes(batch.ndim), _bshape(batch.ndim)
        )
        sigma2 = _centered_sum_of_squares(centered) / m
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
    weight = _check_float_array(weight, "weight")
    if weight.ndim < 2:
        raise ValueError(
            f"weight must have shape (out, in) or (out, in, *kernel), got {weight.shape}"
        )
    eps = _check_eps(eps)
    out = weight.shape[0]
    bias = _check_channel_vector(bias, out, "bias")
    running_mean = _check_channel_vector(running_mean, out, "running_mean")
    running_var = _check_channel_vector(running_var, out, "running_var")
    if (running_var < 0).any():
        raise ValueError("running_var must be >= 0 in every channel")
    gamma = _check_channel_vector(gamma, out, "gamma")
    beta = _check_channel_vector(beta, out, "beta")
    scale, shift = _affine_from_statistics(
        running_mean, running_var, gamma, beta, eps
    )
    new_weight = weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    new_bias = shift if bias is None else bias * scale + shift
    return new_weight, new_bias


# --------------------------------------------------------------------------- the layer


class BatchNorm:
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
        True in training mode (the default), False after [`eval`][bnnotes.batchnorm.BatchNorm.eval].
    weight_grad, bias_grad : numpy.ndarray or None
        Gradients from the last [`backward`][bnnotes.batchnorm.BatchNorm.backward] call.

    Notes
    -----
    In training mode the layer normalizes with the batch statistics (biased variance) and
    then updates, with $\alpha$ = ``momentum``,

    $$\hat\mu \leftarrow (1 - \alpha)\,\hat\mu + \alpha\,\mu_\mathcal{B}, \qquad
    \hat\sigma^2 \leftarrow (1 - \alpha)\,\hat\sigma^2 + \alpha\,\tfrac{m}{m-1}\sigma^2_\mathcal{B},$$

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
        num_features, self.eps, momentum = _check_layer_args(
            num_features, eps, momentum
        )
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"dtype must be a floating dtype, got {dtype}")
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
        self._cache: BatchNormCache | tuple | None = None

    def __repr__(self) -> str:
        return (
            f"BatchNorm({self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats})"
        )

    # -- mode ---------------------------------------------------------------------
    def train(self, mode: bool = True) -> "BatchNorm":
        """Set training mode (``mode=True``) or evaluation mode; return the layer."""
        self.training = bool(mode)
        return self

    def eval(self) -> "BatchNorm":
        """Set evaluation mode; return the layer."""
        return self.train(False)

    # -- forward / backward ----------------------------------------------------------
    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

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
        x = _check_input(x, self.num_features, finite=False)
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
        self._cache = (
            "eval",
            x.shape,
            1.0 / np.sqrt(self.running_var + self.eps),
            x,
        )
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
        r"""Gradient with respect to the input of the last [`forward`][bnnotes.batchnorm.BatchNorm.forward] call.

        Sets `weight_grad` and `bias_grad` (when ``affine``) and returns
        $\partial\ell/\partial x$. In evaluation mode with running statistics the layer is
        a fixed affine map, so $\partial\ell/\partial x = \gamma\,\partial\ell/\partial y / \sqrt{\hat\sigma^2+\epsilon}$.

        Raises
        ------
        RuntimeError
            If no forward pass has been made.
        ValueError
            If ``dy`` does not match the last input's shape or is not finite.
        """
        if self._cache is None:
            raise RuntimeError("backward called before forward")
        if isinstance(self._cache, BatchNormCache):
            dx, dgamma, dbeta = batch_norm_backward(dy, self._cache)
        else:
            _, shape, inv_std, x = self._cache
            dy = np.asarray(dy)
            if dy.shape != shape:
                raise ValueError(
                    f"dy must have the forward input's shape {shape}, got {dy.shape}"
                )
            dy = _check_float_array(dy, "dy")
            bshape = _bshape(dy.ndim)
            axes = _reduce_axes(dy.ndim)
            x_hat = (x - self.running_mean.reshape(bshape)) * inv_std.reshape(
                bshape
            )
            dgamma = (dy * x_hat).sum(axis=axes)
            dbeta = dy.sum(axis=axes)
            gamma = (
                np.ones_like(inv_std) if self.weight is None else self.weight
            )
            dx = dy * (gamma * inv_std).astype(dy.dtype, copy=False).reshape(
                bshape
            )
        if self.affine:
            self.weight_grad, self.bias_grad = dgamma, dbeta
        return dx

    # -- state ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray | int]:
        """Parameters and running statistics under PyTorch's key names (copies)."""
        state: dict[str, np.ndarray | int] = {}
        if self.affine:
            state["weight"] = self.weight.copy()
            state["bias"] = self.bias.copy()
        if self.track_running_stats:
            state["running_mean"] = self.running_mean.copy()
            state["running_var"] = self.running_var.copy()
            state["num_batches_tracked"] = int(self.num_batches_tracked)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Load a state saved by [`state_dict`][bnnotes.batchnorm.BatchNorm.state_dict] (or a torch BatchNorm's, as NumPy values).

        Raises
        ------
        KeyError
            If a key is missing or unexpected; nothing is loaded then.
        ValueError
            If a value has the wrong shape or is not finite; nothing is loaded then.
        """
        expected = set(self.state_dict())
        missing, unexpected = expected - set(state), set(state) - expected
        if missing or unexpected:
            raise KeyError(
                f"state_dict mismatch: missing {sorted(missing)}, unexpected {sorted(unexpected)}"
            )
        new = {}
        for key in ("weight", "bias", "running_mean", "running_var"):
            if key in expected:
                value = _check_channel_vector(
                    np.asarray(state[key]), self.num_features, key
                )
                new[key] = value.astype(self.dtype, copy=True)
        if "running_var" in new and (new["running_var"] < 0).any():
            raise ValueError("running_var must be >= 0 in every channel")
        if "num_batches_tracked" in expected:
            n = int(np.asarray(state["num_batches_tracked"]))
            if n < 0:
                raise ValueError(f"num_batches_tracked must be >= 0, got {n}")
            new["num_batches_tracked"] = n
        for key, value in new.items():
            setattr(self, key, value)
