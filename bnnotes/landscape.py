r"""Landscape probes along a direction: the measurements of Santurkar et al. (2018, §3.2).

At parameters $w$ with gradient $g = \nabla\mathcal L(w)$, a probe moves along a direction
$d$ (by default $d = g$, the direction a gradient step takes) with several step sizes
$\eta_1, \dots, \eta_K > 0$ and records, at each $w - \eta_k d$,

$$\mathcal L(w - \eta_k d), \qquad
\big\lVert \nabla\mathcal L(w - \eta_k d) - g \big\rVert_2, \qquad
\eta_k \lVert d \rVert_2 .$$

Three summaries follow, the quantities of Santurkar et al. (2018, §3.2, Fig. 4):

$$\text{variation of loss} = \max_k \mathcal L(w - \eta_k d) - \min_k \mathcal L(w - \eta_k d),$$

$$\text{gradient predictiveness} = \max_k
\big\lVert \nabla\mathcal L(w - \eta_k d) - g \big\rVert_2,$$

$$\beta_{\text{eff}} = \max_k
\frac{\lVert \nabla\mathcal L(w - \eta_k d) - g \rVert_2}{\eta_k \lVert d \rVert_2}.$$

The first is the range of the loss values met at the probed points. It is not divided by a
distance, so it is no Lipschitz constant, only a measure of how much the loss changes over
a step (which a small Lipschitz constant of the loss keeps small). The second is the upper edge
of the band Santurkar et al. plot for gradient predictiveness (their Figure 4 shades the
range of $\lVert \nabla\mathcal L(w - \eta_k d) - g \rVert_2$ over the step sizes; this
module reports its maximum). The last is a sampled view of the $\beta$-smoothness (the
Lipschitz constant of the gradient): every $\beta$ for which $\mathcal L$ is $\beta$-smooth
bounds $\beta_{\text{eff}}$ from above.

References
----------
- S. Santurkar, D. Tsipras, A. Ilyas and A. Madry, "How Does Batch Normalization Help
  Optimization?", NeurIPS 2018, arXiv:1805.11604, Section 3.2 and Figure 4.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from bnnotes._torch_state import GeneratorStates

__all__ = ["LandscapeProbe", "flat_gradient", "probe", "trainable_parameters"]


@dataclass(frozen=True)
class LandscapeProbe:
    r"""What one probe measured.

    Attributes
    ----------
    step_sizes : numpy.ndarray
        The step sizes $\eta_k$, float64, in the order given.
    losses : numpy.ndarray
        $\mathcal L(w - \eta_k d)$ at each step size.
    gradient_changes : numpy.ndarray
        $\lVert \nabla\mathcal L(w - \eta_k d) - g \rVert_2$ at each step size.
    distances : numpy.ndarray
        $\eta_k \lVert d \rVert_2$, how far each probed point lies from $w$.
    loss_variation : float
        ``losses.max() - losses.min()``.
    gradient_predictiveness : float
        ``gradient_changes.max()``, the upper edge of the band that Santurkar et al. (2018,
        Fig. 4) plot over the step sizes.
    beta_smoothness : float
        ``(gradient_changes / distances).max()``, the effective $\beta$-smoothness.
    loss : float
        $\mathcal L(w)$, the loss at the probed parameters themselves.
    gradient_norm : float
        $\lVert g \rVert_2$.
    direction_norm : float
        $\lVert d \rVert_2$ (equal to ``gradient_norm`` when probing along the gradient).

    Notes
    -----
    A probed point where the loss or the gradient is not finite (a diverged step) gives a
    nan or inf entry, and the summaries over that probe are then nan or inf as well.

    Examples
    --------
    >>> import torch
    >>> from bnnotes.landscape import probe
    >>> net = torch.nn.Linear(1, 1, bias=False, dtype=torch.float64)
    >>> x = torch.ones(1, 1, dtype=torch.float64)
    >>> y = torch.zeros(1, 1, dtype=torch.float64)
    >>> r = probe(net, torch.nn.functional.mse_loss, x, y, [0.1, 0.2])
    >>> r.step_sizes.tolist(), round(r.beta_smoothness, 12)  # L = w^2: beta 2
    ([0.1, 0.2], 2.0)
    """

    step_sizes: np.ndarray
    losses: np.ndarray
    gradient_changes: np.ndarray
    distances: np.ndarray
    loss_variation: float
    gradient_predictiveness: float
    beta_smoothness: float
    loss: float
    gradient_norm: float
    direction_norm: float


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters of ``model`` with ``requires_grad``, in ``model.parameters()`` order.

    Parameters
    ----------
    model : torch.nn.Module
        Any module.

    Returns
    -------
    list of torch.nn.Parameter
        Shared parameters appear once. These are the coordinates $w$ that a probe moves.

    Raises
    ------
    TypeError
        If ``model`` is not a ``torch.nn.Module``.
    ValueError
        If it has no trainable parameter, or one that is not of a floating dtype.

    Examples
    --------
    >>> import torch
    >>> from bnnotes.landscape import trainable_parameters
    >>> net = torch.nn.Sequential(
    ...     torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2)
    ... )
    >>> [tuple(p.shape) for p in trainable_parameters(net)]
    [(2, 3), (2,), (2,), (2,)]
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module, got {type(model).__name__}"
        )
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(
            "model has no trainable parameters (none with requires_grad=True)"
        )
    for p in params:
        if not p.dtype.is_floating_point:
            raise ValueError(
                f"trainable parameters must have a floating dtype, got {p.dtype}"
            )
    return params


def _step_sizes(step_sizes) -> np.ndarray:
    if isinstance(step_sizes, torch.Tensor):
        step_sizes = step_sizes.detach().cpu().numpy()
    try:
        etas = np.asarray(step_sizes, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"step_sizes must be a sequence of real numbers, got {step_sizes!r}"
        ) from error
    if etas.ndim != 1 or etas.size == 0:
        raise ValueError(
            f"step_sizes must be a non-empty 1-D sequence, got shape {etas.shape}"
        )
    if not np.isfinite(etas).all() or (etas <= 0).any():
        raise ValueError(
            f"step sizes must be positive and finite, got {etas.tolist()}"
        )
    return etas.copy()


def _direction(direction, params: list[nn.Parameter]) -> list[torch.Tensor]:
    """``direction`` as one tensor per parameter, in each parameter's dtype and device."""
    sizes = [p.numel() for p in params]
    if isinstance(direction, torch.Tensor):
        if not direction.dtype.is_floating_point:
            raise TypeError(
                f"direction must have a floating dtype, got {direction.dtype}"
            )
        if direction.dim() != 1 or direction.numel() != sum(sizes):
            raise ValueError(
                f"a flat direction must be a 1-D tensor of {sum(sizes)} entries (the trainable "
                f"parameters), got shape {tuple(direction.shape)}"
            )
        pieces = torch.split(direction.detach(), sizes)
        parts = [
            piece.reshape(p.shape)
            for piece, p in zip(pieces, params, strict=True)
        ]
    elif isinstance(direction, Sequence) and not isinstance(direction, str):
        if len(direction) != len(params):
            raise ValueError(
                f"direction must have one tensor per trainable parameter ({len(params)}), got "
                f"{len(direction)}"
            )
        parts = []
        for i, (part, p) in enumerate(zip(direction, params, strict=True)):
            if not isinstance(part, torch.Tensor):
                raise TypeError(
                    f"direction[{i}] must be a torch.Tensor, got {type(part).__name__}"
                )
            if not part.dtype.is_floating_point:
                raise TypeError(
                    f"direction[{i}] must have a floating dtype, got {part.dtype}"
                )
            if part.shape != p.shape:
                raise ValueError(
                    f"direction[{i}] must have its parameter's shape {tuple(p.shape)}, got "
                    f"{tuple(part.shape)}"
                )
            parts.append(part.detach())
    else:
        raise TypeError(
            "direction must be None, a flat tensor or a sequence of tensors shaped like the "
            f"trainable parameters, got {type(direction).__name__}"
        )
    parts = [
        part.to(device=p.device, dtype=p.dtype)
        for part, p in zip(parts, params, strict=True)
    ]
    if not all(bool(torch.isfinite(part).all()) for part in parts):
        raise ValueError("direction contains non-finite values (nan or inf)")
    return parts


