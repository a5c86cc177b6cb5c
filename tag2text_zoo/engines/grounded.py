"""Grounded segmentation: each image's tags -> Grounding DINO boxes -> SAM masks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import (
    GroundingDinoForObjectDetection,
    GroundingDinoProcessor,
    PreTrainedModel,
    ProcessorMixin,
)

from ..defaults import BOX_THRESHOLD, DETECTOR, NMS_IOU, SEGMENTER, TEXT_THRESHOLD
from .deformable_attention import use_gather_deformable_attention
from .device import autocast, images_per_pass, precast_for_autocast, resolve_precision
from .grounding_decode import Detections, decode_pass, merge_passes
from .grounding_dino import load_grounding_dino
from .grounding_prompts import PromptChunk, build_prompts, prepare_tags
from .heap import keeping_freed_memory
from .onednn_linear import use_onednn_products
from .preprocess import ImageInput, load_image
from .sam_family import load_sam, sam_adapter
from .transformers_feed_forwards import transformers_feed_forwards

# Most images per forward pass on the CPU (see GroundedSegmenter.images_per_pass).
_CPU_IMAGES_PER_PASS = 1


@dataclass
class GroundedResult:
    """Detections and masks of one image.

    Attributes:
        boxes: [N, 4] float32, XYXY in pixels.
        labels: the tag of each box.
        scores: [N] float32 box scores.
        iou_predictions: [N] float32, SAM's predicted mask IoU.
        masks: [N, H, W] bool, full-image masks.
    """

    boxes: np.ndarray
    labels: list[str]
    scores: np.ndarray
    iou_predictions: np.ndarray
    masks: np.ndarray

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) of the image."""
        return self.masks.shape[2], self.masks.shape[1]


class GroundedSegmenter:
    """Grounding DINO + SAM over batches of images, each with its own tags.

    Args:
        detector, detector_processor: a transformers Grounding DINO model and its processor.
        segmenter, segmenter_processor: a transformers SAM, SAM-HQ or SAM 2 model and its
            processor (see :mod:`.sam_family`).
        device: ``"cpu"``, ``"cuda"``, ...; default CUDA when available.
        dtype: ``"float32"``, or ``"bfloat16"``/``"float16"`` to run under autocast.
        box_threshold, text_threshold: Grounding DINO thresholds (demo defaults 0.25 / 0.2).
        nms_iou: IoU of the class-agnostic NMS over each image's boxes.
        separator: text between tags in the prompt (", " as the demos; ". " splits phrases).
        drop_attribute_tags: drop Tag2Text attribute/action tags (needs tag indices).
        batch_size: images (detector: image-prompt pairs) per forward pass; on the CPU one at
            a time (:attr:`images_per_pass`).
    """

    def __init__(
        self,
        detector: GroundingDinoForObjectDetection,
        detector_processor: GroundingDinoProcessor,
        segmenter: PreTrainedModel,
        segmenter_processor: ProcessorMixin,
        *,
        device: str | torch.device | None = None,
        dtype: str = "float32",
        box_threshold: float = BOX_THRESHOLD,
        text_threshold: float = TEXT_THRESHOLD,
        nms_iou: float = NMS_IOU,
        separator: str = ", ",
        drop_attribute_tags: bool = False,
        batch_size: int = 4,
    ) -> None:
        precision = resolve_precision(device, dtype)
        self.device, self.autocast_dtype = precision.device, precision.autocast
        self.detector = detector.to(self.device).eval()
        self.detector_processor = detector_processor
        self.segmenter = segmenter.to(self.device).eval()
        self.segmenter_processor = segmenter_processor
        for model in (self.detector, self.segmenter):  # both run only under autocast
            if self.autocast_dtype is not None:
                precast_for_autocast(model, self.autocast_dtype)
            use_onednn_products(model, transformers_feed_forwards())  # on the CPU
        if self.device.type == "cpu":  # measured there; grid_sample stays on other devices
            use_gather_deformable_attention(self.detector)
        self.sam = sam_adapter(self.segmenter, segmenter_processor)
        self.box_threshold = box_threshold
        self.text_threshold = text_threshold
        self.nms_iou = nms_iou
        self.separator = separator
        self.drop_attribute_tags = drop_attribute_tags
        self.batch_size = batch_size
        self.max_text_tokens = detector.config.max_text_len

    @property
    def images_per_pass(self) -> int:
        """Images (or image-prompt pairs) per forward pass: ``batch_size``, at most
        ``_CPU_IMAGES_PER_PASS`` on the CPU, where larger passes were slower per image (Grounding
        DINO-T and SAM ViT-B, 2 cores: batch 4 took 10-25% longer per image than batch 1)."""
        return images_per_pass(self.device, self.batch_size, _CPU_IMAGES_PER_PASS)

    def prompts(
        self, tags: Sequence[str], tag_indices: Sequence[int] | None = None
    ) -> list[PromptChunk]:
        """The detector prompts for one image's tags (several when over the token limit)."""
        tags = prepare_tags(tags, tag_indices, self.drop_attribute_tags)
        tokenizer = self.detector_processor.tokenizer
        return build_prompts(tags, tokenizer, self.separator, self.max_text_tokens)

    @torch.inference_mode()
    @keeping_freed_memory
    def segment(
        self,
        images: Sequence[ImageInput],
        tags_per_image: Sequence[Sequence[str]],
        tag_indices_per_image: Sequence[Sequence[int]] | None = None,
    ) -> list[GroundedResult]:
        """Finds each image's tags as boxes and segments every box.

        Args:
            images: paths, PIL images or arrays.
            tags_per_image: the tags to ground in each image.
            tag_indices_per_image: Tag2Text class index of each tag, for `drop_attribute_tags`.

        Returns:
            One result per image, boxes sorted by score.
        """
        if len(tags_per_image) != len(images):
            raise ValueError(f"{len(images)} images but {len(tags_per_image)} tag lists")
        indices = tag_indices_per_image or [None] * len(images)
        pils = [load_image(im, index=i) for i, im in enumerate(images)]
        prompts = [self.prompts(t, ix) for t, ix in zip(tags_per_image, indices, strict=True)]
        detections = self.detect(pils, prompts)
        return self.segment_boxes(pils, detections)

    @torch.inference_mode()
    @keeping_freed_memory
    def detect(
        self, images: Sequence[Image.Image], prompts: Sequence[Sequence[PromptChunk]]
    ) -> list[Detections]:
        """Runs Grounding DINO on every (image, prompt) pair and merges each image's boxes."""
        pairs = [(i, chunk) for i, chunks in enumerate(prompts) for chunk in chunks]
        # Batch only images of one size: padding to a common size changes the detector's output.
        pairs.sort(key=lambda p: images[p[0]].size)
        passes: list[list[Detections]] = [[] for _ in images]
        for batch in _same_size_batches(pairs, images, self.images_per_pass):
            batch_images = [images[i] for i, _ in batch]
            inputs = self.detector_processor(
                images=batch_images,
                text=[chunk.text for _, chunk in batch],
                return_tensors="pt",
                padding="longest",
            ).to(self.device)
            with autocast(self.device, self.autocast_dtype):
                out = self.detector(**inputs)
            for row, (i, chunk) in enumerate(batch):
                width, height = images[i].size
                passes[i].append(
                    decode_pass(
                        out.logits[row],
                        out.pred_boxes[row],
                        chunk.span_mask(out.logits.shape[-1]),
                        chunk.tags,
                        (height, width),
                        self.box_threshold,
                        self.text_threshold,
                    )
                )
        return [merge_passes(p, self.nms_iou) if p else Detections.empty() for p in passes]

    @torch.inference_mode()
    @keeping_freed_memory
    def segment_boxes(
        self, images: Sequence[Image.Image], detections: Sequence[Detections]
    ) -> list[GroundedResult]:
        """One SAM image embedding per image; all of its boxes in one mask-decoder call."""
        results: list[GroundedResult | None] = [None] * len(images)
        todo = [i for i, d in enumerate(detections) if len(d.tags)]
        for i, d in enumerate(detections):
            if not len(d.tags):
                width, height = images[i].size
                results[i] = _result(d, np.zeros((0, height, width), bool), np.zeros(0, np.float32))
        for start in range(0, len(todo), self.images_per_pass):
            batch = todo[start : start + self.images_per_pass]
            enc = self.sam.preprocess([images[i] for i in batch])
            with autocast(self.device, self.autocast_dtype):
                embeddings = self.sam.embed(enc["pixel_values"].to(self.device))
            for row, i in enumerate(batch):
                with autocast(self.device, self.autocast_dtype):
                    pred_masks, ious = self.sam.decode(embeddings, row, detections[i].boxes, enc)
                masks = self.sam.masks(pred_masks.float().cpu(), enc, row)
                results[i] = _result(detections[i], masks.numpy(), ious.float().cpu().numpy())
        return results  # type: ignore[return-value]


