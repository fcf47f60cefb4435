"""BN(aWu) = BN(Wu): the output, the input gradient and the 1/a weight gradient
(Ioffe & Szegedy, Sec. 3.3)."""

import numpy as np
import torch
from helpers import rel_err
from hypothesis import given, settings
from hypothesis import strategies as st

from bnnotes.scale_invariance import bn_linear, bn_linear_grads, effective_step


def _problem(seed):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(10, 6)),
        rng.normal(size=(4, 6)),
        rng.normal(size=(10, 4)),
    )


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31), st.floats(1e-3, 1e3))
def test_output_and_input_gradient_are_invariant_and_weight_gradient_scales(
    seed, a
):
    """At eps = 0: BN((aW)u) = BN(Wu), d/du is unchanged and d/d(aW) =
    (1/a) d/dW, to 1e-9 relative."""
    u, w, dy = _problem(seed)
    assert rel_err(bn_linear(u, a * w), bn_linear(u, w)) <= 1e-9
    du1, dw1 = bn_linear_grads(u, w, dy)
    dua, dwa = bn_linear_grads(u, a * w, dy)
    assert rel_err(dua, du1) <= 1e-9
    assert rel_err(dwa, dw1 / a) <= 1e-9


def test_with_eps_scaling_w_equals_dividing_eps_by_a_squared():
    """BN_eps((aW)u) = BN_{eps/a^2}(Wu): the only effect of eps under a rescaling of W."""
    u, w, _ = _problem(1)
    for a in (0.01, 3.0, 100.0):
        assert (
            rel_err(
                bn_linear(u, a * w, eps=1e-3), bn_linear(u, w, eps=1e-3 / a**2)
            )
            <= 1e-12
        )


def test_gradients_match_torch_autograd():
    """bn_linear_grads equals autograd through F.batch_norm(u @ W.T) in float64."""
    u, w, dy = _problem(2)
    ut = torch.from_numpy(u).requires_grad_()
    wt = torch.from_numpy(w).requires_grad_()
    y = torch.nn.functional.batch_norm(
        ut @ wt.T, None, None, training=True, eps=1e-3
    )
    y.backward(torch.from_numpy(dy))
    du, dw = bn_linear_grads(u, w, dy, eps=1e-3)
    assert rel_err(du, ut.grad.numpy()) <= 1e-10
    assert rel_err(dw, wt.grad.numpy()) <= 1e-10


def test_effective_step_falls_as_one_over_a_squared():
    """The relative SGD step ||lr grad|| / ||W|| of a scale-invariant layer falls as 1/a^2."""
    u, w, dy = _problem(3)
    base = effective_step(w, bn_linear_grads(u, w, dy)[1], lr=0.1)
    for a in (2.0, 10.0):
        step = effective_step(a * w, bn_linear_grads(u, a * w, dy)[1], lr=0.1)
        assert abs(step * a**2 / base - 1) <= 1e-9


def test_eps_zero_rejects_a_constant_unit():
    """With eps = 0 a unit that does not vary over the batch is an error, not a division by zero."""
    u = np.ones((4, 3))
    try:
        bn_linear(u, np.ones((2, 3)))
    except ValueError as error:
        assert "vary over the mini-batch" in str(error)
    else:
        raise AssertionError("expected ValueError")
