"""Swapping a model's layers for faster ones (int8 and oneDNN linear layers, Grounding DINO's
deformable attention), ties kept."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


def swap_modules(
    model: nn.Module, kind: type[nn.Module], swap: Callable[[str, nn.Module], nn.Module | None]
) -> int:
    """Replaces each module of type ``kind`` (exactly, not a subclass) in ``model`` by
    ``swap(qualified_name, module)``, or keeps it where that is None; returns how many modules
    were replaced.

    A module shared by several parents (tied layers) is swapped once and stays shared.
    """
    swapped: dict[int, nn.Module] = {}
    names = {id(module): name for name, module in model.named_modules()}
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if type(child) is not kind:
                continue
            if id(child) not in swapped:
                replacement = swap(names[id(child)], child)
                if replacement is None:
                    continue
                swapped[id(child)] = replacement
            setattr(parent, child_name, swapped[id(child)])
    return len(swapped)


def swap_linear_layers(model: nn.Module, swap: Callable[[str, nn.Linear], nn.Module | None]) -> int:
    """:func:`swap_modules` for the plain :class:`~torch.nn.Linear` layers."""
    return swap_modules(model, nn.Linear, swap)
