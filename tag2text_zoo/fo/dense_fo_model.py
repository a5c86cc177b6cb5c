"""TagAlign dense segmentation as a FiftyOne ``Model``: one ``fo.Segmentation`` per sample.

``dataset.apply_model(DenseModel(segmenter), label_field="seg", prompt_field="t2t_tags")``
segments each image into its own tags (a ``fo.Classifications`` field, a list of strings or a
comma-separated string) or into a fixed ``classes`` list. Pixel values come from one growing
:class:`~.dense_model.MaskTargets` map, so a class keeps its value across samples whose tag sets
differ; :func:`save_mask_targets` records that map as ``dataset.mask_targets[label_field]``
after the run, and :func:`segment_with_model` does the whole run in one call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import fiftyone as fo
import torch
from fiftyone.core.collections import SampleCollection

from ..engines.dense import DenseSegmenter
from .batched_model import (
    PROMPT_KEY,
    BatchedImageModel,
    ImageTagsGetItem,
    collate_items,
    load_items,
)
from .dense_model import MaskTargets
from .labels import check_prompt_field, record_mask_targets

logger = logging.getLogger(__name__)


@dataclass
class DenseModelConfig:
    """Where each image's class texts come from.

    Attributes:
        prompt_field: sample field with each image's classes (``fo.Classifications``, a list of
            strings or a comma-separated string); ``apply_model(..., prompt_field=...)`` also
            sets it.
        classes: one fixed class list for every image, used where no prompt field is given.
        mask_targets: the field's existing ``{value: class}`` map, so that values already
            written keep their meaning.
        exif_transpose: apply EXIF orientation when loading images.
    """

    prompt_field: str | None = None
    classes: list[str] | None = None
    mask_targets: dict[int, str] | None = None
    exif_transpose: bool = True


class DenseModel(BatchedImageModel):
    """FiftyOne adapter around a :class:`~tag2text_zoo.engines.dense.DenseSegmenter`.

    Args:
        segmenter: the TagAlign / CLIP-Surgery engine.
        config: class source and starting mask targets.

    Unreadable images or bad prompt values are logged by sample id, listed in :attr:`failures`
    and left unlabelled; the rest of their batch is still written.
    """

    def __init__(self, segmenter: DenseSegmenter, config: DenseModelConfig | None = None) -> None:
        self.segmenter = segmenter
        self.config = config or DenseModelConfig()
        self.targets = MaskTargets(self.config.mask_targets)
        self.failures: list[tuple[str, str]] = []

    @property
    def mask_targets(self) -> dict[int, str]:
        """Pixel value -> class of the masks written so far (0 is background)."""
        return dict(self.targets.targets)

    collate_fn = staticmethod(collate_items)

    @property
    def device(self) -> torch.device:
        return self.segmenter.device

    def build_get_item(self, field_mapping: dict[str, str] | None = None) -> ImageTagsGetItem:
        mapping = dict(field_mapping or {})
        if self.config.prompt_field and PROMPT_KEY not in mapping:
            mapping[PROMPT_KEY] = self.config.prompt_field
        if not (mapping.get(PROMPT_KEY) or self.config.classes):
            raise ValueError("dense segmentation needs a prompt_field or classes")
        return ImageTagsGetItem(self.config.exif_transpose, mapping)

    # -- inference --------------------------------------------------------------------------
    def predict(self, arg: Any) -> fo.Segmentation | None:
        return self.predict_all([arg])[0]

    def predict_all(self, args: Any) -> list[fo.Segmentation | None]:
        """Items from :class:`ImageTagsGetItem` (DataLoader path), or images with ``classes``."""
        items = (
            args
            if args and isinstance(args[0], dict)
            else load_items(args, self.config.exif_transpose)
        )
        out: list[fo.Segmentation | None] = [None] * len(items)
        for item in items:
            if item["error"] is not None:
                logger.warning("Sample %s: %s (skipped)", item["id"], item["error"])
                self.failures.append((item["id"], item["error"]))
        good = [i for i, it in enumerate(items) if it["error"] is None]
        if not good:
            return out
        names = [self._classes(items[i]) for i in good]
        images = [items[i]["image"] for i in good]
        results = self.segmenter.predict(images, names, exif_transpose=False)
        for i, result in zip(good, results, strict=True):
            out[i] = fo.Segmentation(mask=self.targets.mask(result))
        return out

    def _classes(self, item: dict[str, Any]) -> list[str]:
        if item["prompt"] is not None:
            return item["prompt"]
        if self.config.classes is None:
            raise ValueError(f"sample {item['id']}: no prompt field and no fixed classes")
        return list(self.config.classes)


def save_mask_targets(dataset: fo.Dataset, field: str, model: DenseModel) -> dict[int, str]:
    """Records the model's map as ``dataset.mask_targets[field]`` (see
    :func:`~.labels.record_mask_targets`; start the model from the field's targets with
    ``DenseModelConfig(mask_targets=...)``)."""
    return record_mask_targets(dataset, field, model.mask_targets)


def segment_with_model(
    samples: SampleCollection,
    model: DenseModel,
    label_field: str,
    prompt_field: str | None = None,
    **apply_kwargs: Any,
) -> dict[int, str]:
    """``apply_model`` keeping the field's existing mask targets, then saving the map.

    Args:
        samples: a dataset or view.
        model: the adapter (its map is extended from the field's existing targets).
        label_field: the ``fo.Segmentation`` field.
        prompt_field: the classes field (its type is checked before any work); else the model's.
        **apply_kwargs: ``batch_size``, ``num_workers``, ``progress``, ...

    Returns:
        The field's mask targets.

    Raises:
        ValueError: the prompt field is missing or of the wrong type, or the targets conflict.
    """
    dataset = samples._dataset
    field = prompt_field or model.config.prompt_field
    if field:
        check_prompt_field(samples, field)
        apply_kwargs[PROMPT_KEY] = field
    model.targets = MaskTargets(record_mask_targets(dataset, label_field, model.mask_targets))
    samples.apply_model(model, label_field, **apply_kwargs)
    return save_mask_targets(dataset, label_field, model)
