"""Input checks shared by every public function and layer of bnnotes, NumPy and torch alike.

Every check either returns its argument (as an ndarray, a tensor or a plain Python number)
or raises a TypeError or ValueError whose message names the argument and the problem,
with one wording per problem:

- a dtype that is not floating: ``TypeError: NAME must have a floating dtype, got DTYPE``;
- nan or inf: ``ValueError: NAME contains non-finite values (nan or inf)``;
- too few axes: ``ValueError: expected an input with at least 2 dimensions (N, C,
  *spatial), got shape S``;
- a wrong channel count: ``ValueError: expected C channels on axis 1, got K (input shape S)``;
- ``eps``: ``ValueError: eps must be a finite number > 0, got V`` (``>= 0`` where zero is
  allowed); a bool is not a number here;
- ``momentum``: ``ValueError: momentum must be a number in [0, 1] (or None), got V``; a
  bool is refused;
- ``num_groups``: ``ValueError: num_groups (G) must divide the number of channels (C)``;
- a cache from another function: ``TypeError: cache must be the CLS returned by
  FUNCTION, got TYPE``.

Zero-size inputs follow PyTorch where every statistic is still taken over at least one
value: an empty batch (N = 0) of a per-example normalization (layer, group, instance norm)
gives an empty output with empty statistics, and a fixed affine map (batch norm in
evaluation mode) maps an empty input to an empty output. Where a statistic would be taken
over no value at all (batch statistics of an empty batch, an empty spatial extent or
group), the call raises the ValueError that asks for more than one value; PyTorch returns
an empty output there, but the functions here return the statistics, and there are none.

None of the checks modifies its argument, so a call that fails a check changes no state.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from bnnotes import _kernels as kernels

# --------------------------------------------------------------------------- numbers


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


def momentum_value(momentum, *, allow_none: bool = True) -> float | None:
    """``momentum`` as a float after checking that it is a number in [0, 1] (or None)."""
    if momentum is None and allow_none:
        return None
    if (
        isinstance(momentum, bool)
        or not isinstance(momentum, Real)
        or not 0.0 <= momentum <= 1.0  # also False for nan
    ):
        alternative = " (or None)" if allow_none else ""
        raise ValueError(
            f"momentum must be a number in [0, 1]{alternative}, got {momentum!r}"
        )
    return float(momentum)


def finite_real(value, name: str) -> float:
    """``value`` as a float after checking that it is a finite real number (bool refused)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not np.isfinite(value)
    ):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def positive_int(n, name: str) -> int:
    """``n`` as an int after checking that it is an integer >= 1 (bool is refused)."""
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def int_at_least(n, minimum: int, name: str) -> int:
    """``n`` as an int after checking that it is an integer >= ``minimum`` (bool is refused)."""
    if isinstance(n, bool) or not isinstance(n, Integral) or n < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {n!r}")
    return int(n)


def num_groups(groups, num_channels: int) -> int:
    """``groups`` as an int after checking that it is a positive divisor of ``num_channels``."""
    groups = positive_int(groups, "num_groups")
    if num_channels % groups:
        raise ValueError(
            f"num_groups ({groups}) must divide the number of channels ({num_channels})"
        )
    return groups


def floating_dtype(dtype, name: str = "dtype") -> np.dtype:
    """``dtype`` as a NumPy dtype after checking that it is a real floating type."""
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"{name} must be a floating dtype, got {dtype}")
    return dtype


# --------------------------------------------------------------------------- arrays


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


def finite_channel_sum(x: np.ndarray, name: str) -> np.ndarray:
    """The per-channel sum of a floating ``(N, C, *spatial)`` ``x``, checking that it is finite.

    The sum is needed anyway (for the mean, or for dbeta), and a nan or inf in ``x`` makes
    it nan or inf, so only a non-finite sum calls for the full scan, which then raises.
    Finite values whose sum overflowed are summed again, in float64, and that float64 sum
    is returned.
    """
    total = kernels.channel_sum(x)
    if np.isfinite(total).all():
        return total
    finite_floating(x, name)
    return x.sum(axis=kernels.reduce_axes(x.ndim), dtype=np.float64)


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


