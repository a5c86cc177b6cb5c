"""The run loop shared by the three runners: pending samples -> inputs -> batches -> labels by id.

Each step is a function of its own, so that another backend can replace the middle ones:
:func:`pending_ids`, :func:`read_inputs` and :func:`write_labels` need the database (the driver),
:func:`predict_batch` needs only the model and the inputs (any worker). Labels are written after
every batch, keyed by sample id, so a stopped run loses at most the batch in flight and a re-run
(with ``skip_existing``) continues where it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import fiftyone as fo
import fiftyone.core.utils as fou
import fiftyone.utils.torch as fout
import torch
from fiftyone.core.collections import SampleCollection

from .items import PROMPT_KEY, ImageGetItem, collate_items
from .mask_targets import MaskTargets, record_mask_targets
from .model import ImageModel
from .report import Failure, RunReport

logger = logging.getLogger(__name__)

Progress = bool | Callable[[int, int], None] | None
"""True/False/None for a progress bar (FiftyOne's setting when None), or
``callback(processed, total)`` called after every batch."""

# Inputs are read from the database this many samples at a time.
_WINDOW = 4096


@dataclass
class Outputs:
    """Where a model's labels go.

    Attributes:
        label_field: the field of a single label; for a dict of labels, each key's field is
            ``field_of(key)``, by default ``<label_field>_<key>`` (as ``apply_model``).
        done_field: a sample holding this field counts as done (the skip-existing rule).
        field_of: names the field of each key of a dict of labels.
        mask_targets_field: the field whose ``dataset.mask_targets`` follows the model's
            ``mask_targets`` (recorded before each batch's masks are written).
    """

    label_field: str
    done_field: str
    field_of: Callable[[str], str] | None = None
    mask_targets_field: str | None = None

    def fields(self, labels: Any) -> dict[str, Any]:
        """``{field: value}`` for one sample's labels."""
        if not isinstance(labels, dict):
            return {self.label_field: labels}
        name = self.field_of or (lambda key: f"{self.label_field}_{key}")
        return {name(key): value for key, value in labels.items()}


def pending_ids(samples: SampleCollection, done_field: str, skip_existing: bool) -> list[str]:
    """The samples a run must label: those without ``done_field`` (all, without skip_existing)."""
    return (samples.exists(done_field, False) if skip_existing else samples).values("id")


def read_inputs(
    samples: SampleCollection, ids: list[str], prompt_field: str | None
) -> list[dict[str, Any]]:
    """What a worker needs of each sample, as plain dicts: ``id``, ``filepath`` and the value of
    ``prompt_field`` (under ``"prompt_field"``, as :class:`~.items.ImageGetItem` reads it)."""
    fields = ["id", "filepath", *([prompt_field] if prompt_field else [])]
    keys = ["id", "filepath", *([PROMPT_KEY] if prompt_field else [])]
    columns = samples.select(ids, ordered=True).values(fields)
    return [dict(zip(keys, row)) for row in zip(*columns)]


def predict_batch(
    model: ImageModel, items: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[Failure]]:
    """Labels of one batch by sample id, and the batch's failures.

    A batch that raises (rather than failing per sample) fails each of its samples with the
    error, so the run goes on and the report stays true.
    """
    seen = len(model.failures)
    try:
        labels = model.predict_all(items)
    except Exception as err:  # noqa: BLE001 - reported per sample below
        reason = f"{type(err).__name__}: {err}"
        for item in items:
            if item["error"] is None:
                model.record_failure(item, reason)
        labels = [None] * len(items)
    done = {item["id"]: label for item, label in zip(items, labels) if label is not None}
    return done, model.failures[seen:]


def write_labels(samples: SampleCollection, outputs: Outputs, labels_by_id: dict[str, Any]) -> None:
    """Writes each sample's labels in bulk, keyed by sample id."""
    columns: dict[str, dict[str, Any]] = {}
    for sample_id, labels in labels_by_id.items():
        for field, value in outputs.fields(labels).items():
            columns.setdefault(field, {})[sample_id] = value
    for field, values in columns.items():
        samples._dataset.set_values(field, values, key_field="id")


class MaskWriter:
    """Writes masks and heatmaps as PNG files under a folder, named after their images, and
    points the labels at them (``mask_path``, ``map_path``), as ``apply_model(output_dir=...)``."""

    def __init__(self, folder: str) -> None:
        self.names = fou.UniqueFilenameMaker(output_dir=folder, idempotent=False)

    def export(self, labels_by_id: dict[str, Any], filepaths: dict[str, str]) -> None:
        """Exports the arrays of each sample's labels (before the labels are written)."""
        for sample_id, labels in labels_by_id.items():
            for label in labels.values() if isinstance(labels, dict) else [labels]:
                parts = label.detections if isinstance(label, fo.Detections) else [label]
                for part in parts:
                    self._export(part, filepaths[sample_id])

    def _export(self, label: Any, image_path: str) -> None:
        if isinstance(label, fo.Heatmap) and label.map is not None:
            label.export_map(self._path(image_path), update=True)
        elif isinstance(label, (fo.Detection, fo.Segmentation)) and label.mask is not None:
            label.export_mask(self._path(image_path), update=True)

    def _path(self, image_path: str) -> str:
        return self.names.get_output_path(image_path, output_ext=".png")


def load_batches(
    inputs: list[dict[str, Any]], get_item: ImageGetItem, batch_size: int, num_workers: int
) -> Iterator[list[dict[str, Any]]]:
    """Items in batches, images loaded by ``num_workers`` DataLoader workers (0: here)."""
    loader = torch.utils.data.DataLoader(
        _Inputs(inputs, get_item),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate_items,
    )
    yield from loader


class _Inputs(torch.utils.data.Dataset):
    def __init__(self, inputs: list[dict[str, Any]], get_item: ImageGetItem) -> None:
        self.inputs, self.get_item = inputs, get_item

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.get_item(self.inputs[i])


def run_model(
    samples: SampleCollection,
    model: ImageModel,
    outputs: Outputs,
    *,
    batch_size: int,
    num_workers: int | None = None,
    skip_existing: bool = True,
    progress: Progress = None,
    mask_dir: str | None = None,
) -> RunReport:
    """Labels the pending samples with ``model``, batch by batch; see the module docstring.

    The options every runner shares:

    Args:
        batch_size: images per batch.
        num_workers: image-loading DataLoader workers (0: in this process; None: FiftyOne's
            recommendation).
        skip_existing: leave samples that already have ``outputs.done_field`` alone.
        progress: a progress bar setting, or ``callback(processed, total)`` after every batch.
        mask_dir: write masks and heatmaps as PNGs under this folder (``mask_path``,
            ``map_path``) instead of in the database.

    Returns:
        Samples done, skipped and failed (each failure with its sample id, file and reason).

    Raises:
        ValueError: ``batch_size`` below 1 (before any work).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    todo = pending_ids(samples, outputs.done_field, skip_existing)
    report = RunReport(skipped=len(samples) - len(todo))
    prompt_field = model.config.prompt_field
    get_item = model.build_get_item({PROMPT_KEY: prompt_field} if prompt_field else None)
    targets_field = outputs.mask_targets_field
    if targets_field:  # continue the field's class map
        model.use_mask_targets(MaskTargets(samples._dataset.mask_targets.get(targets_field)))
    workers = fout.recommend_num_workers(num_workers)
    mask_writer = MaskWriter(mask_dir) if mask_dir else None
    callback = progress if callable(progress) else None
    with fou.ProgressBar(total=len(todo), progress=False if callback else progress) as bar:
        for start in range(0, len(todo), _WINDOW):
            inputs = read_inputs(samples, todo[start : start + _WINDOW], prompt_field)
            for items in load_batches(inputs, get_item, batch_size, workers):
                labels, failures = predict_batch(model, items)
                if targets_field:  # before the masks that use them
                    record_mask_targets(samples._dataset, targets_field, model.mask_targets)
                if mask_writer:
                    mask_writer.export(labels, {it["id"]: it["filepath"] for it in items})
                write_labels(samples, outputs, labels)
                report.done += len(labels)
                report.failures.extend(failures)
                bar.update(len(items))
                if callback:
                    callback(report.done + report.failed, len(todo))
    logger.info("%s: %s", outputs.label_field, report.summary())
    return report
