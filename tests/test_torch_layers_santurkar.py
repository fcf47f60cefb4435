"""NoisyBatchNorm and LpNorm (Santurkar et al., 2018, §2.1 and §3.3) against
direct float64 computations."""

import math

import numpy as np
import pytest
import torch
from helpers import RTOL64, rel_err
from hypothesis import given, settings
from hypothesis import strategies as st

from bnnotes.torch_layers import LpNorm, NoisyBatchNorm, SanturkarNoise

P_VALUES = [1, 2, math.inf]
SHAPES = [(16, 3), (6, 3, 4, 5)]


def _batch(shape, seed=0, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64) * 2.0 + shift


def _torch_bn(num_features, ndim):
    return (torch.nn.BatchNorm1d if ndim == 2 else torch.nn.BatchNorm2d)(
        num_features
    ).double()


def _randomize_affine(*layers, seed=1):
    g = torch.Generator().manual_seed(seed)
    weight = (
        torch.rand(layers[0].weight.shape, generator=g, dtype=torch.float64)
        + 0.5
    )
    bias = torch.randn(layers[0].bias.shape, generator=g, dtype=torch.float64)
    with torch.no_grad():
        for layer in layers:
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)


def _lp_statistics(x, p):
    """Per-channel mean and power mean of |x| (max for p = inf), in NumPy float64."""
    x = np.asarray(x, dtype=np.float64)
    moved = np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])
    mean = moved.mean(axis=0)
    norm = (
        np.abs(moved).max(axis=0)
        if p == math.inf
        else (np.abs(moved) ** p).mean(axis=0) ** (1.0 / p)
    )
    return mean, norm


def _lp_reference(x, p, eps, weight, bias):
    """(x - mean) / (power mean of |x| + eps) per channel, in NumPy float64."""
    x = np.asarray(x, dtype=np.float64)
    mean, norm = _lp_statistics(x, p)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(shape)) / (
        norm.reshape(shape) + eps
    ) * weight.reshape(shape) + bias.reshape(shape)


# ----------------------------------------------------------------------------- noise


