"""Official checkpoint files: key map, safe loading, validation and a safetensors cache.

One map per direction: :func:`map_official_state_dict` (official names -> ours, the only entry point
for foreign weights) and :func:`export_official_state_dict` (ours -> official, buffers and tied
copies included). :func:`load_checkpoint` is the one loader.
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from collections.abc import Collection, Mapping
from functools import partial
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from .converted_copy import UNUSABLE_COPY_ERRORS, load_converted, sha256_of
from .swin import official_to_timm_key, timm_to_official_key

logger = logging.getLogger(__name__)

# Buffers the reference rebuilds instead of loading; dropped by exact name pattern.
_REBUILT_BUFFER = re.compile(
    r"^visual_encoder\.layers\.\d+\.blocks\.\d+\.(attn\.relative_position_index|attn_mask)$"
    r"|^(tag_encoder|text_decoder\.bert)\.embeddings\.position_ids$"
)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used, with the reason and what to do."""


def map_official_state_dict(checkpoint: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """Maps an official checkpoint (or its ``'model'`` entry) to this package's parameter names.

    Unwraps ``'model'``/``'state_dict'``, renames the legacy ``vision_multi`` prefix to
    ``tagging_head``, drops the rebuilt buffers, and moves Swin downsample keys to timm's stage.
    """
    state = checkpoint
    for wrapper in ("model", "state_dict"):
        if isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]  # type: ignore[assignment]
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"checkpoint entry {key!r} is not a tensor")
        if key.startswith("vision_multi."):
            key = "tagging_head." + key[len("vision_multi.") :]
        if _REBUILT_BUFFER.match(key):
            continue
        if key.startswith("visual_encoder."):
            key = official_to_timm_key(key)
        mapped[key] = value
    return mapped


def _named_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer under every name it has (tied copies, non-persistent buffers)."""
    out = {}
    for prefix, module in model.named_modules(remove_duplicate=False):
        items = list(module._parameters.items()) + list(module._buffers.items())
        for name, tensor in items:
            if tensor is not None:
                out[f"{prefix}.{name}" if prefix else name] = tensor
    return out


def export_official_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights under official names: what an official checkpoint's ``'model'`` holds."""
    return {
        timm_to_official_key(k) if k.startswith("visual_encoder.") else k: v.detach()
        for k, v in _named_tensors(model).items()
    }


def tied_groups(model: nn.Module) -> list[list[str]]:
    """Groups of state-dict names that refer to one shared tensor."""
    by_id: dict[int, list[str]] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        by_id.setdefault(id(tensor), []).append(name)
    return [names for names in by_id.values() if len(names) > 1]


def _sniff(path: Path) -> None:
    """Recognises files that are not checkpoints before torch tries to unpickle them."""
    with path.open("rb") as f:
        head = f.read(512)
    text = head.lstrip().lower()
    if text.startswith(b"version https://git-lfs"):
        raise CheckpointError(
            f"{path} is a Git LFS pointer, not the weights: run `git lfs pull` in that clone or "
            "download the file itself"
        )
    if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<")):
        raise CheckpointError(
            f"{path} is a web page, not a checkpoint: the link was probably a '/blob/' page; "
            "download from the '/resolve/' URL instead"
        )
    if not head.startswith((b"PK\x03\x04", b"\x80")):
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (unknown file header)")


def read_checkpoint(path: str | Path, trusted_sha256: Collection[str] = ()) -> dict:
    """Loads a ``.pth`` with ``weights_only=True`` (memory-mapped when possible).

    A file whose pickle holds objects that ``weights_only`` refuses is loaded unrestricted only
    if its sha256 is one of ``trusted_sha256`` (the catalogue's), never otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    _sniff(path)
    size = path.stat().st_size
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)  # legacy format
    except pickle.UnpicklingError as err:
        if sha256_of(path) in trusted_sha256:
            logger.info("%s holds non-tensor objects; its sha256 is the official one", path)
            return torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        raise CheckpointError(
            f"{path} holds objects that safe loading refuses and is not a known official file "
            f"(sha256 mismatch); refusing to unpickle it. Detail: {str(err).splitlines()[0]}"
        ) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise CheckpointError(
            f"{path} ({size:,} bytes) is truncated or corrupt: delete it and download it again "
            f"(detail: {str(err).splitlines()[0]})"
        ) from err


def _check_matches(model: nn.Module, state: Mapping[str, torch.Tensor], path: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if state[k].shape != expected[k].shape
    )
    if not (missing or unexpected or wrong_shape):
        return

    def listing(title: str, keys: list[str]) -> str:
        shown = "\n    ".join(keys[:25])
        more = f"\n    ... and {len(keys) - 25} more" if len(keys) > 25 else ""
        return f"\n  {title} ({len(keys)}):\n    {shown}{more}" if keys else ""

    raise CheckpointError(
        f"{path} does not fit this model's config (a checkpoint of another model or size?)"
        + listing("missing weights", missing)
        + listing("unexpected weights", unexpected)
        + listing("shape mismatches", wrong_shape)
    )


def _check_tied_copies(model: nn.Module, state: Mapping[str, torch.Tensor], path: Path) -> None:
    for names in tied_groups(model):
        present = [n for n in names if n in state]
        for other in present[1:]:
            if not torch.equal(state[present[0]], state[other]):
                raise CheckpointError(
                    f"{path}: '{present[0]}' and '{other}' must be the same (tied) weights "
                    "but differ; the file is not a consistent checkpoint"
                )


def cache_path_for(checkpoint: Path) -> Path:
    return checkpoint.with_suffix(".safetensors")


def _load_safetensors(model: nn.Module, path: Path) -> None:
    try:
        load_model(model, str(path), strict=True)
    except UNUSABLE_COPY_ERRORS as err:
        raise CheckpointError(f"{path} is not a usable converted checkpoint: {err}") from err


def load_checkpoint(
    model: nn.Module,
    path: str | Path,
    trusted_sha256: Collection[str] = (),
    write_cache: bool = True,
) -> None:
    """Loads an official checkpoint (or its converted safetensors copy) into ``model``, strictly.

    On first load the model part is written next to the ``.pth`` as ``.safetensors`` (about a
    third of an official file; the rest is optimizer state) and read from there while the
    ``.pth`` keeps the content it was made from (:func:`~.converted_copy.load_converted`).

    Raises:
        CheckpointError: unreadable file, tied copies that differ, or any missing, unexpected or
            mis-shaped weight (all listed).
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        _load_safetensors(model, path)
        return

    def convert() -> None:
        state = map_official_state_dict(read_checkpoint(path, trusted_sha256))
        _check_matches(model, state, path)
        _check_tied_copies(model, state, path)
        model.load_state_dict(state, strict=True)

    def save(_: None, copy: Path, metadata: dict[str, str]) -> None:
        save_model(model, str(copy), metadata=metadata)

    load_converted(
        path, cache_path_for(path), convert, partial(_load_safetensors, model), save, write_cache
    )
