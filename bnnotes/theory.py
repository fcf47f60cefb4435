r"""The theory of Section 4 of Santurkar et al. (2018), computed exactly in NumPy (float64).

The setting is one batch-normalization layer after a linear layer, followed by an
arbitrary downstream loss. A batch of $m$ inputs $x^{(b)}$ goes through $y = Wx$; for one
unit $j$ the vector $y_j \in \mathbb R^m$ holds its values over the batch and

$$\mu_j = \frac1m \sum_b y_j^{(b)}, \qquad
\sigma_j = \sqrt{\frac1m \sum_b \big(y_j^{(b)} - \mu_j\big)^2}, \qquad
\hat y_j = \frac{y_j - \mu_j}{\sigma_j}, \qquad z_j = \gamma \hat y_j + \beta,$$

with $\epsilon = 0$, the $1/m$ (biased) standard deviation, and $\gamma, \beta$ held
constant. The downstream loss $\mathcal L$ is any twice differentiable function of the
layer's output. The network without BN feeds it $y$; the network with BN feeds it $z$, and
its loss as a function of $y$ is $\hat{\mathcal L}(y) = \mathcal L(\gamma\hat y + \beta)$.

Notes
-----
**Our reading of the symbols.** $\hat g_j = \nabla_{y_j}\mathcal L$ and
$H_{jj} = \partial^2\mathcal L / \partial y_j\,\partial y_j$ are the gradient and the Hessian
block of the downstream loss with respect to its input (unit $j$, over the batch),
evaluated at the point $z$ that the BN network feeds it. With that reading Theorem 4.1
(coefficient $1/m$) and the first form of Theorem 4.2 hold with equality, and the second
form of Theorem 4.2, as transcribed, can fail (see
[`hessian_quadratic_form`][bnnotes.theory.hessian_quadratic_form]). The functions below
take $\hat g_j$ (``grad_z``) and $H_{jj}$ (``hess_z``) as arrays;
[`unit_derivatives`][bnnotes.theory.unit_derivatives] extracts them from a downstream loss
object such as [`QuadraticLoss`][bnnotes.theory.QuadraticLoss] or
[`SoftmaxCrossEntropy`][bnnotes.theory.SoftmaxCrossEntropy].

**The sign of $\gamma$.** Every identity here holds for any real $\gamma$, negative or zero
included, with the signed value: $\gamma^2/\sigma^2$ is even in $\gamma$, the curvature term
$\gamma/(m\sigma^2)$ is odd. For $\gamma < 0$ the term of Theorem 4.2 that reduces the
curvature is non-negative when $\gamma\langle\hat g_j, \hat y_j\rangle \ge 0$, not when
$\langle\hat g_j, \hat y_j\rangle \ge 0$.
[`reproduce_activations`][bnnotes.theory.reproduce_activations] returns the positive
$\gamma = \sigma_j$ of Observation 4.3.

References
----------
- S. Santurkar, D. Tsipras, A. Ilyas and A. Madry, "How Does Batch Normalization Help
  Optimization?", NeurIPS 2018, arXiv:1805.11604, Section 4 and Appendix C. The statements
  of Theorem 4.2 and Lemma 4.5 are checked as transcribed by secondary accounts of the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bnnotes import _validation as check

__all__ = [
    "BatchStatistics",
    "InitializationGain",
    "LinearBN",
    "LipschitzTerms",
    "QuadraticLoss",
    "SmoothnessTerms",
    "SoftmaxCrossEntropy",
    "bn_backward",
    "bn_jacobian",
    "bn_loss_hessian",
    "gradient_norm_bound",
    "hessian_quadratic_form",
    "initialization_gain",
    "linear_bn",
    "reproduce_activations",
    "standardize",
    "unit_derivatives",
]

_COEFFICIENTS = ("1/m", "1/sqrt(m)")


# --------------------------------------------------------------------------- input checks


def _batch(y, name: str = "y") -> np.ndarray:
    """A finite floating vector (m,) or matrix (m, n) with m >= 2, as float64."""
    y = check.finite_floating(y, name)
    if y.ndim not in (1, 2):
        raise ValueError(
            f"{name} must have shape (m,) or (m, n), got {y.shape}"
        )
    if y.shape[0] < 2:
        raise ValueError(
            f"{name} must hold a batch of m >= 2 values per unit, got m = {y.shape[0]}"
        )
    if y.ndim == 2 and y.shape[1] < 1:
        raise ValueError(
            f"{name} must have at least one unit (column), got shape {y.shape}"
        )
    return y.astype(np.float64)


def _unit_vector(v, m: int, name: str) -> np.ndarray:
    """A finite floating vector of shape (m,), as float64."""
    v = check.finite_floating(v, name)
    if v.shape != (m,):
        raise ValueError(
            f"{name} must have shape ({m},) like y, got {v.shape}"
        )
    return v.astype(np.float64)


def _symmetric(h, m: int, name: str) -> np.ndarray:
    """A finite floating symmetric (m, m) matrix, as float64."""
    h = check.finite_floating(h, name)
    if h.shape != (m, m):
        raise ValueError(f"{name} must have shape ({m}, {m}), got {h.shape}")
    h = h.astype(np.float64)
    if not np.allclose(
        h, h.T, rtol=0, atol=1e-12 * max(float(np.abs(h).max()), 1e-300)
    ):
        raise ValueError(
            f"{name} must be symmetric (a Hessian), got a matrix with |H - H^T| up to "
            f"{float(np.abs(h - h.T).max()):.3g}"
        )
    return h


def _per_unit(v, n: int, name: str) -> np.ndarray:
    """A scalar or a (n,) vector of finite reals, as a float64 (n,) vector."""
    if np.ndim(v) == 0:
        return np.full(n, check.finite_real(v, name))
    v = check.finite_floating(v, name)
    if v.shape != (n,):
        raise ValueError(
            f"{name} must be a scalar or have shape ({n},), got {v.shape}"
        )
    return v.astype(np.float64)


# --------------------------------------------------------------------------- the BN forward pass


@dataclass(frozen=True)
class BatchStatistics:
    r"""The standardized batch and its statistics, per unit.

    Attributes
    ----------
    y_hat : numpy.ndarray
        $\hat y = (y - \mu)/\sigma$, shape of ``y``; each unit has $\sum_b \hat y^{(b)} = 0$
        and $\sum_b (\hat y^{(b)})^2 = m$.
    mean : numpy.ndarray or float
        $\mu$ per unit (a float for a single unit).
    sigma : numpy.ndarray or float
        $\sigma$, the $1/m$ standard deviation, per unit (a float for a single unit).

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.theory import standardize
    >>> s = standardize(np.array([1.0, 3.0]))
    >>> s.y_hat.tolist(), s.mean, s.sigma
    ([-1.0, 1.0], 2.0, 1.0)
    """

    y_hat: np.ndarray
    mean: np.ndarray | float
    sigma: np.ndarray | float


def standardize(y: np.ndarray) -> BatchStatistics:
    r"""$\hat y = (y - \mu)/\sigma$ per unit over the batch, with $\epsilon = 0$ and the
    $1/m$ standard deviation.

    Parameters
    ----------
    y : numpy.ndarray
        The pre-BN activations, shape ``(m,)`` for one unit or ``(m, n)`` for $n$ units
        (rows are the examples of the batch), floating dtype, $m \ge 2$.

    Returns
    -------
    BatchStatistics
        $\hat y$ (float64), $\mu$ and $\sigma$.

    Raises
    ------
    TypeError
        If ``y`` does not have a floating dtype.
    ValueError
        If ``y`` has the wrong number of dimensions, $m < 2$, non-finite values, or a unit
        that is constant over the batch ($\sigma = 0$, where BN with $\epsilon = 0$ is
        undefined); the message names the unit.

    Notes
    -----
    The variance is computed in two passes, $\sigma^2 = \frac1m\sum_b (y^{(b)} - \mu)^2$ after
    the mean is subtracted, never as $\mathrm E[y^2] - \mu^2$. A unit whose spread is tiny
    compared with its mean still loses relative accuracy of about
    $10^{-16}|\mu|/\sigma$ in $\hat y$.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.theory import standardize
    >>> stats = standardize(np.array([1.0, 2.0, 3.0, 6.0]))
    >>> stats.mean, stats.sigma
    (3.0, 1.8708286933869707)
    >>> y_hat = stats.y_hat
    >>> (
    ...     bool(abs(y_hat.sum()) < 1e-15),
    ...     bool(np.isclose((y_hat**2).sum(), 4.0, rtol=1e-15)),
    ... )
    (True, True)
    """
    y = _batch(y)
    mean = y.mean(axis=0)
    centered = y - mean
    sigma = np.sqrt(np.mean(centered * centered, axis=0))
    if y.ndim == 1:
        if sigma == 0:
            raise ValueError(
                "y is constant over the batch (sigma = 0): BN with eps = 0 is undefined there"
            )
        return BatchStatistics(
            y_hat=centered / sigma, mean=float(mean), sigma=float(sigma)
        )
    constant = np.flatnonzero(sigma == 0)
    if constant.size:
        raise ValueError(
            f"column {int(constant[0])} of y is constant over the batch (sigma = 0): "
            "BN with eps = 0 is undefined there"
        )
    return BatchStatistics(y_hat=centered / sigma, mean=mean, sigma=sigma)


@dataclass(frozen=True)
class LinearBN:
    r"""A linear layer followed by BN, $y = W x$ and $z = \gamma\hat y + \beta$, over one batch.

    Attributes
    ----------
    y : numpy.ndarray
        Pre-BN activations $y^{(b)} = W x^{(b)}$, shape ``(m, n)``.
    stats : BatchStatistics
        $\hat y$, $\mu$ and $\sigma$ of each of the $n$ units.
    z : numpy.ndarray
        The BN output $\gamma\hat y + \beta$, shape ``(m, n)``.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.theory import linear_bn
    >>> out = linear_bn(np.array([[1.0], [3.0]]), np.array([[2.0]]), gamma=0.5)
    >>> out.y.ravel().tolist(), out.z.ravel().tolist()
    ([2.0, 6.0], [-0.5, 0.5])
    """

    y: np.ndarray
    stats: BatchStatistics
    z: np.ndarray


def linear_bn(
    x: np.ndarray, weight: np.ndarray, gamma=1.0, beta=0.0
) -> LinearBN:
    r"""The activations of $x \mapsto \gamma\,\mathrm{BN}(Wx) + \beta$ on a batch
    (training mode, $\epsilon = 0$).

    Parameters
    ----------
    x : numpy.ndarray
        Inputs, shape ``(m, d)``, one example per row, $m \ge 2$.
    weight : numpy.ndarray
        $W$, shape ``(n, d)``.
    gamma, beta : float or numpy.ndarray, optional
        Scale and shift, scalars or shape ``(n,)``; any finite real values (a negative
        $\gamma$ flips the sign of a unit's output).

    Returns
    -------
    LinearBN
        $y$, its batch statistics and $z$.

    Raises
    ------
    TypeError, ValueError
        On non-floating or non-finite arrays, mismatched shapes, $m < 2$, or a unit whose
        pre-activation is constant over the batch (the message names its column).

    Examples
    --------
    BN makes the layer invariant to a positive rescaling of each row of $W$:

    >>> import numpy as np
    >>> from bnnotes.theory import linear_bn
    >>> rng = np.random.default_rng(0)
    >>> x, W = rng.normal(size=(8, 3)), rng.normal(size=(2, 3))
    >>> a = linear_bn(x, W, gamma=2.0, beta=0.5).z
    >>> b = linear_bn(x, np.array([[3.0], [0.1]]) * W, gamma=2.0, beta=0.5).z
    >>> bool(np.allclose(a, b, rtol=1e-13, atol=1e-13))
    True
    """
    x = check.finite_floating(x, "x")
    weight = check.finite_floating(weight, "weight")
    if x.ndim != 2:
        raise ValueError(f"x must have shape (m, d), got {x.shape}")
    if weight.ndim != 2 or weight.shape[1] != x.shape[1]:
        raise ValueError(
            f"weight must have shape (n, {x.shape[1]}) to match x of shape {x.shape}, got "
            f"{weight.shape}"
        )
    n = weight.shape[0]
    gamma = _per_unit(gamma, n, "gamma")
    beta = _per_unit(beta, n, "beta")
    y = x.astype(np.float64) @ weight.astype(np.float64).T
    stats = standardize(y)
    return LinearBN(y=y, stats=stats, z=gamma * stats.y_hat + beta)


# ------------------------------------------------------------------------- Fact C.2 and Theorem 4.1


def bn_jacobian(y: np.ndarray) -> np.ndarray:
    r"""The Jacobian of $\hat y$ with respect to $y$ for one unit (Fact C.2
    of Santurkar et al., 2018).

    Parameters
    ----------
    y : numpy.ndarray
        One unit's pre-BN values over the batch, shape ``(m,)``, not constant.

    Returns
    -------
    numpy.ndarray
        The symmetric ``(m, m)`` matrix with entries
        $\partial\hat y^{(b)}/\partial y^{(k)}
        = \frac1\sigma\big(\mathbb 1[b=k] - \frac1m - \frac1m\hat y^{(b)}\hat y^{(k)}\big)$.

    Raises
    ------
    TypeError, ValueError
        As [`standardize`][bnnotes.theory.standardize], and if ``y`` is not one-dimensional.

    Notes
    -----
    From $\partial\mu/\partial y^{(k)} = 1/m$ and
    $\partial\sigma/\partial y^{(k)} = (y^{(k)} - \mu)/(m\sigma) = \hat y^{(k)}/m$, the quotient
    rule gives the entries above. As a matrix the Jacobian is $\frac1\sigma P$ with
    $P = I - uu^\top - vv^\top$, $u = \mathbf 1/\sqrt m$ and $v = \hat y/\sqrt m$. Because
    $\langle\mathbf 1, \hat y\rangle = 0$ and $\lVert\hat y\rVert^2 = m$, $u$ and $v$ are
    orthonormal, so $P$ is the orthogonal projection onto the complement of both.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.theory import bn_jacobian, standardize
    >>> y = np.random.default_rng(0).normal(size=5)
    >>> J, sigma = bn_jacobian(y), standardize(y).sigma
    >>> P = sigma * J
    >>> (
    ...     bool(np.allclose(P @ P, P, atol=1e-14)),
    ...     bool(np.allclose(P, P.T, atol=0)),
    ... )
    (True, True)
    >>> (
    ...     bool(np.allclose(P @ np.ones(5), 0.0, atol=1e-14)),
    ...     round(float(np.trace(P)), 12),
    ... )
    (True, 3.0)
    """
    stats = _one_unit(y)
    m = stats.y_hat.size
    v = stats.y_hat
    return (np.eye(m) - 1.0 / m - np.outer(v, v) / m) / stats.sigma


def _one_unit(y) -> BatchStatistics:
    y = _batch(y)
    if y.ndim != 1:
        raise ValueError(
            f"y must hold one unit's batch, shape (m,), got {y.shape}"
        )
    return standardize(y)


def _project(g: np.ndarray, y_hat: np.ndarray) -> np.ndarray:
    """P g: g without its components along 1 and y_hat (both of squared norm m, orthogonal)."""
    m = g.size
    return g - g.mean() - y_hat * (y_hat @ g) / m


def bn_backward(grad_z: np.ndarray, y: np.ndarray, gamma: float) -> np.ndarray:
    r"""$\nabla_{y}\hat{\mathcal L}$ from $\hat g = \nabla_z\mathcal L$ for one
    unit: the BN backward pass.

    Parameters
    ----------
    grad_z : numpy.ndarray
        $\hat g$, the gradient of the downstream loss with respect to the BN output $z$ of
        this unit, shape ``(m,)``.
    y : numpy.ndarray
        The unit's pre-BN values over the batch, shape ``(m,)``, not constant.
    gamma : float
        The scale $\gamma$ (any finite real).

    Returns
    -------
    numpy.ndarray
        $\frac\gamma\sigma\big(\hat g - \frac1m\langle\mathbf 1,\hat g\rangle\mathbf 1
        - \frac1m\langle\hat y,\hat g\rangle\hat y\big)$, shape ``(m,)``.

    Raises
    ------
    TypeError, ValueError
        On wrong shapes, non-finite values, $m < 2$, a constant ``y`` or a non-real ``gamma``.

    Notes
    -----
    $z = \gamma\hat y + \beta$, so $\nabla_y\hat{\mathcal L} = \gamma J^\top\hat g$ with $J$ the
    matrix of [`bn_jacobian`][bnnotes.theory.bn_jacobian]; $J$ is symmetric and equal to
    $\frac1\sigma P$, which gives the formula. It is the compact form of the BN backward
    pass, restricted to one unit.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.theory import bn_backward, bn_jacobian
    >>> rng = np.random.default_rng(1)
    >>> y, g = rng.normal(size=6), rng.normal(size=6)
    >>> bool(
    ...     np.allclose(
    ...         bn_backward(g, y, 2.5),
    ...         2.5 * bn_jacobian(y).T @ g,
    ...         rtol=1e-13,
    ...         atol=0,
    ...     )
    ... )
    True
    """
    stats = _one_unit(y)
    g = _unit_vector(grad_z, stats.y_hat.size, "grad_z")
    gamma = check.finite_real(gamma, "gamma")
    return (gamma / stats.sigma) * _project(g, stats.y_hat)


@dataclass(frozen=True)
class LipschitzTerms:
    r"""Both sides of Theorem 4.1 of Santurkar et al. (2018) for one unit.

    Attributes
    ----------
    lhs : float
        $\lVert\nabla_{y_j}\hat{\mathcal L}\rVert^2$, from the backward pass.
    scale : float
        $\gamma^2/\sigma_j^2$.
    total : float
        $\lVert\hat g_j\rVert^2$.
    mean_term : float
        $\frac1m\langle\mathbf 1, \hat g_j\rangle^2$.
    correlation_term : float
        $c\,\langle\hat g_j, \hat y_j\rangle^2$, with $c$ the chosen coefficient.
    coefficient : float
        $c$: $1/m$ or $1/\sqrt m$ (or a number given directly).
    rhs : float
        $\frac{\gamma^2}{\sigma_j^2}(\text{total} - \text{mean\_term} - \text{correlation\_term})$.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.theory import gradient_norm_bound
    >>> rng = np.random.default_rng(0)
    >>> t = gradient_norm_bound(rng.normal(size=8), rng.normal(size=8), 1.5)
    >>> bool(np.isclose(t.lhs, t.rhs)), t.coefficient
    (True, 0.125)
    """

    lhs: float
    scale: float
    total: float
    mean_term: float
    correlation_term: float
    coefficient: float
    rhs: float


def _coefficient(coefficient, m: int) -> float:
    if isinstance(coefficient, str):
        if coefficient == "1/m":
            return 1.0 / m
        if coefficient == "1/sqrt(m)":
            return 1.0 / np.sqrt(m)
        raise ValueError(
            f"coefficient must be one of {_COEFFICIENTS} or a number >= 0, got {coefficient!r}"
        )
    return check.nonnegative(coefficient, "coefficient", allow_zero=True)


def gradient_norm_bound(
    grad_z: np.ndarray, y: np.ndarray, gamma: float, coefficient="1/m"
) -> LipschitzTerms:
    r"""Both sides of Theorem 4.1, with the coefficient of the last term as a parameter.

    Theorem 4.1 of Santurkar et al. (2018) states

    $$\lVert\nabla_{y_j}\hat{\mathcal L}\rVert^2 \le
    \frac{\gamma^2}{\sigma_j^2}\Big(\lVert\hat g_j\rVert^2
    - \frac1m\langle\mathbf 1,\hat g_j\rangle^2 - c\,\langle\hat g_j,\hat y_j\rangle^2\Big),$$

    where secondary accounts print $c = 1/m$ or $c = 1/\sqrt m$.

    Parameters
    ----------
    grad_z : numpy.ndarray
        $\hat g_j = \nabla_{z_j}\mathcal L$, shape ``(m,)``.
    y : numpy.ndarray
        $y_j$, shape ``(m,)``, not constant.
    gamma : float
        $\gamma$.
    coefficient : {"1/m", "1/sqrt(m)"} or float, optional
        $c$; default ``"1/m"``.

    Returns
    -------
    LipschitzTerms
        The left-hand side and every term of the right-hand side.

    Raises
    ------
    TypeError, ValueError
        As [`bn_backward`][bnnotes.theory.bn_backward], or for an unknown coefficient.

    Notes
    -----
    $\nabla_{y_j}\hat{\mathcal L} = \frac\gamma\sigma P\hat g_j$ and $P$ removes the components of
    $\hat g_j$ along the orthonormal vectors $\mathbf 1/\sqrt m$ and $\hat y_j/\sqrt m$, so by
    Pythagoras the statement with $c = 1/m$ is an **equality**. With $c = 1/\sqrt m$ the
    right-hand side is smaller by
    $\frac{\gamma^2}{\sigma^2}(\frac1{\sqrt m} - \frac1m)\langle\hat g_j,\hat y_j\rangle^2$, so for
    $m \ge 2$ it is false whenever $\gamma \ne 0$ and $\langle\hat g_j,\hat y_j\rangle \ne 0$.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.theory import gradient_norm_bound
    >>> rng = np.random.default_rng(2)
    >>> y, g = rng.normal(size=8), rng.normal(size=8)
    >>> t = gradient_norm_bound(g, y, 1.5)
    >>> bool(np.isclose(t.lhs, t.rhs, rtol=1e-12, atol=0))
    True
    >>> s = gradient_norm_bound(g, y, 1.5, coefficient="1/sqrt(m)")
    >>> bool(s.lhs > s.rhs)
    True
    """
    stats = _one_unit(y)
    m = stats.y_hat.size
    g = _unit_vector(grad_z, m, "grad_z")
    gamma = check.finite_real(gamma, "gamma")
    c = _coefficient(coefficient, m)
    d = (gamma / stats.sigma) * _project(g, stats.y_hat)
    scale = gamma**2 / stats.sigma**2
    total = float(g @ g)
    mean_term = float(g.sum() ** 2 / m)
    correlation_term = float(c * (g @ stats.y_hat) ** 2)
    return LipschitzTerms(
        lhs=float(d @ d),
        scale=float(scale),
        total=total,
        mean_term=mean_term,
        correlation_term=correlation_term,
        coefficient=float(c),
        rhs=float(scale * (total - mean_term - correlation_term)),
    )


# --------------------------------------------------------------------------- Theorem 4.2


def bn_loss_hessian(
    grad_z: np.ndarray, hess_z: np.ndarray, y: np.ndarray, gamma: float
) -> np.ndarray:
    r"""The Hessian of $\hat{\mathcal L}(y_j) = \mathcal L(\gamma\hat y_j + \beta)$ with
    respect to one unit's $y_j$.

    Parameters
    ----------
    grad_z : numpy.ndarray
        $\hat g_j$, the downstream gradient at $z$, shape ``(m,)``.
    hess_z : numpy.ndarray
        $H_{jj}$, the downstream Hessian block of the unit at $z$, symmetric, shape ``(m, m)``.
    y : numpy.ndarray
        $y_j$, shape ``(m,)``, not constant.
    gamma : float
        $\gamma$.

    Returns
    -------
    numpy.ndarray
        $\partial^2\hat{\mathcal L}/\partial y_j\,\partial y_j$, symmetric, shape ``(m, m)``.

    Raises
    ------
    TypeError, ValueError
        On wrong shapes, non-finite values, a non-symmetric ``hess_z``, $m < 2$, a constant
        ``y`` or a non-real ``gamma``.

    Notes
    -----
    The second-order chain rule gives two terms,

    $$\frac{\partial^2\hat{\mathcal L}}{\partial y_j\,\partial y_j}
    = \frac{\gamma^2}{\sigma^2}\,P H_{jj} P + \gamma S,
    \qquad S = \sum_b \hat g_j^{(b)}\,\frac{\partial^2\hat y^{(b)}}{\partial y_j\,\partial y_j} .$$

    Along a direction $v$ with centered part $v_c = v - \bar v\mathbf 1$, expanding
    $\hat y(y + tv) = (y_c + t v_c)/\sigma(t)$ to second order in $t$ gives

    $$S = \frac{1}{m\sigma^2}\Big(-\hat y\,c^\top - c\,\hat y^\top
    + \langle\hat g_j,\hat y\rangle\big(\tfrac3m\hat y\hat y^\top - C\big)\Big),$$

    with $C = I - \frac1m\mathbf 1\mathbf 1^\top$ the centering matrix and $c = C\hat g_j$.
    The result is the Hessian of the BN network's loss as a function of the unit's
    pre-activations, the other units held fixed.

    Examples
    --------
    For a downstream loss that is linear in $z$ ($H_{jj} = 0$) only the curvature of BN
    itself is left; along the centered vector $\hat y$, where BN is flat, it is zero:

    >>> import numpy as np
    >>> from bnnotes.theory import bn_loss_hessian, standardize
    >>> rng = np.random.default_rng(3)
    >>> y, g = rng.normal(size=5), rng.normal(size=5)
    >>> Hhat = bn_loss_hessian(g, np.zeros((5, 5)), y, 1.0)
    >>> y_hat = standardize(y).y_hat
    >>> (
    ...     bool(np.allclose(Hhat @ np.ones(5), 0.0, atol=1e-12)),
    ...     bool(abs(y_hat @ Hhat @ y_hat) < 1e-12),
    ... )
    (True, True)
    """
    stats = _one_unit(y)
    m = stats.y_hat.size
    g = _unit_vector(grad_z, m, "grad_z")
    h = _symmetric(hess_z, m, "hess_z")
    gamma = check.finite_real(gamma, "gamma")
    v, sigma = stats.y_hat, stats.sigma
    projection = np.eye(m) - 1.0 / m - np.outer(v, v) / m
    centering = np.eye(m) - 1.0 / m
    c = g - g.mean()
    s = (
        -np.outer(v, c)
        - np.outer(c, v)
        + (g @ v) * (3.0 / m * np.outer(v, v) - centering)
    ) / (m * sigma**2)
    hessian = (gamma / sigma) ** 2 * (projection @ h @ projection) + gamma * s
    return (hessian + hessian.T) / 2


@dataclass(frozen=True)
class SmoothnessTerms:
    r"""The quadratic form of Theorem 4.2 (Santurkar et al., 2018) and both
    printed right-hand sides.

    Write $d = \nabla_{y_j}\hat{\mathcal L}$ for the BN network's gradient.

    Attributes
    ----------
    bn_gradient : numpy.ndarray
        $d$, shape ``(m,)``.
    lhs : float
        $d^\top \frac{\partial^2\hat{\mathcal L}}{\partial y_j\partial y_j} d$, from the full
        Hessian of [`bn_loss_hessian`][bnnotes.theory.bn_loss_hessian].
    scale : float
        $\gamma^2/\sigma^2$.
    bn_curvature : float
        $d^\top H_{jj} d$.
    plain_curvature : float
        $\hat g_j^\top H_{jj}\hat g_j$.
    correlation : float
        $\langle\hat g_j, \hat y_j\rangle$.
    shift : float
        $\frac{\gamma}{m\sigma^2}\langle\hat g_j,\hat y_j\rangle\lVert d\rVert^2$.
    rhs_first : float
        $\frac{\gamma^2}{\sigma^2} d^\top H_{jj} d - \text{shift}$ (first printed form).
    rhs_second : float
        $\frac{\gamma^2}{\sigma^2}\big(\hat g_j^\top H_{jj}\hat g_j
        - \frac1{m\gamma}\langle\hat g_j,\hat y_j\rangle\lVert d\rVert^2\big)
        = \frac{\gamma^2}{\sigma^2}\hat g_j^\top H_{jj}\hat g_j - \text{shift}$
        (second printed form).
    bn_gradient_norm_sq : float
        $\lVert d\rVert^2$.
    plain_gradient_norm_sq : float
        $\lVert\hat g_j\rVert^2$.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.theory import hessian_quadratic_form
    >>> rng = np.random.default_rng(1)
    >>> y, g = rng.normal(size=6), rng.normal(size=6)
    >>> t = hessian_quadratic_form(g, np.eye(6), y, 0.7)
    >>> t.bn_gradient.shape, bool(np.isclose(t.lhs, t.rhs_first))
    ((6,), True)
    """

    bn_gradient: np.ndarray
    lhs: float
    scale: float
    bn_curvature: float
    plain_curvature: float
    correlation: float
    shift: float
    rhs_first: float
    rhs_second: float
    bn_gradient_norm_sq: float
    plain_gradient_norm_sq: float


def hessian_quadratic_form(
    grad_z: np.ndarray, hess_z: np.ndarray, y: np.ndarray, gamma: float
) -> SmoothnessTerms:
    r"""Both sides of the two forms of Theorem 4.2, as transcribed, for one unit.

    The first printed form is

    $$d^\top\frac{\partial^2\hat{\mathcal L}}{\partial y_j\,\partial y_j}d
    \le \frac{\gamma^2}{\sigma^2}\,d^\top H_{jj}\,d -
    \frac{\gamma}{m\sigma^2}\langle\hat g_j,\hat y_j\rangle\lVert d\rVert^2,
    \qquad d = \nabla_{y_j}\hat{\mathcal L},$$

    and the second, stated for an $H_{jj}$ that "preserves the relative norms" of
    $\hat g_j$ and $d$, replaces $d^\top H_{jj} d$ by $\hat g_j^\top H_{jj}\hat g_j$.

    Parameters
    ----------
    grad_z : numpy.ndarray
        $\hat g_j$, shape ``(m,)``.
    hess_z : numpy.ndarray
        $H_{jj}$, symmetric, shape ``(m, m)``.
    y : numpy.ndarray
        $y_j$, shape ``(m,)``, not constant.
    gamma : float
        $\gamma$.

    Returns
    -------
    SmoothnessTerms
        The left-hand side and the terms of both right-hand sides.

    Raises
    ------
    TypeError, ValueError
        As [`bn_loss_hessian`][bnnotes.theory.bn_loss_hessian].

    Notes
    -----
    $d = \frac\gamma\sigma P\hat g_j$ is orthogonal to $\mathbf 1$ and to $\hat y_j$, so $Pd = d$
    and, in the formula of [`bn_loss_hessian`][bnnotes.theory.bn_loss_hessian],
    $d^\top S d = -\frac{1}{m\sigma^2}\langle\hat g_j,\hat y_j\rangle\lVert d\rVert^2$. Hence

    $$d^\top\frac{\partial^2\hat{\mathcal L}}{\partial y_j\,\partial y_j}d
    = \frac{\gamma^2}{\sigma^2}\,d^\top H_{jj}\,d -
    \frac{\gamma}{m\sigma^2}\langle\hat g_j,\hat y_j\rangle\lVert d\rVert^2$$

    exactly: the first form holds with equality, for any $H_{jj}$ and any sign of
    $\langle\hat g_j,\hat y_j\rangle$. The second form differs from it only in the curvature
    term, so (for $\gamma \ne 0$) it holds exactly when
    $d^\top H_{jj} d \le \hat g_j^\top H_{jj}\hat g_j$. If $H_{jj}$ has the same Rayleigh quotient
    $\rho \ge 0$ along $d$ and $\hat g_j$, that is
    $\rho\lVert d\rVert^2 \le \rho\lVert\hat g_j\rVert^2$, which can fail when $|\gamma| > \sigma$.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.theory import hessian_quadratic_form
    >>> rng = np.random.default_rng(4)
    >>> y, g = rng.normal(size=6), rng.normal(size=6)
    >>> A = rng.normal(size=(6, 6))
    >>> t = hessian_quadratic_form(g, A @ A.T, y, 0.7)
    >>> bool(np.isclose(t.lhs, t.rhs_first, rtol=1e-10, atol=0))
    True
    """
    stats = _one_unit(y)
    m = stats.y_hat.size
    g = _unit_vector(grad_z, m, "grad_z")
    h = _symmetric(hess_z, m, "hess_z")
    gamma = check.finite_real(gamma, "gamma")
    hessian = bn_loss_hessian(g, h, y, gamma)
    d = (gamma / stats.sigma) * _project(g, stats.y_hat)
    scale = gamma**2 / stats.sigma**2
    correlation = float(g @ stats.y_hat)
    d_norm_sq = float(d @ d)
    shift = gamma / (m * stats.sigma**2) * correlation * d_norm_sq
    bn_curvature = float(d @ h @ d)
    plain_curvature = float(g @ h @ g)
    return SmoothnessTerms(
        bn_gradient=d,
        lhs=float(d @ hessian @ d),
        scale=float(scale),
        bn_curvature=bn_curvature,
        plain_curvature=plain_curvature,
        correlation=correlation,
        shift=float(shift),
        rhs_first=float(scale * bn_curvature - shift),
        rhs_second=float(scale * plain_curvature - shift),
        bn_gradient_norm_sq=d_norm_sq,
        plain_gradient_norm_sq=float(g @ g),
    )


# --------------------------------------------------------------------------- downstream losses


class QuadraticLoss:
    r"""$\mathcal L(z) = \frac12 (z - t)^\top A\,(z - t)$ on the flattened BN output.

    Parameters
    ----------
    curvature : numpy.ndarray
        $A$, symmetric, shape ``(m n, m n)`` for an output $z$ of shape ``(m, n)``,
        flattened row by row (C order); $A \succeq 0$ makes the loss convex.
    target : numpy.ndarray
        $t$, shape ``(m, n)``.

    Raises
    ------
    TypeError, ValueError
        On non-finite or non-floating arrays, a non-symmetric $A$, or mismatched shapes.

    Notes
    -----
    The gradient is $A(z - t)$ and the Hessian is $A$ everywhere. Any gradient and Hessian
    of a smooth loss at a point are those of such a quadratic (its second-order Taylor
    model), which is why Theorems 4.1 and 4.2 only depend on $\hat g_j$ and $H_{jj}$.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.theory import QuadraticLoss
    >>> loss = QuadraticLoss(np.eye(4), np.zeros((2, 2)))
    >>> loss.value(np.ones((2, 2))), loss.gradient(np.ones((2, 2))).tolist()
    (2.0, [[1.0, 1.0], [1.0, 1.0]])
    """

    def __init__(self, curvature: np.ndarray, target: np.ndarray) -> None:
        target = check.finite_floating(target, "target")
        if target.ndim != 2:
            raise ValueError(
                f"target must have shape (m, n), got {target.shape}"
            )
        self.target = target.astype(np.float64)
        self.curvature = _symmetric(curvature, target.size, "curvature")

    def _residual(self, z) -> np.ndarray:
        z = check.finite_floating(z, "z")
        if z.shape != self.target.shape:
            raise ValueError(
                f"z must have the target's shape {self.target.shape}, got {z.shape}"
            )
        return (z.astype(np.float64) - self.target).reshape(-1)

    def value(self, z: np.ndarray) -> float:
        """$\\mathcal L(z)$."""
        r = self._residual(z)
        return float(0.5 * r @ self.curvature @ r)

    def gradient(self, z: np.ndarray) -> np.ndarray:
        """$\\nabla_z\\mathcal L$, shape of ``z``."""
        return (self.curvature @ self._residual(z)).reshape(self.target.shape)

    def hessian(self, z: np.ndarray) -> np.ndarray:
        """$\\nabla_z^2\\mathcal L = A$, shape ``(z.size, z.size)``."""
        self._residual(z)
        return self.curvature.copy()


class SoftmaxCrossEntropy:
    r"""Mean softmax cross-entropy with each row of the BN output as the logits of one example.

    $$\mathcal L(z) = -\frac1m\sum_{b=1}^m \log\mathrm{softmax}(z^{(b)})_{\ell_b}$$

    Parameters
    ----------
    labels : numpy.ndarray
        Integer class labels $\ell_b$, shape ``(m,)``.

    Raises
    ------
    TypeError, ValueError
        On non-integer labels, or (at a call) logits of the wrong shape or with fewer
        than 2 classes, or labels outside ``[0, n)``.

    Notes
    -----
    With $p^{(b)} = \mathrm{softmax}(z^{(b)})$ and $e_{\ell}$ the one-hot label, the gradient
    row is $(p^{(b)} - e_{\ell_b})/m$ and the Hessian is block diagonal over examples, with
    blocks $(\mathrm{diag}(p^{(b)}) - p^{(b)}p^{(b)\top})/m \succeq 0$. The loss is convex in
    $z$, the case in which Santurkar et al. (2018) note $H_{jj} \succeq 0$. The block of one
    unit, $H_{jj}$, is diagonal with entries $p_j^{(b)}(1 - p_j^{(b)})/m$.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.theory import SoftmaxCrossEntropy
    >>> loss = SoftmaxCrossEntropy(np.array([0, 1]))
    >>> round(loss.value(np.zeros((2, 3))), 12) == round(float(np.log(3)), 12)
    True
    """

    def __init__(self, labels: np.ndarray) -> None:
        labels = np.asarray(labels)
        if not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(
                f"labels must have an integer dtype, got {labels.dtype}"
            )
        if labels.ndim != 1 or labels.size == 0:
            raise ValueError(
                f"labels must have shape (m,) with m >= 1, got {labels.shape}"
            )
        self.labels = labels.copy()

    def _probs(self, z) -> np.ndarray:
        z = check.finite_floating(z, "z")
        m = self.labels.size
        if z.ndim != 2 or z.shape[0] != m or z.shape[1] < 2:
            raise ValueError(
                f"z must have shape ({m}, n) with n >= 2 classes, got {z.shape}"
            )
        if self.labels.min() < 0 or self.labels.max() >= z.shape[1]:
            raise ValueError(
                f"labels must lie in [0, {z.shape[1]}), got values from "
                f"{int(self.labels.min())} to {int(self.labels.max())}"
            )
        z = z.astype(np.float64)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True), z

    def value(self, z: np.ndarray) -> float:
        """$\\mathcal L(z)$."""
        _, z = self._probs(z)
        shifted = z - z.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(self.labels.size), self.labels].mean())

    def gradient(self, z: np.ndarray) -> np.ndarray:
        """$\\nabla_z\\mathcal L$, shape of ``z``."""
        p, _ = self._probs(z)
        p[np.arange(self.labels.size), self.labels] -= 1.0
        return p / self.labels.size

    def hessian(self, z: np.ndarray) -> np.ndarray:
        """$\\nabla_z^2\\mathcal L$, shape ``(z.size, z.size)``, block diagonal over examples."""
        p, _ = self._probs(z)
        m, n = p.shape
        blocks = (
            np.einsum("bi,ik->bik", p, np.eye(n))
            - np.einsum("bi,bk->bik", p, p)
        ) / m
        h = np.zeros((m, n, m, n))
        h[np.arange(m), :, np.arange(m), :] = blocks
        return h.reshape(m * n, m * n)


def unit_derivatives(
    loss, z: np.ndarray, unit: int
) -> tuple[np.ndarray, np.ndarray]:
    r"""$\hat g_j$ and $H_{jj}$ of a downstream loss at the BN output $z$, for unit $j$.

    Parameters
    ----------
    loss : object
        Has ``gradient(z)`` (shape of ``z``) and ``hessian(z)`` (shape
        ``(z.size, z.size)``, C order), like [`QuadraticLoss`][bnnotes.theory.QuadraticLoss]
        and [`SoftmaxCrossEntropy`][bnnotes.theory.SoftmaxCrossEntropy].
    z : numpy.ndarray
        The BN output, shape ``(m, n)``.
    unit : int
        $j$, in ``[0, n)``.

    Returns
    -------
    grad : numpy.ndarray
        $\hat g_j = \partial\mathcal L/\partial z_{:,j}$, shape ``(m,)``.
    hess : numpy.ndarray
        $H_{jj} = \partial^2\mathcal L/\partial z_{:,j}\,\partial z_{:,j}$, shape ``(m, m)``.

    Raises
    ------
    ValueError
        If ``z`` is not two-dimensional, ``unit`` is out of range, or the loss returns arrays
        of the wrong shape.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.theory import SoftmaxCrossEntropy, unit_derivatives
    >>> z = np.random.default_rng(5).normal(size=(4, 3))
    >>> g, H = unit_derivatives(
    ...     SoftmaxCrossEntropy(np.array([0, 2, 1, 1])), z, 1
    ... )
    >>> g.shape, H.shape, bool(np.all(H == np.diag(np.diag(H))))
    ((4,), (4, 4), True)
    """
    z = check.finite_floating(z, "z")
    if z.ndim != 2:
        raise ValueError(f"z must have shape (m, n), got {z.shape}")
    m, n = z.shape
    if (
        isinstance(unit, bool)
        or not isinstance(unit, (int, np.integer))
        or not 0 <= unit < n
    ):
        raise ValueError(f"unit must be an integer in [0, {n}), got {unit!r}")
    grad = np.asarray(loss.gradient(z), dtype=np.float64)
    hess = np.asarray(loss.hessian(z), dtype=np.float64)
    if grad.shape != (m, n) or hess.shape != (m * n, m * n):
        raise ValueError(
            f"the loss must return a gradient of shape {(m, n)} and a Hessian of shape "
            f"{(m * n, m * n)}, got {grad.shape} and {hess.shape}"
        )
    return grad[:, unit].copy(), hess.reshape(m, n, m, n)[
        :, unit, :, unit
    ].copy()


# --------------------------------------------------------------------------- Observation 4.3


def reproduce_activations(
    x: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r"""The $(\gamma, \beta)$ with which BN after $W$ reproduces the activations
    $y = Wx$ (Observation 4.3).

    Parameters
    ----------
    x : numpy.ndarray
        Inputs, shape ``(m, d)``, $m \ge 2$.
    weight : numpy.ndarray
        $W$, shape ``(n, d)``.

    Returns
    -------
    gamma : numpy.ndarray
        $\gamma_j = \sigma_j > 0$, shape ``(n,)``.
    beta : numpy.ndarray
        $\beta_j = \mu_j$, shape ``(n,)``.

    Raises
    ------
    TypeError, ValueError
        As [`linear_bn`][bnnotes.theory.linear_bn]; in particular if some unit of $Wx$ is
        constant over the batch, which no $(\gamma, \beta)$ can reproduce with $\epsilon = 0$.

    Notes
    -----
    $\sigma_j\hat y_j + \mu_j = y_j$, so the BN network with the same $W$ has the same
    activations on this batch. Every point of the plain network's landscape therefore
    has a counterpart in the BN network's, minima included (Santurkar et al., 2018,
    Observation 4.3). The converse direction is what differs: the statistics depend on
    the batch, so these $(\gamma,\beta)$ reproduce $y$ on this batch only.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.theory import linear_bn, reproduce_activations
    >>> rng = np.random.default_rng(6)
    >>> x, W = rng.normal(size=(10, 4)), rng.normal(size=(3, 4))
    >>> gamma, beta = reproduce_activations(x, W)
    >>> bool(
    ...     np.allclose(
    ...         linear_bn(x, W, gamma, beta).z, x @ W.T, rtol=1e-13, atol=1e-13
    ...     )
    ... )
    True
    """
    layer = linear_bn(x, weight)
    return np.array(layer.stats.sigma, copy=True), np.array(
        layer.stats.mean, copy=True
    )


# --------------------------------------------------------------------------- Lemma 4.5


@dataclass(frozen=True)
class InitializationGain:
    r"""Distances from an initialization $W_0$ to an optimum $W^*$ and to its
    scaled copies (Lemma 4.5).

    Attributes
    ----------
    k : float or numpy.ndarray
        The scale of the nearest scaled optimum: $\langle W^*, W_0\rangle/\lVert W^*\rVert^2$,
        or one such value per row with ``per_row=True``.
    nearest : numpy.ndarray
        $\hat W^* = kW^*$ (row $i$ scaled by $k_i$ with ``per_row=True``).
    distance_sq : float
        $\lVert W_0 - W^*\rVert^2$.
    bn_distance_sq : float
        $\lVert W_0 - \hat W^*\rVert^2$.
    bound : float
        The lemma's right-hand side, $\lVert W_0 - W^*\rVert^2
        - \frac{1}{\lVert W^*\rVert^2}\big(\lVert W^*\rVert^2 - \langle W^*, W_0\rangle\big)^2$.
    gain : float
        $\lVert W_0 - W^*\rVert^2 - \lVert W_0 - \hat W^*\rVert^2$; equal to
        $\lVert W^*\rVert^2(1 - k)^2$ for a single ray.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.theory import initialization_gain
    >>> r = initialization_gain(np.array([3.0, 1.0]), np.array([1.0, 0.0]))
    >>> r.k, r.nearest.tolist(), r.gain
    (3.0, [3.0, 0.0], 4.0)
    """

    k: float | np.ndarray
    nearest: np.ndarray
    distance_sq: float
    bn_distance_sq: float
    bound: float
    gain: float


def initialization_gain(
    w0: np.ndarray, w_star: np.ndarray, *, per_row: bool = False
) -> InitializationGain:
    r"""How much closer the nearest BN optimum is to $W_0$ than the optimum $W^*$ (Lemma 4.5).

    BN makes the loss invariant to $W \mapsto kW$ for $k > 0$, so with $W^*$ optimal every
    point of the ray $\{kW^*: k > 0\}$ is optimal for the BN network. Lemma 4.5 of
    Santurkar et al. (2018), as transcribed, states for $\langle W_0, W^*\rangle > 0$

    $$\lVert W_0 - \hat W^*\rVert^2 \le \lVert W_0 - W^*\rVert^2 -
    \frac{1}{\lVert W^*\rVert^2}\big(\lVert W^*\rVert^2 - \langle W^*, W_0\rangle\big)^2 .$$

    Parameters
    ----------
    w0 : numpy.ndarray
        The initialization $W_0$ (any shape; a matrix of shape ``(n, d)`` for ``per_row``).
    w_star : numpy.ndarray
        An optimum $W^*$ of the network without BN, same shape, not zero.
    per_row : bool, optional
        If False (default), the single ray of the lemma. If True, each row $W^*_i$ (one
        unit of the layer) gets its own scale $k_i > 0$: BN normalizes every unit
        separately, so $\mathrm{diag}(k)\,W^*$ is optimal too, and it can be closer still.

    Returns
    -------
    InitializationGain
        $k$, the nearest scaled optimum, both distances, the lemma's bound and the gain.

    Raises
    ------
    TypeError, ValueError
        On non-floating or non-finite arrays, different shapes, $W^* = 0$ (or a zero row
        with ``per_row``), ``per_row`` for an array that is not two-dimensional, or
        $\langle W_0, W^*\rangle \le 0$ (per row with ``per_row``): then the distance to
        $kW^*$ keeps decreasing as $k \to 0^+$, the infimum $\lVert W_0\rVert^2$ is attained only
        at $W = 0$, where BN is undefined, and the lemma does not apply.

    Notes
    -----
    The distance $\lVert W_0 - kW^*\rVert^2$ is a parabola in $k$ with its minimum at
    $k = \langle W^*, W_0\rangle/\lVert W^*\rVert^2$, positive under the lemma's assumption,
    where it equals $\lVert W_0\rVert^2 - \langle W^*, W_0\rangle^2/\lVert W^*\rVert^2$.
    Expanding the right-hand side of the lemma gives the same expression, so the bound holds
    with equality at that point, and the gain is
    $\frac{1}{\lVert W^*\rVert^2}(\lVert W^*\rVert^2 - \langle W^*, W_0\rangle)^2
    = \lVert W^*\rVert^2(1 - k)^2$.
    With ``per_row`` the row-wise minimum is at most the single-ray one, so
    ``bn_distance_sq <= bound``.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.theory import initialization_gain
    >>> r = initialization_gain(np.array([1.0, 1.0]), np.array([2.0, 0.0]))
    >>> r.k, r.distance_sq, r.bn_distance_sq, r.bound, r.gain
    (0.5, 2.0, 1.0, 1.0, 1.0)
    """
    w0 = check.finite_floating(w0, "w0")
    w_star = check.finite_floating(w_star, "w_star")
    if w0.shape != w_star.shape:
        raise ValueError(
            f"w0 and w_star must have the same shape, got {w0.shape} and {w_star.shape}"
        )
    w0 = w0.astype(np.float64)
    w_star = w_star.astype(np.float64)
    norm_sq = float(np.sum(w_star * w_star))
    if norm_sq == 0:
        raise ValueError(
            "w_star must not be zero: the ray {k w_star} is a single point and BN is undefined at 0"
        )
    inner = float(np.sum(w_star * w0))
    if per_row:
        if w0.ndim != 2:
            raise ValueError(
                f"per_row needs matrices of shape (n, d), got shape {w0.shape}"
            )
        row_norm_sq = np.einsum("ij,ij->i", w_star, w_star)
        if np.any(row_norm_sq == 0):
            raise ValueError(
                f"row {int(np.flatnonzero(row_norm_sq == 0)[0])} of w_star is zero: BN is "
                "undefined there"
            )
        row_inner = np.einsum("ij,ij->i", w_star, w0)
        if np.any(row_inner <= 0):
            i = int(np.flatnonzero(row_inner <= 0)[0])
            raise ValueError(
                f"Lemma 4.5 needs <w0, w_star> > 0 for every row with per_row=True; row {i} has "
                f"{row_inner[i]:.6g}, and the nearest point k w_star_i with k > 0 is not attained"
            )
        k = row_inner / row_norm_sq
        nearest = k[:, None] * w_star
    else:
        if inner <= 0:
            raise ValueError(
                f"Lemma 4.5 needs <w0, w_star> > 0, got {inner:.6g}: the nearest point k w_star "
                "with k > 0 is not attained (the distance decreases towards ||w0||^2 as k -> 0)"
            )
        k = inner / norm_sq
        nearest = k * w_star
    distance_sq = float(np.sum((w0 - w_star) ** 2))
    bn_distance_sq = float(np.sum((w0 - nearest) ** 2))
    return InitializationGain(
        k=k,
        nearest=nearest,
        distance_sq=distance_sq,
        bn_distance_sq=bn_distance_sq,
        bound=distance_sq - (norm_sq - inner) ** 2 / norm_sq,
        gain=distance_sq - bn_distance_sq,
    )
