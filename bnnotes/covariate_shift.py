r"""Covariate shift, and each layer as a learner whose input moves: a synthetic demonstration.

*Covariate shift* (Shimodaira, 2000) is a change of the input distribution $p(x)$ between
training and use while the labelling rule $p(y \mid x)$ stays the same. The cat-classifier
story of the BN lecture notes is the standard example: trained on black cats, tested on
coloured ones. This module makes it concrete with two numbers per input and a fixed,
nonlinear rule,

$$y = \mathbb 1\big[x_2 > f(x_1)\big], \qquad f(x_1) = \tfrac12 x_1^2 ,$$

in two *domains* that differ only in where $x_1$ lies: $x_1 \sim \mathcal N(\mu, 0.5^2)$ with
$\mu = -2$ (the source, where training data come from) or $\mu = +2$ (the target), and
$x_2 = f(x_1) + \xi$, $\xi \sim \mathcal N(0, 1)$, so that both classes have probability 1/2
in every domain. A classifier fitted in the source learns the boundary where the source
data are; at the target the parabola bends the other way.

The second part follows Ioffe & Szegedy's (2015, §2) view of a layer as a learner whose
inputs are the outputs of the layers below. In a two-layer network

$$h = W_1 x + b_1 \quad\text{or}\quad h = \mathrm{BN}_{\gamma,\beta}(W_1 x),
\qquad \hat y = w_2^\top \mathrm{ReLU}(h) + b_2 ,$$

the part above $h$ is trained on inputs $h$ whose distribution changes every time $W_1$ is
updated. [`layer_input_drift`][bnnotes.experiments.covariate_shift.layer_input_drift]
(in the experiments package, with the page's figures) records the
mean, variance, skewness, kurtosis and correlations of the hidden units on a fixed probe
batch after every step. With BN the per-batch mean of unit $k$ is exactly $\beta_k$ and its
variance $\gamma_k^2\,\sigma_k^2/(\sigma_k^2 + \epsilon)$, whatever $W_1$ is; the shape and the
correlations are untouched by BN and keep moving.

The third part is BN's side effect: in training mode the output for one example depends on
the other examples of its mini-batch
([`prediction_spread`][bnnotes.covariate_shift.prediction_spread]).

References
----------
- H. Shimodaira, "Improving predictive inference under covariate shift by weighting the
  log-likelihood function", Journal of Statistical Planning and Inference 90(2), 2000.
- S. Ioffe and C. Szegedy, "Batch Normalization: Accelerating Deep Network Training by
  Reducing Internal Covariate Shift", ICML 2015, arXiv:1502.03167, Sections 2, 3.2 and 3.4.
- S. Santurkar, D. Tsipras, A. Ilyas and A. Madry, "How Does Batch Normalization Help
  Optimization?", NeurIPS 2018, arXiv:1805.11604.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bnnotes import _validation as check
from bnnotes._threads import one_thread
from bnnotes.saturation import sigmoid

__all__ = [
    "FEATURE_SETS",
    "SOURCE_MEAN",
    "TARGET_MEAN",
    "HiddenMoments",
    "LogisticFit",
    "ShiftReport",
    "TwoLayerNet",
    "boundary",
    "covariate_shift_report",
    "features",
    "fit_logistic",
    "hidden_moments",
    "label",
    "prediction_spread",
    "sample_domain",
]

SOURCE_MEAN = -2.0
r"""Mean of $x_1$ in the source domain (the "black cats" the classifier is trained on)."""

TARGET_MEAN = 2.0
r"""Mean of $x_1$ in the target domain (the "coloured cats" it is tested on)."""

FEATURE_SETS = ("linear", "quadratic", "matched")
r"""Feature maps of [`features`][bnnotes.covariate_shift.features]: $(1, x_1, x_2)$; every
monomial of degree at most 2; and $(1, x_1, x_2, x_1^2)$, the smallest family that contains
the rule."""


# --------------------------------------------------------------------------- checks


def _inputs(x, name: str = "x") -> np.ndarray:
    x = check.finite_floating(x, name)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2), got {x.shape}")
    return x


def _labels(y, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},) to match x, got {y.shape}")
    if y.dtype == bool or not (
        np.issubdtype(y.dtype, np.integer)
        or np.issubdtype(y.dtype, np.floating)
    ):
        raise TypeError(
            f"y must hold the integers 0 and 1, got dtype {y.dtype}"
        )
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("y must contain only the labels 0 and 1")
    return y.astype(np.float64)


def _kind(kind) -> str:
    if kind not in FEATURE_SETS:
        raise ValueError(f"kind must be one of {FEATURE_SETS}, got {kind!r}")
    return kind


# -------------------------------------------------------------------------- part 1: covariate shift


def boundary(x1: np.ndarray) -> np.ndarray:
    r"""The class boundary $f(x_1) = x_1^2/2$ of the labelling rule.

    Parameters
    ----------
    x1 : numpy.ndarray
        Values of the first input coordinate, any shape.

    Returns
    -------
    numpy.ndarray
        $f(x_1)$, float64, same shape.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.covariate_shift import boundary
    >>> boundary(np.array([-2.0, 0.0, 2.0])).tolist()
    [2.0, 0.0, 2.0]
    """
    x1 = np.asarray(x1, dtype=np.float64)
    return 0.5 * x1 * x1


def label(x: np.ndarray) -> np.ndarray:
    r"""The fixed labelling rule $y = \mathbb 1[x_2 > x_1^2/2]$, the same in every domain.

    Parameters
    ----------
    x : numpy.ndarray
        Inputs of shape ``(n, 2)`` with a floating dtype and finite values.

    Returns
    -------
    numpy.ndarray
        Labels 0 or 1, int64, shape ``(n,)``.

    Raises
    ------
    TypeError
        If ``x`` is not floating.
    ValueError
        If ``x`` is not of shape ``(n, 2)`` or has non-finite values.

    Notes
    -----
    The rule is deterministic, so $p(y \mid x)$ is a point mass that does not depend on
    the domain the input was drawn from: covariate shift changes $p(x)$ only.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.covariate_shift import label
    >>> label(np.array([[-2.0, 2.5], [2.0, 2.5], [2.0, 1.5]])).tolist()
    [1, 1, 0]
    """
    x = _inputs(x)
    return (x[:, 1] > boundary(x[:, 0])).astype(np.int64)


def sample_domain(
    n: int,
    x1_mean: float,
    seed: int = 0,
    x1_sd: float = 0.5,
    noise_sd: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Draw ``n`` labelled inputs from the domain centred at $x_1 = $ ``x1_mean``.

    Parameters
    ----------
    n : int
        Number of examples, at least 1.
    x1_mean : float
        $\mu$ in $x_1 \sim \mathcal N(\mu, s^2)$;
        [`SOURCE_MEAN`][bnnotes.covariate_shift.SOURCE_MEAN] is $-2$ and
        [`TARGET_MEAN`][bnnotes.covariate_shift.TARGET_MEAN] is $+2$.
    seed : int, optional
        Seed ($\ge 0$) of a ``numpy.random.default_rng`` generator; the global NumPy state
        is not used.
    x1_sd : float, optional
        $s > 0$, default 0.5.
    noise_sd : float, optional
        Standard deviation $> 0$ of $\xi$ in $x_2 = f(x_1) + \xi$, default 1.

    Returns
    -------
    x : numpy.ndarray
        Inputs, float64, shape ``(n, 2)``.
    y : numpy.ndarray
        [`label`][bnnotes.covariate_shift.label] of ``x``, int64, shape ``(n,)``.

    Raises
    ------
    ValueError
        If ``n`` is not a positive integer, ``seed`` is not an integer $\ge 0$, ``x1_mean``
        is not finite, or a standard deviation is not a finite number $> 0$.

    Notes
    -----
    Because $x_2$ is drawn around the boundary, $y = \mathbb 1[\xi > 0]$ and each class has
    probability exactly 1/2 in every domain. An accuracy of 0.5 is therefore chance level
    in both domains, and a fall to it cannot come from a change of class balance.

    Examples
    --------
    >>> from bnnotes.covariate_shift import label, sample_domain
    >>> x, y = sample_domain(1000, x1_mean=-2.0, seed=0)
    >>> x.shape, bool((y == label(x)).all()), bool(abs(y.mean() - 0.5) < 0.05)
    ((1000, 2), True, True)
    """
    n = check.int_at_least(n, 1, "n")
    seed = check.int_at_least(seed, 0, "seed")
    x1_mean = check.finite_real(x1_mean, "x1_mean")
    x1_sd = check.nonnegative(x1_sd, "x1_sd")
    noise_sd = check.nonnegative(noise_sd, "noise_sd")
    rng = np.random.default_rng(seed)
    x1 = rng.normal(x1_mean, x1_sd, size=n)
    x2 = boundary(x1) + rng.normal(0.0, noise_sd, size=n)
    x = np.stack([x1, x2], axis=1)
    return x, label(x)


