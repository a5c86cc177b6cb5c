"""Operator "Grounded segmentation": :func:`tag2text_zoo.segment_samples` from the App."""

from __future__ import annotations

from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from tag2text_zoo import ModelSpec, defaults, parse_tags, segment_samples

from . import common


def segmenting_stage(ctx: Any, label_field: str, **tag_source: Any) -> common.Stage:
    """The form's grounded segmentation of the target view, with the given tag source."""
    p = ctx.params
    spec = ModelSpec(
        "grounded",
        {
            "detector": p.get("detector") or defaults.DETECTOR,
            "segmenter": p.get("segmenter") or defaults.SEGMENTER,
            "device": common.device(ctx),
            "box_threshold": p.get("box_threshold", defaults.BOX_THRESHOLD),
            "text_threshold": p.get("text_threshold", defaults.TEXT_THRESHOLD),
            "nms_iou": p.get("nms_iou", defaults.NMS_IOU),
        },
    )
    mask_dir = p.get("mask_dir") if p.get("masks_to_disk") else None

    def work(progress):
        return segment_samples(
            ctx.target_view(),
            spec,
            label_field,
            mask_dir=mask_dir,
            progress=progress,
            **tag_source,
            **common.run_options(ctx, batch_size=4),
        )

    return "Segmenting", work


def _inputs(ctx: Any, inputs: types.Object) -> None:
    inputs.enum(
        "tags_from",
        ["field", "typed"],
        default="field",
        label="Tags to ground",
        view=types.RadioGroup(),
        description="each sample's tags from a field, or the same classes for every image",
    )
    if ctx.params.get("tags_from", "field") == "field":
        kinds = (fo.Classifications, list, str)
        common.field_choice(ctx, inputs, "prompt_field", "Tags field", kinds, required=True)
    else:
        inputs.str("classes", required=True, label="Classes", description="e.g. cat,dog,tree")
    common.grounding_inputs(ctx, inputs)
    prop = inputs.str(
        "output_field",
        default=defaults.GROUNDED_FIELD,
        required=True,
        label="Output field",
        description="fo.Detections with instance masks",
    )
    output = ctx.params.get("output_field") or defaults.GROUNDED_FIELD
    common.labels_field_ok(ctx, prop, output, fo.Detections)
    common.mask_inputs(ctx, inputs)
    common.run_inputs(inputs, batch_size=4)
    common.size_notice(ctx, inputs)


class SegmentGrounded(foo.Operator):
    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="segment_grounded",
            label="Grounded segmentation",
            dynamic=True,
            execute_as_generator=True,
            allow_delegated_execution=True,
            icon="select_all",
        )

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        _inputs(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Grounded segmentation"))

    def resolve_execution_options(self, ctx: Any) -> foo.ExecutionOptions:
        return common.execution_options(ctx)

    def execute(self, ctx: Any) -> Any:
        p = ctx.params
        if p.get("tags_from") == "typed":
            source = {"classes": parse_tags(p["classes"])}
        else:
            source = {"prompt_field": p.get("prompt_field")}
        field = p.get("output_field") or defaults.GROUNDED_FIELD
        return common.run_and_report(ctx, [segmenting_stage(ctx, field, **source)])

    def resolve_output(self, ctx: Any) -> types.Property:
        return common.report_output()
