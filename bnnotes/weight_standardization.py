r"""Weight standardization in NumPy (Qiao et al., 2019), with its backward pass.

Weight standardization replaces each output channel's weights $W_{i,\cdot}$ (its $I$ inputs
times the kernel size) by their standardized values

$$\hat W_{i,j} = \frac{W_{i,j} - \mu_i}{\sigma_i + \epsilon}, \qquad
\mu_i = \frac1I \sum_{j=1}^I W_{i,j}, \qquad
\sigma_i = \sqrt{\frac{1}{I - k} \sum_{j=1}^I (W_{i,j} - \mu_i)^2},$$

and the layer computes $y = \hat W * x$. The loss is optimized over $W$. There is no affine
map: the authors use WS only in convolutions followed by a normalization layer (BN or GN).

Notes
-----
The paper's formula is the population standard deviation, $k = 0$, and so is the authors'
TensorFlow snippet. Their PyTorch snippet calls ``torch.std_mean``, which is Bessel-corrected,
$k = 1$. Both add $\epsilon = 10^{-5}$ to the standard deviation, not to the variance. The
functions here take ``correction`` ($k$) explicitly and default to the paper's $k = 0$.

The choice matters in three places. The standardized row has
$\lVert \hat W_{i,\cdot} \rVert^2 = (I - k)$ (for $\epsilon = 0$), so with $k = 1$ each
output is smaller by $\sqrt{(I-1)/I}$, which is 0.94 for a depthwise 3x3 kernel ($I = 9$);
a following BN or GN cancels that factor, a layer without one does not. The radial term of
the gradient-norm identity
([`gradient_norm_terms`][bnnotes.weight_standardization.gradient_norm_terms]) has the coefficient
$1/(I - k)$, which is $1/I$ only for $k = 0$. And a reproduction that mixes the two conventions is
off by that factor without any error.

What was checked, and against what: the standardization formula (with $1/I$ in $\sigma_i$)
against secondary copies of the paper's formula and the authors' README snippets; the
gradient-norm identity is derived here from that formula and tested against the backward
pass, which is itself tested against autograd and finite differences. The paper's own
theorems on the gradient and the Hessian were not available to read, so nothing here says
which coefficient they print.

References
----------
- S. Qiao, H. Wang, C. Liu, W. Shen and A. Yuille, "Weight Standardization",
  arXiv:1903.10520, 2019 (later titled "Micro-Batch Training with Batch-Channel
  Normalization and Weight Standardization").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from bnnotes import _kernels as kernels
from bnnotes import _validation as check

__all__ = [
    "DEFAULT_CORRECTION",
    "DEFAULT_WS_EPS",
    "WSCache",
    "WSGradientNorm",
    "gradient_norm_terms",
    "weight_standardization_backward",
    "weight_standardization_forward",
]

DEFAULT_WS_EPS = 1e-5
r"""The $\epsilon$ the authors' code adds to the standard deviation."""

DEFAULT_CORRECTION = 0
r"""The default $k$: the population standard deviation of the paper's formula."""


def _check_weight(weight) -> np.ndarray:
    weight = check.finite_floating(weight, "weight")
    if weight.ndim < 2:
        raise ValueError(
            f"weight must have shape (out, in) or (out, in, *kernel), got {weight.shape}"
        )
    return weight


def _check_correction(correction, fan_in: int) -> int:
    if (
        isinstance(correction, bool)
        or not isinstance(correction, Integral)
        or correction < 0
    ):
        raise ValueError(
            f"correction must be an integer >= 0, got {correction!r}"
        )
    if fan_in - correction < 1:
        raise ValueError(
            f"correction ({correction}) must be smaller than the number of weights per output "
            f"channel ({fan_in})"
        )
    return int(correction)


