"""Operator "Tag and caption images": :func:`tag2text_zoo.fo.runs.label_samples` from the App."""

from __future__ import annotations

from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from . import common


def tagger_inputs(ctx: Any, inputs: types.Object) -> None:
    """Tagging choices shared with "Auto-label": model, threshold, tags steering the caption."""
    common.tagger_inputs(ctx, inputs)
    inputs.enum("tags_from", ["model", "typed", "field"], default="model",
                         label="Specified tags", view=types.RadioGroup(),
                         description="tags that steer the caption: the model's own, typed "
                         "ones for every image, or each sample's from a field")  # fmt: skip
    if ctx.params.get("tags_from") == "typed":
        inputs.str("specified_tags", required=True, label="Tags", description="e.g. cloud,sky")
    elif ctx.params.get("tags_from") == "field":
        common.field_choice(ctx, inputs, "prompt_field", "Tags field",
                            (fo.Classifications, str, list), required=True)  # fmt: skip


def _inputs(ctx: Any, inputs: types.Object) -> None:
    tagger_inputs(ctx, inputs)
    field = inputs.str("label_field", default="t2t", required=True, label="Label field",
                       description="writes <field>_tags and <field>_caption")  # fmt: skip
    name = ctx.params.get("label_field") or "t2t"
    common.labels_field_ok(ctx, field, f"{name}_tags", fo.Classifications)
    common.run_inputs(inputs, batch_size=8)
    common.size_notice(ctx, inputs)


def label_with_tagger(ctx: Any, view: fo.DatasetView, field: str) -> Any:
    """Loads the chosen tagger and labels ``view`` chunk by chunk (a progress generator)."""
    from tag2text_zoo import load_tagger
    from tag2text_zoo.fo.model import TaggerModel, TaggerModelConfig
    from tag2text_zoo.fo.runs import label_samples

    name = ctx.params.get("model") or "tag2text-swin-14m"
    tagger = load_tagger(
        name, device=common.device(ctx),
        threshold=ctx.params.get("threshold"),
    )  # fmt: skip
    source = ctx.params.get("tags_from")
    model = TaggerModel(tagger, TaggerModelConfig(
        prompt_field=ctx.params.get("prompt_field") if source == "field" else None,
        specified_tags=ctx.params.get("specified_tags") if source == "typed" else None,
    ))  # fmt: skip
    batch_size = ctx.params.get("batch_size") or 8
    skip = ctx.params.get("skip_existing", True)
    workers = None if ctx.delegated else 0  # no DataLoader worker processes inside the App

    def work(chunk: fo.DatasetView) -> None:
        label_samples(chunk, model, field, batch_size, num_workers=workers, progress=False,
                      skip_existing=skip)  # fmt: skip

    yield from common.in_chunks(ctx, view, 4 * batch_size, work, f"Tagging with {name}")


class TagImages(foo.Operator):
    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="tag_images", label="Tag and caption images", dynamic=True,
            execute_as_generator=True, allow_delegated_execution=True, icon="sell",
        )  # fmt: skip

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        ctx.target_view()
        _inputs(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Tag and caption images"))

    def resolve_execution_options(self, ctx: Any) -> foo.ExecutionOptions:
        return common.execution_options(ctx)

    def execute(self, ctx: Any) -> Any:
        yield from label_with_tagger(ctx, ctx.target_view(), ctx.params.get("label_field", "t2t"))
        yield ctx.trigger("reload_dataset")
