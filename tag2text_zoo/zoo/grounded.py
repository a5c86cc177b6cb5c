"""Zoo entries ``grounded-sam-<detector>-<sam>-torch``: a Grounding DINO + SAM pair from the hub.

A model is downloaded into ``<source>/<name>/detector`` and ``<source>/<name>/segmenter``
(transformers folders); its marker links to the detector's ``config.json`` once both are
complete. ``$TAG2TEXT_ZOO_LOCAL_MODELS/<name>/`` holding those two folders is linked instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import defaults
from .install import install_hub_parts


@dataclass(frozen=True)
class GroundedPair:
    """A hub Grounding DINO and SAM pair."""

    detector: str
    segmenter: str
    size_bytes: int
    description: str


_BASE, _TINY = defaults.DETECTORS[1], defaults.DETECTORS[0]
ENTRIES = {
    "grounded-sam-tiny-vit-base": GroundedPair(
        _TINY,
        defaults.SEGMENTERS[0],
        1_060_000_000,
        "Grounding DINO tiny + SAM ViT-B: each image's tags -> boxes -> masks",
    ),
    "grounded-sam-base-vit-large": GroundedPair(
        _BASE,
        defaults.SEGMENTERS[1],
        2_180_000_000,
        "Grounding DINO base + SAM ViT-L: each image's tags -> boxes -> masks",
    ),
    "grounded-sam-base-vit-huge": GroundedPair(
        _BASE,
        defaults.SEGMENTERS[2],
        3_460_000_000,
        "Grounding DINO base + SAM ViT-H: each image's tags -> boxes -> masks",
    ),
}


def manifest_fields(name: str) -> dict[str, Any]:
    pair = ENTRIES[name]
    return {
        "author": "IDEA-Research (Grounding DINO), Meta AI (SAM)",
        "source": f"https://huggingface.co/{pair.detector}, https://huggingface.co/{pair.segmenter}",
        "license": "Apache-2.0",
        "description": pair.description,
        "size_bytes": pair.size_bytes,
        "tags": ["detection", "segmentation", "grounded", "torch"],
    }


def download(name: str, marker: Path) -> None:
    """Fills ``<source>/<name>/{detector,segmenter}``, then links the marker."""
    install_hub_parts(
        name, marker, {"detector": ENTRIES[name].detector, "segmenter": ENTRIES[name].segmenter}
    )


def load(
    name: str,
    marker: Path,
    *,
    prompt_field: str | None = None,
    classes: list[str] | None = None,
    semantic: bool = False,
    tagger: str | None = None,
    detector: str | None = None,
    segmenter: str | None = None,
    **options: Any,
) -> Any:
    """The pair as a ``GroundedModel``; ``tagger`` (catalogue name or model directory) tags the
    images in the same pass; ``detector`` / ``segmenter`` (a hub id, folder, official checkpoint
    file or catalogue name) replace a model of the pair; ``options`` go to
    ``load_grounded_segmenter`` (``device``, ``dtype``, thresholds, ``nms_iou``, ...)."""
    from .. import GroundedModel, GroundedModelConfig, load_grounded_segmenter, load_tagger

    folder = marker.parent / name
    engine = load_grounded_segmenter(
        detector or folder / "detector", segmenter or folder / "segmenter", **options
    )
    tagging = load_tagger(tagger, device=engine.device) if tagger else None
    config = GroundedModelConfig(prompt_field=prompt_field, classes=classes, semantic=semantic)
    return GroundedModel(engine, config, tagging)


def form(name: str, inputs: Any) -> None:
    """The options of ``load``, beyond device and dtype."""
    inputs.str("prompt_field", label="Tags field", description="Classifications or list")
    inputs.float("box_threshold", default=defaults.BOX_THRESHOLD, label="Box threshold")
    inputs.float("text_threshold", default=defaults.TEXT_THRESHOLD, label="Text threshold")
    other = "empty: the pair's; else a hub id, folder, official checkpoint file or catalogue name"
    inputs.str("detector", label="Grounding DINO", description=other)
    inputs.str("segmenter", label="SAM", description=other)