@dataclass(frozen=True)
class WSCache:
    r"""What
    [`weight_standardization_forward`][bnnotes.weight_standardization.weight_standardization_forward]
    keeps.

    Attributes
    ----------
    w_hat : numpy.ndarray
        The standardized weight $\hat W$, shape of the weight.
    mean : numpy.ndarray
        $\mu_i$ per output channel, shape ``(out,)``.
    sigma : numpy.ndarray
        $\sigma_i$ per output channel (without $\epsilon$), shape ``(out,)``.
    eps : float
        The $\epsilon$ added to $\sigma_i$.
    correction : int
        $k$ in the divisor $I - k$ of the variance.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.weight_standardization import (
    ...     weight_standardization_forward,
    ... )
    >>> _, cache = weight_standardization_forward(
    ...     np.array([[1.0, 3.0], [2.0, 2.0]])
    ... )
    >>> cache.mean.tolist(), cache.sigma.tolist(), cache.correction
    ([2.0, 2.0], [1.0, 0.0], 0)
    """

    w_hat: np.ndarray
    mean: np.ndarray
    sigma: np.ndarray
    eps: float
    correction: int


def weight_standardization_forward(
    weight: np.ndarray,
    eps: float = DEFAULT_WS_EPS,
    correction: int = DEFAULT_CORRECTION,
) -> tuple[np.ndarray, WSCache]:
    r"""Standardize the weights of each output channel: $\hat W = (W - \mu)/(\sigma + \epsilon)$.

    Parameters
    ----------
    weight : numpy.ndarray
        $W$ of shape ``(out, in)`` or ``(out, in, *kernel)`` with a floating dtype; the
        statistics of output channel $i$ are taken over ``weight[i]`` ($I$ values).
    eps : float, optional
        $\epsilon \ge 0$ added to the standard deviation; default ``1e-5`` as in the authors'
        code. With ``eps=0`` no row may be constant.
    correction : int, optional
        $k \ge 0$ in the divisor $I - k$ of the variance: 0 (the default) is the paper's
        population standard deviation, 1 the Bessel-corrected one of ``torch.std``.

    Returns
    -------
    w_hat : numpy.ndarray
        $\hat W$, same shape and dtype as ``weight``.
    cache : WSCache
        What
        [`weight_standardization_backward`][bnnotes.weight_standardization.weight_standardization_backward]
        needs.

    Raises
    ------
    TypeError
        If ``weight`` does not have a floating dtype.
    ValueError
        If ``weight`` has fewer than 2 dimensions or non-finite values, ``eps < 0``,
        ``correction`` is not an integer in $[0, I)$, or ``eps == 0`` and a row is constant.

    Notes
    -----
    The mean is subtracted before the squares are summed (two passes), so a row with a
    large common offset keeps its accuracy in float32 too.

    Examples
    --------
    The formula, written out with NumPy, is what the function computes:

    >>> import numpy as np
    >>> from bnnotes.weight_standardization import (
    ...     weight_standardization_forward,
    ... )
    >>> W = np.random.default_rng(0).normal(size=(4, 3, 3, 3))
    >>> rows = W.reshape(4, -1)
    >>> mu = rows.mean(axis=1, keepdims=True)
    >>> sigma = np.sqrt(
    ...     ((rows - mu) ** 2).sum(axis=1, keepdims=True) / rows.shape[1]
    ... )  # 1/I
    >>> w_hat, cache = weight_standardization_forward(W)
    >>> bool(
    ...     np.allclose(
    ...         w_hat.reshape(4, -1),
    ...         (rows - mu) / (sigma + 1e-5),
    ...         rtol=1e-14,
    ...         atol=0,
    ...     )
    ... )
    True

    With ``correction=1`` the divisor is $I - 1$, as with ``torch.std``:

    >>> w_hat1, _ = weight_standardization_forward(W, correction=1)
    >>> sigma1 = rows.std(axis=1, ddof=1, keepdims=True)
    >>> bool(
    ...     np.allclose(
    ...         w_hat1.reshape(4, -1),
    ...         (rows - mu) / (sigma1 + 1e-5),
    ...         rtol=1e-14,
    ...         atol=0,
    ...     )
    ... )
    True
    """
    weight = _check_weight(weight)
    eps = check.eps_value(eps, allow_zero=True)
    out = weight.shape[0]
    fan_in = math.prod(weight.shape[1:])
    correction = _check_correction(correction, fan_in)
    mean, centered = kernels.centered(
        weight.reshape(out, fan_in), (1,), (-1, 1)
    )
    sigma = np.sqrt(
        np.einsum("ij,ij->i", centered, centered) / (fan_in - correction)
    )
    if eps == 0 and np.any(sigma == 0):
        raise ValueError(
            "with eps=0 no output channel may have constant weights (its sigma is 0)"
        )
    centered /= (sigma + np.asarray(eps, dtype=weight.dtype))[:, None]
    w_hat = centered.reshape(weight.shape)
    return w_hat, WSCache(
        w_hat=w_hat, mean=mean, sigma=sigma, eps=eps, correction=correction
    )


