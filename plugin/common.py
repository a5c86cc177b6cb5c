"""What the operators share: form pieces and checks, and running a job with its progress and
report shown to the user. No model code lives here: runs go through :mod:`tag2text_zoo`."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from tag2text_zoo import RayBackend, RunReport, defaults
from tag2text_zoo.assets.catalogue import CATALOGUE
from tag2text_zoo.assets.download import default_models_dir, installed_model_dir
from tag2text_zoo.assets.hub import online
from tag2text_zoo.assets.official import OFFICIAL_CHECKPOINTS, weights_problem

# Above this many target samples the form recommends delegated execution.
LARGE_VIEW = 500

# The detector and SAM choices: the hub pairs' models, then the official files by catalogue name.
_OFFICIAL = {name: spec.model_type for name, spec in OFFICIAL_CHECKPOINTS.items()}
DETECTORS = (*defaults.DETECTORS, *(n for n, f in _OFFICIAL.items() if f == "grounding-dino"))
SEGMENTERS = (*defaults.SEGMENTERS, *(n for n, f in _OFFICIAL.items() if f != "grounding-dino"))

# The plugin secret (by default an environment variable of the App or delegated-operation
# process) naming the Ray cluster that runs the models.
RAY_ADDRESS = "TAG2TEXT_ZOO_RAY_ADDRESS"

# A run stage: its label and the work, called with a progress callback(processed, total).
Stage = tuple[str, Callable[[Callable[[int, int], None]], RunReport]]


# -- form pieces --------------------------------------------------------------------------------
def fail(prop: types.Property, message: str) -> None:
    """Marks a form property invalid; the App shows ``message`` and refuses to run."""
    prop.invalid = True
    prop.error_message = message


def run_inputs(inputs: types.Object, batch_size: int) -> None:
    """Skipping of done samples, batch size and device."""
    import torch

    inputs.bool("skip_existing", default=True, label="Skip samples that already have it")
    inputs.int("batch_size", default=batch_size, min=1, label="Batch size")
    devices = ["auto", "cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    inputs.enum("device", devices, default="auto", label="Device", view=types.Dropdown())


def device(ctx: Any) -> str | None:
    value = ctx.params.get("device") or "auto"
    return None if value == "auto" else value


def run_options(ctx: Any, batch_size: int) -> dict[str, Any]:
    """The runners' options from the form: batch size, skipping, image-loading workers, and
    the Ray cluster the plugin is configured with."""
    return {
        "batch_size": ctx.params.get("batch_size") or batch_size,
        "skip_existing": ctx.params.get("skip_existing", True),
        "num_workers": None if ctx.delegated else 0,  # no worker processes inside the App
        "backend": backend(ctx),
    }


def backend(ctx: Any) -> str | RayBackend:
    """Ray at the plugin's :data:`RAY_ADDRESS` secret (e.g. ``auto``, ``ray://head:10001``),
    when set; else runs go in this process."""
    address = ctx.secret(RAY_ADDRESS)
    return RayBackend(address) if address else "local"


def tagger_inputs(ctx: Any, inputs: types.Object) -> None:
    """Model choice (with its download status) and tag threshold."""
    names = list(CATALOGUE)
    prop = inputs.enum(
        "model", names, default=defaults.TAGGER, label="Tagging model", view=types.Dropdown()
    )
    name = ctx.params.get("model") or defaults.TAGGER
    if name in CATALOGUE and installed_model_dir(name) is None:
        if not online():
            fail(
                prop,
                f"{name} is not downloaded and there is no network: run "
                f"`python -m tag2text_zoo tag IMAGE --model {name}` where there is, or put its "
                f"files in {default_models_dir() / name}",
            )
        else:
            size = CATALOGUE[name].size_bytes / 1e9
            notice = types.Notice(label=f"{name} ({size:.1f} GB) is downloaded on first use")
            inputs.view("download", notice)
    inputs.float(
        "threshold",
        min=0.0,
        max=1.0,
        label="Tag threshold",
        description="keep tags scoring at least this; empty: the model's own",
    )


def mask_inputs(ctx: Any, inputs: types.Object) -> None:
    """Where masks go: in the database, or PNG files under a folder."""
    inputs.bool(
        "masks_to_disk",
        default=False,
        label="Write masks to disk",
        description="PNG files referenced by mask_path instead of masks in the database",
    )
    if ctx.params.get("masks_to_disk"):
        folder = Path(fo.config.default_dataset_dir) / "masks" / ctx.dataset.name
        inputs.str("mask_dir", default=str(folder), required=True, label="Mask folder")


def grounding_inputs(ctx: Any, inputs: types.Object) -> None:
    """Detector and SAM choice (hub ids, folders, official files or catalogue names) and
    detection thresholds."""
    for key, choices, label in (
        ("detector", DETECTORS, "Grounding DINO"),
        ("segmenter", SEGMENTERS, "SAM"),
    ):
        view = types.AutocompleteView(choices=[types.Choice(c, label=c) for c in choices])
        prop = inputs.str(
            key,
            default=choices[0],
            required=True,
            label=label,
            view=view,
            description="hub id, transformers folder, official checkpoint file or catalogue name",
        )
        problem = weights_problem(ctx.params.get(key) or choices[0])
        if problem:
            fail(prop, problem)
    unit = {"min": 0.0, "max": 1.0}
    inputs.float("box_threshold", default=defaults.BOX_THRESHOLD, label="Box threshold", **unit)
    inputs.float("text_threshold", default=defaults.TEXT_THRESHOLD, label="Text threshold", **unit)
    inputs.float(
        "nms_iou",
        default=defaults.NMS_IOU,
        label="NMS IoU",
        description="boxes overlapping more than this are merged",
        **unit,
    )


def field_choice(
    ctx: Any, inputs: types.Object, key: str, label: str, kinds: tuple[type, ...], **kwargs: Any
) -> types.Property:
    """An enum of the target view's fields holding one of ``kinds``; refuses anything else."""
    schema = ctx.target_view().get_field_schema(flat=True)
    names = [n for n, f in schema.items() if _holds(f, kinds)]
    prop = inputs.enum(key, names, label=label, view=types.Dropdown(), **kwargs)
    value = ctx.params.get(key)
    wanted = " or ".join(k.__name__ for k in kinds)
    if value and value not in schema:
        fail(prop, f"no field {value!r} in this dataset")
    elif value and value not in names:
        fail(prop, f"field {value!r} is not a {wanted} field")
    elif not names and kwargs.get("required"):
        fail(prop, f"this dataset has no {wanted} field")
    return prop


