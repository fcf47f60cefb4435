r"""Scale invariance of BN with respect to the weights before it (Ioffe & Szegedy, Sec. 3.3).

For a linear layer $W$ followed by BN without affine parameters, evaluated on a mini-batch
$u$ of shape ``(m, d_in)``,

$$\mathrm{BN}((aW)u) = \mathrm{BN}(Wu), \qquad
\frac{\partial\,\mathrm{BN}((aW)u)}{\partial u} =
\frac{\partial\,\mathrm{BN}(Wu)}{\partial u}, \qquad
\frac{\partial\,\mathrm{BN}((aW)u)}{\partial (aW)} =
\frac1a\,\frac{\partial\,\mathrm{BN}(Wu)}{\partial W}$$

for every $a > 0$, exactly when $\epsilon = 0$. With $\epsilon > 0$ the identity becomes
$\mathrm{BN}_\epsilon((aW)u) = \mathrm{BN}_{\epsilon/a^2}(Wu)$. The functions here evaluate
both sides with [`batch_norm_forward`][bnnotes.batchnorm.batch_norm_forward] and its backward pass.
"""

from __future__ import annotations

import numpy as np

from bnnotes import _validation as check
from bnnotes.batchnorm import batch_norm_backward, batch_norm_forward

__all__ = ["bn_linear", "bn_linear_grads", "effective_step"]


def _check(u: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u, weight = np.asarray(u), np.asarray(weight)
    if u.ndim != 2 or weight.ndim != 2:
        raise ValueError(
            f"u must be (m, d_in) and weight (d_out, d_in), got {u.shape} and {weight.shape}"
        )
    if u.shape[1] != weight.shape[1]:
        raise ValueError(
            f"u has {u.shape[1]} features but weight expects {weight.shape[1]}"
        )
    return u, weight


def bn_linear(
    u: np.ndarray, weight: np.ndarray, eps: float = 0.0
) -> np.ndarray:
    r"""$\mathrm{BN}(Wu)$ over the mini-batch $u$, without scale and shift.

    Parameters
    ----------
    u : numpy.ndarray
        Mini-batch of inputs, shape ``(m, d_in)``, $m \ge 2$.
    weight : numpy.ndarray
        $W$, shape ``(d_out, d_in)``.
    eps : float, optional
        $\epsilon \ge 0$; the default 0 is the setting in which the identities are exact.
        With ``eps=0`` every output unit must vary over the batch.

    Returns
    -------
    numpy.ndarray
        Shape ``(m, d_out)``.

    Raises
    ------
    ValueError
        On mismatched shapes, ``eps < 0``, or a unit with zero variance when ``eps == 0``.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.scale_invariance import bn_linear
    >>> rng = np.random.default_rng(0)
    >>> u, W = rng.normal(size=(8, 5)), rng.normal(size=(3, 5))
    >>> bool(
    ...     np.allclose(
    ...         bn_linear(u, 10.0 * W), bn_linear(u, W), rtol=1e-12, atol=1e-13
    ...     )
    ... )
    True
    """
    y, _ = _forward(u, weight, eps)
    return y


def _forward(u, weight, eps):
    u, weight = _check(u, weight)
    eps = check.eps_value(eps, allow_zero=True)
    z = u @ weight.T
    if eps == 0.0:
        # Algorithm 1 with epsilon -> 0: divide by the exact standard deviation.
        if np.any(z.var(axis=0) == 0.0):
            raise ValueError(
                "with eps=0 every output unit must vary over the mini-batch"
            )
        tiny = np.finfo(z.dtype).tiny
        return batch_norm_forward(z, None, None, eps=tiny)
    return batch_norm_forward(z, None, None, eps=eps)


def bn_linear_grads(
    u: np.ndarray, weight: np.ndarray, dy: np.ndarray, eps: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    r"""Gradients of $\langle dy, \mathrm{BN}(Wu)\rangle$ with respect to $u$ and $W$.

    Parameters
    ----------
    u, weight, eps
        As in [`bn_linear`][bnnotes.scale_invariance.bn_linear].
    dy : numpy.ndarray
        Upstream gradient, shape ``(m, d_out)``.

    Returns
    -------
    du : numpy.ndarray
        Shape ``(m, d_in)``: $\partial\ell/\partial u = (\partial\ell/\partial z)\,W$.
    dweight : numpy.ndarray
        Shape ``(d_out, d_in)``: $\partial\ell/\partial W = (\partial\ell/\partial z)^\top u$.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.scale_invariance import bn_linear_grads
    >>> rng = np.random.default_rng(1)
    >>> u, W, dy = (
    ...     rng.normal(size=(8, 5)),
    ...     rng.normal(size=(3, 5)),
    ...     rng.normal(size=(8, 3)),
    ... )
    >>> du1, dW1 = bn_linear_grads(u, W, dy)
    >>> du4, dW4 = bn_linear_grads(u, 4.0 * W, dy)
    >>> bool(np.allclose(du4, du1)), bool(np.allclose(dW4, dW1 / 4.0))
    (True, True)
    """
    _, cache = _forward(u, weight, eps)
    dz, _, _ = batch_norm_backward(dy, cache)
    return dz @ np.asarray(weight), dz.T @ np.asarray(u)


def effective_step(weight: np.ndarray, grad: np.ndarray, lr: float) -> float:
    r"""Relative size of one SGD step, $\lVert \eta\,\nabla_W \ell \rVert / \lVert W \rVert$.

    For a scale-invariant layer $\nabla_{aW}\ell = \nabla_W \ell / a$, so this ratio falls as
    $1/a^2$ when the weight grows by $a$: a growing weight learns with a smaller
    effective learning rate.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.scale_invariance import effective_step
    >>> W, g = np.ones((2, 2)), np.ones((2, 2))
    >>> effective_step(2 * W, g / 2, lr=0.1) / effective_step(W, g, lr=0.1)
    0.25
    """
    return float(lr * np.linalg.norm(grad) / np.linalg.norm(weight))
