"""Training a TagAlign projector on a FiftyOne collection: image, caption field, tags field."""

from __future__ import annotations

import dataclasses
import os

from fiftyone.core.collections import SampleCollection
from transformers import CLIPModel, CLIPTokenizer

from ...defaults import CLIP
from ...engines.tagalign_train import TrainConfig, TrainResult, TrainSample, train_projector
from ..base.tags import read_tags


def training_samples(
    samples: SampleCollection, tags_field: str, caption_field: str
) -> tuple[list[TrainSample], list[str]]:
    """Reads (image, caption, tags) per sample and the sorted vocabulary of all tags.

    Raises:
        ValueError: a sample has no caption string, or tags of a wrong type (the sample is named).
    """
    out = []
    ids, paths, captions, tags = samples.values(["id", "filepath", caption_field, tags_field])
    for sample_id, path, caption, value in zip(ids, paths, captions, tags):
        if not isinstance(caption, str) or not caption.strip():
            raise ValueError(f"sample {sample_id} ({path}) has no caption in {caption_field!r}")
        out.append(TrainSample(path, caption, read_tags(value, sample_id, tags_field)))
    vocabulary = sorted({t for s in out for t in s.tags})
    return out, vocabulary


def train_tagalign(
    samples: SampleCollection,
    output_dir: str | os.PathLike,
    *,
    tags_field: str,
    caption_field: str,
    clip: str = CLIP,
    config: TrainConfig | None = None,
    device: str | None = None,
    dtype: str = "auto",
    progress: bool = True,
) -> TrainResult:
    """Trains a TagAlign projector on the samples' images, captions and tags; resumes from
    ``output_dir/checkpoint_latest.pth`` when present.

    Args:
        samples: a dataset or view.
        output_dir: where checkpoints go (TagAlign's format; load the result with
            ``load_dense_segmenter(clip, projector=<output_dir>/checkpoint_latest.pth)``).
        tags_field: the field of each sample's tags (the vocabulary is all of them).
        caption_field: the string field of each sample's caption.
        clip: the frozen CLIP (hub id or transformers folder).
        config: hyper-parameters; its ``vocabulary`` is set from the samples.
        device: default CUDA when available.
        dtype: ``"auto"`` (bfloat16 on CUDA, float32 elsewhere), ``"float32"``, ``"bfloat16"``
            or ``"float16"``.
        progress: show a progress bar.

    Raises:
        ValueError: a sample lacks a caption or has tags of a wrong type (before training).
    """
    train_samples, vocabulary = training_samples(samples, tags_field, caption_field)
    config = dataclasses.replace(config or TrainConfig(), vocabulary=vocabulary)
    model, tokenizer = CLIPModel.from_pretrained(clip), CLIPTokenizer.from_pretrained(clip)
    return train_projector(
        model,
        tokenizer,
        train_samples,
        output_dir,
        config,
        device=device,
        dtype=dtype,
        progress=progress,
    )
