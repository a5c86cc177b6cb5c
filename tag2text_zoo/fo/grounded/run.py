"""Grounded segmentation of a FiftyOne collection: resumable, written batch by batch."""

from __future__ import annotations

from fiftyone.core.collections import SampleCollection

from ...defaults import GROUNDED_FIELD
from ...engines.grounded import GroundedSegmenter
from ...engines.tagger import Tagger
from ...loaders import ModelSpec, loaded
from ..base.report import RunReport
from ..base.run import Outputs, Progress, run_model
from ..base.tags import check_tags_field
from .model import GroundedModel, GroundedModelConfig


def segment_samples(
    samples: SampleCollection,
    model: GroundedSegmenter | GroundedModel | ModelSpec,
    label_field: str = GROUNDED_FIELD,
    *,
    prompt_field: str | None = None,
    classes: list[str] | None = None,
    tagger: Tagger | ModelSpec | None = None,
    semantic_field: str | None = None,
    mask_dir: str | None = None,
    batch_size: int = 4,
    num_workers: int | None = None,
    skip_existing: bool = True,
    progress: Progress = None,
) -> RunReport:
    """Writes ``fo.Detections`` with box-cropped masks into ``label_field`` of each sample.

    Tags come from ``prompt_field`` (Classifications, list of strings or "a,b" string), else
    ``classes``, else ``tagger`` run on the same images. Labels are written after every batch;
    with ``skip_existing`` only samples without ``label_field`` are done, so a stopped run
    continues where it stopped.

    Args:
        samples: a dataset or view.
        model: the engine (:func:`~tag2text_zoo.load_grounded_segmenter`), a
            :class:`GroundedModel` (whose tag source is then replaced by the arguments below), or
            a ``ModelSpec("grounded", ...)``.
        label_field: the Detections field.
        prompt_field: sample field of tags to ground.
        classes: fixed classes to ground in every image.
        tagger: tags each image in the same pass when neither of the above is given.
        semantic_field: also write a semantic ``fo.Segmentation`` here; its classes are kept
            in ``dataset.mask_targets[semantic_field]``, extended as new tags appear.
        mask_dir, batch_size, num_workers, skip_existing, progress: as for every runner (see
            :func:`~tag2text_zoo.fo.base.run.run_model`).

    Returns:
        Samples done, skipped and failed (each failure with its sample id, file and reason).

    Raises:
        ValueError: no tag source, or a prompt field that is missing or cannot hold tags
            (checked before any work).
    """
    model = loaded(model, "grounded")
    config = GroundedModelConfig(prompt_field, classes, semantic=semantic_field is not None)
    if isinstance(model, GroundedModel):
        config.exif_transpose = model.config.exif_transpose
        tagger = tagger or model.tagger
        model = model.segmenter
    adapter = GroundedModel(model, config, loaded(tagger, "tagger"))
    adapter.check_source()
    if prompt_field is not None:
        check_tags_field(samples, prompt_field)
    outputs = Outputs(label_field, done_field=label_field)
    if semantic_field is not None:
        names = {"detections": label_field, "semantic": semantic_field}
        outputs.field_of, outputs.mask_targets_field = names.__getitem__, semantic_field
    return run_model(
        samples,
        adapter,
        outputs,
        batch_size=batch_size,
        num_workers=num_workers,
        skip_existing=skip_existing,
        progress=progress,
        mask_dir=mask_dir,
    )
