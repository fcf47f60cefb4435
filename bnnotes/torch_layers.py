r"""PyTorch layers that ``torch.nn`` does not have.

Weight standardization, mean-only batch normalization, and the two layers of Santurkar et
al. (2018): noisy batch normalization (§2.1) and ℓp normalization of activations (§3.3).

Layer, group and instance normalization and weight normalization are in PyTorch already
(``torch.nn.LayerNorm``, ``GroupNorm``, ``InstanceNorm2d``,
``torch.nn.utils.parametrizations.weight_norm``); the NumPy modules of bnnotes are tested
against them. What is here follows the NumPy reference implementations
[`bnnotes.weight_standardization`][bnnotes-weight-standardization] and
[`bnnotes.weightnorm`][bnnotes-weightnorm], and the tests check that they agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import torch
from torch import nn

from bnnotes import _validation as check
from bnnotes.weight_standardization import DEFAULT_CORRECTION, DEFAULT_WS_EPS

__all__ = [
    "LpNorm",
    "MeanOnlyBatchNorm",
    "NoiseDraw",
    "NoisyBatchNorm",
    "SanturkarNoise",
    "WSConv2d",
    "WeightStandardization",
    "weight_norm_data_init_",
]


def _standardize(
    weight: torch.Tensor, eps: float, correction: int
) -> torch.Tensor:
    r"""$(W - \mu)/(\sigma + \epsilon)$ per output channel, differentiable at a constant channel.

    $\sigma$ is a norm of the centered row, which has no derivative at 0; but
    $c \mapsto c / (a\lVert c\rVert + \epsilon)$ does, for $\epsilon > 0$: it is
    $c/\epsilon + O(\lVert c\rVert^2)$, so its Jacobian at 0 is $I/\epsilon$ and the term
    through $\sigma$ vanishes. Autograd's $\partial\sqrt v/\partial v$ is infinite at 0
    (and $\infty \cdot 0$ is nan), so at a zero variance the square root is taken of a
    stand-in 1 and its gradient discarded: the standardized row's gradient is then the
    centered upstream gradient over $\epsilon$, the true derivative.
    """
    flat = weight.reshape(weight.shape[0], -1)
    mean = flat.mean(dim=1, keepdim=True)
    centered = flat - mean
    var = centered.square().sum(dim=1, keepdim=True) / (
        flat.shape[1] - correction
    )
    positive = var > 0
    std = torch.where(positive, torch.where(positive, var, 1.0).sqrt(), 0.0)
    return (centered / (std + eps)).reshape(weight.shape)


def _check_weight(weight, eps: float, correction: int) -> None:
    """The weight a standardization is applied to: floating, finite, (out, in, *kernel)."""
    check.finite_tensor(weight, "weight")
    if weight.ndim < 2:
        raise ValueError(
            f"weight must have shape (out, in) or (out, in, *kernel), got {tuple(weight.shape)}"
        )
    fan_in = weight[0].numel()
    if fan_in - correction < 1:
        raise ValueError(
            f"correction ({correction}) must be smaller than the number of weights per "
            f"output channel ({fan_in})"
        )
    if eps == 0:
        flat = weight.detach().reshape(weight.shape[0], -1)
        if bool((flat == flat[:, :1]).all(dim=1).any()):
            raise ValueError(
                "with eps=0 no output channel may have constant weights (its sigma is 0)"
            )


def _check_ws_args(eps, correction) -> tuple[float, int]:
    eps = check.eps_value(eps, allow_zero=True)
    if (
        isinstance(correction, bool)
        or not isinstance(correction, int)
        or correction < 0
    ):
        raise ValueError(
            f"correction must be an integer >= 0, got {correction!r}"
        )
    return eps, correction


class WeightStandardization(nn.Module):
    r"""Weight standardization as a parametrization:
    $W \mapsto (W - \mu)/(\sigma + \epsilon)$ per output channel.

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
    >>> _ = parametrize.register_parametrization(
    ...     layer, "weight", WeightStandardization()
    ... )
    >>> torch.allclose(
    ...     layer.weight.mean(dim=1),
    ...     torch.zeros(3, dtype=torch.float64),
    ...     atol=1e-12,
    ... )
    True
    """  # noqa: E501 (an inline code span cannot be wrapped: inline code keeps line breaks)

    def __init__(
        self, eps: float = DEFAULT_WS_EPS, correction: int = DEFAULT_CORRECTION
    ) -> None:
        super().__init__()
        self.eps, self.correction = _check_ws_args(eps, correction)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        r"""The standardized weight $\hat W$ of ``weight``.

        Raises
        ------
        TypeError, ValueError
            If ``weight`` is not a finite floating tensor of shape ``(out, in, *kernel)``,
            ``correction`` is not smaller than the weights per output channel, or
            ``eps == 0`` and an output channel's weights are all equal.
        """
        _check_weight(weight, self.eps, self.correction)
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

    def __init__(
        self,
        *args,
        ws_eps: float = DEFAULT_WS_EPS,
        correction: int = DEFAULT_CORRECTION,
        **kwargs,
    ) -> None:
        ws_eps, correction = _check_ws_args(ws_eps, correction)
        super().__init__(*args, **kwargs)
        self.ws_eps, self.correction = ws_eps, correction

    def standardized_weight(self) -> torch.Tensor:
        """The weight actually used, $\\hat W$."""
        _check_weight(self.weight, self.ws_eps, self.correction)
        return _standardize(self.weight, self.ws_eps, self.correction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve ``x`` of shape ``(N, C_in, H, W)`` or ``(C_in, H, W)`` with $\\hat W$.

        Raises
        ------
        TypeError, ValueError
            If ``x`` is not a finite floating tensor with ``in_channels`` channels, or the
            weight fails the checks of
            [`WeightStandardization`][bnnotes.torch_layers.WeightStandardization].
        """
        check.finite_tensor(x)
        channel_axis = x.ndim - 3
        if x.ndim not in (3, 4) or x.shape[channel_axis] != self.in_channels:
            raise ValueError(
                f"expected an input of shape (N, {self.in_channels}, H, W) or "
                f"({self.in_channels}, H, W), got shape {tuple(x.shape)}"
            )
        return self._conv_forward(x, self.standardized_weight(), self.bias)