@pytest.mark.parametrize("shape", SHAPES)
def test_noisy_bn_training_output_is_drawn_scale_times_pytorch_bn_plus_shift(
    shape,
):
    """In training, NoisyBatchNorm(x) = s * BatchNorm(x) + m with the recorded per-element draws."""
    x = _batch(shape)
    layer = NoisyBatchNorm(shape[1], generator=0).double()
    reference = _torch_bn(shape[1], len(shape))
    _randomize_affine(layer, reference)
    y = layer(x)
    draw = layer.noise.last_noise
    assert (
        rel_err(y.detach(), draw.scale * reference(x).detach() + draw.shift)
        < RTOL64
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_noisy_bn_running_statistics_and_eval_output_equal_pytorch_bn(shape):
    """The running statistics follow PyTorch's BN, and evaluation mode is plain BN without noise."""
    layer = NoisyBatchNorm(shape[1], generator=0).double()
    reference = _torch_bn(shape[1], len(shape))
    _randomize_affine(layer, reference)
    for seed in range(3):
        layer(_batch(shape, seed, shift=1.0))
        reference(_batch(shape, seed, shift=1.0))
    assert rel_err(layer.running_mean, reference.running_mean) < RTOL64
    assert rel_err(layer.running_var, reference.running_var) < RTOL64
    x = _batch(shape, 9)
    assert (
        rel_err(layer.eval()(x).detach(), reference.eval()(x).detach())
        < RTOL64
    )


def test_noise_draws_lie_in_the_stated_intervals():
    """Over many steps mu^t is in [-0.5, 0.5], sigma^t in [1, 1.25], and
    every m within 0.1 of mu^t."""
    noise = SanturkarNoise(generator=3)
    x = torch.zeros(32, 8, dtype=torch.float64)
    for _ in range(200):
        noise(x)
        d = noise.last_noise
        assert -0.5 <= d.mu <= 0.5 and 1.0 <= d.sigma <= 1.25
        assert float((d.shift - d.mu).abs().max()) <= 0.1 + 1e-15


def test_noise_step_parameters_cover_their_intervals():
    """The per-step draws spread over their intervals (their sample
    means are near the midpoints)."""
    noise = SanturkarNoise(generator=4)
    x = torch.zeros(2, 2)
    mus, sigmas = [], []
    for _ in range(2000):
        noise(x)
        mus.append(noise.last_noise.mu)
        sigmas.append(noise.last_noise.sigma)
    # standard errors: 1/sqrt(12 * 2000) ~ 0.0065 and 0.25 times that
    assert (
        abs(np.mean(mus)) < 5 * 0.0065
        and abs(np.mean(sigmas) - 1.125) < 5 * 0.25 * 0.0065
    )
    assert (
        min(mus) < -0.45
        and max(mus) > 0.45
        and min(sigmas) < 1.01
        and max(sigmas) > 1.24
    )


def test_per_element_noise_has_the_stated_distribution():
    """Within one step, s has mean sigma^t and standard deviation 0.1, m has mean
    mu^t and variance 0.2^2/12."""
    noise = SanturkarNoise(generator=5)
    noise(torch.zeros(400, 100, dtype=torch.float64))
    d = noise.last_noise
    n = d.scale.numel()
    assert abs(float(d.scale.mean()) - d.sigma) < 5 * 0.1 / math.sqrt(n)
    assert abs(float(d.scale.std()) - 0.1) < 5 * 0.1 / math.sqrt(2 * n)
    uniform_std = 0.2 / math.sqrt(12)
    assert abs(float(d.shift.mean()) - d.mu) < 5 * uniform_std / math.sqrt(n)
    assert abs(float(d.shift.std()) - uniform_std) < 0.02 * uniform_std


def test_noise_is_drawn_per_sample_and_per_unit():
    """Every element gets its own draw: no two samples and no two units
    share their scale or shift."""
    noise = SanturkarNoise(generator=6)
    noise(torch.zeros(5, 4, 3, 3))
    for t in (noise.last_noise.scale, noise.last_noise.shift):
        assert t.shape == (5, 4, 3, 3)
        assert torch.unique(t).numel() == t.numel()


def test_noise_changes_at_every_training_call():
    """Two training calls on the same input draw different mu^t, sigma^t and outputs."""
    noise = SanturkarNoise(generator=7)
    x = torch.ones(8, 3)
    first = noise(x)
    d1 = noise.last_noise
    second = noise(x)
    assert d1.mu != noise.last_noise.mu and d1.sigma != noise.last_noise.sigma
    assert not torch.equal(first, second)


def test_same_seed_gives_the_same_noise_sequence():
    """Two layers seeded alike produce identical outputs call after call."""
    a, b = (
        NoisyBatchNorm(3, generator=11),
        NoisyBatchNorm(3, generator=torch.Generator().manual_seed(11)),
    )
    for seed in range(3):
        x = _batch((10, 3), seed).float()
        assert torch.equal(a(x), b(x))


def test_eval_mode_draws_nothing_and_adds_no_noise():
    """In evaluation mode the noise is the identity and the generator does not advance."""
    g = torch.Generator().manual_seed(12)
    noise = SanturkarNoise(generator=g).eval()
    state = g.get_state()
    x = torch.randn(4, 3)
    assert torch.equal(noise(x), x)
    assert torch.equal(g.get_state(), state)


@pytest.mark.parametrize("shape", SHAPES)
def test_noisy_bn_gradient_is_bn_gradient_of_the_noise_scaled_upstream(shape):
    """The noise is a constant for back-propagation: dL/dx equals BN's backward of s * dL/dy."""
    x = _batch(shape).requires_grad_(True)
    layer = NoisyBatchNorm(shape[1], generator=0).double()
    upstream = _batch(shape, 3)
    (layer(x) * upstream).sum().backward()
    scale = layer.noise.last_noise.scale
    x2 = x.detach().clone().requires_grad_(True)
    (_torch_bn(shape[1], len(shape))(x2) * scale * upstream).sum().backward()
    assert rel_err(x.grad, x2.grad) < RTOL64


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.randn(4, 3, 5), "shape"),
        (torch.randn(4, 2), "shape"),
        (
            torch.tensor([[1.0, float("nan"), 0.0], [0.0, 1.0, 2.0]]),
            "non-finite",
        ),
        (torch.randn(1, 3), "more than 1 value"),
    ],
)
def test_noisy_bn_rejects_bad_input_without_touching_running_stats(x, message):
    """Wrong shapes, nan and a single value per channel are named errors; the
    running statistics stay put."""
    layer = NoisyBatchNorm(3, generator=0)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    with pytest.raises(ValueError, match=message):
        layer(x)
    for k, v in layer.state_dict().items():
        assert torch.equal(v, before[k])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"mean_range": (0.5, -0.5)},
            "mean_range must be finite with low <= high",
        ),
        (
            {"scale_range": (1.0, float("inf"))},
            "scale_range must be finite with low <= high",
        ),
        ({"mean_range": 0.5}, "mean_range must be a pair of numbers"),
        (
            {"shift_halfwidth": -0.1},
            "shift_halfwidth must be a finite number >= 0",
        ),
        (
            {"shift_halfwidth": float("nan")},
            "shift_halfwidth must be a finite number >= 0",
        ),
        ({"scale_std": -0.1}, "scale_std must be a finite number >= 0"),
    ],
    ids=str,
)
def test_noise_rejects_bad_parameters(kwargs, message):
    """Inverted or non-finite ranges and negative or nan widths are named ValueErrors."""
    with pytest.raises(ValueError, match=message):
        SanturkarNoise(**kwargs)