def features(x: np.ndarray, kind: str = "linear") -> np.ndarray:
    r"""The design matrix of a logistic model: a constant column and functions of $x$.

    Parameters
    ----------
    x : numpy.ndarray
        Inputs of shape ``(n, 2)``, floating and finite.
    kind : {"linear", "quadratic", "matched"}
        ``"linear"``: $(1, x_1, x_2)$. ``"quadratic"``: $(1, x_1, x_2, x_1^2, x_1 x_2, x_2^2)$,
        which can represent the rule and much else. ``"matched"``: $(1, x_1, x_2, x_1^2)$, the
        smallest of these families that contains the rule.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, 3)``, ``(n, 6)`` or ``(n, 4)``, float64.

    Raises
    ------
    TypeError, ValueError
        For a bad ``x`` (see [`label`][bnnotes.covariate_shift.label]) or an unknown ``kind``.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.covariate_shift import features
    >>> features(np.array([[2.0, 3.0]]), "quadratic").tolist()
    [[1.0, 2.0, 3.0, 4.0, 6.0, 9.0]]
    """
    x = _inputs(x).astype(np.float64, copy=False)
    kind = _kind(kind)
    x1, x2 = x[:, 0], x[:, 1]
    columns = [np.ones_like(x1), x1, x2]
    if kind == "quadratic":
        columns += [x1 * x1, x1 * x2, x2 * x2]
    elif kind == "matched":
        columns.append(x1 * x1)
    return np.stack(columns, axis=1)


