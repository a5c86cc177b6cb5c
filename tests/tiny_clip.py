"""A tiny random CLIP text encoder whose projection is solved so that chosen texts land exactly on
chosen embeddings: open-set tags then score like known classes of the RAM fixtures."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from tokenizers import pre_tokenizers
from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer


def char_tokenizer() -> CLIPTokenizer:
    """A character-level CLIP BPE tokenizer (no merges), built offline from its two files."""
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    chars = sorted(pre_tokenizers.ByteLevel.alphabet())
    for suffix in ("", "</w>"):
        vocab.update({c + suffix: len(vocab) + i for i, c in enumerate(chars)})
    folder = Path(tempfile.mkdtemp(prefix="t2t-clip-tok-"))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))


def text_model(hidden: int, seed: int) -> CLIPTextModelWithProjection:
    torch.manual_seed(seed)
    cfg = CLIPTextConfig(
        vocab_size=2 + 2 * 256,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        projection_dim=512,
        max_position_embeddings=77,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    return CLIPTextModelWithProjection(cfg).eval()


@torch.no_grad()
def align(model, tokenizer, texts: list[str], targets: torch.Tensor) -> None:
    """Sets the text projection so that ``texts`` embed to ``targets`` (unit rows) exactly."""
    pooled = model.text_model(**tokenizer(texts, padding=True, return_tensors="pt")).pooler_output
    solution = torch.linalg.lstsq(pooled.double(), targets.double()).solution  # hidden x 512
    model.text_projection.weight.copy_(solution.T.float())


def save_aligned_text_encoder(folder: Path, texts: list[str], targets: torch.Tensor) -> Path:
    """A transformers folder (model + tokenizer) that embeds ``texts`` to ``targets``."""
    tokenizer, model = char_tokenizer(), text_model(hidden=max(64, len(texts) + 8), seed=0)
    align(model, tokenizer, texts, targets)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
