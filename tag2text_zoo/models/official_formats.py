"""Recognising an official SAM, SAM-HQ, SAM 2 or Grounding DINO checkpoint by its keys, and
converting it to a transformers config and state dict (pure: no files)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from transformers import (
    GroundingDinoForObjectDetection,
    PretrainedConfig,
    PreTrainedModel,
    Sam2Model,
    SamHQModel,
    SamModel,
)

from .official_grounding_dino import (
    grounding_dino_config,
    is_grounding_dino,
    map_grounding_dino_state_dict,
)
from .official_sam import is_sam, is_sam_hq, map_sam_state_dict, sam_config
from .official_sam2 import is_sam2, map_sam2_state_dict, sam2_config

State = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class OfficialFormat:
    """One official checkpoint family and its conversion to transformers.

    Attributes:
        family: the transformers ``model_type`` it becomes.
        name: how users call it.
        recognise: whether a state dict is of this family.
        config: the transformers config from the state dict (keyword arguments: the layout
            fields the weights do not show, where the family has any).
        map_state_dict: official keys -> transformers keys.
        model_class: the transformers model.
        strict: whether the official loader refuses weights the model has no place for
            (segment-anything and sam2 load strictly; segment-anything-hq and GroundingDINO
            with ``strict=False``, so their files may carry extra entries, which are dropped).
    """

    family: str
    name: str
    recognise: Callable[[State], bool]
    config: Callable[..., PretrainedConfig]
    map_state_dict: Callable[[State], dict[str, torch.Tensor]]
    model_class: type[PreTrainedModel]
    strict: bool


# In recognition order: SAM-HQ checkpoints hold every SAM key.
FORMATS: dict[str, OfficialFormat] = {
    f.family: f
    for f in (
        OfficialFormat(
            "sam_hq", "SAM-HQ", is_sam_hq, sam_config, map_sam_state_dict, SamHQModel, False
        ),
        OfficialFormat("sam", "SAM", is_sam, sam_config, map_sam_state_dict, SamModel, True),
        OfficialFormat("sam2", "SAM 2", is_sam2, sam2_config, map_sam2_state_dict, Sam2Model, True),
        OfficialFormat(
            "grounding-dino",
            "Grounding DINO",
            is_grounding_dino,
            grounding_dino_config,
            map_grounding_dino_state_dict,
            GroundingDinoForObjectDetection,
            False,
        ),
    )
}


def unwrap(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The state dict inside a checkpoint: under ``'model'`` / ``'state_dict'`` or at the top,
    without the ``module.`` prefix that DataParallel training leaves."""
    state: Mapping[str, Any] = checkpoint
    for wrapper in ("model", "state_dict"):
        if isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if tensors and all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


def recognise(state: State) -> OfficialFormat:
    """The family of an official state dict.

    Raises:
        ValueError: no supported family has these keys.
    """
    for fmt in FORMATS.values():
        if fmt.recognise(state):
            return fmt
    first = ", ".join(list(state)[:5]) or "no tensors"
    *names, last = (f.name for f in FORMATS.values())
    raise ValueError(
        f"not an official {', '.join(names)} or {last} checkpoint (first keys: {first})"
    )


def convert(
    state: State, **layout: Any
) -> tuple[OfficialFormat, PretrainedConfig, dict[str, torch.Tensor]]:
    """The family, transformers config and transformers state dict of an official state dict.

    Args:
        state: the official state dict (see :func:`unwrap`).
        **layout: hyper-parameters the weights do not show (SAM 2 only: ``num_heads``,
            ``global_attention_blocks``, ``window_spec``, ``image_size``), for checkpoints whose
            layout is not an official one.
    """
    fmt = recognise(state)
    if layout and fmt.family != "sam2":
        raise ValueError(f"{fmt.name} checkpoints take no layout fields (got {sorted(layout)})")
    return fmt, fmt.config(state, **layout), fmt.map_state_dict(state)
