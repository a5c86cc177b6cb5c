"""Images and texts in one embedding space, for text-to-image search: CLIP, or TagAlign's CLIP.

- Without a projector, CLIP's own embeddings: the image's class token through ``post_layernorm``
  and ``visual_projection`` (CLIP's preprocessing: shortest side to the model's image size,
  bicubic, centre crop, CLIP mean/std) and the text's end-of-text token through
  ``text_projection``.
- With a TagAlign projector, the image embedding that TagAlign's contrastive loss aligns with
  caption embeddings (:mod:`.tagalign_train`): the projector's dense embeddings over the
  CLIP-Surgery tokens, averaged over the image, from ImageNet-normalised pixels as in training.
  Texts are embedded by the same frozen CLIP text encoder.

Texts are embedded as given (no template), like TagAlign's captions; all embeddings are
L2-normalised, so a dot product is the cosine similarity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import v2
from transformers import CLIPModel, CLIPTokenizer

from ..models.tagalign import TagAlignProjector, patch_grid, surgery_tokens
from .dense import DenseSegmenter
from .device import autocast
from .tagalign_train import embed_texts

# OpenAI CLIP's normalisation (transformers' OPENAI_CLIP_MEAN / STD), and ImageNet's (TagAlign).
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class SearchEmbedder:
    """Embeds images and texts for search; see the module docstring for what is used.

    Args:
        clip: a transformers ``CLIPModel`` (frozen).
        tokenizer: its tokenizer.
        projector: a TagAlign projector, or None for plain CLIP.
        device: where the models are.
        autocast_dtype: None, or the dtype the networks run in under autocast.
    """

    def __init__(
        self,
        clip: CLIPModel,
        tokenizer: CLIPTokenizer,
        projector: TagAlignProjector | None = None,
        *,
        device: torch.device,
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        self.clip, self.tokenizer, self.projector = clip, tokenizer, projector
        self.device, self.autocast_dtype = device, autocast_dtype
        size = clip.config.vision_config.image_size
        mean, std = (CLIP_MEAN, CLIP_STD) if projector is None else (IMAGENET_MEAN, IMAGENET_STD)
        self.transform = v2.Compose(
            [
                v2.PILToTensor(),
                v2.Resize(size, interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
                v2.CenterCrop(size),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(mean, std),
            ]
        )
        """RGB PIL image -> ``[3, S, S]`` float32 (picklable, for DataLoader workers)."""

    @classmethod
    def from_dense(cls, segmenter: DenseSegmenter) -> SearchEmbedder:
        """The search embeddings of a TagAlign / CLIP-Surgery segmenter's models."""
        return cls(
            segmenter.clip,
            segmenter.tokenizer,
            segmenter.projector,
            device=segmenter.device,
            autocast_dtype=segmenter.autocast_dtype,
        )

    @property
    def aligned(self) -> bool:
        """Whether the TagAlign projector makes the image embeddings."""
        return self.projector is not None

    @torch.inference_mode()
    def embed_images(self, pixel_values: torch.Tensor) -> np.ndarray:
        """``[B, E]`` unit image embeddings of a batch from :attr:`transform`."""
        pixels = pixel_values.to(self.device)
        with autocast(self.device, self.autocast_dtype):
            if self.projector is None:
                pooled = self.clip.vision_model(pixel_values=pixels).pooler_output
                embeds = self.clip.visual_projection(pooled)
            else:
                patch = self.clip.config.vision_config.patch_size
                tokens = surgery_tokens(self.clip.vision_model, pixels)
                grid = patch_grid(tokens, *(s // patch for s in pixels.shape[2:]))
                embeds = self.projector(grid).float().mean((2, 3))
        return F.normalize(embeds.float(), dim=-1).cpu().numpy()

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """``[N, E]`` unit text embeddings of the texts, as given."""
        if isinstance(texts, str):
            raise ValueError("texts must be a list of strings, not one string")
        return embed_texts(self.clip, self.tokenizer, list(texts)).cpu().numpy()