class MeanOnlyBatchNorm(nn.Module):
    r"""Mean-only batch normalization: $y = x - \mu[x] + \beta$ per channel
    (Salimans & Kingma, 2016).

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

    def __init__(
        self, num_features: int, momentum: float = 0.1, bias: bool = True
    ) -> None:
        super().__init__()
        self.num_features = check.positive_int(num_features, "num_features")
        momentum = check.momentum_value(momentum, allow_none=False)
        self.momentum = momentum
        self.bias = nn.Parameter(torch.zeros(num_features)) if bias else None
        self.register_buffer("running_mean", torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Subtract the batch mean (training) or the running mean (evaluation) per channel.

        Raises
        ------
        TypeError
            If ``x`` is not a floating tensor.
        ValueError
            If ``x`` is not ``(N, C, *spatial)`` with ``C = num_features``, has non-finite
            values, or (in training) one value per channel. ``running_mean`` is unchanged.
        """
        check.channels_tensor(x, self.num_features)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if self.training:
            _more_than_one_value_per_channel(x)
            axes = (0, *range(2, x.ndim))
            mean = x.mean(dim=axes)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(
                    mean.detach().to(self.running_mean.dtype),
                    alpha=self.momentum,
                )
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
    TypeError
        If ``x`` is not a floating tensor.
    ValueError
        If the layer is not weight-normalized with one gain per output unit, has no bias,
        ``x`` has non-finite values or not the layer's input features on axis 1, the batch
        has fewer than 2 values per unit, or a unit's output is constant or not finite.
        The layer is unchanged then.

    Examples
    --------
    >>> import torch
    >>> from torch.nn.utils.parametrizations import weight_norm
    >>> from bnnotes.torch_layers import weight_norm_data_init_
    >>> layer = weight_norm(torch.nn.Linear(5, 4, dtype=torch.float64))
    >>> x = 3.0 * torch.randn(64, 5, dtype=torch.float64) + 2.0
    >>> out = weight_norm_data_init_(layer, x)(x)
    >>> (
    ...     bool(out.mean(0).abs().max() < 1e-12),
    ...     bool((out.std(0, correction=0) - 1).abs().max() < 1e-12),
    ... )
    (True, True)
    """
    parametrizations = getattr(layer, "parametrizations", None)
    if parametrizations is None or "weight" not in parametrizations:
        raise ValueError(
            "layer must be parametrized with torch.nn.utils.parametrizations.weight_norm"
        )
    weight = parametrizations.weight
    g = weight.original0
    out = g.shape[0] if g.ndim else 0
    if g.ndim == 0 or g.numel() != out:
        raise ValueError(
            "data-dependent initialization needs weight_norm with dim=0 (one gain per output unit)"
        )
    bias = getattr(layer, "bias", None)
    if bias is None:
        raise ValueError(
            "data-dependent initialization needs a layer with a bias"
        )
    inputs = getattr(layer, "in_features", None) or getattr(
        layer, "in_channels", None
    )
    check.channels_tensor(x, inputs)
    t = layer(x) - bias.reshape((1, -1) + (1,) * (x.ndim - 2))
    check.finite_tensor(t, "the layer's output on x")
    axes = (0, *range(2, t.ndim))
    check.more_than_one_value(t.numel() // t.shape[1], "unit", t.shape)
    mean = t.mean(dim=axes)
    std = t.std(dim=axes, correction=0)
    if bool((std == 0).any()):
        raise ValueError(
            "a unit's output is constant over the batch: its scale cannot be set"
        )
    check.finite_tensor(g / std.reshape(g.shape), "the new gain g / std")
    g.copy_(g / std.reshape(g.shape))
    bias.copy_(-mean / std)
    return layer


# --------------------------------------------------------------------------------------
# Santurkar et al. (2018): noisy BatchNorm (§2.1) and ℓp normalization of activations (§3.3)
# --------------------------------------------------------------------------------------

#: Santurkar et al. (2018, appendix, per one secondary source, not checked against the appendix):
#: per layer and step, mu ~ U(-0.5, 0.5) and sigma ~ U(1, 1.25); per activation,
#: m ~ U(mu - 0.1, mu + 0.1) and s ~ N(sigma, 0.1) (read here as standard deviation 0.1).
NOISE_MEAN_RANGE = (-0.5, 0.5)
NOISE_SCALE_RANGE = (1.0, 1.25)
NOISE_SHIFT_HALFWIDTH = 0.1
NOISE_SCALE_STD = 0.1


@dataclass(frozen=True)
class NoiseDraw:
    r"""One step's noise of a [`SanturkarNoise`][bnnotes.torch_layers.SanturkarNoise] layer.

    Attributes
    ----------
    mu, sigma : float
        The layer's draws for the step, $\mu^t$ and $\sigma^t$.
    shift, scale : torch.Tensor
        The per-activation $m$ and $s$, of the input's shape (detached).

    Examples
    --------
    >>> from bnnotes.torch_layers import SanturkarNoise
    >>> draw = SanturkarNoise(generator=0).draw((2, 3))
    >>> tuple(draw.shift.shape), -0.5 <= draw.mu <= 0.5
    ((2, 3), True)
    """

    mu: float
    sigma: float
    shift: torch.Tensor
    scale: torch.Tensor


def _check_range(value, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a pair of numbers (low, high), got {value!r}"
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ValueError(
            f"{name} must be finite with low <= high, got {value!r}"
        )
    return lo, hi


def _as_generator(generator) -> torch.Generator | None:
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, bool) or not isinstance(generator, int):
        raise TypeError(
            "generator must be a torch.Generator, an int seed or None, got "
            f"{type(generator).__name__}"
        )
    return torch.Generator().manual_seed(generator)


def _more_than_one_value_per_channel(x: torch.Tensor) -> None:
    check.more_than_one_value(
        x.numel() // x.shape[1], "channel", x.shape, " in training"
    )


class SanturkarNoise(nn.Module):
    r"""The noise of Santurkar et al.'s (2018, §2.1) noisy BatchNorm, on its own:
    $a \leftarrow s\,a + m$ in training.

    Parameters
    ----------
    generator : torch.Generator or int or None, optional
        Source of the noise: a generator, an int seed for a new CPU generator, or None for
        PyTorch's global generator.
    mean_range : tuple of float, optional
        Interval of the per-step mean $\mu^t$, default ``(-0.5, 0.5)``.
    scale_range : tuple of float, optional
        Interval of the per-step scale $\sigma^t$, default ``(1.0, 1.25)``.
    shift_halfwidth : float, optional
        $h$ in $m \sim U(\mu^t - h, \mu^t + h)$, default 0.1.
    scale_std : float, optional
        Standard deviation $\rho$ in $s \sim \mathcal N(\sigma^t, \rho^2)$, default 0.1.

    Raises
    ------
    ValueError
        On a range with low > high or non-finite ends, or a negative width or deviation.
    TypeError
        On a generator that is neither a ``torch.Generator``, an int nor None, or a
        non-floating input.

    Notes
    -----
    At every call in training mode the layer draws, for the whole layer,

    $$\mu^t \sim U(\mu_{lo}, \mu_{hi}), \qquad \sigma^t \sim U(\sigma_{lo}, \sigma_{hi}),$$

    then for every element $a_{i,j}$ of the input (every sample $i$, every unit and
    position $j$) independently

    $$m_{i,j} \sim U(\mu^t - h, \mu^t + h), \qquad s_{i,j} \sim \mathcal N(\sigma^t, \rho^2),
    \qquad a_{i,j} \leftarrow s_{i,j}\, a_{i,j} + m_{i,j}.$$

    Each call is one training step, so the distribution changes at every step. The noise
    is a constant for back-propagation: $\partial a'/\partial a = s$. In evaluation mode
    the layer is the identity. The last draw is kept in ``last_noise``
    ([`NoiseDraw`][bnnotes.torch_layers.NoiseDraw]).

    The default parameters come from one secondary source on the paper's appendix
    and are not checked against the appendix itself. The source writes
    $\mathcal N(\sigma^t, 0.1)$; this module reads the 0.1 as the standard deviation.

    References
    ----------
    Santurkar, S., Tsipras, D., Ilyas, A. and Madry, A. (2018). How does batch
    normalization help optimization? NeurIPS, §2.1 and appendix.

    Examples
    --------
    >>> import torch
    >>> from bnnotes.torch_layers import SanturkarNoise
    >>> noise = SanturkarNoise(generator=0)
    >>> a = torch.ones(4, 3)
    >>> out = noise(a)
    >>> d = noise.last_noise
    >>> (
    ...     torch.equal(out, d.scale * a + d.shift),
    ...     -0.5 <= d.mu <= 0.5,
    ...     1.0 <= d.sigma <= 1.25,
    ... )
    (True, True, True)
    >>> torch.equal(noise.eval()(a), a)
    True
    """

    def __init__(
        self,
        generator: torch.Generator | int | None = None,
        mean_range: tuple[float, float] = NOISE_MEAN_RANGE,
        scale_range: tuple[float, float] = NOISE_SCALE_RANGE,
        shift_halfwidth: float = NOISE_SHIFT_HALFWIDTH,
        scale_std: float = NOISE_SCALE_STD,
    ) -> None:
        super().__init__()
        self.mean_range = _check_range(mean_range, "mean_range")
        self.scale_range = _check_range(scale_range, "scale_range")
        self.shift_halfwidth = check.nonnegative(
            shift_halfwidth, "shift_halfwidth", allow_zero=True
        )
        self.scale_std = check.nonnegative(
            scale_std, "scale_std", allow_zero=True
        )
        self.generator = _as_generator(generator)
        self.last_noise: NoiseDraw | None = None

    def draw(
        self, shape: tuple[int, ...], dtype: torch.dtype = torch.float32
    ) -> NoiseDraw:
        r"""Draw one step's noise for an input of ``shape`` (advances the generator).

        Parameters
        ----------
        shape : tuple of int
            Shape of the input the noise is for; ``shift`` and ``scale`` get this shape.
        dtype : torch.dtype, optional
            Floating dtype of the draws, default ``torch.float32``.

        Returns
        -------
        NoiseDraw
            $\mu^t$ and $\sigma^t$ as floats, and the per-element $m$ and $s$ as tensors
            of ``shape`` on the generator's device (the CPU when drawing from the global
            generator).
        """
        g = self.generator
        device = g.device if g is not None else torch.device("cpu")
        kw = {"generator": g, "device": device, "dtype": dtype}
        u = torch.rand(2, **kw)
        mu = self.mean_range[0] + (
            self.mean_range[1] - self.mean_range[0]
        ) * float(u[0])
        sigma = self.scale_range[0] + (
            self.scale_range[1] - self.scale_range[0]
        ) * float(u[1])
        shift = mu + self.shift_halfwidth * (
            2.0 * torch.rand(shape, **kw) - 1.0
        )
        scale = sigma + self.scale_std * torch.randn(shape, **kw)
        return NoiseDraw(mu, sigma, shift, scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check.finite_tensor(x)
        if not self.training:
            return x
        draw = self.draw(tuple(x.shape), x.dtype)
        draw = NoiseDraw(
            draw.mu,
            draw.sigma,
            draw.shift.to(x.device),
            draw.scale.to(x.device),
        )
        self.last_noise = draw
        return draw.scale * x + draw.shift

    def extra_repr(self) -> str:
        return (
            f"mean_range={self.mean_range}, scale_range={self.scale_range}, "
            f"shift_halfwidth={self.shift_halfwidth}, scale_std={self.scale_std}"
        )


class NoisyBatchNorm(nn.modules.batchnorm._BatchNorm):
    r"""BatchNorm followed, in training mode only, by Santurkar et al.'s (2018, §2.1) noise.

    Parameters
    ----------
    num_features : int
        Number of channels $C$ (axis 1 of an ``(N, C)`` or ``(N, C, H, W)`` input).
    eps, momentum, affine, track_running_stats
        As for ``torch.nn.BatchNorm2d``: $\epsilon = 10^{-5}$, momentum 0.1, learnable
        $\gamma, \beta$, running statistics for evaluation; with one difference:
        ``momentum`` must be a number in $[0, 1]$. ``momentum=None``, which
        ``torch.nn.BatchNorm2d`` takes as a cumulative moving average, is refused with a
        ValueError.
    generator : torch.Generator or int or None, optional
        Source of the noise (keyword only): a generator, an int seed, or None for the
        global generator. With a generator or a seed, runs are reproducible.
    mean_range, scale_range, shift_halfwidth, scale_std
        The noise parameters of [`SanturkarNoise`][bnnotes.torch_layers.SanturkarNoise]
        (keyword only).

    Raises
    ------
    ValueError
        On a ``num_features`` that is not a positive integer, ``eps <= 0``, a ``momentum``
        that is None or not in $[0, 1]$, or bad noise parameters; at call time on an input
        whose shape is not ``(N, C)`` or ``(N, C, H, W)`` with $C$ = ``num_features``,
        non-finite input, or (in training) a single value per channel. The running
        statistics are unchanged then.
    TypeError
        On a non-floating input.

    Notes
    -----
    The output is $y = \mathrm{BN}_{\gamma,\beta}(x)$, exactly PyTorch's batch
    normalization, and then in training mode $y_{i,j} \leftarrow s_{i,j}\, y_{i,j} + m_{i,j}$
    with a fresh draw of $\mu^t, \sigma^t, m, s$ at every call (see
    [`SanturkarNoise`][bnnotes.torch_layers.SanturkarNoise]). The noise is injected after
    BN's affine map and before the activation function, where Santurkar et al. put it.
    Its parameters are from one secondary source on the paper's appendix and UNVERIFIED
    against it; $\mathcal N(\sigma^t, 0.1)$ is read as standard
    deviation 0.1. In evaluation mode the layer is plain BN with running statistics.

    References
    ----------
    Santurkar, S., Tsipras, D., Ilyas, A. and Madry, A. (2018). How does batch
    normalization help optimization? NeurIPS, §2.1.

    Examples
    --------
    >>> import torch
    >>> from bnnotes.torch_layers import NoisyBatchNorm
    >>> layer = NoisyBatchNorm(3, generator=0).double()
    >>> x = torch.randn(64, 3, 4, 4, dtype=torch.float64)
    >>> y = layer(x)
    >>> d = layer.noise.last_noise
    >>> bn = torch.nn.functional.batch_norm(x, None, None, training=True)
    >>> bool(torch.allclose(y, d.scale * bn + d.shift, rtol=1e-12, atol=1e-12))
    True
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        generator: torch.Generator | int | None = None,
        mean_range: tuple[float, float] = NOISE_MEAN_RANGE,
        scale_range: tuple[float, float] = NOISE_SCALE_RANGE,
        shift_halfwidth: float = NOISE_SHIFT_HALFWIDTH,
        scale_std: float = NOISE_SCALE_STD,
    ) -> None:
        num_features = check.positive_int(num_features, "num_features")
        eps = check.eps_value(eps)
        momentum = check.momentum_value(momentum, allow_none=False)
        noise = SanturkarNoise(
            generator, mean_range, scale_range, shift_halfwidth, scale_std
        )
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats
        )
        self.noise = noise

    def _check_input_dim(self, x: torch.Tensor) -> None:
        check.channels_tensor(x, self.num_features, ndims=(2, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check.channels_tensor(x, self.num_features, ndims=(2, 4))
        if self.training:
            _more_than_one_value_per_channel(x)
        return self.noise(super().forward(x))


class LpNorm(nn.Module):
    r"""ℓp normalization of activations (Santurkar et al., 2018, §3.3): subtract the batch mean,
    divide by the average ℓp norm.

    Parameters
    ----------
    num_features : int
        Number of channels $C$ (axis 1 of an ``(N, C)`` or ``(N, C, H, W)`` input).
    p : {1, 2, inf}
        The norm: ``1``, ``2`` or ``float("inf")``.
    eps : float, optional
        $\epsilon > 0$ added to the norm, default ``1e-5``.
    momentum : float, optional
        Weight of the new batch statistics in the running ones, in ``[0, 1]``; default
        0.1 (PyTorch's convention: $r \leftarrow (1 - m)\, r + m\, b$). Unlike
        ``torch.nn.BatchNorm2d``, ``momentum=None`` (a cumulative moving average) is
        refused with a ValueError.
    affine : bool, optional
        Whether there are learnable $\gamma$ (initialized to 1) and $\beta$ (to 0).

    Raises
    ------
    ValueError
        On ``p`` not in $\{1, 2, \infty\}$, ``eps <= 0``, ``momentum`` None or outside $[0, 1]$;
        at call time on an input not shaped ``(N, C)`` or ``(N, C, H, W)``, on non-finite
        values, or on a single value per channel in training. A rejected input leaves the
        running statistics unchanged.
    TypeError
        On a non-floating input.

    Notes
    -----
    For channel $c$ let $a_1, \dots, a_n$ be its values over the batch (and spatial
    positions). In training mode

    $$\mu_c = \frac1n \sum_k a_k, \qquad
    \nu_c = \Big(\frac1n \sum_k |a_k|^p\Big)^{1/p} \ (p < \infty), \qquad
    \nu_c = \max_k |a_k| \ (p = \infty),$$

    $$y_k = \gamma_c\, \frac{a_k - \mu_c}{\nu_c + \epsilon} + \beta_c .$$

    The norm $\nu_c$ is taken of the activations before the mean is subtracted, as
    Santurkar et al. describe; the first moment is fixed as in BN. Reading their "average
    ℓp norm" as the power mean $(\frac1n\sum|a_k|^p)^{1/p}$ is this module's reading: for
    $p = 2$ it is the root mean square, $\nu_c^2 = \sigma_c^2 + \mu_c^2$, so the layer
    equals BN (up to $\epsilon$) only for channels with zero mean. For $p = \infty$ the
    maximum grows with the batch size. In training the running statistics are updated
    as $r_\mu \leftarrow (1 - m) r_\mu + m \mu$ and $r_\nu \leftarrow (1 - m) r_\nu + m \nu$
    (initialized to 0 and 1); evaluation mode uses them in place of $\mu, \nu$.
    Gradients flow through $\mu$ and $\nu$.

    References
    ----------
    Santurkar, S., Tsipras, D., Ilyas, A. and Madry, A. (2018). How does batch
    normalization help optimization? NeurIPS, §3.3.

    Examples
    --------
    >>> import torch
    >>> from bnnotes.torch_layers import LpNorm
    >>> layer = LpNorm(2, p=1).double()
    >>> x = torch.tensor(
    ...     [[1.0, -2.0], [3.0, 4.0], [5.0, 0.0]], dtype=torch.float64
    ... )
    >>> y = layer(x)
    >>> mean, norm = x.mean(0), x.abs().mean(0)
    >>> bool(torch.allclose(y, (x - mean) / (norm + 1e-5), rtol=1e-12))
    True
    """

    def __init__(
        self,
        num_features: int,
        p: float,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
    ) -> None:
        super().__init__()
        self.num_features = check.positive_int(num_features, "num_features")
        if (
            isinstance(p, bool)
            or not isinstance(p, Real)
            or float(p) not in (1.0, 2.0, math.inf)
        ):
            raise ValueError(f"p must be 1, 2 or float('inf'), got {p!r}")
        self.p = float(p)
        self.eps = check.eps_value(eps)
        momentum = check.momentum_value(momentum, allow_none=False)
        self.momentum = momentum
        self.affine = bool(affine)
        if self.affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_norm", torch.ones(num_features))
        self.register_buffer(
            "num_batches_tracked", torch.tensor(0, dtype=torch.long)
        )

    def average_norm(self, x: torch.Tensor) -> torch.Tensor:
        r"""The per-channel average ℓp norm $\nu_c$ of ``x`` (before any mean shift).

        Parameters
        ----------
        x : torch.Tensor
            Activations of shape ``(N, C)`` or ``(N, C, H, W)``, floating.

        Returns
        -------
        torch.Tensor
            Shape ``(C,)``: $(\frac1n \sum_k |a_k|^p)^{1/p}$ over the $n$ values of each
            channel, or $\max_k |a_k|$ for $p = \infty$.
        """
        axes = (0, *range(2, x.ndim))
        if self.p == math.inf:
            return x.abs().amax(dim=axes)
        n = x.numel() // x.shape[1]
        return torch.linalg.vector_norm(x, ord=self.p, dim=axes) / n ** (
            1.0 / self.p
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check.channels_tensor(x, self.num_features, ndims=(2, 4))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if self.training:
            _more_than_one_value_per_channel(x)
            axes = (0, *range(2, x.ndim))
            mean = x.mean(dim=axes)
            norm = self.average_norm(x)
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(
                    mean.detach().to(self.running_mean.dtype), alpha=m
                )
                self.running_norm.mul_(1 - m).add_(
                    norm.detach().to(self.running_norm.dtype), alpha=m
                )
                self.num_batches_tracked.add_(1)
        else:
            mean = self.running_mean.to(x.dtype)
            norm = self.running_norm.to(x.dtype)
        scale = 1.0 / (norm + self.eps)
        if self.affine:
            scale = scale * self.weight.to(x.dtype)
        y = (x - mean.reshape(shape)) * scale.reshape(shape)
        if self.affine:
            y = y + self.bias.to(x.dtype).reshape(shape)
        return y

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, p={self.p}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}"
        )
