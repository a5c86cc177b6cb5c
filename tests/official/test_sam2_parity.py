"""SAM 2.1: a tiny random model built and saved by sam2, loaded by this package, gives
SAM2ImagePredictor's mask logits and IoU predictions.

Run where sam2 is installed (.ci/official_checkpoints.sh); skipped elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_official import IMAGE_SIZE, randomize, tiny_sam2

from tag2text_zoo.engines.sam_family import load_sam, sam_adapter

TOLERANCE = 1e-4
BOXES = torch.tensor([[2.0, 3.0, 30.0, 40.0], [10.0, 5.0, 70.0, 45.0], [0.0, 0.0, 80.0, 50.0]])


@torch.inference_mode()
def test_mask_logits_and_ious_equal_the_official_predictor(tmp_path):
    predictor_module = pytest.importorskip("sam2.sam2_image_predictor")
    sam = randomize(tiny_sam2(), std=0.3)
    path = tmp_path / "sam2.1_tiny.pt"
    torch.save({"model": sam.state_dict()}, path)  # as the released files

    # hiera_tiny's stages: the layout is found; only the image size of this tiny model differs.
    model, processor = load_sam(path, image_size=IMAGE_SIZE)
    adapter = sam_adapter(model, processor)
    image = np.random.default_rng(0).integers(0, 255, (50, 80, 3), dtype=np.uint8)
    enc = adapter.preprocess([Image.fromarray(image)])
    logits, ious = adapter.decode(adapter.embed(enc["pixel_values"]), 0, BOXES, enc)
    masks = adapter.masks(logits.float(), enc, 0)

    predictor = predictor_module.SAM2ImagePredictor(sam)
    # The predictor hard-codes the feature sizes of 1024-pixel models.
    predictor._bb_feat_sizes = [(IMAGE_SIZE // s, IMAGE_SIZE // s) for s in (4, 8, 16)]
    predictor.set_image(image)
    full, expected_ious, expected = predictor.predict(
        box=BOXES.numpy(), multimask_output=False, return_logits=True
    )
    expected, expected_ious = torch.as_tensor(expected), torch.as_tensor(expected_ious)
    mask_error = (logits[0, :, 0] - expected[:, 0]).abs().max().item()
    iou_error = (ious - expected_ious[:, 0]).abs().max().item()
    print(f"\nsam2: mask logits max |diff| {mask_error:.2e}, IoU max |diff| {iou_error:.2e}")
    assert mask_error <= TOLERANCE and iou_error <= TOLERANCE
    assert expected.abs().max() > 1
    flipped = torch.count_nonzero(masks != torch.as_tensor(full[:, 0] > 0))
    assert flipped <= 1e-3 * masks.numel()