def _same_size_batches(pairs, images, batch_size):
    """Splits sorted (image index, prompt) pairs into batches of one image size."""
    batch: list = []
    for pair in pairs:
        if batch and (len(batch) == batch_size or images[batch[0][0]].size != images[pair[0]].size):
            yield batch
            batch = []
        batch.append(pair)
    if batch:
        yield batch


def _result(d: Detections, masks: np.ndarray, ious: np.ndarray) -> GroundedResult:
    return GroundedResult(
        boxes=d.boxes.float().cpu().numpy(),
        labels=list(d.tags),
        scores=d.scores.float().cpu().numpy(),
        iou_predictions=ious,
        masks=masks,
    )


def load_grounded_segmenter(
    detector: str | Path = DETECTOR,
    segmenter: str | Path = SEGMENTER,
    device: str | torch.device | None = None,
    dtype: str = "float32",
    *,
    models_dir: str | Path | None = None,
    **options,
) -> GroundedSegmenter:
    """Loads Grounding DINO and a SAM-family model.

    Each of ``detector`` and ``segmenter`` is a hub id or transformers folder, a path to an
    official checkpoint file (``groundingdino_swint_ogc.pth``, ``sam_vit_h_4b8939.pth``,
    ``sam_hq_vit_h.pth``, ``sam2.1_hiera_large.pt``, ...: converted on first load and kept
    beside it as ``.safetensors``), or a name of the official files' catalogue
    (``groundingdino-swint-ogc``, ``sam-vit-h``, ...: downloaded first).

    Args:
        detector: Grounding DINO.
        segmenter: SAM, SAM-HQ or SAM 2; the family comes from its config's ``model_type``
            (``sam``, ``sam_hq``, ``sam2``) or, for an official file, from its keys.
        device: target device; default CUDA when available.
        dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"`` (autocast).
        models_dir: where catalogue names are downloaded (default ``$TAG2TEXT_ZOO_HOME`` or
            ``~/.cache/tag2text_zoo``).
        **options: :class:`GroundedSegmenter` options (thresholds, ``nms_iou``, ``separator``,
            ``drop_attribute_tags``, ``batch_size``).
    """
    resolve_precision(device, dtype)  # refuse bad values before loading
    return GroundedSegmenter(
        *load_grounding_dino(detector, models_dir),
        *load_sam(segmenter, models_dir),
        device=device,
        dtype=dtype,
        **options,
    )
