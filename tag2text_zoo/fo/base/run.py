"""The run loop shared by the three runners: pending samples -> inputs -> batches -> labels by id.

Each step is a function of its own, so that another backend can replace the middle ones:
:func:`pending_ids`, :func:`read_inputs` and :func:`write_labels` need the database (the driver),
:func:`predict_batch` needs only the model and the inputs (any worker). Labels are written after
every batch, keyed by sample id, so a stopped run loses at most the batch in flight and a re-run
(with ``skip_existing``) continues where it stopped. Options and output fields are checked before
any work; database calls are retried while the database is unreachable (:mod:`.database`); a
database that stays away or a disk that fills up stops the run with :class:`~.report.RunStopped`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import fiftyone as fo
import fiftyone.core.fields as fof
import fiftyone.core.utils as fou
import fiftyone.utils.torch as fout
import torch
from fiftyone.core.collections import SampleCollection
from pymongo.errors import ConnectionFailure, PyMongoError

from .database import brief, retrying
from .items import PROMPT_KEY, ImageGetItem, collate_items
from .mask_files import MaskWriter
from .mask_targets import MaskTargets, record_mask_targets
from .model import ImageModel
from .report import Failure, RunReport, RunStopped

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
        kinds: the fields the run writes, with what each holds (a label class, or ``str``),
            checked against existing fields before any work.
    """

    label_field: str
    done_field: str
    field_of: Callable[[str], str] | None = None
    mask_targets_field: str | None = None
    kinds: dict[str, type] = dataclasses.field(default_factory=dict)

    def check_fields(self, dataset: fo.Dataset) -> None:
        """Refuses an output field that exists holding another type: its values could not be
        written, and its samples would count as done.

        Raises:
            ValueError: naming the field, what it holds and what the run writes.
        """
        for name, kind in self.kinds.items():
            existing = dataset.get_field(name)
            held = getattr(existing, "document_type", None) or type(existing)
            if existing is None or held is kind or kind is str and held is fof.StringField:
                continue
            writes = "StringField" if kind is str else kind.__name__
            raise ValueError(
                f"field {name!r} holds {held.__name__}, but this run writes {writes} there; "
                f"choose another label field, or delete {name!r} first"
            )

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


def fill_metadata(samples: SampleCollection, ids: list[str]) -> None:
    """Image width, height, size and type (``metadata``) for those of ``ids`` that lack it, by
    FiftyOne's ``compute_metadata`` (files it cannot read are left for the run to report)."""
    samples.select(ids).compute_metadata(warn_failures=False, progress=False)


def predict_batch(
    model: ImageModel, items: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[Failure]]:
    """Labels of one batch by sample id, and the batch's failures.

    A batch that runs out of device memory is halved and retried, down to one image, before a
    sample fails for it. A batch that raises otherwise (rather than failing per sample) fails
    each of its samples with the error, so the run goes on and the report stays true.
    """
    seen = len(model.failures)
    labels = _predict_halving(model, items)
    done = {item["id"]: label for item, label in zip(items, labels) if label is not None}
    return done, model.failures[seen:]


def _predict_halving(model: ImageModel, items: list[dict[str, Any]]) -> list[Any]:
    seen = len(model.failures)
    try:
        return model.predict_all(items)
    except torch.cuda.OutOfMemoryError as err:  # torch.OutOfMemoryError, on any device
        torch.cuda.empty_cache()
        if sum(item["error"] is None for item in items) > 1:
            del model.failures[seen:]  # the halves record their unreadable images again
            half = len(items) // 2
            logger.warning("Out of memory on a batch of %d; retrying it in halves", len(items))
            return _predict_halving(model, items[:half]) + _predict_halving(model, items[half:])
        reason = f"out of memory on this image alone: {err}"
    except Exception as err:  # noqa: BLE001 - reported per sample below
        reason = f"{type(err).__name__}: {err}"
    for item in items:
        if item["error"] is None:
            model.record_failure(item, reason)
    return [None] * len(items)


def write_labels(samples: SampleCollection, outputs: Outputs, labels_by_id: dict[str, Any]) -> None:
    """Writes each sample's labels in bulk, keyed by sample id, one field after another.

    The done field goes last: a run stopped between two fields leaves its samples not done (so a
    re-run redoes them), never done with a field missing. A frames, patches or clips view is
    written through, so FiftyOne copies the labels to its source (``to_frames()`` labels land on
    the video's frames).
    """
    columns: dict[str, dict[str, Any]] = {}
    for sample_id, labels in labels_by_id.items():
        for field, value in outputs.fields(labels).items():
            columns.setdefault(field, {})[sample_id] = value
    target = samples if samples._is_generated else samples._dataset
    for field in sorted(columns, key=lambda name: name == outputs.done_field):
        values = columns[field]
        retrying(f"writing {field!r}", target.set_values, field, values, key_field="id")


