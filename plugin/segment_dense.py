"""Operator "TagAlign segmentation": :func:`tag2text_zoo.segment_dense` from the App."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from tag2text_zoo import MAIN_SETTINGS, VOC_SETTINGS, ModelSpec, defaults, segment_dense

from . import common
from .fields import class_source, tag_source
from .model_pickers import CLIP_TYPES, hub_model_input
from .report import report_output, run_and_report

SETTINGS = {"main": MAIN_SETTINGS, "voc": VOC_SETTINGS}
SETTINGS_LABELS = {
    "main": "TagAlign's evaluation: a sigmoid score per class, background below 0.4",
    "voc": "Pascal VOC: softmax over the classes, background below 0.45",
}


def _inputs(form: common.Form) -> str:
    class_source(form)
    hub_model_input(
        form, "clip", "CLIP", (defaults.CLIP,), CLIP_TYPES, "tagalign-clip-vit-b16/clip"
    )
    prop = form.inputs.str(
        "projector",
        default=form.default("projector"),
        label="TagAlign checkpoint",
        description="a trained projector (.pth); empty: training-free (CLIP-Surgery)",
    )
    projector = form.value("projector")
    if projector and not Path(projector).expanduser().is_file():
        common.fail(prop, f"no file {projector}")
    form.choice("settings", SETTINGS_LABELS, "main", "Scoring")
    about = "one fo.Heatmap field per class: `<field>_heatmap_<class>`"
    heatmaps = form.default("heatmaps", False)
    form.inputs.bool("heatmaps", default=heatmaps, label="Also write heatmaps", description=about)
    field = common.output_field(
        form,
        "output_field",
        defaults.DENSE_FIELD,
        "fo.Segmentation; the dataset's mask_targets name its classes",
        lambda name: {name: fo.Segmentation},
    )
    common.mask_inputs(form)
    common.run_inputs(form, batch_size=4)
    return field


class SegmentDense(foo.Operator):
    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="segment_dense",
            label="TagAlign segmentation",
            description="Every pixel labelled with one of each image's tags (TagAlign over CLIP)",
            dynamic=True,
            execute_as_generator=True,
            allow_delegated_execution=True,
            icon="texture",
        )

    def resolve_input(self, ctx: Any) -> types.Property:
        form = common.Form(ctx)
        common.plan(form, _inputs(form))
        return types.Property(form.inputs, view=types.View(label="TagAlign segmentation"))

    def resolve_execution_options(self, ctx: Any) -> foo.ExecutionOptions:
        return common.execution_options(ctx)

    def execute(self, ctx: Any) -> Any:
        p = ctx.params
        field = p.get("output_field") or defaults.DENSE_FIELD
        spec = ModelSpec(
            "dense",
            {
                "clip": p.get("clip") or defaults.CLIP,
                "projector": p.get("projector") or None,
                "device": common.device(ctx),
                "settings": SETTINGS[p.get("settings") or "main"],
            },
        )

        def work(progress):
            return segment_dense(
                ctx.target_view(),
                spec,
                field,
                heatmaps=bool(p.get("heatmaps")),
                mask_dir=common.mask_dir(ctx),
                progress=progress,
                **tag_source(ctx),
                **common.run_options(ctx, batch_size=4),
            )

        return run_and_report(ctx, [("Segmenting with TagAlign", work)], field)

    def resolve_output(self, ctx: Any) -> types.Property:
        return report_output()
