"""Grounded segmentation as a FiftyOne ``Model``: tags -> Grounding DINO boxes -> SAM masks.

``dataset.apply_model(GroundedModel(segmenter, GroundedModelConfig(prompt_field="t2t_tags")),
"grounded")`` writes ``fo.Detections`` with box-cropped masks. The tags to ground come from a
sample field, a fixed class list, or a tagger run on the same images in the same pass. With
``semantic=True`` each sample's output is ``{"detections": ..., "semantic": fo.Segmentation}``;
pass ``label_field={"detections": "grounded", "semantic": "grounded_semantic"}`` to name both.
Masks go to PNG files (``mask_path``) with FiftyOne's own ``apply_model(..., output_dir=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ...engines.grounded import GroundedResult, GroundedSegmenter
from ...engines.tagger import Tagger
from ..base.mask_targets import MaskTargets
from ..base.model import ImageModel
from .labels import to_detections, to_segmentation


@dataclass
class GroundedModelConfig:
    """Where each image's tags come from, and what is written.

    Exactly one source of tags is used: ``prompt_field`` (a sample field of
    ``fo.Classifications``, a list of strings or a comma-separated string), else ``classes``
    (the same list for every image), else the ``tagger`` given to :class:`GroundedModel`.

    Attributes:
        prompt_field: sample field holding each image's tags.
        classes: a fixed list of classes to ground in every image.
        semantic: also output a semantic ``fo.Segmentation`` (see :attr:`GroundedModel.targets`).
        exif_transpose: apply EXIF orientation when loading images.
    """

    prompt_field: str | None = None
    classes: list[str] | None = None
    semantic: bool = False
    exif_transpose: bool = True


class GroundedModel(ImageModel):
    """FiftyOne adapter around a :class:`~tag2text_zoo.engines.grounded.GroundedSegmenter`.

    Args:
        segmenter: the Grounding DINO + SAM engine.
        config: tag source and outputs.
        tagger: tags the images in the same pass when neither a prompt field nor classes are set.

    Unreadable images or bad prompt values are logged by sample id, listed in :attr:`failures`
    and left unlabelled; the rest of their batch is still written. Semantic masks take their
    pixel values from :attr:`targets` (fixed classes first), which grows as tags appear.
    """

    def __init__(
        self,
        segmenter: GroundedSegmenter,
        config: GroundedModelConfig | None = None,
        tagger: Tagger | None = None,
    ) -> None:
        super().__init__()
        self.segmenter = segmenter
        self.config = config or GroundedModelConfig()
        self.tagger = tagger
        self.use_mask_targets(MaskTargets())

    def use_mask_targets(self, targets: MaskTargets) -> None:
        """Continues the semantic masks' class map from ``targets``, fixed classes first."""
        super().use_mask_targets(targets)
        for name in self.config.classes or []:
            targets.id(name)

    def check_source(self) -> None:
        """Raises ValueError when no tag source is configured."""
        if not (self.config.prompt_field or self.config.classes or self.tagger):
            raise ValueError("grounded segmentation needs a prompt_field, classes or a tagger")

    @property
    def device(self) -> torch.device:
        return self.segmenter.device

    def predict_items(self, items: list[dict[str, Any]]) -> list[Any]:
        """``fo.Detections`` per item, or ``{"detections", "semantic"}`` with ``semantic``."""
        self.check_source()
        images = [it["image"] for it in items]
        tags, indices = self._tags(images, [it["prompt"] for it in items])
        return [self._labels(r) for r in self.segmenter.segment(images, tags, indices)]

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
        return {"detections": detections, "semantic": to_segmentation(result, self.targets)}
