r"""Layer normalization in NumPy (Ba, Kiros & Hinton, 2016), with PyTorch's conventions.

Layer normalization computes its statistics for each example separately, over the $H$
values of the trailing ``normalized_shape`` axes:

$$\mu = \frac1H \sum_{i=1}^H a_i, \qquad \sigma^2 = \frac1H \sum_{i=1}^H (a_i - \mu)^2, \qquad
y_i = g_i\,\frac{a_i - \mu}{\sqrt{\sigma^2 + \epsilon}} + b_i .$$

No statistic is shared between examples, so the output for one example does not depend on
the batch it is in (a batch of one is fine), and there are no running averages: training
and evaluation run the same computation. The gain $g$ and bias $b$ have one value per
normalized element, as in ``torch.nn.LayerNorm(elementwise_affine=True)``.

References
----------
- J. L. Ba, J. R. Kiros and G. E. Hinton, "Layer Normalization", arXiv:1607.06450, 2016.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from bnnotes import _kernels as kernels
from bnnotes import _validation as check
from bnnotes._layers import NormLayer
from bnnotes.batchnorm import DEFAULT_EPS

__all__ = [
    "DEFAULT_EPS",
    "LayerNorm",
    "LayerNormCache",
    "layer_norm_backward",
    "layer_norm_forward",
]


# --------------------------------------------------------------------------- layer norm


def _check_normalized_shape(normalized_shape) -> tuple[int, ...]:
    if isinstance(normalized_shape, Integral) and not isinstance(
        normalized_shape, bool
    ):
        normalized_shape = (normalized_shape,)
    try:
        shape = tuple(normalized_shape)
    except TypeError:
        raise TypeError(
            f"normalized_shape must be an int or a tuple of ints, got {normalized_shape!r}"
        ) from None
    if not shape or any(
        isinstance(n, bool) or not isinstance(n, Integral) or n < 1
        for n in shape
    ):
        raise ValueError(
            f"normalized_shape must be a non-empty tuple of positive ints, got {normalized_shape!r}"
        )
    return tuple(int(n) for n in shape)


@dataclass(frozen=True)
class LayerNormCache:
    r"""What [`layer_norm_forward`][bnnotes.layernorm.layer_norm_forward]
    keeps for the backward pass.

    Attributes
    ----------
    x_hat : numpy.ndarray
        The normalized input $\hat a = (a - \mu)/\sqrt{\sigma^2 + \epsilon}$, shape of the input.
    mean : numpy.ndarray
        $\mu$, one value per example: shape ``x.shape[:-k]`` for a
        ``normalized_shape`` of length ``k``.
    var : numpy.ndarray
        $\sigma^2$, the biased (1/H) variance, same shape as ``mean``.
    inv_std : numpy.ndarray
        $1/\sqrt{\sigma^2 + \epsilon}$, same shape as ``mean``.
    gamma : numpy.ndarray or None
        The gain used in the forward pass (None means a gain of 1).
    eps : float
        The $\epsilon$ used in the forward pass.
    normalized_shape : tuple of int
        The trailing axes the statistics were taken over; $H$ is their product.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.layernorm import layer_norm_forward
    >>> x = np.array([[1.0, 3.0], [0.0, 4.0], [2.0, 2.0]])
    >>> _, cache = layer_norm_forward(x, 2)
    >>> cache.mean.tolist(), cache.var.tolist()
    ([2.0, 2.0, 2.0], [1.0, 4.0, 0.0])
    """

    x_hat: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    inv_std: np.ndarray
    gamma: np.ndarray | None
    eps: float
    normalized_shape: tuple[int, ...]


def layer_norm_forward(
    x: np.ndarray,
    normalized_shape: int | tuple[int, ...],
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    eps: float = DEFAULT_EPS,
) -> tuple[np.ndarray, LayerNormCache]:
    r"""Layer normalization over the trailing ``normalized_shape`` axes of each example.

    Parameters
    ----------
    x : numpy.ndarray
        Input whose last ``len(normalized_shape)`` axes equal ``normalized_shape``, for
        example ``(N, H)``, ``(N, T, H)`` or ``(N, C, H, W)`` with
        ``normalized_shape=(C, H, W)``. Floating dtype.
    normalized_shape : int or tuple of int
        The axes to normalize over, as in ``torch.nn.functional.layer_norm``.
    gamma : numpy.ndarray or None, optional
        Gain $g$ of shape ``normalized_shape``; None means $g = 1$.
    beta : numpy.ndarray or None, optional
        Bias $b$ of shape ``normalized_shape``; None means $b = 0$.
    eps : float, optional
        $\epsilon > 0$ added to the variance, default ``1e-5`` (PyTorch's).

    Returns
    -------
    y : numpy.ndarray
        $y = g \odot \hat a + b$, same shape and dtype as ``x``.
    cache : LayerNormCache
        What [`layer_norm_backward`][bnnotes.layernorm.layer_norm_backward] needs.

    Raises
    ------
    TypeError
        If ``x``, ``gamma`` or ``beta`` does not have a floating dtype, or
        ``normalized_shape`` is not an int or a sequence of ints.
    ValueError
        If the trailing axes of ``x`` do not equal ``normalized_shape``, ``gamma`` or
        ``beta`` has another shape, ``eps <= 0``, or a value is not finite.

    Notes
    -----
    Rescaling an example by $\alpha \ne 0$ gives

    $$\mathrm{LN}_\epsilon(\alpha a) =
    \operatorname{sign}(\alpha)\,\mathrm{LN}_{\epsilon/\alpha^2}(a),$$

    because the mean scales by $\alpha$ and the variance by $\alpha^2$. So LN is invariant
    to rescaling an example only for $\alpha > 0$, and only up to the change of $\epsilon$:
    a negative $\alpha$ flips the sign of $\hat a$, and a small $|\alpha|$ lets $\epsilon$
    dominate. The variance is computed from centered values (two passes), never as
    $E[a^2] - E[a]^2$.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.layernorm import layer_norm_forward
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, size=(4, 6))
    >>> y, cache = layer_norm_forward(x, 6)
    >>> bool(np.allclose(y.mean(axis=1), 0.0)), cache.mean.shape
    (True, (4,))

    One example gives the same output alone as inside the batch:

    >>> y_alone, _ = layer_norm_forward(x[2:3], 6)
    >>> bool(np.array_equal(y_alone[0], y[2]))
    True

    A negative scale flips the sign:

    >>> y_neg, _ = layer_norm_forward(-2.0 * x, 6, eps=1e-5 * 4.0)
    >>> bool(np.allclose(y_neg, -y, rtol=1e-12, atol=1e-12))
    True
    """
    shape = _check_normalized_shape(normalized_shape)
    x = check.finite_floating(x, "input")
    k = len(shape)
    if x.ndim < k or x.shape[x.ndim - k :] != shape:
        raise ValueError(
            f"the last {k} axes of the input must equal normalized_shape {shape}, got input shape "
            f"{x.shape}"
        )
    gamma = check.optional_vector(gamma, shape, "gamma")
    beta = check.optional_vector(beta, shape, "beta")
    eps = check.eps_value(eps)

    lead = x.shape[: x.ndim - k]
    rows = x.reshape(-1, math.prod(shape))
    x_hat, mean, var, inv_std = kernels.normalize_rows(rows, eps)
    x_hat = x_hat.reshape(x.shape)
    y = x_hat
    if gamma is not None:
        y = y * gamma.astype(x.dtype, copy=False)
    if beta is not None:
        y = y + beta.astype(x.dtype, copy=False)
    if (
        y is x_hat
    ):  # no affine map: a copy, so that changing y in place cannot change the cache
        y = x_hat.copy(order="K")
    cache = LayerNormCache(
        x_hat=x_hat,
        mean=mean.reshape(lead),
        var=var.reshape(lead),
        inv_std=inv_std.reshape(lead),
        gamma=gamma,
        eps=eps,
        normalized_shape=shape,
    )
    return y, cache


def layer_norm_backward(
    dy: np.ndarray, cache: LayerNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gradients of layer normalization.

    Parameters
    ----------
    dy : numpy.ndarray
        Upstream gradient $\partial\ell/\partial y$, same shape as the forward input.
    cache : LayerNormCache
        The cache returned by [`layer_norm_forward`][bnnotes.layernorm.layer_norm_forward].

    Returns
    -------
    dx : numpy.ndarray
        $\partial\ell/\partial a$, same shape as ``dy``.
    dgamma : numpy.ndarray
        $\partial\ell/\partial g
        = \sum_{\text{examples}} \frac{\partial\ell}{\partial y}\odot\hat a$, shape
        ``normalized_shape`` (also when the forward pass used no gain).
    dbeta : numpy.ndarray
        $\partial\ell/\partial b = \sum_{\text{examples}} \frac{\partial\ell}{\partial y}$,
        shape ``normalized_shape``.

    Raises
    ------
    TypeError
        If ``dy`` does not have a floating dtype, or ``cache`` is not a
        [`LayerNormCache`][bnnotes.layernorm.LayerNormCache].
    ValueError
        If ``dy`` does not have the input's shape or is not finite.

    Notes
    -----
    Per example, with $\delta = g \odot \partial\ell/\partial y$ and bars for means over the
    $H$ normalized values,

    $$\frac{\partial\ell}{\partial a_i} = \frac{1}{\sqrt{\sigma^2+\epsilon}}
    \Big(\delta_i - \bar\delta - \hat a_i\,\overline{\delta\,\hat a}\Big).$$

    This is batch normalization's backward pass with the roles of the axes exchanged: the
    gradient of each example is orthogonal to $\mathbf 1$ and, up to $\epsilon$, to $\hat a$.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.layernorm import layer_norm_backward, layer_norm_forward
    >>> rng = np.random.default_rng(1)
    >>> x, dy = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    >>> _, cache = layer_norm_forward(x, 5, eps=1e-12)
    >>> dx, dgamma, dbeta = layer_norm_backward(dy, cache)
    >>> (
    ...     bool(np.allclose(dx.sum(axis=1), 0.0)),
    ...     bool(np.allclose((dx * cache.x_hat).sum(axis=1), 0.0)),
    ... )
    (True, True)
    """
    check.cache_of(cache, LayerNormCache, "layer_norm_forward")
    shape = cache.normalized_shape
    dy = check.same_shape(dy, cache.x_hat.shape)
    h = math.prod(shape)
    dy_rows = dy.reshape(-1, h)
    x_hat_rows = cache.x_hat.reshape(-1, h)
    dgamma = np.einsum("ij,ij->j", dy_rows, x_hat_rows).reshape(shape)
    dbeta = dy_rows.sum(axis=0).reshape(shape)
    dx_hat = (
        dy_rows
        if cache.gamma is None
        else dy_rows * cache.gamma.reshape(-1).astype(dy.dtype, copy=False)
    )
    dx = kernels.rows_input_grad(dx_hat, x_hat_rows, cache.inv_std.reshape(-1))
    return dx.reshape(dy.shape), dgamma, dbeta