def weight_standardization_backward(
    dw_hat: np.ndarray, cache: WSCache
) -> np.ndarray:
    r"""The gradient with respect to $W$ from the gradient with respect to $\hat W$.

    Parameters
    ----------
    dw_hat : numpy.ndarray
        $\nabla_{\hat W}\mathcal L$, same shape as the weight.
    cache : WSCache
        From
        [`weight_standardization_forward`][bnnotes.weight_standardization.weight_standardization_forward].

    Returns
    -------
    numpy.ndarray
        $\nabla_W \mathcal L$, same shape as the weight.

    Raises
    ------
    TypeError, ValueError
        If ``dw_hat`` is not floating, not finite, or not of the weight's shape; a
        TypeError if ``cache`` is not a [`WSCache`][bnnotes.weight_standardization.WSCache].

    Notes
    -----
    Per output channel, with $G = \nabla_{\hat W}\mathcal L$, $s = \sigma + \epsilon$ and
    $\bar G$ the mean of $G$ over the row,

    $$\nabla_W \mathcal L = \frac{G - \bar G}{s} -
    \frac{\langle G, \hat W\rangle}{(I - k)\,\sigma}\,\hat W .$$

    For $\epsilon = 0$ this is $\frac1\sigma P_{\mathbf 1} P_{\hat W} G$: the gradient loses its
    component along $\mathbf 1$ and along $\hat W$. A constant row ($\sigma = 0$, possible
    only with $\epsilon > 0$) gets the second term set to 0, the one-sided limit.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.weight_standardization import (
    ...     weight_standardization_backward,
    ...     weight_standardization_forward,
    ... )
    >>> rng = np.random.default_rng(1)
    >>> W, G = rng.normal(size=(2, 6)), rng.normal(size=(2, 6))
    >>> w_hat, cache = weight_standardization_forward(W, eps=0.0)
    >>> dW = weight_standardization_backward(G, cache)
    >>> (
    ...     bool(np.allclose(dW.sum(axis=1), 0.0)),
    ...     bool(np.allclose((dW * w_hat).sum(axis=1), 0.0)),
    ... )
    (True, True)
    """
    check.cache_of(cache, WSCache, "weight_standardization_forward")
    w_hat = cache.w_hat
    dw_hat = check.same_shape(dw_hat, w_hat.shape, "dw_hat")
    out = w_hat.shape[0]
    fan_in = w_hat.size // out
    g = dw_hat.reshape(out, fan_in)
    w = w_hat.reshape(out, fan_in)
    s = cache.sigma + cache.eps
    radial = np.einsum("ij,ij->i", g, w)
    coef = np.divide(
        radial,
        (fan_in - cache.correction) * cache.sigma,
        out=np.zeros_like(radial),
        where=cache.sigma > 0,
    )
    dw = (g - g.mean(axis=1, keepdims=True)) / s[:, None]
    dw -= coef[:, None] * w
    return dw.reshape(w_hat.shape)


@dataclass(frozen=True)
class WSGradientNorm:
    r"""The two sides of the gradient-norm identity of weight standardization, per output channel.

    All attributes have shape ``(out,)``.

    Attributes
    ----------
    grad_norm_sq : numpy.ndarray
        $\lVert\nabla_W\mathcal L\rVert^2$, from the backward pass (left-hand side).
    sigma : numpy.ndarray
        $\sigma_i$.
    total : numpy.ndarray
        $\lVert G\rVert^2$ with $G = \nabla_{\hat W}\mathcal L$.
    mean_term : numpy.ndarray
        $\frac1I\langle\mathbf 1, G\rangle^2$, the squared component of $G$ along $\mathbf 1$.
    radial_term : numpy.ndarray
        $\frac{1}{I-k}\langle\hat W, G\rangle^2$, the squared component of $G$ along $\hat W$.
    predicted : numpy.ndarray
        $\frac{1}{\sigma^2}(\text{total} - \text{mean\_term} - \text{radial\_term})$
        (right-hand side).

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.weight_standardization import gradient_norm_terms
    >>> W = np.array([[1.0, 2.0, 4.0]])
    >>> terms = gradient_norm_terms(W, np.array([[1.0, 1.0, 1.0]]))
    >>> terms.total.tolist(), terms.mean_term.tolist()
    ([3.0], [3.0])
    >>> bool(np.allclose(terms.grad_norm_sq, 0.0))  # all of G is along 1
    True
    """

    grad_norm_sq: np.ndarray
    sigma: np.ndarray
    total: np.ndarray
    mean_term: np.ndarray
    radial_term: np.ndarray
    predicted: np.ndarray


