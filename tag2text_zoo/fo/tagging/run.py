"""Tagging (and captioning) a FiftyOne collection: resumable, written batch by batch."""

from __future__ import annotations

from fiftyone.core.collections import SampleCollection

from ...defaults import TAGGING_FIELD
from ...engines.tagger import Tagger
from ...loaders import ModelSpec, loaded
from ..base.report import RunReport
from ..base.run import Outputs, Progress, run_model
from ..base.tags import check_tags_field
from .labels import tags_field
from .model import TaggerModel, TaggerModelConfig


def label_samples(
    samples: SampleCollection,
    model: Tagger | TaggerModel | ModelSpec,
    label_field: str = TAGGING_FIELD,
    *,
    prompt_field: str | None = None,
    specified_tags: str | list[str] | None = None,
    batch_size: int = 8,
    num_workers: int | None = None,
    skip_existing: bool = True,
    progress: Progress = None,
) -> RunReport:
    """Writes ``<label_field>_tags`` (``fo.Classifications``) and, for Tag2Text,
    ``<label_field>_caption`` on each sample that lacks its tags.

    Labels are written after every batch, so a stopped run loses at most one batch; running it
    again continues where it stopped, and every sample is labelled once.

    Args:
        samples: a dataset or view.
        model: a tagger (:func:`~tag2text_zoo.load_tagger`), its :class:`TaggerModel`, or a
            ``ModelSpec("tagger", ...)``.
        label_field: prefix of the output fields.
        prompt_field: a field of tags steering each sample's caption (else the model's config).
        specified_tags: tags steering every caption where a sample has none (``"cloud,sky"``).
        batch_size, num_workers, skip_existing, progress: as for every runner (see
            :func:`~tag2text_zoo.fo.base.run.run_model`).

    Returns:
        Samples done, skipped and failed (each failure with its sample id, file and reason).

    Raises:
        ValueError: ``prompt_field`` is missing or cannot hold tags, or tags would steer a model
            that does not caption (checked before any work).
    """
    model = loaded(model, "tagger")
    if isinstance(model, Tagger):
        model = TaggerModel(model, TaggerModelConfig(prompt_field, specified_tags))
    elif prompt_field is not None or specified_tags is not None:
        config = TaggerModelConfig(
            prompt_field or model.config.prompt_field,
            specified_tags or model.config.specified_tags,
            model.config.caption,
        )
        model = TaggerModel(model.tagger, config)
    if model.config.prompt_field is not None:
        check_tags_field(samples, model.config.prompt_field)
    outputs = Outputs(label_field, done_field=tags_field(label_field))
    return run_model(
        samples,
        model,
        outputs,
        batch_size=batch_size,
        num_workers=num_workers,
        skip_existing=skip_existing,
        progress=progress,
    )
