"""The random generators a torch model's modules hold, found and saved (private).

Noise layers ([`SanturkarNoise`][bnnotes.torch_layers.SanturkarNoise] and the layers built
on it) draw from their own ``torch.Generator``. The probes of ``bnnotes.landscape`` and
``bnnotes.ics`` evaluate a model several times and put those generators back in between,
so that every evaluation draws the same noise.
"""

from __future__ import annotations

import torch
from torch import nn


def module_generators(model: nn.Module) -> list[torch.Generator]:
    """Every ``torch.Generator`` held as an attribute of a module of ``model``, each once.

    Parameters
    ----------
    model : torch.nn.Module
        The network.

    Returns
    -------
    list of torch.Generator
        In ``model.modules()`` order; a generator shared by several modules (as
        ``bnnotes.models.vgg(..., generator=seed)`` gives to every noise layer) appears once.
    """
    found, seen = [], set()
    for module in model.modules():
        for value in vars(module).values():
            if isinstance(value, torch.Generator) and id(value) not in seen:
                seen.add(id(value))
                found.append(value)
    return found


class GeneratorStates:
    """The states of the generators a model's modules hold (noise layers), saved to be set again.

    ``reset()`` puts every generator back to the state it had when this object was made,
    so that a forward pass after it draws the same noise as the first one did.
    """

    def __init__(self, model: nn.Module) -> None:
        self.states = [
            (generator, generator.get_state())
            for generator in module_generators(model)
        ]

    def reset(self) -> None:
        for generator, state in self.states:
            generator.set_state(state)
