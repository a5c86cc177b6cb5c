"""SAM, SAM-HQ and SAM 2 behind the grounded segmenter, on tiny random models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from tiny_grounded import save_tiny_grounding_dino, save_tiny_sam, save_tiny_sam2, save_tiny_sam_hq
from transformers import BertConfig, Sam2Model, SamHQModel, SamModel

from tag2text_zoo.engines.grounded import load_grounded_segmenter
from tag2text_zoo.engines.sam_family import (
    Sam2Adapter,
    SamAdapter,
    SamHQAdapter,
    load_sam,
    sam_adapter,
)

FAMILIES = {
    "sam": (save_tiny_sam, SamModel, SamAdapter),
    "sam_hq": (save_tiny_sam_hq, SamHQModel, SamHQAdapter),
    "sam2": (save_tiny_sam2, Sam2Model, Sam2Adapter),
}


@pytest.fixture(scope="module")
def gdino_dir(tmp_path_factory, reference_dir):
    root = tmp_path_factory.mktemp("gdino")
    return save_tiny_grounding_dino(root / "gdino", reference_dir / "bert-base-uncased-vocab.txt")


@pytest.fixture(scope="module", params=list(FAMILIES))
def sam_dir(request, tmp_path_factory):
    save = FAMILIES[request.param][0]
    return request.param, save(tmp_path_factory.mktemp(request.param) / "segmenter")


def _image(seed: int, size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def test_family_read_from_model_type(gdino_dir, sam_dir):
    family, folder = sam_dir
    segmenter = load_grounded_segmenter(gdino_dir, folder, device="cpu")
    assert segmenter.segmenter.config.model_type == family
    assert type(segmenter.segmenter) is FAMILIES[family][1]
    assert type(segmenter.sam) is FAMILIES[family][2]


@torch.inference_mode()
def test_adapter_matches_the_processors_one_shot_path(sam_dir):
    # Cached embeddings + our box frame + our mask resizing == transformers' documented usage
    # (processor scales the boxes, model runs on pixels, processor post-processes the masks).
    family, folder = sam_dir
    model, processor = load_sam(folder)
    adapter = sam_adapter(model.eval(), processor)
    images = [_image(0, (80, 60)), _image(1, (40, 50))]
    boxes = torch.tensor([[2.0, 3.0, 30.0, 40.0], [10.0, 5.0, 38.0, 20.0]])
    enc = adapter.preprocess(images)
    pred_masks, ious = adapter.decode(adapter.embed(enc["pixel_values"]), 1, boxes, enc)
    masks = adapter.masks(pred_masks, enc, 1)

    inputs = processor(images=images[1], input_boxes=[boxes.tolist()], return_tensors="pt")
    # The same pixels: SAM 2's adapter resizes unrounded pixels (test_sam2_resizes_like_sam2).
    inputs["pixel_values"] = adapter.preprocess([images[1]])["pixel_values"]
    out = model(**inputs, multimask_output=False)
    # SAM and SAM-HQ also take the resized size; SAM 2's processor (4.x still returns it) does not
    sizes = [inputs["original_sizes"]] + (
        [] if family == "sam2" else [inputs["reshaped_input_sizes"]]
    )
    expected = processor.post_process_masks(out.pred_masks, *sizes)[0][:, 0]
    torch.testing.assert_close(ious, out.iou_scores[0, :, 0], atol=1e-5, rtol=1e-4)
    assert masks.shape == (2, 50, 40) and masks.dtype == torch.bool
    assert torch.count_nonzero(masks != expected) <= 1e-3 * masks.numel()


@pytest.mark.parametrize("family", ["sam_hq", "sam2"])
def test_batch_equals_each_image_alone(gdino_dir, tmp_path, family):
    folder = FAMILIES[family][0](tmp_path / family)
    segmenter = load_grounded_segmenter(
        gdino_dir, folder, device="cpu", box_threshold=0.0, text_threshold=0.0, batch_size=3
    )
    sizes = [(80, 60), (40, 50), (80, 60), (80, 60)]
    images = [_image(i, size) for i, size in enumerate(sizes)]
    tags = [["cat", "dog"], ["a red car", "tree"], [], ["sky", "cat"]]
    batched = segmenter.segment(images, tags)
    for image, got in zip(images, batched, strict=True):
        assert got.masks.shape == (len(got.labels), image.height, image.width)
        assert got.masks.dtype == bool
        assert got.iou_predictions.shape == (len(got.labels),)
        assert np.isfinite(got.iou_predictions).all()
    for image, image_tags, got in zip(images, tags, batched, strict=True):
        (alone,) = segmenter.segment([image], [image_tags])
        assert got.labels == alone.labels
        np.testing.assert_allclose(got.boxes, alone.boxes, atol=1e-4)
        np.testing.assert_allclose(got.iou_predictions, alone.iou_predictions, atol=1e-4)
        assert np.count_nonzero(got.masks != alone.masks) <= 1e-3 * got.masks.size
    assert len(batched[0].labels) > 0 and batched[2].labels == []
    assert batched[0].masks.any()


def test_unsupported_model_type_is_named(tmp_path):
    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="unsupported segmenter model_type 'bert'.*sam_hq"):
        load_sam(tmp_path)


def test_sam2_resizes_like_sam2(tmp_path):
    # sam2's SAM2Transforms: ToTensor (pixels / 255), Resize to the square, Normalize; no
    # rounding to uint8 after the resize, which transformers' processor would do on a PIL image.
    model, processor = load_sam(save_tiny_sam2(tmp_path / "sam2"))
    image = _image(3, (80, 50))
    pixels = sam_adapter(model, processor).preprocess([image])["pixel_values"]
    floats = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255
    resized = torchvision.transforms.functional.resize(floats, [64, 64])
    expected = torchvision.transforms.functional.normalize(
        resized, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    )
    torch.testing.assert_close(pixels[0], expected, atol=1e-6, rtol=0)


@torch.inference_mode()
def test_sam_hq_decoder_upscales_its_transformer_output(tmp_path):
    model, processor = load_sam(save_tiny_sam_hq(tmp_path / "hq"))
    adapter = sam_adapter(model.eval(), processor)
    seen = {}
    decoder = model.mask_decoder
    decoder.transformer.register_forward_hook(lambda m, i, out: seen.update(keys=out[1]))
    decoder.upscale_conv1.register_forward_hook(lambda m, i, out: seen.update(upscaled=i[0]))
    enc = adapter.preprocess([_image(4, (80, 60))])
    boxes = torch.tensor([[2.0, 3.0, 30.0, 40.0], [10.0, 5.0, 70.0, 45.0]])
    adapter.decode(adapter.embed(enc["pixel_values"]), 0, boxes, enc)
    rows, channels, height, width = seen["upscaled"].shape
    # segment-anything-hq: src = transformer output keys [B*N, HW, C] -> [B*N, C, H, W]
    keys = seen["keys"].reshape(rows, height * width, channels)
    expected = keys.transpose(1, 2).reshape(rows, channels, height, width)
    torch.testing.assert_close(seen["upscaled"], expected)
    sam_adapter(model, processor)  # a second adapter on the same model changes nothing more
    assert getattr(decoder.transformer, "_upscales_output", False)
