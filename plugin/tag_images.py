"""Operator "Tag and caption images": :func:`tag2text_zoo.label_samples` from the App."""

from __future__ import annotations

from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from tag2text_zoo import ModelSpec, defaults, label_samples, tags_field

from . import common
from .fields import tags_field_input
from .model_pickers import tagger_input
from .report import Stage, report_output, run_and_report

TAGS_FROM = {
    "model": "The model's own tags",
    "typed": "Tags I type, the same for every image",
    "field": "Each sample's tags from a field",
}


def tagger_inputs(form: common.Form) -> None:
    """Tagging choices shared with "Auto-label": model, threshold, tags steering the caption."""
    tagger_input(form)
    form.inputs.float(
        "threshold",
        default=form.default("threshold"),
        min=0.0,
        max=1.0,
        label="Tag threshold",
        description="keep tags scoring at least this; empty: the model's own",
    )
    about = "tags that steer the caption (Tag2Text)"
    source = form.choice("tags_from", TAGS_FROM, "model", "Caption guided by", description=about)
    if source == "typed":
        default = form.default("specified_tags")
        form.inputs.str(
            "specified_tags",
            default=default,
            required=True,
            label="Tags",
            description="e.g. cloud,sky",
        )
    elif source == "field":
        tags_field_input(form, "prompt_field", "Tags field", required=True)


def tagging_stage(ctx: Any, label_field: str) -> Stage:
    """The form's tagging run of the target view, as a stage of :func:`run_and_report`."""
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
            **common.run_options(ctx, batch_size=defaults.TAGGER_BATCH_SIZE),
        )

    return f"Tagging with {name}", work


def _inputs(form: common.Form) -> None:
    tagger_inputs(form)
    name = common.output_field(
        form,
        "label_field",
        defaults.TAGGING_FIELD,
        "writes `<field>_tags` and `<field>_caption`",
        lambda name: {tags_field(name): fo.Classifications},
        label="Label field",
    )
    common.run_inputs(form, batch_size=defaults.TAGGER_BATCH_SIZE)
    common.plan(form, tags_field(name))


class TagImages(foo.Operator):
    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="tag_images",
            label="Tag and caption images",
            description="Tags for each image (Tag2Text, RAM, RAM++), and a caption with Tag2Text",
            dynamic=True,
            execute_as_generator=True,
            allow_delegated_execution=True,
            icon="sell",
        )

    def resolve_input(self, ctx: Any) -> types.Property:
        form = common.Form(ctx)
        _inputs(form)
        return types.Property(form.inputs, view=types.View(label="Tag and caption images"))

    def resolve_execution_options(self, ctx: Any) -> foo.ExecutionOptions:
        return common.execution_options(ctx)

    def execute(self, ctx: Any) -> Any:
        field = ctx.params.get("label_field") or defaults.TAGGING_FIELD
        return run_and_report(ctx, [tagging_stage(ctx, field)], field)

    def resolve_output(self, ctx: Any) -> types.Property:
        return report_output()
