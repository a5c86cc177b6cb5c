"""Zoo entries ``<catalogue name>-torch``: Tag2Text, RAM and RAM++ taggers.

A model is downloaded into ``<source>/<catalogue name>/`` (a model directory); its marker
``<catalogue name>.config.json`` links to that directory's ``config.json`` once every file is
complete. ``$TAG2TEXT_ZOO_LOCAL_MODELS/<catalogue name>/`` is linked instead of downloading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..assets.catalogue import CATALOGUE
from ..assets.download import ensure_model_dir
from ..assets.model_dir import ModelDirectory
from .install import install

ENTRIES = CATALOGUE


def manifest_fields(name: str) -> dict[str, Any]:
    spec = CATALOGUE[name]
    return {
        "author": "Xinyu Huang et al. (recognize-anything)",
        "source": spec.source,
        "license": spec.license,
        "description": spec.description,
        "size_bytes": spec.size_bytes,
        "tags": [*spec.tags, "torch"],
    }


def download(name: str, marker: Path) -> None:
    """Makes ``<source>/<name>/`` a complete model directory, then links the marker."""
    spec = CATALOGUE[name]
    install(name, marker, lambda target: ensure_model_dir(spec, target.parent), ModelDirectory.open)


def load(
    name: str,
    marker: Path,
    *,
    prompt_field: str | None = None,
    caption: bool = True,
    classes: list[str] | None = None,
    **options: Any,
) -> Any:
    """The tagger as a ``TaggerModel``.

    Args:
        prompt_field, caption: see ``TaggerModelConfig``.
        classes: an open-set vocabulary replacing the built-in tags (RAM / RAM++), as FiftyOne's
            CLIP zoo models take ``classes``; ``load_tagger``'s ``vocabulary``.
        **options: ``load_tagger``'s (``device``, ``dtype``, ``threshold``, ``tag_thresholds``,
            ``exif_transpose``, ``descriptions``, ``text_encoder``, ...).
    """
    from .. import TaggerModel, TaggerModelConfig, load_tagger

    tagger = load_tagger(marker.parent / name, vocabulary=classes, **options)
    return TaggerModel(tagger, TaggerModelConfig(prompt_field=prompt_field, caption=caption))


def form(name: str, inputs: Any) -> None:
    """The options of ``load``, beyond device and dtype."""
    inputs.float("threshold", label="Tag threshold", description="global; default: the model's")
    if CATALOGUE[name].model_type != "tag2text":
        inputs.str(
            "classes",
            label="Open-set tags",
            description="comma-separated names replacing the built-in tags (empty: built-in)",
        )
    if CATALOGUE[name].model_type == "tag2text":
        inputs.bool("caption", default=True, label="Write captions")
        inputs.str(
            "prompt_field",
            label="Prompt field",
            description="string or Classifications field whose tags steer each caption",
        )
