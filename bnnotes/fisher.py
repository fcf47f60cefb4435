r"""Curvature toolkit: Lipschitz constants, smoothness, the Hessian, the Fisher information
and the natural gradient.

Definitions, for a function $f$ of the parameters $\theta$:

- $f$ is **$L$-Lipschitz** if $|f(a) - f(b)| \le L\,\lVert a - b\rVert$ for all $a, b$;
  [`lipschitz_ratio`][bnnotes.fisher.lipschitz_ratio] is the ratio a constant $L$ must bound.
- $f$ is **$\beta$-smooth** if its gradient is $\beta$-Lipschitz,
  $\lVert\nabla f(a) - \nabla f(b)\rVert \le \beta\,\lVert a - b\rVert$
  ([`smoothness_ratio`][bnnotes.fisher.smoothness_ratio]). For a twice differentiable $f$ this
  holds exactly when every eigenvalue of the Hessian $\nabla^2 f$ lies in $[-\beta, \beta]$.
- The **quadratic form** $d^\top \nabla^2 f(\theta)\, d$ is the second derivative of
  $t \mapsto f(\theta + t d)$ at 0: the curvature along the direction $d$
  ([`quadratic_form`][bnnotes.fisher.quadratic_form] from a matrix,
  [`second_difference`][bnnotes.fisher.second_difference] from values of $f$).

For a model $p_\theta(y \mid x)$ with score $s = \nabla_\theta \log p_\theta(y \mid x)$, the
**Fisher information** is the covariance of the score with labels drawn from the model,

$$F(\theta) = \mathbb E_x\,\mathbb E_{y \sim p_\theta(\cdot\mid x)}\big[s\,s^\top\big]
= \mathbb E_x\,\mathbb E_{y \sim p_\theta(\cdot\mid x)}
\big[-\nabla^2_\theta \log p_\theta(y \mid x)\big],$$

the expected Hessian of the negative log-likelihood under the model's own labels. The
**empirical Fisher** averages $s\,s^\top$ over the observed labels instead; it is a different
matrix. $F$ is also the Hessian of $\theta' \mapsto D_{\mathrm{KL}}(p_\theta \,\Vert\, p_{\theta'})$
at $\theta' = \theta$, so
$D_{\mathrm{KL}}(p_\theta \,\Vert\, p_{\theta+\delta}) \approx \frac12 \delta^\top F \delta$, and
the **natural gradient** $F^{-1}\nabla_\theta L$ is the steepest-descent direction when steps are
measured by that divergence.

The small model for numeric demonstrations is softmax regression, $p(y \mid x) =
\mathrm{softmax}(Wx)_y$ with $W$ of shape ``(K, d)``, flattened row by row into $\theta$ of
length $P = Kd$; everything about it has a closed form here. Its NLL Hessian does not depend
on the labels, so there the Fisher and the Hessian agree for any labels. For a model whose
Hessian does depend on them,
[`per_label_scores_and_hessians`][bnnotes.fisher.per_label_scores_and_hessians] computes scores and
Hessians of any PyTorch log-likelihood with ``torch.func``, and
[`tanh_network_log_probs`][bnnotes.fisher.tanh_network_log_probs] is a one-hidden-layer network to
use it on. [`weight_normalized_kl_curvature`][bnnotes.fisher.weight_normalized_kl_curvature] is the
curvature of the KL divergence along one unit's weights when the units are weight-normalized:
doubling the weights leaves the output unchanged and quarters it (Ba et al., Sec. 5.2, Eq. 13).

References
----------
- S. Amari, "Natural Gradient Works Efficiently in Learning", Neural Computation 10(2), 1998.
- J. L. Ba, J. R. Kiros and G. E. Hinton, "Layer Normalization", arXiv:1607.06450, 2016, Sec. 5.2.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from bnnotes import _validation as check

__all__ = [
    "categorical_kl",
    "empirical_fisher",
    "expected_hessian",
    "fisher_from_scores",
    "lipschitz_ratio",
    "natural_gradient",
    "per_label_scores_and_hessians",
    "quadratic_form",
    "second_difference",
    "smoothness_ratio",
    "softmax",
    "softmax_regression_grad",
    "softmax_regression_hessian",
    "softmax_regression_lipschitz_bound",
    "softmax_regression_nll",
    "softmax_regression_probs",
    "softmax_regression_scores",
    "softmax_regression_smoothness_bound",
    "tanh_network_log_probs",
    "tanh_network_num_params",
    "weight_normalized_kl_curvature",
    "weight_normalized_probs",
]


# --------------------------------------------------------------------------- checks


def _check_model(weight, x) -> tuple[np.ndarray, np.ndarray]:
    weight = check.finite_floating(weight, "weight")
    x = check.finite_floating(x, "x")
    if weight.ndim != 2 or weight.shape[0] < 2:
        raise ValueError(
            f"weight must have shape (K, d) with K >= 2 classes, got {weight.shape}"
        )
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(
            f"x must have shape (n, d) with n >= 1, got {x.shape}"
        )
    if x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"x has {x.shape[1]} features but weight expects {weight.shape[1]}"
        )
    return weight.astype(np.float64, copy=False), x.astype(
        np.float64, copy=False
    )


def _check_labels(y, n: int, num_classes: int) -> np.ndarray:
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"labels must have an integer dtype, got {y.dtype}")
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got values from {y.min()} to {y.max()}"
        )
    return y


def _check_probs(p, name: str) -> np.ndarray:
    p = check.finite_floating(p, name)
    if p.ndim != 2:
        raise ValueError(f"{name} must have shape (n, K), got {p.shape}")
    if (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-9):
        raise ValueError(
            f"each row of {name} must be a probability vector (>= 0, summing to 1)"
        )
    return p.astype(np.float64, copy=False)


def _check_square(matrix, name: str) -> np.ndarray:
    matrix = check.finite_floating(matrix, name)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(
            f"{name} must be a square matrix, got shape {matrix.shape}"
        )
    return matrix


# --------------------------------------------------------------------------- softmax regression


def softmax(z: np.ndarray) -> np.ndarray:
    r"""$\mathrm{softmax}(z)_k = e^{z_k} / \sum_j e^{z_j}$ along the last axis, without overflow.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.fisher import softmax
    >>> softmax(np.array([1000.0, 1000.0])).tolist()
    [0.5, 0.5]
    """
    z = check.finite_floating(z, "z")
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_regression_probs(weight: np.ndarray, x: np.ndarray) -> np.ndarray:
    r"""Class probabilities $p_i = \mathrm{softmax}(W x_i)$ of softmax regression.

    Parameters
    ----------
    weight : numpy.ndarray
        $W$, shape ``(K, d)`` with $K \ge 2$ classes.
    x : numpy.ndarray
        Inputs, shape ``(n, d)`` (append a column of ones for a bias).

    Returns
    -------
    numpy.ndarray
        Shape ``(n, K)``, float64; each row sums to 1.

    Raises
    ------
    TypeError, ValueError
        On non-floating or non-finite arrays, or shapes that do not fit together.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.fisher import softmax_regression_probs
    >>> softmax_regression_probs(np.zeros((3, 2)), np.ones((1, 2))).round(
    ...     4
    ... ).tolist()
    [[0.3333, 0.3333, 0.3333]]
    """
    weight, x = _check_model(weight, x)
    return softmax(x @ weight.T)


def softmax_regression_nll(
    weight: np.ndarray, x: np.ndarray, y: np.ndarray
) -> float:
    r"""Mean negative log-likelihood $\frac1n\sum_i -\log p(y_i \mid x_i)$.

    Parameters
    ----------
    weight, x
        As in [`softmax_regression_probs`][bnnotes.fisher.softmax_regression_probs].
    y : numpy.ndarray
        Integer labels in $[0, K)$, shape ``(n,)``.

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        As [`softmax_regression_probs`][bnnotes.fisher.softmax_regression_probs], and on labels
        that are not integers of shape ``(n,)`` in range.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.fisher import softmax_regression_nll
    >>> round(
    ...     softmax_regression_nll(
    ...         np.zeros((4, 3)), np.ones((2, 3)), np.array([0, 3])
    ...     ),
    ...     6,
    ... )  # log 4
    1.386294
    """
    weight, x = _check_model(weight, x)
    y = _check_labels(y, x.shape[0], weight.shape[0])
    z = x @ weight.T
    zmax = z.max(axis=1, keepdims=True)
    log_norm = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(y)), y]))


def softmax_regression_grad(
    weight: np.ndarray, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    r"""Gradient of the mean NLL: $\frac1n \sum_i (p_i - e_{y_i})\,x_i^\top$, shape ``(K, d)``.

    Parameters
    ----------
    weight, x, y
        As in [`softmax_regression_nll`][bnnotes.fisher.softmax_regression_nll].

    Returns
    -------
    numpy.ndarray
        Shape ``(K, d)``.

    Raises
    ------
    TypeError, ValueError
        As [`softmax_regression_nll`][bnnotes.fisher.softmax_regression_nll].

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.fisher import softmax_regression_grad
    >>> softmax_regression_grad(
    ...     np.zeros((2, 1)), np.ones((1, 1)), np.array([0])
    ... ).tolist()
    [[-0.5], [0.5]]
    """
    weight, x = _check_model(weight, x)
    y = _check_labels(y, x.shape[0], weight.shape[0])
    residual = softmax(x @ weight.T)
    residual[np.arange(len(y)), y] -= 1.0
    return residual.T @ x / x.shape[0]


def softmax_regression_hessian(
    weight: np.ndarray, x: np.ndarray
) -> np.ndarray:
    r"""Hessian of the mean NLL with respect to $\theta = \mathrm{vec}(W)$ (row by
    row), shape ``(Kd, Kd)``.

    Parameters
    ----------
    weight, x
        As in [`softmax_regression_probs`][bnnotes.fisher.softmax_regression_probs].

    Returns
    -------
    numpy.ndarray
        $\frac1n\sum_i \big(\mathrm{diag}(p_i) - p_i p_i^\top\big) \otimes x_i x_i^\top$.

    Raises
    ------
    TypeError, ValueError
        As [`softmax_regression_probs`][bnnotes.fisher.softmax_regression_probs].

    Notes
    -----
    The labels do not appear: the NLL is $\log\sum_k e^{z_k} - z_y$ and $z$ is linear in
    $\theta$, so only the log-partition term has curvature. The Hessian is positive
    semi-definite and singular: adding the same vector to every row of $W$ does not change
    $p$, so every $\mathbf 1 \otimes c$ is in its null space.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.fisher import softmax_regression_hessian
    >>> rng = np.random.default_rng(0)
    >>> H = softmax_regression_hessian(
    ...     rng.normal(size=(3, 2)), rng.normal(size=(10, 2))
    ... )
    >>> (
    ...     H.shape,
    ...     bool(np.allclose(H @ np.tile([1.0, -2.0], 3), 0.0)),
    ... )  # null direction 1 (x) c
    ((6, 6), True)
    """
    weight, x = _check_model(weight, x)
    p = softmax(x @ weight.T)
    n, d = x.shape
    k = weight.shape[0]
    a = np.einsum("ik,kl->ikl", p, np.eye(k)) - np.einsum("ik,il->ikl", p, p)
    h = np.einsum("ikl,ij,im->kjlm", a, x, x) / n
    return h.reshape(k * d, k * d)


def softmax_regression_scores(weight: np.ndarray, x: np.ndarray) -> np.ndarray:
    r"""The score $\nabla_\theta \log p(c \mid x_i)$ for every example $i$ and every label $c$.

    Parameters
    ----------
    weight, x
        As in [`softmax_regression_probs`][bnnotes.fisher.softmax_regression_probs].

    Returns
    -------
    numpy.ndarray
        Shape ``(n, K, K*d)``: entry ``[i, c]`` is $\mathrm{vec}\big((e_c - p_i)\,x_i^\top\big)$.

    Raises
    ------
    TypeError, ValueError
        As [`softmax_regression_probs`][bnnotes.fisher.softmax_regression_probs].

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.fisher import (
    ...     softmax_regression_probs,
    ...     softmax_regression_scores,
    ... )
    >>> rng = np.random.default_rng(1)
    >>> W, x = rng.normal(size=(3, 2)), rng.normal(size=(5, 2))
    >>> s, p = softmax_regression_scores(W, x), softmax_regression_probs(W, x)
    >>> bool(
    ...     np.allclose(np.einsum("ic,icp->ip", p, s), 0.0)
    ... )  # E_{y ~ p}[score] = 0
    True
    """
    weight, x = _check_model(weight, x)
    p = softmax(x @ weight.T)
    k = weight.shape[0]
    residual = (
        np.eye(k)[None, :, :] - p[:, None, :]
    )  # [i, c, k] = (e_c - p_i)_k
    n, d = x.shape
    return np.einsum("ick,ij->ickj", residual, x).reshape(n, k, k * d)


def softmax_regression_lipschitz_bound(x: np.ndarray) -> float:
    r"""A Lipschitz constant of the mean NLL of softmax regression:
    $\sqrt2\,\frac1n\sum_i\lVert x_i\rVert$.

    Parameters
    ----------
    x : numpy.ndarray
        Inputs, shape ``(n, d)``.

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        If ``x`` is not a finite floating array of shape ``(n, d)``.

    Notes
    -----
    The gradient is $\frac1n\sum_i (p_i - e_{y_i}) x_i^\top$ and
    $\lVert p - e_y\rVert^2 = (1 - p_y)^2 + \sum_{k \ne y} p_k^2 \le 2(1 - p_y)^2 \le 2$, so every
    gradient has norm at most the bound, and by the mean value theorem so does every ratio
    $|f(a) - f(b)|/\lVert a - b\rVert$.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.fisher import softmax_regression_lipschitz_bound
    >>> round(
    ...     softmax_regression_lipschitz_bound(
    ...         np.array([[3.0, 4.0], [0.0, 1.0]])
    ...     ),
    ...     6,
    ... )
    4.242641
    """
    x = check.finite_floating(x, "x")
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(
            f"x must have shape (n, d) with n >= 1, got {x.shape}"
        )
    return float(
        math.sqrt(2.0) * np.linalg.norm(x.astype(np.float64), axis=1).mean()
    )


def softmax_regression_smoothness_bound(x: np.ndarray) -> float:
    r"""A smoothness constant of the mean NLL of softmax regression:
    $\beta = \frac12\lambda_{\max}\big(\frac1n X^\top X\big)$.

    Parameters
    ----------
    x : numpy.ndarray
        Inputs $X$, shape ``(n, d)``.

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        If ``x`` is not a finite floating array of shape ``(n, d)``.

    Notes
    -----
    For a probability vector $p$ and any $v$, $v^\top(\mathrm{diag}(p) - pp^\top)v$ is the
    variance of $v_k$ with $k \sim p$, at most $(\max v - \min v)^2/4 \le \frac12\lVert v\rVert^2$.
    So $\mathrm{diag}(p_i) - p_ip_i^\top \preceq \frac12 I$, and the Hessian is
    $\preceq \frac12 I \otimes \frac1n X^\top X$: every eigenvalue lies in $[0, \beta]$,
    whatever $W$ is.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.fisher import (
    ...     softmax_regression_hessian,
    ...     softmax_regression_smoothness_bound,
    ... )
    >>> rng = np.random.default_rng(2)
    >>> x = rng.normal(size=(50, 3))
    >>> beta = softmax_regression_smoothness_bound(x)
    >>> bool(
    ...     np.linalg.eigvalsh(
    ...         softmax_regression_hessian(rng.normal(size=(4, 3)), x)
    ...     ).max()
    ...     <= beta
    ... )
    True
    """
    x = check.finite_floating(x, "x")
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(
            f"x must have shape (n, d) with n >= 1, got {x.shape}"
        )
    x = x.astype(np.float64)
    return float(0.5 * np.linalg.eigvalsh(x.T @ x / x.shape[0]).max())


# --------------------------------------------------------------------------- Fisher information


def _check_scores(scores, probs) -> tuple[np.ndarray, np.ndarray]:
    scores = check.finite_floating(scores, "scores")
    if scores.ndim != 3:
        raise ValueError(
            f"scores must have shape (n, K, P), got {scores.shape}"
        )
    probs = _check_probs(probs, "probs")
    if probs.shape != scores.shape[:2]:
        raise ValueError(
            f"probs must have shape {scores.shape[:2]} to match scores, got {probs.shape}"
        )
    return scores.astype(np.float64, copy=False), probs


def fisher_from_scores(scores: np.ndarray, probs: np.ndarray) -> np.ndarray:
    r"""The Fisher information $F = \frac1n\sum_i \sum_c p_{ic}\, s_{ic} s_{ic}^\top$: the score's
    second moment under the model's labels.

    Parameters
    ----------
    scores : numpy.ndarray
        $s_{ic} = \nabla_\theta \log p(c \mid x_i)$, shape ``(n, K, P)``.
    probs : numpy.ndarray
        $p_{ic} = p(c \mid x_i)$, shape ``(n, K)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(P, P)``, symmetric positive semi-definite.

    Raises
    ------
    TypeError, ValueError
        On non-finite or non-floating input, mismatched shapes, or rows of ``probs`` that
        are not probability vectors.

    Notes
    -----
    The expectation over $y$ is exact (a sum over the $K$ labels), not sampled. Since
    $\sum_c p_{ic} s_{ic} = \nabla_\theta \sum_c p_{ic} = 0$, this second moment is also the
    covariance of the score.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.fisher import (
    ...     fisher_from_scores,
    ...     softmax_regression_hessian,
    ...     softmax_regression_probs,
    ...     softmax_regression_scores,
    ... )
    >>> rng = np.random.default_rng(3)
    >>> W, x = rng.normal(size=(3, 2)), rng.normal(size=(20, 2))
    >>> F = fisher_from_scores(
    ...     softmax_regression_scores(W, x), softmax_regression_probs(W, x)
    ... )
    >>> bool(
    ...     np.allclose(
    ...         F, softmax_regression_hessian(W, x), rtol=0, atol=1e-14
    ...     )
    ... )
    True
    """
    scores, probs = _check_scores(scores, probs)
    return np.einsum("ic,icp,icq->pq", probs, scores, scores) / scores.shape[0]


def empirical_fisher(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""The empirical Fisher $\frac1n\sum_i s_{i y_i} s_{i y_i}^\top$, with the observed labels.

    Parameters
    ----------
    scores : numpy.ndarray
        $s_{ic}$ for every label, shape ``(n, K, P)`` (the observed label's row is used).
    y : numpy.ndarray
        Observed integer labels, shape ``(n,)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(P, P)``.

    Raises
    ------
    TypeError, ValueError
        On non-finite or non-floating scores, non-integer labels, or labels out of range.

    Notes
    -----
    It is not the Fisher information: the labels come from the data, not from the model, and
    the observed scores do not average to zero away from a maximum of the likelihood. Where
    the model's conditional distribution equals the data's, the two agree in expectation
    over the data.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.fisher import (
    ...     empirical_fisher,
    ...     fisher_from_scores,
    ...     softmax_regression_probs,
    ...     softmax_regression_scores,
    ... )
    >>> rng = np.random.default_rng(4)
    >>> W, x, y = (
    ...     rng.normal(size=(3, 2)),
    ...     rng.normal(size=(20, 2)),
    ...     rng.integers(0, 3, size=20),
    ... )
    >>> s, p = softmax_regression_scores(W, x), softmax_regression_probs(W, x)
    >>> bool(np.allclose(empirical_fisher(s, y), fisher_from_scores(s, p)))
    False
    """
    scores = check.finite_floating(scores, "scores")
    if scores.ndim != 3:
        raise ValueError(
            f"scores must have shape (n, K, P), got {scores.shape}"
        )
    y = _check_labels(y, scores.shape[0], scores.shape[1])
    observed = scores[np.arange(scores.shape[0]), y].astype(
        np.float64, copy=False
    )
    return observed.T @ observed / scores.shape[0]


