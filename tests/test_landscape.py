"""bnnotes.landscape: probes checked against the closed forms of a quadratic, autograd references
in float64, state restoration and input errors."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from helpers import RTOL64, rel_err
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from bnnotes._torch_state import module_generators
from bnnotes.landscape import (
    flat_gradient,
    probe,
    trainable_parameters,
)
from bnnotes.models import vgg

SHAPES = ((2, 3), (4,))  # two parameter tensors, 10 coordinates in all
ETAS = np.array([0.05, 0.1, 0.2, 0.4])


class Quadratic(nn.Module):
    """Returns its parameters as one flat vector w; with `quadratic_loss` the loss is
    1/2 (w - w*)^T H (w - w*), the target being w*."""

    def __init__(self, w0: np.ndarray, shapes=SHAPES, dtype=torch.float64):
        super().__init__()
        sizes = [math.prod(s) for s in shapes]
        pieces = np.split(
            np.asarray(w0, dtype=np.float64), np.cumsum(sizes)[:-1]
        )
        self.parts = nn.ParameterList(
            nn.Parameter(torch.tensor(p.reshape(s), dtype=dtype))
            for p, s in zip(pieces, shapes, strict=True)
        )

    def forward(self, _inputs):
        return torch.cat([p.reshape(-1) for p in self.parts])


def quadratic_loss(H: np.ndarray):
    """L = 1/2 (w - w*)^T H (w - w*) as a loss_fn(output w, target w*)."""

    def loss_fn(w, w_star):
        e = w - w_star
        return 0.5 * e @ torch.as_tensor(H, dtype=w.dtype) @ e

    return loss_fn


def spd(
    rng: np.random.Generator, n: int, low: float = 0.5, high: float = 3.0
) -> np.ndarray:
    """A random symmetric positive definite matrix with eigenvalues in [low, high]."""
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return (q * rng.uniform(low, high, size=n)) @ q.T


def setup(seed: int = 0, n: int = 10, dtype=torch.float64):
    rng = np.random.default_rng(seed)
    H = spd(rng, n)
    w_star = rng.normal(size=n)
    w0 = w_star + rng.normal(size=n)
    model = Quadratic(w0, dtype=dtype)
    target = torch.tensor(w_star, dtype=dtype)
    return H, w_star, w0, model, target


def closed_form(H, w0, w_star, etas, d=None):
    """Losses, gradient changes, distances and beta of the quadratic along d (default g)."""
    e = w0 - w_star
    g = H @ e
    d = g if d is None else d
    loss0 = 0.5 * e @ H @ e
    losses = loss0 - etas * (d @ g) + 0.5 * etas**2 * (d @ H @ d)
    changes = etas * np.linalg.norm(H @ d)
    distances = etas * np.linalg.norm(d)
    return (
        losses,
        changes,
        distances,
        np.linalg.norm(H @ d) / np.linalg.norm(d),
    )


def state_of(model: nn.Module):
    """Copies of every parameter and buffer, and every module's train/eval flag."""
    tensors = {
        k: v.detach().clone()
        for k, v in model.state_dict(keep_vars=True).items()
    }
    flags = [m.training for m in model.modules()]
    return tensors, flags


def assert_same_state(model: nn.Module, before) -> None:
    tensors, flags = before
    after = model.state_dict(keep_vars=True)
    assert after.keys() == tensors.keys()
    for key, value in tensors.items():
        assert after[key].dtype == value.dtype and torch.equal(
            after[key].detach(), value
        ), key
    assert [m.training for m in model.modules()] == flags