def _objective(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float
) -> float:
    z = X @ w
    # log(1 + e^z) - y z, without overflow for large |z|.
    losses = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z))) - y * z
    return float(losses.mean() + 0.5 * l2 * (w @ w))


@dataclass(frozen=True, eq=False)
class LogisticFit:
    r"""A fitted L2-regularized logistic model $p(y = 1 \mid x) = \sigma(w^\top \phi(x))$.

    Attributes
    ----------
    weights : numpy.ndarray
        $w$, one entry per column of [`features`][bnnotes.covariate_shift.features].
    kind : str
        The feature map $\phi$.
    l2 : float
        The penalty $\lambda$ it was fitted with.
    iterations : int
        Newton steps taken.

    Examples
    --------
    >>> from bnnotes.covariate_shift import fit_logistic, sample_domain
    >>> x, y = sample_domain(500, -2.0, seed=1)
    >>> fit = fit_logistic(x, y, "quadratic")
    >>> fit.kind, fit.weights.shape
    ('quadratic', (6,))
    """

    weights: np.ndarray
    kind: str
    l2: float
    iterations: int

    def decision(self, x: np.ndarray) -> np.ndarray:
        r"""The logit $w^\top \phi(x)$ for inputs of shape ``(n, 2)``."""
        return features(x, self.kind) @ self.weights

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted labels (int64): 1 where the logit is positive."""
        return (self.decision(x) > 0).astype(np.int64)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Fraction of ``x`` whose predicted label equals ``y``."""
        x = _inputs(x)
        return float(np.mean(self.predict(x) == _labels(y, x.shape[0])))


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    kind: str = "linear",
    l2: float = 1e-3,
    tol: float = 1e-12,
    max_iter: int = 100,
) -> LogisticFit:
    r"""Fit L2-regularized logistic regression by Newton's method.

    Parameters
    ----------
    x : numpy.ndarray
        Inputs of shape ``(n, 2)``, floating and finite.
    y : numpy.ndarray
        Labels 0 or 1, shape ``(n,)``.
    kind : {"linear", "quadratic", "matched"}, optional
        The feature map (see [`features`][bnnotes.covariate_shift.features]).
    l2 : float, optional
        $\lambda > 0$. The labels here are a deterministic function of $x$, so the data can
        be separable and the unpenalized optimum can lie at infinity; the penalty keeps it
        finite and unique. The constant column is penalized too.
    tol : float, optional
        Stop when the largest entry of the Newton step is below ``tol`` (default ``1e-12``).
    max_iter : int, optional
        Newton steps allowed (default 100).

    Returns
    -------
    LogisticFit
        The minimizer and the number of steps taken.

    Raises
    ------
    TypeError, ValueError
        For a bad ``x``, ``y`` that is not 0/1 of length ``n``, an unknown ``kind``, or
        ``l2``, ``tol`` or ``max_iter`` out of range.
    RuntimeError
        If the steps have not fallen below ``tol`` after ``max_iter`` steps.

    Notes
    -----
    With $\phi_i = \phi(x_i)$ and $p_i = \sigma(w^\top \phi_i)$ the objective is

    $$J(w) = \frac1n \sum_{i=1}^n \big(\log(1 + e^{w^\top \phi_i}) - y_i\, w^\top \phi_i\big) +
    \frac\lambda2 \lVert w \rVert^2,$$

    $$\nabla J = \frac1n \Phi^\top (p - y) + \lambda w, \qquad
    \nabla^2 J = \frac1n \Phi^\top \mathrm{diag}\big(p_i (1 - p_i)\big) \Phi + \lambda I \succ 0 .$$

    $J$ is strictly convex, so its minimizer is unique. Each Newton step is halved until
    $J$ does not increase, which makes the iteration monotone from the start $w = 0$.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.covariate_shift import (
    ...     features,
    ...     fit_logistic,
    ...     sample_domain,
    ... )
    >>> from bnnotes.saturation import sigmoid
    >>> x, y = sample_domain(500, -2.0, seed=1)
    >>> fit = fit_logistic(x, y, "linear", l2=1e-3)
    >>> Phi = features(x, "linear")
    >>> grad = (
    ...     Phi.T @ (sigmoid(Phi @ fit.weights) - y) / len(y)
    ...     + 1e-3 * fit.weights
    ... )
    >>> bool(np.abs(grad).max() < 1e-12)  # the optimality condition holds
    True
    """
    x = _inputs(x)
    yv = _labels(y, x.shape[0])
    kind = _kind(kind)
    l2 = check.nonnegative(l2, "l2")
    tol = check.nonnegative(tol, "tol")
    max_iter = check.int_at_least(max_iter, 1, "max_iter")
    X = features(x, kind)
    n, d = X.shape
    w = np.zeros(d)
    value = _objective(X, yv, w, l2)
    for iteration in range(1, max_iter + 1):
        p = sigmoid(X @ w)
        grad = X.T @ (p - yv) / n + l2 * w
        hess = (X.T * (p * (1.0 - p))) @ X / n + l2 * np.eye(d)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while True:
            candidate = w - scale * step
            new_value = _objective(X, yv, candidate, l2)
            if new_value <= value or scale < 1e-10:
                break
            scale *= 0.5
        w, value = candidate, new_value
        if np.max(np.abs(scale * step)) < tol:
            return LogisticFit(
                weights=w, kind=kind, l2=l2, iterations=iteration
            )
    raise RuntimeError(
        f"Newton's method did not converge to tol={tol} in {max_iter} steps"
    )


