"""Multi-label tag evaluation, which FiftyOne lacks: per-tag precision / recall / AP and mAP."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import fiftyone as fo
import numpy as np
from sklearn.metrics import average_precision_score


@dataclass
class TagStats:
    tp: int
    fp: int
    fn: int
    ap: float | None  # None: the tag never occurs in the ground truth

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def support(self) -> int:
        return self.tp + self.fn


@dataclass
class TagEvaluation:
    """Per-tag statistics (``tags``), ``mAP`` over tags present in the ground truth, totals."""

    tags: dict[str, TagStats]
    mAP: float
    tp: int
    fp: int
    fn: int

    def report(self) -> str:
        rows = [f"{'tag':<24}{'precision':>10}{'recall':>8}{'AP':>8}{'support':>9}"]
        for name, s in sorted(self.tags.items(), key=lambda kv: (-kv[1].support, kv[0])):
            ap = "-" if s.ap is None else f"{s.ap:.3f}"
            rows.append(f"{name:<24}{s.precision:>10.3f}{s.recall:>8.3f}{ap:>8}{s.support:>9}")
        micro_p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        micro_r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        rows.append(
            f"micro precision {micro_p:.3f}  micro recall {micro_r:.3f}  mAP {self.mAP:.3f}"
        )
        return "\n".join(rows)

    def print_report(self) -> None:
        print(self.report())


def _labels(value: fo.Classifications | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for c in value.classifications if value is not None else []:
        conf = 1.0 if c.confidence is None else float(c.confidence)
        out[c.label] = max(out.get(c.label, conf), conf)
    return out


def evaluate_tags(
    samples: fo.core.collections.SampleCollection,
    pred_field: str,
    gt_field: str,
    eval_key: str | None = None,
    classes: Iterable[str] | None = None,
) -> TagEvaluation:
    """Compares predicted tags with ground-truth tags (both ``fo.Classifications`` fields).

    A sample's tag is a true positive when both fields hold it. AP ranks all samples by the
    predicted confidence of the tag (0 where it is not predicted), as scikit-learn's
    ``average_precision_score``. With ``eval_key``, per-sample counts are stored in
    ``{eval_key}_tp``, ``{eval_key}_fp`` and ``{eval_key}_fn``.
    """
    for name in (pred_field, gt_field):
        field = samples.get_field(name)
        if not (
            isinstance(field, fo.EmbeddedDocumentField)
            and field.document_type is fo.Classifications
        ):
            raise ValueError(f"{name!r} must be an fo.Classifications field")
    preds = [_labels(v) for v in samples.values(pred_field)]
    truth = [set(_labels(v)) for v in samples.values(gt_field)]
    names = sorted(set(classes) if classes is not None else set().union(*truth, *map(set, preds)))
    stats: dict[str, TagStats] = {}
    for tag in names:
        y_true = np.array([tag in t for t in truth])
        y_score = np.array([p.get(tag, 0.0) for p in preds])
        hit = np.array([tag in p for p in preds])
        ap = float(average_precision_score(y_true, y_score)) if y_true.any() else None
        stats[tag] = TagStats(
            int((hit & y_true).sum()), int((hit & ~y_true).sum()), int((~hit & y_true).sum()), ap
        )
    wanted = set(names)
    per_sample = [
        (len(set(p) & t & wanted), len((set(p) - t) & wanted), len((t - set(p)) & wanted))
        for p, t in zip(preds, truth, strict=True)
    ]
    if eval_key is not None:
        for i, suffix in enumerate(("tp", "fp", "fn")):
            samples.set_values(f"{eval_key}_{suffix}", [c[i] for c in per_sample])
    aps = [s.ap for s in stats.values() if s.ap is not None]
    totals = np.array(per_sample).sum(axis=0) if per_sample else np.zeros(3, int)
    return TagEvaluation(stats, float(np.mean(aps)) if aps else 0.0, *map(int, totals))
