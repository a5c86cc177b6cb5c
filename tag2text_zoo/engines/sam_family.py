"""The SAM families (SAM, SAM-HQ, SAM 2) behind one box-prompt interface.

Each adapter embeds a batch of images once, decodes all boxes of one image in one
mask-decoder call (one mask per box) and resizes the masks back to the image. The
family is read from the checkpoint's ``config.json`` ``model_type``, or from the keys of an
official checkpoint file (``sam_vit_h_4b8939.pth``, ``sam_hq_vit_h.pth``,
``sam2.1_hiera_large.pt``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from PIL import Image
from transformers import (
    AutoConfig,
    BatchFeature,
    PretrainedConfig,
    PreTrainedModel,
    ProcessorMixin,
    Sam2Model,
    Sam2Processor,
    SamHQModel,
    SamHQProcessor,
    SamImageProcessor,
    SamModel,
    SamProcessor,
)

from ..assets.official import official_checkpoint, trusted_official_sha256
from ..models.official_checkpoint import load_official_model

# segment-anything resizes uint8 images with PIL; transformers >= 5 names that backend "Pil".
_SAM_PIL_IMAGE_PROCESSOR = getattr(transformers, "SamImageProcessorPil", SamImageProcessor)
# transformers 4.5x has only the "Fast" (torchvision) SAM 2 image processor, 5 names it plainly.
_SAM2_IMAGE_PROCESSOR = (
    getattr(transformers, "Sam2ImageProcessor", None) or transformers.Sam2ImageProcessorFast
)


class SamAdapter:
    """SAM: one embedding tensor; boxes and masks in the longest-side-resized, padded frame.

    Args:
        model: the transformers model of the family.
        processor: its processor.
    """

    def __init__(self, model: PreTrainedModel, processor: ProcessorMixin) -> None:
        self.model = model
        self.processor = processor

    def preprocess(self, images: Sequence[Image.Image]) -> BatchFeature:
        """Pixel values and the sizes needed to map boxes and masks."""
        return self.processor.image_processor(list(images), return_tensors="pt")

    def embed(self, pixel_values: torch.Tensor) -> Any:
        """Image embeddings of a batch."""
        return self.model.get_image_embeddings(pixel_values)

    def image_inputs(self, embeddings: Any, row: int) -> dict[str, Any]:
        """The model keyword arguments carrying one image's embeddings."""
        return {"image_embeddings": embeddings[row : row + 1]}

    def box_scale(self, enc: BatchFeature, row: int) -> tuple[float, float]:
        """(x, y) factors from image pixels to the model's input frame."""
        original = enc["original_sizes"][row].tolist()
        resized = enc["reshaped_input_sizes"][row].tolist()
        return resized[1] / original[1], resized[0] / original[0]

    def decode(
        self, embeddings: Any, row: int, boxes: torch.Tensor, enc: BatchFeature
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-resolution mask logits [1, N, 1, h, w] and IoU predictions [N] of one image.

        Args:
            embeddings: what :meth:`embed` returned for the batch.
            row: the image's row in the batch.
            boxes: [N, 4] XYXY in image pixels.
            enc: what :meth:`preprocess` returned for the batch.
        """
        sx, sy = self.box_scale(enc, row)
        scale = torch.tensor([sx, sy, sx, sy], device=boxes.device)
        out = self.model(
            **self.image_inputs(embeddings, row),
            input_boxes=(boxes * scale)[None],
            multimask_output=False,
        )
        return out.pred_masks, out.iou_scores[0, :, 0]

    def masks(self, pred_masks: torch.Tensor, enc: BatchFeature, row: int) -> torch.Tensor:
        """[N, H, W] bool masks at the image's size from :meth:`decode`'s logits (float, CPU)."""
        original = enc["original_sizes"][row].tolist()
        resized = enc["reshaped_input_sizes"][row].tolist()
        return self.processor.post_process_masks(pred_masks, [original], [resized])[0][:, 0]


class SamHQAdapter(SamAdapter):
    """SAM-HQ: SAM's frames plus the encoder's early features, which its HQ token reads.

    The mask is SAM's plus the HQ token's (``hq_token_only=False``, the SAM-HQ default). The
    model's mask decoder is corrected to upscale its transformer's output
    (:func:`upscale_transformer_output`).
    """

    def __init__(self, model: PreTrainedModel, processor: ProcessorMixin) -> None:
        super().__init__(model, processor)
        upscale_transformer_output(model.mask_decoder)

    def image_inputs(self, embeddings: Any, row: int) -> dict[str, Any]:
        """The last and the intermediate embeddings of one image."""
        last, intermediate = embeddings
        return {
            "image_embeddings": last[row : row + 1],
            "intermediate_embeddings": [e[row : row + 1] for e in intermediate],
        }


class Sam2Adapter(SamAdapter):
    """SAM 2: a feature pyramid per image; images are resized to a square without padding."""

    def preprocess(self, images: Sequence[Image.Image]) -> BatchFeature:
        """As ``SAM2Transforms``: pixels scaled to [0, 1] before the resize, not rounded after."""
        floats = [
            torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1).float() / 255
            for im in images
        ]
        return self.processor.image_processor(floats, do_rescale=False, return_tensors="pt")

    def image_inputs(self, embeddings: Any, row: int) -> dict[str, Any]:
        """Every pyramid level of one image."""
        return {"image_embeddings": [e[row : row + 1] for e in embeddings]}

    def box_scale(self, enc: BatchFeature, row: int) -> tuple[float, float]:
        """(x, y) factors from image pixels to the square input of ``processor.target_size``."""
        height, width = enc["original_sizes"][row].tolist()
        target = self.processor.target_size
        return target / width, target / height

    def masks(self, pred_masks: torch.Tensor, enc: BatchFeature, row: int) -> torch.Tensor:
        """[N, H, W] bool masks at the image's size."""
        original = enc["original_sizes"][row].tolist()
        return self.processor.post_process_masks(pred_masks, [original])[0][:, 0]


def upscale_transformer_output(decoder: torch.nn.Module) -> None:
    """Makes a transformers ``SamHQMaskDecoder`` upscale its two-way transformer's output.

    transformers (4.52 to 5.x) discards the image embeddings its transformer returns and upscales
    the ones it passed in, read with H and W swapped (``image_embeddings.transpose(2, 3)``);
    segment-anything-hq upscales the transformer's output. The decoder reads the tensor it passed
    in again after the call, so the output is written into it, laid out so that the decoder's
    ``transpose(2, 3).reshape(...)`` yields the output. A decoder that used the output itself would
    not read the tensor again, so this cannot change it; applying it twice changes nothing more.
    """
    transformer = decoder.transformer
    if getattr(transformer, "_upscales_output", False):
        return
    run = transformer.forward

    def forward(*args: Any, image_embeddings: torch.Tensor, **kwargs: Any) -> Any:
        queries, keys = run(*args, image_embeddings=image_embeddings, **kwargs)
        rows, channels, height, width = image_embeddings.shape
        # keys: [batch, points, H * W, C] -> the [rows, C, H, W] map SAM-HQ upscales
        output = keys.transpose(-1, -2).reshape(rows, channels, height, width)
        with torch.no_grad():
            image_embeddings.copy_(output.reshape(rows, channels, width, height).transpose(2, 3))
        return queries, keys

    transformer.forward = forward
    transformer._upscales_output = True


Family = tuple[type[PreTrainedModel], type[ProcessorMixin], type[SamAdapter]]

# model_type -> (model class, processor class, adapter)
FAMILIES: dict[str, Family] = {
    "sam": (SamModel, SamProcessor, SamAdapter),
    "sam_hq": (SamHQModel, SamHQProcessor, SamHQAdapter),
    "sam2": (Sam2Model, Sam2Processor, Sam2Adapter),
}


def _family(model_type: str) -> Family:
    if model_type not in FAMILIES:
        raise ValueError(
            f"unsupported segmenter model_type {model_type!r}; supported: {', '.join(FAMILIES)}"
        )
    return FAMILIES[model_type]


def sam_adapter(model: PreTrainedModel, processor: ProcessorMixin) -> SamAdapter:
    """The adapter for a loaded model, chosen by its ``config.model_type``."""
    return _family(model.config.model_type)[2](model, processor)


def official_processor(config: PretrainedConfig) -> ProcessorMixin:
    """The processor of a converted official checkpoint: its input size, the official resizing."""
    size = config.prompt_encoder_config.image_size
    if config.model_type == "sam2":
        square = {"height": size, "width": size}
        low_res = {"height": size // 4, "width": size // 4}
        return Sam2Processor(image_processor=_SAM2_IMAGE_PROCESSOR(size=square, mask_size=low_res))
    image_processor = _SAM_PIL_IMAGE_PROCESSOR(
        size={"longest_edge": size}, pad_size={"height": size, "width": size}
    )
    return _family(config.model_type)[1](image_processor=image_processor)


def load_sam(
    name_or_path: str | Path, models_dir: str | Path | None = None, **layout: Any
) -> tuple[PreTrainedModel, ProcessorMixin]:
    """Loads a SAM-family model and processor.

    Args:
        name_or_path: a hub id or transformers folder (the family read from its config's
            ``model_type``); an official checkpoint file (the family read from its keys, the
            weights converted once and kept beside it); or a name of
            :data:`~tag2text_zoo.assets.official.OFFICIAL_CHECKPOINTS` (downloaded first).
        models_dir: where catalogue names are downloaded.
        **layout: for a SAM 2 file of no official layout: the Hiera fields its weights do not
            show (:func:`~tag2text_zoo.models.official_sam2.hiera_layout`).

    Raises:
        ValueError: the model type is not a supported SAM family (a ``CheckpointError`` for a
            file that is not a SAM, SAM-HQ or SAM 2 checkpoint).
    """
    path = official_checkpoint(name_or_path, models_dir)
    if path is not None:
        model = load_official_model(
            path, families=FAMILIES, trusted_sha256=trusted_official_sha256(), **layout
        )
        return model, official_processor(model.config)
    if layout:
        raise ValueError(f"layout fields {sorted(layout)} are for official SAM 2 files only")
    model_type = AutoConfig.from_pretrained(str(name_or_path)).model_type
    model_cls, processor_cls, _ = _family(model_type)
    return model_cls.from_pretrained(str(name_or_path)), processor_cls.from_pretrained(
        str(name_or_path)
    )