def expected_hessian(hessians: np.ndarray, probs: np.ndarray) -> np.ndarray:
    r"""$\frac1n\sum_i\sum_c p_{ic}\, H_{ic}$: the NLL Hessian averaged over
    labels drawn from the model.

    Parameters
    ----------
    hessians : numpy.ndarray
        $H_{ic} = -\nabla^2_\theta \log p(c \mid x_i)$, shape ``(n, K, P, P)``.
    probs : numpy.ndarray
        $p_{ic}$, shape ``(n, K)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(P, P)``; equal to the Fisher information (see the module summary).

    Raises
    ------
    TypeError, ValueError
        On non-finite or non-floating input, mismatched shapes, or rows of ``probs`` that
        are not probability vectors.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.fisher import expected_hessian
    >>> H = np.stack([np.eye(2), 3 * np.eye(2)])[
    ...     None
    ... ]  # one example, two labels
    >>> expected_hessian(H, np.array([[0.25, 0.75]])).tolist()
    [[2.5, 0.0], [0.0, 2.5]]
    """
    hessians = check.finite_floating(hessians, "hessians")
    if hessians.ndim != 4 or hessians.shape[2] != hessians.shape[3]:
        raise ValueError(
            f"hessians must have shape (n, K, P, P), got {hessians.shape}"
        )
    probs = _check_probs(probs, "probs")
    if probs.shape != hessians.shape[:2]:
        raise ValueError(
            f"probs must have shape {hessians.shape[:2]} to match hessians, got {probs.shape}"
        )
    return (
        np.einsum(
            "ic,icpq->pq", probs, hessians.astype(np.float64, copy=False)
        )
        / hessians.shape[0]
    )