def _norm(parts: Sequence[torch.Tensor]) -> float:
    """The 2-norm of a list of tensors as one vector, accumulated in float64."""
    return math.sqrt(
        sum(float((part.detach().double() ** 2).sum()) for part in parts)
    )


def _difference_norm(
    a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]
) -> float:
    return math.sqrt(
        sum(
            float(((x.double() - y.double()) ** 2).sum())
            for x, y in zip(a, b, strict=True)
        )
    )


class _Snapshot:
    """Everything a probe may change in a model, saved so that it can be put back exactly.

    It records each module's train/eval flag, each parameter and buffer (the tensor object
    and a copy of its values), the global random number generators' states and the states of
    the ``torch.Generator`` objects held by the model's modules.
    """

    def __init__(self, model: nn.Module) -> None:
        self.flags = [(m, m.training) for m in model.modules()]
        self.tensors = []
        for module in model.modules():
            for store in (module._parameters, module._buffers):
                for name, tensor in store.items():
                    if tensor is not None:
                        self.tensors.append((
                            store,
                            name,
                            tensor,
                            tensor.detach().clone(),
                        ))
        self.devices = sorted({
            t.device.index or 0
            for *_, t, _ in self.tensors
            if t.device.type == "cuda"
        })
        self.cpu_rng = torch.get_rng_state()
        self.cuda_rng = [torch.cuda.get_rng_state(d) for d in self.devices]
        self.generators = GeneratorStates(model)

    def reset_rng(self) -> None:
        """Give the next evaluation the random draws the first one had (dropout, noise)."""
        torch.set_rng_state(self.cpu_rng)
        for device, state in zip(self.devices, self.cuda_rng, strict=True):
            torch.cuda.set_rng_state(state, device)
        self.generators.reset()

    def restore(self) -> None:
        with torch.no_grad():
            for store, name, tensor, saved in self.tensors:
                store[name] = tensor
                tensor.copy_(saved)
        for module, flag in self.flags:
            module.training = flag
        self.reset_rng()


