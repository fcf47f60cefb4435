r"""Why normalization must be part of the gradient step (Ioffe & Szegedy, Sec. 2).

A layer adds a learned bias, $x = u + b$, and its output is centered, $\hat x = x - E[x]$.
Since $u + (b + \Delta b) - E[u + (b + \Delta b)] = u + b - E[u + b]$, no change of $b$
changes $\hat x$ or the loss; the true gradient $\partial\ell/\partial b$ is 0. A gradient
step that treats $E[x]$ as a constant instead sees $\partial\ell/\partial b = \sum_i
\partial\ell/\partial\hat x_i$, which is not 0, so $b$ keeps moving while the loss stays
where it is. [`simulate_bias_drift`][bnnotes.bias_cancellation.simulate_bias_drift] runs
both kinds of step side by side.
"""

from __future__ import annotations

import numpy as np

from bnnotes import _validation as check

__all__ = ["simulate_bias_drift"]


def simulate_bias_drift(
    steps: int = 200,
    lr: float = 0.1,
    batch: int = 64,
    features: int = 4,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    r"""Train the bias of a centered layer with the true and with the statistics-blind gradient.

    The model is $\hat x = (u + b) - E_\mathcal{B}[u + b]$ per feature, followed by a fixed
    linear read-out $y = \hat x\,v$ and the loss $\ell = \frac{1}{2m}\sum_i (y_i - t_i)^2$ on a
    fresh mini-batch at every step. Targets $t_i = \hat u_i v + c$ contain a constant $c = 1$
    that a centered output can never fit, so the loss has a floor.

    Parameters
    ----------
    steps, lr, batch, features, seed
        Number of SGD steps, learning rate, mini-batch size, width, random seed.

    Returns
    -------
    dict
        ``"bias_true"``, ``"bias_blind"``: $\lVert b \rVert$ after each step for the two
        gradients (shape ``(steps,)``); ``"loss_true"``, ``"loss_blind"``: the loss at each step.

    Examples
    --------
    >>> from bnnotes.bias_cancellation import simulate_bias_drift
    >>> run = simulate_bias_drift(steps=50)
    >>> float(run["bias_true"][-1]), bool(run["bias_blind"][-1] > 1.0)
    (0.0, True)
    """
    steps = check.positive_int(steps, "steps")
    lr = check.nonnegative(lr, "lr")
    batch = check.int_at_least(batch, 2, "batch")
    features = check.positive_int(features, "features")
    rng = np.random.default_rng(seed)
    v = rng.normal(size=features)
    out = {
        key: np.empty(steps)
        for key in ("bias_true", "bias_blind", "loss_true", "loss_blind")
    }
    b = {"true": np.zeros(features), "blind": np.zeros(features)}
    for step in range(steps):
        u = rng.normal(size=(batch, features)) * 2.0 + 3.0
        u_centered = u - u.mean(axis=0)
        t = u_centered @ v + 1.0
        for kind in ("true", "blind"):
            x = u + b[kind]
            x_hat = x - x.mean(axis=0)
            residual = x_hat @ v - t  # dl/dy * m
            dx_hat = np.outer(residual, v) / batch  # dl/dx_hat
            if kind == "true":
                # Chain rule through x_hat_i = x_i - mean(x): the direct path gives
                # sum_i dx_hat_i, the path through the mean gives -m * mean_i dx_hat_i.
                db = dx_hat.sum(axis=0) - batch * dx_hat.mean(axis=0)
            else:
                db = dx_hat.sum(axis=0)  # E[x] treated as a constant
            b[kind] = b[kind] - lr * db
            out[f"bias_{kind}"][step] = np.linalg.norm(b[kind])
            out[f"loss_{kind}"][step] = 0.5 * np.mean(residual**2)
    return out