def bn_net(seed: int = 0, dropout: float = 0.0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers = [nn.Linear(5, 8, bias=False), nn.BatchNorm1d(8), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers += [nn.Linear(8, 3)]
    return nn.Sequential(*layers).double()


def bn_batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 5, generator=g, dtype=torch.float64), torch.randint(
        0, 3, (16,), generator=g
    )


# --- the quadratic: every quantity has a closed form --------------------------------------


def test_losses_along_the_gradient_match_the_quadratic_closed_form():
    """L(w - eta g) = L(w) - eta ||g||^2 + eta^2 g^T H g / 2 for each probed eta (float64)."""
    H, w_star, w0, model, target = setup()
    result = probe(model, quadratic_loss(H), None, target, ETAS)
    losses, *_ = closed_form(H, w0, w_star, ETAS)
    assert rel_err(result.losses, losses) <= RTOL64


def test_loss_at_w_and_gradient_norm_match_closed_form():
    """The recorded L(w) is 1/2 e^T H e and the recorded ||g|| is ||H e||."""
    H, w_star, w0, model, target = setup(1)
    result = probe(model, quadratic_loss(H), None, target, ETAS)
    e = w0 - w_star
    assert rel_err(result.loss, 0.5 * e @ H @ e) <= RTOL64
    assert rel_err(result.gradient_norm, np.linalg.norm(H @ e)) <= RTOL64
    assert result.direction_norm == result.gradient_norm


def test_gradient_changes_are_eta_times_the_norm_of_H_g():
    """||grad L(w - eta g) - g|| = eta ||H g|| on a quadratic."""
    H, w_star, w0, model, target = setup(2)
    result = probe(model, quadratic_loss(H), None, target, ETAS)
    _, changes, _, _ = closed_form(H, w0, w_star, ETAS)
    assert rel_err(result.gradient_changes, changes) <= RTOL64


def test_distances_are_eta_times_the_gradient_norm():
    """The distance moved is eta ||g||."""
    H, w_star, w0, model, target = setup(3)
    result = probe(model, quadratic_loss(H), None, target, ETAS)
    _, _, distances, _ = closed_form(H, w0, w_star, ETAS)
    assert rel_err(result.distances, distances) <= RTOL64


def test_beta_smoothness_is_the_ratio_norm_H_g_over_norm_g_at_every_eta():
    """On a quadratic, change / distance = ||H g|| / ||g|| for every eta, and beta is that ratio."""
    H, w_star, w0, model, target = setup(4)
    result = probe(model, quadratic_loss(H), None, target, ETAS)
    *_, beta = closed_form(H, w0, w_star, ETAS)
    assert (
        rel_err(
            result.gradient_changes / result.distances,
            np.full(len(ETAS), beta),
        )
        <= RTOL64
    )
    assert rel_err(result.beta_smoothness, beta) <= RTOL64


def test_summaries_are_the_range_of_losses_and_the_largest_gradient_change():
    """loss_variation = max - min of the closed-form losses;
    gradient_predictiveness = max change."""
    H, w_star, w0, model, target = setup(5)
    etas = np.array([
        0.4,
        0.05,
        0.8,
        0.2,
    ])  # unsorted: the summaries must not assume an order
    result = probe(model, quadratic_loss(H), None, target, etas)
    losses, changes, _, _ = closed_form(H, w0, w_star, etas)
    assert np.array_equal(result.step_sizes, etas)
    assert (
        rel_err(result.loss_variation, losses.max() - losses.min()) <= RTOL64
    )
    assert rel_err(result.gradient_predictiveness, changes.max()) <= RTOL64


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 8), st.floats(1e-3, 1.0))
def test_beta_matches_closed_form_and_lies_between_extreme_eigenvalues(
    seed, n, eta_scale
):
    """For random SPD H, beta = ||H g|| / ||g|| to 1e-10, and
    lambda_min(H) <= beta <= lambda_max(H)."""
    rng = np.random.default_rng(seed)
    H = spd(rng, n, 0.1, 10.0)
    w_star, w0 = rng.normal(size=n), rng.normal(size=n)
    model = Quadratic(w0, shapes=((n,),))
    etas = eta_scale * np.array([0.5, 1.0, 2.0, 4.0])
    result = probe(model, quadratic_loss(H), None, torch.tensor(w_star), etas)
    losses, changes, _, beta = closed_form(H, w0, w_star, etas)
    assert rel_err(result.beta_smoothness, beta) <= RTOL64
    assert rel_err(result.gradient_changes, changes) <= RTOL64
    assert rel_err(result.losses, losses) <= RTOL64
    eigenvalues = np.linalg.eigvalsh(H)
    assert (
        eigenvalues[0] * (1 - 1e-12)
        <= result.beta_smoothness
        <= eigenvalues[-1] * (1 + 1e-12)
    )


