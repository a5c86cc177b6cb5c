"""GroundedSegmenter: post-processing on controlled detector outputs; tiny models end to end."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_grounded import save_tiny_grounding_dino, save_tiny_sam
from torchvision.ops import box_iou
from transformers.models.grounding_dino.modeling_grounding_dino import (
    MultiScaleDeformableAttention,
)

from tag2text_zoo.engines import grounded
from tag2text_zoo.engines.deformable_attention import GatherDeformableAttention
from tag2text_zoo.engines.grounded import load_grounded_segmenter
from tag2text_zoo.engines.grounding_decode import Detections
from tag2text_zoo.engines.linear_swap import swap_modules

W, H = 80, 60


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, reference_dir):
    root = tmp_path_factory.mktemp("grounded")
    vocab = reference_dir / "bert-base-uncased-vocab.txt"
    return save_tiny_grounding_dino(root / "gdino", vocab), save_tiny_sam(root / "sam")


@pytest.fixture()
def segmenter(model_dirs):
    return load_grounded_segmenter(*model_dirs, device="cpu")


def _image(seed: int, size=(W, H)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


class FakeDetector:
    """Replaces the detector's forward: `queries(row_input_ids)` -> [(token probs, cxcywh box)]."""

    def __init__(self, queries):
        self.queries = queries
        self.calls = []

    def __call__(self, input_ids, **_):
        self.calls.append(input_ids.clone())
        logits = torch.full((len(input_ids), 5, 256), -float("inf"))
        boxes = torch.full((len(input_ids), 5, 4), 0.5)
        for row, ids in enumerate(input_ids):
            logits[row, :, : len(ids)] = -10.0
            for q, (probs, box) in enumerate(self.queries(ids.tolist())):
                for pos, p in probs.items():
                    logits[row, q, pos] = _logit(p)
                boxes[row, q] = torch.tensor(box)
        return SimpleNamespace(logits=logits, pred_boxes=boxes)


def test_thresholds_labels_and_pixel_boxes(segmenter, monkeypatch):
    # "cat, hot dog, dog." -> [CLS] cat , hot dog , dog . [SEP]
    queries = [
        ({1: 0.9}, (0.5, 0.5, 0.5, 0.5)),  # cat
        ({3: 0.3, 4: 0.6, 6: 0.5}, (0.2, 0.2, 0.2, 0.2)),  # hot dog (0.6 beats dog 0.5)
        ({6: 0.24}, (0.8, 0.8, 0.2, 0.2)),  # under the box threshold 0.25
        ({2: 0.9, 1: 0.19}, (0.8, 0.2, 0.2, 0.2)),  # box on the comma; cat under text 0.2
        ({7: 0.4, 6: 0.21}, (0.8, 0.8, 0.1, 0.1)),  # box on "."; dog at 0.21 passes
    ]
    fake = FakeDetector(lambda ids: queries)
    monkeypatch.setattr(segmenter.detector, "forward", fake)
    (result,) = segmenter.segment([_image(0)], [["cat", "hot dog", "dog"]])
    assert result.labels == ["cat", "hot dog", "dog"]
    np.testing.assert_allclose(result.scores, [0.9, 0.6, 0.4], rtol=1e-5)
    expected = [[20, 15, 60, 45], [8, 6, 24, 18], [60, 45, 68, 51]]  # cxcywh * (W, H) -> xyxy
    np.testing.assert_allclose(result.boxes, expected, atol=1e-4)
    assert result.masks.shape == (3, H, W) and result.masks.dtype == bool
    assert result.iou_predictions.shape == (3,)
    assert len(fake.calls) == 1


def test_class_agnostic_nms(segmenter, monkeypatch):
    queries = [
        ({1: 0.7}, (0.5, 0.5, 0.4, 0.4)),  # cat
        ({3: 0.8}, (0.51, 0.5, 0.4, 0.4)),  # dog, IoU ~0.95 with cat: cat goes
        ({1: 0.6}, (0.1, 0.1, 0.1, 0.1)),  # cat elsewhere: kept
    ]
    monkeypatch.setattr(segmenter.detector, "forward", FakeDetector(lambda ids: queries))
    (result,) = segmenter.segment([_image(0)], [["cat", "dog"]])
    assert result.labels == ["dog", "cat"]
    np.testing.assert_allclose(result.scores, [0.8, 0.6], rtol=1e-5)
    segmenter.nms_iou = 0.99
    (result,) = segmenter.segment([_image(0)], [["cat", "dog"]])
    assert result.labels == ["dog", "cat", "cat"]


