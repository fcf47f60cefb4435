r"""Internal covariate shift measured on gradients: Definition 2.1 of Santurkar et al. (2018).

Ioffe and Szegedy (2015) describe internal covariate shift as the change of a layer's input
distribution while the layers before it train. Santurkar et al. (2018, §2.2) replace the
distributions by what the optimizer actually uses, the gradient. For a loss $\mathcal L$, the
parameters $W_1^{(t)}, \ldots, W_k^{(t)}$ of the $k$ layers at step $t$ and the batch
$(x^{(t)}, y^{(t)})$, the ICS of layer $i$ is

$$\mathrm{ICS}_{t,i} = \big\lVert G_{t,i} - G'_{t,i} \big\rVert_2,$$

$$G_{t,i} = \nabla_{W_i^{(t)}} \mathcal L\big(W_1^{(t)}, \ldots, W_k^{(t)}; x^{(t)}, y^{(t)}\big),$$

$$G'_{t,i} = \nabla_{W_i^{(t)}} \mathcal L\big(W_1^{(t+1)}, \ldots, W_{i-1}^{(t+1)}, W_i^{(t)},
W_{i+1}^{(t)}, \ldots, W_k^{(t)}; x^{(t)}, y^{(t)}\big).$$

$G_{t,i}$ is the gradient of a normal simultaneous step; $G'_{t,i}$ is the gradient the same
layer would see, on the same batch, after the layers before it had taken their step. The
paper reports the $\ell_2$ difference (0 without shift) and the cosine
$\langle G, G' \rangle / (\lVert G \rVert \lVert G' \rVert)$ (1 without shift).

References
----------
- S. Santurkar, D. Tsipras, A. Ilyas and A. Madry (2018), "How Does Batch Normalization Help
  Optimization?", NeurIPS 2018, Definition 2.1 and Figure 3, arXiv:1805.11604.
- S. Ioffe and C. Szegedy (2015), "Batch Normalization: Accelerating Deep Network Training by
  Reducing Internal Covariate Shift", ICML 2015, arXiv:1502.03167.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bnnotes import _validation as check
from bnnotes._torch_state import GeneratorStates

__all__ = ["ICSResult", "gradient_ics", "preceding_parameters"]


@dataclass(frozen=True, eq=False)
class ICSResult:
    r"""Definition 2.1 of Santurkar et al. (2018), one entry per measured layer.

    Attributes
    ----------
    l2 : numpy.ndarray
        $\lVert G_i - G'_i \rVert_2$, float64, shape ``(k,)``.
    cosine : numpy.ndarray
        $\langle G_i, G'_i \rangle / (\lVert G_i \rVert_2 \lVert G'_i \rVert_2)$, float64, shape
        ``(k,)``; nan where $G_i$ or $G'_i$ is exactly zero.
    grad_norm : numpy.ndarray
        $\lVert G_i \rVert_2$, float64, shape ``(k,)``.
    shifted_grad_norm : numpy.ndarray
        $\lVert G'_i \rVert_2$, float64, shape ``(k,)``.
    loss : float
        $\mathcal L$ at the current parameters on the given batch.
    lr : float
        The learning rate of the step taken by the preceding layers.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from bnnotes.ics import gradient_ics
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Linear(2, 1))
    >>> x, y = torch.randn(8, 2), torch.randn(8, 1)
    >>> r = gradient_ics(net, nn.MSELoss(), x, y, lr=0.1)
    >>> (
    ...     r.l2.shape,
    ...     r.lr,
    ...     float(r.l2[0]),
    ... )  # the first layer has no layer before it
    ((2,), 0.1, 0.0)
    """

    l2: np.ndarray
    cosine: np.ndarray
    grad_norm: np.ndarray
    shifted_grad_norm: np.ndarray
    loss: float
    lr: float


def _check_layers(model: nn.Module, layers) -> list[nn.Module]:
    if layers is None:
        from bnnotes.models import weight_layers

        layers = weight_layers(model)
    if isinstance(layers, nn.Module):
        raise TypeError(
            "layers must be a sequence of modules, not a single module"
        )
    layers = list(layers)
    if not layers:
        raise ValueError(
            "no layers to measure: the model has no Conv/Linear layers and none were given"
        )
    members = {id(m) for m in model.modules()}
    seen = set()
    for index, layer in enumerate(layers):
        if not isinstance(layer, nn.Module):
            raise TypeError(
                f"layers[{index}] must be a torch.nn.Module, got {type(layer).__name__}"
            )
        if id(layer) not in members:
            raise ValueError(
                f"layers[{index}] ({type(layer).__name__}) is not a submodule of the model"
            )
        if id(layer) in seen:
            raise ValueError(
                f"layers[{index}] ({type(layer).__name__}) is listed twice"
            )
        seen.add(id(layer))
        if not any(p.requires_grad for p in layer.parameters()):
            raise ValueError(
                f"layers[{index}] ({type(layer).__name__}) has no parameter that requires a "
                "gradient"
            )
    return layers


def preceding_parameters(
    model: nn.Module, layer: nn.Module
) -> list[nn.Parameter]:
    r"""The trainable parameters that Definition 2.1 updates before measuring ``layer``.

    Parameters
    ----------
    model : torch.nn.Module
        The network.
    layer : torch.nn.Module
        A submodule of ``model``.

    Returns
    -------
    list of torch.nn.Parameter
        Every parameter with ``requires_grad`` that belongs to a module registered before
        ``layer`` in ``model.modules()`` order and is not a parameter of ``layer`` itself,
        each once.

    Raises
    ------
    ValueError
        If ``layer`` is not a submodule of ``model``.

    Notes
    -----
    Module registration order stands in for forward order, which is exact for
    ``torch.nn.Sequential`` networks. A normalization layer between two weight layers (its
    $\gamma$ and $\beta$) therefore belongs to the block of the weight layer before it: its
    parameters are among those updated before the next weight layer is measured, and not
    before the weight layer it follows.

    Examples
    --------
    >>> from torch import nn
    >>> from bnnotes.ics import preceding_parameters
    >>> net = nn.Sequential(
    ...     nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)
    ... )
    >>> [tuple(p.shape) for p in preceding_parameters(net, net[3])]
    [(4, 3), (4,), (4,), (4,)]
    >>> preceding_parameters(net, net[0])
    []
    """
    own = {id(p) for p in layer.parameters()}
    found, seen = [], set()
    for module in model.modules():
        if module is layer:
            return found
        for p in module.parameters(recurse=False):
            if p.requires_grad and id(p) not in own and id(p) not in seen:
                seen.add(id(p))
                found.append(p)
    raise ValueError(f"{type(layer).__name__} is not a submodule of the model")


def _as_float64(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([
        g.detach().reshape(-1).to(device="cpu", dtype=torch.float64)
        for g in grads
    ])


def gradient_ics(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    lr: float,
    layers: Sequence[nn.Module] | None = None,
) -> ICSResult:
    r"""Gradient-based internal covariate shift of each layer (Santurkar et
    al., 2018, Definition 2.1).

    Parameters
    ----------
    model : torch.nn.Module
        The network, in the mode it trains in (``model.train()`` for BN with batch statistics).
    loss_fn : callable
        ``loss_fn(model(inputs), targets)`` must return a scalar tensor.
    inputs, targets : torch.Tensor
        One batch $(x^{(t)}, y^{(t)})$, used for every gradient.
    lr : float
        Learning rate $\eta > 0$ of the plain SGD step $W^{(t+1)} = W^{(t)} - \eta\,G$ taken by
        the preceding layers.
    layers : sequence of torch.nn.Module, optional
        The layers to measure; default ``bnnotes.models.weight_layers(model)``, the Conv2d and
        Linear modules in forward order.

    Returns
    -------
    ICSResult
        ``l2`` and ``cosine`` (and $\lVert G_i \rVert$, $\lVert G'_i \rVert$), one entry per layer.

    Raises
    ------
    TypeError
        If ``model`` is not a module, ``layers`` is not a sequence of modules, or the loss is
        not a tensor.
    ValueError
        If ``lr`` is not a finite number > 0; if there are no layers, a layer is not in the
        model, is listed twice, has no trainable parameter, or gets no gradient from the loss;
        if the loss is not a scalar or is not finite, or a gradient is not finite.

    Notes
    -----
    **What a layer's parameters are.** $W_i$ is the weight and, when there is one, the bias of
    the $i$-th measured module (the parameters with ``requires_grad``), flattened and
    concatenated; $G_i$ and $G'_i$ are vectors of that length. The $\gamma$ and $\beta$ of a
    normalization layer are not measured, so a network with BN and one without are compared on
    the same weights. They do take the SGD step as part of the block they sit in: BN after
    weight layer $j$ is updated with the parameters that precede weight layer $j + 1$ (see
    [`preceding_parameters`][bnnotes.ics.preceding_parameters]). Parameters with
    ``requires_grad=False`` never move.

    **How it is computed.** One forward and backward pass at $W^{(t)}$ gives every $G_i$ (and
    the gradient of every preceding parameter). For each layer $i$, every preceding trainable
    parameter $P$ is set to $P - \eta\,\nabla_P \mathcal L$, all with the gradients at
    $W^{(t)}$ (a simultaneous step), and a second pass gives $G'_i$. Layer $i$ with no
    preceding parameter at all has $G'_i = G_i$ by definition: $\mathrm{ICS} = 0$, cosine 1.

    **What is restored.** Gradients are taken with ``torch.autograd.grad``, so ``.grad`` is
    left alone. Parameters and buffers (BN running statistics and ``num_batches_tracked``,
    which every training-mode pass would update) are copied before and written back
    afterwards, also when an error is raised. The random number generators (the global ones
    and every ``torch.Generator`` that a module of the model holds as an attribute, such as
    that of [`SanturkarNoise`][bnnotes.torch_layers.SanturkarNoise] and
    [`NoisyBatchNorm`][bnnotes.torch_layers.NoisyBatchNorm]) are reset to the same state
    before every pass, so a stochastic layer (dropout, noise injection) draws the same noise
    for $G$ and $G'$ (the batch is held fixed in the same sense), and restored afterwards,
    also when an error is raised: measuring does not change the course of a seeded training
    run.

    The norms and the inner product are computed in float64 from the gradients (of whatever
    dtype the model uses). The cosine is nan when either gradient is exactly zero.

    References
    ----------
    S. Santurkar, D. Tsipras, A. Ilyas and A. Madry (2018), "How Does Batch Normalization Help
    Optimization?", Definition 2.1 and Figure 3, arXiv:1805.11604.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from bnnotes.ics import gradient_ics
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(
    ...     nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)
    ... ).double()
    >>> x, y = (
    ...     torch.randn(16, 4, dtype=torch.float64),
    ...     torch.randint(0, 3, (16,)),
    ... )
    >>> r = gradient_ics(net, nn.CrossEntropyLoss(), x, y, lr=0.5)
    >>> r.l2.shape, float(r.l2[0]), float(r.cosine[0])
    ((2,), 0.0, 1.0)
    >>> bool(r.l2[1] > 0 and r.cosine[1] < 1)
    True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module, got {type(model).__name__}"
        )
    lr = check.nonnegative(lr, "lr")
    layers = _check_layers(model, layers)

    params = [p for p in model.parameters() if p.requires_grad]
    layer_params = [
        [p for p in layer.parameters() if p.requires_grad] for layer in layers
    ]
    preceding = [preceding_parameters(model, layer) for layer in layers]
    has_preceding = [
        any(
            True
            for m in _modules_before(model, layer)
            for _ in m.parameters(recurse=False)
        )
        for layer in layers
    ]
    labels = [
        f"layers[{i}] ({type(layer).__name__})"
        for i, layer in enumerate(layers)
    ]

    saved = _SavedTensors(model)
    generators = GeneratorStates(model)  # the noise layers' own generators
    n = len(layers)
    l2, cosine = np.empty(n), np.empty(n)
    g_norm, g_prime_norm = np.empty(n), np.empty(n)
    try:
        with torch.random.fork_rng(devices=saved.devices):
            replay = _Replay(
                model, loss_fn, inputs, targets, saved, generators
            )
            index_of = {id(p): j for j, p in enumerate(params)}
            loss0, full = replay.gradients(
                params, _parameter_names(params, layer_params, labels)
            )
            step = {id(p): lr * g for p, g in zip(params, full, strict=True)}
            for i in range(n):
                g = _as_float64([
                    full[index_of[id(p)]] for p in layer_params[i]
                ])
                g_prime = g
                if has_preceding[i]:
                    saved.restore()
                    with torch.no_grad():
                        for p in preceding[i]:
                            p.sub_(step[id(p)])
                    _, shifted = replay.gradients(
                        layer_params[i], [labels[i]] * len(layer_params[i])
                    )
                    g_prime = _as_float64(shifted)
                l2[i], cosine[i], g_norm[i], g_prime_norm[i] = _compare(
                    g, g_prime
                )
    finally:
        generators.reset()
        saved.restore()
    return ICSResult(
        l2=l2,
        cosine=cosine,
        grad_norm=g_norm,
        shifted_grad_norm=g_prime_norm,
        loss=loss0,
        lr=lr,
    )


