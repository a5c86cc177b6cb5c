"""Pure converters between engine results and FiftyOne labels; no model, no database."""

from __future__ import annotations

from collections.abc import Iterable

import fiftyone as fo
import fiftyone.core.fields as fof

from ..engines.tagger import TagResult


def to_classifications(
    result: TagResult,
    confidence_thresh: float | None = None,
    classes: Iterable[str] | None = None,
) -> fo.Classifications:
    """One image's tags as ``fo.Classifications`` (label = tag name, confidence = score).

    The tag lists repeat some words under several class indices; each word is kept once, with
    its highest score. RAM results carry ``tags_chinese``, stored as a ``label_chinese`` attribute.

    Args:
        result: the engine's output for one image.
        confidence_thresh: keep tags whose score is ``>=`` this (FiftyOne's convention).
        classes: keep only these tag names.
    """
    chinese = getattr(result, "tags_chinese", None) or [None] * len(result.tags)
    best: dict[str, tuple[float, str | None]] = {}
    for name, score, zh in zip(result.tags, result.scores, chinese, strict=True):
        name = name.strip()
        if name not in best or score > best[name][0]:
            best[name] = (score, zh)
    wanted = None if classes is None else set(classes)
    labels = []
    for name, (score, zh) in best.items():
        if confidence_thresh is not None and score < confidence_thresh:
            continue
        if wanted is not None and name not in wanted:
            continue
        extra = {} if zh is None else {"label_chinese": zh}
        labels.append(fo.Classification(label=name, confidence=score, **extra))
    return fo.Classifications(classifications=labels)


def prompt_tags(value: object, sample_id: str, field: str) -> str | list[str] | None:
    """A prompt field's value as the engine's ``specified_tags`` entry (None: the model's tags).

    Raises:
        TypeError: the value is neither a string, a list of strings nor ``fo.Classifications``.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, fo.Classifications):
        return [c.label for c in value.classifications if c.label]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise TypeError(
        f"sample {sample_id}: prompt field {field!r} holds a {type(value).__name__}; "
        "expected a string such as 'cloud,sky', a list of strings or fo.Classifications"
    )


def check_prompt_field(samples: fo.core.collections.SampleCollection, field: str) -> None:
    """Refuses, before any work, a prompt field that is missing or of a type we cannot read.

    Raises:
        ValueError: the field does not exist or is not a string / string list / Classifications.
    """
    schema_field = samples.get_field(field)
    if schema_field is None:
        raise ValueError(f"prompt field {field!r} does not exist in {samples._dataset.name!r}")
    ok = isinstance(schema_field, fof.StringField) or (
        isinstance(schema_field, fof.ListField) and isinstance(schema_field.field, fof.StringField)
    )
    if isinstance(schema_field, fof.EmbeddedDocumentField):
        ok = issubclass(schema_field.document_type, fo.Classifications)
    if not ok:
        kind = getattr(schema_field, "document_type", None) or type(schema_field)
        raise ValueError(
            f"prompt field {field!r} is a {kind.__name__}; specified tags must come from a "
            "StringField (e.g. 'cloud,sky'), a list of strings or an fo.Classifications field"
        )


def record_mask_targets(dataset: fo.Dataset, field: str, targets: dict[int, str]) -> dict[int, str]:
    """Adds ``targets`` (pixel value -> class) to ``dataset.mask_targets[field]`` and saves.

    Values already in the dataset keep their meaning, so masks written earlier stay valid.

    Raises:
        ValueError: the dataset already maps a pixel value to a different class.
    """
    merged = {int(k): v for k, v in dataset.mask_targets.get(field, {}).items()}
    for value, name in targets.items():
        if merged.get(value, name) != name:
            raise ValueError(
                f"mask_targets of {field!r} map {value} to {merged[value]!r}, not {name!r}"
            )
        merged[value] = name
    dataset.mask_targets = {**dataset.mask_targets, field: merged}
    dataset.save()
    return merged
