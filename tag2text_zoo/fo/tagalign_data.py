"""TagAlign training samples from a FiftyOne dataset: image, caption string field, tags field."""

from __future__ import annotations

from fiftyone.core.collections import SampleCollection

from ..engines.tagalign_train import TrainSample
from .dense_model import sample_classes


def training_samples(
    samples: SampleCollection, tags_field: str, caption_field: str
) -> tuple[list[TrainSample], list[str]]:
    """Reads (image, caption, tags) per sample and the sorted vocabulary of all tags.

    Raises:
        ValueError: a sample has no caption string (the sample is named).
    """
    out = []
    for sample in samples.select_fields([tags_field, caption_field]):
        caption = sample[caption_field]
        if not isinstance(caption, str) or not caption.strip():
            raise ValueError(
                f"sample {sample.id} ({sample.filepath}) has no caption in {caption_field!r}"
            )
        out.append(TrainSample(sample.filepath, caption, sample_classes(sample, tags_field)))
    vocabulary = sorted({t for s in out for t in s.tags})
    return out, vocabulary
