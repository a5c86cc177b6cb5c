"""The Tagger against the reference's strings and ids, and its options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tag2text_zoo import ImageLoadError, load_tagger

CUDA = pytest.param(
    "cuda",
    marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    ],
)


@pytest.fixture(scope="module")
def tagger(tag2text_dir):
    return load_tagger(tag2text_dir, device="cpu", exif_transpose=False, batch_size=6)


@pytest.fixture(scope="module")
def batch_results(tagger, tag2text_images):
    return tagger.predict(tag2text_images)


def test_tags_and_captions_match_reference(batch_results, tag2text_expected):
    for result, ref in zip(batch_results, tag2text_expected["images"], strict=True):
        assert result.tags == ref["tags"], ref["file"]
        assert result.tag_indices == ref["tag_indices"]
        assert result.tag_string == ref["tag_string"]
        assert result.caption_token_ids == ref["caption_token_ids"]
        assert result.caption == ref["caption"]


def test_scores_are_the_sigmoid_of_reference_logits(batch_results, tag2text_npz):
    for i, result in enumerate(batch_results):
        expected = 1 / (1 + np.exp(-tag2text_npz["tag_logits"][i][result.tag_indices]))
        np.testing.assert_allclose(result.scores, expected, atol=1e-5)


def test_user_tags_steer_captions_like_the_reference(tagger, tag2text_images, tag2text_expected):
    results = tagger.predict(tag2text_images, specified_tags=["cloud,sky"] * 6)
    for result, ref in zip(results, tag2text_expected["images"]):
        assert result.caption_token_ids == ref["user_caption_token_ids"], ref["file"]
        assert result.caption == ref["user_caption"]
        assert result.tags == ref["tags"]  # the model's own tags are still returned


def test_batch_equals_one_by_one(tag2text_dir, tag2text_images, batch_results):
    single = load_tagger(tag2text_dir, device="cpu", exif_transpose=False, batch_size=1)
    for image, batched in zip(tag2text_images, batch_results):
        (alone,) = single.predict([image])
        assert alone.tags == batched.tags
        assert alone.caption_token_ids == batched.caption_token_ids


def test_mixed_user_tags_per_image(tagger, tag2text_images, tag2text_expected):
    refs = tag2text_expected["images"]
    results = tagger.predict(tag2text_images[:3], specified_tags=[None, ["cloud", "sky"], ""])
    assert results[0].caption == refs[0]["caption"]
    assert results[1].caption == refs[1]["user_caption"]  # a list reads as "cloud | sky"
    assert results[2].caption == refs[2]["caption"]  # "" means: use the model's tags


def test_tags_only_skips_captions(tagger, tag2text_images, tag2text_expected):
    (result,) = tagger.predict(tag2text_images[:1], caption=False)
    assert result.caption is None and result.tags == tag2text_expected["images"][0]["tags"]


def test_threshold_options(tag2text_dir, tag2text_images, tag2text_expected, tag2text_npz):
    ref = tag2text_expected["images"][0]
    probs = 1 / (1 + np.exp(-tag2text_npz["tag_logits"][0]))
    lower = load_tagger(tag2text_dir, device="cpu", exif_transpose=False, threshold=0.6)
    (result,) = lower.predict(tag2text_images[:1], caption=False)
    expected = set(np.flatnonzero(probs > 0.6)) - {127, 2961, 3351, 3265, 3338, 3355, 3359}
    # person/man/woman keep their own 0.7 under a global override, as in the reference
    expected -= {i for i in (2701, 2828, 1167) if probs[i] <= 0.7}
    assert set(result.tag_indices) == expected
    strict = load_tagger(
        tag2text_dir, device="cpu", exif_transpose=False, tag_thresholds={"smile": 0.99}
    )
    (result,) = strict.predict(tag2text_images[:1], caption=False)
    assert "smile" not in result.tags
    assert [t for t in ref["tags"] if t != "smile"] == result.tags


def test_delete_list_is_configurable(tag2text_dir, tag2text_images, tag2text_expected):
    ref = tag2text_expected["images"][0]
    (deleted,) = ref["above_threshold_but_deleted"]
    keep_all = load_tagger(tag2text_dir, device="cpu", exif_transpose=False, delete_tags=[])
    (result,) = keep_all.predict(tag2text_images[:1], caption=False)
    assert deleted[0] in result.tag_indices and deleted[1] in result.tags
    drop = load_tagger(tag2text_dir, device="cpu", exif_transpose=False, delete_tags=["travel"])
    (result,) = drop.predict(tag2text_images[:1], caption=False)
    assert "travel" not in result.tags and deleted[1] in result.tags


def test_exif_orientation_flag(tag2text_dir, tag2text_expected, tag2text_npz):
    (index,) = [i for i, im in enumerate(tag2text_expected["images"]) if im["exif_orientation"]]
    path = tag2text_dir / tag2text_expected["images"][index]["file"]
    reference = load_tagger(tag2text_dir, device="cpu", exif_transpose=False)
    as_reference = reference.preprocess(path)
    np.testing.assert_array_equal(as_reference.numpy(), tag2text_npz["pixel_values"][index])
    upright = load_tagger(tag2text_dir, device="cpu").preprocess(path)
    assert not torch.equal(upright, as_reference)
    # Orientation 6 means "rotate 90 degrees clockwise to display": that image, resized.
    with Image.open(path) as raw:
        rotated = raw.convert("RGB").transpose(Image.Transpose.ROTATE_270)
    np.testing.assert_array_equal(upright.numpy(), reference.preprocess(rotated).numpy())


def test_bad_requests_are_clear_errors(tagger, tag2text_images, tmp_path):
    with pytest.raises(ValueError, match="one entry per image"):
        tagger.predict(tag2text_images[:2], specified_tags=["cloud"])
    with pytest.raises(ValueError, match="only steer captions"):
        tagger.predict(tag2text_images[:1], specified_tags=["cloud"], caption=False)
    with pytest.raises(ValueError, match="unknown tag"):
        load_tagger(tag2text_images[0].parents[1], tag_thresholds={"no-such-tag": 0.5})
    missing = tmp_path / "missing.jpg"
    with pytest.raises(ImageLoadError, match="missing.jpg"):
        tagger.predict([tag2text_images[0], missing])


def test_sampling_mode_produces_varied_valid_captions(tag2text_dir, tag2text_images):
    sampler = load_tagger(
        tag2text_dir, device="cpu", generation={"do_sample": True, "max_length": 20}
    )
    torch.manual_seed(0)
    first = sampler.predict(tag2text_images[:2])
    torch.manual_seed(1)
    second = sampler.predict(tag2text_images[:2])
    for r in first + second:
        ids = r.caption_token_ids
        assert ids[:4] == [30522, 1037, 3861, 1997] and 10 <= len(ids) <= 20
        assert 102 not in ids[:-1]  # nothing after EOS
    assert [r.caption for r in first] != [r.caption for r in second]


# The GPU test's assertions also run on the CPU, so that they are known to hold somewhere.
@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_matches_reference_on_each_device(
    device, tag2text_dir, tag2text_images, tag2text_expected, tag2text_npz, monkeypatch
):
    """float32 on the device reproduces the reference exactly; bf16 agrees on every tag whose
    probability is not within 0.02 of its threshold."""
    # cuDNN convolutions default to TF32 (a 10-bit mantissa); the fixture is IEEE float32.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    refs = tag2text_expected["images"]
    on_device = load_tagger(tag2text_dir, device=device, exif_transpose=False)
    for result, ref in zip(on_device.predict(tag2text_images), refs):
        assert result.tags == ref["tags"] and result.caption_token_ids == ref["caption_token_ids"]
    bf16 = load_tagger(tag2text_dir, device=device, dtype="bfloat16", exif_transpose=False)
    for i, result in enumerate(bf16.predict(tag2text_images, caption=False)):
        probs = 1 / (1 + np.exp(-tag2text_npz["tag_logits"][i]))
        clear = {c for c in range(len(probs)) if abs(probs[c] - 0.68) > 0.02}
        assert set(result.tag_indices) & clear == set(refs[i]["tag_indices"]) & clear


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_uint8_pixels_are_normalised_on_the_device_exactly(device, tag2text_dir, tag2text_images):
    """load_pixels (uint8; pinned on CUDA, as a GPU loader hands them on) gives the same logits,
    bit for bit, as preprocess's float32 pixels."""
    tagger = load_tagger(tag2text_dir, device=device, exif_transpose=False)
    small = torch.stack([tagger.load_pixels(p) for p in tag2text_images[:3]])
    assert small.dtype == torch.uint8 and small.shape == (3, 3, 384, 384)
    if device == "cuda":
        small = small.pin_memory()
    floats = torch.stack([tagger.preprocess(p) for p in tag2text_images[:3]])
    assert torch.equal(tagger._model_input(small), floats.to(device))
    assert torch.equal(tagger.tag_probabilities(small), tagger.tag_probabilities(floats))
    assert torch.equal(tagger.embed_tensors(small), tagger.embed_tensors(floats))


def test_images_load_in_threads_window_by_window_in_order(
    tag2text_dir, tag2text_images, batch_results, tmp_path
):
    """batch_size 1 reads windows of 4: 6 images take two windows, results keep their order, and
    of two unreadable files the first in order is the one named."""
    small = load_tagger(tag2text_dir, device="cpu", exif_transpose=False, batch_size=1)
    for alone, batched in zip(small.predict(tag2text_images), batch_results, strict=True):
        assert alone.tags == batched.tags and alone.caption == batched.caption
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(tag2text_images[0].read_bytes()[:100])
    images = [*tag2text_images[:5], broken, tmp_path / "missing.jpg"]
    with pytest.raises(ImageLoadError, match="broken.jpg"):
        small.predict(images, caption=False)
