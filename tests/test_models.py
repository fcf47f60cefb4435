"""The VGG-style and deep linear networks of the Santurkar et al. (2018) experiments."""

import math

import numpy as np
import pytest
import torch
from helpers import RTOL64, rel_err
from torch import nn

from bnnotes.data import Dataset
from bnnotes.models import (
    DLN_NORMS,
    VGG_NORMS,
    deep_linear,
    image_shape,
    images,
    vgg,
    weight_layers,
)
from bnnotes.torch_layers import LpNorm, NoisyBatchNorm, SanturkarNoise

NORM_TYPES = {
    "batch": (nn.BatchNorm2d, nn.BatchNorm1d),
    "noisy_batch": (NoisyBatchNorm, NoisyBatchNorm),
    "noise": (SanturkarNoise, SanturkarNoise),
    "l1": (LpNorm, LpNorm),
    "l2": (LpNorm, LpNorm),
    "linf": (LpNorm, LpNorm),
}


@pytest.mark.parametrize("norm", VGG_NORMS)
@pytest.mark.parametrize("channels, size", [(1, 8), (3, 32)])
def test_vgg_maps_images_to_class_logits(norm, channels, size):
    """vgg(...)(x) has shape (batch, num_classes) for 8x8 grey and 32x32 colour images."""
    torch.manual_seed(0)
    model = vgg(
        norm, in_channels=channels, num_classes=7, image_size=size, generator=0
    )
    assert model(torch.rand(3, channels, size, size)).shape == (3, 7)


@pytest.mark.parametrize("norm", sorted(NORM_TYPES))
def test_vgg_puts_the_norm_between_every_hidden_weight_layer_and_its_relu(
    norm,
):
    """Each Conv2d and the hidden Linear are followed by the named norm, then ReLU; the
    output Linear by nothing."""
    model = list(vgg(norm, widths=(4, 8, 8), convs_per_stage=2))
    spatial_type, flat_type = NORM_TYPES[norm]
    layers = [
        i for i, m in enumerate(model) if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    assert len(layers) == 3 * 2 + 2
    for i in layers[:-1]:
        expected = (
            spatial_type if isinstance(model[i], nn.Conv2d) else flat_type
        )
        assert type(model[i + 1]) is expected
        assert isinstance(model[i + 2], nn.ReLU)
    assert layers[-1] == len(model) - 1


def test_vgg_lp_variants_use_the_named_p():
    """l1, l2 and linf build LpNorm layers with p = 1, 2 and infinity."""
    for norm, p in (("l1", 1.0), ("l2", 2.0), ("linf", math.inf)):
        ps = {m.p for m in vgg(norm).modules() if isinstance(m, LpNorm)}
        assert ps == {p}


def test_vgg_without_norm_has_relu_right_after_each_hidden_weight_layer():
    """With norm='none' no normalization module is present and every hidden
    weight layer feeds a ReLU."""
    model = list(vgg("none"))
    for i, m in enumerate(model[:-1]):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            assert isinstance(model[i + 1], nn.ReLU)
    assert not any(
        isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, LpNorm, SanturkarNoise))
        for m in model
    )


@pytest.mark.parametrize("norm", VGG_NORMS)
def test_vgg_drops_the_bias_exactly_where_a_normalization_follows(norm):
    """Hidden weight layers have a bias iff no normalization follows them; the
    output layer always has one."""
    layers = weight_layers(vgg(norm))
    normalized = norm not in ("none", "noise")
    for layer in layers[:-1]:
        assert (layer.bias is None) == normalized
    assert layers[-1].bias is not None


def test_vgg_pools_between_stages_only():
    """There is one 2x2 max pooling between consecutive stages and none after the last."""
    model = list(vgg("batch", widths=(4, 8, 16), convs_per_stage=1))
    pools = [i for i, m in enumerate(model) if isinstance(m, nn.MaxPool2d)]
    convs = [i for i, m in enumerate(model) if isinstance(m, nn.Conv2d)]
    assert len(pools) == 2
    assert convs[0] < pools[0] < convs[1] < pools[1] < convs[2]
    assert model[-4].in_features == 16 * 2 * 2


