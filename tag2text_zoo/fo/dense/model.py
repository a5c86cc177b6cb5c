"""TagAlign dense segmentation as a FiftyOne ``Model``: one ``fo.Segmentation`` per sample.

``dataset.apply_model(DenseModel(segmenter), label_field="seg", prompt_field="t2t_tags")``
segments each image into its own tags (a ``fo.Classifications`` field, a list of strings or a
comma-separated string) or into a fixed ``classes`` list. Pixel values come from one growing
:class:`~..base.mask_targets.MaskTargets` map, so a class keeps its value across samples whose tag
sets differ; record it afterwards with
``record_mask_targets(dataset, "seg", model.mask_targets)`` (:func:`segment_dense` does both).

The same model embeds images and text prompts for search (``compute_similarity`` and
``sort_by_similarity("a dog catching a frisbee")``): CLIP's embeddings, or TagAlign's aligned
ones when a projector is loaded (:mod:`tag2text_zoo.engines.search`). Embedding needs no class
source.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import fiftyone as fo
import fiftyone.core.models as fom
import numpy as np
import torch

from ...engines.dense import DenseResult, DenseSegmenter
from ...engines.search import SearchEmbedder
from ..base.mask_targets import MaskTargets
from ..base.model import ImageModel

SEGMENTATION = "segmentation"


def heatmap_key(name: str) -> str:
    """The output key of one class's heatmap: ``"potted plant"`` -> ``"heatmap_potted_plant"``."""
    return f"heatmap_{re.sub(r'[^0-9a-zA-Z]+', '_', name).strip('_').lower()}"


def heatmap_field(label_field: str, name: str) -> str:
    """The field holding one class's score heatmap, e.g. ``tagalign_heatmap_potted_plant``."""
    return f"{label_field}_{heatmap_key(name)}"


def to_dense_labels(
    result: DenseResult, targets: MaskTargets, heatmaps: bool | Sequence[str] = False
) -> fo.Segmentation | dict[str, fo.Label]:
    """One image's labels: its Segmentation (pixel values from ``targets``, which grows), or
    with ``heatmaps`` ``{"segmentation": ..., "heatmap_<class>": fo.Heatmap, ...}`` for every
    class (True) or the listed ones."""
    lookup = np.array([0] + [targets.id(c) for c in result.classes], np.int64)
    segmentation = fo.Segmentation(mask=lookup[result.labels].astype(targets.dtype))
    if not heatmaps:
        return segmentation
    out: dict[str, Any] = {SEGMENTATION: segmentation}
    for k, name in enumerate(result.classes):
        if heatmaps is True or name in heatmaps:
            heat = fo.Heatmap(map=result.scores[k].astype(np.float32), range=[0.0, 1.0])
            out[heatmap_key(name)] = heat
    return out


@dataclass
class DenseModelConfig:
    """Where each image's class texts come from, and what is written.

    Attributes:
        prompt_field: sample field with each image's classes (``fo.Classifications``, a list of
            strings or a comma-separated string); ``apply_model(..., prompt_field=...)`` also
            sets it.
        classes: one fixed class list for every image, used where no prompt field is given.
        heatmaps: also output one ``fo.Heatmap`` per class (True), or per listed class; the
            output is then ``{"segmentation": ..., "heatmap_<class>": ...}``.
        exif_transpose: apply EXIF orientation when loading images.
    """

    prompt_field: str | None = None
    classes: list[str] | None = None
    heatmaps: bool | Sequence[str] = False
    exif_transpose: bool = True


class DenseModel(ImageModel, fom.PromptMixin):
    """FiftyOne adapter around a :class:`~tag2text_zoo.engines.dense.DenseSegmenter`.

    Args:
        segmenter: the TagAlign / CLIP-Surgery engine.
        config: class source and outputs.

    Unreadable images or bad prompt values are logged by sample id, listed in :attr:`failures`
    and left unlabelled; the rest of their batch is still written.
    """

    def __init__(self, segmenter: DenseSegmenter, config: DenseModelConfig | None = None) -> None:
        super().__init__()
        self.segmenter = segmenter
        self.config = config or DenseModelConfig()
        self.use_mask_targets(MaskTargets())

    @property
    def device(self) -> torch.device:
        return self.segmenter.device

    def predict_items(self, items: list[dict[str, Any]]) -> list[Any]:
        """Items from :class:`~..base.items.ImageGetItem`, or images with ``classes``."""
        if self.config.classes is None and any(item["prompt"] is None for item in items):
            raise ValueError("dense segmentation needs a prompt_field or classes")
        names = [self._classes(item) for item in items]
        images = [item["image"] for item in items]
        results = self.segmenter.predict(images, names, exif_transpose=False)
        return [to_dense_labels(r, self.targets, self.config.heatmaps) for r in results]

    def _classes(self, item: dict[str, Any]) -> list[str]:
        if item["prompt"] is not None:  # read from the prompt field
            return item["prompt"]
        return list(self.config.classes)

    # -- search -------------------------------------------------------------------------------
    @functools.cached_property
    def search(self) -> SearchEmbedder:
        """The image and text embeddings for search (same models as the segmenter)."""
        return SearchEmbedder.from_dense(self.segmenter)

    @property
    def has_embeddings(self) -> bool:
        return True

    @property
    def can_embed_prompts(self) -> bool:
        return True

    def embed_items(self, items: list[dict[str, Any]]) -> np.ndarray:
        """Search embeddings of loaded images (:meth:`SearchEmbedder.embed_images`)."""
        pixels = torch.stack([self.search.transform(item["image"]) for item in items])
        return self.search.embed_images(pixels)

    def embed_prompt(self, arg: str) -> np.ndarray:
        return self.embed_prompts([arg])[0]

    def embed_prompts(self, args: Sequence[str]) -> np.ndarray:
        """Search embeddings of text prompts (:meth:`SearchEmbedder.embed_texts`)."""
        return self.search.embed_texts(list(args))
