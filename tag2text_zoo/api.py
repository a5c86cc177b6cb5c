"""The public Python API that the CLI, the FiftyOne adapters and the operators all call."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from .assets.catalogue import CATALOGUE
from .assets.download import ensure_model_dir, local_model_dir
from .assets.model_dir import ModelDirectory
from .engines.tagger import Tagger
from .engines.tokenizer import TagTokenizer
from .models import build_uninitialized, load_checkpoint


def resolve_model_dir(
    name_or_dir: str | Path, models_dir: str | Path | None = None
) -> ModelDirectory:
    """A model directory from a path, or from a catalogue name (downloaded on first use)."""
    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        return ModelDirectory.open(path)
    name = str(name_or_dir)
    if name not in CATALOGUE:
        raise ValueError(
            f"{name!r} is neither a model directory nor a catalogue name; "
            f"known names: {', '.join(sorted(CATALOGUE))}"
        )
    local = local_model_dir(name)  # an offline install wins over downloading
    return ModelDirectory.open(local or ensure_model_dir(CATALOGUE[name], models_dir))


def load_tagger(
    name_or_dir: str | Path,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype = "float32",
    *,
    models_dir: str | Path | None = None,
    generation: dict[str, Any] | None = None,
    **options: Any,
) -> Tagger:
    """Loads a tagger from a catalogue name (e.g. ``"ram-plus-swin-large-14m"``) or a directory.

    Args:
        name_or_dir: catalogue name or model directory path.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``; default: CUDA when available.
        dtype: ``"float32"``; ``"bfloat16"`` / ``"float16"`` run under autocast.
        models_dir: where catalogue models are downloaded (default ``$TAG2TEXT_ZOO_HOME`` or
            ``~/.cache/tag2text_zoo``).
        generation: caption settings overriding the model's (``num_beams``, ``max_length``,
            ``min_length``, ``repetition_penalty``, ``do_sample``, ``top_p``, ...).
        **options: :class:`Tagger` options: ``threshold``, ``tag_thresholds``, ``delete_tags``,
            ``exif_transpose``, ``batch_size``.
    """
    model_dir = resolve_model_dir(name_or_dir, models_dir)
    cfg = model_dir.config
    model = build_uninitialized(cfg)
    trusted = {f.sha256 for spec in CATALOGUE.values() for f in spec.files if f.sha256}
    load_checkpoint(model, model_dir.checkpoint, trusted_sha256=trusted)
    tokenizer = None
    if cfg.has_captioner:
        tokenizer = TagTokenizer(model_dir.vocab, cfg.tokenizer, cfg.tag_max_tokens)
    gen = dataclasses.replace(cfg.generation, **(generation or {}))
    return Tagger(
        model,
        cfg,
        model_dir.tag_list(),
        tokenizer,
        tag_names_chinese=model_dir.tag_list_chinese(),
        class_thresholds=model_dir.class_thresholds(),
        device=device,
        dtype=dtype,
        generation=gen,
        **options,
    )
