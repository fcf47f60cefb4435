"""The fast paths shared by the normalization modules (private).

Every normalization computes a mean, a variance of centered values, a normalized array
and, backwards, a gradient that removes two components. The modules that read as the
papers' formulas (``batchnorm``, ``layernorm``, ``groupnorm``, ``weightnorm``,
``weight_standardization``, ``distributed``) call these functions where speed or
accuracy needs more than the formula written out:

- *two-pass statistics*: the mean first, then the squared deviations from it, never
  $E[x^2] - E[x]^2$; below float64 the mean is subtracted in two parts, so a large common
  offset costs no accuracy ([`centered`][bnnotes._kernels.centered]);
- *channel sums* as BLAS products, faster than ``sum(axis=0)`` and, in float32, more
  accurate ([`channel_sum`][bnnotes._kernels.channel_sum]);
- *row views*: a C-ordered ``(N, C, *spatial)`` array seen as long rows, so that a
  per-channel operation runs NumPy's inner loop over whole rows instead of once per
  (sample, channel) pair ([`rows_view`][bnnotes._kernels.rows_view]);
- *row normalization* and its input gradient, for the normalizations whose statistics
  are per row: layer, group and instance norm, weight standardization.

Nothing here validates its arguments: the public functions do that first, with
``bnnotes._validation``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

BLAS_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
"""The dtypes whose channel sums go through BLAS."""

ROW_LENGTH = 16384
"""The longest row [`rows_view`][bnnotes._kernels.rows_view] makes of whole samples."""


# --------------------------------------------------------------------------- shapes


def reduce_axes(ndim: int) -> tuple[int, ...]:
    """The axes a per-channel statistic of an ``(N, C, *spatial)`` array sums over: all but 1."""
    return (0, *range(2, ndim))


def channel_shape(ndim: int) -> tuple[int, ...]:
    """The shape that broadcasts a per-channel vector against ``(N, C, *spatial)``."""
    return (1, -1) + (1,) * (ndim - 2)


def values_per_channel(shape: tuple[int, ...]) -> int:
    """$m = N \\cdot \\prod \\text{spatial}$, the number of values of each channel."""
    return int(shape[0] * math.prod(shape[2:]))


# --------------------------------------------------------------------------- channel sums


def channel_sum(a: np.ndarray) -> np.ndarray:
    """Per-channel sum over every axis but 1.

    For a C-ordered float32 or float64 array it is a product with a vector of ones (BLAS,
    multithreaded): the sum over N of the ``(N, C * S)`` matrix, then over S per channel.
    It is faster than ``a.sum(axis=0)`` of that matrix and, for tall matrices, much more
    accurate in float32 (BLAS accumulates in blocks; NumPy adds the N rows one after the
    other).
    """
    if a.dtype not in BLAS_DTYPES or not a.flags.c_contiguous or a.size == 0:
        return a.sum(axis=reduce_axes(a.ndim))
    n, c = a.shape[:2]
    over_batch = np.ones(n, a.dtype) @ a.reshape(n, -1)
    return over_batch if a.ndim == 2 else over_batch.reshape(c, -1).sum(axis=1)


def channel_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-channel sum of ``a * b`` over every axis but 1, without the product array."""
    n, c = a.shape[:2]
    return np.einsum("ncs,ncs->c", a.reshape(n, c, -1), b.reshape(n, c, -1))


# --------------------------------------------------------------------------- row views


