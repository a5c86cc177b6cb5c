"""Zoo entry ``tagalign-clip-vit-b16-torch``: TagAlign dense segmentation over a hub CLIP.

The frozen CLIP is downloaded into ``<source>/<name>/clip`` (a transformers folder, with its
tokenizer); the marker links to its ``config.json`` once complete.
``$TAG2TEXT_ZOO_LOCAL_MODELS/<name>/clip`` is linked instead of downloading. The model is
training-free (CLIP-Surgery) unless ``projector=`` names a TagAlign checkpoint.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from .. import defaults
from .install import install_hub_parts

ENTRIES = {"tagalign-clip-vit-b16": defaults.CLIP}


def manifest_fields(name: str) -> dict[str, Any]:
    return {
        "author": "Qinying Liu et al. (TagAlign), OpenAI (CLIP)",
        "source": f"https://huggingface.co/{ENTRIES[name]}, https://arxiv.org/abs/2312.14149",
        "license": "MIT (CLIP weights)",
        "description": "TagAlign / CLIP-Surgery dense segmentation of each image into its tags "
        "(training-free by default; projector= loads a TagAlign checkpoint)",
        "size_bytes": 599_000_000,
        "tags": ["segmentation", "dense", "zero-shot", "torch"],
    }


def download(name: str, marker: Path) -> None:
    """Fills ``<source>/<name>/clip``, then links the marker."""
    install_hub_parts(name, marker, {"clip": ENTRIES[name]})


def load(
    name: str,
    marker: Path,
    *,
    prompt_field: str | None = None,
    classes: list[str] | None = None,
    projector: str | None = None,
    settings: str = "main",
    bg_thresh: float | None = None,
    **options: Any,
) -> Any:
    """The entry as a ``DenseModel``.

    Args:
        prompt_field, classes: the class source (see ``DenseModelConfig``).
        projector: a TagAlign checkpoint (``.pth``); None: training-free.
        settings: ``"main"`` (the reference's eval settings) or ``"voc"`` (softmax scoring).
        bg_thresh: overrides the settings' background threshold.
        **options: ``device``, ``dtype``, ``batch_size`` for ``load_dense_segmenter``.
    """
    from .. import (
        MAIN_SETTINGS,
        VOC_SETTINGS,
        DenseModel,
        DenseModelConfig,
        load_dense_segmenter,
    )

    chosen = {"main": MAIN_SETTINGS, "voc": VOC_SETTINGS}.get(settings)
    if chosen is None:
        raise ValueError(f"settings must be 'main' or 'voc', not {settings!r}")
    if bg_thresh is not None:
        chosen = dataclasses.replace(chosen, bg_thresh=bg_thresh)
    clip = marker.parent / name / "clip"
    segmenter = load_dense_segmenter(clip, projector, settings=chosen, **options)
    return DenseModel(segmenter, DenseModelConfig(prompt_field=prompt_field, classes=classes))


def form(name: str, inputs: Any) -> None:
    """The options of ``load``, beyond device and dtype."""
    inputs.str("prompt_field", label="Tags field", description="Classifications or list")
    inputs.str("projector", label="TagAlign checkpoint", description="empty: training-free")
    inputs.enum("settings", ["main", "voc"], default="main", label="Scoring settings")
    inputs.float("bg_thresh", label="Background threshold", description="default: settings'")
