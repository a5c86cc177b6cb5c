"""Tags from sample fields: the one reader, parser and field check of all three capabilities.

A field of tags holds ``fo.Classifications``, one ``fo.Classification``, a list of strings or a
comma-separated string (``"cloud, sky"``).
"""

from __future__ import annotations

import fiftyone as fo
import fiftyone.core.fields as fof
from fiftyone.core.collections import SampleCollection

_KINDS = "a string such as 'cloud,sky', a list of strings, fo.Classification or fo.Classifications"


def parse_tags(text: str) -> list[str]:
    """``"cloud, sky,,"`` -> ``["cloud", "sky"]``."""
    return [t.strip() for t in text.split(",") if t.strip()]


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
    if isinstance(schema_field, fof.EmbeddedDocumentField):
        ok = issubclass(schema_field.document_type, (fo.Classifications, fo.Classification))
    else:
        ok = isinstance(schema_field, fof.StringField) or (
            isinstance(schema_field, fof.ListField)
            and isinstance(schema_field.field, fof.StringField)
        )
    if not ok:
        kind = getattr(schema_field, "document_type", None) or type(schema_field)
        raise ValueError(f"prompt field {field!r} is a {kind.__name__}; tags come from {_KINDS}")
