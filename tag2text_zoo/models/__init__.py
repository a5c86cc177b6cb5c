"""Pure PyTorch models and official-checkpoint loading (no FiftyOne, image files or network)."""

from __future__ import annotations

import torch
from torch import nn

from .checkpoint import CheckpointError, export_official_state_dict, load_checkpoint, tied_groups
from .config import ConfigError, ModelConfig
from .ram import RAM, build_ram, build_ram_plus
from .tag2text import Tag2Text, build_tag2text

BUILDERS = {"tag2text": build_tag2text, "ram": build_ram, "ram_plus": build_ram_plus}


def build_model(cfg: ModelConfig) -> nn.Module:
    """Builds the randomly initialised model that ``cfg.model_type`` names."""
    try:
        return BUILDERS[cfg.model_type](cfg)
    except KeyError:
        raise ValueError(
            f"unknown model_type {cfg.model_type!r}; known: {sorted(BUILDERS)}"
        ) from None


def build_uninitialized(cfg: ModelConfig, device: str | torch.device = "cpu") -> nn.Module:
    """Builds the model with allocated but uninitialised weights, to load a checkpoint into.

    Skips the random initialisation (seconds at full size): parameters are made on the meta
    device, then allocated; tied weights are tied again and rebuilt buffers recomputed.
    """
    with torch.device("meta"):
        model = build_model(cfg)
    groups = tied_groups(model)
    model.to_empty(device=device)
    for names in groups:  # to_empty gives a Parameter shared by two modules two copies
        shared = model.get_parameter(names[0])
        for name in names[1:]:
            owner, _, attr = name.rpartition(".")
            setattr(model.get_submodule(owner), attr, shared)
    for module in model.modules():
        if hasattr(module, "init_non_persistent_buffers"):
            module.init_non_persistent_buffers()
    return model


__all__ = [
    "BUILDERS",
    "CheckpointError",
    "ConfigError",
    "ModelConfig",
    "RAM",
    "Tag2Text",
    "build_model",
    "build_ram",
    "build_ram_plus",
    "build_tag2text",
    "build_uninitialized",
    "export_official_state_dict",
    "load_checkpoint",
]