def test_random_direction_matches_its_closed_form():
    """Along a random d: L = L(w) - eta d.g + eta^2 d^T H d / 2, change
    eta ||H d||, distance eta ||d||."""
    H, w_star, w0, model, target = setup(6)
    d = np.random.default_rng(60).normal(size=10)
    result = probe(
        model, quadratic_loss(H), None, target, ETAS, direction=torch.tensor(d)
    )
    losses, changes, distances, beta = closed_form(H, w0, w_star, ETAS, d)
    assert rel_err(result.losses, losses) <= RTOL64
    assert rel_err(result.gradient_changes, changes) <= RTOL64
    assert rel_err(result.distances, distances) <= RTOL64
    assert rel_err(result.beta_smoothness, beta) <= RTOL64
    assert rel_err(result.direction_norm, np.linalg.norm(d)) <= RTOL64


def test_flat_and_per_parameter_directions_give_identical_probes():
    """A direction given as one flat vector or as tensors shaped like the
    parameters is the same direction."""
    H, _, _, model, target = setup(7)
    d = torch.tensor(np.random.default_rng(70).normal(size=10))
    flat = probe(model, quadratic_loss(H), None, target, ETAS, direction=d)
    per_parameter = probe(
        model,
        quadratic_loss(H),
        None,
        target,
        ETAS,
        direction=[d[:6].reshape(2, 3), d[6:]],
    )
    for field in ("losses", "gradient_changes", "distances"):
        assert np.array_equal(
            getattr(flat, field), getattr(per_parameter, field)
        )


def test_passing_the_gradient_as_direction_reproduces_the_default():
    """direction = flat_gradient(...) probes exactly what direction=None probes."""
    H, _, _, model, target = setup(8)
    loss_fn = quadratic_loss(H)
    default = probe(model, loss_fn, None, target, ETAS)
    explicit = probe(
        model,
        loss_fn,
        None,
        target,
        ETAS,
        direction=flat_gradient(model, loss_fn, None, target),
    )
    assert np.array_equal(default.losses, explicit.losses)
    assert np.array_equal(default.gradient_changes, explicit.gradient_changes)
    assert default.beta_smoothness == explicit.beta_smoothness


@pytest.mark.parametrize(
    ("dtype", "rtol"), [(torch.float32, 1e-5), (torch.bfloat16, 5e-2)]
)
def test_lower_precision_models_agree_with_the_float64_closed_form(
    dtype, rtol
):
    """A float32 (bfloat16) model gives the closed-form quantities to its own precision."""
    H, w_star, _, model64, _ = setup(9)
    w0 = torch.cat([p.detach().reshape(-1) for p in model64.parts]).numpy()
    model = Quadratic(w0, dtype=dtype)
    w0_rounded = torch.cat([
        p.detach().double().reshape(-1) for p in model.parts
    ]).numpy()
    result = probe(
        model, quadratic_loss(H), None, torch.tensor(w_star, dtype=dtype), ETAS
    )
    losses, changes, _, beta = closed_form(H, w0_rounded, w_star, ETAS)
    assert all(p.dtype == dtype for p in model.parameters())
    assert rel_err(result.losses, losses) <= rtol
    assert rel_err(result.gradient_changes, changes) <= rtol
    assert rel_err(result.beta_smoothness, beta) <= rtol


def quartic_loss(c: np.ndarray):
    """L(w) = sum(w^4 / 4 + (w - c)^2 / 2) as a loss_fn: its Hessian changes along every step."""

    def loss_fn(w, _):
        return (w**4 / 4 + (w - torch.as_tensor(c)) ** 2 / 2).sum()

    return loss_fn


