"""Multi-label tag evaluation as a FiftyOne evaluation run.

FiftyOne evaluates single-label classifications, objects and segmentations; a tagger gives each
sample several labels. :func:`evaluate_tags` matches each sample's predicted and ground-truth tags
by name and registers the run as FiftyOne's own evaluations are: ``list_evaluations()``,
``load_evaluation_results(key)``, ``load_evaluation_view(key)``, ``rename_evaluation`` and
``delete_evaluation`` work on it.

The run is shaped like a detection evaluation (config type ``"detection"``, method ``"tags"``):
a tag in both fields is a ``(tag, tag)`` pair, a predicted tag the ground truth lacks is
``("(none)", tag)``, a missed tag ``(tag, "(none)")``; each label gets ``<eval_key>`` (``"tp"``,
``"fp"``, ``"fn"``) and ``<eval_key>_id`` (its match), each sample ``<eval_key>_tp/_fp/_fn``.
That is the shape FiftyOne's Model Evaluation panel reads for its TP/FP/FN counts, per-class
table, confusion matrix, mAP and the views its clicks open. (Its "classification" type shows no
mAP and selects samples by ``<field>.label``, which a ``Classifications`` field does not have.)

AP ranks every sample by the tag's score: the sigmoid of the stored logits when the predictions
hold them (``store_logits=True``) and ``dataset.classes[pred_field]`` names them, which makes AP
independent of the tagging threshold; otherwise the predicted confidence, 0 where the tag was not
predicted (AP then depends on the threshold the tags were kept at).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import fiftyone as fo
import numpy as np
from fiftyone.core.collections import SampleCollection
from fiftyone.utils.eval.detection import (
    DetectionEvaluation,
    DetectionEvaluationConfig,
    DetectionResults,
)
from sklearn.metrics import average_precision_score

METHOD = "tags"
LOGITS, CONFIDENCE, MIXED = "logits", "confidence", "logits and confidence"


class TagEvaluationConfig(DetectionEvaluationConfig):
    """How tags are evaluated.

    Args:
        pred_field: the predicted ``fo.Classifications`` field.
        gt_field: the ground-truth ``fo.Classifications`` field.
        classes: evaluate only these tags (None: every tag either field holds).
        use_logits: rank by the stored logits where the predictions have them.
    """

    def __init__(
        self,
        pred_field: str,
        gt_field: str,
        classes: list[str] | None = None,
        use_logits: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(pred_field, gt_field, **kwargs)
        self.classes = None if classes is None else list(classes)
        self.use_logits = use_logits

    @property
    def method(self) -> str:
        return METHOD


class TagEvaluation(DetectionEvaluation):
    """Matches a sample's tags by name (FiftyOne builds it from :class:`TagEvaluationConfig`)."""

    def evaluate(self, doc: Any, eval_key: str | None = None) -> list[tuple]:
        """``(gt_label, pred_label, iou, confidence, gt_id, pred_id)`` per tag of one sample;
        with ``eval_key``, marks each label ``tp`` / ``fp`` / ``fn`` and records its match."""
        truth, preds = _by_name(doc[self.gt_field]), _by_name(doc[self.pred_field])
        wanted = self.config.classes
        matches = []
        for name in dict.fromkeys([*truth, *preds]):
            if wanted is not None and name not in wanted:
                continue
            gt, pred = truth.get(name, []), preds.get(name, [])
            gt_id = gt[0].id if gt else None
            pred_id = pred[0].id if pred else None
            confidence = max((p.confidence or 0.0 for p in pred), default=None)
            matches.append(
                (name if gt else None, name if pred else None, None, confidence, gt_id, pred_id)
            )
            if eval_key is not None:
                status = "tp" if gt and pred else "fn" if gt else "fp"
                for label, other in [*((g, pred_id) for g in gt), *((p, gt_id) for p in pred)]:
                    label[eval_key] = status
                    label[f"{eval_key}_id"] = other
        return matches

    def generate_results(
        self,
        samples: SampleCollection,
        matches: list[tuple],
        eval_key: str | None = None,
        classes: list[str] | None = None,
        missing: str | None = None,
        progress: Any = None,
    ) -> TagEvaluationResults:
        """The matches, and each tag's AP over all samples (see the module docstring)."""
        names = classes or sorted({m[0] for m in matches if m[0]} | {m[1] for m in matches if m[1]})
        scores, source = _scores(samples, self.config, names)
        truth = [set(t or []) for t in samples.values(f"{self.gt_field}.classifications.label")]
        ap = {}
        for j, name in enumerate(names):
            y_true = np.array([name in t for t in truth])
            ap[name] = (
                float(average_precision_score(y_true, scores[:, j])) if y_true.any() else None
            )
        return TagEvaluationResults(
            samples,
            self.config,
            eval_key,
            matches,
            ap=ap,
            scores=source,
            classes=classes,
            missing=missing,
            backend=self,
        )