def test_chunked_prompts_each_give_their_tags(segmenter, monkeypatch):
    tags = [f"thing {i}" for i in range(150)]
    chunks = segmenter.prompts(tags)
    assert len(chunks) == 2
    # each pass finds its first tag ("thing" "N": tokens 1-2), at a place of its own
    first_ids = [segmenter.detector_processor.tokenizer(c.text)["input_ids"][2] for c in chunks]
    places = {first_ids[0]: (0.2, 0.2, 0.2, 0.2), first_ids[1]: (0.8, 0.8, 0.2, 0.2)}
    fake = FakeDetector(lambda ids: [({2: 0.9}, places[ids[2]])])
    monkeypatch.setattr(segmenter.detector, "forward", fake)
    (result,) = segmenter.segment([_image(0)], [tags])
    assert sum(len(c) for c in fake.calls) == 2  # one pass per chunk (batched together)
    assert all(c.shape[1] <= 256 for c in fake.calls)
    assert sorted(result.labels) == sorted(c.tags[0] for c in chunks)


def test_empty_tags_skip_the_detector_and_no_boxes_skip_sam(segmenter, monkeypatch):
    fake = FakeDetector(lambda ids: [])  # every query under the thresholds
    monkeypatch.setattr(segmenter.detector, "forward", fake)
    sam_calls = []
    monkeypatch.setattr(segmenter.segmenter, "forward", lambda *a, **k: sam_calls.append(1))
    results = segmenter.segment([_image(0), _image(1, (30, 40))], [[], ["cat"]])
    assert len(fake.calls) == 1 and fake.calls[0].shape[0] == 1  # only the image with tags
    for result, size in zip(results, [(W, H), (30, 40)], strict=True):
        assert result.labels == [] and result.boxes.shape == (0, 4)
        assert result.masks.shape == (0, size[1], size[0]) and result.image_size == size
    assert sam_calls == []
    fake.calls.clear()
    assert segmenter.segment([_image(0)], [[" "]])[0].labels == []
    assert fake.calls == []


def test_batch_equals_each_image_alone(model_dirs, monkeypatch):
    monkeypatch.setattr(grounded, "_CPU_IMAGES_PER_PASS", 8)  # batches on the CPU too
    segmenter = load_grounded_segmenter(
        *model_dirs, device="cpu", box_threshold=0.0, text_threshold=0.0, batch_size=3
    )
    images = [_image(0), _image(1, (40, 50)), _image(2), _image(3)]
    tags = [["cat", "dog"], ["a red car", "tree"], [], ["sky", "cat", "Cat"]]
    batched = segmenter.segment(images, tags)
    for image, image_tags, got in zip(images, tags, batched, strict=True):
        (alone,) = segmenter.segment([image], [image_tags])
        assert got.labels == alone.labels
        assert set(got.labels) <= {t.lower() for t in image_tags}
        np.testing.assert_allclose(got.boxes, alone.boxes, atol=1e-4)
        np.testing.assert_allclose(got.iou_predictions, alone.iou_predictions, atol=1e-4)
        assert np.count_nonzero(got.masks != alone.masks) <= 1e-3 * got.masks.size
        assert got.masks.shape == (len(got.labels), image.height, image.width)
    assert len(batched[0].labels) > 0 and batched[2].labels == []


def test_bfloat16_on_the_cpu_follows_float32(model_dirs):
    """``dtype="bfloat16"`` (the README's fast CPU/GPU setting) runs both models under autocast
    and gives float32's detections up to rounding: the same boxes, float32 outputs. (The tiny
    random models' large activations make bfloat16's rounding show: scores move by up to 0.07
    with autocast's products, 0.11 with oneDNN's, which round once after the bias and the
    activation; on full-size random models both are 9.4% off float32 at the detector's encoder
    output, 0.8% at SAM's image embedding. Here "cat" and "dog" both score about 1.0 on many
    boxes, so rounding decides 5-16% of those boxes' labels, depending on the transformers
    version; a one-tag prompt's labels cannot move.)"""
    options = {"device": "cpu", "box_threshold": 0.0, "text_threshold": 0.0}
    full = load_grounded_segmenter(*model_dirs, **options)
    half = load_grounded_segmenter(*model_dirs, dtype="bfloat16", **options)
    images, tags = [_image(0), _image(2)], [["cat", "dog"], ["tree"]]
    _assert_follows(half.segment(images, tags), full.segment(images, tags))