def test_summaries_of_a_non_quadratic_loss_match_an_independent_computation():
    """On L = sum(w^4/4 + (w - c)^2/2) the ratios differ by step; beta is their max, computed
    here from grad = w^3 + w - c."""
    rng = np.random.default_rng(21)
    w0, c = rng.normal(0.0, 1.2, size=10), rng.normal(size=10)
    etas = np.array([0.02, 0.1, 0.3, 0.6])
    result = probe(Quadratic(w0), quartic_loss(c), None, None, etas)

    def grad(w):
        return w**3 + w - c

    def loss(w):
        return float(np.sum(w**4 / 4 + (w - c) ** 2 / 2))

    g = grad(w0)
    changes = np.array([
        np.linalg.norm(grad(w0 - eta * g) - g) for eta in etas
    ])
    ratios = changes / (etas * np.linalg.norm(g))
    losses = np.array([loss(w0 - eta * g) for eta in etas])
    assert (
        ratios.max() > 1.2 * ratios.mean()
    )  # a mean in place of the max would show
    assert rel_err(result.gradient_changes, changes) <= RTOL64
    assert rel_err(result.beta_smoothness, ratios.max()) <= RTOL64
    assert rel_err(result.gradient_predictiveness, changes.max()) <= RTOL64
    assert (
        rel_err(result.loss_variation, losses.max() - losses.min()) <= RTOL64
    )


def test_a_diverged_step_is_recorded_as_infinite_not_raised():
    """L(w) = w^4 stepped far along -g overflows: the loss entry is inf and
    so is the loss variation."""
    model = Quadratic(np.array([1.0]), shapes=((1,),))
    result = probe(model, lambda w, _: (w**4).sum(), None, None, [0.1, 1e80])
    assert np.isfinite(result.losses[0]) and np.isinf(result.losses[1])
    assert np.isinf(result.loss_variation)


# --- networks: train/eval mode, BN statistics, random draws, restored state --------------


def reference(net, loss_fn, x, y, eta, direction=None, rng_state=None):
    """Loss and gradient change at w - eta d, computed on a deep copy with .backward().

    Only the parameters with requires_grad move and count; ``direction`` is one tensor per
    such parameter (default: the gradient)."""

    def trainable(model):
        return [p for p in model.parameters() if p.requires_grad]

    ref = copy.deepcopy(net)
    if rng_state is not None:
        torch.set_rng_state(rng_state)
    loss_fn(ref(x), y).backward()
    g = [p.grad.clone() for p in trainable(ref)]
    d = g if direction is None else direction
    ref = copy.deepcopy(net)
    with torch.no_grad():
        for p, step in zip(trainable(ref), d, strict=True):
            p -= eta * step
    if rng_state is not None:
        torch.set_rng_state(rng_state)
    loss = loss_fn(ref(x), y)
    loss.backward()
    change = math.sqrt(
        sum(
            float(((p.grad - gi) ** 2).sum())
            for p, gi in zip(trainable(ref), g, strict=True)
        )
    )
    return loss.item(), change


def test_train_mode_probe_uses_batch_statistics():
    """In training mode the probed losses and gradient changes are those of the BN
    net with batch statistics."""
    net, (x, y) = bn_net(), bn_batch()
    net.train()
    result = probe(net, nn.functional.cross_entropy, x, y, [0.5, 2.0])
    for k, eta in enumerate((0.5, 2.0)):
        loss, change = reference(net, nn.functional.cross_entropy, x, y, eta)
        assert rel_err(result.losses[k], loss) <= RTOL64
        assert rel_err(result.gradient_changes[k], change) <= RTOL64


def test_eval_mode_probe_uses_running_statistics():
    """In evaluation mode the probe measures the net with its running
    statistics, a different function."""
    net, (x, y) = bn_net(), bn_batch()
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    net.eval()
    result = probe(net, nn.functional.cross_entropy, x, y, [1.0])
    loss, change = reference(net, nn.functional.cross_entropy, x, y, 1.0)
    assert (
        rel_err(result.losses[0], loss) <= RTOL64
        and rel_err(result.gradient_changes[0], change) <= RTOL64
    )
    net.train()
    assert (
        abs(
            probe(net, nn.functional.cross_entropy, x, y, [1.0]).losses[0]
            - loss
        )
        > 1e-3
    )


def test_probe_restores_parameters_bn_buffers_and_train_flag():
    """After a train-mode probe the parameters, running stats,
    num_batches_tracked and flags are unchanged."""
    net, (x, y) = bn_net(), bn_batch()
    net.train()
    net[2].eval()  # a mixed state must come back as it was, too
    before = state_of(net)
    probe(net, nn.functional.cross_entropy, x, y, [0.1, 1.0, 4.0])
    assert_same_state(net, before)
    assert int(net[1].num_batches_tracked) == 0


