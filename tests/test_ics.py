"""bnnotes.ics: Definition 2.1 of Santurkar et al. (2018), gradient-based
internal covariate shift."""

import numpy as np
import pytest
import torch
from helpers import RTOL64, rel_err
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from bnnotes.ics import gradient_ics, preceding_parameters
from bnnotes.models import deep_linear, vgg, weight_layers


def half_squared_error(out, target):
    """0.5 * sum of squared errors: the loss of the closed-form tests."""
    return 0.5 * ((out - target) ** 2).sum()


def bn_mlp(seed=0):
    """Linear -> BN -> ReLU -> Linear -> BN -> ReLU -> Linear in float64."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(5, 6, bias=False),
        nn.BatchNorm1d(6),
        nn.ReLU(),
        nn.Linear(6, 7, bias=False),
        nn.BatchNorm1d(7),
        nn.ReLU(),
        nn.Linear(7, 3),
    ).double()


def batch(n=12, d=5, classes=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randint(
        0, classes, (n,), generator=g
    )


def test_two_layer_linear_matches_closed_form():
    """For h = x W1^T + b1, f = h W2^T + b2 and L = ||f - y||^2 / 2, ICS of layer 2 is the
    closed-form ||G2 - G2'||."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 3)).double()
    x = torch.randn(9, 4, dtype=torch.float64)
    y = torch.randn(9, 3, dtype=torch.float64)
    lr = 0.05
    W1, b1, W2, b2 = (
        p.detach().numpy().copy()
        for p in (net[0].weight, net[0].bias, net[1].weight, net[1].bias)
    )
    X, Y = x.numpy(), y.numpy()

    def grads(W1, b1):
        H = X @ W1.T + b1
        R = H @ W2.T + b2 - Y
        back = R @ W2
        return (back.T @ X, back.sum(0)), (R.T @ H, R.sum(0))

    (gW1, gb1), (gW2, gb2) = grads(W1, b1)
    _, (gW2s, gb2s) = grads(W1 - lr * gW1, b1 - lr * gb1)
    G = np.concatenate([gW2.ravel(), gb2])
    Gs = np.concatenate([gW2s.ravel(), gb2s])
    expected_l2 = np.linalg.norm(G - Gs)
    expected_cos = G @ Gs / (np.linalg.norm(G) * np.linalg.norm(Gs))

    result = gradient_ics(net, half_squared_error, x, y, lr)
    assert expected_l2 > 1e-3  # the case is not degenerate
    assert rel_err(result.l2[1], expected_l2) <= RTOL64
    assert abs(result.cosine[1] - expected_cos) <= RTOL64
    assert (
        rel_err(
            result.grad_norm,
            [
                np.linalg.norm(np.concatenate([gW1.ravel(), gb1])),
                np.linalg.norm(G),
            ],
        )
        <= RTOL64
    )
    assert rel_err(result.shifted_grad_norm[1], np.linalg.norm(Gs)) <= RTOL64


def test_first_layer_has_zero_ics_and_unit_cosine():
    """Layer 1 has no preceding layer, so G' = G: ICS exactly 0 and cosine exactly 1."""
    x, y = batch()
    torch.manual_seed(0)
    dln = deep_linear(dim=5, depth=4, norm="batch").double()
    cases = [
        (bn_mlp(), nn.CrossEntropyLoss(), y),
        (dln, half_squared_error, torch.randn(12, 5, dtype=torch.float64)),
    ]
    for net, loss_fn, target in cases:
        result = gradient_ics(net, loss_fn, x, target, lr=0.3)
        assert result.l2[0] == 0.0 and result.cosine[0] == 1.0
        assert np.all(result.l2[1:] > 0)  # later layers do shift


