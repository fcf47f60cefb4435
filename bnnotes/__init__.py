"""bnnotes: normalization in deep learning, with every derivation backed by tested code.

The package is organised one module per concept. `bnnotes.batchnorm` holds a
from-scratch NumPy implementation of batch normalization (Ioffe & Szegedy, 2015) with
PyTorch's semantics for running statistics and evaluation mode.
"""

from bnnotes.batchnorm import (
    DEFAULT_EPS,
    BatchNorm,
    BatchNormCache,
    batch_norm_backward,
    batch_norm_forward,
    batch_norm_inference,
    fold_batch_norm,
    population_statistics,
)

__all__ = [
    "DEFAULT_EPS",
    "BatchNorm",
    "BatchNormCache",
    "batch_norm_backward",
    "batch_norm_forward",
    "batch_norm_inference",
    "fold_batch_norm",
    "population_statistics",
]

__version__ = "0.1.0"
