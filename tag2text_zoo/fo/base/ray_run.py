"""The Ray backend's driver: the local run loop with the model calls on a Ray cluster.

The driver alone talks to the database. It reads the pending samples (:func:`~.run.start_run`,
the same skip-existing rule as local runs) as plain rows (id, file path, tags), in passes of
``RayBackend.samples_per_pass``, streams them through the runner's stages
(:mod:`tag2text_zoo.distributed`), turns each result into FiftyOne labels with the runner's
converters, and writes every batch as it arrives, keyed by sample id (:class:`~.run.BatchWriter`).
Killing the driver loses at most the batches in flight: the same call again skips what was
written.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fiftyone.core.collections import SampleCollection

from ...distributed.backend import RayBackend
from ...distributed.stages import StageSpec, to_rows
from ...loaders import Kind, ModelSpec
from .database import retrying
from .items import PROMPT_KEY
from .mask_targets import MaskTargets
from .report import Failure, RunReport
from .run import (
    _WINDOW,
    BatchWriter,
    Outputs,
    Progress,
    check_run,
    fill_metadata,
    read_inputs,
    start_run,
    stopping_on_faults,
)
from .tags import read_tags

logger = logging.getLogger(__name__)


@dataclass
class RayPlan:
    """What a runner hands the driver.

    Attributes:
        stages: the pipeline; the last stage's output column holds the results.
        to_labels: one result (a plain dict) -> the sample's labels, on the driver.
        prompt_field: the field of each sample's tags, read into its row.
        default_prompt: the tags of rows whose field gives none (tagging's specified tags).
        targets: the class map that ``to_labels`` grows, recorded before each batch.
    """

    stages: list[StageSpec]
    to_labels: Callable[[dict[str, Any]], Any]
    prompt_field: str | None = None
    default_prompt: list[str] | None = None
    targets: MaskTargets | None = None


def model_spec(model: Any, kind: Kind) -> ModelSpec:
    """``model`` if it is a ModelSpec of ``kind`` (Ray workers load the model themselves).

    Raises:
        ValueError: a loaded model, or a spec of another kind.
    """
    if not isinstance(model, ModelSpec):
        raise ValueError(
            f"the Ray backend loads the model in its workers: pass a ModelSpec({kind!r}, "
            f"{{...}}) with the loader's arguments, not a loaded {type(model).__name__}"
        )
    if model.kind != kind:
        raise ValueError(f"a {model.kind!r} model spec was given where a {kind!r} is needed")
    return model


def run_on_ray(
    samples: SampleCollection,
    outputs: Outputs,
    plan: RayPlan,
    backend: RayBackend,
    *,
    batch_size: int,
    skip_existing: bool = True,
    progress: Progress = None,
    mask_dir: str | None = None,
) -> RunReport:
    """Labels the pending samples on Ray; the options are :func:`~.run.run_model`'s.

    Raises:
        RuntimeError: the cluster failed the run (an actor died more often than
            ``backend.max_restarts`` allows); what was written stays, a re-run continues.
    """
    check_run(samples, outputs, batch_size, None)
    report = RunReport()
    with stopping_on_faults(report):
        todo = start_run(samples, outputs, skip_existing, report)
        step = backend.samples_per_pass
        with BatchWriter(samples, outputs, report, len(todo), progress, mask_dir) as writer:
            for start in range(0, len(todo), step):  # the driver's memory stays bounded
                rows = _rows(samples, todo[start : start + step], plan, writer)
                if rows:
                    _stream(rows, plan, backend, batch_size, writer)
    logger.info("%s: %s (Ray)", outputs.label_field, report.summary())
    return report


def _rows(
    samples: SampleCollection, ids: list[str], plan: RayPlan, writer: BatchWriter
) -> list[dict[str, Any]]:
    """The workers' rows of ``ids``; samples whose tags value is unusable are failed here."""
    rows, bad = [], []
    for start in range(0, len(ids), _WINDOW):
        window = ids[start : start + _WINDOW]
        retrying("reading metadata", fill_metadata, samples, window)
        for item in retrying("reading inputs", read_inputs, samples, window, plan.prompt_field):
            try:
                rows.append(_row(item, plan))
            except ValueError as err:  # a tags value of the wrong type
                bad.append(Failure(item["id"], item["filepath"], str(err)))
    if bad:
        writer.write({}, bad, {})
    return rows


def _row(item: dict[str, Any], plan: RayPlan) -> dict[str, Any]:
    prompt = None
    if plan.prompt_field:
        prompt = read_tags(item[PROMPT_KEY], item["id"], plan.prompt_field)
    if plan.default_prompt is not None:
        prompt = prompt or plan.default_prompt
    return {"id": item["id"], "filepath": item["filepath"], "prompt": prompt, "error": ""}


def _stream(
    rows: list[dict[str, Any]],
    plan: RayPlan,
    backend: RayBackend,
    batch_size: int,
    writer: BatchWriter,
) -> None:
    ray = backend.connect()
    column = plan.stages[-1].stage.output
    data = backend.pipeline(rows, plan.stages, batch_size)
    try:
        for batch in data.iter_batches(batch_size=None, batch_format="numpy"):
            labels, failures, paths = {}, [], {}
            for row in to_rows(batch):
                if row["error"]:
                    failures.append(Failure(row["id"], row["filepath"], row["error"]))
                else:
                    labels[row["id"]] = plan.to_labels(row[column])
                    paths[row["id"]] = row["filepath"]
            targets = plan.targets.targets if plan.targets else None
            writer.write(labels, failures, paths, targets)
    except ray.exceptions.RayError as err:
        raise RuntimeError(
            f"the Ray run stopped ({_cause(err)}) with {writer.report.summary()}; what was "
            f"written stays, and running it again does the rest\n{err}"
        ) from err


def _cause(err: Exception) -> str:
    """The last ``SomeError: message`` line of a Ray error (a worker's own exception), else
    the Ray error's type."""
    lines = re.findall(r"^\s*(\w+(?:Error|Exception): .+)$", str(err), flags=re.M)
    return lines[-1] if lines else type(err).__name__