def categorical_kl(p: np.ndarray, q: np.ndarray) -> float:
    r"""Mean over rows of $D_{\mathrm{KL}}(p_i \,\Vert\, q_i) = \sum_c p_{ic}\log(p_{ic}/q_{ic})$.

    Parameters
    ----------
    p, q : numpy.ndarray
        Probability vectors, one per row, shape ``(n, K)``.

    Returns
    -------
    float
        Non-negative; 0 exactly when ``p == q``. Terms with $p_{ic} = 0$ count as 0.

    Raises
    ------
    TypeError, ValueError
        On shapes that differ, rows that are not probability vectors, or $q_{ic} = 0$ where
        $p_{ic} > 0$ (the divergence is infinite).

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.fisher import categorical_kl, softmax_regression_probs
    >>> rng = np.random.default_rng(5)
    >>> W, D, x = (
    ...     rng.normal(size=(3, 2)),
    ...     rng.normal(size=(3, 2)),
    ...     rng.normal(size=(30, 2)),
    ... )
    >>> t = 1e-3
    >>> kl = categorical_kl(
    ...     softmax_regression_probs(W, x),
    ...     softmax_regression_probs(W + t * D, x),
    ... )
    >>> from bnnotes.fisher import quadratic_form, softmax_regression_hessian
    >>> round(
    ...     kl
    ...     / (
    ...         0.5
    ...         * t**2
    ...         * quadratic_form(softmax_regression_hessian(W, x), D)
    ...     ),
    ...     3,
    ... )
    1.0
    """
    p = _check_probs(p, "p")
    q = _check_probs(q, "q")
    if p.shape != q.shape:
        raise ValueError(
            f"p and q must have the same shape, got {p.shape} and {q.shape}"
        )
    support = p > 0
    if (q[support] == 0).any():
        raise ValueError(
            "q is 0 where p is positive: the divergence is infinite"
        )
    terms = np.zeros_like(p)
    terms[support] = p[support] * (np.log(p[support]) - np.log(q[support]))
    return float(terms.sum(axis=1).mean())


