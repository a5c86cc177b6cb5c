"""DenseSegmenter vs the official TagAlign outputs (tagalign-tiny), main and dev settings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from data_paths import FIXTURES
from PIL import Image

from tag2text_zoo.engines.dense import (
    MAIN_SETTINGS,
    VOC_SETTINGS,
    DenseSegmenter,
    load_dense_segmenter,
)
from tag2text_zoo.engines.dense_windows import normalise, resize_keep_ratio
from tag2text_zoo.engines.search import SearchEmbedder

TINY = FIXTURES / "tagalign-tiny"
pytestmark = pytest.mark.usefixtures("one_torch_thread")
SETTINGS = {"main": (MAIN_SETTINGS, "tagalign.pth"), "dev": (VOC_SETTINGS, "tagalign_devkeys.pth")}
# dev windows: panorama 30, field 4 -- the rest keep the test short on 2 shared cores
IMAGES = {
    "main": [
        "street_500x375",
        "indoor_300x448",
        "field_640x480",
        "square_200x200",
        "panorama_480x100",
    ],
    "dev": ["street_500x375", "indoor_300x448", "square_200x200"],
}


@pytest.fixture(scope="module")
def npz():
    return np.load(TINY / "expected.npz")


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((TINY / "expected.json").read_text())


@pytest.fixture(scope="module", params=["main", "dev"])
def run(request) -> tuple[str, DenseSegmenter, dict]:
    settings, checkpoint = SETTINGS[request.param]
    seg = load_dense_segmenter(TINY / "clip", TINY / checkpoint, device="cpu", settings=settings)
    classes = json.loads((TINY / "classes.json").read_text())
    stems = IMAGES[request.param]
    results = seg.predict(
        [TINY / f"images/{s}.png" for s in stems], [classes[f"{s}.png"] for s in stems]
    )
    return request.param, seg, dict(zip(stems, results))


def _decoded_scores(npz, key: str) -> np.ndarray:
    q = np.cumsum(npz[key].astype(np.int64), axis=-1) % 65536
    return q / 65535


def test_text_embeddings(run, npz, expected):
    _, seg, results = run
    for stem, result in results.items():
        assert result.classes == expected["images"][f"{stem}.png"]["classes"]
        text = seg.encode_texts(result.classes).cpu().numpy()
        np.testing.assert_allclose(text, npz[f"{stem}/text_emb"], atol=1e-5, rtol=0)


def test_crop_masks(run, npz):
    name, seg, results = run
    for stem, result in results.items():
        rgb = resize_keep_ratio(np.asarray(Image.open(TINY / f"images/{stem}.png").convert("RGB")))
        np.testing.assert_array_equal(rgb, npz[f"{stem}/resized_rgb"])
        pixels = normalise(rgb)
        boxes = npz[f"{stem}/{name}/crop_boxes"]
        crops = torch.stack([pixels[:, y1:y2, x1:x2] for y1, y2, x1, x2 in boxes[:4]])
        maps = seg.crop_maps(crops, seg.encode_texts(result.classes))
        np.testing.assert_allclose(
            maps.numpy(), npz[f"{stem}/{name}/crop_masks"][:4], atol=2e-5, rtol=0
        )


def test_scores_and_labels(run, npz):
    name, seg, results = run
    for stem, result in results.items():
        scores = _decoded_scores(npz, f"{stem}/{name}/scores_u16d")
        assert result.scores.shape == scores.shape
        np.testing.assert_allclose(result.scores, scores, atol=3e-5, rtol=0)
        # labels exact except where the reference's own top-2 margin is below 1e-4
        full = np.concatenate([np.full((1, *scores.shape[1:]), seg.settings.bg_thresh), scores])
        top2 = np.sort(full, axis=0)[-2:]
        near_tie = top2[1] - top2[0] < 1e-4
        differ = result.labels != npz[f"{stem}/{name}/labels"]
        assert not np.any(differ & ~near_tie), f"{stem}/{name}"
        assert differ.sum() <= 2


def test_training_free_mode_uses_clip_branch_only(npz):
    seg = load_dense_segmenter(TINY / "clip", None, device="cpu")
    rgb = npz["square_200x200/resized_rgb"]
    text = seg.encode_texts(["cat", "sofa"])
    maps = seg.crop_maps(normalise(rgb)[None], text)
    clip = npz["debug/square_200x200/main/clip_branch_out"]
    clip = clip / np.linalg.norm(clip, axis=0, keepdims=True)
    t = text.numpy() / np.linalg.norm(text.numpy(), axis=1, keepdims=True)
    expected = 1 / (1 + np.exp(-(10 * np.einsum("chw,kc->khw", clip, t) - 2.5)))
    np.testing.assert_allclose(maps[0].numpy(), expected, atol=2e-5, rtol=0)


def test_shared_class_list_empty_list_and_batch_independence():
    seg = load_dense_segmenter(TINY / "clip", TINY / "tagalign.pth", device="cpu")
    paths = [TINY / "images/square_200x200.png", TINY / "images/street_500x375.png"]
    both = seg.predict(paths, ["cat", "sofa", "cat"])
    assert [r.classes for r in both] == [["cat", "sofa"]] * 2
    alone = seg.predict(paths[1:], [["cat", "sofa"]])[0]
    np.testing.assert_allclose(both[1].scores, alone.scores, atol=1e-6)
    empty = seg.predict(paths[:1], [[]])[0]
    assert empty.scores.shape == (0, 200, 200) and not empty.labels.any()
    with pytest.raises(ValueError, match="2 class lists for 1 images"):
        seg.predict(paths[:1], [["cat"], ["dog"]])


def test_bfloat16_casts_image_weights_once_with_autocasts_results():
    """A bfloat16 segmenter casts its image-side weights once; float32 weights cast by autocast
    on every call must give bit-identical maps. The text tower stays float32: it also embeds
    outside autocast (text search)."""
    paths = [TINY / "images/street_500x375.png", TINY / "images/indoor_300x448.png"]
    classes = ["cat", "sofa", "tree"]
    precast = load_dense_segmenter(
        TINY / "clip", TINY / "tagalign.pth", device="cpu", dtype="bfloat16"
    )
    per_call = load_dense_segmenter(TINY / "clip", TINY / "tagalign.pth", device="cpu")
    per_call.autocast_dtype = torch.bfloat16  # float32 weights, cast by autocast per call
    assert precast.clip.visual_projection.weight.dtype == torch.bfloat16
    assert precast.projector is not None
    assert {p.dtype for p in precast.projector.parameters()} >= {torch.bfloat16}
    assert next(precast.clip.text_model.parameters()).dtype == torch.float32
    for ours, theirs in zip(precast.predict(paths, classes), per_call.predict(paths, classes)):
        np.testing.assert_array_equal(ours.scores, theirs.scores)
        np.testing.assert_array_equal(ours.labels, theirs.labels)
    text = SearchEmbedder.from_dense(precast).embed_texts(["a cat"])
    np.testing.assert_allclose(text, SearchEmbedder.from_dense(per_call).embed_texts(["a cat"]))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype, worst, agree", [("float32", 0.01, 0.99), ("bfloat16", 0.1, 0.95)])
def test_the_gpu_follows_the_cpu(dtype, worst, agree):
    """On a GPU the maps are the CPU's float32 ones up to rounding (TF32 convolutions in float32;
    bfloat16 on the CPU is within 0.05 of float32 on this tiny model, median 0.003), on the
    CPU again, in float32, at the images' sizes."""
    paths = [TINY / "images/street_500x375.png", TINY / "images/indoor_300x448.png"]
    classes = ["cat", "sofa", "tree"]
    cpu = load_dense_segmenter(TINY / "clip", TINY / "tagalign.pth", device="cpu")
    gpu = load_dense_segmenter(TINY / "clip", TINY / "tagalign.pth", device="cuda", dtype=dtype)
    for ours, ref in zip(gpu.predict(paths, classes), cpu.predict(paths, classes), strict=True):
        assert isinstance(ours.scores, np.ndarray) and ours.scores.dtype == np.float32
        assert ours.scores.shape == ref.scores.shape and ours.labels.shape == ref.labels.shape
        diff = np.abs(ours.scores - ref.scores)
        assert diff.max() < worst and np.median(diff) < 0.01
        assert (ours.labels == ref.labels).mean() >= agree
