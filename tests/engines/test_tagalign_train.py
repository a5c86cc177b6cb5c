"""TagAlign projector training on a constructed two-colour dataset with the tiny CLIP (CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_paths import FIXTURES
from PIL import Image
from transformers import CLIPModel, CLIPTokenizer

from tag2text_zoo.engines.dense import DenseSegmenter, DenseSettings
from tag2text_zoo.engines.tagalign_train import TrainConfig, TrainSample, train_projector
from tag2text_zoo.models.tagalign import TagAlignProjector, load_tagalign_projector

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CLIP = FIXTURES / "tagalign-tiny" / "clip"
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 40),
    "blue": (30, 40, 220),
    "yellow": (230, 220, 30),
}
SIZE = 112


def _halves(left: str, right: str, rng: np.random.Generator) -> Image.Image:
    img = np.zeros((SIZE, SIZE, 3), np.float32)
    img[:, : SIZE // 2] = COLOURS[left]
    img[:, SIZE // 2 :] = COLOURS[right]
    img += rng.normal(0, 20, img.shape)
    return Image.fromarray(img.clip(0, 255).astype(np.uint8))


def _dataset(n: int, rng: np.random.Generator) -> list[TrainSample]:
    samples = []
    for _ in range(n):
        left, right = rng.choice(list(COLOURS), 2, replace=False)
        samples.append(TrainSample(_halves(left, right, rng), f"{left} and {right}", [left, right]))
    return samples


def _pixel_accuracy(clip, tokenizer, projector: TagAlignProjector, rng) -> float:
    """Accuracy of the projector branch alone (CLIP weight 0) on held-out two-colour images."""
    seg = DenseSegmenter(
        clip, tokenizer, projector, device="cpu", settings=DenseSettings(clip_weight=0)
    )
    truth = np.zeros((SIZE, SIZE), np.int64)
    truth[:, SIZE // 2 :] = 1
    pairs = [("red", "blue"), ("green", "yellow"), ("blue", "green"), ("yellow", "red")]
    images = [_halves(a, b, rng) for a, b in pairs]
    results = seg.predict(images, [list(p) for p in pairs])
    return float(np.mean([(r.scores.argmax(0) == truth).mean() for r in results]))


def test_training_lowers_loss_and_improves_segmentation(tmp_path):
    rng = np.random.default_rng(0)
    clip, tokenizer = CLIPModel.from_pretrained(CLIP), CLIPTokenizer.from_pretrained(CLIP)
    config = TrainConfig(
        steps=80,
        batch_size=8,
        lr=1e-3,
        warmup_steps=5,
        image_size=SIZE,
        checkpoint_every=40,
        vocabulary=list(COLOURS),
    )
    result = train_projector(
        clip, tokenizer, _dataset(32, rng), tmp_path, config, device="cpu", progress=False
    )
    assert len(result.losses) == 80
    assert np.mean(result.losses[-5:]) < 0.6 * np.mean(result.losses[:5])

    checkpoint = torch.load(result.checkpoint, weights_only=True)
    assert checkpoint["step"] == 80 and (tmp_path / "checkpoint_40.pth").exists()
    assert checkpoint["model"]["label_embedding"].shape == (4, clip.config.projection_dim)
    untrained = TagAlignProjector.from_clip(clip.vision_model, clip.visual_projection)
    before = _pixel_accuracy(clip, tokenizer, untrained, np.random.default_rng(1))
    after = _pixel_accuracy(
        clip, tokenizer, load_tagalign_projector(result.checkpoint), np.random.default_rng(1)
    )
    print(f"pixel accuracy untrained {before:.3f} -> trained {after:.3f}")
    assert after > before + 0.2 and after > 0.8, (before, after)


def test_training_resumes_from_latest_checkpoint(tmp_path):
    rng = np.random.default_rng(2)
    clip, tokenizer = CLIPModel.from_pretrained(CLIP), CLIPTokenizer.from_pretrained(CLIP)
    samples = _dataset(8, rng)
    config = TrainConfig(
        steps=6,
        batch_size=4,
        warmup_steps=2,
        image_size=64,
        checkpoint_every=3,
        vocabulary=list(COLOURS),
    )
    first = train_projector(
        clip, tokenizer, samples, tmp_path, config, device="cpu", progress=False
    )
    saved = torch.load(first.checkpoint, weights_only=True)
    longer = TrainConfig(**{**config.__dict__, "steps": 9})
    second = train_projector(
        clip, tokenizer, samples, tmp_path, longer, device="cpu", progress=False
    )
    assert len(second.losses) == 3  # steps 7..9 only
    resumed = torch.load(second.checkpoint, weights_only=True)
    assert resumed["step"] == 9
    assert resumed["lr_scheduler"]["last_epoch"] == 9
    assert resumed["optimizer"]["state"][0]["step"] == saved["optimizer"]["state"][0]["step"] + 3
    other = TrainConfig(**{**config.__dict__, "steps": 12, "vocabulary": ["red"]})
    with pytest.raises(ValueError, match="another tag vocabulary"):
        train_projector(clip, tokenizer, samples, tmp_path, other, device="cpu", progress=False)