def natural_gradient(
    fisher: np.ndarray, grad: np.ndarray, damping: float = 0.0
) -> np.ndarray:
    r"""The natural gradient $(F + \lambda I)^{-1}\nabla_\theta L$.

    Parameters
    ----------
    fisher : numpy.ndarray
        $F$, shape ``(P, P)``, symmetric positive semi-definite.
    grad : numpy.ndarray
        $\nabla_\theta L$, any shape with $P$ entries (for example ``(K, d)``).
    damping : float, optional
        $\lambda \ge 0$. With the default 0 and a singular $F$, the minimum-norm solution
        $F^{+}\nabla_\theta L$ is returned (the pseudo-inverse), which ignores the directions
        the model's output does not depend on.

    Returns
    -------
    numpy.ndarray
        Same shape as ``grad``.

    Raises
    ------
    TypeError, ValueError
        On a non-square or non-finite ``fisher``, a ``grad`` whose size is not $P$, or a
        negative or non-finite ``damping``.

    Notes
    -----
    For an invertible $F$ the step is invariant under a linear change of parameters
    $\theta = A\phi$: the Fisher becomes $A^\top F A$, the gradient $A^\top\nabla_\theta L$, and
    $A\,(A^\top F A)^{-1}A^\top\nabla_\theta L = F^{-1}\nabla_\theta L$. Plain gradient descent
    has no such invariance: its step in $\theta$ becomes $AA^\top\nabla_\theta L$.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.fisher import natural_gradient
    >>> natural_gradient(np.diag([4.0, 0.5]), np.array([2.0, 1.0])).tolist()
    [0.5, 2.0]
    """
    fisher = _check_square(fisher, "fisher")
    grad = check.finite_floating(grad, "grad")
    if grad.size != fisher.shape[0]:
        raise ValueError(
            f"grad must have {fisher.shape[0]} entries to match fisher, got shape {grad.shape}"
        )
    damping = check.nonnegative(damping, "damping", allow_zero=True)
    f = fisher.astype(np.float64) + damping * np.eye(fisher.shape[0])
    g = grad.reshape(-1).astype(np.float64)
    step = (
        np.linalg.solve(f, g)
        if damping > 0
        else np.linalg.lstsq(f, g, rcond=None)[0]
    )
    return step.reshape(grad.shape)