class _SavedTensors:
    """Copies of a model's parameters and buffers, to be put back exactly."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.params = [p.detach().clone() for p in model.parameters()]
        self.buffers = [b.detach().clone() for b in model.buffers()]
        self.devices = sorted({
            t.device.index or 0
            for t in self.params + self.buffers
            if t.device.type == "cuda"
        })

    def restore(self) -> None:
        with torch.no_grad():
            for p, value in zip(
                self.model.parameters(), self.params, strict=True
            ):
                p.copy_(value)
            for b, value in zip(
                self.model.buffers(), self.buffers, strict=True
            ):
                b.copy_(value)


class _Replay:
    """The loss and its gradients, each evaluation with the random draws of the first."""

    def __init__(self, model, loss_fn, inputs, targets, saved, generators):
        self.model, self.loss_fn = model, loss_fn
        self.inputs, self.targets = inputs, targets
        self.devices, self.generators = saved.devices, generators
        self.cpu_state = torch.get_rng_state()
        self.cuda_states = [torch.cuda.get_rng_state(d) for d in self.devices]

    def gradients(
        self, wrt: list[torch.Tensor], names: list[str]
    ) -> tuple[float, list[torch.Tensor]]:
        """(loss, gradients with respect to ``wrt``); ``names`` label the parameters in errors."""
        torch.set_rng_state(self.cpu_state)
        for d, state in zip(self.devices, self.cuda_states, strict=True):
            torch.cuda.set_rng_state(state, d)
        self.generators.reset()
        with torch.enable_grad():
            loss = _scalar_loss(
                self.loss_fn(self.model(self.inputs), self.targets)
            )
            grads = torch.autograd.grad(loss, wrt, allow_unused=True)
        return float(loss.detach().double().item()), [
            _checked_gradient(g, p, name)
            for g, p, name in zip(grads, wrt, names, strict=True)
        ]


def _scalar_loss(loss) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor):
        raise TypeError(
            f"loss_fn must return a tensor, got {type(loss).__name__}"
        )
    if loss.numel() != 1:
        raise ValueError(
            f"loss_fn must return a scalar, got shape {tuple(loss.shape)}"
        )
    if not torch.isfinite(loss).all():
        raise ValueError(f"the loss is not finite ({loss.item()})")
    return loss


def _checked_gradient(g, p: torch.Tensor, name: str) -> torch.Tensor:
    """A parameter's gradient; an unnamed parameter that the loss does not reach gets zeros."""
    if g is None:
        if name:
            raise ValueError(f"{name} gets no gradient from the loss")
        g = torch.zeros_like(p)
    if not torch.isfinite(g).all():
        raise ValueError(
            f"the gradient of {name or 'a parameter'} is not finite"
        )
    return g.detach()


