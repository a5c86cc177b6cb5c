"""Export grounded results to COCO (boxes + instance masks) and dense results to PNG masks, import
them back and compare with the originals.

python examples/export_results.py DATASET OUT_DIR [--grounded-field F] [--dense-field F]

COCO keeps instance masks as polygons (FiftyOne writes RLE only for ``iscrowd`` objects, which
COCO's evaluation ignores); ``tolerance=0`` keeps every contour point, so smooth masks come back
nearly whole, but a mask SAM left empty has no polygon and comes back as a box only. PNG masks
come back exactly; their class map is written next to them as ``mask_targets.json``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import fiftyone as fo
import numpy as np
from fiftyone.core.collections import SampleCollection

COCO, MASKS, TARGETS = "coco", "masks", "mask_targets.json"


def export_grounded(samples: SampleCollection, field: str, out_dir: Path) -> Path:
    """``field`` (Detections with masks) as a COCO detection dataset under ``out_dir/coco``."""
    folder = out_dir / COCO
    samples.export(
        export_dir=str(folder),
        dataset_type=fo.types.COCODetectionDataset,
        label_field=field,
        export_media="symlink",
        tolerance=0,
    )
    return folder


def import_grounded(folder: Path) -> fo.Dataset:
    """The COCO export: every object in ``detections``, those with a mask in ``segmentations``."""
    return fo.Dataset.from_dir(
        dataset_dir=str(folder),
        dataset_type=fo.types.COCODetectionDataset,
        label_types=["detections", "segmentations"],
    )


def export_dense(samples: SampleCollection, field: str, out_dir: Path) -> Path:
    """``field`` (Segmentation) as PNG masks under ``out_dir/masks``, its class map beside them."""
    folder = out_dir / MASKS
    samples.export(
        export_dir=str(folder),
        dataset_type=fo.types.ImageSegmentationDirectory,
        label_field=field,
        export_media="symlink",
    )
    targets = samples._dataset.mask_targets.get(field, {})
    (folder / TARGETS).write_text(json.dumps({str(k): v for k, v in targets.items()}))
    return folder


def import_dense(folder: Path, field: str) -> fo.Dataset:
    """The PNG masks as ``field``, with their class map as the dataset's mask targets."""
    dataset = fo.Dataset.from_dir(
        dataset_dir=str(folder),
        dataset_type=fo.types.ImageSegmentationDirectory,
        label_field=field,
    )
    targets = json.loads((folder / TARGETS).read_text())
    dataset.mask_targets = {field: {int(k): v for k, v in targets.items()}}
    dataset.save()
    return dataset


def _pairs(original: SampleCollection, back: fo.Dataset):
    """Samples of the original and the import, matched by file name."""
    by_name = {Path(s.filepath).name: s for s in back}
    for sample in original:
        yield sample, by_name[Path(sample.filepath).name]


def _frame_mask(detection: fo.Detection, width: int, height: int) -> np.ndarray:
    return detection.to_segmentation(frame_size=(width, height), target=1).mask > 0


def compare_grounded(original: SampleCollection, back: fo.Dataset, field: str) -> dict:
    """Objects, largest box difference, labels/scores kept, and mask IoUs (full-frame)."""
    original.compute_metadata()
    objects, masked, box_diff, same, ious = 0, 0, 0.0, True, []
    for sample, other in _pairs(original, back):
        width, height = sample.metadata.width, sample.metadata.height
        mine = sample[field].detections if sample[field] else []
        theirs = other.detections.detections if other.detections else []
        with_mask = other.segmentations.detections if other.segmentations else []
        objects += len(mine)
        same &= [(d.label, d.confidence) for d in mine] == [(d.label, d.confidence) for d in theirs]
        for a, b in zip(mine, theirs):
            box_diff = max(
                box_diff, float(np.abs(np.subtract(a.bounding_box, b.bounding_box)).max())
            )
        kept = [d for d in mine if _frame_mask(d, width, height).any()]
        masked += len(kept)
        for a, b in zip(kept, with_mask):
            ma, mb = _frame_mask(a, width, height), _frame_mask(b, width, height)
            ious.append(float((ma & mb).sum() / (ma | mb).sum()))
        same &= len(kept) == len(with_mask)
    return {
        "objects": objects,
        "objects_with_mask": masked,
        "labels_scores_masks_kept": same,
        "max_box_difference": box_diff,
        "mask_iou": ious,
    }


def compare_dense(original: SampleCollection, back: fo.Dataset, field: str) -> dict:
    """Samples, samples whose mask came back pixel for pixel, and whether the classes did."""
    pairs = list(_pairs(original, back))
    equal = sum(np.array_equal(a[field].get_mask(), b[field].get_mask()) for a, b in pairs)
    same_targets = back.mask_targets[field] == original._dataset.mask_targets.get(field)
    return {"samples": len(pairs), "masks_equal": int(equal), "mask_targets_equal": same_targets}


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="a FiftyOne dataset with grounded and/or dense results")
    parser.add_argument("out_dir", help="where the exports are written")
    parser.add_argument("--grounded-field", default="grounded", help="'' to skip")
    parser.add_argument("--dense-field", default="tagalign", help="'' to skip")
    args = parser.parse_args(argv)

    dataset, out_dir = fo.load_dataset(args.dataset), Path(args.out_dir)
    report = {}
    if args.grounded_field:
        back = import_grounded(export_grounded(dataset, args.grounded_field, out_dir))
        report["coco"] = compare_grounded(dataset, back, args.grounded_field)
        back.delete()
    if args.dense_field:
        back = import_dense(export_dense(dataset, args.dense_field, out_dir), args.dense_field)
        report["masks"] = compare_dense(dataset, back, args.dense_field)
        back.delete()
    for name, result in report.items():
        shown = {k: v for k, v in result.items() if k != "mask_iou"}
        if result.get("mask_iou"):
            ious = result["mask_iou"]
            shown["mask_iou_min_mean"] = [round(min(ious), 3), round(float(np.mean(ious)), 3)]
        print(f"{name}: {shown}")
    return report


if __name__ == "__main__":
    main()