def _loss_and_gradient(
    model: nn.Module,
    loss_fn: Callable,
    inputs: Any,
    targets: Any,
    params: list[nn.Parameter],
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    with torch.enable_grad():
        loss = loss_fn(model(inputs), targets)
        if (
            not isinstance(loss, torch.Tensor)
            or loss.numel() != 1
            or not loss.dtype.is_floating_point
        ):
            got = (
                tuple(loss.shape)
                if isinstance(loss, torch.Tensor)
                else type(loss).__name__
            )
            raise ValueError(
                f"loss_fn must return a floating scalar tensor, got {got}"
            )
        grads = torch.autograd.grad(
            loss.reshape(()), params, allow_unused=True
        )
    grads = [
        torch.zeros_like(p) if gr is None else gr.detach()
        for gr, p in zip(grads, params, strict=True)
    ]
    return loss.detach().reshape(()), grads


def flat_gradient(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, Any], torch.Tensor],
    inputs: Any,
    targets: Any,
) -> torch.Tensor:
    r"""The gradient $g = \nabla\mathcal L(w)$ over all trainable parameters, as one flat vector.

    Parameters
    ----------
    model : torch.nn.Module
        The network; its train/eval flags decide how it computes (batch or running statistics).
    loss_fn : callable
        ``loss_fn(model(inputs), targets)`` must return a floating scalar tensor.
    inputs, targets
        Passed to ``model`` and ``loss_fn`` as they are.

    Returns
    -------
    torch.Tensor
        1-D, the trainable parameters' gradients concatenated in ``model.parameters()`` order
        (a parameter the loss does not use contributes zeros).

    Raises
    ------
    TypeError
        If ``model`` is not a ``torch.nn.Module``.
    ValueError
        If the model has no trainable parameter or the loss is not a floating scalar.

    Notes
    -----
    The model is left as it was found: parameters, buffers (BN running statistics and
    ``num_batches_tracked``), ``.grad`` attributes, train/eval flags, the global random
    number generators' states and the states of the ``torch.Generator`` objects that the
    model's modules hold as attributes (the noise layers of ``bnnotes.torch_layers``). The
    gradient comes from ``torch.autograd.grad``, so no ``.grad`` is touched.

    Examples
    --------
    >>> import torch
    >>> from bnnotes.landscape import flat_gradient
    >>> net = torch.nn.Linear(2, 1, bias=False, dtype=torch.float64)
    >>> with torch.no_grad():
    ...     _ = net.weight.copy_(torch.tensor([[1.0, -1.0]]))
    >>> x = torch.tensor(
    ...     [[3.0, 1.0]], dtype=torch.float64
    ... )  # output 2, target 0
    >>> flat_gradient(
    ...     net,
    ...     lambda out, y: 0.5 * ((out - y) ** 2).sum(),
    ...     x,
    ...     torch.zeros(1, 1),
    ... ).tolist()
    [6.0, 2.0]
    """
    params = trainable_parameters(model)
    snapshot = _Snapshot(model)
    try:
        _, grads = _loss_and_gradient(model, loss_fn, inputs, targets, params)
    finally:
        snapshot.restore()
    return torch.cat([gr.reshape(-1) for gr in grads])


