"""What the NumPy normalization layers share (private): modes, state and the fixed affine map.

[`BatchNorm`][bnnotes.batchnorm.BatchNorm], [`LayerNorm`][bnnotes.layernorm.LayerNorm],
[`GroupNorm`][bnnotes.groupnorm.GroupNorm] and
[`InstanceNorm`][bnnotes.groupnorm.InstanceNorm] follow PyTorch's conventions alike:
``train()`` / ``eval()`` return the layer, the parameters are ``weight`` and ``bias``,
``state_dict()`` uses torch's keys, and a call that raises leaves every attribute as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bnnotes import _kernels as kernels
from bnnotes import _validation as check

STATE_KEYS = (
    "weight",
    "bias",
    "running_mean",
    "running_var",
    "num_batches_tracked",
)
"""The keys of a state dict, in torch's order; a layer has those whose attribute is not None."""


class NormLayer:
    """Modes, state dict and backward bookkeeping of a NumPy normalization layer.

    A subclass sets ``weight``, ``bias`` (arrays or None), ``dtype``, and, if it tracks
    running statistics, ``running_mean``, ``running_var`` and ``num_batches_tracked``;
    it defines ``forward`` and ``backward``.
    """

    training: bool = True
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    running_mean: np.ndarray | None = None
    running_var: np.ndarray | None = None
    num_batches_tracked: int | None = None
    weight_grad: np.ndarray | None = None
    bias_grad: np.ndarray | None = None
    _cache = None

    # -- mode ---------------------------------------------------------------------
    def train(self, mode: bool = True):
        """Set training mode (``mode=True``) or evaluation mode; return the layer."""
        self.training = bool(mode)
        return self

    def eval(self):
        """Set evaluation mode; return the layer."""
        return self.train(False)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    # -- backward -------------------------------------------------------------------
    def _last_cache(self):
        if self._cache is None:
            raise RuntimeError("backward called before forward")
        return self._cache

    def _set_grads(self, dgamma: np.ndarray, dbeta: np.ndarray) -> None:
        if self.weight is not None:
            self.weight_grad = dgamma
        if self.bias is not None:
            self.bias_grad = dbeta

    # -- state ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray | int]:
        """Parameters and running statistics under PyTorch's key names (copies)."""
        state: dict[str, np.ndarray | int] = {}
        for key in STATE_KEYS:
            value = getattr(self, key)
            if value is not None:
                state[key] = (
                    int(value)
                    if key == "num_batches_tracked"
                    else value.copy()
                )
        return state

    def load_state_dict(self, state: dict) -> None:
        """Load a state saved by ``state_dict`` (or a torch layer's, as NumPy values).

        Raises
        ------
        KeyError
            If a key is missing or unexpected; nothing is loaded then.
        ValueError
            If a value has the wrong shape, is not finite, a running variance is negative
            or ``num_batches_tracked`` is negative; nothing is loaded then.
        """
        current = self.state_dict()
        missing, unexpected = (
            set(current) - set(state),
            set(state) - set(current),
        )
        if missing or unexpected:
            raise KeyError(
                f"state_dict mismatch: missing {sorted(missing)}, unexpected {sorted(unexpected)}"
            )
        new = {}
        for key, value in current.items():
            if key == "num_batches_tracked":
                n = int(np.asarray(state[key]))
                if n < 0:
                    raise ValueError(
                        f"num_batches_tracked must be >= 0, got {n}"
                    )
                new[key] = n
            else:
                array = check.optional_vector(
                    np.asarray(state[key]), value.shape, key
                )
                new[key] = array.astype(self.dtype, copy=True)
        if "running_var" in new and (new["running_var"] < 0).any():
            raise ValueError("running_var must be >= 0 in every channel")
        for key, value in new.items():
            setattr(self, key, value)


@dataclass(frozen=True)
class FixedAffineCache:
    """What an evaluation-mode forward pass with running statistics keeps for its backward pass."""

    x: np.ndarray
    mean: np.ndarray
    inv_std: np.ndarray
    gamma: np.ndarray | None


def fixed_affine_cache(layer: NormLayer, x: np.ndarray) -> FixedAffineCache:
    """The cache of ``layer``'s evaluation-mode map on ``x``, with copies of its statistics."""
    return FixedAffineCache(
        x=x,
        mean=layer.running_mean.copy(),
        inv_std=1.0 / np.sqrt(layer.running_var + layer.eps),
        gamma=None if layer.weight is None else layer.weight.copy(),
    )


def fixed_affine_backward(
    dy: np.ndarray, cache: FixedAffineCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gradients of $y = \gamma (x - \mu) s^{-1} + \beta$ with fixed per-channel $\mu$ and $s$.

    The map of a batch or instance norm layer in evaluation mode: each output depends on its
    own input only, so $\partial\ell/\partial x = \gamma s^{-1}\,\partial\ell/\partial y$.
    """
    dy = check.same_shape(dy, cache.x.shape)
    bshape = kernels.channel_shape(dy.ndim)
    axes = kernels.reduce_axes(dy.ndim)
    inv_std = cache.inv_std
    x_hat = (cache.x - cache.mean.reshape(bshape)) * inv_std.reshape(bshape)
    dgamma = (dy * x_hat).sum(axis=axes)
    dbeta = dy.sum(axis=axes)
    scale = inv_std if cache.gamma is None else cache.gamma * inv_std
    dx = dy * scale.astype(dy.dtype, copy=False).reshape(bshape)
    return dx, dgamma, dbeta
