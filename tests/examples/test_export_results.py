"""examples/export_results.py: grounded results to COCO and back, dense results to PNG masks and
back, compared with the originals."""

from __future__ import annotations

import numpy as np
import pytest
from data_paths import FIXTURES
from PIL import Image
from scripts import load_script

from tag2text_zoo import (
    GroundedResult,
    load_dense_segmenter,
    load_grounded_segmenter,
    segment_dense,
    segment_samples,
    to_detections,
)


@pytest.fixture(scope="module")
def example():
    return load_script("examples/export_results.py")


def _ellipse(height, width, box):
    x1, y1, x2, y2 = box
    yy, xx = np.mgrid[:height, :width] + 0.5
    cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1


def test_grounded_masks_survive_coco(example, make_dataset, tmp_path):
    """Smooth, known masks through ``to_detections`` (the runners' conversion: box-cropped masks,
    boxes clipped to the image), COCO polygons with tolerance 0, and back."""
    width, height = 160, 120
    boxes = np.array([[10, 20, 70, 90], [60.5, 5.2, 150.7, 60.1], [120, 80, 190, 130]], np.float32)
    masks = np.stack([_ellipse(height, width, b) for b in boxes])
    result = GroundedResult(
        boxes,
        ["dog", "cat", "dog"],
        np.array([0.9, 0.8, 0.45], np.float32),
        np.array([0.95, 0.9, 0.7], np.float32),
        masks,
    )
    path = tmp_path / "image.png"
    Image.new("RGB", (width, height), (90, 120, 40)).save(path)
    ds = make_dataset([path], grounded=[to_detections(result, (width, height))])

    back = example.import_grounded(example.export_grounded(ds, "grounded", tmp_path / "out"))
    try:
        report = example.compare_grounded(ds, back, "grounded")
        assert report["objects"] == report["objects_with_mask"] == 3
        assert report["labels_scores_masks_kept"] and report["max_box_difference"] < 1e-6
        assert min(report["mask_iou"]) > 0.95
        sam_iou = [d.sam_iou for d in back.first().detections.detections]
        assert sam_iou == pytest.approx([0.95, 0.9, 0.7])  # extra attributes travel too
    finally:
        back.delete()


def test_pipeline_results_round_trip(
    example, grounded_dirs, tag2text_images, make_dataset, tmp_path, capsys, one_torch_thread
):
    ds = make_dataset(tag2text_images[:3])
    grounded = load_grounded_segmenter(*grounded_dirs, device="cpu", box_threshold=0.0)
    segment_samples(ds, grounded, "grounded", classes=["dog", "cat"], batch_size=3)
    dense = load_dense_segmenter(FIXTURES / "tagalign-tiny" / "clip", device="cpu")
    segment_dense(ds, dense, "tagalign", classes=["sky", "dog", "grass"], batch_size=3)

    report = example.main([ds.name, str(tmp_path / "out")])
    coco, masks = report["coco"], report["masks"]
    assert coco["objects"] == ds.count("grounded.detections") > 0
    assert coco["labels_scores_masks_kept"] and coco["max_box_difference"] < 1e-6
    assert masks == {"samples": 3, "masks_equal": 3, "mask_targets_equal": True}
    assert ds.mask_targets["tagalign"][1] == "sky"
    assert "coco: {'objects'" in capsys.readouterr().out