@pytest.mark.parametrize("generator", ["seed", 1.5, True], ids=repr)
def test_noise_rejects_a_bad_generator(generator):
    """A generator that is neither a torch.Generator, an int seed nor None
    is a TypeError naming it."""
    with pytest.raises(
        TypeError, match=r"generator must be a torch\.Generator"
    ):
        SanturkarNoise(generator=generator)


def test_noise_rejects_an_integer_input():
    """An integer tensor is a TypeError naming the floating dtype it needs."""
    with pytest.raises(TypeError, match="floating dtype"):
        SanturkarNoise()(torch.ones(2, 2, dtype=torch.int64))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eps": 0.0}, "eps must be a finite number > 0"),
        ({"momentum": 1.5}, r"momentum must be a number in \[0, 1\], got 1.5"),
        (
            {"momentum": None},
            r"momentum must be a number in \[0, 1\], got None",
        ),
        (
            {"shift_halfwidth": -0.1},
            "shift_halfwidth must be a finite number >= 0",
        ),
    ],
    ids=str,
)
def test_noisy_bn_rejects_bad_parameters(kwargs, message):
    """eps <= 0, a momentum outside [0, 1] or None, and bad noise
    parameters are named ValueErrors."""
    with pytest.raises(ValueError, match=message):
        NoisyBatchNorm(3, **kwargs)


# ----------------------------------------------------------------------------- lp


@pytest.mark.parametrize("p", P_VALUES)
@pytest.mark.parametrize("shape", SHAPES)
def test_lp_norm_forward_matches_direct_float64_computation(p, shape):
    """Training output = gamma (x - mean) / (average lp norm of x + eps) + beta, per channel."""
    x = _batch(shape, shift=0.7)
    layer = LpNorm(shape[1], p).double()
    _randomize_affine(layer)
    expected = _lp_reference(
        x.numpy(),
        p,
        layer.eps,
        layer.weight.detach().numpy(),
        layer.bias.detach().numpy(),
    )
    assert rel_err(layer(x).detach(), expected) < RTOL64


@pytest.mark.parametrize("p", P_VALUES)
@pytest.mark.parametrize("shape", [(5, 2), (3, 2, 2, 3)])
def test_lp_norm_gradient_passes_gradcheck(p, shape):
    """Analytic gradients w.r.t. input, gamma and beta agree with finite differences
    (torch.autograd.gradcheck)."""
    x = _batch(shape, shift=0.3).requires_grad_(True)
    layer = LpNorm(shape[1], p).double()
    _randomize_affine(layer)

    def f(x, weight, bias):
        return torch.func.functional_call(
            layer, {"weight": weight, "bias": bias}, (x,)
        )

    weight = layer.weight.detach().clone().requires_grad_(True)
    bias = layer.bias.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        f, (x, weight, bias), eps=1e-6, atol=1e-8, rtol=1e-6
    )


@pytest.mark.parametrize("p", P_VALUES)
def test_lp_norm_running_statistics_follow_the_momentum_rule(p):
    """After steps b1, b2: r = (1-m)^2 r0 + m(1-m) b1 + m b2 for the mean and for the norm."""
    m = 0.3
    layer = LpNorm(3, p, momentum=m).double()
    batches = [_batch((20, 3, 2, 2), seed, shift=1.5) for seed in (1, 2)]
    stats = []
    for x in batches:
        layer(x)
        stats.append(_lp_statistics(x.numpy(), p))
    mean = (1 - m) * m * stats[0][0] + m * stats[1][0]
    norm = (1 - m) ** 2 * 1.0 + (1 - m) * m * stats[0][1] + m * stats[1][1]
    assert rel_err(layer.running_mean, mean) < RTOL64
    assert rel_err(layer.running_norm, norm) < RTOL64
    assert int(layer.num_batches_tracked) == 2


