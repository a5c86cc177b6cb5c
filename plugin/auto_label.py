"""Operator "Auto-label": tags, caption and grounded masks for each sample in one run."""

from __future__ import annotations

from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from tag2text_zoo import tags_field

from . import common
from .report import report_output, run_and_report
from .segment import grounding_inputs, segmenting_stage
from .tag_images import tagger_inputs, tagging_stage

DEFAULT_FIELD = "auto"


def detections_field(label_field: str) -> str:
    """Where Auto-label writes its ``fo.Detections``: ``<label_field>_detections``."""
    return f"{label_field}_detections"


def _writes(name: str) -> dict[str, type]:
    return {tags_field(name): fo.Classifications, detections_field(name): fo.Detections}


def _inputs(form: common.Form) -> None:
    tagger_inputs(form)
    grounding_inputs(form)
    about = "writes `<field>_tags`, `<field>_caption`, `<field>_detections`"
    name = common.output_field(form, "label_field", DEFAULT_FIELD, about, _writes, "Label field")
    common.mask_inputs(form)
    common.run_inputs(form, batch_size=4)
    common.plan(form, tags_field(name))


class AutoLabel(foo.Operator):
    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="auto_label",
            label="Auto-label (tags, caption, masks)",
            description="Tags, a caption and instance masks of the tags, for each image in one run",
            dynamic=True,
            execute_as_generator=True,
            allow_delegated_execution=True,
            icon="auto_awesome",
        )

    def resolve_input(self, ctx: Any) -> types.Property:
        form = common.Form(ctx)
        _inputs(form)
        return types.Property(form.inputs, view=types.View(label="Auto-label"))

    def resolve_execution_options(self, ctx: Any) -> foo.ExecutionOptions:
        return common.execution_options(ctx)

    def execute(self, ctx: Any) -> Any:
        field = ctx.params.get("label_field") or DEFAULT_FIELD
        stages = [
            tagging_stage(ctx, field),
            segmenting_stage(ctx, detections_field(field), prompt_field=tags_field(field)),
        ]
        return run_and_report(ctx, stages, field)

    def resolve_output(self, ctx: Any) -> types.Property:
        return report_output()