# ---------------------------------------------------------------------- curvature along a direction


def quadratic_form(matrix: np.ndarray, direction: np.ndarray) -> float:
    r"""$d^\top M d$ for a square matrix $M$ and a direction $d$ (any shape with the right size).

    Raises
    ------
    TypeError, ValueError
        On a non-square or non-finite matrix, or a direction of the wrong size.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.fisher import quadratic_form
    >>> quadratic_form(
    ...     np.array([[2.0, 1.0], [1.0, 3.0]]), np.array([1.0, -1.0])
    ... )
    3.0
    """
    matrix = _check_square(matrix, "matrix")
    d = check.finite_floating(direction, "direction").reshape(-1)
    if d.size != matrix.shape[0]:
        raise ValueError(
            f"direction must have {matrix.shape[0]} entries, got {d.size}"
        )
    d = d.astype(np.float64)
    return float(d @ matrix.astype(np.float64) @ d)


def _check_point_pair(a, b) -> tuple[np.ndarray, np.ndarray, float]:
    a = check.finite_floating(a, "a").astype(np.float64)
    b = check.finite_floating(b, "b").astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(
            f"a and b must have the same shape, got {a.shape} and {b.shape}"
        )
    dist = float(np.linalg.norm((a - b).reshape(-1)))
    if dist == 0:
        raise ValueError("a and b must be different points")
    return a, b, dist


