"""TagAlign dense segmentation: per-pixel scores for any class texts over a frozen CLIP.

With a TagAlign projector the maps fuse the projector branch and the training-free CLIP-Surgery
branch (``(1 - clip_weight) * main + clip_weight * clip``); without one they are the CLIP branch
alone. Settings default to the reference's main-branch ``configs/eval.yml``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from transformers import CLIPModel, CLIPTokenizer

from ..defaults import CLIP
from ..models.tagalign import (
    TagAlignProjector,
    clip_branch,
    load_tagalign_projector,
    patch_grid,
    surgery_tokens,
)
from .dense_windows import normalise, resize_keep_ratio, sliding_windows
from .device import autocast, precast_for_autocast, resolve_precision
from .heap import keeping_freed_memory
from .onednn_linear import use_onednn_products
from .preprocess import ImageInput, load_image

# How TagAlign turns a class name into text, in evaluation and in training alike.
CLASS_TEMPLATE = "a photo of a {}."


@dataclass(frozen=True)
class DenseSettings:
    """Scoring and geometry of TagAlign inference.

    Attributes:
        score: ``"sigmoid"``: ``sigmoid(scale * cos + bias)`` per class; ``"softmax"``: softmax of
            ``scale * cos`` over the image's classes.
        clip_weight: weight of the CLIP branch in the fusion (ignored without a projector).
        bg_thresh: constant background score; a pixel is background unless a class beats it.
        template: class text template.
        crop, stride: sliding window size and step in resized-image pixels.
        short_side, long_side: keep-ratio resize limits.
    """

    score: Literal["sigmoid", "softmax"] = "sigmoid"
    scale: float = 10.0
    bias: float = -2.5
    clip_weight: float = 0.3
    bg_thresh: float = 0.4
    template: str = CLASS_TEMPLATE
    crop: int = 448
    stride: int = 224
    short_side: int = 448
    long_side: int = 2048


MAIN_SETTINGS = DenseSettings()
"""The reference main branch (``configs/eval.yml``)."""
VOC_SETTINGS = DenseSettings(
    score="softmax", scale=30.0, clip_weight=0.5, bg_thresh=0.45, stride=56
)
"""The reference dev branch's Pascal VOC (with background) test settings."""


@dataclass
class DenseResult:
    """Segmentation of one image.

    Attributes:
        classes: the class names; label ``i`` is ``classes[i - 1]``, 0 is background.
        scores: [K, H, W] float32 class scores at the image size (background is ``bg_thresh``).
        labels: [H, W] int64 label map.
        bg_thresh: the background score.
    """

    classes: list[str]
    scores: np.ndarray
    labels: np.ndarray
    bg_thresh: float


