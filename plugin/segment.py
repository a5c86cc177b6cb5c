"""Operator "Grounded segmentation": :func:`tag2text_zoo.fo.grounded_runs.segment_samples`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from . import common


def mask_inputs(ctx: Any, inputs: types.Object) -> None:
    """Where masks go; shared with "Auto-label"."""
    inputs.bool(
        "masks_to_disk",
        default=False,
        label="Write masks to disk",
        description="PNG files referenced by mask_path instead of masks in the database",
    )
    if ctx.params.get("masks_to_disk"):
        folder = Path(fo.config.default_dataset_dir) / "masks" / ctx.dataset.name
        inputs.str("mask_dir", default=str(folder), required=True, label="Mask folder")


def _inputs(ctx: Any, inputs: types.Object) -> None:
    inputs.enum("tags_from", ["field", "typed"], default="field", label="Tags to ground",
                view=types.RadioGroup(), description="each sample's tags from a field, "
                "or the same classes for every image")  # fmt: skip
    if ctx.params.get("tags_from", "field") == "field":
        common.field_choice(ctx, inputs, "prompt_field", "Tags field",
                            (fo.Classifications, list, str), required=True)  # fmt: skip
    else:
        inputs.str("classes", required=True, label="Classes", description="e.g. cat,dog,tree")
    common.grounding_inputs(ctx, inputs)
    prop = inputs.str("output_field", default="grounded", required=True, label="Output field",
                      description="fo.Detections with instance masks")  # fmt: skip
    common.labels_field_ok(ctx, prop, ctx.params.get("output_field") or "grounded", fo.Detections)
    mask_inputs(ctx, inputs)
    common.run_inputs(inputs, batch_size=4)
    common.size_notice(ctx, inputs)


def load_segmenter(ctx: Any) -> Any:
    from tag2text_zoo.engines.grounded import load_grounded_segmenter

    p = ctx.params
    return load_grounded_segmenter(
        p.get("detector") or common.DETECTORS[0], p.get("segmenter") or common.SEGMENTERS[0],
        device=common.device(ctx), box_threshold=p.get("box_threshold", 0.35),
        text_threshold=p.get("text_threshold", 0.25), nms_iou=p.get("nms_iou", 0.5),
    )  # fmt: skip


def segment_kwargs(ctx: Any) -> dict[str, Any]:
    """:func:`segment_samples` options from the form (not the tag source)."""
    return {
        "batch_size": ctx.params.get("batch_size") or 4,
        "mask_dir": ctx.params.get("mask_dir") if ctx.params.get("masks_to_disk") else None,
        "skip_existing": ctx.params.get("skip_existing", True),
        "num_workers": None if ctx.delegated else 0,  # no worker processes inside the App
        "progress": False,
    }


class SegmentGrounded(foo.Operator):
    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="segment_grounded", label="Grounded segmentation", dynamic=True,
            execute_as_generator=True, allow_delegated_execution=True, icon="select_all",
        )  # fmt: skip

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        ctx.target_view()
        _inputs(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Grounded segmentation"))

    def resolve_execution_options(self, ctx: Any) -> foo.ExecutionOptions:
        return common.execution_options(ctx)

    def execute(self, ctx: Any) -> Any:
        from tag2text_zoo.fo.grounded_runs import segment_samples

        segmenter, p = load_segmenter(ctx), ctx.params
        typed = p.get("tags_from") == "typed"
        source = {
            "prompt_field": None if typed else p.get("prompt_field"),
            "classes": [c.strip() for c in p["classes"].split(",") if c.strip()] if typed else None,
        }
        kwargs = segment_kwargs(ctx)

        def work(chunk: fo.DatasetView) -> None:
            segment_samples(chunk, segmenter, p.get("output_field", "grounded"), **source, **kwargs)

        yield from common.in_chunks(ctx, ctx.target_view(), 4 * kwargs["batch_size"], work,
                                    "Segmenting")  # fmt: skip
        yield ctx.trigger("reload_dataset")
