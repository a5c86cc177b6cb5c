"""Operator "Tag and caption images": :func:`tag2text_zoo.label_samples` from the App."""

from __future__ import annotations

from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from tag2text_zoo import ModelSpec, defaults, label_samples, tags_field

from . import common


def tagger_inputs(ctx: Any, inputs: types.Object) -> None:
    """Tagging choices shared with "Auto-label": model, threshold, tags steering the caption."""
    common.tagger_inputs(ctx, inputs)
    inputs.enum(
        "tags_from",
        ["model", "typed", "field"],
        default="model",
        label="Specified tags",
        view=types.RadioGroup(),
        description="tags that steer the caption: the model's own, typed ones for every image, "
        "or each sample's from a field",
    )
    if ctx.params.get("tags_from") == "typed":
        inputs.str("specified_tags", required=True, label="Tags", description="e.g. cloud,sky")
    elif ctx.params.get("tags_from") == "field":
        kinds = (fo.Classifications, str, list)
        common.field_choice(ctx, inputs, "prompt_field", "Tags field", kinds, required=True)


def tagging_stage(ctx: Any, label_field: str) -> common.Stage:
    """The form's tagging run of the target view, as a stage of :func:`common.run_and_report`."""
    p, source = ctx.params, ctx.params.get("tags_from")
    name = p.get("model") or defaults.TAGGER
    spec = ModelSpec(
        "tagger",
        {"name_or_dir": name, "device": common.device(ctx), "threshold": p.get("threshold")},
    )

    def work(progress):
        return label_samples(
            ctx.target_view(),
            spec,
            label_field,
            prompt_field=p.get("prompt_field") if source == "field" else None,
            specified_tags=p.get("specified_tags") if source == "typed" else None,
            progress=progress,
            **common.run_options(ctx, batch_size=8),
        )

    return f"Tagging with {name}", work


def _inputs(ctx: Any, inputs: types.Object) -> None:
    tagger_inputs(ctx, inputs)
    field = inputs.str(
        "label_field",
        default=defaults.TAGGING_FIELD,
        required=True,
        label="Label field",
        description="writes <field>_tags and <field>_caption",
    )
    name = ctx.params.get("label_field") or defaults.TAGGING_FIELD
    common.labels_field_ok(ctx, field, tags_field(name), fo.Classifications)
    common.run_inputs(inputs, batch_size=8)
    common.size_notice(ctx, inputs)


class TagImages(foo.Operator):
    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="tag_images",
            label="Tag and caption images",
            dynamic=True,
            execute_as_generator=True,
            allow_delegated_execution=True,
            icon="sell",
        )

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        _inputs(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Tag and caption images"))

    def resolve_execution_options(self, ctx: Any) -> foo.ExecutionOptions:
        return common.execution_options(ctx)

    def execute(self, ctx: Any) -> Any:
        field = ctx.params.get("label_field") or defaults.TAGGING_FIELD
        return common.run_and_report(ctx, [tagging_stage(ctx, field)])

    def resolve_output(self, ctx: Any) -> types.Property:
        return common.report_output()
