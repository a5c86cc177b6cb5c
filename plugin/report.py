"""Running an operator's stages with their progress shown, and the report the user sees: samples
done, skipped and failed, each failed sample with its file and reason, and a saved view of them."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import fiftyone.operators.types as types

from tag2text_zoo import RunReport

from .common import remember_choices

# A run stage: its label and the work, called with a progress callback(processed, total).
Stage = tuple[str, Callable[[Callable[[int, int], None]], RunReport]]


def run_and_report(ctx: Any, stages: list[Stage], output: str) -> Any:
    """Runs the stages in order, showing progress and then their reports, failures included.

    The failed samples of the run are kept as the saved view ``"<output> failed"`` (removed when
    a run of ``output`` has none). Delegated, progress goes to ``ctx.set_progress`` and the report
    is the operation's result (shown by :func:`report_output`). In the App, this returns the
    generator the App iterates: progress as it comes, then the report and a dataset reload.
    The form's choices become its defaults next time on this dataset.
    """
    remember_choices(ctx)
    if ctx.delegated:
        reports = {
            label: work(_recorder(ctx, _step(i, len(stages), label)))
            for i, (label, work) in enumerate(stages)
        }
        return report_results(reports, save_failed_view(ctx.dataset, reports, output))
    return _in_app(ctx, stages, output)


def _recorder(ctx: Any, step: Callable[[int, int], dict]) -> Callable[[int, int], None]:
    """A progress callback that records a delegated operation's progress."""
    return lambda done, total: ctx.set_progress(**step(done, total))


def _in_app(ctx: Any, stages: list[Stage], output: str) -> Iterator[Any]:
    reports = {}
    for i, (label, work) in enumerate(stages):
        reports[label] = yield from _streamed(ctx, _step(i, len(stages), label), work)
    results = report_results(reports, save_failed_view(ctx.dataset, reports, output))
    outputs = report_output().to_json()
    yield ctx.trigger("show_output", {"outputs": outputs, "results": results})
    yield ctx.trigger("reload_dataset")


def _streamed(ctx: Any, step: Callable[[int, int], dict], work: Callable) -> Iterator[Any]:
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
            yield ctx.trigger("set_progress", step(done, total))
        return future.result()


def _step(index: int, count: int, label: str) -> Callable[[int, int], dict[str, Any]]:
    """Progress of stage ``index`` of ``count``: the bar covers all stages, the label names the
    stage (``"Step 1 of 2, tagging: 3 / 9"``)."""
    name = f"Step {index + 1} of {count}, {label[:1].lower()}{label[1:]}" if count > 1 else label

    def progress(done: int, total: int) -> dict[str, Any]:
        fraction = done / total if total else 1.0
        return {"progress": (index + fraction) / count, "label": f"{name}: {done} / {total}"}

    return progress


def save_failed_view(dataset: Any, reports: dict[str, RunReport], output: str) -> str | None:
    """Saves the run's failed samples as the view ``"<output> failed"`` and returns its name;
    without failures, removes that view (an earlier run's) and returns None."""
    name = f"{output} failed"
    ids = list(dict.fromkeys(f.sample_id for r in reports.values() for f in r.failures))
    if ids:
        about = f"Samples that the last run writing {output!r} could not label"
        dataset.save_view(name, dataset.select(ids), description=about, overwrite=True)
        return name
    if dataset.has_saved_view(name):
        dataset.delete_saved_view(name)
    return None


def report_results(reports: dict[str, RunReport], failed_view: str | None) -> dict[str, str]:
    """What the user sees of a run (Markdown lists): counts per stage, and every failed sample
    with its file and reason."""
    failures = [f"- {label}: `{f}`" for label, r in reports.items() for f in r.failures]
    if failed_view:
        failures.append(f"\nThe saved view **{failed_view}** (the view bar's menu) shows them.")
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
