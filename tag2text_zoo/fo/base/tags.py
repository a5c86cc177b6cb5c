"""Tags from sample fields: the one reader and field check of all three capabilities, and which
fields of a collection hold tags.

A field of tags holds ``fo.Classifications``, one ``fo.Classification``, a list of strings or a
comma-separated string (``"cloud, sky"``, read by the engine's :func:`parse_tags`, which needs no
FiftyOne). Fields this package writes say what they hold in their ``info`` (under
:data:`OUTPUT_INFO`), so captions are never offered as tags and the latest tagger output can be
found.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone

import fiftyone as fo
import fiftyone.core.fields as fof
from fiftyone.core.collections import SampleCollection

from ...engines.tag_strings import parse_tags

_KINDS = "a string such as 'cloud,sky', a list of strings, fo.Classification or fo.Classifications"


def read_tags(value: object, sample_id: str, field: str) -> list[str]:
    """A tags field's value as a list of tags (empty when the sample has no value).

    Raises:
        ValueError: the value cannot hold tags (the sample and field are named).
    """
    if value is None:
        return []
    if isinstance(value, str):
        return parse_tags(value)
    if isinstance(value, fo.Classifications):
        return [c.label for c in value.classifications if c.label]
    if isinstance(value, fo.Classification):
        return [value.label] if value.label else []
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise ValueError(
        f"sample {sample_id}: field {field!r} holds a {type(value).__name__}; expected {_KINDS}"
    )


def check_tags_field(samples: SampleCollection, field: str) -> None:
    """Refuses, before any work, a tags field that is missing or of a type that cannot hold tags.

    Raises:
        ValueError: the field does not exist or is not a string, string-list or label field.
    """
    schema_field = samples.get_field(field)
    if schema_field is None:
        raise ValueError(f"prompt field {field!r} does not exist in {samples._dataset.name!r}")
    if not can_hold_tags(schema_field):
        kind = getattr(schema_field, "document_type", None) or type(schema_field)
        raise ValueError(f"prompt field {field!r} is a {kind.__name__}; tags come from {_KINDS}")


def can_hold_tags(field: fof.Field, labels_only: bool = False) -> bool:
    """Whether a field's type can hold tags (with ``labels_only``: Classification(s) only)."""
    if isinstance(field, fof.EmbeddedDocumentField):
        return issubclass(field.document_type, (fo.Classifications, fo.Classification))
    if labels_only:
        return False
    return isinstance(field, fof.StringField) or (
        isinstance(field, fof.ListField) and isinstance(field.field, fof.StringField)
    )


# -- which fields hold tags -----------------------------------------------------------------------
OUTPUT_INFO = "tag2text_zoo"
"""The key of ``field.info`` under which this package records what a field it wrote holds:
``{"holds": "tags" | "caption", "written": <ISO time of the last run that wrote it>}``."""


def mark_outputs(samples: SampleCollection, holds: Mapping[str, str]) -> None:
    """Records, in each existing field's ``info``, what it holds and that it was written now;
    fields without a description get one (the App shows it). A frames view's fields are marked
    on its video dataset (``frames.<field>``); other generated views' (patches, clips) are not."""
    written = datetime.now(timezone.utc).isoformat()
    dataset, prefix = samples._dataset, ""
    if samples._is_frames:
        dataset, prefix = samples._root_dataset, "frames."
    elif samples._is_generated:
        return
    for name, what in holds.items():
        field = dataset.get_field(prefix + name)
        if field is None:  # nothing was written (no sample done)
            continue
        field.info = {**(field.info or {}), OUTPUT_INFO: {"holds": what, "written": written}}
        field.description = field.description or f"{what.capitalize()} written by tag2text-zoo"
        field.save()


def tags_fields(samples: SampleCollection, labels_only: bool = False) -> list[str]:
    """The fields of ``samples`` that hold tags, the most recently written tagger output first.

    Top-level Classification(s), string-list and string fields, as a user would pick for tags:
    never FiftyOne's own fields (``filepath``, ``tags``, ``metadata``, ...), subfields of labels,
    nor captions (written by this package, or named ``<x>_caption`` beside an ``<x>_tags``).

    Args:
        samples: a dataset or view.
        labels_only: only ``fo.Classifications`` / ``fo.Classification`` fields.
    """
    schema = samples.get_field_schema()
    builtin = set(samples._get_default_sample_fields(include_private=True))

    def written(name: str) -> str:
        return (schema[name].info or {}).get(OUTPUT_INFO, {}).get("written", "")

    def is_caption(name: str) -> bool:
        if (schema[name].info or {}).get(OUTPUT_INFO, {}).get("holds") == "caption":
            return True
        return name.endswith("_caption") and f"{name[: -len('_caption')]}_tags" in schema

    names = [
        name
        for name, field in schema.items()
        if name not in builtin and can_hold_tags(field, labels_only) and not is_caption(name)
    ]
    return sorted(names, key=written, reverse=True)  # stable: schema order otherwise
