"""Grounding DINO text prompts from tags, and which prompt tokens belong to which tag.

Grounding DINO reads one text per pass and splits it into phrases only at `.`, `?`, [CLS] and
[SEP]; it scores every box against every text token. The Grounded-SAM demos join the tags with
", ", lowercase them and end with "." (DESIGN.md section 4). Here each tag's tokens are found from
the tokenizer's character offsets, so a box is mapped to a tag without decoding any text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

# Tag2Text's attribute and action tags (class indices 3012-3428), dropped by the demos.
ATTRIBUTE_TAG_INDICES = range(3012, 3429)
MAX_TEXT_TOKENS = 256  # Grounding DINO's max_text_len, [CLS] and [SEP] included


@dataclass(frozen=True)
class PromptChunk:
    """One detector pass: its text and the token positions of each of its tags.

    Attributes:
        text: the prompt, e.g. "cat, dog.".
        tags: the tags in the prompt, in order.
        spans: per tag, the (start, end) token positions, end exclusive, counting [CLS] as 0.
    """

    text: str
    tags: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]

    def span_mask(self, length: int = MAX_TEXT_TOKENS) -> torch.Tensor:
        """Boolean [num_tags, length] mask, True at the tokens of each tag."""
        mask = torch.zeros(len(self.tags), length, dtype=torch.bool)
        for row, (start, end) in enumerate(self.spans):
            mask[row, start:end] = True
        return mask


def prepare_tags(
    tags: Sequence[str],
    tag_indices: Sequence[int] | None = None,
    drop_attribute_tags: bool = False,
) -> list[str]:
    """Lowercases, strips and deduplicates tags, keeping first-seen order.

    Args:
        tags: tag names.
        tag_indices: Tag2Text class index of each tag; needed for `drop_attribute_tags`.
        drop_attribute_tags: drop Tag2Text's attribute/action tags (indices 3012-3428).

    Returns:
        The tags to ground.
    """
    if drop_attribute_tags:
        if tag_indices is None or len(tag_indices) != len(tags):
            raise ValueError("drop_attribute_tags needs one Tag2Text class index per tag")
        tags = [t for t, i in zip(tags, tag_indices, strict=True) if i not in ATTRIBUTE_TAG_INDICES]
    cleaned = (t.strip().lower() for t in tags)
    return list(dict.fromkeys(t for t in cleaned if t))


def build_prompts(
    tags: Sequence[str],
    tokenizer: PreTrainedTokenizerBase,
    separator: str = ", ",
    max_tokens: int = MAX_TEXT_TOKENS,
) -> list[PromptChunk]:
    """Packs tags into as few prompts as fit in `max_tokens` tokens each.

    Args:
        tags: prepared tags (see `prepare_tags`); empty gives no prompt.
        tokenizer: the detector's (fast) tokenizer.
        separator: text between tags; ". " makes each tag its own phrase for the model.
        max_tokens: token budget per prompt, [CLS] and [SEP] included.

    Returns:
        Prompts in tag order; each ends with ".".
    """
    chunks: list[PromptChunk] = []
    current: list[str] = []
    for tag in tags:
        candidate = _chunk(current + [tag], tokenizer, separator)
        if candidate.spans[-1][1] + 2 <= max_tokens:  # + "." and [SEP]
            current.append(tag)
            continue
        if not current:
            raise ValueError(f"tag {tag!r} alone is longer than {max_tokens} prompt tokens")
        chunks.append(_chunk(current, tokenizer, separator))
        current = [tag]
        if _chunk(current, tokenizer, separator).spans[-1][1] + 2 > max_tokens:
            raise ValueError(f"tag {tag!r} alone is longer than {max_tokens} prompt tokens")
    if current:
        chunks.append(_chunk(current, tokenizer, separator))
    return chunks


def _chunk(tags: list[str], tokenizer: PreTrainedTokenizerBase, separator: str) -> PromptChunk:
    """Builds the prompt text and finds each tag's tokens from character offsets."""
    char_spans, pos = [], 0
    for i, tag in enumerate(tags):
        if i:
            pos += len(separator)
        char_spans.append((pos, pos + len(tag)))
        pos += len(tag)
    text = separator.join(tags) + "."
    offsets = tokenizer(text, return_offsets_mapping=True)["offset_mapping"]
    spans = []
    for tag, (c0, c1) in zip(tags, char_spans, strict=True):
        positions = [i for i, (o0, o1) in enumerate(offsets) if o1 > o0 and c0 <= o0 and o1 <= c1]
        if not positions:
            raise ValueError(f"tag {tag!r} gives no prompt token")
        spans.append((positions[0], positions[-1] + 1))
    return PromptChunk(text=text, tags=tuple(tags), spans=tuple(spans))
