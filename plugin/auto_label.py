"""Operator "Auto-label": tags, caption and grounded masks for each sample in one run."""

from __future__ import annotations

from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from . import common
from .segment import load_segmenter, mask_inputs, segment_kwargs
from .tag_images import label_with_tagger, tagger_inputs


def _inputs(ctx: Any, inputs: types.Object) -> None:
    tagger_inputs(ctx, inputs)
    common.grounding_inputs(ctx, inputs)
    field = inputs.str(
        "label_field",
        default="auto",
        required=True,
        label="Label field",
        description="writes <field>_tags, <field>_caption, <field>_detections",
    )
    name = ctx.params.get("label_field") or "auto"
    common.labels_field_ok(ctx, field, f"{name}_tags", fo.Classifications)
    if not field.invalid:
        common.labels_field_ok(ctx, field, f"{name}_detections", fo.Detections)
    mask_inputs(ctx, inputs)
    common.run_inputs(inputs, batch_size=4)
    common.size_notice(ctx, inputs)


class AutoLabel(foo.Operator):
    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="auto_label", label="Auto-label (tags, caption, masks)", dynamic=True,
            execute_as_generator=True, allow_delegated_execution=True, icon="auto_awesome",
        )  # fmt: skip

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        ctx.target_view()
        _inputs(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Auto-label"))

    def resolve_execution_options(self, ctx: Any) -> foo.ExecutionOptions:
        return common.execution_options(ctx)

    def execute(self, ctx: Any) -> Any:
        from tag2text_zoo.fo.grounded_runs import segment_samples

        field = ctx.params.get("label_field", "auto")
        view = ctx.target_view()
        yield from label_with_tagger(ctx, view, field)
        segmenter, kwargs = load_segmenter(ctx), segment_kwargs(ctx)

        def work(chunk: fo.DatasetView) -> None:
            segment_samples(chunk, segmenter, f"{field}_detections",
                            prompt_field=f"{field}_tags", **kwargs)  # fmt: skip

        yield from common.in_chunks(ctx, view, 4 * kwargs["batch_size"], work, "Segmenting")
        yield ctx.trigger("reload_dataset")
