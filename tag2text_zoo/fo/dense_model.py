"""TagAlign dense segmentation on FiftyOne datasets: writing masks, heatmaps, and mIoU evaluation.

Each sample is segmented into its own classes (its tags, or a fixed list); the field's
``dataset.mask_targets`` is one growing ``{id: name}`` map, so a class keeps its pixel value
across samples whose tag sets differ (0 is background).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import fiftyone as fo
import numpy as np
from fiftyone.core.collections import SampleCollection

from ..engines.dense import DenseResult, DenseSegmenter

BACKGROUND = "background"


class MaskTargets:
    """A class-name <-> pixel-value map that grows as new classes appear (0 = background)."""

    def __init__(self, targets: dict[int, str] | None = None) -> None:
        self.targets = {0: BACKGROUND, **{int(k): v for k, v in (targets or {}).items()}}
        self.ids = {name: value for value, name in self.targets.items()}

    def id(self, name: str) -> int:
        if name not in self.ids:
            value = max(self.targets) + 1
            self.targets[value] = name
            self.ids[name] = value
        return self.ids[name]

    def mask(self, result: DenseResult) -> np.ndarray:
        """The result's label map with its local labels (0, 1..K) replaced by these ids."""
        lookup = np.array([0] + [self.id(c) for c in result.classes], np.int64)
        dtype = np.uint8 if max(self.targets) < 256 else np.uint16
        return lookup[result.labels].astype(dtype)


def sample_classes(sample: fo.Sample, tags_field: str) -> list[str]:
    """Class names from a Classifications, Classification or list-of-strings field."""
    value = sample[tags_field]
    if value is None:
        return []
    if isinstance(value, fo.Classifications):
        return [c.label for c in value.classifications]
    if isinstance(value, fo.Classification):
        return [value.label]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(
        f"sample {sample.id} ({sample.filepath}): field {tags_field!r} holds "
        f"{type(value).__name__}, expected Classifications, Classification or a list of strings"
    )


def heatmap_field(label_field: str, name: str) -> str:
    """The field holding one class's score heatmap, e.g. ``tagalign_heatmap_potted_plant``."""
    return f"{label_field}_heatmap_{re.sub(r'[^0-9a-zA-Z]+', '_', name).strip('_').lower()}"


def _batches(samples: SampleCollection, size: int, progress) -> Iterable[list[fo.Sample]]:
    batch: list[fo.Sample] = []
    for sample in samples.iter_samples(progress=progress):
        batch.append(sample)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def apply_dense_segmenter(
    samples: SampleCollection,
    segmenter: DenseSegmenter,
    label_field: str = "tagalign",
    *,
    classes: Sequence[str] | None = None,
    tags_field: str | None = None,
    heatmaps: bool | Sequence[str] = False,
    batch_size: int = 4,
    progress: bool | None = None,
) -> dict[int, str]:
    """Writes an ``fo.Segmentation`` per sample (and optionally ``fo.Heatmap`` per class).

    Args:
        samples: a dataset or view.
        segmenter: the TagAlign / CLIP-Surgery engine.
        label_field: the segmentation field.
        classes: one class list for all samples, or
        tags_field: the field with each sample's classes (e.g. a tagger's Classifications).
        heatmaps: True for one heatmap field per class (see :func:`heatmap_field`), or the classes
            to write heatmaps for; scores in [0, 1].
        batch_size: images per engine call.
        progress: FiftyOne progress bar setting.

    Returns:
        The field's mask targets, also saved in ``dataset.mask_targets[label_field]``.
    """
    if (classes is None) == (tags_field is None):
        raise ValueError("give exactly one of classes (a fixed list) or tags_field")
    dataset = samples._dataset
    targets = MaskTargets(dataset.mask_targets.get(label_field))
    for batch in _batches(samples, batch_size, progress):
        names = [
            list(classes) if classes is not None else sample_classes(s, tags_field) for s in batch
        ]
        results = segmenter.predict([s.filepath for s in batch], names)
        for sample, result in zip(batch, results):
            sample[label_field] = fo.Segmentation(mask=targets.mask(result))
            wanted = result.classes if heatmaps is True else (heatmaps or [])
            for k, name in enumerate(result.classes):
                if name in wanted:
                    heat = fo.Heatmap(map=result.scores[k].astype(np.float32), range=[0.0, 1.0])
                    sample[heatmap_field(label_field, name)] = heat
            sample.save()
    dataset.mask_targets = {**dataset.mask_targets, label_field: targets.targets}
    dataset.save()
    return targets.targets


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
    """mIoU of `pred_field` against `gt_field` through ``evaluate_segmentations``.

    Predicted masks are re-encoded into the ground truth's mask targets, in a field
    ``{pred_field}_gt_ids``: each predicted class name goes through `mapping` (prediction name ->
    ground-truth name; unmapped names are kept), and names the ground truth lacks become
    background.

    Raises:
        ValueError: a field has no ``mask_targets`` on the dataset.
    """
    dataset = samples._dataset
    gt_targets = dataset.mask_targets.get(gt_field)
    pred_targets = dataset.mask_targets.get(pred_field)
    for field, found in ((gt_field, gt_targets), (pred_field, pred_targets)):
        if not found:
            raise ValueError(f"dataset {dataset.name!r} has no mask_targets for {field!r}")
    gt_ids = {name: int(value) for value, name in gt_targets.items()}
    mapping = mapping or {}
    size = max(max(int(v) for v in pred_targets) + 1, 1)
    lookup = np.zeros(size, np.int64)
    for value, name in pred_targets.items():
        lookup[int(value)] = gt_ids.get(mapping.get(name, name), 0)
    remapped = f"{pred_field}_gt_ids"
    for sample in samples.iter_samples(autosave=True):
        pred = sample[pred_field]
        if pred is not None:
            mask = lookup[pred.get_mask()].astype(np.uint16 if lookup.max() > 255 else np.uint8)
            sample[remapped] = fo.Segmentation(mask=mask)
    dataset.mask_targets = {**dataset.mask_targets, remapped: dict(gt_targets)}
    results = samples.evaluate_segmentations(
        remapped, gt_field=gt_field, eval_key=eval_key, mask_targets=dict(gt_targets)
    )
    matrix = np.asarray(results.pixel_confusion_matrix, np.float64)
    inter = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - inter
    iou = {
        str(name): float(inter[i] / union[i])
        for i, name in enumerate(results.classes)
        if union[i] > 0 and (include_background or name != gt_targets.get(0, BACKGROUND))
    }
    return DenseEvaluation(float(np.mean(list(iou.values()))) if iou else 0.0, iou, results)
