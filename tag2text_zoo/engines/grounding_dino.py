"""Grounding DINO from a hub id, a transformers folder, or an official checkpoint file."""

from __future__ import annotations

from pathlib import Path

import transformers
from transformers import (
    BertTokenizerFast,
    GroundingDinoForObjectDetection,
    GroundingDinoImageProcessor,
    GroundingDinoProcessor,
)

from ..assets.official import bert_vocab_for, official_checkpoint, trusted_official_sha256
from ..models.official_checkpoint import load_official_model

# GroundingDINO resizes PIL images (RandomResize([800], max_size=1333)); transformers >= 5 names
# that backend "Pil" (its defaults are the same sizes, mean and std).
_PIL_IMAGE_PROCESSOR = getattr(
    transformers, "GroundingDinoImageProcessorPil", GroundingDinoImageProcessor
)


def load_grounding_dino(
    name_or_path: str | Path, models_dir: str | Path | None = None
) -> tuple[GroundingDinoForObjectDetection, GroundingDinoProcessor]:
    """Loads Grounding DINO and its processor.

    Args:
        name_or_path: a hub id or transformers folder; an official checkpoint file
            (``groundingdino_swint_ogc.pth``; converted once, the copy kept beside it, its
            tokenizer from a ``vocab.txt`` beside it or the bert-base-uncased one); or a name of
            :data:`~tag2text_zoo.assets.official.OFFICIAL_CHECKPOINTS` (downloaded first).
        models_dir: where catalogue names (and the BERT vocabulary) are downloaded.

    Raises:
        CheckpointError: a file that is not a usable Grounding DINO checkpoint.
        DownloadError: files that could not be downloaded (listed with their URLs).
    """
    path = official_checkpoint(name_or_path, models_dir)
    if path is None:
        return (
            GroundingDinoForObjectDetection.from_pretrained(str(name_or_path)),
            GroundingDinoProcessor.from_pretrained(str(name_or_path)),
        )
    model = load_official_model(
        path, families=("grounding-dino",), trusted_sha256=trusted_official_sha256()
    )
    # positional: the parameter is vocab_file in transformers 4, vocab in 5
    tokenizer = BertTokenizerFast(str(bert_vocab_for(path, models_dir)))
    processor = GroundingDinoProcessor(image_processor=_PIL_IMAGE_PROCESSOR(), tokenizer=tokenizer)
    return model, processor
