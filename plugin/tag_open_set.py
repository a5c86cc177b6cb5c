"""Operator "Tag with your own words": RAM / RAM++ over an open-set vocabulary, written by
:func:`tag2text_zoo.label_samples` from a ``ModelSpec("tagger", {..., "vocabulary": [...]})`` (so it
runs on Ray too)."""

from __future__ import annotations

from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from tag2text_zoo import ModelSpec, defaults, label_samples, parse_tags, tags_field
from tag2text_zoo.assets.catalogue import CATALOGUE

from . import common
from .model_pickers import TEXT_ENCODER_TYPES, hub_model_input, tagger_input
from .report import report_output, run_and_report

OPEN_SET = tuple(name for name, spec in CATALOGUE.items() if "open-set" in spec.tags)
DEFAULT_FIELD = "open_set"
THRESHOLD = 0.5  # the reference's open-set threshold


def _inputs(form: common.Form) -> None:
    tagger_input(form, OPEN_SET)
    prop = form.inputs.str(
        "vocabulary",
        default=form.default("vocabulary"),
        required=True,
        label="Tags to look for",
        description="comma-separated, e.g. red panda, okapi, forest",
    )
    names = parse_tags(form.value("vocabulary") or "")
    if len(set(names)) < len(names):
        common.fail(prop, "each tag may appear only once")
    hub_model_input(
        form,
        "text_encoder",
        "CLIP text encoder",
        (defaults.CLIP,),
        TEXT_ENCODER_TYPES,
        "tagalign-clip-vit-b16/clip",
        "embeds your tags; RAM / RAM++ were trained with CLIP ViT-B/16's (hub id or folder)",
    )
    threshold = form.default("threshold", THRESHOLD)
    form.inputs.float("threshold", default=threshold, min=0.0, max=1.0, label="Tag threshold")
    field = common.output_field(
        form,
        "label_field",
        DEFAULT_FIELD,
        "writes `<field>_tags`",
        lambda name: {tags_field(name): fo.Classifications},
        label="Label field",
    )
    common.run_inputs(form, batch_size=defaults.TAGGER_BATCH_SIZE)
    common.plan(form, tags_field(field))


class TagOpenSet(foo.Operator):
    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="tag_open_set",
            label="Tag with your own words",
            description="Which of your tags each image shows (RAM / RAM++, open-set vocabulary)",
            dynamic=True,
            execute_as_generator=True,
            allow_delegated_execution=True,
            icon="label",
        )

    def resolve_input(self, ctx: Any) -> types.Property:
        form = common.Form(ctx)
        _inputs(form)
        return types.Property(form.inputs, view=types.View(label="Tag with your own words"))

    def resolve_execution_options(self, ctx: Any) -> foo.ExecutionOptions:
        return common.execution_options(ctx)

    def execute(self, ctx: Any) -> Any:
        p = ctx.params
        field = p.get("label_field") or DEFAULT_FIELD
        name = p.get("model") or OPEN_SET[0]

        spec = ModelSpec(
            "tagger",
            {
                "name_or_dir": name,
                "device": common.device(ctx),
                "vocabulary": parse_tags(p["vocabulary"]),
                "text_encoder": p.get("text_encoder") or defaults.CLIP,
                "threshold": p.get("threshold", THRESHOLD),
            },
        )

        def work(progress):
            options = common.run_options(ctx, batch_size=defaults.TAGGER_BATCH_SIZE)
            return label_samples(ctx.target_view(), spec, field, progress=progress, **options)

        return run_and_report(ctx, [(f"Tagging with {name}", work)], field)

    def resolve_output(self, ctx: Any) -> types.Property:
        return report_output()
