"""Grounded segmentation of a FiftyOne collection: resumable, written chunk by chunk.

Build the engine with :func:`~tag2text_zoo.engines.grounded.load_grounded_segmenter`, then::

    segment_samples(dataset, segmenter, "grounded", prompt_field="t2t_tags")
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import fiftyone as fo

from ..engines.grounded import GroundedSegmenter
from ..engines.tagger import Tagger
from .grounded_model import GroundedModel, GroundedModelConfig
from .labels import check_prompt_field, record_mask_targets

logger = logging.getLogger(__name__)

Progress = bool | Callable[[int, int], None] | None


def segment_samples(
    view: fo.core.collections.SampleCollection,
    segmenter: GroundedSegmenter | GroundedModel,
    label_field: str,
    *,
    prompt_field: str | None = None,
    classes: list[str] | None = None,
    tagger: Tagger | None = None,
    batch_size: int = 4,
    mask_dir: str | None = None,
    skip_existing: bool = True,
    progress: Progress = None,
    semantic_field: str | None = None,
    num_workers: int | None = None,
    batches_per_write: int = 4,
) -> int:
    """Writes ``fo.Detections`` with box-cropped masks into ``label_field`` of each sample.

    Tags come from ``prompt_field`` (Classifications, list of strings or "a,b" string), else
    ``classes``, else ``tagger`` run on the same images. Work goes in chunks of
    ``batches_per_write`` batches, each saved before the next starts; with ``skip_existing``
    only samples without ``label_field`` are done, so a stopped run continues where it stopped.

    Args:
        view: the samples.
        segmenter: the engine (or a :class:`GroundedModel`, whose tag source is then replaced).
        label_field: the Detections field.
        prompt_field: sample field of tags to ground.
        classes: fixed classes to ground in every image.
        tagger: tags each image in the same pass when neither of the above is given.
        batch_size: images per ``apply_model`` batch.
        mask_dir: write masks as PNGs under this folder (``mask_path``) instead of the database.
        skip_existing: leave samples that already have ``label_field`` alone.
        progress: True/False/None for FiftyOne's progress bar, or ``callback(done, total)``
            called after each chunk (the bar is then off).
        semantic_field: also write a semantic ``fo.Segmentation`` here; its classes are kept
            in ``dataset.mask_targets[semantic_field]``, extended as new tags appear.
        num_workers: image-loading DataLoader workers.
        batches_per_write: batches per saved chunk.

    Returns:
        The number of samples segmented (failures, logged and skipped, are not counted).

    Raises:
        ValueError: no tag source, or a prompt field that is missing or cannot hold tags
            (checked before any work).
    """
    config = GroundedModelConfig(prompt_field, classes, semantic=semantic_field is not None)
    if isinstance(segmenter, GroundedModel):
        config.exif_transpose = segmenter.config.exif_transpose
        tagger = tagger or segmenter.tagger
        segmenter = segmenter.segmenter
    model = GroundedModel(segmenter, config, tagger)
    model.check_source()
    if prompt_field is not None:
        check_prompt_field(view, prompt_field)
    dataset = view._dataset
    fields: str | dict[str, str] = label_field
    if semantic_field is not None:
        model.classes = _existing_classes(dataset, semantic_field, classes or [])
        fields = {"detections": label_field, "semantic": semantic_field}

    todo = (view.exists(label_field, False) if skip_existing else view).values("id")
    bar = False if callable(progress) else progress
    chunk = batch_size * max(batches_per_write, 1)
    for start in range(0, len(todo), chunk):
        view.select(todo[start : start + chunk], ordered=True).apply_model(
            model, fields, batch_size=batch_size, num_workers=num_workers,
            output_dir=mask_dir, progress=bar,
        )  # fmt: skip
        if semantic_field is not None:
            record_mask_targets(dataset, semantic_field, model.mask_targets)
        done = min(start + chunk, len(todo))
        logger.info("segmented %d / %d samples", done, len(todo))
        if callable(progress):
            progress(done, len(todo))
    return view.select(todo).exists(label_field).count() if todo else 0


def _existing_classes(dataset: fo.Dataset, field: str, classes: list[str]) -> list[str]:
    """The field's mask_targets as a class list in pixel-value order, then new ``classes``."""
    targets = dataset.mask_targets.get(field, {})
    if sorted(targets) != list(range(1, len(targets) + 1)):
        raise ValueError(
            f"mask_targets of {field!r} must use the values 1..N to be extended: {targets}"
        )
    known = [targets[k] for k in sorted(targets)]
    return known + [c for c in dict.fromkeys(classes) if c not in known]
