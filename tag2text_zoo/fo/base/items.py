"""Loading one sample's inputs: the one load-or-skip of every adapter.

An *item* is a dict: ``id``, ``filepath``, ``image`` (RGB PIL image, or the adapter's transform of
it; None when unreadable), ``prompt`` (the sample's tags when a tags field is read, else None)
and ``error`` (why the sample cannot be used, or None). A bad sample becomes an item with an
error instead of an exception, so it never costs the rest of its batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import fiftyone.utils.torch as fout

from ...engines.preprocess import load_image
from .tags import read_tags

# The field_mapping key (and apply_model keyword) naming a sample field of per-sample tags.
PROMPT_KEY = "prompt_field"

Transform = Callable[[Any], Any]


def load_item(
    sample_id: str,
    image: Any,
    *,
    exif_transpose: bool,
    transform: Transform | None = None,
    prompt: object = None,
    prompt_field: str | None = None,
    index: int | None = None,
) -> dict[str, Any]:
    """Loads one image (and reads its tags when ``prompt_field`` is given) into an item.

    Args:
        sample_id: the sample's id.
        image: a file path, PIL image or array.
        exif_transpose: apply the EXIF orientation.
        transform: applied to the loaded RGB image (e.g. the tagger's resize and normalize).
        prompt: the sample's value of ``prompt_field``.
        prompt_field: the field ``prompt`` comes from; None: no tags are read.
        index: position among images given directly, to name them in errors.
    """
    path = os.fspath(image) if isinstance(image, (str, os.PathLike)) else None
    item: dict[str, Any] = {"id": sample_id, "filepath": path, "image": None, "prompt": None}
    item["error"] = None
    try:
        if prompt_field is not None:
            item["prompt"] = read_tags(prompt, sample_id, prompt_field)
        loaded = load_image(image, exif_transpose=exif_transpose, index=index)
        item["image"] = transform(loaded) if transform else loaded
    except ValueError as err:  # ImageLoadError or a bad tags value
        item["error"] = str(err)
    return item


def load_items(
    images: Iterable[Any], exif_transpose: bool, transform: Transform | None = None
) -> list[dict[str, Any]]:
    """Items for images given directly (paths, PIL images, arrays), named ``#0``, ``#1``, ..."""
    return [
        load_item(f"#{i}", image, exif_transpose=exif_transpose, transform=transform, index=i)
        for i, image in enumerate(images)
    ]


def collate_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Images differ in size: a batch stays a list of items."""
    return items


class ImageGetItem(fout.GetItem):
    """Loads one sample's item in a DataLoader worker (picklable, CPU only, no database).

    Args:
        exif_transpose: apply the EXIF orientation.
        transform: applied to each loaded image (must be picklable).
        field_mapping: ``{"prompt_field": <field>}`` when each sample brings its tags.
    """

    def __init__(
        self,
        exif_transpose: bool,
        transform: Transform | None = None,
        field_mapping: dict[str, str] | None = None,
    ) -> None:
        self.prompt_field = (field_mapping or {}).get(PROMPT_KEY) or None
        super().__init__(field_mapping=field_mapping)
        self.exif_transpose = exif_transpose
        self.transform = transform

    @property
    def required_keys(self) -> list[str]:
        return ["filepath", "id", *([PROMPT_KEY] if self.prompt_field else [])]

    def __call__(self, d: dict[str, Any]) -> dict[str, Any]:
        return load_item(
            d["id"],
            d["filepath"],
            exif_transpose=self.exif_transpose,
            transform=self.transform,
            prompt=d.get(PROMPT_KEY),
            prompt_field=self.prompt_field,
        )
