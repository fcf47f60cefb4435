"""Shared helpers for the tests: PyTorch references in float64 and a relative-error measure."""

from __future__ import annotations

import numpy as np
import torch

#: Relative tolerance for float64 agreement with PyTorch.
RTOL64 = 1e-10


def rel_err(a, b) -> float:
    """max |a - b| / max(max |b|, 1e-300): one number for a whole array."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


def t(x) -> torch.Tensor:
    """NumPy -> float64 torch tensor (None passes through)."""
    return (
        None
        if x is None
        else torch.from_numpy(np.asarray(x, dtype=np.float64).copy())
    )


def torch_module_for(ndim: int):
    """The torch BatchNorm class for an input with ``ndim`` dimensions."""
    return {
        2: torch.nn.BatchNorm1d,
        3: torch.nn.BatchNorm1d,
        4: torch.nn.BatchNorm2d,
        5: torch.nn.BatchNorm3d,
    }[ndim]
