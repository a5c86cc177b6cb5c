"""The tagger as a FiftyOne ``Model``: images decode in DataLoader workers, batches run on the GPU.

``dataset.apply_model(TaggerModel(tagger), label_field="t2t")`` writes ``t2t_tags``
(``fo.Classifications``) and ``t2t_caption`` (a string) on every sample. With
``store_logits=True`` each ``Classifications.logits`` holds the logit of every class (float16,
in the order of :attr:`TaggerModel.classes`); ``compute_embeddings`` gets the tagger's image
embedding (:meth:`~tag2text_zoo.Tagger.embed_tensors`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import fiftyone.core.models as fom
import numpy as np
import torch

from ...engines.preprocess import resize_to_uint8
from ...engines.tagger import Tagger
from ..base.model import ImageModel
from ..base.tags import parse_tags
from .labels import TagClasses, to_tag_labels


@dataclass
class TaggerModelConfig:
    """What the adapter does with the engine's results (``apply_model`` sets the last two).

    Attributes:
        prompt_field: sample field with per-sample tags that steer the caption (a string such as
            ``"cloud,sky"``, a list of strings or ``fo.Classifications``); None: model tags.
        specified_tags: tags steering every caption (``"cloud,sky"`` or a list) where the
            sample has no tags of its own.
        caption: also write ``{label_field}_caption`` (Tag2Text only).
        confidence_thresh: keep tags whose score is ``>=`` this (``apply_model``'s
            ``confidence_thresh=``).
        filter_classes: keep only these tag names (``apply_model``'s ``classes=``).
    """

    prompt_field: str | None = None
    specified_tags: str | list[str] | None = None
    caption: bool = True
    confidence_thresh: float | None = None
    filter_classes: set[str] | None = None


class TaggerModel(ImageModel, fom.LogitsMixin):
    """FiftyOne adapter around a :class:`~tag2text_zoo.Tagger`.

    Unreadable images are logged by sample id, listed in :attr:`failures` and left unlabelled;
    the rest of their batch is still written.

    Raises:
        ValueError: tags would steer captions of a model that does not caption.
    """

    def __init__(self, tagger: Tagger, config: TaggerModelConfig | None = None) -> None:
        super().__init__()
        fom.LogitsMixin.__init__(self)
        self.tagger = tagger
        self.config = config or TaggerModelConfig()
        self.tag_classes = TagClasses.of(tagger.tag_names)
        steered = self.config.prompt_field or self.config.specified_tags
        if self.config.caption and steered and not tagger.can_caption:
            raise ValueError(
                f"specified tags steer captions, but {tagger.config.model_type} does not caption"
            )
        # Workers resize to uint8; the model's device normalises (a quarter of the bytes to pass
        # between processes and to copy to a GPU, from pinned memory when the loader pins it).
        self.transform = functools.partial(resize_to_uint8, size=tagger.config.image_size)

    @property
    def device(self) -> torch.device:
        return self.tagger.device

    @property
    def exif_transpose(self) -> bool:
        return self.tagger.exif_transpose

    @property
    def classes(self) -> list[str]:
        """The tag names, each once: the order of the stored logits (``dataset.classes``)."""
        return self.tag_classes.names

    @property
    def has_logits(self) -> bool:
        return True

    @property
    def has_embeddings(self) -> bool:
        return True

    def embed_items(self, items: list[dict[str, Any]]) -> np.ndarray:
        """The tagger's image embeddings (see :meth:`~tag2text_zoo.Tagger.embed_tensors`)."""
        return self.tagger.embed_tensors(self._pixels(items)).numpy()

    def predict_items(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``{"tags": fo.Classifications, "caption": str}`` per item (no caption: tags only)."""
        default = self.config.specified_tags
        if isinstance(default, str):
            default = parse_tags(default)
        prompts = [it["prompt"] or default for it in items]
        caption = self.config.caption and self.tagger.can_caption
        specified = prompts if caption and any(p is not None for p in prompts) else None
        pixels = self._pixels(items)
        config = self.config
        logits_over = self.tag_classes if self.store_logits else None
        return [
            to_tag_labels(result, config.confidence_thresh, config.filter_classes, logits_over)
            for result in self.tagger.predict_tensors(pixels, specified, caption)
        ]

    def _pixels(self, items: list[dict[str, Any]]) -> torch.Tensor:
        """The items' uint8 images as one batch on the model's device (each copied there without
        waiting: a pinned image's copy overlaps the next)."""
        device = self.tagger.device
        return torch.stack([it["image"].to(device, non_blocking=True) for it in items])
