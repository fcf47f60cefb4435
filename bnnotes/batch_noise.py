r"""The noise BN adds to one example through its mini-batch companions (Ioffe & Szegedy, Sec. 3.4).

In training, $\hat x = (x - \mu_\mathcal{B})/\sigma_\mathcal{B}$ for a fixed example $x$ changes
with the other $m - 1$ examples drawn into its batch. For companions from a population
with mean 0 and variance 1 (so $x$ is the example's $z$-score), the batch mean fluctuates
with variance about $1/m$ and the batch variance with variance about $2/m$ (for normal
data). To first order in $1/m$,

$$\hat x \approx x - \bar c - \tfrac{x}{2}\,(\sigma^2_\mathcal{B} - 1)
\quad\Longrightarrow\quad
\mathrm{sd}[\hat x] \approx \sqrt{\frac{1 + x^2/2}{m}},$$

where $\bar c$ is the companions' mean. The noise falls as $1/\sqrt m$ and is larger for
examples far from the mean.
"""

from __future__ import annotations

import numpy as np

from bnnotes import _validation as check

__all__ = ["batch_noise", "predicted_batch_noise"]


def batch_noise(
    x: float, batch_size: int, trials: int = 4000, seed: int = 0
) -> float:
    r"""Standard deviation of BN's output for one value ``x`` over random batch companions.

    The companions are ``batch_size - 1`` draws from $\mathcal N(0, 1)$; ``x`` is the
    example's own value (its $z$-score in that population). Uses $\epsilon = 0$.

    Examples
    --------
    >>> from bnnotes.batch_noise import batch_noise
    >>> bool(
    ...     batch_noise(0.5, 64) < batch_noise(0.5, 8)
    ... )  # larger batches, less noise
    True
    """
    x = check.finite_real(x, "x")
    batch_size = check.int_at_least(batch_size, 2, "batch_size")
    trials = check.int_at_least(trials, 2, "trials")
    rng = np.random.default_rng(seed)
    companions = rng.normal(size=(trials, batch_size - 1))
    batches = np.concatenate(
        [np.full((trials, 1), float(x)), companions], axis=1
    )
    mu = batches.mean(axis=1)
    sigma = np.sqrt(((batches - mu[:, None]) ** 2).mean(axis=1))
    return float(np.std((x - mu) / sigma))


def predicted_batch_noise(x: float, batch_size: int) -> float:
    r"""Large-batch prediction $\sqrt{(1 + z^2/2)/m}$ of
    [`batch_noise`][bnnotes.batch_noise.batch_noise].

    The term 1 comes from the batch mean (variance $\sigma^2/m$), the term $z^2/2$ from the
    batch standard deviation (variance about $\sigma^2/(2m)$, scaled by $z$).

    Examples
    --------
    >>> from bnnotes.batch_noise import predicted_batch_noise
    >>> round(predicted_batch_noise(0.0, 100), 3)
    0.1
    """
    x = check.finite_real(x, "x")
    batch_size = check.positive_int(batch_size, "batch_size")
    return float(np.sqrt((1.0 + x * x / 2.0) / batch_size))
