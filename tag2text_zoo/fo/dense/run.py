"""TagAlign dense segmentation of a FiftyOne collection: resumable, written batch by batch."""

from __future__ import annotations

from collections.abc import Sequence

from fiftyone.core.collections import SampleCollection

from ...defaults import DENSE_FIELD
from ...engines.dense import DenseSegmenter
from ...loaders import ModelSpec, loaded
from ..base.report import RunReport
from ..base.run import Outputs, Progress, run_model
from ..base.tags import check_tags_field
from .model import SEGMENTATION, DenseModel, DenseModelConfig


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
        mask_dir, batch_size, num_workers, skip_existing, progress: as for every runner (see
            :func:`~tag2text_zoo.fo.base.run.run_model`).

    Returns:
        Samples done, skipped and failed (each failure with its sample id, file and reason).

    Raises:
        ValueError: no class source, a prompt field that is missing or cannot hold tags, or
            existing mask targets that conflict (checked before any work).
    """
    model = loaded(model, "dense")
    if isinstance(model, DenseModel):
        if prompt_field is None and classes is None:  # the model's own source; a field wins
            prompt_field = model.config.prompt_field
            classes = None if prompt_field else model.config.classes
        exif_transpose, model = model.config.exif_transpose, model.segmenter
    else:
        exif_transpose = True
    if (prompt_field is None) == (classes is None):
        raise ValueError("give exactly one of prompt_field (each sample's classes) or classes")
    if prompt_field is not None:
        check_tags_field(samples, prompt_field)
    config = DenseModelConfig(prompt_field, classes and list(classes), heatmaps, exif_transpose)
    adapter = DenseModel(model, config)
    outputs = Outputs(
        label_field,
        done_field=label_field,
        field_of=lambda key: label_field if key == SEGMENTATION else f"{label_field}_{key}",
        mask_targets_field=label_field,
    )
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
