"""An official SAM / SAM-HQ / SAM 2 / Grounding DINO checkpoint file as a transformers model.

The file is read safely (:func:`~.checkpoint.read_checkpoint`: ``weights_only=True``, clear errors
for truncated, HTML and LFS-pointer files), recognised and converted (:mod:`.official_formats`),
and the converted weights and config are kept next to it as ``<name>.safetensors``, used while
the source is unchanged (:func:`~.converted_copy.load_converted`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import PretrainedConfig, PreTrainedModel

from .checkpoint import CheckpointError, cache_path_for, read_checkpoint
from .converted_copy import UNUSABLE_COPY_ERRORS, load_converted
from .official_formats import FORMATS, OfficialFormat, convert, unwrap

logger = logging.getLogger(__name__)

Converted = tuple[PretrainedConfig, dict[str, torch.Tensor]]


def _family_check(fmt: OfficialFormat, families: Collection[str] | None, path: Path) -> None:
    if families is not None and fmt.family not in families:
        wanted = " or ".join(FORMATS[f].name for f in families)
        raise CheckpointError(f"{path} is a {fmt.name} checkpoint; expected {wanted}")


def _unshared(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Tensors that share memory (tied names, fused projections split in three) copied apart,
    as safetensors stores each tensor on its own."""
    seen: set[int] = set()
    out = {}
    for key, value in state.items():
        storage = value.untyped_storage().data_ptr()
        out[key] = value.contiguous() if storage not in seen else value.clone()
        seen.add(storage)
    return out


def _build(
    fmt: OfficialFormat, config: PretrainedConfig, state: dict, path: Path
) -> PreTrainedModel:
    """The transformers model of ``state``: every weight present and of its shape. Weights it has
    no place for are refused where the official loader refuses them, else dropped and named."""
    model, info = fmt.model_class.from_pretrained(
        None,
        config=config,
        state_dict=state,
        output_loading_info=True,
        ignore_mismatched_sizes=True,  # reported below rather than raised
    )
    unexpected = sorted(info.get("unexpected_keys", ()))
    if unexpected and not fmt.strict:
        dropped = ", ".join(unexpected)
        logger.warning(
            "%s: dropped %d weights the model does not use: %s", path, len(unexpected), dropped
        )
        unexpected = []
    problems = {
        "missing weights": sorted(info.get("missing_keys", ())),
        "unexpected weights": unexpected,
        "shape mismatches": [_mismatch(m, state, model) for m in info.get("mismatched_keys", ())],
    }
    if any(problems.values()):
        listing = "".join(
            f"\n  {title} ({len(keys)}): "
            + ", ".join(keys[:10])
            + (" ..." if len(keys) > 10 else "")
            for title, keys in problems.items()
            if keys
        )
        raise CheckpointError(f"{path} does not convert to a complete {fmt.name} model:{listing}")
    return model.eval()


def _mismatch(entry: Any, state: dict, model: PreTrainedModel) -> str:
    """transformers 5 reports a mismatch as (key, file shape, model shape), 4 as the key alone."""
    if isinstance(entry, tuple) and len(entry) == 3:
        key, found, wanted = entry
    else:
        key = str(entry)
        found, wanted = state.get(key), model.state_dict().get(key)
        if found is None or wanted is None:
            return key
        found, wanted = found.shape, wanted.shape
    return f"{key} (file {tuple(found)}, model {tuple(wanted)})"


def load_official_model(
    path: str | Path,
    *,
    families: Collection[str] | None = None,
    trusted_sha256: Collection[str] = (),
    write_copy: bool = True,
    **layout: Any,
) -> PreTrainedModel:
    """The transformers model of an official checkpoint file (or of its converted copy).

    Args:
        path: ``sam_vit_h_4b8939.pth``, ``sam_hq_vit_h.pth``, ``sam2.1_hiera_large.pt``,
            ``groundingdino_swint_ogc.pth``, ... (or a ``.safetensors`` copy made from one).
        families: accepted ``model_type`` values (e.g. ``("sam", "sam_hq", "sam2")``); None: any.
        trusted_sha256: digests of files that may be unpickled without ``weights_only``.
        write_copy: keep the converted weights next to the file.
        **layout: SAM 2 layout fields the weights do not show, for non-official layouts
            (see :func:`~.official_sam2.hiera_layout`); recorded in the copy.

    Raises:
        CheckpointError: unreadable, truncated or unrecognised file, another family than
            ``families``, or weights that do not fill the model (all listed).
    """
    path = Path(path)
    options = json.dumps(layout, sort_keys=True)

    def convert_file() -> tuple[OfficialFormat, Converted]:
        try:
            fmt, config, state = convert(unwrap(read_checkpoint(path, trusted_sha256)), **layout)
        except (ValueError, KeyError, IndexError) as err:
            if isinstance(err, CheckpointError):
                raise
            detail = f"missing weight {err}" if isinstance(err, KeyError) else str(err)
            raise CheckpointError(f"{path}: {detail}") from err
        _family_check(fmt, families, path)
        return fmt, (config, state)

    def load_copy(copy: Path) -> tuple[OfficialFormat, Converted]:
        with safe_open(str(copy), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("layout", "{}") != options:
            raise ValueError("made with other layout fields")
        fmt = FORMATS[meta["family"]]
        _family_check(fmt, families, path)
        config = fmt.model_class.config_class.from_dict(json.loads(meta["config"]))
        return fmt, (config, load_file(str(copy)))

    def save_copy(value: tuple[OfficialFormat, Converted], tmp: Path, meta: dict) -> None:
        fmt, (config, state) = value
        own = {"family": fmt.family, "config": config.to_json_string(), "layout": options}
        save_file(_unshared(state), str(tmp), metadata={**meta, **own})

    if path.suffix == ".safetensors":
        try:
            fmt, (config, state) = load_copy(path)
        except UNUSABLE_COPY_ERRORS as err:
            raise CheckpointError(f"{path} is not a converted official checkpoint ({err})") from err
    else:
        copy = cache_path_for(path)
        fmt, (config, state) = load_converted(
            path, copy, convert_file, load_copy, save_copy, write_copy
        )
    return _build(fmt, config, state, path)
