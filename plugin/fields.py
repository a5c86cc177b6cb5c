"""Field pickers (only the fields that can hold tags, the right one preselected), and where each
image's classes come from."""

from __future__ import annotations

from typing import Any

import fiftyone.operators.types as types

from tag2text_zoo import parse_tags, tags_fields

from .common import Form, fail


def tags_field_input(
    form: Form,
    key: str,
    label: str,
    labels_only: bool = False,
    avoid: str | None = None,
    **kwargs: Any,
) -> str | None:
    """A dropdown of the target view's fields of tags (``tag2text_zoo.tags_fields``).

    Preselects the user's last choice on this dataset if it is still offered, else the most
    recent tagger output (else the first field other than ``avoid``). Refuses a missing field
    or one that cannot hold tags.

    Returns:
        The chosen field, or None.
    """
    view = form.ctx.target_view()
    names = tags_fields(view, labels_only=labels_only)
    schema = view.get_field_schema()
    choices = types.Dropdown()
    for name in names:
        choices.add_choice(name, label=name, description=_kind(schema[name]))
    default = form.default(key)
    if default not in names:
        default = next((n for n in names if n != avoid), next(iter(names), None))
    prop = form.inputs.enum(key, names, default=default, label=label, view=choices, **kwargs)
    value = form.value(key, default)
    wanted = "Classifications" if labels_only else "Classifications, list-of-strings or text"
    if value and value not in names:
        if view.get_field(value) is None:
            fail(prop, f"no field {value!r} in this dataset")
        else:
            fail(prop, f"field {value!r} cannot hold tags: choose a {wanted} field")
    elif not names and kwargs.get("required"):
        fail(prop, f"this dataset has no {wanted} field of tags; tag the images first")
    return value


def _kind(field) -> str:
    """The field's description (tagger outputs have one), else its type in words."""
    document = getattr(field, "document_type", None)
    kind = (
        document.__name__ if document else "list of strings" if hasattr(field, "field") else "text"
    )
    return field.description or kind


CLASSES_FROM = {
    "field": "Each sample's tags from a field",
    "typed": "Classes I type, the same for every image",
}


def class_source(form: Form) -> None:
    """Where each image's classes come from: a tags field (preselected if the dataset has one),
    or typed ones."""
    has_tags = bool(tags_fields(form.ctx.target_view()))
    source = form.choice(
        "tags_from", CLASSES_FROM, "field" if has_tags else "typed", "Classes to find"
    )
    if source == "field":
        tags_field_input(form, "prompt_field", "Tags field", required=True)
    else:
        default = form.default("classes")
        about = "e.g. cat,dog,tree"
        form.inputs.str(
            "classes", default=default, required=True, label="Classes", description=about
        )


def tag_source(ctx: Any) -> dict[str, Any]:
    """The runner's class source from :func:`class_source`'s choice."""
    if ctx.params.get("tags_from") == "typed":
        return {"classes": parse_tags(ctx.params["classes"])}
    return {"prompt_field": ctx.params.get("prompt_field")}
