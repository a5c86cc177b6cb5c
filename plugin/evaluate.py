"""Operator "Evaluate tags": :func:`tag2text_zoo.evaluate_tags` and its report."""

from __future__ import annotations

from typing import Any

import fiftyone.operators as foo
import fiftyone.operators.types as types

from tag2text_zoo import evaluate_tags

from . import common
from .fields import tags_field_input


def _inputs(form: common.Form) -> None:
    pred = tags_field_input(form, "pred_field", "Predicted tags", labels_only=True, required=True)
    tags_field_input(
        form, "gt_field", "Ground-truth tags", labels_only=True, avoid=pred, required=True
    )
    about = "optional: stores `<key>_tp`, `<key>_fp`, `<key>_fn` per sample"
    key = form.inputs.str(
        "eval_key", default=form.default("eval_key"), label="Evaluation key", description=about
    )
    value = form.value("eval_key")
    if value and not value.isidentifier():
        common.fail(key, f"{value!r} is not a valid field name")
    common.plan(form, None)


class EvaluateTags(foo.Operator):
    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="evaluate_tags",
            label="Evaluate tags",
            description="Per-tag precision, recall and AP of predicted tags against ground truth",
            dynamic=True,
            allow_delegated_execution=True,
            icon="fact_check",
        )

    def resolve_input(self, ctx: Any) -> types.Property:
        form = common.Form(ctx)
        _inputs(form)
        return types.Property(form.inputs, view=types.View(label="Evaluate tags"))

    def resolve_execution_options(self, ctx: Any) -> foo.ExecutionOptions:
        return common.execution_options(ctx)

    def execute(self, ctx: Any) -> dict[str, Any]:
        common.remember_choices(ctx)
        ctx.set_progress(progress=0.0, label="Evaluating tags")
        result = evaluate_tags(
            ctx.target_view(),
            ctx.params["pred_field"],
            ctx.params["gt_field"],
            eval_key=ctx.params.get("eval_key") or None,
        )
        if ctx.params.get("eval_key"):
            ctx.trigger("reload_dataset")
        return {"mAP": result.mAP(), "report": result.format_report()}

    def resolve_output(self, ctx: Any) -> types.Property:
        outputs = types.Object()
        outputs.float("mAP", label="mAP")
        outputs.str("report", label="Per-tag report", view=types.CodeView(language="text"))
        return types.Property(outputs, view=types.View(label="Tag evaluation"))
