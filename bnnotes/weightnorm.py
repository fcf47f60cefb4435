r"""Weight normalization in NumPy (Salimans & Kingma, 2016), with its backward pass.

Weight normalization writes each weight vector as a length and a direction,

$$\mathbf w = \frac{g}{\lVert \mathbf v \rVert}\,\mathbf v, \qquad \lVert \mathbf w \rVert = |g|,$$

and trains $g$ and $\mathbf v$ instead of $\mathbf w$. Its gradients are

$$\nabla_g L = \frac{\nabla_{\mathbf w} L \cdot \mathbf v}{\lVert \mathbf v \rVert}, \qquad
\nabla_{\mathbf v} L = \frac{g}{\lVert \mathbf v \rVert}\, M_{\mathbf w}\,
\nabla_{\mathbf w} L, \qquad
M_{\mathbf w} = I - \frac{\mathbf w \mathbf w^\top}{\lVert \mathbf w \rVert^2},$$

so the gradient with respect to $\mathbf v$ is the weight gradient scaled by
$g/\lVert\mathbf v\rVert$ and projected off the current weight direction. Being orthogonal
to $\mathbf v$, a gradient step can only lengthen $\mathbf v$
([`norm_growth`][bnnotes.weightnorm.norm_growth]). The module also holds the paper's
data-dependent initialization and mean-only batch normalization.

The layout follows ``torch.nn.utils.parametrizations.weight_norm``: with ``dim=0`` (the
default) there is one $g$ per output unit (slice ``v[k]``), and the norm is taken over all
other axes; ``dim=None`` uses one $g$ for the whole tensor. PyTorch stores $g$ with
singleton axes (shape ``(out, 1)`` for a linear layer); here $g$ has shape ``(out,)``.

References
----------
- T. Salimans and D. P. Kingma, "Weight Normalization: A Simple Reparameterization to
  Accelerate Training of Deep Neural Networks", NIPS 2016, arXiv:1602.07868.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from bnnotes import _kernels as kernels
from bnnotes import _validation as check

__all__ = [
    "MeanOnlyBatchNormCache",
    "NormGrowth",
    "WeightNormCache",
    "data_dependent_init",
    "mean_only_batch_norm_backward",
    "mean_only_batch_norm_forward",
    "norm_growth",
    "projection_matrix",
    "weight_norm_backward",
    "weight_norm_forward",
]


def _check_dim(dim, ndim: int) -> int | None:
    if dim is None:
        return None
    if (
        isinstance(dim, bool)
        or not isinstance(dim, Integral)
        or not -ndim <= dim < ndim
    ):
        raise ValueError(
            f"dim must be None or an integer in [{-ndim}, {ndim}), got {dim!r}"
        )
    return int(dim) % ndim


def _other_axes(ndim: int, dim: int | None) -> tuple[int, ...]:
    return tuple(a for a in range(ndim) if a != dim)


def _bshape(ndim: int, dim: int | None) -> tuple[int, ...]:
    """Shape that broadcasts one value per slice along ``dim`` against the weight."""
    if dim is None:
        return (1,) * ndim
    return tuple(-1 if a == dim else 1 for a in range(ndim))


@dataclass(frozen=True)
class WeightNormCache:
    r"""What [`weight_norm_forward`][bnnotes.weightnorm.weight_norm_forward]
    keeps for the backward pass.

    Attributes
    ----------
    v : numpy.ndarray
        The direction parameter $\mathbf v$ (a copy).
    g : numpy.ndarray
        The length parameter $g$, shape ``(v.shape[dim],)`` or ``()`` for ``dim=None``.
    norm : numpy.ndarray
        $\lVert \mathbf v \rVert$ per slice, the shape of ``g``.
    dim : int or None
        The axis that indexes the weight vectors (None: the whole tensor is one vector).

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.weightnorm import weight_norm_forward
    >>> _, cache = weight_norm_forward(
    ...     np.array([[3.0, 4.0], [0.0, 2.0]]), np.array([1.0, 1.0])
    ... )
    >>> cache.norm.tolist(), cache.dim
    ([5.0, 2.0], 0)
    """

    v: np.ndarray
    g: np.ndarray
    norm: np.ndarray
    dim: int | None


def weight_norm_forward(
    v: np.ndarray, g: np.ndarray, dim: int | None = 0
) -> tuple[np.ndarray, WeightNormCache]:
    r"""The weight $\mathbf w = g\,\mathbf v / \lVert \mathbf v \rVert$ for each
    slice of ``v`` along ``dim``.

    Parameters
    ----------
    v : numpy.ndarray
        Direction parameter with a floating dtype, for example ``(out, in)`` for a linear
        layer or ``(out, in, kh, kw)`` for a convolution.
    g : numpy.ndarray
        Length parameter: shape ``(v.shape[dim],)``, or ``()`` when ``dim`` is None. It may
        be negative, which reverses the direction.
    dim : int or None, optional
        Axis of ``v`` that indexes the weight vectors; default 0 (one vector per output unit).
        A negative ``dim`` counts from the end, as a NumPy axis: ``dim=-1`` is the last
        axis. This differs from PyTorch, whose ``weight_norm`` and ``torch._weight_norm``
        read ``dim=-1`` as the whole tensor, which is ``dim=None`` here.

    Returns
    -------
    w : numpy.ndarray
        The weight, same shape as ``v``; each slice has norm $|g|$.
    cache : WeightNormCache
        What [`weight_norm_backward`][bnnotes.weightnorm.weight_norm_backward] needs.

    Raises
    ------
    TypeError
        If ``v`` or ``g`` does not have a floating dtype.
    ValueError
        If ``v`` is a scalar, ``dim`` is out of range, ``g`` has the wrong shape, a value is
        not finite, or a slice of ``v`` is zero (it has no direction).

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.weightnorm import weight_norm_forward
    >>> v = np.random.default_rng(0).normal(size=(3, 5))
    >>> w, _ = weight_norm_forward(v, np.array([1.0, 2.0, -3.0]))
    >>> np.linalg.norm(w, axis=1).round(12).tolist()
    [1.0, 2.0, 3.0]
    >>> w10, _ = weight_norm_forward(
    ...     10.0 * v, np.array([1.0, 2.0, -3.0])
    ... )  # v's length does not matter
    >>> bool(np.allclose(w10, w, rtol=1e-14, atol=0))
    True
    """
    v = check.finite_floating(v, "v")
    if v.ndim < 1:
        raise ValueError("v must have at least 1 dimension")
    dim = _check_dim(dim, v.ndim)
    g_shape = () if dim is None else (v.shape[dim],)
    g = check.finite_floating(g, "g")
    if g.shape != g_shape:
        raise ValueError(
            f"g must have shape {g_shape} for v of shape {v.shape} and dim={dim}, got {g.shape}"
        )
    norm = np.sqrt(np.sum(v * v, axis=_other_axes(v.ndim, dim)))
    if np.any(norm == 0):
        raise ValueError(
            "v has a slice of zeros: its direction v/||v|| is undefined"
        )
    bshape = _bshape(v.ndim, dim)
    w = v * (g / norm).astype(v.dtype, copy=False).reshape(bshape)
    return w, WeightNormCache(v=v.copy(), g=g.copy(), norm=norm, dim=dim)


def weight_norm_backward(
    dw: np.ndarray, cache: WeightNormCache
) -> tuple[np.ndarray, np.ndarray]:
    r"""Gradients with respect to $\mathbf v$ and $g$ from the gradient with respect to $\mathbf w$.

    Parameters
    ----------
    dw : numpy.ndarray
        $\nabla_{\mathbf w} L$, same shape as ``v``.
    cache : WeightNormCache
        The cache returned by [`weight_norm_forward`][bnnotes.weightnorm.weight_norm_forward].

    Returns
    -------
    dv : numpy.ndarray
        $\nabla_{\mathbf v} L = \frac{g}{\lVert\mathbf v\rVert}\nabla_{\mathbf w} L
        - \frac{g\,\nabla_g L}{\lVert\mathbf v\rVert^2}\mathbf v$, same shape as ``v``.
    dg : numpy.ndarray
        $\nabla_g L = \nabla_{\mathbf w} L \cdot \mathbf v / \lVert\mathbf v\rVert$,
        the shape of ``g``.

    Raises
    ------
    TypeError
        If ``dw`` does not have a floating dtype, or ``cache`` is not a
        [`WeightNormCache`][bnnotes.weightnorm.WeightNormCache].
    ValueError
        If ``dw`` does not have the shape of ``v`` or is not finite.

    Notes
    -----
    The two forms of $\nabla_{\mathbf v} L$ in the module summary are equal because
    $\mathbf w/\lVert\mathbf w\rVert = \pm\mathbf v/\lVert\mathbf v\rVert$. Each slice of
    ``dv`` is orthogonal to the same slice of ``v``: the gradient never changes
    $\lVert\mathbf v\rVert$ to first order.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.weightnorm import (
    ...     weight_norm_backward,
    ...     weight_norm_forward,
    ... )
    >>> rng = np.random.default_rng(1)
    >>> v, g, dw = (
    ...     rng.normal(size=(2, 4)),
    ...     np.array([0.5, 2.0]),
    ...     rng.normal(size=(2, 4)),
    ... )
    >>> dv, dg = weight_norm_backward(dw, weight_norm_forward(v, g)[1])
    >>> bool(
    ...     np.allclose((dv * v).sum(axis=1), 0.0)
    ... )  # dv is orthogonal to v, row by row
    True
    """
    check.cache_of(cache, WeightNormCache, "weight_norm_forward")
    dw = check.same_shape(dw, cache.v.shape, "dw")
    v, dim = cache.v, cache.dim
    bshape = _bshape(v.ndim, dim)
    norm = cache.norm
    dg = np.sum(dw * v, axis=_other_axes(v.ndim, dim)) / norm
    scale = (cache.g / norm).reshape(bshape)
    dv = scale * (dw - (dg / norm).reshape(bshape) * v)
    return dv.astype(np.result_type(dw, v), copy=False), dg


def projection_matrix(w: np.ndarray) -> np.ndarray:
    r"""$M_{\mathbf w} = I - \mathbf w\mathbf w^\top / \lVert\mathbf w\rVert^2$, the projection onto
    the complement of $\mathbf w$.

    Parameters
    ----------
    w : numpy.ndarray
        A non-zero vector of shape ``(d,)``.

    Returns
    -------
    numpy.ndarray
        Symmetric ``(d, d)`` matrix with $M^2 = M$ and $M\mathbf w = 0$.

    Raises
    ------
    TypeError, ValueError
        If ``w`` is not a finite floating vector, or it is zero.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.weightnorm import projection_matrix
    >>> M = projection_matrix(np.array([3.0, 4.0]))
    >>> (
    ...     bool(np.allclose(M @ np.array([3.0, 4.0]), 0.0)),
    ...     bool(np.allclose(M @ M, M)),
    ... )
    (True, True)
    """
    w = check.finite_floating(w, "w")
    if w.ndim != 1:
        raise ValueError(
            f"w must be a vector of shape (d,), got shape {w.shape}"
        )
    sq = float(w @ w)
    if sq == 0:
        raise ValueError("w must be non-zero")
    return np.eye(w.size, dtype=w.dtype) - np.outer(w, w) / sq


@dataclass(frozen=True)
class NormGrowth:
    r"""The length of $\mathbf v$ before and after one gradient step, and the prediction
    $\sqrt{1+c^2}\,\lVert\mathbf v\rVert$.

    Attributes
    ----------
    norm_before : float
        $\lVert\mathbf v\rVert$.
    norm_after : float
        $\lVert\mathbf v'\rVert$ with $\mathbf v' = \mathbf v - \eta\nabla_{\mathbf v}L$.
    c : float
        $c = \lVert\eta\nabla_{\mathbf v}L\rVert / \lVert\mathbf v\rVert$, the relative step.
    predicted : float
        $\sqrt{1+c^2}\,\lVert\mathbf v\rVert$, equal to ``norm_after`` when the gradient is
        orthogonal to $\mathbf v$.
    cosine : float
        $\cos\angle(\mathbf v, \nabla_{\mathbf v}L)$; 0 for a weight-normalized gradient.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.weightnorm import norm_growth
    >>> step = norm_growth(np.array([3.0, 4.0]), np.array([-4.0, 3.0]), lr=1.0)
    >>> step.norm_before, step.norm_after, step.c, step.cosine
    (5.0, 7.0710678118654755, 1.0, 0.0)
    """

    norm_before: float
    norm_after: float
    c: float
    predicted: float
    cosine: float


def norm_growth(v: np.ndarray, grad_v: np.ndarray, lr: float) -> NormGrowth:
    r"""How one step $\mathbf v' = \mathbf v - \eta\,\nabla_{\mathbf v}L$
    changes $\lVert\mathbf v\rVert$.

    Parameters
    ----------
    v : numpy.ndarray
        One weight vector (any shape; it is taken as a flat vector), non-zero.
    grad_v : numpy.ndarray
        $\nabla_{\mathbf v}L$, same shape as ``v``.
    lr : float
        Step size $\eta \ge 0$.

    Returns
    -------
    NormGrowth
        The norms before and after, $c$, the prediction and the cosine between ``v`` and ``grad_v``.

    Raises
    ------
    TypeError, ValueError
        On non-floating or non-finite arrays, mismatched shapes, a zero ``v``, or ``lr < 0``.

    Notes
    -----
    If $\nabla_{\mathbf v}L \perp \mathbf v$, Pythagoras gives
    $\lVert\mathbf v'\rVert^2 = \lVert\mathbf v\rVert^2 + \eta^2\lVert\nabla_{\mathbf v}L\rVert^2$,
    that is
    $\lVert\mathbf v'\rVert = \sqrt{1+c^2}\,\lVert\mathbf v\rVert \ge \lVert\mathbf v\rVert$. Large
    or noisy steps lengthen $\mathbf v$, which shrinks the effective step $g/\lVert\mathbf v\rVert$
    of later updates; small steps leave the length almost unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.weightnorm import (
    ...     norm_growth,
    ...     weight_norm_backward,
    ...     weight_norm_forward,
    ... )
    >>> rng = np.random.default_rng(2)
    >>> v = rng.normal(size=(1, 6))
    >>> dv, _ = weight_norm_backward(
    ...     rng.normal(size=(1, 6)), weight_norm_forward(v, np.ones(1))[1]
    ... )
    >>> step = norm_growth(v, dv, lr=0.5)
    >>> (
    ...     step.norm_after > step.norm_before,
    ...     bool(np.isclose(step.norm_after, step.predicted, rtol=1e-13)),
    ... )
    (True, True)
    """
    v = check.finite_floating(v, "v")
    grad_v = check.same_shape(grad_v, v.shape, "grad_v")
    lr = check.nonnegative(lr, "lr", allow_zero=True)
    v_flat, grad_flat = (
        v.reshape(-1).astype(np.float64),
        grad_v.reshape(-1).astype(np.float64),
    )
    norm_before = float(np.linalg.norm(v_flat))
    if norm_before == 0:
        raise ValueError("v must be non-zero")
    step = float(lr) * grad_flat
    grad_norm = float(np.linalg.norm(grad_flat))
    c = float(np.linalg.norm(step)) / norm_before
    cosine = (
        float(v_flat @ grad_flat) / (norm_before * grad_norm)
        if grad_norm > 0
        else 0.0
    )
    return NormGrowth(
        norm_before=norm_before,
        norm_after=float(np.linalg.norm(v_flat - step)),
        c=c,
        predicted=math.sqrt(1.0 + c * c) * norm_before,
        cosine=cosine,
    )


# --------------------------------------------------------------------------- initialization


def _check_activations(t, name: str) -> np.ndarray:
    t = check.finite_floating(t, name)
    if t.ndim < 2:
        raise ValueError(
            f"{name} must have shape (N, C) or (N, C, *spatial), got {t.shape}"
        )
    if t.size // t.shape[1] < 2:
        raise ValueError(
            f"expected more than 1 value per unit in {name}, got shape {t.shape}"
        )
    return t


def data_dependent_init(
    t: np.ndarray, g: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    r"""The paper's data-dependent initialization of $g$ and $b$ from one mini-batch.

    Parameters
    ----------
    t : numpy.ndarray
        Pre-activations of a weight-normalized layer on an initialization batch, computed
        with the current gain ``g`` and **without** the bias:
        $t = g\,\mathbf v\cdot\mathbf x/\lVert\mathbf v\rVert$. Shape ``(N, C)`` or
        ``(N, C, *spatial)``, units on axis 1.
    g : numpy.ndarray or None, optional
        The gain ``t`` was computed with, shape ``(C,)``; None means 1, the paper's setting
        (then $t = \mathbf v\cdot\mathbf x/\lVert\mathbf v\rVert$).

    Returns
    -------
    g : numpy.ndarray
        New gain $g/\sigma[t]$, shape ``(C,)``.
    b : numpy.ndarray
        New bias $-\mu[t]/\sigma[t]$, shape ``(C,)``.

    Raises
    ------
    TypeError, ValueError
        On a non-floating or non-finite ``t``, fewer than 2 values per unit, a ``g`` of the
        wrong shape, or a unit whose pre-activation is constant over the batch.

    Notes
    -----
    $\mu[t]$ and $\sigma[t]$ are the mean and the population (1/m) standard deviation of
    each unit over the batch (and the spatial axes), as in the authors' code. With the new
    parameters the layer computes $(t - \mu[t])/\sigma[t]$ on that batch: every unit starts
    with zero mean and unit variance before the nonlinearity. The official code applies it
    layer by layer, feeding each initialized layer's output to the next.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.weightnorm import data_dependent_init, weight_norm_forward
    >>> rng = np.random.default_rng(3)
    >>> x, v = (
    ...     rng.normal(2.0, 3.0, size=(64, 5)),
    ...     rng.normal(0.0, 0.05, size=(4, 5)),
    ... )
    >>> w, _ = weight_norm_forward(v, np.ones(4))
    >>> g, b = data_dependent_init(x @ w.T)
    >>> w, _ = weight_norm_forward(v, g)
    >>> out = x @ w.T + b
    >>> (
    ...     bool(np.allclose(out.mean(axis=0), 0.0)),
    ...     bool(np.allclose(out.std(axis=0), 1.0)),
    ... )
    (True, True)
    """
    t = _check_activations(t, "t")
    c = t.shape[1]
    g = np.ones(c) if g is None else check.optional_vector(g, (c,), "g")
    axes = (0, *range(2, t.ndim))
    mean, centered = kernels.centered(t, axes, (1, -1) + (1,) * (t.ndim - 2))
    std = np.sqrt(np.mean(centered.astype(np.float64) ** 2, axis=axes))
    if np.any(std == 0):
        raise ValueError(
            "a unit's pre-activation is constant over the batch: its scale cannot be set"
        )
    return g / std, -mean.astype(np.float64) / std


# --------------------------------------------------------------------------- mean-only BN


@dataclass(frozen=True)
class MeanOnlyBatchNormCache:
    """What [`mean_only_batch_norm_forward`][bnnotes.weightnorm.mean_only_batch_norm_forward] keeps.

    Attributes
    ----------
    mean : numpy.ndarray
        The batch mean $\\mu[t]$ per channel, shape ``(C,)``.
    shape : tuple of int
        Shape of the input.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.weightnorm import mean_only_batch_norm_forward
    >>> _, cache = mean_only_batch_norm_forward(np.array([[1.0], [5.0]]))
    >>> cache.mean.tolist(), cache.shape
    ([3.0], (2, 1))
    """

    mean: np.ndarray
    shape: tuple[int, ...]


def mean_only_batch_norm_forward(
    t: np.ndarray, beta: np.ndarray | None = None
) -> tuple[np.ndarray, MeanOnlyBatchNormCache]:
    r"""Mean-only batch normalization: $\tilde t = t - \mu[t] + \beta$, without
    dividing by a standard deviation.

    Parameters
    ----------
    t : numpy.ndarray
        Pre-activations of shape ``(N, C)`` or ``(N, C, *spatial)`` (more
        than one value per channel).
    beta : numpy.ndarray or None, optional
        Per-channel bias of shape ``(C,)``; None means 0.

    Returns
    -------
    y : numpy.ndarray
        $\tilde t$, same shape and dtype as ``t``.
    cache : MeanOnlyBatchNormCache
        The batch mean, for the backward pass and for a running average.

    Raises
    ------
    TypeError, ValueError
        On a non-floating or non-finite input, fewer than 2 values per channel, or a ``beta``
        of the wrong shape.

    Notes
    -----
    The paper pairs it with weight normalization: weight normalization fixes the scale of
    each unit through $g$, and subtracting the batch mean centers the activations. The
    output depends on the other examples of the batch through the mean only, not through a
    batch standard deviation. At test time the mean is replaced by a running average (the
    authors' code updates it as $0.9\,\hat\mu + 0.1\,\mu[t]$).

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.weightnorm import mean_only_batch_norm_forward
    >>> t = np.random.default_rng(4).normal(5.0, 2.0, size=(16, 3))
    >>> y, cache = mean_only_batch_norm_forward(
    ...     t, beta=np.array([0.0, 1.0, 2.0])
    ... )
    >>> (
    ...     y.mean(axis=0).round(12).tolist(),
    ...     bool(np.allclose(y.std(axis=0), t.std(axis=0))),
    ... )
    ([0.0, 1.0, 2.0], True)
    """
    t = _check_activations(t, "input")
    c = t.shape[1]
    beta = check.optional_vector(beta, (c,), "beta")
    axes = (0, *range(2, t.ndim))
    bshape = (1, -1) + (1,) * (t.ndim - 2)
    mean, y = kernels.centered(t, axes, bshape)
    if beta is not None:
        y += beta.astype(t.dtype, copy=False).reshape(bshape)
    return y, MeanOnlyBatchNormCache(mean=mean, shape=t.shape)


def mean_only_batch_norm_backward(
    dy: np.ndarray, cache: MeanOnlyBatchNormCache
) -> tuple[np.ndarray, np.ndarray]:
    r"""Gradients of mean-only batch normalization: the upstream gradient, centered per channel.

    Parameters
    ----------
    dy : numpy.ndarray
        $\nabla_{\tilde t}L$, same shape as the forward input.
    cache : MeanOnlyBatchNormCache
        From [`mean_only_batch_norm_forward`][bnnotes.weightnorm.mean_only_batch_norm_forward].

    Returns
    -------
    dt : numpy.ndarray
        $\nabla_t L = \nabla_{\tilde t}L - \mu[\nabla_{\tilde t}L]$.
    dbeta : numpy.ndarray
        $\sum \nabla_{\tilde t}L$ over every axis but 1, shape ``(C,)``.

    Raises
    ------
    TypeError, ValueError
        If ``dy`` is not floating, not finite, or not of the input's shape; a TypeError
        if ``cache`` is not a [`MeanOnlyBatchNormCache`][bnnotes.weightnorm.MeanOnlyBatchNormCache].

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.weightnorm import (
    ...     mean_only_batch_norm_backward,
    ...     mean_only_batch_norm_forward,
    ... )
    >>> rng = np.random.default_rng(5)
    >>> _, cache = mean_only_batch_norm_forward(rng.normal(size=(8, 2)))
    >>> dt, dbeta = mean_only_batch_norm_backward(
    ...     rng.normal(size=(8, 2)), cache
    ... )
    >>> bool(np.allclose(dt.sum(axis=0), 0.0))
    True
    """
    check.cache_of(
        cache, MeanOnlyBatchNormCache, "mean_only_batch_norm_forward"
    )
    dy = check.same_shape(dy, cache.shape)
    axes = (0, *range(2, dy.ndim))
    dbeta = dy.sum(axis=axes)
    m = dy.size // dy.shape[1]
    dt = dy - (dbeta / m).astype(dy.dtype, copy=False).reshape(
        (1, -1) + (1,) * (dy.ndim - 2)
    )
    return dt, dbeta