def test_frozen_earlier_layers_give_zero_ics():
    """If every parameter before the measured layer is frozen, nothing moves and
    G' = G (a real second pass)."""
    net = bn_mlp()
    for module in list(net)[:6]:
        for p in module.parameters():
            p.requires_grad_(False)
    x, y = batch()
    result = gradient_ics(
        net, nn.CrossEntropyLoss(), x, y, lr=0.5, layers=[net[6]]
    )
    assert result.grad_norm[0] > 0
    assert result.l2[0] <= 1e-14 * result.grad_norm[0]
    assert abs(result.cosine[0] - 1.0) <= 1e-14


def test_bn_affine_parameters_step_with_the_preceding_block():
    """G' of a layer is the gradient after every earlier weight, bias, gamma and beta took an
    SGD step (autograd replica)."""
    net = bn_mlp()
    for bn in (net[1], net[4]):  # make gamma and beta matter
        nn.init.uniform_(bn.weight, 0.5, 1.5)
        nn.init.uniform_(bn.bias, -0.5, 0.5)
    x, y = batch()
    lr, loss_fn = 0.2, nn.CrossEntropyLoss()
    result = gradient_ics(net, loss_fn, x, y, lr)

    replica = bn_mlp()
    replica.load_state_dict(net.state_dict())
    params = list(replica.parameters())
    grads = torch.autograd.grad(loss_fn(replica(x), y), params)
    with torch.no_grad():
        for p, g in zip(
            params[:6], grads[:6], strict=True
        ):  # W1, gamma1, beta1, W2, gamma2, beta2
            p.sub_(lr * g)
    w3, b3 = replica[6].weight, replica[6].bias
    shifted = torch.autograd.grad(loss_fn(replica(x), y), [w3, b3])
    g = torch.cat([grads[6].reshape(-1), grads[7]])
    gs = torch.cat([s.reshape(-1) for s in shifted])
    assert rel_err(result.l2[2], (g - gs).norm().item()) <= RTOL64


def test_bn_after_the_measured_layer_does_not_step():
    """The gamma and beta that follow layer i are not among the
    parameters updated before layer i."""
    net = bn_mlp()
    before = {id(p) for p in preceding_parameters(net, net[3])}
    assert {id(net[0].weight), id(net[1].weight), id(net[1].bias)} == before


def test_model_state_is_restored():
    """Parameters, BN running statistics, num_batches_tracked, .grad, the mode and
    the RNG state are unchanged."""
    net = vgg("batch", widths=(4, 8), hidden=16).double()
    x = torch.rand(10, 1, 8, 8, dtype=torch.float64)
    y = torch.randint(0, 10, (10,))
    nn.CrossEntropyLoss()(
        net(x), y
    ).backward()  # leave some .grad and running stats behind
    state = {k: v.clone() for k, v in net.state_dict().items()}
    grads = [p.grad.clone() for p in net.parameters()]
    rng = torch.get_rng_state()
    gradient_ics(net, nn.CrossEntropyLoss(), x, y, lr=0.1)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert all(
        torch.equal(g, p.grad)
        for g, p in zip(grads, net.parameters(), strict=True)
    )
    assert net.training and torch.equal(rng, torch.get_rng_state())


def test_state_is_restored_after_an_error():
    """A loss that turns non-finite on the second pass raises, and the model is left as it was."""
    net = bn_mlp()
    x, y = batch()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    calls = []

    def flaky_loss(out, target):
        calls.append(1)
        loss = nn.functional.cross_entropy(out, target)
        return loss if len(calls) == 1 else loss * float("nan")

    with pytest.raises(ValueError, match="not finite"):
        gradient_ics(net, flaky_loss, x, y, lr=0.1)
    assert len(calls) == 2
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())


