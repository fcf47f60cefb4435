r"""The networks of the "Why BN works" experiments: a small VGG-style net and a deep linear network.

Santurkar et al. (2018, §2) study two kinds of model: a VGG network on CIFAR-10 and a
25-layer deep linear network (DLN) on synthetic data. This module builds scaled-down
versions of both, with a choice of normalization after every weight layer:

* [`vgg`][bnnotes.models.vgg]: stages of 3x3 convolutions, each followed by the
  normalization and a ReLU, with 2x2 max pooling between stages, then two fully connected
  layers. ``image_size=8`` fits scikit-learn's digits, ``image_size=32`` CIFAR-10.
* [`deep_linear`][bnnotes.models.deep_linear]: ``depth`` square ``Linear`` layers without
  bias, each followed by the normalization when there is one.
* [`weight_layers`][bnnotes.models.weight_layers]: the ``Conv2d``/``Linear`` modules in
  forward order, the "layers" $W_1, \dots, W_k$ of Santurkar et al.'s Definition 2.1.
* [`images`][bnnotes.models.images]: a [`Dataset`][bnnotes.data.Dataset] of flattened
  images as ``(n, C, H, W)`` tensors for the convolutional net.

Every weight is drawn with Glorot (Xavier) uniform initialization and every bias starts at
zero. Santurkar et al. use Glorot initialization for their VGG runs according to one
secondary source; for the square layers of the DLN it keeps the expected
squared norm of a vector unchanged from layer to layer, so 25 layers neither blow the
signal up nor make it vanish at the start.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bnnotes import _validation as check

__all__ = [
    "DLN_NORMS",
    "VGG_NORMS",
    "deep_linear",
    "image_shape",
    "images",
    "vgg",
    "weight_layers",
]

VGG_NORMS = ("none", "batch", "noisy_batch", "noise", "l1", "l2", "linf")
"""Names accepted by [`vgg`][bnnotes.models.vgg]: no normalization, BatchNorm, noisy
BatchNorm, the noise of noisy BatchNorm alone (a standard network with injected noise),
and ℓ1, ℓ2, ℓ∞ normalization of activations."""

DLN_NORMS = ("none", "batch", "l1", "l2", "linf")
"""Names accepted by [`deep_linear`][bnnotes.models.deep_linear]."""

_LP = {"l1": 1.0, "l2": 2.0, "linf": float("inf")}


def _check_norm(norm, allowed: tuple[str, ...]) -> str:
    if not isinstance(norm, str) or norm not in allowed:
        raise ValueError(f"norm must be one of {allowed}, got {norm!r}")
    return norm


def _norm_layer(
    norm: str, channels: int, spatial: bool, generator
) -> nn.Module | None:
    """The normalization module for ``channels`` units (4-D input when ``spatial``), or None."""
    from bnnotes.torch_layers import LpNorm, NoisyBatchNorm, SanturkarNoise

    if norm == "none":
        return None
    if norm == "batch":
        return (
            nn.BatchNorm2d(channels) if spatial else nn.BatchNorm1d(channels)
        )
    if norm == "noisy_batch":
        return NoisyBatchNorm(channels, generator=generator)
    if norm == "noise":
        return SanturkarNoise(generator=generator)
    return LpNorm(channels, _LP[norm])


def _glorot_(modules) -> None:
    for module in modules:
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def vgg(
    norm: str = "none",
    in_channels: int = 1,
    num_classes: int = 10,
    image_size: int = 8,
    widths: tuple[int, ...] = (16, 32, 64),
    *,
    convs_per_stage: int = 2,
    hidden: int = 128,
    generator: torch.Generator | int | None = None,
) -> nn.Sequential:
    r"""A VGG-style convolutional network with a chosen normalization after every
    weight layer but the last.

    Parameters
    ----------
    norm : str, optional
        One of ``"none"``, ``"batch"``, ``"noisy_batch"``, ``"noise"``, ``"l1"``, ``"l2"``,
        ``"linf"``. ``"noise"`` is the standard network with the noise of noisy BatchNorm
        injected where BatchNorm would sit (Santurkar et al., 2018, §2.1).
    in_channels : int, optional
        Channels of the input images: 1 for the digits, 3 for CIFAR-10.
    num_classes : int, optional
        Number of output logits.
    image_size : int, optional
        Height and width of the (square) input: 8 for the digits, 32 for CIFAR-10. It must
        be divisible by $2^{S-1}$ for $S$ stages.
    widths : tuple of int, optional
        Output channels of each stage.
    convs_per_stage : int, optional
        3x3 convolutions per stage (keyword only). Default 2, as in most stages of VGG.
    hidden : int, optional
        Units of the hidden fully connected layer (keyword only).
    generator : torch.Generator or int or None, optional
        Source of the noise of ``"noisy_batch"`` and ``"noise"`` (a seed, or None for the
        global generator). Every noise layer draws from it in forward order.

    Returns
    -------
    torch.nn.Sequential
        ``[Conv2d, (norm), ReLU] x convs_per_stage`` per stage, ``MaxPool2d(2)`` between
        stages, then ``Flatten, Linear, (norm), ReLU, Linear``. A convolution or linear
        layer followed by a normalization has no bias (the normalization's shift replaces
        it); the others have one.

    Raises
    ------
    ValueError
        On an unknown ``norm``, non-positive sizes, or an ``image_size`` not divisible by
        $2^{S-1}$.

    Notes
    -----
    With $S$ stages the last feature map has side $s = \text{image\_size}/2^{S-1}$, so the
    first fully connected layer has $\text{widths}[-1]\cdot s^2$ inputs. Weights use Glorot
    uniform initialization, $U(-a, a)$ with
    $a = \sqrt{6/(\text{fan}_\text{in} + \text{fan}_\text{out})}$; biases start at zero.

    References
    ----------
    Simonyan, K. and Zisserman, A. (2015). Very deep convolutional networks for large-scale
    image recognition. ICLR. Santurkar, S., Tsipras, D., Ilyas, A. and Madry, A. (2018).
    How does batch normalization help optimization? NeurIPS, §2.

    Examples
    --------
    >>> import torch
    >>> from bnnotes.models import vgg
    >>> _ = torch.manual_seed(0)
    >>> model = vgg("batch")
    >>> model(torch.rand(4, 1, 8, 8)).shape
    torch.Size([4, 10])
    >>> vgg("none", in_channels=3, image_size=32)(
    ...     torch.rand(2, 3, 32, 32)
    ... ).shape
    torch.Size([2, 10])
    """
    norm = _check_norm(norm, VGG_NORMS)
    in_channels = check.positive_int(in_channels, "in_channels")
    num_classes = check.positive_int(num_classes, "num_classes")
    image_size = check.positive_int(image_size, "image_size")
    convs_per_stage = check.positive_int(convs_per_stage, "convs_per_stage")
    hidden = check.positive_int(hidden, "hidden")
    widths = tuple(widths)
    if not widths:
        raise ValueError("widths must name at least one stage")
    widths = tuple(check.positive_int(w, "each width") for w in widths)
    shrink = 2 ** (len(widths) - 1)
    if image_size % shrink:
        raise ValueError(
            f"image_size must be divisible by 2**(stages - 1) = {shrink} for {len(widths)} stages, "
            f"got {image_size}"
        )
    if isinstance(generator, int) and not isinstance(generator, bool):
        generator = torch.Generator().manual_seed(generator)
    # "noise" keeps the standard network's biases: the noise is no normalization
    has_norm = norm not in ("none", "noise")
    modules: list[nn.Module] = []
    channels = in_channels
    for stage, width in enumerate(widths):
        if stage:
            modules.append(nn.MaxPool2d(2))
        for _ in range(convs_per_stage):
            modules.append(
                nn.Conv2d(channels, width, 3, padding=1, bias=not has_norm)
            )
            layer = _norm_layer(norm, width, True, generator)
            if layer is not None:
                modules.append(layer)
            modules.append(nn.ReLU())
            channels = width
    side = image_size // shrink
    modules += [
        nn.Flatten(),
        nn.Linear(channels * side * side, hidden, bias=not has_norm),
    ]
    layer = _norm_layer(norm, hidden, False, generator)
    if layer is not None:
        modules.append(layer)
    modules += [nn.ReLU(), nn.Linear(hidden, num_classes)]
    _glorot_(modules)
    return nn.Sequential(*modules)


def deep_linear(
    dim: int = 10, depth: int = 25, norm: str = "none"
) -> nn.Sequential:
    r"""A deep linear network: ``depth`` layers ``Linear(dim, dim, bias=False)``,
    each followed by the norm.

    Parameters
    ----------
    dim : int, optional
        Width of every layer (10 in Santurkar et al., 2018, per a secondary source).
    depth : int, optional
        Number of weight layers (25 in Santurkar et al., 2018).
    norm : str, optional
        ``"none"``, ``"batch"`` (``BatchNorm1d``), ``"l1"``, ``"l2"`` or ``"linf"``
        ([`LpNorm`][bnnotes.torch_layers.LpNorm]).

    Returns
    -------
    torch.nn.Sequential
        ``Linear, (norm), Linear, (norm), ...``; without a norm the network computes
        $x \mapsto W_{\text{depth}} \cdots W_1 x$ (in PyTorch's row convention,
        $x W_1^\top \cdots W_{\text{depth}}^\top$).

    Raises
    ------
    ValueError
        On an unknown ``norm`` or non-positive sizes.

    Notes
    -----
    Weights are Glorot uniform; for a square $d \times d$ layer the entries have variance
    $1/d$, so $\mathbb E\|W x\|^2 = \|x\|^2$ at initialization.

    Examples
    --------
    >>> import torch
    >>> from bnnotes.models import deep_linear
    >>> _ = torch.manual_seed(0)
    >>> net = deep_linear(dim=4, depth=3).double()
    >>> x = torch.randn(5, 4, dtype=torch.float64)
    >>> w = [m.weight for m in net]
    >>> bool(torch.allclose(net(x), x @ w[0].T @ w[1].T @ w[2].T, rtol=1e-12))
    True
    """
    dim = check.positive_int(dim, "dim")
    depth = check.positive_int(depth, "depth")
    norm = _check_norm(norm, DLN_NORMS)
    modules: list[nn.Module] = []
    for _ in range(depth):
        modules.append(nn.Linear(dim, dim, bias=False))
        layer = _norm_layer(norm, dim, False, None)
        if layer is not None:
            modules.append(layer)
    _glorot_(modules)
    return nn.Sequential(*modules)


def weight_layers(model: nn.Module) -> list[nn.Module]:
    r"""The ``Conv2d`` and ``Linear`` modules of ``model`` in forward (registration) order.

    These are the layers $W_1, \dots, W_k$ of Santurkar et al.'s (2018) Definition 2.1.

    Parameters
    ----------
    model : torch.nn.Module
        A network whose modules are registered in the order they run, as in a
        ``torch.nn.Sequential``.

    Returns
    -------
    list of torch.nn.Module
        The weight layers; normalization layers (whose $\gamma, \beta$ are parameters too)
        are not included.

    Raises
    ------
    TypeError
        If ``model`` is not a ``torch.nn.Module``.

    Examples
    --------
    >>> from bnnotes.models import vgg, weight_layers
    >>> [
    ...     type(m).__name__
    ...     for m in weight_layers(
    ...         vgg("batch", widths=(4, 8), convs_per_stage=1)
    ...     )
    ... ]
    ['Conv2d', 'Conv2d', 'Linear', 'Linear']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module, got {type(model).__name__}"
        )
    return [
        m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    ]


