"""GroundedResult -> fo.Detections (relative boxes, box-cropped masks) and fo.Segmentation."""

from __future__ import annotations

import numpy as np

from tag2text_zoo import GroundedResult, MaskTargets, to_detections, to_segmentation

W, H = 40, 20


def _result() -> GroundedResult:
    masks = np.zeros((2, H, W), bool)
    masks[0, 5:15, 10:30] = True
    masks[0, 0, 0] = True  # outside box 0: must not be in its crop
    masks[1, 8:12, 20:35] = True
    return GroundedResult(
        boxes=np.array([[9.6, 4.6, 30.4, 15.4], [-3.0, 2.0, 45.0, 18.0]], np.float32),
        labels=["cat", "dog"],
        scores=np.array([0.9, 0.5], np.float32),
        iou_predictions=np.array([0.8, 0.7], np.float32),
        masks=masks,
    )


def test_relative_boxes_and_box_cropped_masks():
    dets = to_detections(_result(), (W, H)).detections
    assert [d.label for d in dets] == ["cat", "dog"]
    np.testing.assert_allclose(dets[0].bounding_box, [9.6 / W, 4.6 / H, 20.8 / W, 10.8 / H], 1e-5)
    # rows round(4.6)=5 .. round(15.4)=15, cols 10 .. 30: exactly the painted rectangle
    assert dets[0].mask.shape == (10, 20) and dets[0].mask.all()
    # box 1 is clipped to the image before conversion and cropping
    np.testing.assert_allclose(dets[1].bounding_box, [0, 2 / H, 1, 16 / H], atol=1e-6)
    assert dets[1].mask.shape == (16, 40) and dets[1].mask.sum() == 4 * 15
    assert dets[0].confidence == np.float32(0.9) and dets[1]["sam_iou"] == np.float32(0.7)


def test_empty_result_gives_empty_detections():
    empty = GroundedResult(
        np.zeros((0, 4), np.float32), [], np.zeros(0), np.zeros(0), np.zeros((0, H, W), bool)
    )
    assert to_detections(empty, (W, H)).detections == []
    assert not to_segmentation(empty, MaskTargets({1: "cat"})).mask.any()


def test_semantic_segmentation_best_box_wins_and_targets_grow():
    targets = MaskTargets({1: "dog"})
    seg = to_segmentation(_result(), targets).mask
    assert seg.shape == (H, W) and seg.dtype == np.uint8
    assert targets.targets == {0: "background", 1: "dog", 2: "cat"}  # cat was new
    assert seg[10, 25] == 2  # cat (0.9) over dog (0.5) where both masks cover
    assert seg[10, 32] == 1  # dog only
    assert seg[1, 1] == 0