def test_stochastic_layers_draw_the_same_noise_for_g_and_g_prime():
    """With dropout and frozen earlier layers, G' = G: every pass sees the same random draw."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(5, 16), nn.Dropout(0.5), nn.Linear(16, 3)
    ).double()
    net[0].requires_grad_(False)
    x, y = batch()
    result = gradient_ics(
        net, nn.CrossEntropyLoss(), x, y, lr=0.5, layers=[net[2]]
    )
    assert (
        result.grad_norm[0] > 0 and result.l2[0] <= 1e-14 * result.grad_norm[0]
    )


def test_default_layers_are_the_weight_layers():
    """Without `layers`, one entry per Conv2d/Linear module, in forward order."""
    net = vgg("batch", widths=(4, 8), hidden=16).double()
    x = torch.rand(10, 1, 8, 8, dtype=torch.float64)
    y = torch.randint(0, 10, (10,))
    result = gradient_ics(net, nn.CrossEntropyLoss(), x, y, lr=0.1)
    explicit = gradient_ics(
        net, nn.CrossEntropyLoss(), x, y, lr=0.1, layers=weight_layers(net)
    )
    assert len(result.l2) == len(weight_layers(net)) == 6
    assert np.array_equal(result.l2, explicit.l2)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), lr=st.floats(1e-3, 2.0))
def test_l2_and_cosine_agree_with_the_law_of_cosines(seed, lr):
    """l2^2 = |G|^2 + |G'|^2 - 2 cos |G| |G'| and -1 <= cos <= 1 for random
    networks and learning rates."""
    net = bn_mlp(seed)
    x, y = batch(seed=seed + 1)
    r = gradient_ics(net, nn.CrossEntropyLoss(), x, y, lr)
    assert np.all(np.abs(r.cosine) <= 1.0)
    rhs = (
        r.grad_norm**2
        + r.shifted_grad_norm**2
        - 2 * r.cosine * r.grad_norm * r.shifted_grad_norm
    )
    scale = (r.grad_norm + r.shifted_grad_norm) ** 2
    assert np.all(np.abs(r.l2**2 - rhs) <= 1e-12 * scale)


def test_ics_is_first_order_in_lr():
    """For small lr, G' - G is first order in lr: halving lr halves the ICS up to O(lr^2)."""
    net = bn_mlp()
    x, y = batch()
    small = gradient_ics(net, nn.CrossEntropyLoss(), x, y, lr=1e-4).l2[1:]
    smaller = gradient_ics(net, nn.CrossEntropyLoss(), x, y, lr=5e-5).l2[1:]
    assert np.all(np.abs(small / smaller - 2.0) <= 1e-3)


@pytest.mark.parametrize(
    "lr", [0.0, -0.1, float("nan"), float("inf"), True, "0.1"]
)
def test_bad_learning_rate_is_refused(lr):
    """lr must be a finite number > 0."""
    net = bn_mlp()
    x, y = batch()
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        gradient_ics(net, nn.CrossEntropyLoss(), x, y, lr)


def test_no_layers_is_refused():
    """A model without Conv/Linear layers, or an empty `layers`, raises."""
    x, y = batch()
    with pytest.raises(ValueError, match="no layers"):
        gradient_ics(
            nn.Sequential(nn.ReLU()), nn.CrossEntropyLoss(), x, y, 0.1
        )
    with pytest.raises(ValueError, match="no layers"):
        gradient_ics(bn_mlp(), nn.CrossEntropyLoss(), x, y, 0.1, layers=[])


def test_layer_without_trainable_parameters_is_refused():
    """A ReLU or a frozen layer has no gradient to measure."""
    net = bn_mlp()
    x, y = batch()
    with pytest.raises(
        ValueError, match=r"layers\[0\] \(ReLU\) has no parameter"
    ):
        gradient_ics(net, nn.CrossEntropyLoss(), x, y, 0.1, layers=[net[2]])
    net[0].requires_grad_(False)
    with pytest.raises(
        ValueError, match=r"layers\[0\] \(Linear\) has no parameter"
    ):
        gradient_ics(net, nn.CrossEntropyLoss(), x, y, 0.1)


class WithUnusedLayer(nn.Module):
    """Two linear layers in the forward pass and a third that is never called."""

    def __init__(self):
        super().__init__()
        self.first, self.unused, self.second = (
            nn.Linear(5, 4),
            nn.Linear(4, 4),
            nn.Linear(4, 3),
        )

    def forward(self, x):
        return self.second(torch.relu(self.first(x)))