def gradient_norm_terms(
    weight: np.ndarray,
    dw_hat: np.ndarray,
    correction: int = DEFAULT_CORRECTION,
) -> WSGradientNorm:
    r"""Both sides of $\lVert\nabla_W\mathcal L\rVert^2 = \frac{1}{\sigma^2}\big(\lVert G\rVert^2
    - \frac1I\langle\mathbf 1,G\rangle^2 - \frac{1}{I-k}\langle\hat W,G\rangle^2\big)$.

    Parameters
    ----------
    weight : numpy.ndarray
        $W$, shape ``(out, in)`` or ``(out, in, *kernel)``; no row may be constant.
    dw_hat : numpy.ndarray
        $G = \nabla_{\hat W}\mathcal L$, same shape.
    correction : int, optional
        $k$, as in
        [`weight_standardization_forward`][bnnotes.weight_standardization.weight_standardization_forward].

    Returns
    -------
    WSGradientNorm
        The left-hand side from the backward pass and each term of the right-hand side.

    Raises
    ------
    TypeError, ValueError
        As the forward and backward functions.

    Notes
    -----
    With $\epsilon = 0$ the row $\hat W_{i,\cdot}$ is orthogonal to $\mathbf 1$ and has squared
    norm $I - k$, so $\mathbf 1/\sqrt I$ and $\hat W/\sqrt{I-k}$ are orthonormal and the
    backward pass removes the component of $G$ along each; Pythagoras gives the identity,
    with equality. It has the shape of Theorem 4.1 of Santurkar et al. (2018) for BN, in
    weight space instead of activation space: WS treats the $I$ weights of a channel as BN
    treats the $m$ activations of a batch. Weight normalization removes only the component
    along the weight; WS also removes the mean. For $k = 0$ both coefficients are $1/I$.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.weight_standardization import gradient_norm_terms
    >>> rng = np.random.default_rng(2)
    >>> W, G = rng.normal(size=(3, 2, 3, 3)), rng.normal(size=(3, 2, 3, 3))
    >>> terms = gradient_norm_terms(W, G)
    >>> bool(
    ...     np.allclose(
    ...         terms.grad_norm_sq, terms.predicted, rtol=1e-12, atol=0
    ...     )
    ... )
    True
    >>> bool(np.all(terms.grad_norm_sq <= terms.total / terms.sigma**2))
    True
    """
    w_hat, cache = weight_standardization_forward(
        weight, eps=0.0, correction=correction
    )
    dw = weight_standardization_backward(dw_hat, cache)
    out = w_hat.shape[0]
    fan_in = w_hat.size // out
    g = np.asarray(dw_hat).reshape(out, fan_in).astype(np.float64)
    w = w_hat.reshape(out, fan_in).astype(np.float64)
    total = np.einsum("ij,ij->i", g, g)
    mean_term = g.sum(axis=1) ** 2 / fan_in
    radial_term = np.einsum("ij,ij->i", g, w) ** 2 / (
        fan_in - cache.correction
    )
    sigma = cache.sigma.astype(np.float64)
    flat = dw.reshape(out, fan_in).astype(np.float64)
    return WSGradientNorm(
        grad_norm_sq=np.einsum("ij,ij->i", flat, flat),
        sigma=sigma,
        total=total,
        mean_term=mean_term,
        radial_term=radial_term,
        predicted=(total - mean_term - radial_term) / sigma**2,
    )
