"""Operator "Auto-label": tags, caption and grounded masks for each sample in one run."""

from __future__ import annotations

from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from tag2text_zoo import tags_field

from . import common
from .segment import segmenting_stage
from .tag_images import tagger_inputs, tagging_stage

DEFAULT_FIELD = "auto"


def detections_field(label_field: str) -> str:
    """Where Auto-label writes its ``fo.Detections``: ``<label_field>_detections``."""
    return f"{label_field}_detections"


def _inputs(ctx: Any, inputs: types.Object) -> None:
    tagger_inputs(ctx, inputs)
    common.grounding_inputs(ctx, inputs)
    field = inputs.str(
        "label_field",
        default=DEFAULT_FIELD,
        required=True,
        label="Label field",
        description="writes <field>_tags, <field>_caption, <field>_detections",
    )
    name = ctx.params.get("label_field") or DEFAULT_FIELD
    common.labels_field_ok(ctx, field, tags_field(name), fo.Classifications)
    if not field.invalid:
        common.labels_field_ok(ctx, field, detections_field(name), fo.Detections)
    common.mask_inputs(ctx, inputs)
    common.run_inputs(inputs, batch_size=4)
    common.size_notice(ctx, inputs)


class AutoLabel(foo.Operator):
    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="auto_label",
            label="Auto-label (tags, caption, masks)",
            dynamic=True,
            execute_as_generator=True,
            allow_delegated_execution=True,
            icon="auto_awesome",
        )

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        _inputs(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Auto-label"))

    def resolve_execution_options(self, ctx: Any) -> foo.ExecutionOptions:
        return common.execution_options(ctx)

    def execute(self, ctx: Any) -> Any:
        field = ctx.params.get("label_field") or DEFAULT_FIELD
        stages = [
            tagging_stage(ctx, field),
            segmenting_stage(ctx, detections_field(field), prompt_field=tags_field(field)),
        ]
        return common.run_and_report(ctx, stages)

    def resolve_output(self, ctx: Any) -> types.Property:
        return common.report_output()