def test_probe_keeps_the_parameter_objects_and_their_grad():
    """The parameters stay the same objects and a .grad the caller holds is untouched."""
    net, (x, y) = bn_net(), bn_batch()
    params = list(net.parameters())
    for p in params:
        p.grad = torch.full_like(p, 7.0)
    probe(net, nn.functional.cross_entropy, x, y, [1.0])
    assert all(a is b for a, b in zip(params, net.parameters(), strict=True))
    assert all(torch.equal(p.grad, torch.full_like(p, 7.0)) for p in params)


def test_state_is_restored_when_the_loss_raises_midway():
    """A loss_fn that raises on its third call propagates the error and
    leaves the model as it was."""
    net, (x, y) = bn_net(), bn_batch()
    net.train()
    before = state_of(net)
    calls = []

    def failing(out, target):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return nn.functional.cross_entropy(out, target)

    with pytest.raises(RuntimeError, match="boom"):
        probe(net, failing, x, y, [0.5, 1.0, 2.0])
    assert_same_state(net, before)


def test_every_evaluation_sees_the_same_random_draws_and_the_rng_is_left_as_found():
    """With dropout, each probed point uses the draws the gradient at w used; the
    global RNG state is unchanged."""
    net, (x, y) = bn_net(dropout=0.5), bn_batch()
    net.train()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    result = probe(net, nn.functional.cross_entropy, x, y, [0.5, 1.0])
    assert torch.equal(torch.get_rng_state(), state)
    for k, eta in enumerate((0.5, 1.0)):
        loss, change = reference(
            net, nn.functional.cross_entropy, x, y, eta, rng_state=state
        )
        assert (
            rel_err(result.losses[k], loss) <= RTOL64
            and rel_err(result.gradient_changes[k], change) <= RTOL64
        )
    torch.set_rng_state(
        state
    )  # the references drew numbers; start again where the probe started
    again = probe(net, nn.functional.cross_entropy, x, y, [0.5, 1.0])
    assert np.array_equal(result.losses, again.losses)


def test_flat_gradient_matches_backward_and_changes_nothing():
    """flat_gradient equals the concatenated .grad of loss.backward() and
    leaves the model as it was."""
    net, (x, y) = bn_net(), bn_batch()
    before = state_of(net)
    g = flat_gradient(net, nn.functional.cross_entropy, x, y)
    assert_same_state(net, before)
    ref = copy.deepcopy(net)
    nn.functional.cross_entropy(ref(x), y).backward()
    expected = torch.cat([p.grad.reshape(-1) for p in ref.parameters()])
    assert rel_err(g.numpy(), expected.numpy()) <= RTOL64


def frozen_net() -> nn.Sequential:
    """bn_net with the first weight frozen (requires_grad=False)."""
    net = bn_net()
    net[0].weight.requires_grad_(False)
    return net


def test_frozen_parameters_are_not_probed():
    """Parameters with requires_grad=False are not trainable and the flat gradient skips them."""
    net, (x, y) = frozen_net(), bn_batch()
    trainable = trainable_parameters(net)
    assert all(p is not net[0].weight for p in trainable)
    assert flat_gradient(
        net, nn.functional.cross_entropy, x, y
    ).numel() == sum(p.numel() for p in trainable)


def test_a_frozen_parameter_keeps_its_value_during_a_probe():
    """Along a direction of ones over the trainable parameters, the frozen weight is never moved."""
    net, (x, y) = frozen_net(), bn_batch()
    frozen = net[0].weight.detach().clone()
    size = sum(p.numel() for p in trainable_parameters(net))
    probe(
        net,
        nn.functional.cross_entropy,
        x,
        y,
        [0.5, 1.0],
        direction=torch.ones(size, dtype=torch.float64),
    )
    assert torch.equal(net[0].weight, frozen)


def test_a_probe_with_frozen_parameters_matches_the_reference():
    """Losses and gradient changes equal those of the .backward() reference moving only
    the trainable parameters."""
    net, (x, y) = frozen_net(), bn_batch()
    ones = [torch.ones_like(p) for p in trainable_parameters(net)]
    result = probe(
        net, nn.functional.cross_entropy, x, y, [0.5, 1.0], direction=ones
    )
    for k, eta in enumerate((0.5, 1.0)):
        loss, change = reference(
            net, nn.functional.cross_entropy, x, y, eta, direction=ones
        )
        assert rel_err(result.losses[k], loss) <= RTOL64
        assert rel_err(result.gradient_changes[k], change) <= RTOL64


