"""Operator "Grounded segmentation": :func:`tag2text_zoo.segment_samples` from the App."""

from __future__ import annotations

from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from tag2text_zoo import ModelSpec, defaults, segment_samples
from tag2text_zoo.assets.official import OFFICIAL_CHECKPOINTS

from . import common
from .fields import class_source, tag_source
from .model_pickers import DETECTOR_TYPES, SEGMENTER_TYPES, hub_model_input
from .report import Stage, report_output, run_and_report


def grounding_inputs(form: common.Form) -> None:
    """Detector and SAM (installed ones offered; hub ids, folders, official checkpoint files or
    their catalogue names) and the detection thresholds."""
    pair = "grounded-sam-tiny-vit-base"
    for key, label, choices, types_ in (
        ("detector", "Grounding DINO", defaults.DETECTORS, DETECTOR_TYPES),
        ("segmenter", "SAM", defaults.SEGMENTERS, SEGMENTER_TYPES),
    ):
        official = [n for n, spec in OFFICIAL_CHECKPOINTS.items() if spec.model_type in types_]
        hub_model_input(
            form,
            key,
            label,
            choices,
            types_,
            f"{pair}/{key}",
            "hub id, transformers folder, official checkpoint file or catalogue name",
            official,
        )
    unit = {"min": 0.0, "max": 1.0}
    for key, label, default in (
        ("box_threshold", "Box threshold", defaults.BOX_THRESHOLD),
        ("text_threshold", "Text threshold", defaults.TEXT_THRESHOLD),
        ("nms_iou", "NMS IoU: boxes overlapping more are merged", defaults.NMS_IOU),
    ):
        form.inputs.float(key, default=form.default(key, default), label=label, **unit)


def segmenting_stage(ctx: Any, label_field: str, **tag_source: Any) -> Stage:
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

    def work(progress):
        return segment_samples(
            ctx.target_view(),
            spec,
            label_field,
            mask_dir=common.mask_dir(ctx),
            progress=progress,
            **tag_source,
            **common.run_options(ctx, batch_size=4),
        )

    return "Segmenting", work


class SegmentGrounded(foo.Operator):
    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="segment_grounded",
            label="Grounded segmentation",
            description="Boxes and masks of each image's tags: Grounding DINO finds, SAM outlines",
            dynamic=True,
            execute_as_generator=True,
            allow_delegated_execution=True,
            icon="select_all",
        )

    def resolve_input(self, ctx: Any) -> types.Property:
        form = common.Form(ctx)
        class_source(form)
        grounding_inputs(form)
        field = common.output_field(
            form,
            "output_field",
            defaults.GROUNDED_FIELD,
            "fo.Detections with instance masks",
            lambda name: {name: fo.Detections},
        )
        common.mask_inputs(form)
        common.run_inputs(form, batch_size=4)
        common.plan(form, field)
        return types.Property(form.inputs, view=types.View(label="Grounded segmentation"))

    def resolve_execution_options(self, ctx: Any) -> foo.ExecutionOptions:
        return common.execution_options(ctx)

    def execute(self, ctx: Any) -> Any:
        field = ctx.params.get("output_field") or defaults.GROUNDED_FIELD
        return run_and_report(ctx, [segmenting_stage(ctx, field, **tag_source(ctx))], field)

    def resolve_output(self, ctx: Any) -> types.Property:
        return report_output()