def second_difference(
    f: Callable[[np.ndarray], float],
    theta: np.ndarray,
    direction: np.ndarray,
    h: float = 1e-4,
) -> float:
    r"""$\big(f(\theta + h d) - 2 f(\theta) + f(\theta - h d)\big)/h^2$, the curvature of $f$
    along $d$ from three values.

    Parameters
    ----------
    f : callable
        Maps an array of the shape of ``theta`` to a number.
    theta, direction : numpy.ndarray
        The point and the direction $d$, same shape.
    h : float, optional
        Step $h > 0$; the error is $O(h^2)$ plus rounding of order
        $\varepsilon_{\text{mach}} |f| / h^2$.

    Returns
    -------
    float
        An estimate of $d^\top \nabla^2 f(\theta)\, d$.

    Raises
    ------
    TypeError, ValueError
        On non-floating or non-finite arrays, mismatched shapes, or ``h <= 0``.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.fisher import second_difference
    >>> f = lambda v: float(
    ...     v[0] ** 2 + 3 * v[0] * v[1]
    ... )  # Hessian [[2, 3], [3, 0]]
    >>> round(
    ...     second_difference(f, np.array([0.3, -1.0]), np.array([1.0, 1.0])),
    ...     6,
    ... )
    8.0
    """
    theta = check.finite_floating(theta, "theta").astype(np.float64)
    direction = check.finite_floating(direction, "direction").astype(
        np.float64
    )
    if direction.shape != theta.shape:
        raise ValueError(
            f"direction must have the shape of theta {theta.shape}, got {direction.shape}"
        )
    h = check.nonnegative(h, "h")
    return (
        f(theta + h * direction) - 2.0 * f(theta) + f(theta - h * direction)
    ) / h**2


def lipschitz_ratio(
    f: Callable[[np.ndarray], float], a: np.ndarray, b: np.ndarray
) -> float:
    r"""$|f(a) - f(b)| / \lVert a - b\rVert$: every Lipschitz constant of $f$ is at least this.

    Raises
    ------
    TypeError, ValueError
        On non-floating or non-finite points, different shapes, or ``a == b``.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.fisher import lipschitz_ratio
    >>> lipschitz_ratio(
    ...     lambda v: float(np.sin(v).sum()), np.array([0.0]), np.array([1e-8])
    ... ) <= 1.0
    True
    """
    a, b, dist = _check_point_pair(a, b)
    return abs(float(f(a)) - float(f(b))) / dist


def smoothness_ratio(
    grad: Callable[[np.ndarray], np.ndarray], a: np.ndarray, b: np.ndarray
) -> float:
    r"""$\lVert\nabla f(a) - \nabla f(b)\rVert / \lVert a - b\rVert$: every smoothness constant
    $\beta$ of $f$ is at least this.

    Raises
    ------
    TypeError, ValueError
        On non-floating or non-finite points, different shapes, or ``a == b``.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.fisher import smoothness_ratio
    >>> A = np.diag([1.0, 5.0])  # f(v) = v'Av/2 is 5-smooth
    >>> smoothness_ratio(lambda v: A @ v, np.zeros(2), np.array([0.0, 2.0]))
    5.0
    """
    a, b, dist = _check_point_pair(a, b)
    diff = np.asarray(grad(a), dtype=np.float64) - np.asarray(
        grad(b), dtype=np.float64
    )
    return float(np.linalg.norm(diff.reshape(-1))) / dist


# ------------------------------------------------------------------------- a weight-normalized unit


def _check_weight_normalized(weight, x, gain) -> tuple[np.ndarray, ...]:
    weight, x = _check_model(weight, x)
    norms = np.linalg.norm(weight, axis=1)
    if (norms == 0).any():
        raise ValueError(
            "every row of weight must be nonzero: a unit's direction "
            "w / ||w|| is undefined at w = 0"
        )
    gain = check.optional_vector(gain, (weight.shape[0],), "gain")
    gain = (
        np.ones(weight.shape[0])
        if gain is None
        else gain.astype(np.float64, copy=False)
    )
    return weight, x, norms, gain


def weight_normalized_probs(
    weight: np.ndarray, x: np.ndarray, gain: np.ndarray | None = None
) -> np.ndarray:
    r"""Class probabilities of softmax regression with weight-normalized units.

    Unit $k$ computes $z_k = g_k\,\mathbf w_k^\top x / \lVert\mathbf w_k\rVert$, the normalized
    summed input $\frac{g_k}{\sigma_k}(a_k - \mu_k)$ of Ba et al. (2016, Eq. 5) with
    $a_k = \mathbf w_k^\top x$, $\mu_k = 0$ and $\sigma_k = \lVert\mathbf w_k\rVert$ (weight
    normalization), and $p = \mathrm{softmax}(z)$. Scaling a row of $W$ by any $c > 0$
    leaves the probabilities unchanged.

    Parameters
    ----------
    weight : numpy.ndarray
        $W$, shape ``(K, d)`` with $K \ge 2$ nonzero rows $\mathbf w_k$.
    x : numpy.ndarray
        Inputs, shape ``(n, d)``.
    gain : numpy.ndarray, optional
        $g$, shape ``(K,)``; ones when omitted.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, K)``, float64; each row sums to 1.

    Raises
    ------
    TypeError, ValueError
        On non-floating or non-finite arrays, shapes that do not fit together, or a zero
        row of ``weight``.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.fisher import weight_normalized_probs
    >>> W = np.array([[3.0, 4.0], [1.0, 0.0]])
    >>> x = np.array([[1.0, 2.0]])
    >>> W2 = W * np.array([[2.0], [1.0]])  # the first unit's weights doubled
    >>> bool(
    ...     np.allclose(
    ...         weight_normalized_probs(W, x),
    ...         weight_normalized_probs(W2, x),
    ...         rtol=0,
    ...         atol=1e-15,
    ...     )
    ... )
    True
    """
    weight, x, norms, gain = _check_weight_normalized(weight, x, gain)
    return softmax((x @ weight.T) * (gain / norms))