def test_weight_layers_are_the_conv_and_linear_modules_in_forward_order():
    """weight_layers lists Conv2d then Linear modules in the order their outputs are
    computed, shapes chaining."""
    model = vgg("batch", widths=(4, 8), convs_per_stage=2, hidden=12)
    layers = weight_layers(model)
    assert [type(m).__name__ for m in layers] == ["Conv2d"] * 4 + [
        "Linear"
    ] * 2
    assert [m.out_channels for m in layers[:4]] == [4, 4, 8, 8]
    assert [m.in_channels for m in layers[:4]] == [1, 4, 4, 8]
    assert layers[4].out_features == 12 and layers[5].in_features == 12
    order = [id(m) for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert [id(m) for m in layers] == order


def test_weight_layers_rejects_non_modules():
    """Anything but a torch.nn.Module is a TypeError."""
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        weight_layers([nn.Linear(2, 2)])


@pytest.mark.parametrize("norm", DLN_NORMS)
def test_deep_linear_has_depth_bias_free_square_layers_each_followed_by_the_norm(
    norm,
):
    """deep_linear(d, k, norm) is k bias-free Linear(d, d), each followed by
    the norm when there is one."""
    model = list(deep_linear(dim=6, depth=5, norm=norm))
    linear = [m for m in model if isinstance(m, nn.Linear)]
    assert len(linear) == 5
    assert all(m.weight.shape == (6, 6) and m.bias is None for m in linear)
    if norm == "none":
        assert len(model) == 5
    else:
        expected = nn.BatchNorm1d if norm == "batch" else LpNorm
        assert len(model) == 10
        assert all(type(model[i + 1]) is expected for i in range(0, 10, 2))


def test_deep_linear_without_norm_is_linear_in_its_input():
    """With norm='none', f(a x + b y) = a f(x) + b f(y) for the 25-layer network (float64)."""
    torch.manual_seed(0)
    f = deep_linear().double()
    g = torch.Generator().manual_seed(1)
    x, y = (
        torch.randn(7, 10, generator=g, dtype=torch.float64) for _ in range(2)
    )
    a, b = 1.7, -0.4
    with torch.no_grad():
        assert rel_err(f(a * x + b * y), a * f(x) + b * f(y)) < RTOL64


def test_deep_linear_with_batchnorm_is_not_linear_in_its_input():
    """With BN in training mode the map depends on the batch statistics:
    f(2x) = f(x), not 2 f(x)."""
    torch.manual_seed(0)
    f = deep_linear(depth=3, norm="batch").double()
    x = torch.randn(16, 10, dtype=torch.float64)
    with torch.no_grad():
        assert rel_err(f(2 * x), f(x)) < 1e-4  # equal up to BN's eps
        assert rel_err(f(2 * x), 2 * f(x)) > 0.4


def test_deep_linear_initialization_preserves_the_expected_squared_norm():
    """Glorot weights of a square layer have variance 1/d, so E||W x||^2 = ||x||^2
    (averaged over 400 draws)."""
    torch.manual_seed(0)
    ratios = []
    x = torch.ones(1, 10) / math.sqrt(10)
    for _ in range(400):
        layer = deep_linear(dim=10, depth=1)[0]
        with torch.no_grad():
            ratios.append(float(layer(x).square().sum()))
    # each ratio is chi-square-like with mean 1 and std about sqrt(2/10); 5 standard errors
    assert abs(np.mean(ratios) - 1.0) < 5 * math.sqrt(0.2 / 400)


@pytest.mark.parametrize("builder", [vgg, deep_linear])
def test_weights_are_glorot_uniform_and_biases_zero(builder):
    """Every weight lies within sqrt(6 / (fan_in + fan_out)); every bias is zero."""
    torch.manual_seed(0)
    for layer in weight_layers(builder()):
        fan_in = layer.weight[0].numel()
        fan_out = layer.weight.shape[0] * layer.weight[0, 0].numel()
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        largest = float(layer.weight.detach().abs().max())
        assert 0.9 * bound < largest <= bound
        if layer.bias is not None:
            assert not layer.bias.any()


def test_vgg_noise_is_reproducible_from_the_generator_seed():
    """Two noisy networks with equal weights and equal generator seeds
    give equal training outputs."""
    torch.manual_seed(0)
    a = vgg("noisy_batch", generator=5)
    b = vgg("noisy_batch", generator=5)
    b.load_state_dict(a.state_dict())
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(a(x), b(x)) and torch.equal(a(x), b(x))


@pytest.mark.parametrize(
    "builder, norm",
    [
        (vgg, "group"),
        (vgg, "bn"),
        (deep_linear, "noisy_batch"),
        (deep_linear, "noise"),
        (vgg, None),
    ],
)
def test_unknown_norm_names_are_rejected(builder, norm):
    """A norm the builder does not know is a ValueError listing the known ones."""
    with pytest.raises(ValueError, match="norm must be one of"):
        builder(norm=norm)


def test_vgg_rejects_an_image_size_the_pooling_cannot_halve():
    """With 3 stages the image side must be divisible by 4."""
    with pytest.raises(ValueError, match="divisible"):
        vgg(image_size=6)
    with pytest.raises(ValueError, match="widths"):
        vgg(widths=())


def test_image_shape_recognizes_grey_and_colour_squares():
    """64 and 784 features are one grey channel; 3072 are three 32x32 channels; 50 is neither."""
    assert (
        image_shape(64) == (1, 8, 8)
        and image_shape(784) == (1, 28, 28)
        and image_shape(3072) == (3, 32, 32)
    )
    with pytest.raises(ValueError, match="square image"):
        image_shape(50)


def test_images_unflattens_channel_major_rows():
    """images() puts flat index c*H*W + h*W + w at [c, h, w], as CIFAR-10 stores its rows."""
    rng = np.random.default_rng(0)
    flat = rng.random((4, 3072), dtype=np.float32)
    data = Dataset(flat, np.arange(4), flat[:2], np.arange(2), name="test")
    x_train, y_train, x_test, y_test = images(data)
    assert x_train.shape == (4, 3, 32, 32) and x_test.shape == (2, 3, 32, 32)
    assert float(x_train[2, 1, 5, 7]) == flat[2, 1 * 1024 + 5 * 32 + 7]
    assert y_train.dtype == torch.int64 and y_test.tolist() == [0, 1]