class TagEvaluationResults(DetectionResults):
    """The result of :func:`evaluate_tags`: FiftyOne's detection-results interface (``report()``,
    ``metrics()``, ``confusion_matrix()``, ...) over tag pairs, plus AP per tag.

    Attributes:
        ap: tag -> average precision over all samples (None: not in the ground truth).
        scores: what AP ranked by: ``"logits"``, ``"confidence"`` or both (samples without
            stored logits ranked by confidence).
    """

    def __init__(
        self,
        samples: SampleCollection,
        config: TagEvaluationConfig,
        eval_key: str | None,
        matches: list[tuple],
        ap: dict[str, float | None] | None = None,
        scores: str = CONFIDENCE,
        **kwargs: Any,
    ) -> None:
        super().__init__(samples, config, eval_key, matches, **kwargs)
        self.ap = dict(ap or {})
        self.scores = scores

    def mAP(self, classes: Iterable[str] | None = None) -> float:
        """Mean AP over ``classes`` (default: every tag the ground truth holds)."""
        names = self.ap if classes is None else list(classes)
        values = [self.ap[n] for n in names if self.ap.get(n) is not None]
        return float(np.mean(values)) if values else 0.0

    def format_report(self, classes: Iterable[str] | None = None) -> str:
        """Per-tag precision, recall, AP and support (most frequent first), then totals."""
        report = self.report(classes=None if classes is None else list(classes))
        rows = [f"{'tag':<24}{'precision':>10}{'recall':>8}{'AP':>8}{'support':>9}"]
        tags = [k for k in report if k not in ("micro avg", "macro avg", "weighted avg")]
        for name in sorted(tags, key=lambda n: (-report[n]["support"], n)):
            r, ap = report[name], self.ap.get(name)
            rows.append(
                f"{name:<24}{r['precision']:>10.3f}{r['recall']:>8.3f}"
                f"{'-' if ap is None else f'{ap:.3f}':>8}{int(r['support']):>9}"
            )
        micro = report.get("micro avg", {})
        rows.append(
            f"micro precision {micro.get('precision', 0.0):.3f}  "
            f"micro recall {micro.get('recall', 0.0):.3f}  "
            f"mAP {self.mAP(classes):.3f} (ranked by {self.scores})"
        )
        return "\n".join(rows)

    def print_report(self, classes: Iterable[str] | None = None, digits: int = 3) -> None:
        print(self.format_report(classes))

    @classmethod
    def _from_dict(cls, d, samples, config, eval_key, **kwargs):
        return super()._from_dict(
            d,
            samples,
            config,
            eval_key,
            ap=d.get("ap"),
            scores=d.get("scores", CONFIDENCE),
            **kwargs,
        )


