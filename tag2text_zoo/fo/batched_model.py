"""FiftyOne's model contract shared by the adapters: images decode in DataLoader workers, a
module-level collate batches them, and the engine runs on its device."""

from __future__ import annotations

import fiftyone.core.models as fom
import torch


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
