"""The FiftyOne ``Model`` contract shared by the three adapters, and their failure bookkeeping.

Images load in DataLoader workers (:class:`~.items.ImageGetItem`), a batch stays a list of items,
and :meth:`ImageModel.predict_all` skips the items that failed to load, records them in
:attr:`ImageModel.failures`, and hands the rest to the subclass's :meth:`ImageModel.predict_items`.
Adapters with image embeddings (``compute_embeddings``, FiftyOne Brain's visualisation and
similarity) implement :meth:`ImageModel.embed_items` and say so in ``has_embeddings``.
"""

from __future__ import annotations

import logging
from typing import Any

import fiftyone.core.models as fom
import numpy as np
import torch

from ...engines.preprocess import ImageLoadError
from .items import PROMPT_KEY, ImageGetItem, Transform, collate_items, load_items
from .mask_targets import MaskTargets
from .report import Failure

logger = logging.getLogger(__name__)


class ImageModel(fom.Model, fom.SupportsGetItem, fom.TorchModelMixin, fom.EmbeddingsMixin):
    """Base of the adapters.

    Subclasses set :attr:`config` (with ``prompt_field`` and ``exif_transpose``) and implement
    :attr:`device` and :meth:`predict_items`; :attr:`transform` preprocesses each image in the
    loading worker, and adapters that write semantic masks take their pixel values from
    :attr:`targets`.
    """

    config: Any
    transform: Transform | None = None
    targets: MaskTargets | None = None
    _preprocess = True

    def __init__(self) -> None:
        self.failures: list[Failure] = []

    @property
    def device(self) -> torch.device:
        raise NotImplementedError

    def predict_items(self, items: list[dict[str, Any]]) -> list[Any]:
        """Labels for loaded items (none of them failed), one per item."""
        raise NotImplementedError

    def embed_items(self, items: list[dict[str, Any]]) -> np.ndarray:
        """``[N, D]`` image embeddings of loaded items (none of them failed)."""
        raise NotImplementedError

    # -- inference --------------------------------------------------------------------------
    def predict(self, arg: Any) -> Any:
        return self.predict_all([arg])[0]

    def predict_all(self, args: Any) -> list[Any]:
        """Labels per item of a DataLoader batch, or per image given directly; None where the
        sample failed (logged and listed in :attr:`failures`)."""
        items = self._items(args)
        out: list[Any] = [None] * len(items)
        good = []
        for i, item in enumerate(items):
            if item["error"] is None:
                good.append(i)
            else:
                self.record_failure(item, item["error"])
        if good:
            labels = self.predict_items([items[i] for i in good])
            for i, label in zip(good, labels, strict=True):
                out[i] = label
        return out

    def embed(self, arg: Any) -> np.ndarray:
        return self.embed_all([arg])[0]

    def embed_all(self, args: Any) -> np.ndarray:
        """``[N, D]`` embeddings of a DataLoader batch or of images given directly.

        Raises:
            ImageLoadError: an image could not be loaded (each is named and recorded in
                :attr:`failures`); FiftyOne's ``skip_failures`` then leaves the batch without
                embeddings, as it does for any batch that fails.
        """
        items = self._items(args)
        bad = [item for item in items if item["error"] is not None]
        for item in bad:
            self.record_failure(item, item["error"])
        if bad:
            raise ImageLoadError("; ".join(f"sample {it['id']}: {it['error']}" for it in bad))
        return self.embed_items(items)

    def _items(self, args: Any) -> list[dict[str, Any]]:
        """A DataLoader batch as it is, or images given directly loaded into items."""
        return args if _are_items(args) else load_items(args, self.exif_transpose, self.transform)

    def use_mask_targets(self, targets: MaskTargets) -> None:
        """Continues the masks' class map from ``targets`` (a field's existing map)."""
        self.targets = targets

    @property
    def mask_targets(self) -> dict[int, str]:
        """Pixel value -> class of the masks written so far (0 is background)."""
        return dict(self.targets.targets) if self.targets else {}

    def record_failure(self, item: dict[str, Any], reason: str) -> None:
        """Logs a sample that could not be labelled and adds it to :attr:`failures`."""
        logger.warning("Sample %s: %s (skipped)", item["id"], reason)
        self.failures.append(Failure(item["id"], item.get("filepath"), reason))

    # -- loading ----------------------------------------------------------------------------
    @property
    def exif_transpose(self) -> bool:
        return self.config.exif_transpose

    def build_get_item(self, field_mapping: dict[str, str] | None = None) -> ImageGetItem:
        mapping = dict(field_mapping or {})
        if self.config.prompt_field and PROMPT_KEY not in mapping:
            mapping[PROMPT_KEY] = self.config.prompt_field
        return ImageGetItem(self.exif_transpose, self.transform, mapping)

    collate_fn = staticmethod(collate_items)

    # -- FiftyOne's model contract ----------------------------------------------------------
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


def _are_items(args: Any) -> bool:
    return bool(args) and isinstance(args[0], dict) and "error" in args[0]