class BatchWriter:
    """The driver's side of every batch, whatever ran it: records the field's class map,
    exports masks, writes the labels by sample id, counts, and reports progress.

    Args:
        samples: the collection written to.
        outputs: where the labels go.
        report: the run's report, updated after every batch.
        total: samples the run will process (for progress).
        progress: a progress bar setting, or ``callback(processed, total)``.
        mask_dir: export masks and heatmaps as PNGs under this folder.
    """

    def __init__(
        self,
        samples: SampleCollection,
        outputs: Outputs,
        report: RunReport,
        total: int,
        progress: Progress,
        mask_dir: str | None,
    ) -> None:
        self.samples, self.outputs, self.report, self.total = samples, outputs, report, total
        self.callback = progress if callable(progress) else None
        self.bar = fou.ProgressBar(total=total, progress=False if self.callback else progress)
        self.mask_writer = MaskWriter(mask_dir) if mask_dir else None

    def __enter__(self) -> BatchWriter:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def write(
        self,
        labels_by_id: dict[str, Any],
        failures: list[Failure],
        filepaths: dict[str, str],
        mask_targets: dict[int, str] | None = None,
    ) -> None:
        """Stores one batch: its labels by sample id and its failures.

        Args:
            labels_by_id: each labelled sample's labels.
            failures: the batch's samples that could not be labelled.
            filepaths: image path of each labelled sample (names exported masks).
            mask_targets: the class map of the masks, recorded before them.
        """
        if self.outputs.mask_targets_field:  # before the masks that use them
            field, dataset = self.outputs.mask_targets_field, self.samples._dataset
            retrying("recording", record_mask_targets, dataset, field, mask_targets or {})
        if self.mask_writer:
            self.mask_writer.export(labels_by_id, filepaths)
        write_labels(self.samples, self.outputs, labels_by_id)
        self.report.done += len(labels_by_id)
        self.report.failures.extend(failures)
        self.bar.update(len(labels_by_id) + len(failures))
        if self.callback:
            self.callback(self.report.done + self.report.failed, self.total)


def start_run(
    samples: SampleCollection, outputs: Outputs, skip_existing: bool, report: RunReport
) -> list[str]:
    """The ids a run must label; counts the skipped into ``report`` (exactly: a full dataset's
    ``len()`` is an estimate, wrong after a database crash).

    The dataset is reloaded first (FiftyOne's own way to sync a schema, which also reloads its
    samples in memory): after a database crash the process may still hold a field whose
    declaration the database lost, and the run would write values no schema declares, then
    fail recording the field (``Sample field ... does not exist``).
    """
    retrying("reading samples", samples._root_dataset.reload)
    todo = retrying("reading samples", pending_ids, samples, outputs.done_field, skip_existing)
    report.skipped = retrying("counting samples", samples.count, "id") - len(todo)
    return todo


@contextlib.contextmanager
def stopping_on_faults(report: RunReport) -> Iterator[None]:
    """Turns a database that stays unreachable, or a mask file that cannot be written (a full
    disk), into :class:`~.report.RunStopped` carrying ``report``: what was done so far."""
    try:
        yield
    except ConnectionFailure as err:
        raise RunStopped(f"the database could not be reached ({brief(err)})", report) from err
    except (OSError, PyMongoError) as err:
        raise RunStopped(f"{type(err).__name__}: {err}", report) from err


def field_targets(samples: SampleCollection, outputs: Outputs) -> MaskTargets:
    """The class map of ``outputs.mask_targets_field`` so far, to continue."""
    return MaskTargets(samples._dataset.mask_targets.get(outputs.mask_targets_field))


def load_batches(
    inputs: list[dict[str, Any]],
    get_item: ImageGetItem,
    batch_size: int,
    num_workers: int,
    pin_memory: bool = False,
) -> Iterator[list[dict[str, Any]]]:
    """Items in batches, images loaded by ``num_workers`` DataLoader workers (0: here); with
    ``pin_memory`` (for a GPU) tensor images arrive in page-locked memory, so that their copies
    to the GPU do not wait (FiftyOne's ``apply_model(..., pin_memory=True)`` likewise)."""
    loader = torch.utils.data.DataLoader(
        _Inputs(inputs, get_item),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate_items,
        pin_memory=pin_memory,
    )
    yield from loader


