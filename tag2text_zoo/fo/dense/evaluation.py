"""mIoU of a dense segmentation field against ground truth, through FiftyOne's evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import fiftyone as fo
import numpy as np
from fiftyone.core.collections import SampleCollection

from ..base.mask_targets import BACKGROUND


@dataclass
class DenseEvaluation:
    """mIoU of a dense segmentation field.

    Attributes:
        miou: mean IoU over the classes present in the ground truth or the predictions.
        iou: per-class IoU (ground-truth class names).
        results: FiftyOne's ``SegmentationResults`` (confusion matrix, report, ...).
    """

    miou: float
    iou: dict[str, float]
    results: object


def evaluate_dense_segmentations(
    samples: SampleCollection,
    pred_field: str,
    gt_field: str = "ground_truth",
    *,
    mapping: dict[str, str] | None = None,
    eval_key: str | None = None,
    include_background: bool = True,
) -> DenseEvaluation:
    """mIoU of ``pred_field`` against ``gt_field`` through ``evaluate_segmentations``.

    The predictions are first re-encoded into the ground truth's pixel values, in a field
    ``{pred_field}_gt_ids`` (see :func:`encode_as_ground_truth`).

    Raises:
        ValueError: a field has no ``mask_targets`` on the dataset.
    """
    remapped = encode_as_ground_truth(samples, pred_field, gt_field, mapping)
    gt_targets = samples._dataset.mask_targets[gt_field]
    results = samples.evaluate_segmentations(
        remapped, gt_field=gt_field, eval_key=eval_key, mask_targets=dict(gt_targets)
    )
    background = gt_targets.get(0, BACKGROUND)
    iou = {
        name: value
        for name, value in class_iou(results).items()
        if include_background or name != background
    }
    return DenseEvaluation(float(np.mean(list(iou.values()))) if iou else 0.0, iou, results)


def encode_as_ground_truth(
    samples: SampleCollection,
    pred_field: str,
    gt_field: str,
    mapping: dict[str, str] | None = None,
) -> str:
    """Writes ``pred_field``'s masks with the ground truth's pixel values into
    ``{pred_field}_gt_ids`` (and its mask_targets), which FiftyOne's evaluation needs.

    Each predicted class name goes through ``mapping`` (prediction name -> ground-truth name;
    unmapped names are kept), and names the ground truth lacks become background.

    Returns:
        The name of the written field.

    Raises:
        ValueError: a field has no ``mask_targets`` on the dataset.
    """
    dataset = samples._dataset
    targets = {f: dataset.mask_targets.get(f) for f in (gt_field, pred_field)}
    for field, found in targets.items():
        if not found:
            raise ValueError(f"dataset {dataset.name!r} has no mask_targets for {field!r}")
    gt_ids = {name: int(value) for value, name in targets[gt_field].items()}
    mapping = mapping or {}
    lookup = np.zeros(max(int(v) for v in targets[pred_field]) + 1, np.int64)
    for value, name in targets[pred_field].items():
        lookup[int(value)] = gt_ids.get(mapping.get(name, name), 0)
    dtype = np.uint16 if lookup.max() > 255 else np.uint8
    remapped = f"{pred_field}_gt_ids"
    for sample in samples.iter_samples(autosave=True):
        pred = sample[pred_field]
        if pred is not None:
            sample[remapped] = fo.Segmentation(mask=lookup[pred.get_mask()].astype(dtype))
    dataset.mask_targets = {**dataset.mask_targets, remapped: dict(targets[gt_field])}
    dataset.save()
    return remapped


def class_iou(results) -> dict[str, float]:
    """IoU of each class present in FiftyOne ``SegmentationResults``' pixel confusion matrix."""
    matrix = np.asarray(results.pixel_confusion_matrix, np.float64)
    inter = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - inter
    return {
        str(name): float(inter[i] / union[i]) for i, name in enumerate(results.classes) if union[i]
    }
