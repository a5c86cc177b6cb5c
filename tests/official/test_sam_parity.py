"""SAM and SAM-HQ: a tiny random model built and saved by segment-anything / segment-anything-hq,
loaded by this package, gives the official predictor's mask logits and IoU predictions.

Run where the official packages are installed (.ci/official_checkpoints.sh); skipped elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_official import randomize, tiny_sam

from tag2text_zoo.engines.sam_family import load_sam, sam_adapter

TOLERANCE = 1e-4
BOXES = torch.tensor([[2.0, 3.0, 30.0, 40.0], [10.0, 5.0, 70.0, 45.0], [0.0, 0.0, 80.0, 50.0]])


def _image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (50, 80, 3), dtype=np.uint8)


@pytest.mark.parametrize("package", ["segment_anything", "segment_anything_hq"])
@torch.inference_mode()
def test_mask_logits_and_ious_equal_the_official_predictor(tmp_path, package):
    official = pytest.importorskip(package)
    sam = randomize(tiny_sam(hq=package == "segment_anything_hq"), std=0.3)
    path = tmp_path / "sam.pth"
    torch.save(sam.state_dict(), path)  # as the released files: a bare state dict

    model, processor = load_sam(path)
    adapter = sam_adapter(model, processor)
    image = _image()
    enc = adapter.preprocess([Image.fromarray(image)])
    logits, ious = adapter.decode(adapter.embed(enc["pixel_values"]), 0, BOXES, enc)
    masks = adapter.masks(logits.float(), enc, 0)

    predictor = official.SamPredictor(sam)
    predictor.set_image(image)
    boxes = predictor.transform.apply_boxes_torch(BOXES, image.shape[:2])
    full, expected_ious, expected = predictor.predict_torch(
        None, None, boxes=boxes, multimask_output=False, return_logits=True
    )
    mask_error = (logits[0] - expected).abs().max().item()
    iou_error = (ious - expected_ious[:, 0]).abs().max().item()
    print(f"\n{package}: mask logits max |diff| {mask_error:.2e}, IoU max |diff| {iou_error:.2e}")
    assert mask_error <= TOLERANCE and iou_error <= TOLERANCE
    assert expected.abs().max() > 1  # logits of a size that a wrong weight would change
    flipped = torch.count_nonzero(masks != (full[:, 0] > predictor.model.mask_threshold))
    assert flipped <= 1e-3 * masks.numel()  # full-size masks: same up to pixels on the threshold
