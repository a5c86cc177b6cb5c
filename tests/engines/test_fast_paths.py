"""The CPU fast paths against the reference: bfloat16 (autocast, AMX where the CPU has it) gives the
reference's tags on every tag whose probability is not within 0.02 of its threshold, int8 (int8
linear layers) on every tag not within 0.15 (the tiny random models amplify its error: their
probabilities move by up to 0.16, the full-size Tag2Text's by 0.012 in bench_tagger.py), and
captions decoded with the static key/value cache, several images streaming through fewer decoder
slots, are the reference's token for token (float32)."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch
from data_paths import FIXTURES

from tag2text_zoo import load_tagger
from tag2text_zoo.engines import onednn_linear

MARGINS = {"bfloat16": 0.02, "int8": 0.15}  # how close to its threshold a tag may flip


def _images(folder) -> list:
    expected = json.loads((folder / "expected.json").read_text())["images"]
    return [folder / im["file"] for im in expected]


def _clear_of_threshold(logits: np.ndarray, thresholds: np.ndarray, margin: float) -> np.ndarray:
    """Per class, whether the reference probability is further than ``margin`` from its
    threshold."""
    return np.abs(1 / (1 + np.exp(-logits)) - thresholds) > margin


@pytest.mark.parametrize("dtype", list(MARGINS))
@pytest.mark.parametrize("fixture", ["tag2text-tiny", "ram-tiny", "ram-plus-tiny"])
def test_fast_dtypes_tag_like_the_reference_away_from_thresholds(fixture, dtype, one_torch_thread):
    folder = FIXTURES / fixture
    expected = json.loads((folder / "expected.json").read_text())["images"]
    logits = np.load(folder / "expected.npz")["tag_logits"]
    images = [folder / im["file"] for im in expected]
    fast = load_tagger(folder, device="cpu", dtype=dtype, exif_transpose=False)
    thresholds = fast.thresholds.cpu().numpy()
    flips = 0
    for i, result in enumerate(fast.predict(images, caption=False)):
        clear = _clear_of_threshold(logits[i], thresholds, MARGINS[dtype])
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


@pytest.mark.parametrize("fixture", ["tag2text-tiny", "ram-plus-tiny"])
def test_precast_weights_give_exactly_what_autocast_gives(fixture, one_torch_thread, monkeypatch):
    """A bfloat16 tagger casts its linear weights once; a float32 tagger run under the same
    autocast casts them on every call: tag probabilities and captions must be bit-identical
    (with autocast's own products: oneDNN's bfloat16 ones are checked in test_onednn_linear.py
    and, for tags and captions, against float32 above)."""
    folder = FIXTURES / fixture
    images = _images(folder)[:3]
    monkeypatch.setattr(onednn_linear, "onednn_linear_works", lambda dtype: dtype != torch.bfloat16)
    precast = load_tagger(folder, device="cpu", dtype="bfloat16", exif_transpose=False)
    per_call = load_tagger(folder, device="cpu", exif_transpose=False)
    per_call.autocast_dtype = torch.bfloat16  # float32 weights, cast by autocast per call
    linear = precast.model.visual_encoder.layers[0].blocks[0].mlp.fc1
    assert linear.weight.dtype == torch.bfloat16
    assert next(per_call.model.parameters()).dtype == torch.float32
    pixels = torch.stack([precast.preprocess(p) for p in images])
    torch.testing.assert_close(
        precast.tag_probabilities(pixels), per_call.tag_probabilities(pixels), rtol=0, atol=0
    )
    if precast.can_caption:
        ours, theirs = precast.predict_tensors(pixels), per_call.predict_tensors(pixels)
        assert [r.caption_token_ids for r in ours] == [r.caption_token_ids for r in theirs]
        embeddings = precast.model.text_decoder.bert.embeddings.word_embeddings
        assert embeddings.weight.dtype == torch.float32  # its tied LM head got its own copy


@pytest.mark.parametrize("fixture", ["tag2text-tiny", "ram-tiny", "ram-plus-tiny"])
def test_tagging_head_in_label_chunks_equals_all_labels_at_once(fixture, one_torch_thread):
    """Labels do not attend to each other, so any chunking of them gives the same logits."""
    folder = FIXTURES / fixture
    tagger = load_tagger(folder, device="cpu", dtype="float64", exif_transpose=False)
    model, head = tagger.model, tagger.model.tagging_head
    pixels = torch.stack([tagger.preprocess(p) for p in _images(folder)[:3]])
    with torch.inference_mode():
        embeds = model.encode_image(pixels.double())
        whole = model.tag_logits(embeds)
        forward = head.forward
        for rows in (7, 3 * 5, 10**6):  # chunks that do not divide the labels, and one chunk
            head.forward = functools.partial(forward, rows_per_chunk=rows)
            torch.testing.assert_close(model.tag_logits(embeds), whole, rtol=0, atol=1e-12)
    assert whole.shape == (3, len(tagger.tag_names))


def test_cpu_encoder_passes_take_at_most_four_images(tag2text_dir, one_torch_thread):
    """Larger CPU passes are slower per image (bench_tagger.py's sweep); results do not change."""
    tagger = load_tagger(tag2text_dir, device="cpu", exif_transpose=False, batch_size=16)
    size = tagger.config.image_size
    pixels = torch.randn(9, 3, size, size, generator=torch.Generator().manual_seed(0))
    passes = []
    encode_image = tagger.model.encode_image
    tagger.model.encode_image = lambda x: passes.append(len(x)) or encode_image(x)
    probs = tagger.tag_probabilities(pixels)
    assert passes == [4, 4, 1]
    tagger.batch_size = 1
    torch.testing.assert_close(tagger.tag_probabilities(pixels), probs)


def test_compiled_encoder_gives_the_eager_tags(tag2text_dir, one_torch_thread):
    """``compile_encoder=True`` runs Swin through torch.compile and gives what the eager encoder
    gives (one batch size: each compilation takes half a minute here)."""
    counters = torch._dynamo.utils.counters
    torch._dynamo.reset()
    counters.clear()
    eager = load_tagger(tag2text_dir, device="cpu", exif_transpose=False, batch_size=3)
    compiled = load_tagger(
        tag2text_dir, device="cpu", exif_transpose=False, batch_size=3, compile_encoder=True
    )
    size = eager.config.image_size
    pixels = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        compiled.tag_probabilities(pixels), eager.tag_probabilities(pixels), rtol=0, atol=1e-5
    )
    assert counters["stats"]["unique_graphs"] >= 1, "the encoder was not compiled"
    ours, reference = compiled.predict_tensors(pixels), eager.predict_tensors(pixels)
    assert [r.tag_indices for r in ours] == [r.tag_indices for r in reference]
    assert [r.caption for r in ours] == [r.caption for r in reference]
