"""Open-set vocabularies: user tag names (and descriptions) embedded with a CLIP text encoder.

RAM and RAM++ score a class through its CLIP ViT-B/16 text embedding(s), so any list of names can
replace the built-in 4,585 tags: RAM uses the mean of prompt-template embeddings per name, RAM++
re-weights several descriptions per name for each image.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

logger = logging.getLogger(__name__)

CLIP_TEXT_ENCODER = "openai/clip-vit-base-patch16"

# Prompts that turn a bare name into sentences like those CLIP was trained on.
DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a close-up photo of a {}.",
    "a cropped photo of a {}.",
    "a photo of a small {}.",
    "a photo of a large {}.",
    "a bright photo of a {}.",
    "a dark photo of a {}.",
    "a photo of many {}.",
    "a blurry photo of a {}.",
)


@dataclass(frozen=True)
class OpenVocabulary:
    """User tags and their unit-length text embeddings.

    Attributes:
        names: the user's tag names, in order (class i = ``names[i]``).
        text_embeds: ``[C, K, D]`` one embedding per text of each name; padded rows are zero.
        mask: ``[C, K]`` True for real texts, False for padding.
    """

    names: tuple[str, ...]
    text_embeds: torch.Tensor
    mask: torch.Tensor

    def label_embeddings(self, descriptions: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The model input: ``([C, K, D], mask or None)`` for RAM++, ``([C, D], None)`` for RAM.

        RAM gets each name's mean text embedding, re-normalized (the reference's open-set recipe).
        """
        if descriptions:
            return self.text_embeds, None if bool(self.mask.all()) else self.mask
        weights = self.mask.to(self.text_embeds.dtype).unsqueeze(-1)
        mean = (self.text_embeds * weights).sum(1) / weights.sum(1)
        return F.normalize(mean, dim=-1), None


class VocabularyEncoder:
    """Embeds vocabularies with a CLIP text model; results are cached per vocabulary.

    Args:
        text_model: a ``transformers.CLIPTextModelWithProjection`` (or anything whose output has
            ``text_embeds``).
        tokenizer: the matching tokenizer (called with ``padding``/``truncation``).
        name: identifies the text model in cache keys.
        templates: prompts for names given without descriptions (``{}`` = the name).
        cache_dir: if set, embeddings are also stored there as ``<key>.safetensors``.
        batch_size: texts per forward pass.
    """

    def __init__(
        self,
        text_model: torch.nn.Module,
        tokenizer: Any,
        *,
        name: str,
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        cache_dir: str | Path | None = None,
        batch_size: int = 256,
    ) -> None:
        if not templates or any("{}" not in t for t in templates):
            raise ValueError("templates must be non-empty and each must contain '{}'")
        self.text_model = text_model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.templates = tuple(templates)
        self.cache_dir = None if cache_dir is None else Path(cache_dir).expanduser()
        self.batch_size = batch_size
        self._memory: dict[str, OpenVocabulary] = {}

    @classmethod
    def from_pretrained(
        cls,
        repo_id: str = CLIP_TEXT_ENCODER,
        *,
        device: str | torch.device = "cpu",
        **options: Any,
    ) -> VocabularyEncoder:
        """Downloads (once, via the Hugging Face hub) and wraps a CLIP text encoder."""
        from transformers import AutoTokenizer, CLIPTextModelWithProjection

        model = CLIPTextModelWithProjection.from_pretrained(repo_id).to(device)
        return cls(model, AutoTokenizer.from_pretrained(repo_id), name=repo_id, **options)

    def texts_for(
        self, names: Sequence[str], descriptions: Mapping[str, Sequence[str]] | None = None
    ) -> list[list[str]]:
        """The texts embedded for each name: its descriptions, else the templates filled in."""
        descriptions = descriptions or {}
        unknown = sorted(set(descriptions) - set(names))
        if unknown:
            raise ValueError(f"descriptions given for names not in the vocabulary: {unknown}")
        texts = []
        for name in names:
            given = [d for d in descriptions.get(name, ()) if d.strip()]
            texts.append(given or [t.format(name) for t in self.templates])
        return texts

    def encode(
        self, names: Sequence[str], descriptions: Mapping[str, Sequence[str]] | None = None
    ) -> OpenVocabulary:
        """Embeds a vocabulary (from the cache when this exact vocabulary was seen before).

        Args:
            names: user tag names, unique and non-empty.
            descriptions: optional ``name -> [description, ...]`` (RAM++'s LLM descriptions).
        """
        names = [n.strip() for n in names]
        if not names or not all(names):
            raise ValueError("a vocabulary needs at least one name and no empty names")
        if len(set(names)) != len(names):
            raise ValueError("vocabulary names must be unique")
        texts = self.texts_for(names, descriptions)
        key = hashlib.sha256(
            json.dumps({"encoder": self.name, "names": names, "texts": texts}).encode()
        ).hexdigest()[:32]
        if key in self._memory:
            return self._memory[key]
        vocabulary = self._load(key, names) or self._embed(names, texts)
        self._store(key, vocabulary)
        return vocabulary

    @torch.inference_mode()
    def _embed(self, names: list[str], texts: list[list[str]]) -> OpenVocabulary:
        flat = [t for group in texts for t in group]
        device = next(self.text_model.parameters()).device
        chunks = []
        for start in range(0, len(flat), self.batch_size):
            batch = self.tokenizer(
                flat[start : start + self.batch_size],
                padding=True,
                truncation=True,
                return_tensors="pt",
            )
            out = self.text_model(**{k: v.to(device) for k, v in batch.items()})
            chunks.append(F.normalize(out.text_embeds.float(), dim=-1).cpu())
        embeds = torch.cat(chunks)
        width = max(len(group) for group in texts)
        table = embeds.new_zeros(len(names), width, embeds.shape[-1])
        mask = torch.zeros(len(names), width, dtype=torch.bool)
        start = 0
        for i, group in enumerate(texts):
            table[i, : len(group)] = embeds[start : start + len(group)]
            mask[i, : len(group)] = True
            start += len(group)
        return OpenVocabulary(tuple(names), table, mask)

    def _file(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"{key}.safetensors"

    def _load(self, key: str, names: list[str]) -> OpenVocabulary | None:
        path = self._file(key)
        if path is None or not path.is_file():
            return None
        try:
            tensors = load_file(str(path))
            return OpenVocabulary(tuple(names), tensors["text_embeds"], tensors["mask"])
        except (OSError, KeyError, ValueError) as err:
            logger.warning("ignoring unusable vocabulary cache %s (%s)", path, err)
            return None

    def _store(self, key: str, vocabulary: OpenVocabulary) -> None:
        self._memory[key] = vocabulary
        path = self._file(key)
        if path is None or path.is_file():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {"text_embeds": vocabulary.text_embeds, "mask": vocabulary.mask}
        save_file(tensors, str(path), metadata={"encoder": self.name})


@functools.cache
def default_encoder() -> VocabularyEncoder:
    """The CLIP ViT-B/16 text encoder of RAM / RAM++, loaded once per process (on the CPU)."""
    return VocabularyEncoder.from_pretrained(CLIP_TEXT_ENCODER)