def image_shape(num_features: int) -> tuple[int, int, int]:
    r"""The ``(C, H, W)`` of a flattened square image with ``num_features`` values.

    A perfect square $d = s^2$ is one grey channel of side $s$ (64 for the digits, 784 for
    MNIST); otherwise $d = 3 s^2$ is three colour channels (3072 for CIFAR-10, stored
    channel-major).

    Raises
    ------
    ValueError
        If ``num_features`` is neither $s^2$ nor $3 s^2$.

    Examples
    --------
    >>> from bnnotes.models import image_shape
    >>> image_shape(64), image_shape(3072)
    ((1, 8, 8), (3, 32, 32))
    """
    num_features = check.positive_int(num_features, "num_features")
    for channels in (1, 3):
        if num_features % channels == 0:
            side = math.isqrt(num_features // channels)
            if side * side * channels == num_features:
                return channels, side, side
    raise ValueError(
        f"{num_features} features are not a square image with 1 or 3 channels"
    )


def images(
    dataset, device: str | torch.device = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""A [`Dataset`][bnnotes.data.Dataset] of flattened images as tensors
    ``(x_train, y_train, x_test, y_test)``.

    Parameters
    ----------
    dataset : bnnotes.data.Dataset
        Flattened images in channel-major order (as CIFAR-10 stores them).
    device : str or torch.device, optional
        Where the tensors go.

    Returns
    -------
    tuple of torch.Tensor
        float32 images of shape ``(n, C, H, W)`` (see [`image_shape`][bnnotes.models.image_shape])
        and int64 labels of shape ``(n,)``, for the training and test splits.

    Raises
    ------
    ValueError
        If the number of features is not a square image with 1 or 3 channels.

    Examples
    --------
    >>> from bnnotes.data import load_digits
    >>> from bnnotes.models import images
    >>> x_train, y_train, x_test, y_test = images(load_digits())
    >>> tuple(x_train.shape), tuple(y_test.shape)
    ((1347, 1, 8, 8), (450,))
    """
    shape = image_shape(dataset.num_features)
    out = []
    for x, y in (
        (dataset.x_train, dataset.y_train),
        (dataset.x_test, dataset.y_test),
    ):
        out.append(
            torch
            .as_tensor(x, dtype=torch.float32)
            .reshape(-1, *shape)
            .to(device)
        )
        out.append(torch.as_tensor(y, dtype=torch.int64).to(device))
    return tuple(out)