def channel_vector(v, num_channels: int, name: str) -> np.ndarray | None:
    """None, or ``v`` checked to be a finite floating vector of shape ``(num_channels,)``."""
    return optional_vector(v, (num_channels,), name)


def channels_shape(shape: tuple[int, ...], num_features: int | None) -> None:
    """Check that ``shape`` is ``(N, C, *spatial)``, with ``C == num_features`` when given."""
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(
            f"expected an input with at least 2 dimensions (N, C, *spatial), got shape {shape}"
        )
    if num_features is not None and shape[1] != num_features:
        raise ValueError(
            f"expected {num_features} channels on axis 1, got {shape[1]} (input shape {shape})"
        )


def channels_input(
    x, num_features: int | None = None, *, finite: bool = True
) -> np.ndarray:
    """An input of shape ``(N, C, *spatial)`` as an ndarray; ``finite=False``: no finiteness scan.

    The caller that leaves it out checks finiteness another way
    ([`finite_channel_sum`][bnnotes._validation.finite_channel_sum]).
    """
    x = np.asarray(x)
    channels_shape(x.shape, num_features)
    return finite_floating(x, "input") if finite else floating(x, "input")


_AXIS_NAMES = {0: "N, the examples", 1: "C, the channels"}


def nonempty_axes(shape: tuple[int, ...], axes: tuple[int, ...]) -> None:
    """Check that no axis in ``axes`` (those a statistic is taken over) is empty."""
    for axis in axes:
        if shape[axis] == 0:
            name = _AXIS_NAMES.get(axis, "a spatial axis")
            raise ValueError(
                f"input has size 0 along axis {axis} ({name}), shape {tuple(shape)}: "
                "every axis the statistics are taken over needs at least one value"
            )


def more_than_one_value(count: int, per: str, shape, why: str = "") -> None:
    """Check that a statistic is taken over more than one value: ``count`` values per ``per``."""
    if count < 2:
        raise ValueError(
            f"expected more than 1 value per {per}{why}, got input shape {tuple(shape)}"
        )


def output_shape(dy, shape: tuple[int, ...], name: str = "dy") -> None:
    """Check that an upstream gradient has the forward output's shape."""
    if np.shape(dy) != tuple(shape):
        raise ValueError(
            f"{name} must have the forward output's shape {tuple(shape)}, got {np.shape(dy)}"
        )


def same_shape(dy, shape: tuple[int, ...], name: str = "dy") -> np.ndarray:
    """An upstream gradient checked for the output's shape, a floating dtype, finite values."""
    dy = np.asarray(dy)
    output_shape(dy, shape, name)
    return finite_floating(dy, name)


def cache_of(cache, cls: type, function: str, name: str = "cache"):
    """``cache`` after checking that it is a ``cls``, the cache that ``function`` returns."""
    if not isinstance(cache, cls):
        raise TypeError(
            f"{name} must be the {cls.__name__} returned by {function}, got {type(cache).__name__}"
        )
    return cache


# --------------------------------------------------------------------------- torch tensors


def tensor(x, name: str = "input"):
    """``x`` after checking that it is a floating ``torch.Tensor``."""
    import torch

    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor, got {type(x).__name__}"
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}")
    return x


def finite_tensor(x, name: str = "input"):
    """``x`` after checking that it is a floating ``torch.Tensor`` without nan or inf."""
    import torch

    tensor(x, name)
    if not bool(torch.isfinite(x.detach()).all()):
        raise ValueError(f"{name} contains non-finite values (nan or inf)")
    return x


def channels_tensor(
    x, num_features: int | None = None, *, ndims: tuple[int, ...] | None = None
):
    """A floating, finite tensor of shape ``(N, C, *spatial)`` (with ``ndims`` allowed ranks)."""
    tensor(x)
    shape = tuple(x.shape)
    if ndims is not None and len(shape) not in ndims:
        c = "C" if num_features is None else str(num_features)
        forms = " or ".join(
            "(" + ", ".join(["N", c, *_SPATIAL_NAMES[d]]) + ")" for d in ndims
        )
        raise ValueError(
            f"expected an input of shape {forms}, got shape {shape}"
        )
    channels_shape(shape, num_features)
    return finite_tensor(x)


_SPATIAL_NAMES = {2: (), 3: ("L",), 4: ("H", "W"), 5: ("D", "H", "W")}
