r"""Full whitening of layer inputs, and why BN normalizes each feature on its own (Sec. 2 and 3).

Whitening maps $x \mapsto \mathrm{Cov}[x]^{-1/2}(x - E[x])$, so that the result has identity
covariance. Over a mini-batch of $m$ examples with $d$ features the sample covariance has
rank at most $m - 1$, so for $m \le d$ it is singular and $\mathrm{Cov}^{-1/2}$ does not exist.
"""

from __future__ import annotations

import numpy as np

from bnnotes import _validation as check

__all__ = ["batch_covariance", "whiten"]


def batch_covariance(x: np.ndarray) -> np.ndarray:
    r"""The (biased) covariance $\frac1m\sum_i (x_i - \mu)(x_i - \mu)^\top$ of a
    batch of shape ``(m, d)``.

    Computed from centered values (two passes), as BN computes its variance.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.whitening import batch_covariance
    >>> x = np.random.default_rng(0).normal(size=(5, 8))
    >>> int(np.linalg.matrix_rank(batch_covariance(x)))  # at most m - 1 = 4
    4
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(
            f"x must have shape (m, d) with m >= 2, got {x.shape}"
        )
    centered = x - x.mean(axis=0)
    return centered.T @ centered / x.shape[0]


def whiten(x: np.ndarray, eps: float = 0.0) -> np.ndarray:
    r"""ZCA whitening $\hat x = (\mathrm{Cov}[x] + \epsilon I)^{-1/2}(x - E[x])$ over the batch.

    Parameters
    ----------
    x : numpy.ndarray
        Batch of shape ``(m, d)``.
    eps : float, optional
        Ridge added to the covariance; with the default 0 a singular covariance is an error.

    Raises
    ------
    ValueError
        If the covariance is singular (rank below $d$, always the case for $m \le d$) and
        ``eps == 0``.

    Notes
    -----
    The inverse square root comes from the eigendecomposition
    $\mathrm{Cov} = Q\Lambda Q^\top$, $\mathrm{Cov}^{-1/2} = Q\Lambda^{-1/2}Q^\top$: $O(d^3)$ work
    per mini-batch, and its gradient needs the derivative of the eigendecomposition too.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.whitening import batch_covariance, whiten
    >>> x = np.random.default_rng(0).normal(size=(200, 3)) @ np.array([
    ...     [2.0, 0, 0],
    ...     [1.0, 1.0, 0],
    ...     [0, 0.5, 0.2],
    ... ])
    >>> bool(np.allclose(batch_covariance(whiten(x)), np.eye(3)))
    True
    """
    cov = batch_covariance(x)
    d = cov.shape[0]
    eps = check.eps_value(eps, allow_zero=True)
    cov = cov + eps * np.eye(d)
    values, vectors = np.linalg.eigh(cov)
    if values.min() <= 1e-12 * max(values.max(), 1e-300):
        rank = int(np.sum(values > 1e-12 * values.max()))
        raise ValueError(
            f"the batch covariance is singular (rank {rank} < {d} features, batch of "
            f"{x.shape[0]}); whitening needs eps > 0 "
            "or a batch larger than the number of features"
        )
    inv_sqrt = (vectors / np.sqrt(values)) @ vectors.T
    return (np.asarray(x, dtype=np.float64) - np.mean(x, axis=0)) @ inv_sqrt
