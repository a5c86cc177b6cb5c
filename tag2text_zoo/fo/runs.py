"""Long runs: label only what is still unlabelled, writing as it goes, so a killed run resumes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import fiftyone as fo

from ..engines.tagger import Tagger
from .labels import check_prompt_field
from .model import TaggerModel

logger = logging.getLogger(__name__)


@dataclass
class LabelRun:
    """What :func:`label_samples` did: samples labelled now and ``(sample id, error)`` failures."""

    labelled: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


def label_samples(
    samples: fo.core.collections.SampleCollection,
    model: TaggerModel | Tagger,
    label_field: str = "t2t",
    batch_size: int = 8,
    *,
    num_workers: int | None = None,
    prompt_field: str | None = None,
    batches_per_write: int = 4,
    progress: bool | None = None,
    skip_existing: bool = True,
) -> LabelRun:
    """Labels the samples that lack ``{label_field}_tags``; re-running continues a stopped run.

    With ``skip_existing=False`` every sample is labelled again, overwriting its labels.

    Work goes in chunks of ``batches_per_write`` batches, each written before the next starts,
    so Ctrl-C or a kill loses at most the chunk in flight and nothing is labelled twice.

    Raises:
        ValueError: ``prompt_field`` is missing or of a type that cannot hold tags (checked
            before any work).
    """
    if isinstance(model, Tagger):
        model = TaggerModel(model)
    if prompt_field is not None:
        check_prompt_field(samples, prompt_field)
        model.config.prompt_field = prompt_field
    elif model.config.prompt_field is not None:
        check_prompt_field(samples, model.config.prompt_field)
    todo = (samples.exists(f"{label_field}_tags", False) if skip_existing else samples).values("id")
    run, seen_failures, chunk = LabelRun(), len(model.failures), batch_size * batches_per_write
    for start in range(0, len(todo), chunk):
        ids = todo[start : start + chunk]
        samples.select(ids).apply_model(
            model, label_field, batch_size=batch_size, num_workers=num_workers, progress=progress
        )
        logger.info("labelled %d / %d samples", min(start + chunk, len(todo)), len(todo))
    run.failures = model.failures[seen_failures:]
    run.labelled = len(todo) - len(run.failures)
    return run


def dataset_for(target: str | Path, name: str | None = None) -> fo.Dataset:
    """An existing dataset by name, or a persistent one made from a directory of images.

    A directory's dataset is named after it (or ``name``) and reused on later runs.
    """
    path = Path(target).expanduser()
    if not path.is_dir():
        if fo.dataset_exists(str(target)):
            return fo.load_dataset(str(target))
        raise ValueError(f"{target!r} is neither a dataset nor a directory of images")
    name = name or path.resolve().name
    if fo.dataset_exists(name):
        return fo.load_dataset(name)
    dataset = fo.Dataset.from_dir(
        dataset_dir=str(path), dataset_type=fo.types.ImageDirectory, name=name, progress=False
    )
    dataset.persistent = True
    return dataset
