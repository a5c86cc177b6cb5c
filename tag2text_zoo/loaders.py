"""Loading the three capabilities' engines, and model specs (a model to load, as plain data).

- :func:`load_tagger`: Tag2Text, RAM, RAM++ from a catalogue name or a model directory.
- :func:`load_grounded_segmenter`: Grounding DINO + a SAM-family model (hub ids or folders).
- :func:`load_dense_segmenter`: TagAlign / CLIP-Surgery over a CLIP (hub id or folder).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from .assets.catalogue import CATALOGUE
from .assets.download import ensure_model_dir, local_model_dir
from .assets.model_dir import ModelDirectory
from .engines.dense import load_dense_segmenter
from .engines.device import resolve_precision
from .engines.grounded import load_grounded_segmenter
from .engines.tagger import Tagger, check_compilable, check_open_set
from .engines.tokenizer import TagTokenizer
from .engines.vocabulary import VocabularyEncoder
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
    vocabulary: Sequence[str] | None = None,
    descriptions: Mapping[str, Sequence[str]] | None = None,
    text_encoder: str | Path | None = None,
    **options: Any,
) -> Tagger:
    """Loads a tagger from a catalogue name (e.g. ``"ram-plus-swin-large-14m"``) or a directory.

    Args:
        name_or_dir: catalogue name or model directory path.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``; default: CUDA when available.
        dtype: ``"float32"``; ``"bfloat16"`` / ``"float16"`` run under autocast; ``"int8"``
            (CPU only): linear layers as int8 matrix products, the fast path on CPUs without
            AMX (not exact: a full-size Tag2Text's tag probabilities moved by up to 0.012).
        models_dir: where catalogue models are downloaded (default ``$TAG2TEXT_ZOO_HOME`` or
            ``~/.cache/tag2text_zoo``).
        generation: caption settings overriding the model's (``num_beams``, ``max_length``,
            ``min_length``, ``repetition_penalty``, ``do_sample``, ``top_p``, ...).
        vocabulary: open-set tag names replacing the built-in tags (RAM / RAM++ only; see
            :meth:`Tagger.with_vocabulary`); ``threshold`` then applies to them (default 0.5).
        descriptions: ``name -> [description, ...]`` for the vocabulary (RAM++).
        text_encoder: the CLIP text model (hub id or folder) embedding the vocabulary; default
            ``openai/clip-vit-base-patch16``.
        **options: :class:`Tagger` options: ``threshold``, ``tag_thresholds``, ``delete_tags``,
            ``exif_transpose``, ``batch_size``, ``compile_encoder`` (``torch.compile`` the image
            encoder: the first batch compiles it, about a minute on a 2-core CPU; later ones
            run faster, Swin-B 12% in float32 and 20% in bfloat16 there).

    Raises:
        ValueError: a vocabulary for a model without CLIP label embeddings (Tag2Text), or
            ``compile_encoder`` with int8, checked before the weights load.
    """
    # refuse bad values before loading
    precision = resolve_precision(device, dtype, allow_float64=True, allow_int8=True)
    check_compilable(precision, bool(options.get("compile_encoder")))
    model_dir = resolve_model_dir(name_or_dir, models_dir)
    cfg = model_dir.config
    if vocabulary is not None:
        check_open_set(cfg)
    model = build_uninitialized(cfg)
    trusted = {f.sha256 for spec in CATALOGUE.values() for f in spec.files if f.sha256}
    load_checkpoint(model, model_dir.checkpoint, trusted_sha256=trusted)
    tokenizer = None
    if cfg.has_captioner:
        tokenizer = TagTokenizer(model_dir.vocab, cfg.tokenizer, cfg.tag_max_tokens)
    gen = dataclasses.replace(cfg.generation, **(generation or {}))
    tagger = Tagger(
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
    if vocabulary is None:
        return tagger
    encoder = None if text_encoder is None else VocabularyEncoder.from_pretrained(str(text_encoder))
    threshold = options.get("threshold")
    return tagger.with_vocabulary(
        vocabulary,
        descriptions,
        encoder=encoder,
        **({} if threshold is None else {"threshold": threshold}),
    )


Kind = Literal["tagger", "grounded", "dense"]
_LOADERS = {
    "tagger": load_tagger,
    "grounded": load_grounded_segmenter,
    "dense": load_dense_segmenter,
}


@dataclass(frozen=True)
class ModelSpec:
    """A model to load, as plain data: which loader and its keyword arguments.

    The runners take one wherever they take a loaded model; a backend that runs models in other
    processes can send the spec (picklable, JSON-able) instead of the model.

    Example: ``ModelSpec("tagger", {"name_or_dir": "tag2text-swin-14m", "device": "cuda"})``.

    Attributes:
        kind: ``"tagger"`` (:func:`load_tagger`), ``"grounded"``
            (:func:`load_grounded_segmenter`) or ``"dense"`` (:func:`load_dense_segmenter`).
        kwargs: the loader's keyword arguments.
    """

    kind: Kind
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in _LOADERS:
            raise ValueError(f"unknown model kind {self.kind!r}; expected one of {list(_LOADERS)}")

    def load(self) -> Any:
        return _LOADERS[self.kind](**self.kwargs)


def loaded(model: Any, kind: Kind) -> Any:
    """``model`` itself, or the model that a :class:`ModelSpec` of ``kind`` describes, loaded.

    Raises:
        ValueError: a spec of another kind.
    """
    if not isinstance(model, ModelSpec):
        return model
    if model.kind != kind:
        raise ValueError(f"a {model.kind!r} model spec was given where a {kind!r} is needed")
    return model.load()
