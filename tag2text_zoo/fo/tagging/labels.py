"""Tagger results as FiftyOne labels, and the names of the fields they go to."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import fiftyone as fo
import numpy as np

from ...engines.tagger import TagResult

TAGS, CAPTION = "tags", "caption"


def tags_field(label_field: str) -> str:
    """``"t2t"`` -> ``"t2t_tags"``: where a tagging run writes its ``fo.Classifications`` (its
    captions go to ``"t2t_caption"``); a sample with this field counts as done."""
    return f"{label_field}_{TAGS}"


def to_classifications(
    result: TagResult,
    confidence_thresh: float | None = None,
    classes: Iterable[str] | None = None,
) -> fo.Classifications:
    """One image's tags as ``fo.Classifications`` (label = tag name, confidence = score).

    The tag lists repeat some words under several class indices; each word is kept once, with
    its highest score. RAM results carry ``tags_chinese``, stored as a ``label_chinese`` attribute.

    Args:
        result: the engine's output for one image.
        confidence_thresh: keep tags whose score is ``>=`` this (FiftyOne's convention).
        classes: keep only these tag names.
    """
    chinese = result.tags_chinese or [None] * len(result.tags)
    best: dict[str, tuple[float, str | None]] = {}
    for name, score, zh in zip(result.tags, result.scores, chinese, strict=True):
        name = name.strip()
        if name not in best or score > best[name][0]:
            best[name] = (score, zh)
    wanted = None if classes is None else set(classes)
    labels = []
    for name, (score, zh) in best.items():
        if confidence_thresh is not None and score < confidence_thresh:
            continue
        if wanted is not None and name not in wanted:
            continue
        extra = {} if zh is None else {"label_chinese": zh}
        labels.append(fo.Classification(label=name, confidence=score, **extra))
    return fo.Classifications(classifications=labels)


def to_tag_labels(
    result: TagResult,
    confidence_thresh: float | None = None,
    classes: Iterable[str] | None = None,
    tag_classes: TagClasses | None = None,
) -> dict[str, Any]:
    """One image's labels: ``{"tags": fo.Classifications, "caption": str}`` (no caption key
    when the model did not caption); the arguments as :func:`to_classifications`, and with
    ``tag_classes`` every name's logit as ``Classifications.logits`` (``result.logits`` needed)."""
    tags = to_classifications(result, confidence_thresh, classes)
    if tag_classes is not None:
        tags.logits = tag_classes.logits(result.logits)
    labels: dict[str, Any] = {TAGS: tags}
    if result.caption is not None:
        labels[CAPTION] = result.caption
    return labels


@dataclass(frozen=True)
class TagClasses:
    """A tagger's classes as FiftyOne sees them: each tag name once.

    The tag lists repeat some words under several class indices (Tag2Text: 3,429 indices, 3,313
    names); a name's logit is the highest of its indices', as its stored confidence is.

    Attributes:
        names: the names, stripped, in order of first appearance (``dataset.classes[field]``).
        position: for each class index, the position of its name in ``names``.
    """

    names: list[str]
    position: np.ndarray

    @classmethod
    def of(cls, tag_names: Sequence[str]) -> TagClasses:
        stripped = [name.strip() for name in tag_names]
        index = {name: i for i, name in enumerate(dict.fromkeys(stripped))}
        return cls(list(index), np.array([index[name] for name in stripped], np.int64))

    def logits(self, class_logits: np.ndarray) -> np.ndarray:
        """Per-index logits -> one float16 logit per name (as ``Classifications.logits``)."""
        out = np.full(len(self.names), -np.inf, np.float32)
        np.maximum.at(out, self.position, class_logits.astype(np.float32))
        return out.astype(np.float16)