def weight_normalized_kl_curvature(
    weight: np.ndarray,
    x: np.ndarray,
    unit: int,
    direction: np.ndarray,
    gain: np.ndarray | None = None,
) -> float:
    r"""Curvature of the KL divergence along one unit's weights, $d^\top F_{kk}\, d$.

    For the model of [`weight_normalized_probs`][bnnotes.fisher.weight_normalized_probs],
    the second derivative at $t = 0$ of
    $t \mapsto D_{\mathrm{KL}}(p_W \,\Vert\, p_{W + t\,e_k d^\top})$, the KL divergence when
    only unit $k$'s weights move, along $d$; it equals $d^\top F_{kk}\,d$ for the block
    $F_{kk}$ of the Fisher information that belongs to $\mathbf w_k$.

    Parameters
    ----------
    weight : numpy.ndarray
        $W$, shape ``(K, d)`` with $K \ge 2$ nonzero rows.
    x : numpy.ndarray
        Inputs, shape ``(n, d)``; the expectation over $x$ is their mean.
    unit : int
        $k$, the unit whose weights move, $0 \le k < K$.
    direction : numpy.ndarray
        $d$, shape ``(d,)``.
    gain : numpy.ndarray, optional
        $g$, shape ``(K,)``; ones when omitted.

    Returns
    -------
    float
        $\frac1n\sum_i p_{ik}(1 - p_{ik})\,\frac{g_k^2}{\lVert\mathbf w_k\rVert^2}
        \,(\chi_k^\top x_i)^2 \ge 0$, where
        $\chi_k = d - (\hat{\mathbf w}_k^\top d)\,\hat{\mathbf w}_k$ is $d$ without its component
        along $\hat{\mathbf w}_k = \mathbf w_k / \lVert\mathbf w_k\rVert$.

    Raises
    ------
    TypeError, ValueError
        On the same bad input as
        [`weight_normalized_probs`][bnnotes.fisher.weight_normalized_probs], a ``unit`` that is not
        an integer in $[0, K)$, or a ``direction`` of the wrong shape.

    Notes
    -----
    Moving $\mathbf w_k$ by $t\,d$ changes only the logit $z_k$, at the rate
    $\frac{g_k}{\lVert\mathbf w_k\rVert}\,\chi_k^\top x$, and the softmax output has
    covariance $\mathrm{diag}(p) - pp^\top$, whose $(k, k)$ entry is $p_k(1 - p_k)$. This is the
    diagonal block of Ba et al.'s Eq. 13 for weight normalization: the factor
    $g_k^2/\sigma_k^2$ with $\sigma_k = \lVert\mathbf w_k\rVert$ times
    $\chi_k\chi_k^\top$, where their Eq. 14 gives $\chi_k = x - \frac{a_k}{\sigma_k}
    \frac{\partial\sigma_k}{\partial\mathbf w_k}$. Doubling $\mathbf w_k$ changes neither
    $p$ nor $\chi_k$ and doubles $\sigma_k$, so the curvature falls to a quarter. The text
    of Ba et al. (2016, Sec. 5.2) says "a factor of 1/2", which their Eq. 13 does not
    support.

    References
    ----------
    J. L. Ba, J. R. Kiros and G. E. Hinton, "Layer Normalization", arXiv:1607.06450, 2016,
    Sec. 5.2, Eqs. 5, 13 and 14.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.fisher import weight_normalized_kl_curvature
    >>> rng = np.random.default_rng(0)
    >>> W, x, d = (
    ...     rng.normal(size=(3, 4)),
    ...     rng.normal(size=(50, 4)),
    ...     rng.normal(size=4),
    ... )
    >>> W2 = W.copy()
    >>> W2[0] *= 2  # unit 0's weights twice as long: the same outputs
    >>> round(
    ...     weight_normalized_kl_curvature(W2, x, 0, d)
    ...     / weight_normalized_kl_curvature(W, x, 0, d),
    ...     12,
    ... )
    0.25
    """
    weight, x, norms, gain = _check_weight_normalized(weight, x, gain)
    num_units = weight.shape[0]
    if (
        isinstance(unit, bool)
        or not isinstance(unit, (int, np.integer))
        or not 0 <= unit < num_units
    ):
        raise ValueError(
            f"unit must be an integer in [0, {num_units}), got {unit!r}"
        )
    d = check.finite_floating(direction, "direction")
    if d.shape != (weight.shape[1],):
        raise ValueError(
            f"direction must have shape ({weight.shape[1]},), got {d.shape}"
        )
    d = d.astype(np.float64, copy=False)
    w_hat = weight[unit] / norms[unit]
    chi = d - (w_hat @ d) * w_hat
    p = softmax((x @ weight.T) * (gain / norms))[:, unit]
    rate = gain[unit] / norms[unit] * (x @ chi)  # dz_k/dt for each input
    return float(np.mean(p * (1.0 - p) * rate**2))


# --------------------------------------------------------------------------- any PyTorch model


def tanh_network_num_params(d: int, hidden: int, num_classes: int) -> int:
    r"""Number of parameters of
    [`tanh_network_log_probs`][bnnotes.fisher.tanh_network_log_probs]: $h(d+1) + K(h+1)$.

    Raises
    ------
    ValueError
        If a size is not a positive integer (``num_classes`` at least 2).

    Examples
    --------
    >>> from bnnotes.fisher import tanh_network_num_params
    >>> tanh_network_num_params(3, 4, 2)
    26
    """
    d = check.positive_int(d, "d")
    hidden = check.positive_int(hidden, "hidden")
    num_classes = check.positive_int(num_classes, "num_classes")
    if num_classes < 2:
        raise ValueError("num_classes must be at least 2")
    return hidden * (d + 1) + num_classes * (hidden + 1)


