"""Grounded segmentation as a FiftyOne ``Model``: tags -> Grounding DINO boxes -> SAM masks.

``dataset.apply_model(GroundedModel(segmenter, GroundedModelConfig(prompt_field="t2t_tags")),
"grounded")`` writes ``fo.Detections`` with box-cropped masks. The tags to ground come from a
sample field, a fixed class list, or a tagger run on the same images in the same pass. With
``semantic=True`` each sample's output is ``{"detections": ..., "semantic": fo.Segmentation}``;
pass ``label_field={"detections": "grounded", "semantic": "grounded_semantic"}`` to name both.
Masks go to PNG files (``mask_path``) with FiftyOne's own ``apply_model(..., output_dir=...)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from ..engines.grounded import GroundedResult, GroundedSegmenter
from ..engines.tagger import Tagger
from .batched_model import (
    PROMPT_KEY,
    BatchedImageModel,
    ImageTagsGetItem,
    collate_items,
    load_items,
)
from .detections import to_detections, to_segmentation

logger = logging.getLogger(__name__)


@dataclass
class GroundedModelConfig:
    """Where each image's tags come from, and what is written.

    Exactly one source of tags is used: ``prompt_field`` (a sample field of
    ``fo.Classifications``, a list of strings or a comma-separated string), else ``classes``
    (the same list for every image), else the ``tagger`` given to :class:`GroundedModel`.

    Attributes:
        prompt_field: sample field holding each image's tags.
        classes: a fixed list of classes to ground in every image.
        semantic: also output a semantic ``fo.Segmentation`` (see :attr:`GroundedModel.classes`).
        exif_transpose: apply EXIF orientation when loading images.
    """

    prompt_field: str | None = None
    classes: list[str] | None = None
    semantic: bool = False
    exif_transpose: bool = True


class GroundedModel(BatchedImageModel):
    """FiftyOne adapter around a :class:`~tag2text_zoo.engines.grounded.GroundedSegmenter`.

    Args:
        segmenter: the Grounding DINO + SAM engine.
        config: tag source and outputs.
        tagger: tags the images in the same pass when neither a prompt field nor classes are set.

    Unreadable images or bad prompt values are logged by sample id, listed in :attr:`failures`
    and left unlabelled; the rest of their batch is still written.
    """

    def __init__(
        self,
        segmenter: GroundedSegmenter,
        config: GroundedModelConfig | None = None,
        tagger: Tagger | None = None,
    ) -> None:
        self.segmenter = segmenter
        self.config = config or GroundedModelConfig()
        self.tagger = tagger
        self.classes: list[str] = list(self.config.classes or [])
        self.failures: list[tuple[str, str]] = []

    def check_source(self) -> None:
        """Raises ValueError when no tag source is configured."""
        if not (self.config.prompt_field or self.config.classes or self.tagger):
            raise ValueError("grounded segmentation needs a prompt_field, classes or a tagger")

    @property
    def mask_targets(self) -> dict[int, str]:
        """Pixel value -> class of the semantic masks written so far (0 is background)."""
        return {k + 1: c for k, c in enumerate(self.classes)}

    collate_fn = staticmethod(collate_items)

    @property
    def device(self) -> torch.device:
        return self.segmenter.device

    def build_get_item(self, field_mapping: dict[str, str] | None = None) -> ImageTagsGetItem:
        mapping = dict(field_mapping or {})
        if self.config.prompt_field and PROMPT_KEY not in mapping:
            mapping[PROMPT_KEY] = self.config.prompt_field
        return ImageTagsGetItem(self.config.exif_transpose, mapping)

    # -- inference --------------------------------------------------------------------------
    def predict(self, arg: Any) -> Any:
        return self.predict_all([arg])[0]

    def predict_all(self, args: Any) -> list[Any]:
        """Items from :class:`ImageTagsGetItem` (DataLoader path), or images otherwise."""
        self.check_source()
        items = (
            args
            if args and isinstance(args[0], dict)
            else load_items(args, self.config.exif_transpose)
        )
        out: list[Any] = [None] * len(items)
        for item in items:
            if item["error"] is not None:
                logger.warning("Sample %s: %s (skipped)", item["id"], item["error"])
                self.failures.append((item["id"], item["error"]))
        good = [i for i, it in enumerate(items) if it["error"] is None]
        if not good:
            return out
        images = [items[i]["image"] for i in good]
        tags, indices = self._tags(images, [items[i]["prompt"] for i in good])
        results = self.segmenter.segment(images, tags, indices)
        for i, result in zip(good, results, strict=True):
            out[i] = self._labels(result)
        return out

    def _tags(self, images: list, prompts: list) -> tuple[list[list[str]], list | None]:
        if self.config.prompt_field:
            return [p or [] for p in prompts], None
        if self.config.classes:
            return [list(self.config.classes)] * len(images), None
        pixels = [self.tagger.preprocess(im, i) for i, im in enumerate(images)]
        results = self.tagger.predict_tensors(torch.stack(pixels), None, False)
        return [r.tags for r in results], [r.tag_indices for r in results]

    def _labels(self, result: GroundedResult) -> Any:
        detections = to_detections(result, result.image_size)
        if not self.config.semantic:
            return detections
        self.classes.extend(dict.fromkeys(c for c in result.labels if c not in self.classes))
        return {"detections": detections, "semantic": to_segmentation(result, self.classes)}