# --- noise layers with their own torch.Generator ------------------------------------------


def noise_net(norm: str = "noise") -> nn.Sequential:
    """vgg with Santurkar et al.'s noise layers, all drawing from one generator seeded 0."""
    torch.manual_seed(0)
    return vgg(norm, widths=(4, 8), hidden=16, generator=0).double()


def noise_batch():
    """Ten 8x8 single-channel images of N(0, 1) values and their labels, drawn with seed 1."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(
        10, 1, 8, 8, generator=g, dtype=torch.float64
    ), torch.randint(0, 10, (10,), generator=g)


def generator_states(net: nn.Module) -> list[torch.Tensor]:
    """The states of the generators the net's modules hold."""
    return [g.get_state() for g in module_generators(net)]


def test_the_noise_layers_share_one_generator():
    """vgg(..., generator=0) gives every noise layer the same generator,
    which the helper lists once."""
    net = noise_net()
    gens = module_generators(net)
    assert len(gens) == 1 and all(
        m.generator is gens[0]
        for m in net.modules()
        if hasattr(m, "generator")
    )


@pytest.mark.parametrize("norm", ["noise", "noisy_batch"])
def test_a_tiny_step_changes_the_gradient_of_a_noise_net_by_about_zero(norm):
    """With noise layers on their own generator, a step of 1e-9 changes the
    gradient by O(1e-9) (same noise)."""
    net, (x, y) = noise_net(norm), noise_batch()
    result = probe(net, nn.functional.cross_entropy, x, y, [1e-9])
    assert result.gradient_norm > 0.1
    assert result.gradient_changes[0] <= 1e-6 * result.gradient_norm


@pytest.mark.parametrize("norm", ["noise", "noisy_batch"])
def test_probe_leaves_the_noise_generators_as_found(norm):
    """After a probe the noise layers' generator has the state it had before."""
    net, (x, y) = noise_net(norm), noise_batch()
    before = generator_states(net)
    probe(net, nn.functional.cross_entropy, x, y, [0.1, 1.0])
    assert all(
        torch.equal(a, b)
        for a, b in zip(generator_states(net), before, strict=True)
    )


def test_noise_generators_are_restored_when_the_loss_raises():
    """A loss_fn that raises midway leaves the noise layers' generator as it was."""
    net, (x, y) = noise_net(), noise_batch()
    before = generator_states(net)
    calls = []

    def failing(out, target):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return nn.functional.cross_entropy(out, target)

    with pytest.raises(RuntimeError, match="boom"):
        probe(net, failing, x, y, [0.5, 1.0])
    assert all(
        torch.equal(a, b)
        for a, b in zip(generator_states(net), before, strict=True)
    )


def test_flat_gradient_leaves_the_noise_generators_as_found():
    """flat_gradient draws noise once and puts the noise layers' generator back."""
    net, (x, y) = noise_net(), noise_batch()
    before = generator_states(net)
    flat_gradient(net, nn.functional.cross_entropy, x, y)
    assert all(
        torch.equal(a, b)
        for a, b in zip(generator_states(net), before, strict=True)
    )


def test_probing_does_not_change_the_next_training_draw():
    """The noise of the training step after a probe is the noise it would
    have had without the probe."""
    net, (x, y) = noise_net(), noise_batch()
    twin = copy.deepcopy(net)
    probe(net, nn.functional.cross_entropy, x, y, [0.5])
    assert torch.equal(net(x), twin(x))


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step_sizes", "error", "message"),
    [
        ([], ValueError, "non-empty 1-D"),
        ([[0.1, 0.2]], ValueError, "non-empty 1-D"),
        ([0.1, 0.0], ValueError, "positive and finite"),
        ([-0.1], ValueError, "positive and finite"),
        ([float("nan")], ValueError, "positive and finite"),
        ([float("inf")], ValueError, "positive and finite"),
        (["a"], TypeError, "real numbers"),
    ],
)
def test_bad_step_sizes_are_refused_and_change_nothing(
    step_sizes, error, message
):
    """Step sizes must be a non-empty 1-D sequence of positive finite numbers."""
    net, (x, y) = bn_net(), bn_batch()
    before = state_of(net)
    with pytest.raises(error, match=message):
        probe(net, nn.functional.cross_entropy, x, y, step_sizes)
    assert_same_state(net, before)