def rows_view(
    a: np.ndarray,
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """A C-ordered (N, C, *spatial) array as long rows, and a per-channel vector laid along one.

    Broadcasting a ``(1, C, 1, ...)`` vector makes NumPy run its inner loop once per
    (sample, channel) pair, over ``prod(spatial)`` values, and that per-call overhead costs
    as much as the arithmetic. Viewed as rows of ``k`` whole samples (``k`` a power of two
    that divides N), a per-channel vector becomes one row, each value repeated
    ``prod(spatial)`` times and the whole ``k`` times, and the inner loop runs over whole
    rows. Arrays that are not C-ordered are returned as they are, with the usual
    ``(1, C, 1, ...)`` broadcast.
    """
    if not a.flags.c_contiguous or a.size == 0:
        bshape = channel_shape(a.ndim)
        return a, lambda v: np.reshape(v, bshape)
    n = a.shape[0]
    sample = a.size // n
    spatial = sample // a.shape[1]
    k = 1
    while n % (2 * k) == 0 and 2 * k * sample <= ROW_LENGTH:
        k *= 2

    def along(v: np.ndarray) -> np.ndarray:
        row = np.empty((k, v.size, spatial), np.result_type(v))
        row[...] = v[:, None]
        return row.reshape(-1)

    return a.reshape(n // k, k * sample), along


def scale_channels(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``a`` times the per-channel ``v``, in place; returns ``a``."""
    rows, along = rows_view(a)
    rows *= along(v.astype(a.dtype, copy=False))
    return a


def affine_channels(
    x_hat: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None
) -> np.ndarray:
    """``gamma * x_hat + beta`` per channel, as a new array (a copy when both are None).

    One new array and one pass per term, no copy of ``x_hat`` first; the copy without an
    affine map keeps a caller that changes the output in place from changing ``x_hat``.
    """
    if gamma is None and beta is None:
        return x_hat.copy(order="K")
    rows, along = rows_view(x_hat)
    if gamma is None:
        y = rows + along(beta.astype(x_hat.dtype, copy=False))
    else:
        y = rows * along(gamma.astype(x_hat.dtype, copy=False))
        if beta is not None:
            y += along(beta.astype(x_hat.dtype, copy=False))
    return y.reshape(x_hat.shape)


# --------------------------------------------------------------------------- two-pass statistics


def centered(
    x: np.ndarray, axes: tuple[int, ...], bshape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The mean over ``axes`` and the centered array ``x - mean`` (a new array).

    ``bshape`` is the shape that broadcasts the mean against ``x``. Below float64 the
    mean is accumulated in float64 and subtracted in two parts, a rounded ``hi`` and the
    remainder ``lo``: ``x - hi`` is exact when x is close to the mean (Sterbenz), so a
    large common offset costs no accuracy in float32.
    """
    if x.dtype == np.float64:
        mean = x.mean(axis=axes)
        return mean, x - mean.reshape(bshape)
    mean64 = x.mean(axis=axes, dtype=np.float64)
    hi = mean64.astype(x.dtype)
    lo = (mean64 - hi).astype(x.dtype)
    out = x - hi.reshape(bshape)
    out -= lo.reshape(bshape)
    return hi, out


def centered_channels(
    x: np.ndarray, total: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean of an ``(N, C, *spatial)`` array and ``x - mean`` (a new array).

    With ``total``, the per-channel sum of a float32 or float64 ``x`` (from
    [`channel_sum`][bnnotes._kernels.channel_sum]), ``hi`` is ``total / m`` and, below
    float64, ``lo`` is the mean of ``x - hi``: every value it sums is small, so it is
    accurate in float32, and both sums are BLAS products. Without it, as
    [`centered`][bnnotes._kernels.centered].
    """
    if total is None:
        return centered(x, reduce_axes(x.ndim), channel_shape(x.ndim))
    m = values_per_channel(x.shape)
    hi = total / m
    rows, along = rows_view(x)
    out = np.subtract(
        rows, along(hi), out=np.empty(rows.shape, x.dtype)
    ).reshape(x.shape)
    if x.dtype == np.float64:
        return hi, out
    lo = channel_sum(out) / m
    rows, along = rows_view(out)
    rows -= along(lo)
    return (hi.astype(np.float64) + lo).astype(x.dtype), out


def batch_norm_input_grad(
    dy: np.ndarray,
    x_hat: np.ndarray,
    mean_dy_x_hat: np.ndarray,
    mean_dy: np.ndarray,
    gamma_inv_std: np.ndarray,
) -> np.ndarray:
    r"""Batch norm's input gradient, in four passes and one new array.

    Per channel, with $g = \partial\ell/\partial y$ and bars for means over the $m$ values
    of the channel,
    $\gamma/s\,\big(g - \hat x\,\overline{g\,\hat x} - \bar g\big)$; the arguments are
    $\overline{g\,\hat x}$, $\bar g$ and $\gamma/s$, where
    $s = \sqrt{\sigma^2_\mathcal{B} + \epsilon}$.
    """
    rows, along = rows_view(x_hat)
    dx = rows * along(mean_dy_x_hat)
    dx += along(mean_dy)
    np.subtract(dy, dx.reshape(dy.shape), out=dx.reshape(dy.shape))
    dx *= along(gamma_inv_std)
    return dx.reshape(dy.shape)


# --------------------------------------------------------------------------- rows


def normalize_rows(
    rows: np.ndarray, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Normalize each row of a 2-D array: (x_hat, mean, var, inv_std), the last three per row.

    The variance is the mean of squared deviations from the mean (two passes); below
    float64 the mean is subtracted in two parts, so a large common offset does not cost
    accuracy.
    """
    mean, out = centered(rows, (1,), (-1, 1))
    var = np.einsum("ij,ij->i", out, out) / rows.shape[1]
    inv_std = 1.0 / np.sqrt(var + np.asarray(eps, dtype=rows.dtype))
    out *= inv_std[:, None]
    return out, mean, var, inv_std


def rows_input_grad(
    dx_hat: np.ndarray, x_hat: np.ndarray, inv_std: np.ndarray
) -> np.ndarray:
    r"""Gradient through row normalization, per row.

    $\frac{1}{s}\big(d\hat x - \overline{d\hat x} - \hat x\,\overline{d\hat x\,\hat x}\big)$,
    bars for means over the row.
    """
    h = x_hat.shape[1]
    mean_dx_hat = dx_hat.sum(axis=1, keepdims=True) / h
    mean_proj = np.einsum("ij,ij->i", dx_hat, x_hat)[:, None] / h
    dx = dx_hat - mean_dx_hat
    dx -= x_hat * mean_proj
    dx *= inv_std[:, None]
    return dx
