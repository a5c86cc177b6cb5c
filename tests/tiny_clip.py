"""Tiny random CLIP text encoders whose projection is solved so that chosen texts embed exactly
onto chosen vectors (a known text lands on a known class or image), built offline."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from tokenizers import pre_tokenizers
from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer


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


def text_model(hidden: int, seed: int, projection_dim: int = 512) -> CLIPTextModelWithProjection:
    torch.manual_seed(seed)
    cfg = CLIPTextConfig(
        vocab_size=2 + 2 * 256,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        projection_dim=projection_dim,
        max_position_embeddings=77,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    return CLIPTextModelWithProjection(cfg).eval()


@torch.no_grad()
def align(model, tokenizer, texts: list[str], targets: torch.Tensor) -> None:
    """Sets ``model.text_projection`` so that ``texts`` embed to ``targets`` exactly (least
    squares; exact while there are no more texts than the text model's width)."""
    tokens = tokenizer(texts, padding=True, return_tensors="pt")
    pooled = model.text_model(**tokens).pooler_output
    solution = torch.linalg.lstsq(pooled.double(), targets.double()).solution  # hidden x out
    model.text_projection.weight.copy_(solution.T.float())


def save_aligned_text_encoder(folder: Path, texts: list[str], targets: torch.Tensor) -> Path:
    """A transformers text-encoder folder (model + tokenizer, as from the hub) whose ``texts``
    embed to ``targets``; aligned through the tokenizer that ``from_pretrained`` gives back."""
    char_tokenizer().save_pretrained(folder)
    model = text_model(hidden=64, seed=0, projection_dim=targets.shape[1])
    align(model, AutoTokenizer.from_pretrained(folder), texts, targets)
    model.save_pretrained(folder)
    return folder


def ram_open_set_encoder(ram_dir: Path, names: list[str], folder: Path) -> Path:
    """A text-encoder folder for ``ram_dir``'s open-set tagging of its first fixture image:
    ``names[0]`` lands on the class that fires there, the other names on the class scoring lowest
    (every prompt template of a name on the same label embedding, so their mean is that one)."""
    import numpy as np

    from tag2text_zoo.engines.vocabulary import DEFAULT_TEMPLATES
    from tag2text_zoo.models.checkpoint import read_checkpoint

    logits = np.load(ram_dir / "expected.npz")["tag_logits"][0]
    on, off = int(logits.argmax()), int(logits.argmin())
    label_embed = read_checkpoint(ram_dir / "model.pth")["model"]["label_embed"]
    texts = [t.format(n) for n in names for t in DEFAULT_TEMPLATES]
    rows = [on if i == 0 else off for i in range(len(names)) for _ in DEFAULT_TEMPLATES]
    return save_aligned_text_encoder(folder, texts, label_embed[rows])
