"""Tagger results as FiftyOne labels, and the names of the fields they go to."""

from __future__ import annotations

from collections.abc import Iterable

import fiftyone as fo

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
