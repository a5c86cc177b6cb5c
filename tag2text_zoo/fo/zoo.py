"""The FiftyOne remote-zoo side of ``tag2text_zoo/``: manifest, download, load and operator form.

FiftyOne copies the folder holding ``manifest.json`` (this package) to
``<model_zoo_dir>/tag2text-zoo/`` and calls the hooks of its ``__init__.py``. A model named
``<catalogue name>-torch`` is downloaded into ``<source>/<catalogue name>/`` (a model directory);
its ``base_filename``, ``<catalogue name>.config.json``, is a link to that directory's
``config.json`` made only once every file is complete, so FiftyOne never downloads it twice.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ..api import load_tagger
from ..assets.catalogue import CATALOGUE, ModelSpec
from ..assets.download import ensure_model_dir, local_model_dir
from ..assets.model_dir import ModelDirectory
from . import dense_zoo, grounded_zoo
from .model import TaggerModel, TaggerModelConfig

logger = logging.getLogger(__name__)

SOURCE_NAME = "tag2text-zoo"
MANIFEST = Path(__file__).resolve().parents[1] / "manifest.json"
_SUFFIX = "-torch"
_REQUIREMENTS = [
    "torch>=2.4", "torchvision>=0.19", "timm>=1.0.9", "transformers>=4.46", "tokenizers>=0.20",
    "huggingface_hub>=0.25", "safetensors>=0.4", "pillow>=10.0",
]  # fmt: skip


def zoo_name(catalogue_name: str) -> str:
    return catalogue_name + _SUFFIX


def catalogue_name(name: str) -> str:
    """``"tag2text-swin-14m-torch"`` -> ``"tag2text-swin-14m"`` (must be in the catalogue)."""
    base = name.removesuffix(_SUFFIX)
    if base not in CATALOGUE:
        known = ", ".join(map(zoo_name, [*CATALOGUE, *grounded_zoo.GROUNDED, *dense_zoo.DENSE]))
        raise ValueError(f"unknown model {name!r}; known: {known}")
    return base


def _grounded(name: str) -> str | None:
    """The grounded-sam entry of a zoo name, or None for a tagger."""
    base = name.removesuffix(_SUFFIX)
    return base if base in grounded_zoo.GROUNDED else None


def _dense(name: str) -> str | None:
    """The TagAlign entry of a zoo name, or None."""
    base = name.removesuffix(_SUFFIX)
    return base if base in dense_zoo.DENSE else None


def _manifest_entry(spec: ModelSpec) -> dict[str, Any]:
    return {
        "base_name": zoo_name(spec.name),
        "base_filename": f"{spec.name}.config.json",
        "author": "Xinyu Huang et al. (recognize-anything)",
        "version": None,
        "url": None,
        "source": spec.source,
        "license": spec.license,
        "description": spec.description,
        "size_bytes": spec.size_bytes,
        "manager": None,
        "default_deployment_config_dict": None,
        "requirements": {
            "packages": _REQUIREMENTS,
            "cpu": {"support": True},
            "gpu": {"support": True},
        },
        "tags": [*spec.tags, "torch"],
        "date_added": "2026-01-01T00:00:00",
    }


def _other_entry(name: str, fields: dict[str, Any]) -> dict[str, Any]:
    like = _manifest_entry(next(iter(CATALOGUE.values())))
    return {**like, "base_name": zoo_name(name), "base_filename": f"{name}.config.json", **fields}


def build_manifest() -> dict[str, Any]:
    """``manifest.json`` as generated from :data:`CATALOGUE`, the grounded-sam pairs and the
    TagAlign entry (a test checks they agree)."""
    return {
        "name": SOURCE_NAME,
        "url": None,
        "models": [_manifest_entry(spec) for spec in CATALOGUE.values()]
        + [_other_entry(n, grounded_zoo.manifest_fields(n)) for n in grounded_zoo.GROUNDED]
        + [_other_entry(n, dense_zoo.manifest_fields(n)) for n in dense_zoo.DENSE],
    }


def write_manifest(path: Path = MANIFEST) -> None:
    path.write_text(json.dumps(build_manifest(), indent=4) + "\n", encoding="utf-8")


def download_model(name: str, model_path: str | os.PathLike) -> None:
    """Makes ``<source>/<catalogue name>/`` a complete model directory, then links ``model_path``.

    With ``$TAG2TEXT_ZOO_LOCAL_MODELS/<catalogue name>/`` present, that directory is linked
    instead of downloading (offline installs, tests).
    """
    if _grounded(name):
        grounded_zoo.download_model(_grounded(name), Path(model_path))
        return
    if _dense(name):
        dense_zoo.download_model(_dense(name), Path(model_path))
        return
    base, marker = catalogue_name(name), Path(model_path)
    target = marker.parent / base
    local = local_model_dir(base)
    if local is not None:
        ModelDirectory.open(local)  # refuse an incomplete directory before linking it
        if target.is_symlink():
            target.unlink()
        target.symlink_to(local.resolve(), target_is_directory=True)
        logger.info("Using the local model directory %s for %s", local, name)
    else:
        ensure_model_dir(CATALOGUE[base], marker.parent)
    if marker.is_symlink() or marker.exists():
        marker.unlink()
    marker.symlink_to(Path(base) / "config.json")


def load_model(
    name: str,
    model_path: str | os.PathLike,
    *,
    prompt_field: str | None = None,
    caption: bool = True,
    **tagger_options: Any,
) -> Any:
    """The zoo model as a :class:`TaggerModel`; ``tagger_options`` go to :func:`load_tagger`
    (``device``, ``dtype``, ``threshold``, ``tag_thresholds``, ``exif_transpose``, ...).

    A ``grounded-sam-*`` name gives a :class:`GroundedModel` (see
    :func:`.grounded_zoo.load_model` for its options), ``tagalign-*`` a :class:`DenseModel`
    (see :func:`.dense_zoo.load_model`)."""
    if _grounded(name):
        return grounded_zoo.load_model(
            _grounded(name), Path(model_path), prompt_field=prompt_field, **tagger_options
        )
    if _dense(name):
        return dense_zoo.load_model(
            _dense(name), Path(model_path), prompt_field=prompt_field, **tagger_options
        )
    model_dir = Path(model_path).parent / catalogue_name(name)
    tagger = load_tagger(model_dir, **tagger_options)
    return TaggerModel(tagger, TaggerModelConfig(prompt_field=prompt_field, caption=caption))


def resolve_input(name: str, ctx: Any) -> Any:
    """The options form FiftyOne's "apply zoo model" operator shows for our models."""
    import fiftyone.operators.types as types

    inputs = types.Object()
    if _grounded(name):
        inputs.enum("device", ["auto", "cuda", "cpu"], default="auto", label="Device")
        inputs.enum("dtype", ["float32", "bfloat16", "float16"], default="float32")
        inputs.str("prompt_field", label="Tags field", description="Classifications or list")
        inputs.float("box_threshold", default=0.25, label="Box threshold")
        inputs.float("text_threshold", default=0.2, label="Text threshold")
        other = (
            "empty: the pair's; else a hub id, folder, official checkpoint file or catalogue name"
        )
        inputs.str("detector", label="Grounding DINO", description=other)
        inputs.str("segmenter", label="SAM", description=other)
        return types.Property(inputs)
    if _dense(name):
        inputs.enum("device", ["auto", "cuda", "cpu"], default="auto", label="Device")
        inputs.enum("dtype", ["float32", "bfloat16", "float16"], default="float32")
        inputs.str("prompt_field", label="Tags field", description="Classifications or list")
        inputs.str("projector", label="TagAlign checkpoint", description="empty: training-free")
        inputs.enum("settings", ["main", "voc"], default="main", label="Scoring settings")
        inputs.float("bg_thresh", label="Background threshold", description="default: settings'")
        return types.Property(inputs)
    inputs.enum("device", ["auto", "cuda", "cpu"], default="auto", label="Device")
    inputs.enum("dtype", ["float32", "bfloat16", "float16"], default="float32", label="Precision")
    inputs.float("threshold", label="Tag threshold", description="global; default: the model's")
    if CATALOGUE[catalogue_name(name)].model_type == "tag2text":
        inputs.bool("caption", default=True, label="Write captions")
        inputs.str(
            "prompt_field",
            label="Prompt field",
            description="string or Classifications field whose tags steer each caption",
        )
    return types.Property(inputs)


def parse_parameters(name: str, ctx: Any, params: dict[str, Any]) -> None:
    """Turns the form's values into :func:`load_model` keyword arguments (in place)."""
    for key in [k for k, v in params.items() if v in (None, "")]:
        del params[key]
    if params.get("device") == "auto":
        del params["device"]
