"""TagAlign dense segmentation of a FiftyOne collection: resumable, written batch by batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import fiftyone as fo
from fiftyone.core.collections import SampleCollection

from ...defaults import DENSE_FIELD
from ...distributed.backend import RayBackend, backend_of
from ...distributed.stages import DenseStage, StageSpec, dense_result
from ...engines.dense import DenseSegmenter
from ...loaders import ModelSpec, loaded
from ..base.ray_run import RayPlan, model_spec, run_on_ray
from ..base.report import RunReport
from ..base.run import Outputs, Progress, check_options, field_targets, run_model
from ..base.tags import check_tags_field
from .model import SEGMENTATION, DenseModel, DenseModelConfig, heatmap_field, to_dense_labels


def segment_dense(
    samples: SampleCollection,
    model: DenseSegmenter | DenseModel | ModelSpec,
    label_field: str = DENSE_FIELD,
    *,
    prompt_field: str | None = None,
    classes: Sequence[str] | None = None,
    heatmaps: bool | Sequence[str] = False,
    mask_dir: str | None = None,
    batch_size: int = 4,
    num_workers: int | None = None,
    skip_existing: bool = True,
    progress: Progress = None,
    backend: str | RayBackend = "local",
) -> RunReport:
    """Writes an ``fo.Segmentation`` per sample (and optionally an ``fo.Heatmap`` per class).

    ``dataset.mask_targets[label_field]`` is one map for the whole field, recorded as the run
    goes: a class keeps its pixel value in every sample and every later run.

    Args:
        samples: a dataset or view.
        model: the engine (:func:`~tag2text_zoo.load_dense_segmenter`), a :class:`DenseModel`
            (its class source is used unless given below), or a ``ModelSpec("dense", ...)``.
        label_field: the segmentation field.
        prompt_field: the field with each sample's classes (e.g. a tagger's Classifications).
        classes: one class list for every sample (where no prompt field is given).
        heatmaps: True for one ``fo.Heatmap`` field per class (``<label_field>_heatmap_<class>``),
            or the classes to write heatmaps for; scores in [0, 1].
        mask_dir, batch_size, num_workers, skip_existing, progress, backend: as for every
            runner (see :func:`~tag2text_zoo.fo.base.run.run_model`).

    Returns:
        Samples done, skipped and failed (each failure with its sample id, file and reason).

    Raises:
        ValueError: no class source, a prompt field that is missing or cannot hold tags,
            existing mask targets that conflict, an output field holding another type, or a bad
            option (checked before any work).
        RunStopped: the database or the disk stopped the run (see
            :func:`~tag2text_zoo.fo.base.run.run_model`).
    """
    check_options(batch_size, num_workers)
    outputs = _outputs(samples, label_field, heatmaps)
    options = {"batch_size": batch_size, "skip_existing": skip_existing, "progress": progress}
    if (ray := backend_of(backend)) is not None:
        plan = _ray_plan(samples, outputs, model, prompt_field, classes, heatmaps)
        return run_on_ray(samples, outputs, plan, ray, mask_dir=mask_dir, **options)
    model = loaded(model, "dense")
    if isinstance(model, DenseModel):
        if prompt_field is None and classes is None:  # the model's own source; a field wins
            prompt_field = model.config.prompt_field
            classes = None if prompt_field else model.config.classes
        exif_transpose, model = model.config.exif_transpose, model.segmenter
    else:
        exif_transpose = True
    _check_class_source(samples, prompt_field, classes)
    config = DenseModelConfig(prompt_field, classes and list(classes), heatmaps, exif_transpose)
    adapter = DenseModel(model, config)
    return run_model(
        samples, adapter, outputs, num_workers=num_workers, mask_dir=mask_dir, **options
    )


def _check_class_source(
    samples: SampleCollection, prompt_field: str | None, classes: Sequence[str] | None
) -> None:
    if (prompt_field is None) == (classes is None):
        raise ValueError("give exactly one of prompt_field (each sample's classes) or classes")
    if prompt_field is not None:
        check_tags_field(samples, prompt_field)


def _outputs(
    samples: SampleCollection, label_field: str, heatmaps: bool | Sequence[str]
) -> Outputs:
    """The segmentation field, its heatmap fields, and the types they must hold."""
    outputs = Outputs(
        label_field,
        done_field=label_field,
        field_of=lambda key: label_field if key == SEGMENTATION else f"{label_field}_{key}",
        mask_targets_field=label_field,
        kinds={label_field: fo.Segmentation},
    )
    if heatmaps is True:  # any class may get one: check the heatmap fields already there
        prefix = heatmap_field(label_field, "")
        written = [f for f in samples._dataset.get_field_schema() if f.startswith(prefix)]
    else:
        written = [heatmap_field(label_field, name) for name in heatmaps or []]
    outputs.kinds.update(dict.fromkeys(written, fo.Heatmap))
    return outputs


def _ray_plan(
    samples: SampleCollection,
    outputs: Outputs,
    model: ModelSpec,
    prompt_field: str | None,
    classes: Sequence[str] | None,
    heatmaps: bool | Sequence[str],
) -> RayPlan:
    """One TagAlign stage; the class map grows on the driver, from the field's."""
    spec = model_spec(model, "dense")
    _check_class_source(samples, prompt_field, classes)
    kwargs = {"spec": spec, "classes": classes and list(classes), "heatmaps": bool(heatmaps)}
    targets = field_targets(samples, outputs)

    def to_labels(result: dict) -> Any:
        return to_dense_labels(dense_result(result), targets, heatmaps)

    return RayPlan(
        [StageSpec("dense", DenseStage, kwargs)], to_labels, prompt_field, targets=targets
    )
