r"""PyTorch layers that ``torch.nn`` does not have: weight standardization and mean-only batch normalization.

Layer, group and instance normalization and weight normalization are in PyTorch already
(``torch.nn.LayerNorm``, ``GroupNorm``, ``InstanceNorm2d``,
``torch.nn.utils.parametrizations.weight_norm``); the NumPy modules of bnnotes are tested
against them. What is here follows the NumPy reference implementations
[`bnnotes.weight_standardization`][bnnotes.weight_standardization] and
[`bnnotes.weightnorm`][bnnotes.weightnorm], and the tests check that they agree.
"""

from __future__ import annotations

import torch
from torch import nn

from bnnotes import _validation as check
from bnnotes.weight_standardization import DEFAULT_CORRECTION, DEFAULT_WS_EPS

__all__ = [
    "MeanOnlyBatchNorm",
    "WSConv2d",
    "WeightStandardization",
    "weight_norm_data_init_",
]


def _standardize(weight: torch.Tensor, eps: float, correction: int) -> torch.Tensor:
    flat = weight.reshape(weight.shape[0], -1)
    mean = flat.mean(dim=1, keepdim=True)
    centered = flat - mean
    std = (centered.square().sum(dim=1, keepdim=True) / (flat.shape[1] - correction)).sqrt()
    return (centered / (std + eps)).reshape(weight.shape)


def _check_ws_args(eps, correction) -> tuple[float, int]:
    eps = check.eps_value(eps, allow_zero=True)
    if isinstance(correction, bool) or not isinstance(correction, int) or correction < 0:
        raise ValueError(f"correction must be an integer >= 0, got {correction!r}")
    return eps, correction


class WeightStandardization(nn.Module):
    r"""Weight standardization as a parametrization: $W \mapsto (W - \mu)/(\sigma + \epsilon)$ per output channel.

    Register it on any layer whose weight has the output channels on axis 0, with
    ``torch.nn.utils.parametrize.register_parametrization(layer, "weight", WeightStandardization())``.

    Parameters
    ----------
    eps : float, optional
        $\epsilon \ge 0$ added to the standard deviation, default ``1e-5``.
    correction : int, optional
        $k$ in the divisor $I - k$ of the variance; default 0, the paper's formula. The
        authors' PyTorch snippet uses ``torch.std``, that is ``correction=1``.

    Raises
    ------
    ValueError
        On ``eps < 0`` or a negative ``correction``.

    Examples
    --------
    >>> import torch
    >>> from torch.nn.utils import parametrize
    >>> from bnnotes.torch_layers import WeightStandardization
    >>> layer = torch.nn.Linear(6, 3, dtype=torch.float64)
    >>> _ = parametrize.register_parametrization(layer, "weight", WeightStandardization())
    >>> torch.allclose(layer.weight.mean(dim=1), torch.zeros(3, dtype=torch.float64), atol=1e-12)
    True
    """

    def __init__(self, eps: float = DEFAULT_WS_EPS, correction: int = DEFAULT_CORRECTION) -> None:
        super().__init__()
        self.eps, self.correction = _check_ws_args(eps, correction)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return _standardize(weight, self.eps, self.correction)

    def extra_repr(self) -> str:
        return f"eps={self.eps}, correction={self.correction}"


class WSConv2d(nn.Conv2d):
    r"""A ``torch.nn.Conv2d`` that convolves with its standardized weight.

    Takes the arguments of ``torch.nn.Conv2d`` plus ``ws_eps`` ($\epsilon$, default ``1e-5``)
    and ``correction`` (default 0). The trained parameter is the raw weight $W$; the
    standardized $\hat W$ is recomputed at every call, so gradients flow through the
    standardization, as in the authors' code.

    Examples
    --------
    >>> import torch
    >>> from bnnotes.torch_layers import WSConv2d
    >>> conv = WSConv2d(3, 8, 3, padding=1, bias=False, dtype=torch.float64)
    >>> conv(torch.randn(2, 3, 5, 5, dtype=torch.float64)).shape
    torch.Size([2, 8, 5, 5])
    """

    def __init__(self, *args, ws_eps: float = DEFAULT_WS_EPS, correction: int = DEFAULT_CORRECTION, **kwargs) -> None:
        ws_eps, correction = _check_ws_args(ws_eps, correction)
        super().__init__(*args, **kwargs)
        self.ws_eps, self.correction = ws_eps, correction

    def standardized_weight(self) -> torch.Tensor:
        """The weight actually used, $\\hat W$."""
        return _standardize(self.weight, self.ws_eps, self.correction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.standardized_weight(), self.bias)


