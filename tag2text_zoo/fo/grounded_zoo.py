"""Zoo entries ``grounded-sam-<detector>-<sam>-torch``: a Grounding DINO + SAM pair from the hub.

A model is downloaded into ``<source>/<name>/detector`` and ``<source>/<name>/segmenter``
(transformers folders); its marker ``<name>.config.json`` links to the detector's
``config.json`` once both are complete. ``$TAG2TEXT_ZOO_LOCAL_MODELS/<name>/`` holding those two
folders is linked instead of downloading (offline installs, tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .hub_parts import fetch_hub_parts

if TYPE_CHECKING:
    from .grounded_model import GroundedModel


@dataclass(frozen=True)
class GroundedSpec:
    """A hub Grounding DINO and SAM pair."""

    detector: str
    segmenter: str
    size_bytes: int
    description: str


GROUNDED = {
    "grounded-sam-tiny-vit-base": GroundedSpec(
        "IDEA-Research/grounding-dino-tiny", "facebook/sam-vit-base", 1_060_000_000,
        "Grounding DINO tiny + SAM ViT-B: each image's tags -> boxes -> masks",
    ),
    "grounded-sam-base-vit-large": GroundedSpec(
        "IDEA-Research/grounding-dino-base", "facebook/sam-vit-large", 2_180_000_000,
        "Grounding DINO base + SAM ViT-L: each image's tags -> boxes -> masks",
    ),
    "grounded-sam-base-vit-huge": GroundedSpec(
        "IDEA-Research/grounding-dino-base", "facebook/sam-vit-huge", 3_460_000_000,
        "Grounding DINO base + SAM ViT-H: each image's tags -> boxes -> masks",
    ),
}  # fmt: skip


def manifest_fields(name: str) -> dict[str, Any]:
    """The manifest entry fields that differ from the taggers'."""
    spec = GROUNDED[name]
    return {
        "author": "IDEA-Research (Grounding DINO), Meta AI (SAM)",
        "source": f"https://huggingface.co/{spec.detector}, https://huggingface.co/{spec.segmenter}",
        "license": "Apache-2.0",
        "description": spec.description,
        "size_bytes": spec.size_bytes,
        "tags": ["detection", "segmentation", "grounded", "torch"],
    }


def download_model(name: str, marker: Path) -> None:
    """Fills ``<source>/<name>/{detector,segmenter}``, then links the marker."""
    fetch_hub_parts(
        name, marker, {"detector": GROUNDED[name].detector, "segmenter": GROUNDED[name].segmenter}
    )


def load_model(
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
) -> GroundedModel:
    """The pair as a :class:`GroundedModel`; ``tagger`` (catalogue name or model directory) tags
    the images in the same pass; ``detector`` / ``segmenter`` (a hub id, folder, official
    checkpoint file or catalogue name) replace a model of the pair; ``options`` go to
    :func:`load_grounded_segmenter` (``device``, ``dtype``, thresholds, ``nms_iou``, ...)."""
    from ..engines.grounded import load_grounded_segmenter  # transformers: only when used
    from .grounded_model import GroundedModel, GroundedModelConfig

    folder = marker.parent / name
    engine = load_grounded_segmenter(
        detector or folder / "detector", segmenter or folder / "segmenter", **options
    )
    tagging = None
    if tagger:
        from ..api import load_tagger

        tagging = load_tagger(tagger, device=engine.device)
    config = GroundedModelConfig(prompt_field=prompt_field, classes=classes, semantic=semantic)
    return GroundedModel(engine, config, tagging)