def tanh_network_log_probs(theta, x, hidden: int, num_classes: int):
    r"""Log-probabilities $\log\mathrm{softmax}\big(W_2 \tanh(W_1 x + b_1) + b_2\big)$ of a
    one-hidden-layer network, in PyTorch.

    Parameters
    ----------
    theta : torch.Tensor
        All parameters in one vector: $W_1$ ``(hidden, d)``, $b_1$ ``(hidden,)``,
        $W_2$ ``(num_classes, hidden)``, $b_2$ ``(num_classes,)``, each flattened row by row.
    x : torch.Tensor
        Inputs, shape ``(n, d)``.
    hidden, num_classes : int
        $h$ and $K$.

    Returns
    -------
    torch.Tensor
        Shape ``(n, num_classes)``.

    Raises
    ------
    ValueError
        If ``theta`` does not have
        [`tanh_network_num_params`][bnnotes.fisher.tanh_network_num_params] entries or
        ``x`` is not two-dimensional.

    Notes
    -----
    The NLL Hessian of this model depends on the label (through the curvature of $\tanh$),
    so its Fisher information equals the Hessian only after averaging over labels drawn from
    the model, which is what the tests check with
    [`per_label_scores_and_hessians`][bnnotes.fisher.per_label_scores_and_hessians].

    Examples
    --------
    >>> import torch
    >>> from bnnotes.fisher import (
    ...     tanh_network_log_probs,
    ...     tanh_network_num_params,
    ... )
    >>> theta = torch.zeros(
    ...     tanh_network_num_params(2, 3, 4), dtype=torch.float64
    ... )
    >>> tanh_network_log_probs(
    ...     theta, torch.ones(1, 2, dtype=torch.float64), 3, 4
    ... ).exp()
    tensor([[0.2500, 0.2500, 0.2500, 0.2500]], dtype=torch.float64)
    """
    import torch

    if x.ndim != 2:
        raise ValueError(f"x must have shape (n, d), got {tuple(x.shape)}")
    d = x.shape[1]
    expected = tanh_network_num_params(d, hidden, num_classes)
    if theta.shape != (expected,):
        raise ValueError(
            f"theta must have shape ({expected},) for d={d}, hidden={hidden}, "
            f"num_classes={num_classes}, got {tuple(theta.shape)}"
        )
    sizes = [hidden * d, hidden, num_classes * hidden, num_classes]
    w1, b1, w2, b2 = torch.split(theta, sizes)
    a = torch.tanh(x @ w1.reshape(hidden, d).T + b1)
    return torch.log_softmax(
        a @ w2.reshape(num_classes, hidden).T + b2, dim=-1
    )


def per_label_scores_and_hessians(
    log_probs: Callable, theta: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Scores and NLL Hessians of a PyTorch model for every example and every
    label, with ``torch.func``.

    Parameters
    ----------
    log_probs : callable
        ``log_probs(theta, x)`` maps a parameter vector (torch, shape ``(P,)``) and inputs
        (torch, shape ``(n, d)``) to log-probabilities of shape ``(n, K)``; it must be
        differentiable twice with ``torch.func``.
    theta : numpy.ndarray
        Parameter vector, shape ``(P,)``.
    x : numpy.ndarray
        Inputs, shape ``(n, d)``.

    Returns
    -------
    probs : numpy.ndarray
        $p(c \mid x_i)$, shape ``(n, K)``.
    scores : numpy.ndarray
        $\nabla_\theta \log p(c \mid x_i)$, shape ``(n, K, P)``.
    hessians : numpy.ndarray
        $-\nabla^2_\theta \log p(c \mid x_i)$, shape ``(n, K, P, P)``.

    Raises
    ------
    TypeError, ValueError
        If ``theta`` or ``x`` is not a finite floating array of the right rank, or
        ``log_probs`` does not return an ``(n, K)`` result.

    Notes
    -----
    Everything runs in float64. The Hessians are computed as ``jacfwd(jacrev(.))`` of
    the log-probabilities, $nKP^2$ numbers: meant for models with tens of parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.fisher import (
    ...     expected_hessian,
    ...     fisher_from_scores,
    ...     per_label_scores_and_hessians,
    ...     tanh_network_log_probs,
    ...     tanh_network_num_params,
    ... )
    >>> rng = np.random.default_rng(6)
    >>> x, theta = (
    ...     rng.normal(size=(8, 2)),
    ...     rng.normal(size=tanh_network_num_params(2, 3, 3)),
    ... )
    >>> p, s, H = per_label_scores_and_hessians(
    ...     lambda th, xx: tanh_network_log_probs(th, xx, 3, 3), theta, x
    ... )
    >>> bool(
    ...     np.allclose(
    ...         fisher_from_scores(s, p),
    ...         expected_hessian(H, p),
    ...         rtol=0,
    ...         atol=1e-12,
    ...     )
    ... )
    True
    """
    import torch
    from torch.func import jacfwd, jacrev

    theta = check.finite_floating(theta, "theta")
    x = check.finite_floating(x, "x")
    if theta.ndim != 1:
        raise ValueError(f"theta must have shape (P,), got {theta.shape}")
    if x.ndim != 2:
        raise ValueError(f"x must have shape (n, d), got {x.shape}")
    th = torch.from_numpy(theta.astype(np.float64))
    xt = torch.from_numpy(x.astype(np.float64))
    with torch.no_grad():
        lp = log_probs(th, xt)
    if lp.ndim != 2 or lp.shape[0] != x.shape[0]:
        raise ValueError(
            f"log_probs must return shape (n, K) with n={x.shape[0]}, got {tuple(lp.shape)}"
        )
    scores = jacrev(log_probs)(th, xt)
    hessians = jacfwd(jacrev(log_probs))(th, xt)
    return (
        lp.exp().numpy(),
        scores.detach().numpy(),
        -hessians.detach().numpy(),
    )