class MeanOnlyBatchNorm(nn.Module):
    r"""Mean-only batch normalization: $y = x - \mu[x] + \beta$ per channel (Salimans & Kingma, 2016).

    Parameters
    ----------
    num_features : int
        Number of channels (axis 1 of the input).
    momentum : float, optional
        Weight of the new batch mean in the running mean, in ``[0, 1]``; default 0.1, as
        in the authors' code ($0.9\,\hat\mu + 0.1\,\mu$).
    bias : bool, optional
        Whether there is a learnable shift $\beta$ (initialized to 0). Default True.

    Notes
    -----
    In training mode the layer subtracts the batch mean (over every axis but 1) and updates
    ``running_mean``; in evaluation mode it subtracts ``running_mean``. It never divides by a
    standard deviation. A rejected input leaves ``running_mean`` unchanged.

    Examples
    --------
    >>> import torch
    >>> from bnnotes.torch_layers import MeanOnlyBatchNorm
    >>> layer = MeanOnlyBatchNorm(3)
    >>> y = layer(torch.randn(16, 3, 4, 4) + 5.0)
    >>> bool(y.mean(dim=(0, 2, 3)).abs().max() < 1e-5)
    True
    """

    def __init__(self, num_features: int, momentum: float = 0.1, bias: bool = True) -> None:
        super().__init__()
        self.num_features = check.positive_int(num_features, "num_features")
        momentum = check.nonnegative(momentum, "momentum", allow_zero=True)
        if momentum > 1:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        self.momentum = momentum
        self.bias = nn.Parameter(torch.zeros(num_features)) if bias else None
        self.register_buffer("running_mean", torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"expected an input (N, {self.num_features}, *spatial), got shape {tuple(x.shape)}")
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if self.training:
            if x.numel() // x.shape[1] < 2:
                raise ValueError(f"expected more than 1 value per channel in training, got shape {tuple(x.shape)}")
            axes = (0,) + tuple(range(2, x.ndim))
            mean = x.mean(dim=axes)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(mean.detach().to(self.running_mean.dtype), alpha=self.momentum)
        else:
            mean = self.running_mean.to(x.dtype)
        y = x - mean.reshape(shape)
        if self.bias is not None:
            y = y + self.bias.to(x.dtype).reshape(shape)
        return y

    def extra_repr(self) -> str:
        return f"{self.num_features}, momentum={self.momentum}, bias={self.bias is not None}"


@torch.no_grad()
def weight_norm_data_init_(layer: nn.Module, x: torch.Tensor) -> nn.Module:
    r"""Data-dependent initialization of a weight-normalized ``Linear`` or ``Conv`` layer, in place.

    Parameters
    ----------
    layer : torch.nn.Module
        A layer with a bias, parametrized by ``torch.nn.utils.parametrizations.weight_norm``
        with ``dim=0`` (one gain per output unit).
    x : torch.Tensor
        An initialization batch for the layer.

    Returns
    -------
    torch.nn.Module
        The same layer, with $g \leftarrow g/\sigma[t]$ and $b \leftarrow -\mu[t]/\sigma[t]$,
        where $t$ is the layer's output without its bias on ``x``; see
        [`data_dependent_init`][bnnotes.weightnorm.data_dependent_init].

    Raises
    ------
    ValueError
        If the layer is not weight-normalized with one gain per output unit, has no bias,
        the batch has fewer than 2 values per unit, or a unit's output is constant. The
        layer is unchanged then.

    Examples
    --------
    >>> import torch
    >>> from torch.nn.utils.parametrizations import weight_norm
    >>> from bnnotes.torch_layers import weight_norm_data_init_
    >>> layer = weight_norm(torch.nn.Linear(5, 4, dtype=torch.float64))
    >>> x = 3.0 * torch.randn(64, 5, dtype=torch.float64) + 2.0
    >>> out = weight_norm_data_init_(layer, x)(x)
    >>> bool(out.mean(0).abs().max() < 1e-12), bool((out.std(0, correction=0) - 1).abs().max() < 1e-12)
    (True, True)
    """
    parametrizations = getattr(layer, "parametrizations", None)
    if parametrizations is None or "weight" not in parametrizations:
        raise ValueError("layer must be parametrized with torch.nn.utils.parametrizations.weight_norm")
    weight = parametrizations.weight
    g = weight.original0
    out = g.shape[0] if g.ndim else 0
    if g.ndim == 0 or g.numel() != out:
        raise ValueError("data-dependent initialization needs weight_norm with dim=0 (one gain per output unit)")
    bias = getattr(layer, "bias", None)
    if bias is None:
        raise ValueError("data-dependent initialization needs a layer with a bias")
    t = layer(x) - bias.reshape((1, -1) + (1,) * (x.ndim - 2))
    axes = (0,) + tuple(range(2, t.ndim))
    if t.numel() // t.shape[1] < 2:
        raise ValueError(f"expected more than 1 value per unit, got an output of shape {tuple(t.shape)}")
    mean = t.mean(dim=axes)
    std = t.std(dim=axes, correction=0)
    if bool((std == 0).any()):
        raise ValueError("a unit's output is constant over the batch: its scale cannot be set")
    g.copy_(g / std.reshape(g.shape))
    bias.copy_(-mean / std)
    return layer