def test_layer_the_loss_does_not_use_is_refused():
    """A layer outside the computation of the loss gets no gradient and raises, naming it."""
    net = WithUnusedLayer().double()
    x, y = batch()
    with pytest.raises(
        ValueError, match=r"layers\[1\] \(Linear\) gets no gradient"
    ):
        gradient_ics(net, nn.CrossEntropyLoss(), x, y, 0.1)


def test_foreign_and_repeated_layers_are_refused():
    """Layers must be submodules of the model, each listed once."""
    net = bn_mlp()
    x, y = batch()
    with pytest.raises(ValueError, match="not a submodule"):
        gradient_ics(
            net, nn.CrossEntropyLoss(), x, y, 0.1, layers=[nn.Linear(5, 6)]
        )
    with pytest.raises(ValueError, match="listed twice"):
        gradient_ics(
            net, nn.CrossEntropyLoss(), x, y, 0.1, layers=[net[0], net[0]]
        )
    with pytest.raises(TypeError, match="sequence of modules"):
        gradient_ics(net, nn.CrossEntropyLoss(), x, y, 0.1, layers=net[0])


def test_non_scalar_loss_is_refused():
    """loss_fn must return a scalar."""
    net = bn_mlp()
    x, y = batch()
    with pytest.raises(ValueError, match="must return a scalar"):
        gradient_ics(net, nn.CrossEntropyLoss(reduction="none"), x, y, 0.1)


# --- noise layers with their own torch.Generator ------------------------------------------


def noise_net(norm="noise"):
    """vgg with Santurkar et al.'s noise layers, all drawing from one generator seeded 0."""
    torch.manual_seed(0)
    return vgg(norm, widths=(4, 8), hidden=16, generator=0).double()


def noise_batch():
    """Ten 8x8 single-channel images of N(0, 1) values and their labels, drawn with seed 1."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(
        10, 1, 8, 8, generator=g, dtype=torch.float64
    ), torch.randint(0, 10, (10,), generator=g)


def noise_generators(net):
    """The distinct generators of the net's noise layers."""
    return list(
        {
            id(m.generator): m.generator
            for m in net.modules()
            if hasattr(m, "generator")
        }.values()
    )


@pytest.mark.parametrize("norm", ["noise", "noisy_batch"])
def test_a_tiny_lr_gives_about_zero_ics_with_noise_layers(norm):
    """With noise layers on their own generator, lr = 1e-9 gives ICS of order 1e-9
    (G and G' see the same noise)."""
    net = noise_net(norm)
    x, y = noise_batch()
    result = gradient_ics(net, nn.CrossEntropyLoss(), x, y, lr=1e-9)
    assert np.all(result.grad_norm > 1e-2)
    assert np.all(result.l2 <= 1e-6 * result.grad_norm)


@pytest.mark.parametrize("norm", ["noise", "noisy_batch"])
def test_noise_generators_are_left_as_found(norm):
    """After gradient_ics the noise layers' generator has the state it had before."""
    net = noise_net(norm)
    x, y = noise_batch()
    (generator,) = noise_generators(net)
    before = generator.get_state()
    gradient_ics(net, nn.CrossEntropyLoss(), x, y, lr=0.1)
    assert torch.equal(generator.get_state(), before)


def test_noise_generators_are_restored_after_an_error():
    """A loss that turns non-finite on the second pass raises and leaves the noise
    layers' generator as it was."""
    net = noise_net()
    x, y = noise_batch()
    (generator,) = noise_generators(net)
    before = generator.get_state()
    calls = []

    def flaky_loss(out, target):
        calls.append(1)
        loss = nn.functional.cross_entropy(out, target)
        return loss if len(calls) == 1 else loss * float("nan")

    with pytest.raises(ValueError, match="not finite"):
        gradient_ics(net, flaky_loss, x, y, lr=0.1)
    assert torch.equal(generator.get_state(), before)