@pytest.mark.parametrize("p", P_VALUES)
def test_lp_norm_eval_mode_uses_running_statistics_and_leaves_them(p):
    """Evaluation mode computes gamma (x - r_mean)/(r_norm + eps) + beta and changes no buffer."""
    layer = LpNorm(3, p).double()
    _randomize_affine(layer)
    layer(_batch((30, 3), 1, shift=2.0))
    layer.eval()
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    x = _batch((7, 3), 2)
    expected = (x - layer.running_mean) / (
        layer.running_norm + layer.eps
    ) * layer.weight + layer.bias
    assert rel_err(layer(x).detach(), expected.detach()) < RTOL64
    for k, v in layer.state_dict().items():
        assert torch.equal(v, before[k])


def test_l2_norm_equals_batchnorm_on_zero_mean_channels():
    """For channels whose batch mean is 0 the root mean square is BN's standard
    deviation: same output up to eps."""
    x = _batch((50, 4))
    x = x - x.mean(dim=0)
    eps = 1e-14
    lp = LpNorm(4, 2, eps=eps).double()(x)
    bn = torch.nn.BatchNorm1d(4, eps=eps).double()(x)
    assert rel_err(lp.detach(), bn.detach()) < 1e-9


def test_l2_norm_differs_from_batchnorm_by_the_factor_std_over_rms():
    """With a non-zero mean, the l2 output is BN's times std / sqrt(std^2 + mean^2) per channel."""
    x = _batch((50, 4), shift=1.5)
    eps = 1e-14
    lp = LpNorm(4, 2, eps=eps).double()(x).detach()
    bn = torch.nn.BatchNorm1d(4, eps=eps).double()(x).detach()
    mean, var = x.mean(0), x.var(0, correction=0)
    factor = var.sqrt() / (var + mean**2).sqrt()
    assert rel_err(lp, bn * factor) < 1e-9
    assert float(factor.max()) < 0.99


@settings(max_examples=40, deadline=None)
@given(
    p=st.sampled_from(P_VALUES),
    scale=st.floats(0.01, 100.0),
    seed=st.integers(0, 2**16),
)
def test_lp_norm_output_is_invariant_to_positive_rescaling_of_the_input(
    p, scale, seed
):
    """LpNorm(c x) = LpNorm(x) for c > 0, up to the eps in the denominator (eps tiny here)."""
    x = _batch((12, 3), seed, shift=0.5)
    layer = LpNorm(3, p, eps=1e-12).double()
    assert rel_err(layer(scale * x).detach(), layer(x).detach()) < 1e-8


@pytest.mark.parametrize("p", [0, 3, -1, 0.5, float("nan"), "2", True, None])
def test_lp_norm_rejects_p_outside_one_two_infinity(p):
    """Only p = 1, 2 and infinity are accepted."""
    with pytest.raises(ValueError, match="p must be"):
        LpNorm(3, p)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"eps": 0.0}, "eps"),
        ({"eps": -1e-5}, "eps"),
        ({"momentum": 1.5}, "momentum"),
        ({"momentum": -0.1}, "momentum"),
        (
            {"momentum": None},
            r"momentum must be a number in \[0, 1\], got None",
        ),
    ],
)
def test_lp_norm_rejects_bad_eps_and_momentum(kwargs, message):
    """eps must be > 0 and momentum a number in [0, 1] (None, a cumulative average, is refused)."""
    with pytest.raises(ValueError, match=message):
        LpNorm(3, 2, **kwargs)


@pytest.mark.parametrize(
    "x, error, message",
    [
        (torch.randn(4, 3, 5), ValueError, "shape"),
        (torch.randn(4, 5), ValueError, "shape"),
        (
            torch.tensor([[1.0, float("inf"), 0.0], [0.0, 1.0, 2.0]]),
            ValueError,
            "non-finite",
        ),
        (torch.randn(1, 3), ValueError, "more than 1 value"),
        (torch.randn(1, 3, 1, 1), ValueError, "more than 1 value"),
        (torch.ones(4, 3, dtype=torch.int64), TypeError, "floating"),
    ],
)
def test_lp_norm_rejects_bad_input_without_touching_running_stats(
    x, error, message
):
    """Wrong shapes, non-finite values, one value per channel and integer input are named
    errors; no buffer changes."""
    layer = LpNorm(3, 1)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    with pytest.raises(error, match=message):
        layer(x)
    for k, v in layer.state_dict().items():
        assert torch.equal(v, before[k])


def test_linf_norm_divides_by_the_largest_absolute_value():
    """With p = inf every channel's largest |x| maps to (x - mean)/max|x|, so
    outputs stay within [-2, 2]."""
    x = _batch((40, 3), shift=3.0)
    y = LpNorm(3, math.inf, eps=1e-12).double()(x).detach()
    expected = (x - x.mean(0)) / x.abs().amax(0)
    assert rel_err(y, expected) < RTOL64
    assert float(y.abs().max()) <= 2.0
