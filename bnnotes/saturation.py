r"""Sigmoid saturation: why the scale of a layer's input matters (Ioffe & Szegedy, Sec. 1).

For $z = g(Wu + b)$ with the logistic sigmoid $g(x) = 1/(1 + e^{-x})$,
$g'(x) = g(x)\,(1 - g(x)) \le \min(1/4,\ e^{-|x|})$: the gradient that flows back through a
unit vanishes exponentially as its input moves away from 0.
"""

from __future__ import annotations

import numpy as np

from bnnotes import _validation as check

__all__ = ["saturated_fraction", "sigmoid", "sigmoid_derivative"]


def sigmoid(x: np.ndarray) -> np.ndarray:
    r"""The logistic function $g(x) = 1/(1 + e^{-x})$, evaluated without overflow.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.saturation import sigmoid
    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0])).tolist()
    [0.0, 0.5, 1.0]
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def sigmoid_derivative(x: np.ndarray) -> np.ndarray:
    r"""$g'(x) = g(x)(1 - g(x)) = e^{-|x|} / (1 + e^{-|x|})^2$, accurate for large $|x|$.

    Notes
    -----
    The second form follows from the symmetry $g'(x) = g'(-x)$ and avoids the cancellation
    in $1 - g(x)$ when $g(x)$ rounds to 1; it also shows $g'(x) < e^{-|x|}$.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.saturation import sigmoid_derivative
    >>> float(sigmoid_derivative(np.array(0.0)))
    0.25
    >>> bool(
    ...     sigmoid_derivative(np.array(40.0)) > 0
    ... )  # 1 - g(40) would round to 0
    True
    """
    e = np.exp(-np.abs(np.asarray(x, dtype=np.float64)))
    return e / (1.0 + e) ** 2


def saturated_fraction(z: np.ndarray, threshold: float = 0.01) -> float:
    r"""Fraction of sigmoid inputs $z$ whose derivative $g'(z)$ is below ``threshold``.

    Parameters
    ----------
    z : numpy.ndarray
        Pre-activations (inputs of the sigmoid), any shape.
    threshold : float, optional
        A unit counts as saturated when $g'(z) < $ ``threshold`` (default 0.01, that is
        $|z| > 4.59$: 4% of the slope at 0).

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.saturation import saturated_fraction
    >>> saturated_fraction(np.array([0.0, 1.0, 5.0, -6.0]))
    0.5
    """
    threshold = check.finite_real(threshold, "threshold")
    if not 0.0 < threshold <= 0.25:
        raise ValueError(f"threshold must be in (0, 0.25], got {threshold}")
    return float(np.mean(sigmoid_derivative(z) < threshold))