# --------------------------------------------------------------------------- the layer


class LayerNorm(NormLayer):
    r"""A layer normalization layer with PyTorch's semantics, in NumPy.

    The counterpart of ``torch.nn.LayerNorm``, with the conventions of
    [`BatchNorm`][bnnotes.batchnorm.BatchNorm]: ``train()`` / ``eval()``, the parameters
    ``weight`` and ``bias``, a ``state_dict`` with torch's keys, and a
    [`backward`][bnnotes.layernorm.LayerNorm.backward] that sets ``weight_grad`` and
    ``bias_grad``.

    Parameters
    ----------
    normalized_shape : int or tuple of int
        The trailing axes to normalize over, as in ``torch.nn.LayerNorm``.
    eps : float, optional
        $\epsilon > 0$ added to the variance, default ``1e-5``.
    elementwise_affine : bool, optional
        Whether there is a gain ``weight`` (initialized to 1) and, with ``bias``, a shift
        ``bias`` (initialized to 0), each of shape ``normalized_shape``. Default True.
    bias : bool, optional
        Whether the affine map has a shift, as torch's ``bias`` argument. Default True.
    dtype : numpy dtype, optional
        Dtype of the parameters, default ``numpy.float64``.

    Raises
    ------
    TypeError, ValueError
        On a ``normalized_shape`` that is not a non-empty tuple of positive ints, an
        ``eps`` that is not a finite number > 0, or a non-floating dtype.

    Notes
    -----
    Layer normalization has no batch statistics, so training and evaluation mode compute
    the same thing (the mode is kept for the common interface, as in torch). A call that
    raises leaves every attribute as it was.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.layernorm import LayerNorm
    >>> layer = LayerNorm(4)
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, size=(5, 4))
    >>> y = layer(x)
    >>> bool(np.allclose(y.mean(axis=1), 0.0))
    True
    >>> sorted(layer.state_dict())
    ['bias', 'weight']
    >>> dx = layer.backward(np.ones_like(y))
    >>> layer.weight_grad.shape, bool(np.allclose(dx, 0.0))
    ((4,), True)
    """

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...],
        eps: float = DEFAULT_EPS,
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype=np.float64,
    ) -> None:
        self.normalized_shape = _check_normalized_shape(normalized_shape)
        self.eps = check.eps_value(eps)
        self.dtype = check.floating_dtype(dtype)
        self.elementwise_affine = bool(elementwise_affine)
        shape = self.normalized_shape
        self.weight = (
            np.ones(shape, self.dtype) if self.elementwise_affine else None
        )
        self.bias = (
            np.zeros(shape, self.dtype)
            if self.elementwise_affine and bias
            else None
        )
        self.training = True
        self.weight_grad = self.bias_grad = None
        self._cache = None

    def __repr__(self) -> str:
        return (
            f"LayerNorm({self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None})"
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Normalize each example of ``x`` over its trailing ``normalized_shape`` axes.

        Raises
        ------
        TypeError, ValueError
            As [`layer_norm_forward`][bnnotes.layernorm.layer_norm_forward].
        """
        y, self._cache = layer_norm_forward(
            x, self.normalized_shape, self.weight, self.bias, self.eps
        )
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        r"""Gradient with respect to the input of the last forward call.

        Sets ``weight_grad`` and ``bias_grad`` (for the parameters the layer has) and
        returns $\partial\ell/\partial x$.

        Raises
        ------
        RuntimeError
            If no forward pass has been made.
        TypeError, ValueError
            As [`layer_norm_backward`][bnnotes.layernorm.layer_norm_backward].
        """
        dx, dgamma, dbeta = layer_norm_backward(dy, self._last_cache())
        self._set_grads(dgamma, dbeta)
        return dx
