"""Input checks shared by the normalization modules other than bnnotes.batchnorm.

Every check either returns its argument as an ndarray (or a plain Python number) or raises
a TypeError or ValueError whose message names the argument and the problem. None of them
modifies its argument.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np


def floating(x, name: str) -> np.ndarray:
    """``x`` as an ndarray, after checking that its dtype is a real floating type."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}")
    return x


def finite_floating(x, name: str) -> np.ndarray:
    """``x`` as an ndarray, after checking that it is floating and has no nan or inf."""
    x = floating(x, name)
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains non-finite values (nan or inf)")
    return x


def optional_vector(v, shape: tuple[int, ...], name: str) -> np.ndarray | None:
    """None, or ``v`` checked to be finite, floating and of exactly ``shape``."""
    if v is None:
        return None
    v = finite_floating(v, name)
    if v.shape != tuple(shape):
        raise ValueError(
            f"{name} must have shape {tuple(shape)}, got {v.shape}"
        )
    return v


def nonnegative(value, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a float after checking that it is a finite number > 0 (>= 0 with allow_zero)."""
    bound = ">= 0" if allow_zero else "> 0"
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not np.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        raise ValueError(
            f"{name} must be a finite number {bound}, got {value!r}"
        )
    return float(value)


def eps_value(eps, *, allow_zero: bool = False) -> float:
    """``eps`` as a float after checking that it is a finite number > 0 (>= 0 with allow_zero)."""
    return nonnegative(eps, "eps", allow_zero=allow_zero)


def positive_int(n, name: str) -> int:
    """``n`` as an int after checking that it is an integer >= 1 (bool is refused)."""
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def same_shape(dy, shape: tuple[int, ...], name: str = "dy") -> np.ndarray:
    """An upstream gradient checked to have the forward output's shape, a floating dtype and finite values."""
    dy = np.asarray(dy)
    if dy.shape != tuple(shape):
        raise ValueError(
            f"{name} must have the forward output's shape {tuple(shape)}, got {dy.shape}"
        )
    return finite_floating(dy, name)
