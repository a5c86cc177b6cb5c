"""Grounded segmentation of a FiftyOne collection: resumable, written batch by batch."""

from __future__ import annotations

from typing import Any

import fiftyone as fo
from fiftyone.core.collections import SampleCollection

from ...defaults import GROUNDED_FIELD
from ...distributed.backend import RayBackend, backend_of
from ...distributed.stages import DetectStage, MaskStage, StageSpec, TagStage, grounded_result
from ...engines.grounded import GroundedSegmenter
from ...engines.tagger import Tagger
from ...loaders import ModelSpec, loaded
from ..base.ray_run import RayPlan, model_spec, run_on_ray
from ..base.report import RunReport
from ..base.run import Outputs, Progress, check_options, field_targets, run_model
from ..base.tags import check_tags_field
from .labels import to_grounded_labels
from .model import GroundedModel, GroundedModelConfig, check_tag_source


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
    backend: str | RayBackend = "local",
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
        tagger: tags each image in the same pass when neither of the above is given (on Ray,
            a ``ModelSpec("tagger", ...)``: a stage of its own).
        semantic_field: also write a semantic ``fo.Segmentation`` here; its classes are kept
            in ``dataset.mask_targets[semantic_field]``, extended as new tags appear.
        mask_dir, batch_size, num_workers, skip_existing, progress, backend: as for every
            runner (see :func:`~tag2text_zoo.fo.base.run.run_model`); on Ray, tagger ->
            detector -> SAM run as stages with actor pools of their own.

    Returns:
        Samples done, skipped and failed (each failure with its sample id, file and reason).

    Raises:
        ValueError: no tag source, a prompt field that is missing or cannot hold tags, an
            output field holding another type, or a bad option (checked before any work).
        RunStopped: the database or the disk stopped the run (see
            :func:`~tag2text_zoo.fo.base.run.run_model`).
    """
    check_options(batch_size, num_workers)
    outputs = Outputs(label_field, done_field=label_field, kinds={label_field: fo.Detections})
    if semantic_field is not None:
        names = {"detections": label_field, "semantic": semantic_field}
        outputs.field_of, outputs.mask_targets_field = names.__getitem__, semantic_field
        outputs.kinds[semantic_field] = fo.Segmentation
    config = GroundedModelConfig(prompt_field, classes, semantic=semantic_field is not None)
    options = {"batch_size": batch_size, "skip_existing": skip_existing, "progress": progress}
    if (ray := backend_of(backend)) is not None:
        plan = _ray_plan(samples, outputs, model, config, tagger)
        return run_on_ray(samples, outputs, plan, ray, mask_dir=mask_dir, **options)
    model = loaded(model, "grounded")
    if isinstance(model, GroundedModel):
        config.exif_transpose = model.config.exif_transpose
        tagger = tagger or model.tagger
        model = model.segmenter
    adapter = GroundedModel(model, config, loaded(tagger, "tagger"))
    adapter.check_source()
    if prompt_field is not None:
        check_tags_field(samples, prompt_field)
    return run_model(
        samples, adapter, outputs, num_workers=num_workers, mask_dir=mask_dir, **options
    )


def _ray_plan(
    samples: SampleCollection,
    outputs: Outputs,
    model: ModelSpec,
    config: GroundedModelConfig,
    tagger: ModelSpec | None,
) -> RayPlan:
    """Stages tagger (when it is the tag source) -> detector -> SAM; labels on the driver."""
    spec = model_spec(model, "grounded")
    check_tag_source(config, tagger)
    if config.prompt_field is not None:
        check_tags_field(samples, config.prompt_field)
    stages = [
        StageSpec("detect", DetectStage, {"spec": spec, "classes": config.classes}),
        StageSpec("mask", MaskStage, {"spec": spec}),
    ]
    if not (config.prompt_field or config.classes):
        tag_spec = {"spec": model_spec(tagger, "tagger"), "caption": False}
        stages.insert(0, StageSpec("tag", TagStage, tag_spec))
    targets = None
    if config.semantic:  # continue the field's class map, fixed classes first
        targets = field_targets(samples, outputs)
        for name in config.classes or []:
            targets.id(name)

    def to_labels(result: dict) -> Any:
        return to_grounded_labels(grounded_result(result), targets)

    return RayPlan(stages, to_labels, config.prompt_field, targets=targets)
