"""Tagging (and captioning) a FiftyOne collection: resumable, written batch by batch."""

from __future__ import annotations

import fiftyone as fo
import fiftyone.core.utils as fou
from fiftyone.core.collections import SampleCollection

from ...defaults import TAGGER_BATCH_SIZE, TAGGING_FIELD
from ...distributed.backend import RayBackend, backend_of
from ...distributed.stages import StageSpec, TagStage, tag_result
from ...engines.tagger import Tagger
from ...loaders import ModelSpec, loaded
from ..base.ray_run import RayPlan, model_spec, run_on_ray
from ..base.report import RunReport
from ..base.run import Outputs, Progress, check_options, run_model
from ..base.tags import check_tags_field, mark_outputs, parse_tags
from .labels import CAPTION, TAGS, tags_field, to_tag_labels
from .model import TaggerModel, TaggerModelConfig


def label_samples(
    samples: SampleCollection,
    model: Tagger | TaggerModel | ModelSpec,
    label_field: str = TAGGING_FIELD,
    *,
    prompt_field: str | None = None,
    specified_tags: str | list[str] | None = None,
    store_logits: bool = False,
    batch_size: int = TAGGER_BATCH_SIZE,
    num_workers: int | None = None,
    skip_existing: bool = True,
    progress: Progress = None,
    backend: str | RayBackend = "local",
) -> RunReport:
    """Writes ``<label_field>_tags`` (``fo.Classifications``) and, for Tag2Text,
    ``<label_field>_caption`` on each sample that lacks its tags; both fields' ``info`` then say
    what they hold and when they were written (:func:`~tag2text_zoo.tags_fields` reads it).

    Labels are written after every batch, so a stopped run loses at most one batch; running it
    again continues where it stopped, and every sample is labelled once.

    Args:
        samples: a dataset or view.
        model: a tagger (:func:`~tag2text_zoo.load_tagger`), its :class:`TaggerModel`, or a
            ``ModelSpec("tagger", ...)``.
        label_field: prefix of the output fields.
        prompt_field: a field of tags steering each sample's caption (else the model's config).
        specified_tags: tags steering every caption where a sample has none (``"cloud,sky"``).
        store_logits: also store every class's logit in ``Classifications.logits`` (float16),
            in the order of ``dataset.classes["<label_field>_tags"]``, recorded here (local
            backend only).
        batch_size, num_workers, skip_existing, progress, backend: as for every runner (see
            :func:`~tag2text_zoo.fo.base.run.run_model`); with a Ray backend, ``model`` is a
            ModelSpec.

    Returns:
        Samples done, skipped and failed (each failure with its sample id, file and reason).

    Raises:
        ValueError: ``prompt_field`` is missing or cannot hold tags, tags would steer a model
            that does not caption, an output field holds another type, the field's logits
            were stored over other classes, or a bad option (checked before any work).
        RunStopped: the database or the disk stopped the run (see
            :func:`~tag2text_zoo.fo.base.run.run_model`).
    """
    check_options(batch_size, num_workers)
    outputs = Outputs(label_field, done_field=tags_field(label_field))
    outputs.kinds[outputs.done_field] = fo.Classifications
    caption_field = f"{label_field}_{CAPTION}"
    options = {"batch_size": batch_size, "skip_existing": skip_existing, "progress": progress}
    if (ray := backend_of(backend)) is not None:
        if store_logits:
            raise ValueError("store_logits is not available on the Ray backend; run locally")
        outputs.kinds[caption_field] = str  # the model is not loaded here to ask if it captions
        plan = _ray_plan(samples, model, prompt_field, specified_tags)
        report = run_on_ray(samples, outputs, plan, ray, **options)
    else:
        model = _tagger_model(model, prompt_field, specified_tags)
        if model.config.prompt_field is not None:
            check_tags_field(samples, model.config.prompt_field)
        if model.config.caption and model.tagger.can_caption:
            outputs.kinds[caption_field] = str
        if store_logits:
            record_classes(samples._dataset, outputs.done_field, model.classes)
        with fou.SetAttributes(model, store_logits=store_logits):
            report = run_model(samples, model, outputs, num_workers=num_workers, **options)
    mark_outputs(samples, {outputs.done_field: TAGS, caption_field: CAPTION})
    return report


def _tagger_model(
    model: Tagger | TaggerModel | ModelSpec,
    prompt_field: str | None,
    specified_tags: str | list[str] | None,
) -> TaggerModel:
    """``model`` as a TaggerModel, loaded if a spec, steered by the run's tag options."""
    model = loaded(model, "tagger")
    if isinstance(model, Tagger):
        return TaggerModel(model, TaggerModelConfig(prompt_field, specified_tags))
    if prompt_field is None and specified_tags is None:
        return model
    config = TaggerModelConfig(
        prompt_field or model.config.prompt_field,
        specified_tags or model.config.specified_tags,
        model.config.caption,
    )
    return TaggerModel(model.tagger, config)


def _ray_plan(
    samples: SampleCollection,
    model: ModelSpec,
    prompt_field: str | None,
    specified_tags: str | list[str] | None,
) -> RayPlan:
    """One tagging stage; the driver reads each sample's tags, else the specified ones."""
    if prompt_field is not None:
        check_tags_field(samples, prompt_field)
    steered = prompt_field is not None or specified_tags is not None
    spec = model_spec(model, "tagger")
    stage = StageSpec("tag", TagStage, {"spec": spec, "steered": steered})
    default = parse_tags(specified_tags) if isinstance(specified_tags, str) else specified_tags
    return RayPlan([stage], lambda result: to_tag_labels(tag_result(result)), prompt_field, default)


def record_classes(dataset: fo.Dataset, field: str, classes: list[str]) -> None:
    """Records ``classes`` (the order of ``field``'s stored logits) in ``dataset.classes``.

    Raises:
        ValueError: the dataset names other classes for ``field``.
    """
    known = dataset.classes.get(field)
    if known is not None and list(known) != list(classes):
        raise ValueError(
            f"{field!r} holds logits over {len(known)} other classes (dataset.classes); "
            "write this model's tags to another label_field"
        )
    if known is None:
        dataset.classes = {**dataset.classes, field: list(classes)}
        dataset.save()