@dataclass(frozen=True, eq=False)
class ShiftReport:
    r"""Accuracies of one model family trained in the source domain and used in the target.

    Attributes
    ----------
    kind : str
        The feature map.
    source_train_accuracy : float
        On the training set.
    source_test_accuracy : float
        On fresh data from the source domain (no shift).
    target_accuracy : float
        On data from the target domain, same rule: the covariate-shift case.
    retrained_target_accuracy : float
        Of the same family fitted on target-domain data and tested on fresh target data.
    fit, retrained : LogisticFit
        The two fitted models.

    Examples
    --------
    >>> from bnnotes.covariate_shift import covariate_shift_report
    >>> r = covariate_shift_report("matched", n=1000)
    >>> r.kind, bool(r.target_accuracy > 0.8)
    ('matched', True)
    """

    kind: str
    source_train_accuracy: float
    source_test_accuracy: float
    target_accuracy: float
    retrained_target_accuracy: float
    fit: LogisticFit
    retrained: LogisticFit

    @property
    def drop(self) -> float:
        """Source test accuracy minus target accuracy: what the shift costs."""
        return self.source_test_accuracy - self.target_accuracy


def covariate_shift_report(
    kind: str = "linear",
    n: int = 2000,
    source_mean: float = SOURCE_MEAN,
    target_mean: float = TARGET_MEAN,
    l2: float = 1e-3,
    seed: int = 0,
) -> ShiftReport:
    r"""Train in the source domain, test in the source and in the target, and retrain in the target.

    Parameters
    ----------
    kind : {"linear", "quadratic", "matched"}, optional
        The model family (see [`features`][bnnotes.covariate_shift.features]).
    n : int, optional
        Size of each of the four samples (source train and test, target train and test).
    source_mean, target_mean : float, optional
        Where $x_1$ is centred in each domain.
    l2 : float, optional
        Penalty of [`fit_logistic`][bnnotes.covariate_shift.fit_logistic].
    seed : int, optional
        The four samples use seeds ``seed``, ``seed + 1``, ``seed + 2`` and ``seed + 3``.

    Returns
    -------
    ShiftReport

    Raises
    ------
    ValueError
        For arguments out of range (see the functions it calls).

    Notes
    -----
    The rule $p(y \mid x)$ is the same in both domains, so the retrained model shows what
    the family can do in the target; the gap between ``retrained_target_accuracy`` and
    ``target_accuracy`` is the price of testing where the model was not trained.

    Examples
    --------
    >>> from bnnotes.covariate_shift import covariate_shift_report
    >>> r = covariate_shift_report("linear", n=1000)
    >>> (
    ...     r.source_test_accuracy > 0.9,
    ...     r.target_accuracy < 0.6,
    ...     r.retrained_target_accuracy > 0.9,
    ... )
    (True, True, True)
    """
    kind = _kind(kind)
    source_mean = check.finite_real(source_mean, "source_mean")
    target_mean = check.finite_real(target_mean, "target_mean")
    seed = check.int_at_least(seed, 0, "seed")
    x_train, y_train = sample_domain(n, source_mean, seed)
    x_test, y_test = sample_domain(n, source_mean, seed + 1)
    x_target_train, y_target_train = sample_domain(n, target_mean, seed + 2)
    x_target, y_target = sample_domain(n, target_mean, seed + 3)
    fit = fit_logistic(x_train, y_train, kind, l2=l2)
    retrained = fit_logistic(x_target_train, y_target_train, kind, l2=l2)
    return ShiftReport(
        kind=kind,
        source_train_accuracy=fit.accuracy(x_train, y_train),
        source_test_accuracy=fit.accuracy(x_test, y_test),
        target_accuracy=fit.accuracy(x_target, y_target),
        retrained_target_accuracy=retrained.accuracy(x_target, y_target),
        fit=fit,
        retrained=retrained,
    )