def evaluate_tags(
    samples: SampleCollection,
    pred_field: str,
    gt_field: str = "ground_truth",
    eval_key: str | None = None,
    classes: Iterable[str] | None = None,
    *,
    use_logits: bool = True,
    progress: Any = None,
) -> TagEvaluationResults:
    """Evaluates predicted tags against ground-truth tags (both ``fo.Classifications`` fields).

    Args:
        samples: a dataset or view.
        pred_field, gt_field: the fields compared.
        eval_key: register the run under this key (see the module docstring for the fields
            it writes); None: only return the results.
        classes: evaluate only these tags.
        use_logits: rank by stored logits where present (threshold-free AP).
        progress: a progress bar setting or callback, as FiftyOne's.

    Returns:
        The results (``print_report()``, ``mAP()``, ``ap``, ``metrics()``, ...).

    Raises:
        ValueError: a field is not ``fo.Classifications``, or stored logits do not match
            ``dataset.classes[pred_field]``.
    """
    for name in (pred_field, gt_field):
        field = samples.get_field(name)
        if not (
            isinstance(field, fo.EmbeddedDocumentField)
            and field.document_type is fo.Classifications
        ):
            raise ValueError(f"{name!r} must be an fo.Classifications field")
    wanted = None if classes is None else list(dict.fromkeys(classes))
    config = TagEvaluationConfig(pred_field, gt_field, classes=wanted, use_logits=use_logits)
    method = config.build()
    method.ensure_requirements()
    method.register_run(samples, eval_key)
    method.register_samples(samples, eval_key)
    save = eval_key is not None
    matches = []
    view = samples.select_fields([gt_field, pred_field])
    for sample in view.iter_samples(progress=progress, autosave=save):
        found = method.evaluate(sample, eval_key=eval_key)
        matches.extend(found)
        if save:
            sample[f"{eval_key}_tp"] = sum(1 for m in found if m[0] and m[1])
            sample[f"{eval_key}_fp"] = sum(1 for m in found if m[0] is None)
            sample[f"{eval_key}_fn"] = sum(1 for m in found if m[1] is None)
    results = method.generate_results(samples, matches, eval_key, classes=wanted)
    if save:
        method.save_run_results(samples, eval_key, results)
        method.add_fields_to_sidebar_group(samples, eval_key, omit_fields=(pred_field, gt_field))
    return results


def _by_name(value: fo.Classifications | None) -> dict[str, list[fo.Classification]]:
    out: dict[str, list[fo.Classification]] = {}
    for label in value.classifications if value is not None else []:
        out.setdefault(label.label, []).append(label)
    return out


def _scores(
    samples: SampleCollection, config: TagEvaluationConfig, names: list[str]
) -> tuple[np.ndarray, str]:
    """``[samples, names]`` scores in [0, 1] for AP, and what they came from."""
    field = config.pred_field
    labels = samples.values(f"{field}.classifications.label")
    confidences = samples.values(f"{field}.classifications.confidence")
    ids = samples.values("id")
    vocabulary = samples._dataset.classes.get(field) if config.use_logits else None
    logits = samples.values(f"{field}.logits") if vocabulary else [None] * len(ids)
    position = {name: i for i, name in enumerate(vocabulary or [])}
    columns = [position.get(name) for name in names]
    scores = np.zeros((len(ids), len(names)), np.float32)
    for i, row in enumerate(logits):
        if row is None:
            best: dict[str, float] = {}
            for name, conf in zip(labels[i] or [], confidences[i] or []):
                best[name] = max(best.get(name, 0.0), conf or 0.0)
            scores[i] = [best.get(name, 0.0) for name in names]
            continue
        if len(row) != len(vocabulary):
            raise ValueError(
                f"sample {ids[i]}: {field}.logits has {len(row)} values but "
                f"dataset.classes[{field!r}] names {len(vocabulary)}"
            )
        probs = 1.0 / (1.0 + np.exp(-np.asarray(row, np.float32)))
        scores[i] = [0.0 if c is None else probs[c] for c in columns]
    with_logits = sum(row is not None for row in logits)
    source = LOGITS if with_logits == len(ids) else CONFIDENCE if not with_logits else MIXED
    return scores, source