def _parameter_names(params, layer_params, labels) -> list[str]:
    """For each parameter, the label of the measured layer it belongs to, or ""."""
    owner = {
        id(p): label
        for own, label in zip(layer_params, labels, strict=True)
        for p in own
    }
    return [owner.get(id(p), "") for p in params]


def _compare(
    g: torch.Tensor, g_prime: torch.Tensor
) -> tuple[float, float, float, float]:
    """(||G - G'||, cos(G, G'), ||G||, ||G'||); the cosine is nan when a gradient is zero."""
    g_norm = float(torch.linalg.vector_norm(g))
    g_prime_norm = float(torch.linalg.vector_norm(g_prime))
    l2 = float(torch.linalg.vector_norm(g - g_prime))
    denominator = g_norm * g_prime_norm
    if not denominator > 0:
        cosine = np.nan
    elif g_prime is g:
        cosine = 1.0
    else:  # clipped to [-1, 1]: rounding may put the ratio an ulp outside
        cosine = min(
            1.0, max(-1.0, float(torch.dot(g, g_prime)) / denominator)
        )
    return l2, cosine, g_norm, g_prime_norm


def _modules_before(model: nn.Module, layer: nn.Module) -> list[nn.Module]:
    before = []
    for module in model.modules():
        if module is layer:
            return before
        before.append(module)
    return before