# ------------------------------------------------------------------ part 2: each layer as a learner


class TwoLayerNet(nn.Module):
    r"""$x \mapsto w_2^\top \mathrm{ReLU}(h) + b_2$ with $h = W_1 x + b_1$ or
    $h = \mathrm{BN}_{\gamma,\beta}(W_1 x)$.

    Parameters
    ----------
    in_features : int, optional
        Input dimension (default 2).
    width : int, optional
        Number of hidden units $k$ (default 16).
    batch_norm : bool, optional
        Whether $h$ is batch-normalized. With BN the first layer has no bias: $\beta$
        replaces it (Ioffe & Szegedy, 2015, §3.2).
    learn_affine : bool, optional
        With BN, whether $\gamma$ and $\beta$ are trained (default) or fixed at 1 and 0.
    eps : float, optional
        $\epsilon > 0$ of BN (default ``1e-5``).
    dtype : torch.dtype, optional
        Default ``torch.float64``.

    Raises
    ------
    ValueError
        If ``in_features`` or ``width`` is not a positive integer or ``eps`` is not a finite
        number $> 0$.

    Notes
    -----
    ``first`` is the lower learner, ``second`` (with the ReLU before it) the upper one; $h$
    is the input of the upper learner, taken before the nonlinearity, where the BN paper
    puts BN.

    Examples
    --------
    >>> import torch
    >>> from bnnotes.covariate_shift import TwoLayerNet
    >>> net = TwoLayerNet(batch_norm=True)
    >>> net(torch.zeros(5, 2, dtype=torch.float64)).shape
    torch.Size([5])
    """

    def __init__(
        self,
        in_features: int = 2,
        width: int = 16,
        batch_norm: bool = False,
        learn_affine: bool = True,
        eps: float = 1e-5,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        in_features = check.int_at_least(in_features, 1, "in_features")
        width = check.int_at_least(width, 1, "width")
        eps = check.eps_value(eps)
        super().__init__()
        self.first = nn.Linear(
            in_features, width, bias=not batch_norm, dtype=dtype
        )
        self.norm = (
            nn.BatchNorm1d(width, eps=eps, affine=learn_affine, dtype=dtype)
            if batch_norm
            else None
        )
        self.second = nn.Linear(width, 1, dtype=dtype)

    @property
    def batch_norm(self) -> bool:
        """Whether the hidden units are batch-normalized."""
        return self.norm is not None

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """$h$, the input of the upper learner (BN in its current train/eval mode)."""
        z = self.first(x)
        return z if self.norm is None else self.norm(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logit $w_2^\\top \\mathrm{ReLU}(h) + b_2$, shape ``(n,)``."""
        return self.second(torch.relu(self.hidden(x)))[..., 0]

    def batch_hidden(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """$(z, h)$ on the batch ``x`` with its own batch statistics.

        No gradient is recorded and the running statistics are not updated. ``x`` may
        carry leading batch dimensions, ``(..., m, in_features)``, normalized over ``m``.
        """
        with torch.no_grad():
            z = self.first(x)
            if self.norm is None:
                return z, z
            mean = z.mean(dim=-2, keepdim=True)
            centered = z - mean
            # two passes, biased (1/m) variance
            var = centered.square().mean(dim=-2, keepdim=True)
            h = centered / torch.sqrt(var + self.norm.eps)
            if self.norm.weight is not None:
                h = h * self.norm.weight + self.norm.bias
            return z, h

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        r"""$(\gamma, \beta)$ as float64 arrays (ones and zeros when not learned).

        Raises
        ------
        ValueError
            If the network has no BN.
        """
        if self.norm is None:
            raise ValueError(
                "the network has no BN, so it has no gamma and beta"
            )
        width = self.norm.num_features
        if self.norm.weight is None:
            return np.ones(width), np.zeros(width)
        return (
            self.norm.weight.detach().to(torch.float64).numpy().copy(),
            self.norm.bias.detach().to(torch.float64).numpy().copy(),
        )


@dataclass(frozen=True, eq=False)
class HiddenMoments:
    r"""Per-unit moments and the correlations of a batch of hidden units.

    Attributes
    ----------
    mean, variance : numpy.ndarray
        Per unit, shape ``(k,)``; the variance is the biased ($1/m$) one, as in BN.
    skewness, kurtosis : numpy.ndarray
        Standardized third and fourth moments $E[u^3]$ and $E[u^4]$ of
        $u = (h - \mathrm{mean})/\sqrt{\mathrm{variance}}$, shape ``(k,)`` (3 for a normal
        distribution, not the excess).
    correlation : numpy.ndarray
        The $k \times k$ correlation matrix, $E[u u^\top]$.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.covariate_shift import hidden_moments
    >>> m = hidden_moments(np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]]))
    >>> m.mean.tolist(), m.correlation.shape
    ([2.0, 4.0], (2, 2))
    """

    mean: np.ndarray
    variance: np.ndarray
    skewness: np.ndarray
    kurtosis: np.ndarray
    correlation: np.ndarray


def hidden_moments(h: np.ndarray) -> HiddenMoments:
    r"""Mean, variance, skewness, kurtosis and correlations of ``h`` over its batch axis.

    Parameters
    ----------
    h : numpy.ndarray
        Shape ``(m, k)``: $m \ge 2$ examples of $k$ units; floating, finite, and no unit
        constant over the batch.

    Returns
    -------
    HiddenMoments

    Raises
    ------
    TypeError
        If ``h`` is not floating.
    ValueError
        If ``h`` is not 2-D with at least 2 rows, has non-finite values, or a unit has
        variance 0 (its standardized moments are undefined).

    Notes
    -----
    Two passes: the mean is subtracted first and the powers are averaged afterwards. For
    a per-unit map $h_k \mapsto a_k h_k + b_k$ the mean becomes $a_k \mu_k + b_k$ and the
    variance $a_k^2 \sigma_k^2$, while the skewness is multiplied by $\mathrm{sign}(a_k)$ and
    the kurtosis and the correlations (up to the signs $\mathrm{sign}(a_j a_k)$) do not change.
    Batch normalization is such a map with $a_k = \gamma_k/\sqrt{\sigma_k^2 + \epsilon}$, so it
    fixes the first two moments and leaves the rest as they were.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.covariate_shift import hidden_moments
    >>> h = np.random.default_rng(0).exponential(size=(10_000, 3))
    >>> moments = hidden_moments(3.0 * h - 1.0)
    >>> bool(
    ...     np.allclose(
    ...         moments.skewness, hidden_moments(h).skewness, rtol=1e-12
    ...     )
    ... )
    True
    """
    h = check.finite_floating(h, "h")
    if h.ndim != 2 or h.shape[0] < 2:
        raise ValueError(
            f"h must have shape (m, k) with m >= 2, got {h.shape}"
        )
    h = h.astype(np.float64, copy=False)
    mean = h.mean(axis=0)
    centered = h - mean
    variance = np.mean(centered * centered, axis=0)
    if np.any(variance == 0):
        raise ValueError(
            "every unit of h must vary over the batch (a unit has variance 0)"
        )
    u = centered / np.sqrt(variance)
    return HiddenMoments(
        mean=mean,
        variance=variance,
        skewness=np.mean(u**3, axis=0),
        kurtosis=np.mean(u**4, axis=0),
        correlation=np.einsum("ij,ik->jk", u, u)
        / h.shape[0],  # einsum: no BLAS threads for a 16 x 16 result
    )


# -------------------------------------------------------------------- part 3: the noise side effect


def prediction_spread(
    net: TwoLayerNet,
    example: np.ndarray,
    batch_size: int,
    draws: int = 400,
    training: bool = True,
    seed: int = 0,
) -> float:
    r"""Standard deviation of the network's logit for one example over random mini-batch companions.

    Parameters
    ----------
    net : TwoLayerNet
        The network; it is not modified (parameters, running statistics and mode stay).
    example : numpy.ndarray
        One input, shape ``(2,)``, floating and finite.
    batch_size : int
        $m \ge 2$: the example and $m - 1$ companions from the source domain.
    draws : int, optional
        Number of random batches, at least 2 (default 400).
    training : bool, optional
        True (default): BN uses each batch's statistics, as in training. False: BN uses the
        running statistics, as at test time, and the companions have no effect.
    seed : int, optional
        Seed of the companions.

    Returns
    -------
    float
        The standard deviation (1/draws) of the logit over the batches.

    Raises
    ------
    TypeError
        If ``net`` is not a TwoLayerNet or ``example`` is not floating.
    ValueError
        If ``example`` is not a finite vector of length 2, or ``batch_size`` or ``draws``
        is out of range.

    Notes
    -----
    Only the qualitative facts are shown here: with batch statistics the same example
    gets a different output in every batch, the spread shrinks as $m$ grows, and it is 0
    with fixed statistics. The size of the noise, about $1/\sqrt m$ per unit, is derived
    on the site's regularization page.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from bnnotes.covariate_shift import TwoLayerNet, prediction_spread
    >>> _ = torch.manual_seed(0)
    >>> net = TwoLayerNet(batch_norm=True)
    >>> example = np.array([-2.0, 2.5])
    >>> bool(
    ...     prediction_spread(net, example, 64)
    ...     < prediction_spread(net, example, 8)
    ... )
    True
    >>> prediction_spread(net, example, 8, training=False)
    0.0
    """
    if not isinstance(net, TwoLayerNet):
        raise TypeError(f"net must be a TwoLayerNet, got {type(net).__name__}")
    example = check.finite_floating(example, "example")
    if example.shape != (2,):
        raise ValueError(f"example must have shape (2,), got {example.shape}")
    batch_size = check.int_at_least(batch_size, 2, "batch_size")
    draws = check.int_at_least(draws, 2, "draws")
    companions, _ = sample_domain(draws * (batch_size - 1), SOURCE_MEAN, seed)
    dtype = net.second.weight.dtype
    batches = np.concatenate(
        [
            np.broadcast_to(example.astype(np.float64), (draws, 1, 2)),
            companions.reshape(draws, batch_size - 1, 2),
        ],
        axis=1,
    )
    x = torch.from_numpy(batches).to(dtype)
    with torch.no_grad(), one_thread():
        if training or net.norm is None:
            _, h = net.batch_hidden(x)
            logits = net.second(torch.relu(h))[:, 0, 0]
        else:
            # One batch at a time, the example always in row 0: every call runs the same
            # kernels on the same row, so only BN could make the outputs differ, and in
            # evaluation mode it does not.
            frozen = copy.deepcopy(net).eval()
            logits = torch.stack([frozen(batch)[0] for batch in x])
    logits = logits.to(torch.float64).numpy()
    # Shifted by the first draw, so that equal outputs give exactly 0 (np.std of equal
    # values can round to an ulp through their computed mean).
    return float(np.std(logits - logits[0]))
