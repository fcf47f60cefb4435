"""bnnotes: normalization in deep learning, with every derivation backed by tested code.

The package is organised one module per concept. `bnnotes.batchnorm` holds a
from-scratch NumPy implementation of batch normalization (Ioffe & Szegedy, 2015) with
PyTorch's semantics for running statistics and evaluation mode; `bnnotes.layernorm` and
`bnnotes.groupnorm` hold layer, group and instance normalization with layers of the same
conventions.
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
from bnnotes.groupnorm import GroupNorm, InstanceNorm
from bnnotes.layernorm import LayerNorm

__all__ = [
    "DEFAULT_EPS",
    "BatchNorm",
    "BatchNormCache",
    "GroupNorm",
    "InstanceNorm",
    "LayerNorm",
    "batch_norm_backward",
    "batch_norm_forward",
    "batch_norm_inference",
    "fold_batch_norm",
    "population_statistics",
]

__version__ = "0.1.0"
