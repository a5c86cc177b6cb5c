"""The CPU fast paths against the reference: bfloat16 (autocast, AMX where the CPU has it) gives the
reference's tags on every tag whose probability is not within 0.02 of its threshold, and captions
decoded with the static key/value cache, several images streaming through fewer decoder slots,
are the reference's token for token (float32)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from data_paths import FIXTURES

from tag2text_zoo import load_tagger

MARGIN = 0.02  # bfloat16 may flip a tag only this close to its threshold


def _clear_of_threshold(logits: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per class, whether the reference probability is further than MARGIN from its threshold."""
    return np.abs(1 / (1 + np.exp(-logits)) - thresholds) > MARGIN


@pytest.mark.parametrize("fixture", ["tag2text-tiny", "ram-tiny", "ram-plus-tiny"])
def test_bfloat16_tags_match_the_reference_away_from_thresholds(fixture, one_torch_thread):
    folder = FIXTURES / fixture
    expected = json.loads((folder / "expected.json").read_text())["images"]
    logits = np.load(folder / "expected.npz")["tag_logits"]
    images = [folder / im["file"] for im in expected]
    bf16 = load_tagger(folder, device="cpu", dtype="bfloat16", exif_transpose=False)
    thresholds = bf16.thresholds.cpu().numpy()
    flips = 0
    for i, result in enumerate(bf16.predict(images, caption=False)):
        clear = _clear_of_threshold(logits[i], thresholds)
        ours, ref = np.zeros_like(clear), np.zeros_like(clear)
        ours[result.tag_indices], ref[expected[i]["tag_indices"]] = True, True
        np.testing.assert_array_equal(ours & clear, ref & clear)
        flips += int((ours != ref).sum())
        assert clear.mean() > 0.5, "most classes must be away from the threshold to test much"
    assert flips <= 0.01 * logits.size  # near-threshold flips are rare too


def test_static_cache_streams_captions_like_the_reference(
    tag2text_dir, tag2text_images, tag2text_expected, one_torch_thread
):
    """Two decoder slots for six images: images finish and others take their places mid-run."""
    tagger = load_tagger(tag2text_dir, device="cpu", exif_transpose=False, batch_size=2)
    results = tagger.predict(tag2text_images)
    for result, ref in zip(results, tag2text_expected["images"], strict=True):
        assert result.caption_token_ids == ref["caption_token_ids"]
        assert result.caption == ref["caption"]
