"""Pure PyTorch models and official-checkpoint loading (no FiftyOne, image files or network)."""

from __future__ import annotations

from torch import nn

from .checkpoint import CheckpointError, export_official_state_dict, load_checkpoint
from .config import ModelConfig
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


__all__ = [
    "BUILDERS",
    "CheckpointError",
    "ModelConfig",
    "RAM",
    "Tag2Text",
    "build_model",
    "build_ram",
    "build_ram_plus",
    "build_tag2text",
    "export_official_state_dict",
    "load_checkpoint",
]