def _assert_follows(results, float32_results) -> None:
    """``results`` are float32's detections up to rounding, for the two images and tag lists of
    the tests above: float32 outputs, float32's boxes found again, labels and scores close."""
    pairs = zip(results, float32_results, strict=True)
    for (ours, ref), least_agreeing in zip(pairs, (0.75, 1.0), strict=True):
        assert ours.boxes.dtype == ours.scores.dtype == ours.iou_predictions.dtype == np.float32
        assert ours.masks.dtype == bool and ours.masks.shape == ref.masks.shape
        best, where = box_iou(torch.as_tensor(ref.boxes), torch.as_tensor(ours.boxes)).max(1)
        found = (best >= 0.9).numpy()
        assert found.mean() >= 0.9  # float32's boxes, found again
        agree = [ref.labels[i] == ours.labels[j] for i, j in enumerate(where.tolist()) if found[i]]
        assert np.mean(agree) >= least_agreeing
        diff = np.abs(np.sort(ours.scores) - np.sort(ref.scores))
        assert diff.max() < 0.15 and np.median(diff) < 0.01


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_gpu_follows_the_cpu(model_dirs, dtype):
    """On a GPU: transformers' deformable attention kept, ``batch_size`` images per pass (both
    images in one), NMS on the device, and the CPU's float32 detections up to rounding."""
    options = {"box_threshold": 0.0, "text_threshold": 0.0, "batch_size": 2}
    cpu = load_grounded_segmenter(*model_dirs, device="cpu", **options)
    gpu = load_grounded_segmenter(*model_dirs, device="cuda", dtype=dtype, **options)
    modules = [type(m) for m in gpu.detector.modules()]
    assert MultiScaleDeformableAttention in modules and GatherDeformableAttention not in modules
    assert gpu.images_per_pass == 2
    images, tags = [_image(0), _image(2)], [["cat", "dog"], ["tree"]]
    _assert_follows(gpu.segment(images, tags), cpu.segment(images, tags))


def test_masks_follow_the_image_and_stage_methods_need_no_inference_mode(segmenter):
    """The same box on two different images gives different masks (the tiny SAM's encoder is
    initialised to see its input), and ``detect`` / ``segment_boxes`` work when called directly."""
    box = Detections(torch.tensor([[10.0, 10.0, 60.0, 50.0]]), torch.tensor([0.9]), ["cat"])
    first, second = segmenter.segment_boxes([_image(0), _image(1)], [box, box])
    assert first.masks.shape == second.masks.shape == (1, H, W)
    assert not np.array_equal(first.masks, second.masks)
    (found,) = segmenter.detect([_image(0)], [segmenter.prompts(["cat"])])
    assert found.boxes.shape[1] == 4 and not found.boxes.requires_grad


def test_the_cpu_runs_one_image_per_pass(model_dirs, monkeypatch):
    """Larger passes were slower per image on the CPU; on a GPU ``batch_size`` decides."""
    segmenter = load_grounded_segmenter(*model_dirs, device="cpu", batch_size=4)
    assert segmenter.images_per_pass == 1
    passes = []
    detector = segmenter.detector.forward
    monkeypatch.setattr(
        segmenter.detector,
        "forward",
        lambda **k: passes.append(len(k["pixel_values"])) or detector(**k),
    )
    segmenter.segment([_image(0), _image(1), _image(2)], [["cat"], ["dog"], ["tree"]])
    assert passes == [1, 1, 1]
    monkeypatch.setattr(segmenter, "device", torch.device("cuda"))  # nothing runs: the rule only
    assert segmenter.images_per_pass == 4


def test_the_cpu_detector_samples_by_gather_with_the_same_detections(model_dirs):
    """On the CPU the detector's deformable attention is the gathered one (transformers'
    grid_sample elsewhere); detections as with transformers' own, to float rounding."""
    options = {"device": "cpu", "box_threshold": 0.0, "text_threshold": 0.0}
    segmenter = load_grounded_segmenter(*model_dirs, **options)
    modules = [type(m) for m in segmenter.detector.modules()]
    assert GatherDeformableAttention in modules and MultiScaleDeformableAttention not in modules
    images, prompts = [_image(0), _image(2)], [segmenter.prompts(["cat", "dog"])] * 2
    ours = segmenter.detect(images, prompts)
    shipped = lambda *_: MultiScaleDeformableAttention()  # noqa: E731
    swap_modules(segmenter.detector, GatherDeformableAttention, shipped)  # transformers' sampling
    for got, expected in zip(ours, segmenter.detect(images, prompts), strict=True):
        assert got.tags == expected.tags and len(got.tags) > 0
        torch.testing.assert_close(got.boxes, expected.boxes, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(got.scores, expected.scores, rtol=1e-4, atol=1e-5)