class DenseSegmenter:
    """TagAlign (or training-free CLIP-Surgery) segmentation over batches of images.

    Args:
        clip: a transformers ``CLIPModel`` (frozen; ViT-B/16 for TagAlign).
        tokenizer: its ``CLIPTokenizer``.
        projector: a TagAlign projector, or None for the training-free CLIP branch only.
        device: ``"cpu"``, ``"cuda"``, ...; default CUDA when available.
        dtype: ``"float32"``, or ``"bfloat16"``/``"float16"`` to run the networks under autocast;
            the image side's linear and convolution weights (CLIP's vision tower and projection,
            the projector) are then cast to it once, in place: the segmenter owns ``clip``.
        settings: scoring and window settings.
        batch_size: windows per forward pass.
    """

    def __init__(
        self,
        clip: CLIPModel,
        tokenizer: CLIPTokenizer,
        projector: TagAlignProjector | None = None,
        *,
        device: str | torch.device | None = None,
        dtype: str = "float32",
        settings: DenseSettings = MAIN_SETTINGS,
        batch_size: int = 8,
    ) -> None:
        precision = resolve_precision(device, dtype)
        self.device, self.autocast_dtype = precision.device, precision.autocast
        self.clip = clip.eval().requires_grad_(False).to(self.device)
        self.tokenizer = tokenizer
        self.projector = projector
        if projector is not None:
            projector.eval().requires_grad_(False).to(self.device)
        if self.autocast_dtype is not None:
            # Only what runs under autocast: the text tower also embeds outside it (search).
            for module in (self.clip.vision_model, self.clip.visual_projection, projector):
                if module is not None:
                    precast_for_autocast(module, self.autocast_dtype)
        for module in (self.clip, projector):  # float32 linear layers on the CPU
            if module is not None:
                use_onednn_products(module)
        self.settings = settings
        self.batch_size = batch_size
        self._text_cache: dict[str, torch.Tensor] = {}

    @torch.inference_mode()
    def encode_texts(self, names: Sequence[str]) -> torch.Tensor:
        """[K, E] float32 text embeddings (not normalised) of the templated class names."""
        todo = [n for n in dict.fromkeys(names) if n not in self._text_cache]
        if todo:
            texts = [self.settings.template.format(n) for n in todo]
            tokens = self.tokenizer(
                texts, padding=True, truncation=True, max_length=77, return_tensors="pt"
            ).to(self.device)
            with autocast(self.device, self.autocast_dtype):
                pooled = self.clip.text_model(**tokens).pooler_output
                embeds = self.clip.text_projection(pooled).float()
            self._text_cache.update(zip(todo, embeds))
        if not names:
            return torch.zeros(0, self.clip.config.projection_dim, device=self.device)
        return torch.stack([self._text_cache[n] for n in names])

    @torch.inference_mode()
    @keeping_freed_memory
    def crop_features(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Projector and CLIP-branch features (BxExhxw float32, not normalised) of crops.

        The first is None without a projector.
        """
        patch = self.clip.config.vision_config.patch_size
        height, width = (s // patch for s in pixel_values.shape[2:])
        with autocast(self.device, self.autocast_dtype):
            tokens = surgery_tokens(self.clip.vision_model, pixel_values.to(self.device))
            grid = patch_grid(tokens, height, width)
            clip_out = clip_branch(self.clip.vision_model, self.clip.visual_projection, grid)
            main = None if self.projector is None else self.projector(grid).float()
        return main, clip_out.float()

    def _score(self, features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        cos = torch.einsum("bchw,kc->bkhw", F.normalize(features, dim=1, eps=1e-6), text)
        s = self.settings
        if s.score == "sigmoid":
            return torch.sigmoid(s.scale * cos + s.bias)
        return torch.softmax(s.scale * cos, dim=1)

    def _fuse(
        self, main: torch.Tensor | None, clip_out: torch.Tensor, text_embeds: torch.Tensor
    ) -> torch.Tensor:
        text = F.normalize(text_embeds.float(), dim=-1, eps=1e-6)
        fused = self._score(clip_out, text)
        if main is not None:
            w = self.settings.clip_weight
            fused = (1 - w) * self._score(main, text) + w * fused
        return fused

    @torch.inference_mode()
    @keeping_freed_memory
    def crop_maps(self, pixel_values: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """Fused class maps BxKxhxw (patch resolution) of crops sharing one class list."""
        main, clip_out = self.crop_features(pixel_values)
        return self._fuse(main, clip_out, text_embeds.to(self.device))

    @torch.inference_mode()
    @keeping_freed_memory
    def predict(
        self,
        images: Sequence[ImageInput],
        classes: Sequence[str] | Sequence[Sequence[str]],
        exif_transpose: bool = True,
    ) -> list[DenseResult]:
        """Segments images into their classes (duplicates dropped, order kept).

        Args:
            images: paths, PIL images or arrays.
            classes: one class list for all images, or one list per image (e.g. its tags).
            exif_transpose: apply EXIF orientation (the reference does not; PNGs have none).

        Raises:
            ImageLoadError: an image cannot be read (named).
            ValueError: the number of class lists differs from the number of images.
        """
        if classes and all(isinstance(c, str) for c in classes):
            classes = [classes] * len(images)
        if len(classes) != len(images):
            raise ValueError(f"{len(classes)} class lists for {len(images)} images")
        names = [list(dict.fromkeys(c)) for c in classes]
        rgbs = [np.asarray(load_image(im, exif_transpose, i)) for i, im in enumerate(images)]
        return self._segment(rgbs, names)

    def _segment(self, rgbs: list[np.ndarray], names: list[list[str]]) -> list[DenseResult]:
        s = self.settings
        resized = [resize_keep_ratio(rgb, s.short_side, s.long_side) for rgb in rgbs]
        texts = [self.encode_texts(n) for n in names]
        sums = [
            torch.zeros(len(n), *r.shape[:2], device=self.device) for n, r in zip(names, resized)
        ]
        counts = [torch.zeros(r.shape[:2], device=self.device) for r in resized]
        # windows of the same shape run together, each scored against its own image's classes
        groups: dict[tuple, list[tuple[int, tuple[int, ...]]]] = {}
        for i, r in enumerate(resized):
            if not names[i]:
                continue
            for box in sliding_windows(*r.shape[:2], s.crop, s.stride):
                groups.setdefault((box[1] - box[0], box[3] - box[2]), []).append((i, box))
        pixels = [normalise(r) for r in resized]
        for group in groups.values():
            for start in range(0, len(group), self.batch_size):
                chunk = group[start : start + self.batch_size]
                batch = torch.stack([pixels[i][:, y1:y2, x1:x2] for i, (y1, y2, x1, x2) in chunk])
                maps = self._chunk_maps(batch, [i for i, _ in chunk], texts)
                for (i, (y1, y2, x1, x2)), crop in zip(chunk, maps):
                    up = F.interpolate(
                        crop[None], size=(y2 - y1, x2 - x1), mode="bilinear", align_corners=False
                    )[0]
                    sums[i][:, y1:y2, x1:x2] += up
                    counts[i][y1:y2, x1:x2] += 1
        return [
            self._finish(sums[i], counts[i], rgbs[i].shape[:2], names[i]) for i in range(len(rgbs))
        ]

    def _chunk_maps(
        self, batch: torch.Tensor, owners: list[int], texts: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """Class maps of a batch of windows, each scored against its own image's classes."""
        main, clip_out = self.crop_features(batch)
        return [
            self._fuse(None if main is None else main[b : b + 1], clip_out[b : b + 1], texts[i])[0]
            for b, i in enumerate(owners)
        ]

    def _finish(
        self, total: torch.Tensor, count: torch.Tensor, size: tuple[int, int], names: list[str]
    ) -> DenseResult:
        bg = self.settings.bg_thresh
        if not names:
            empty = torch.zeros(0, *size)
            return DenseResult(names, empty.numpy(), np.zeros(size, np.int64), bg)
        scores = total / count.clamp(min=1)
        scores = F.interpolate(scores[None], size=size, mode="bilinear", align_corners=False)[0]
        # argmax over [background, *scores], first index on ties (argmax over dim 0 of the
        # stacked maps is an order of magnitude slower on the CPU: a strided reduction)
        best, index = scores.max(0)
        labels = torch.where(best > bg, index + 1, 0)
        return DenseResult(names, scores.cpu().numpy(), labels.cpu().numpy(), bg)


def load_dense_segmenter(
    clip: str = CLIP,
    projector: str | None = None,
    device: str | torch.device | None = None,
    dtype: str = "float32",
    **options,
) -> DenseSegmenter:
    """Loads the frozen CLIP (hub id or folder) and, optionally, a TagAlign checkpoint's projector.

    Args:
        clip: a transformers CLIP model id or directory (with its tokenizer files).
        projector: a TagAlign checkpoint (``.pth``), or None for the training-free mode.
        device, dtype: see :class:`DenseSegmenter`.
        **options: ``settings``, ``batch_size``.
    """
    resolve_precision(device, dtype)  # refuse bad values before loading
    model = CLIPModel.from_pretrained(clip)
    tokenizer = CLIPTokenizer.from_pretrained(clip)
    head = None if projector is None else load_tagalign_projector(projector)
    return DenseSegmenter(model, tokenizer, head, device=device, dtype=dtype, **options)