def probe(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, Any], torch.Tensor],
    inputs: Any,
    targets: Any,
    step_sizes: Sequence[float] | np.ndarray | torch.Tensor,
    direction: Sequence[torch.Tensor] | torch.Tensor | None = None,
) -> LandscapeProbe:
    r"""Probe the loss and its gradient along a direction from the model's current parameters.

    Parameters
    ----------
    model : torch.nn.Module
        The network at parameters $w$ (all parameters with ``requires_grad``). Its train/eval
        flags are used as they are: in training mode BN layers normalize with the statistics
        of ``inputs`` (batch statistics), so the probe measures the mini-batch loss that SGD
        optimizes; in evaluation mode they use their running statistics, a different function.
    loss_fn : callable
        ``loss_fn(model(inputs), targets)`` must return a floating scalar tensor.
    inputs, targets
        The batch on which the loss is measured, passed to ``model`` and ``loss_fn`` as they are.
    step_sizes : sequence of float
        The step sizes $\eta_k$; at least one, each positive and finite.
    direction : None, torch.Tensor or sequence of torch.Tensor, optional
        $d$. None (the default) probes along the gradient, $d = g$, so that $w - \eta g$ is a
        gradient step. Otherwise a flat vector with one entry per trainable parameter value
        (in ``model.parameters()`` order), or one tensor per trainable parameter with its
        shape; it is converted to each parameter's dtype and device.

    Returns
    -------
    LandscapeProbe
        The losses, gradient changes and distances at each step size and their summaries.

    Raises
    ------
    TypeError
        If ``model`` is not a module, or ``step_sizes`` or ``direction`` have the wrong type
        or a non-floating dtype.
    ValueError
        If ``step_sizes`` is empty, not 1-D, or holds a value that is not positive and finite;
        if ``direction`` has the wrong shape, non-finite values or norm zero; if the model
        has no trainable parameter; if the loss is not a floating scalar; if the loss or the
        gradient at $w$ is not finite; or if the gradient is zero when probing along it
        (the effective $\beta$-smoothness then divides by zero).

    Notes
    -----
    With $g = \nabla\mathcal L(w)$ and the direction $d$, the probe evaluates, for each
    $\eta_k$,

    $$\ell_k = \mathcal L(w - \eta_k d), \qquad
    c_k = \lVert \nabla\mathcal L(w - \eta_k d) - g \rVert_2, \qquad
    r_k = \eta_k \lVert d \rVert_2,$$

    and summarizes them as $\max_k \ell_k - \min_k \ell_k$ (variation of loss),
    $\max_k c_k$ (gradient predictiveness, the upper edge of the band the paper plots) and
    $\max_k c_k / r_k$ (effective $\beta$-smoothness), after Santurkar et al. (2018, §3.2).
    For a quadratic $\mathcal L(w) = \frac12 (w - w^*)^\top H (w - w^*)$ and $d = g$ these are
    exact: $\ell_k = \mathcal L(w) - \eta_k \lVert g \rVert^2 + \frac12 \eta_k^2\, g^\top H g$,
    $c_k = \eta_k \lVert H g \rVert$ and $c_k / r_k = \lVert H g \rVert / \lVert g \rVert$ for every
    $k$. When $H$ is positive semidefinite ($H \succeq 0$) this is a number between the smallest and
    the largest eigenvalue of $H$; for an indefinite $H$ it lies between the smallest and the
    largest absolute value of an eigenvalue.

    Norms over several parameter tensors are taken of their concatenation, accumulated in
    float64. Every evaluation (at $w$ and at each probed point) starts from the same state
    of the global random number generators and of every ``torch.Generator`` that a module
    of the model holds as an attribute (such as the generator of
    [`SanturkarNoise`][bnnotes.torch_layers.SanturkarNoise] and
    [`NoisyBatchNorm`][bnnotes.torch_layers.NoisyBatchNorm]), so dropout masks and injected
    noise are the same at all points: the probe measures one fixed function. Afterwards the
    model is exactly as it was found, also when ``loss_fn`` or the model raises: the
    parameter values, the buffers (BN running statistics and ``num_batches_tracked``, which
    training mode forward passes update), the train/eval flags and the states of all these
    random number generators are put back. Gradients come from ``torch.autograd.grad``, so
    no ``.grad`` attribute is touched.

    References
    ----------
    S. Santurkar, D. Tsipras, A. Ilyas and A. Madry, "How Does Batch Normalization Help
    Optimization?", NeurIPS 2018, Section 3.2 and Figure 4.

    Examples
    --------
    $\mathcal L(w) = \frac12 (2w)^2 = 2w^2$ at $w = 1$: $g = 4$, the curvature is $H = 4$,
    so $c_k = 16\,\eta_k$, $r_k = 4\,\eta_k$ and $\beta_{\text{eff}} = 4$.

    >>> import torch
    >>> from bnnotes.landscape import probe
    >>> net = torch.nn.Linear(1, 1, bias=False, dtype=torch.float64)
    >>> with torch.no_grad():
    ...     _ = net.weight.fill_(1.0)
    >>> x, y = (
    ...     torch.tensor([[2.0]], dtype=torch.float64),
    ...     torch.zeros(1, 1, dtype=torch.float64),
    ... )
    >>> result = probe(
    ...     net,
    ...     lambda out, target: 0.5 * ((out - target) ** 2).sum(),
    ...     x,
    ...     y,
    ...     [0.1, 0.2],
    ... )
    >>> (
    ...     result.losses.round(12).tolist(),
    ...     result.gradient_changes.round(12).tolist(),
    ... )
    ([0.72, 0.08], [1.6, 3.2])
    >>> (
    ...     round(result.beta_smoothness, 12),
    ...     net.weight.item(),
    ... )  # the weight is back at 1
    (4.0, 1.0)
    """
    params = trainable_parameters(model)
    etas = _step_sizes(step_sizes)
    given = None if direction is None else _direction(direction, params)
    if given is not None and _norm(given) == 0.0:
        raise ValueError(
            "direction has norm zero; the distances and beta-smoothness would be undefined"
        )

    snapshot = _Snapshot(model)
    try:
        loss0, g = _loss_and_gradient(model, loss_fn, inputs, targets, params)
        if not bool(torch.isfinite(loss0)) or not all(
            bool(torch.isfinite(gr).all()) for gr in g
        ):
            raise ValueError(
                "the loss or its gradient at the current parameters is not finite "
                f"(loss {loss0.item()})"
            )
        d = g if given is None else given
        g_norm = _norm(g)
        d_norm = g_norm if given is None else _norm(d)
        if d_norm == 0.0:
            raise ValueError(
                "the gradient is zero, so there is no direction to probe along (pass a direction)"
            )
        saved = {
            id(tensor): values for _, _, tensor, values in snapshot.tensors
        }
        starts = [saved[id(p)] for p in params]
        losses, changes = [], []
        for eta in etas:
            snapshot.restore()  # buffers, flags and random draws as they were at w
            with torch.no_grad():
                for p, start, step in zip(params, starts, d, strict=True):
                    p.copy_(start - float(eta) * step)
            loss_k, g_k = _loss_and_gradient(
                model, loss_fn, inputs, targets, params
            )
            losses.append(loss_k.item())
            changes.append(_difference_norm(g_k, g))
    finally:
        snapshot.restore()

    losses = np.array(losses, dtype=np.float64)
    changes = np.array(changes, dtype=np.float64)
    distances = etas * d_norm
    return LandscapeProbe(
        step_sizes=etas,
        losses=losses,
        gradient_changes=changes,
        distances=distances,
        loss_variation=float(losses.max() - losses.min()),
        gradient_predictiveness=float(changes.max()),
        beta_smoothness=float((changes / distances).max()),
        loss=float(loss0.item()),
        gradient_norm=g_norm,
        direction_norm=d_norm,
    )