def _directions(net):
    params = list(net.parameters())
    size = sum(p.numel() for p in params)
    return [
        (
            torch.ones(size + 1, dtype=torch.float64),
            ValueError,
            "1-D tensor of",
        ),
        (
            torch.ones(1, size, dtype=torch.float64),
            ValueError,
            "1-D tensor of",
        ),
        (torch.ones(size, dtype=torch.int64), TypeError, "floating dtype"),
        (
            [torch.ones_like(p) for p in params[:-1]],
            ValueError,
            "one tensor per trainable parameter",
        ),
        (
            [torch.ones(p.numel(), dtype=torch.float64) for p in params],
            ValueError,
            "its parameter's shape",
        ),
        (
            [np.ones(p.shape) for p in params],
            TypeError,
            "must be a torch.Tensor",
        ),
        (np.ones(size), TypeError, "direction must be None"),
        (
            torch.full((size,), float("nan"), dtype=torch.float64),
            ValueError,
            "non-finite",
        ),
        (torch.zeros(size, dtype=torch.float64), ValueError, "norm zero"),
    ]


@pytest.mark.parametrize("case", range(9))
def test_bad_directions_are_refused_and_change_nothing(case):
    """A direction of the wrong size, shape, type or dtype, non-finite or
    zero, raises a clear error."""
    net, (x, y) = bn_net(), bn_batch()
    direction, error, message = _directions(net)[case]
    before = state_of(net)
    with pytest.raises(error, match=message):
        probe(
            net, nn.functional.cross_entropy, x, y, [1.0], direction=direction
        )
    assert_same_state(net, before)


def test_a_model_without_trainable_parameters_is_refused():
    """Nothing to probe: a ValueError names the missing trainable parameters."""
    net, (x, y) = bn_net(), bn_batch()
    net.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        probe(net, nn.functional.cross_entropy, x, y, [1.0])
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        probe(lambda v: v, nn.functional.cross_entropy, x, y, [1.0])


def test_a_non_scalar_loss_is_refused_and_changes_nothing():
    """loss_fn must return a floating scalar; the BN statistics the
    forward pass touched come back."""
    net, (x, y) = bn_net(), bn_batch()
    before = state_of(net)
    with pytest.raises(ValueError, match="floating scalar tensor"):
        probe(
            net,
            lambda out, t: nn.functional.cross_entropy(
                out, t, reduction="none"
            ),
            x,
            y,
            [1.0],
        )
    assert_same_state(net, before)


def test_a_non_finite_loss_at_w_is_refused_and_changes_nothing():
    """A nan loss at the starting point raises a ValueError (it is not a landscape to probe)."""
    net, (x, y) = bn_net(), bn_batch()
    before = state_of(net)
    with pytest.raises(ValueError, match="not finite"):
        probe(
            net,
            lambda out, t: nn.functional.cross_entropy(out, t) * float("nan"),
            x,
            y,
            [1.0],
        )
    assert_same_state(net, before)


def test_a_zero_gradient_is_refused_without_a_direction():
    """At the minimum of the quadratic there is no gradient direction; a
    given direction still works."""
    H = spd(np.random.default_rng(0), 3)
    w_star = np.array([1.0, -2.0, 0.5])
    model = Quadratic(w_star, shapes=((3,),))
    with pytest.raises(ValueError, match="gradient is zero"):
        probe(model, quadratic_loss(H), None, torch.tensor(w_star), [1.0])
    d = np.array([1.0, 0.0, 0.0])
    result = probe(
        model,
        quadratic_loss(H),
        None,
        torch.tensor(w_star),
        [1.0],
        direction=torch.tensor(d),
    )
    assert rel_err(result.beta_smoothness, np.linalg.norm(H @ d)) <= RTOL64
