"""FiftyOne's model contract shared by the adapters: images decode in DataLoader workers, a
module-level collate batches them, and the engine runs on its device."""

from __future__ import annotations

from typing import Any

import fiftyone.core.models as fom
import fiftyone.utils.torch as fout
import torch

from ..engines.preprocess import ImageLoadError, load_image
from .labels import prompt_tags

# The field_mapping key (and apply_model keyword) naming a sample field of per-sample tags.
PROMPT_KEY = "prompt_field"


class ImageTagsGetItem(fout.GetItem):
    """Loads one sample's image and its tags in a DataLoader worker (picklable, CPU only).

    Returns a dict: ``id``, ``image`` (RGB PIL, or None if unreadable), ``error`` (message
    naming the file or field, or None) and ``prompt`` (the sample's tag list, or None).
    """

    def __init__(self, exif_transpose: bool, field_mapping: dict[str, str] | None = None) -> None:
        self.has_prompt = bool(field_mapping and field_mapping.get(PROMPT_KEY))
        super().__init__(field_mapping=field_mapping)
        self.exif_transpose = exif_transpose

    @property
    def required_keys(self) -> list[str]:
        return ["filepath", "id", *([PROMPT_KEY] if self.has_prompt else [])]

    def __call__(self, d: dict[str, Any]) -> dict[str, Any]:
        item: dict[str, Any] = {"id": d["id"], "image": None, "error": None, "prompt": None}
        try:
            if self.has_prompt:
                tags = prompt_tags(d[PROMPT_KEY], d["id"], self.field_mapping[PROMPT_KEY])
                if isinstance(tags, str):  # "cloud, sky"
                    tags = [t.strip() for t in tags.split(",") if t.strip()]
                item["prompt"] = tags or []
            item["image"] = load_image(d["filepath"], exif_transpose=self.exif_transpose)
        except (ImageLoadError, TypeError) as err:
            item["error"] = str(err)  # one bad sample must not cost its batch
        return item


def load_items(images: Any, exif_transpose: bool) -> list[dict[str, Any]]:
    """Items like :class:`ImageTagsGetItem`'s for images given directly (no prompts)."""
    items = []
    for i, image in enumerate(images):
        item: dict[str, Any] = {"id": f"#{i}", "image": None, "error": None, "prompt": None}
        try:
            item["image"] = load_image(image, exif_transpose, i)
        except ImageLoadError as err:
            item["error"] = str(err)
        items.append(item)
    return items


def collate_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Images differ in size: a batch stays a list of items."""
    return items


class BatchedImageModel(fom.Model, fom.SupportsGetItem, fom.TorchModelMixin):
    """Base of the adapters. Subclasses set ``collate_fn`` and :attr:`device`, and implement
    ``build_get_item`` and ``predict_all``."""

    _preprocess = True

    @property
    def device(self) -> torch.device:
        raise NotImplementedError

    @property
    def media_type(self) -> str:
        return "image"

    @property
    def has_logits(self) -> bool:
        return False

    @property
    def has_embeddings(self) -> bool:
        return False

    @property
    def ragged_batches(self) -> bool:
        return False

    @property
    def transforms(self) -> None:
        return None

    @property
    def preprocess(self) -> bool:
        return self._preprocess

    @preprocess.setter
    def preprocess(self, value: bool) -> None:
        self._preprocess = value

    @property
    def has_collate_fn(self) -> bool:
        return True

    @property
    def _using_gpu(self) -> bool:
        return self.device.type == "cuda"