def loader_workers(num_workers: int | None, device: torch.device) -> int:
    """``num_workers``, or by default: FiftyOne's recommendation when the model runs on a GPU,
    0 (images load between batches, in this process) when it runs on the CPU.

    On the CPU the model's threads already use every core, so a loader process has no idle core
    to overlap with and competes with them instead: on 2 cores, ``benchmarks/bench_pipeline.py``
    measured no gain from one worker (see the README's Performance section), and it costs a
    process.
    """
    if num_workers is not None:
        return num_workers
    return 0 if device.type == "cpu" else fout.recommend_num_workers(None)


class _Inputs(torch.utils.data.Dataset):
    def __init__(self, inputs: list[dict[str, Any]], get_item: ImageGetItem) -> None:
        self.inputs, self.get_item = inputs, get_item

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.get_item(self.inputs[i])


def check_options(batch_size: int, num_workers: int | None) -> None:
    """Refuses run options that cannot work (before any model is loaded or any work is done).

    Raises:
        ValueError: ``batch_size`` below 1 or ``num_workers`` below 0, or not integers.
    """
    if not _integer_at_least(batch_size, 1):
        raise ValueError(f"batch_size must be an integer of at least 1, got {batch_size!r}")
    if num_workers is not None and not _integer_at_least(num_workers, 0):
        raise ValueError(f"num_workers must be an integer of at least 0, got {num_workers!r}")


def check_run(
    samples: SampleCollection, outputs: Outputs, batch_size: int, num_workers: int | None
) -> None:
    """Refuses a run that cannot work, before any work: bad options (:func:`check_options`),
    samples that are not images (:func:`check_images`), output fields holding other types
    (:meth:`Outputs.check_fields`).

    Raises:
        ValueError: naming what is wrong.
    """
    check_options(batch_size, num_workers)
    check_images(samples)
    outputs.check_fields(samples._dataset)


def check_images(samples: SampleCollection) -> None:
    """Refuses a collection of videos (or other media) before any work.

    Raises:
        ValueError: naming the dataset, its media type and the frames view to run on instead.
    """
    if samples.media_type != "image":
        raise ValueError(
            f"{samples._dataset.name!r} holds {samples.media_type} samples; run on image samples, "
            "e.g. a video's frames: dataset.to_frames(sample_frames=True) (or use apply_model, "
            "which labels a video's frames)"
        )


def _integer_at_least(value: object, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


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
        num_workers: image-loading DataLoader workers (0: in this process; None: 0 for a model
            on the CPU, FiftyOne's recommendation on a GPU; see :func:`loader_workers`).
        skip_existing: leave samples that already have ``outputs.done_field`` alone.
        progress: a progress bar setting, or ``callback(processed, total)`` after every batch.
        mask_dir: write masks and heatmaps as PNGs under this folder (``mask_path``,
            ``map_path``) instead of in the database.
        backend: (the runners) ``"local"``: this loop; ``"ray"`` or a
            :class:`~tag2text_zoo.RayBackend`: the model runs on Ray workers
            (:mod:`.ray_run`), loaded there from a ModelSpec.

    Returns:
        Samples done, skipped and failed (each failure with its sample id, file and reason).

    Raises:
        ValueError: a bad option, samples that are not images, or an output field holding
            another type (before any work).
        RunStopped: the database stayed unreachable, or a mask file could not be written (a
            full disk); it carries the report of what was done, and a re-run continues.
    """
    check_run(samples, outputs, batch_size, num_workers)
    report = RunReport()
    with stopping_on_faults(report):
        todo = start_run(samples, outputs, skip_existing, report)
        prompt_field = model.config.prompt_field
        get_item = model.build_get_item({PROMPT_KEY: prompt_field} if prompt_field else None)
        if outputs.mask_targets_field:  # continue the field's class map
            model.use_mask_targets(field_targets(samples, outputs))
        workers = loader_workers(num_workers, model.device)
        pin_memory = model.device.type == "cuda"
        with BatchWriter(samples, outputs, report, len(todo), progress, mask_dir) as writer:
            for start in range(0, len(todo), _WINDOW):
                ids = todo[start : start + _WINDOW]
                retrying("reading metadata", fill_metadata, samples, ids)
                inputs = retrying("reading inputs", read_inputs, samples, ids, prompt_field)
                batches = load_batches(inputs, get_item, batch_size, workers, pin_memory)
                for items in batches:
                    labels, failures = predict_batch(model, items)
                    paths = {it["id"]: it["filepath"] for it in items}
                    writer.write(labels, failures, paths, model.mask_targets)
    logger.info("%s: %s", outputs.label_field, report.summary())
    return report
