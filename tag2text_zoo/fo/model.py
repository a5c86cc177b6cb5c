"""The tagger as a FiftyOne ``Model``: images decode in DataLoader workers, batches run on the GPU.

``dataset.apply_model(TaggerModel(tagger), label_field="t2t")`` writes ``t2t_tags``
(``fo.Classifications``) and ``t2t_caption`` (a string) on every sample.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import fiftyone.utils.torch as fout
import torch

from ..engines.preprocess import ImageLoadError, image_to_tensor, load_image
from ..engines.tagger import Tagger
from .batched_model import PROMPT_KEY, BatchedImageModel
from .labels import prompt_tags, to_classifications

logger = logging.getLogger(__name__)


@dataclass
class TaggerModelConfig:
    """What the adapter does with the engine's results (``apply_model`` sets the last two).

    Attributes:
        prompt_field: sample field with per-sample tags that steer the caption (a string such as
            ``"cloud,sky"``, a list of strings or ``fo.Classifications``); None: model tags.
        caption: also write ``{label_field}_caption`` (Tag2Text only).
        confidence_thresh: keep tags whose score is ``>=`` this.
        filter_classes: keep only these tag names.
        specified_tags: tags steering every caption (``"cloud,sky"`` or a list) where the
            sample has no prompt of its own.
    """

    prompt_field: str | None = None
    caption: bool = True
    confidence_thresh: float | None = None
    filter_classes: set[str] | None = None
    specified_tags: str | list[str] | None = None


class TaggerGetItem(fout.GetItem):
    """Loads and preprocesses one sample's image in a DataLoader worker (picklable, CPU only).

    Returns a dict: ``id``, ``pixels`` (``[3, S, S]`` float32, or None if unreadable),
    ``error`` (message naming the file, or None) and ``prompt`` (the sample's specified tags).
    """

    def __init__(
        self,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        exif_transpose: bool,
        field_mapping: dict[str, str] | None = None,
    ) -> None:
        self.has_prompt = bool(field_mapping and field_mapping.get(PROMPT_KEY))
        super().__init__(field_mapping=field_mapping)
        self.image_size, self.mean, self.std = image_size, tuple(mean), tuple(std)
        self.exif_transpose = exif_transpose

    @property
    def required_keys(self) -> list[str]:
        return ["filepath", "id", *([PROMPT_KEY] if self.has_prompt else [])]

    def __call__(self, d: dict[str, Any]) -> dict[str, Any]:
        item: dict[str, Any] = {"id": d["id"], "pixels": None, "error": None, "prompt": None}
        try:
            if self.has_prompt:
                item["prompt"] = prompt_tags(d[PROMPT_KEY], d["id"], self.field_mapping[PROMPT_KEY])
            img = load_image(d["filepath"], exif_transpose=self.exif_transpose)
            item["pixels"] = image_to_tensor(img, self.image_size, self.mean, self.std)
        except (ImageLoadError, TypeError) as err:
            # One bad image must not cost its batch: FiftyOne would drop all of it.
            item["error"] = str(err)
        return item


def collate_items(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stacks the readable images of a batch; keeps per-item ids, prompts and errors in order."""
    pixels = [it["pixels"] for it in items if it["pixels"] is not None]
    return {
        "ids": [it["id"] for it in items],
        "prompts": [it["prompt"] for it in items],
        "errors": [it["error"] for it in items],
        "pixels": torch.stack(pixels) if pixels else None,
    }


class TaggerModel(BatchedImageModel):
    """FiftyOne adapter around a :class:`~tag2text_zoo.Tagger`.

    Unreadable images are logged by sample id, listed in :attr:`failures` and left unlabelled;
    the rest of their batch is still written.
    """

    def __init__(self, tagger: Tagger, config: TaggerModelConfig | None = None) -> None:
        self.tagger = tagger
        self.config = config or TaggerModelConfig()
        steered = self.config.prompt_field or self.config.specified_tags
        if self.config.caption and steered and not tagger.can_caption:
            raise ValueError(
                f"specified tags steer captions, but {tagger.config.model_type} does not caption"
            )
        self.failures: list[tuple[str, str]] = []

    collate_fn = staticmethod(collate_items)

    @property
    def device(self) -> torch.device:
        return self.tagger.device

    def build_get_item(self, field_mapping: dict[str, str] | None = None) -> TaggerGetItem:
        mapping = dict(field_mapping or {})
        if self.config.prompt_field and PROMPT_KEY not in mapping:
            mapping[PROMPT_KEY] = self.config.prompt_field
        cfg = self.tagger.config
        return TaggerGetItem(
            cfg.image_size, cfg.image_mean, cfg.image_std, self.tagger.exif_transpose, mapping
        )

    # -- inference --------------------------------------------------------------------------
    def predict(self, arg: Any) -> dict[str, Any] | None:
        return self.predict_all([arg])[0]

    def predict_all(self, args: Any) -> list[dict[str, Any] | None]:
        """A collated batch (DataLoader path), or images (paths, PIL, HWC arrays) otherwise."""
        if self._preprocess or not isinstance(args, dict):
            items = [self._load(arg, i) for i, arg in enumerate(args)]
            args = collate_items(items)
        out: list[dict[str, Any] | None] = [None] * len(args["ids"])
        for sample_id, error in zip(args["ids"], args["errors"], strict=True):
            if error is not None:
                logger.warning("Sample %s: %s (skipped)", sample_id, error)
                self.failures.append((sample_id, error))
        good = [i for i, e in enumerate(args["errors"]) if e is None]
        if not good:
            return out
        prompts = [args["prompts"][i] or self.config.specified_tags for i in good]
        caption = self.config.caption and self.tagger.can_caption
        specified = prompts if caption and any(p is not None for p in prompts) else None
        results = self.tagger.predict_tensors(args["pixels"], specified, caption)
        for i, result in zip(good, results, strict=True):
            labels: dict[str, Any] = {
                "tags": to_classifications(
                    result, self.config.confidence_thresh, self.config.filter_classes
                )
            }
            if result.caption is not None:
                labels["caption"] = result.caption
            out[i] = labels
        return out

    def _load(self, arg: Any, index: int) -> dict[str, Any]:
        item: dict[str, Any] = {"id": f"#{index}", "pixels": None, "error": None, "prompt": None}
        try:
            item["pixels"] = self.tagger.preprocess(arg, index)
        except ImageLoadError as err:
            item["error"] = str(err)
        return item
