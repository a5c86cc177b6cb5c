"""Swapping a model's linear layers for faster ones (int8, oneDNN), ties kept."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


def swap_linear_layers(model: nn.Module, swap: Callable[[str, nn.Linear], nn.Module | None]) -> int:
    """Replaces each plain :class:`~torch.nn.Linear` of ``model`` by ``swap(qualified_name,
    layer)``, or keeps it where that is None; returns how many layers were replaced.

    A layer shared by several parents (tied layers) is swapped once and stays shared.
    """
    swapped: dict[int, nn.Module] = {}
    names = {id(module): name for name, module in model.named_modules()}
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if type(child) is not nn.Linear:
                continue
            if id(child) not in swapped:
                replacement = swap(names[id(child)], child)
                if replacement is None:
                    continue
                swapped[id(child)] = replacement
            setattr(parent, child_name, swapped[id(child)])
    return len(swapped)
