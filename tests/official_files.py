"""Official-format checkpoint files without the official packages: random weights with the keys
and shapes of ``tests/data/reference/official/<name>.json`` (made by the official packages, see
its README), saved as the released files are."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from data_paths import REFERENCE

OFFICIAL = REFERENCE / "official"


def key_list(name: str) -> dict[str, list[int]]:
    return json.loads((OFFICIAL / f"{name}.json").read_text(encoding="utf-8"))


def _swin_relative_position_index(window: int) -> torch.Tensor:
    """Swin's table index of each (query, key) pair of a window, as every Swin builds it."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij"))
    relative = (coords.flatten(1)[:, :, None] - coords.flatten(1)[:, None, :]).permute(1, 2, 0)
    relative += window - 1
    return relative[..., 0] * (2 * window - 1) + relative[..., 1]


def random_state(name: str, seed: int = 0, std: float = 0.1) -> dict[str, torch.Tensor]:
    """A state dict of reference list ``name`` (e.g. ``tiny-sam``) with N(0, std) weights."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in key_list(name).items():
        if key.endswith("relative_position_index"):
            state[key] = _swin_relative_position_index(int(shape[0] ** 0.5))
        else:
            state[key] = torch.randn(shape, generator=generator) * std
    # Grounding DINO shares one box head between the detector and its decoder.
    for key in [k for k in state if k.startswith("bbox_embed.")]:
        state[f"transformer.decoder.{key}"] = state[key]
    return state


def save_released(state: dict[str, torch.Tensor], path: Path) -> Path:
    """Saves like the releases: SAM and SAM-HQ a bare state dict, SAM 2 ``{"model": ...}``,
    Grounding DINO ``{"model": ...}`` with DataParallel's ``module.`` prefix."""
    if any(k.startswith("image_encoder.trunk.") for k in state):
        payload: dict = {"model": state}
    elif "feat_map.weight" in state:
        payload = {"model": {f"module.{k}": v for k, v in state.items()}}
    else:
        payload = state
    torch.save(payload, path)
    return path


def tiny_file(name: str, folder: Path, filename: str | None = None, seed: int = 0) -> Path:
    """``folder/<filename>`` holding a random ``tiny-<name>`` checkpoint as released."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".pt" if name == "sam2" else ".pth"
    return save_released(random_state(f"tiny-{name}", seed), folder / (filename or name + suffix))
