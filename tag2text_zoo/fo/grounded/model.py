"""Grounded segmentation as a FiftyOne ``Model``: tags -> Grounding DINO boxes -> SAM masks.

``dataset.apply_model(GroundedModel(segmenter, GroundedModelConfig(prompt_field="t2t_tags")),
"grounded")`` writes ``fo.Detections`` with box-cropped masks. The tags to ground come from a
sample field, a fixed class list, or a tagger run on the same images in the same pass. With
``semantic=True`` each sample's output is ``{"detections": ..., "semantic": fo.Segmentation}``;
pass ``label_field={"detections": "grounded", "semantic": "grounded_semantic"}`` to name both.
Masks go to PNG files (``mask_path``) with FiftyOne's own ``apply_model(..., output_dir=...)``.

Image embeddings come from the tagger, when one is given: Grounding DINO and SAM make features
for boxes and masks, not an image embedding trained for similarity (FiftyOne's own SAM zoo models
have none either).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...engines.grounded import GroundedSegmenter
from ...engines.tagger import Tagger
from ..base.mask_targets import MaskTargets
from ..base.model import ImageModel
from .labels import to_grounded_labels


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


def check_tag_source(config: GroundedModelConfig, tagger: object) -> None:
    """Raises ValueError when ``config`` names no tag source and there is no ``tagger``."""
    if not (config.prompt_field or config.classes or tagger):
        raise ValueError("grounded segmentation needs a prompt_field, classes or a tagger")


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
        check_tag_source(self.config, self.tagger)

    @property
    def device(self) -> torch.device:
        return self.segmenter.device

    @property
    def has_embeddings(self) -> bool:
        """True with a tagger: its image embeddings (see :meth:`TaggerModel.embed_items`)."""
        return self.tagger is not None

    def embed_items(self, items: list[dict[str, Any]]) -> np.ndarray:
        if self.tagger is None:
            raise ValueError(
                "a grounded model has image embeddings only with a tagger (tagger=...); Grounding "
                "DINO and SAM features describe boxes and masks, not whole images"
            )
        return self.tagger.embed_tensors(self._tagger_pixels([it["image"] for it in items])).numpy()

    def predict_items(self, items: list[dict[str, Any]]) -> list[Any]:
        """``fo.Detections`` per item, or ``{"detections", "semantic"}`` with ``semantic``."""
        self.check_source()
        images = [it["image"] for it in items]
        tags, indices = self._tags(images, [it["prompt"] for it in items])
        targets = self.targets if self.config.semantic else None
        results = self.segmenter.segment(images, tags, indices)
        return [to_grounded_labels(result, targets) for result in results]

    def _tags(self, images: list, prompts: list) -> tuple[list[list[str]], list | None]:
        if self.config.prompt_field:
            return [p or [] for p in prompts], None
        if self.config.classes:
            return [list(self.config.classes)] * len(images), None
        results = self.tagger.predict_tensors(self._tagger_pixels(images), None, False)
        return [r.tags for r in results], [r.tag_indices for r in results]

    def _tagger_pixels(self, images: list) -> torch.Tensor:
        return torch.stack([self.tagger.load_pixels(im, i) for i, im in enumerate(images)])
