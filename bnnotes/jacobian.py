r"""Singular values of layer-to-layer Jacobians in a random deep network, with and without BN.

Ioffe & Szegedy (Sec. 3.3) conjecture that BN makes layer Jacobians have singular values
close to 1: if two consecutive normalized layers $\hat x$ and $\hat z = F(\hat x)$ are
uncorrelated Gaussians with unit covariance and $F(\hat x) \approx J\hat x$ is linear, then
$I = \mathrm{Cov}[\hat z] = J\,\mathrm{Cov}[\hat x]\,J^\top = JJ^\top$. This module measures
those singular values in a random fully connected network.

The network has ``depth`` layers of ``width`` units with weights
$W_l \sim \mathcal N(0, s^2/\text{width})$. Without BN, $z_{l+1} = W_l\, g(z_l)$ and the
Jacobian for one example is $J_l = W_l\,\mathrm{diag}(g'(z_l))$. With BN,
$\hat x_{l+1} = \mathrm{BN}(W_l\, g(\hat x_l))$, and with the batch statistics held fixed
(the inference-time view, which makes the map per-example)
$J_l = \mathrm{diag}(1/\sigma_{l+1})\,W_l\,\mathrm{diag}(g'(\hat x_l))$.

Two limits of this test. The weights are random, as at initialization, while the
conjecture is about networks in training, whose weights are not random. And BN here uses
$\epsilon = 0$: $\sigma_{l+1}$ is the batch standard deviation itself, so the BN
network's Jacobians are exactly invariant to the weight scale $s$.
"""

from __future__ import annotations

import numpy as np

from bnnotes import _validation as check

__all__ = ["NONLINEARITIES", "layer_jacobian_singular_values"]

NONLINEARITIES = {
    "linear": (lambda x: x, lambda x: np.ones_like(x)),
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "sigmoid": (
        lambda x: 1.0 / (1.0 + np.exp(-x)),
        lambda x: np.exp(-x) / (1.0 + np.exp(-x)) ** 2,
    ),
    "relu": (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(x.dtype)),
}
"""Nonlinearities $g$ and their derivatives $g'$."""


def layer_jacobian_singular_values(
    depth: int = 8,
    width: int = 64,
    batch: int = 256,
    scale: float = 1.0,
    batch_norm: bool = True,
    nonlinearity: str = "tanh",
    examples: int = 16,
    seed: int = 0,
) -> np.ndarray:
    r"""Singular values of each layer's Jacobian, for several examples.

    Parameters
    ----------
    depth, width : int
        Number of layers and units per layer.
    batch : int
        Mini-batch size used for the BN statistics (at least 2).
    scale : float
        Weight scale $s > 0$: $W_l \sim \mathcal N(0, s^2/\text{width})$.
    batch_norm : bool
        Whether each layer's pre-activations are batch-normalized.
    nonlinearity : {"linear", "tanh", "sigmoid", "relu"}
        The function $g$.
    examples : int
        How many examples of the batch to compute Jacobians for (at most ``batch``).
    seed : int
        Seed of the weights and the input batch.

    Returns
    -------
    numpy.ndarray
        Shape ``(depth, examples, width)``: the singular values of $J_l$ for each layer and
        example, in decreasing order.

    Raises
    ------
    ValueError
        On an unknown nonlinearity, ``batch < 2``, ``examples > batch`` or ``scale <= 0``.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.jacobian import layer_jacobian_singular_values
    >>> sv = layer_jacobian_singular_values(
    ...     depth=3, width=16, batch=64, nonlinearity="linear"
    ... )
    >>> sv.shape
    (3, 16, 16)
    >>> bool(
    ...     np.allclose(np.sqrt((sv**2).mean(axis=2)), 1.0, atol=0.2)
    ... )  # RMS singular value near 1
    True
    """
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(
            f"nonlinearity must be one of {sorted(NONLINEARITIES)}, got {nonlinearity!r}"
        )
    depth = check.positive_int(depth, "depth")
    width = check.positive_int(width, "width")
    batch = check.int_at_least(batch, 2, "batch")
    examples = check.positive_int(examples, "examples")
    if examples > batch:
        raise ValueError(
            f"examples must be at most batch ({batch}), got {examples}"
        )
    scale = check.nonnegative(scale, "scale")
    g, dg = NONLINEARITIES[nonlinearity]
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, width))
    out = np.empty((depth, examples, width))
    for layer in range(depth):
        weight = rng.normal(0.0, scale / np.sqrt(width), size=(width, width))
        z = g(x) @ weight.T
        slopes = dg(x[:examples])  # (examples, width)
        if batch_norm:
            sigma = z.std(axis=0)
            row_scale = 1.0 / sigma
            z = (z - z.mean(axis=0)) / sigma
        else:
            row_scale = np.ones(width)
        for i in range(examples):
            jac = row_scale[:, None] * weight * slopes[i][None, :]
            out[layer, i] = np.linalg.svd(jac, compute_uv=False)
        x = z
    return out