def _holds(field: fo.Field, kinds: tuple[type, ...]) -> bool:
    if isinstance(field, fo.EmbeddedDocumentField):
        return any(isinstance(k, type) and issubclass(field.document_type, k) for k in kinds)
    if isinstance(field, fo.ListField):
        return list in kinds and isinstance(field.field, fo.StringField)
    return str in kinds and isinstance(field, fo.StringField)


def labels_field_ok(ctx: Any, prop: types.Property, field: str, kind: type) -> None:
    """Refuses an output field that exists with another label type."""
    existing = ctx.target_view().get_field(field)
    doc_type = getattr(existing, "document_type", None)
    if existing is not None and doc_type is not kind:
        have = doc_type.__name__ if doc_type else type(existing).__name__
        fail(prop, f"{field!r} already holds {have}; choose another name")


def size_notice(ctx: Any, inputs: types.Object) -> None:
    n = len(ctx.target_view())
    if n > LARGE_VIEW:
        message = (
            f"{n} samples: schedule this as a delegated operation and run it with "
            "`fiftyone delegated launch`"
        )
        inputs.view("large", types.Warning(label=message))


def execution_options(ctx: Any) -> foo.ExecutionOptions:
    """Immediate or delegated; delegated is preselected for large views."""
    return foo.ExecutionOptions(
        allow_immediate_execution=True,
        allow_delegated_execution=True,
        default_choice_to_delegated=len(ctx.target_view()) > LARGE_VIEW,
    )


# -- running and reporting ----------------------------------------------------------------------
def run_and_report(ctx: Any, stages: list[Stage]) -> Any:
    """Runs the stages in order, showing progress and then their reports, failures included.

    Delegated, progress goes to ``ctx.set_progress`` and the report is the operation's result
    (shown by :func:`report_output`). In the App, this returns the generator the App iterates:
    progress as it comes, then the report and a dataset reload.
    """
    if ctx.delegated:
        return report_results({label: work(_recorder(ctx, label)) for label, work in stages})
    return _in_app(ctx, stages)


def _recorder(ctx: Any, label: str) -> Callable[[int, int], None]:
    """A progress callback that records a delegated operation's progress."""
    return lambda done, total: ctx.set_progress(**_progress(label, done, total))


def _in_app(ctx: Any, stages: list[Stage]) -> Iterator[Any]:
    reports = {}
    for label, work in stages:
        reports[label] = yield from _streamed(ctx, label, work)
    outputs = report_output().to_json()
    yield ctx.trigger("show_output", {"outputs": outputs, "results": report_results(reports)})
    yield ctx.trigger("reload_dataset")


def _streamed(ctx: Any, label: str, work: Callable) -> Iterator[Any]:
    """Runs ``work`` in a thread and yields its progress to the App as it comes; returns its
    report (its exception, if it raises)."""
    updates: queue.SimpleQueue = queue.SimpleQueue()
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(work, lambda done, total: updates.put((done, total)))
        while not (future.done() and updates.empty()):
            try:
                done, total = updates.get(timeout=0.2)
            except queue.Empty:
                continue
            yield ctx.trigger("set_progress", _progress(label, done, total))
        return future.result()


def _progress(label: str, done: int, total: int) -> dict[str, Any]:
    return {"progress": done / total if total else 1.0, "label": f"{label}: {done} / {total}"}


def report_results(reports: dict[str, RunReport]) -> dict[str, str]:
    """What the user sees of a run (Markdown lists): counts per stage, and every failed sample
    with its file and reason."""
    failures = [f"- {label}: `{f}`" for label, r in reports.items() for f in r.failures]
    return {
        "summary": "\n".join(f"- {label}: {r.summary()}" for label, r in reports.items()),
        "failures": "\n".join(failures) or "none",
    }


def report_output() -> types.Property:
    """How :func:`report_results` is shown."""
    outputs = types.Object()
    outputs.str("summary", label="Samples", view=types.MarkdownView())
    outputs.str("failures", label="Failed samples", view=types.MarkdownView())
    return types.Property(outputs, view=types.View(label="Run report"))
