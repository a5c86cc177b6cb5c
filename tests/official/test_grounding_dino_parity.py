"""Grounding DINO: a tiny random model built and saved by the official code (rf-groundingdino),
loaded by this package, gives the official model's box logits and boxes for the same image and
caption.

The official code calls BertModel methods that transformers 5 removed, so this runs in the
environment of .ci/official_checkpoints.sh (transformers 4); it is skipped elsewhere.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import transformers
from PIL import Image
from tiny_official import IMAGE_SIZE, randomize, save_tiny_bert, tiny_grounding_dino

from tag2text_zoo.engines.grounding_dino import load_grounding_dino

TOLERANCE = 1e-4
CAPTION = "a cat. a dog. remote control."
# The official inverse_sigmoid clamps at 1e-3, transformers' at 1e-5: boxes agree while every
# reference point stays inside (1e-3, 1 - 1e-3), as a trained model's do.
EPS = 1e-3

pytestmark = pytest.mark.skipif(
    int(transformers.__version__.split(".")[0]) >= 5,
    reason="the official Grounding DINO code needs transformers < 5",
)


@torch.inference_mode()
def test_logits_and_boxes_equal_the_official_model(tmp_path, reference_dir):
    transforms = pytest.importorskip("groundingdino.datasets.transforms")
    vocab = reference_dir / "bert-base-uncased-vocab.txt"
    detector = randomize(tiny_grounding_dino(save_tiny_bert(tmp_path / "bert", vocab)), std=0.02)
    path = tmp_path / "groundingdino_tiny.pth"
    torch.save({"model": {f"module.{k}": v for k, v in detector.state_dict().items()}}, path)
    shutil.copy(vocab, tmp_path / "vocab.txt")

    model, processor = load_grounding_dino(path)
    processor.image_processor.size = {"shortest_edge": IMAGE_SIZE, "longest_edge": 96}
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 80, 3), np.uint8))
    inputs = processor(images=image, text=CAPTION, return_tensors="pt")
    got = model(**inputs)

    official = transforms.Compose(
        [
            transforms.RandomResize([IMAGE_SIZE], max_size=96),
            transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    pixels, _ = official(image, None)
    seen = {}
    detector.transformer.register_forward_hook(lambda m, i, out: seen.update(references=out[1]))
    expected = detector(pixels[None], captions=[CAPTION])
    references = torch.stack(seen["references"])
    assert references.min() > EPS and references.max() < 1 - EPS

    tokens = inputs["input_ids"].shape[1]
    logit_error = (got.logits[0, :, :tokens] - expected["pred_logits"][0, :, :tokens]).abs().max()
    box_error = (got.pred_boxes[0] - expected["pred_boxes"][0]).abs().max()
    print(
        f"\ngrounding dino: logits max |diff| {logit_error:.2e}, boxes max |diff| {box_error:.2e}"
    )
    assert torch.equal(inputs["pixel_values"][0], pixels)  # the same image in
    assert logit_error <= TOLERANCE and box_error <= TOLERANCE
    assert expected["pred_logits"].abs().max() > 1
