"""Stage-by-stage parity of RAM and RAM++ with the reference (golden fixture tensors)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tag2text_zoo.models import ModelConfig, build_model, load_checkpoint
from tag2text_zoo.models.swin import swin_tokens

# float64: same maths up to kernel order; float32: ~10x the reference's own f32-vs-f64 spread.
_TOLERANCES = {"float64": (torch.float64, "", 1e-9), "float32": (torch.float32, "_f32", 1e-4)}


@pytest.fixture(scope="module")
def loaded(ram_family_dir):
    model = build_model(ModelConfig.from_file(ram_family_dir / "config.json"))
    load_checkpoint(model, ram_family_dir / "model.pth", write_cache=False)
    return model.eval(), np.load(ram_family_dir / "expected.npz")


@pytest.mark.parametrize("precision", sorted(_TOLERANCES))
@torch.inference_mode()
def test_stages_match_reference(loaded, precision):
    model, npz = loaded
    dtype, suffix, tol = _TOLERANCES[precision]
    model = model.to(dtype)
    pixels = torch.from_numpy(npz["pixel_values"]).to(dtype)
    visual = swin_tokens(model.visual_encoder, pixels)
    np.testing.assert_allclose(visual.numpy(), npz["visual_embeds" + suffix], atol=tol, rtol=0)
    image_embeds = model.encode_image(pixels)
    logits = model.tag_logits(image_embeds)
    np.testing.assert_allclose(logits.numpy(), npz["tag_logits" + suffix], atol=tol, rtol=0)
    # Intermediate tensors are stored for the float64 run only.
    ref_tol = tol if precision == "float64" else 1e-4
    np.testing.assert_allclose(image_embeds.numpy(), npz["image_embeds"], atol=ref_tol, rtol=0)
    queries = model.label_queries(image_embeds)
    np.testing.assert_allclose(queries.numpy(), npz["label_queries"], atol=ref_tol, rtol=0)
    if "description_weights" in npz:
        weights = model.description_weights(image_embeds, model.default_label_embeddings())
        expected = npz["description_weights"]
        np.testing.assert_allclose(weights.numpy(), expected, atol=ref_tol, rtol=0)


@torch.inference_mode()
def test_batch_equals_single(loaded):
    model, npz = loaded
    model = model.float()
    pixels = torch.from_numpy(npz["pixel_values"])
    batch = model.tag_logits(model.encode_image(pixels))
    for i in range(len(pixels)):
        single = model.tag_logits(model.encode_image(pixels[i : i + 1]))
        torch.testing.assert_close(single[0], batch[i], atol=1e-5, rtol=0)


@torch.inference_mode()
def test_ram_plus_padding_mask_ignores_padded_descriptions(tag2text_dir):
    """A class padded with extra (masked) descriptions scores as if they were absent."""
    cfg = ModelConfig.from_file(tag2text_dir.parent / "ram-plus-tiny" / "config.json")
    assert cfg.model_type == "ram_plus"
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    with torch.no_grad():
        model.label_embed.normal_()
    image_embeds = torch.randn(2, 145, 512)
    embed = model.default_label_embeddings()[:3]
    padded = torch.cat([embed, 100 * torch.randn(3, 4, 512)], dim=1)
    mask = torch.ones(3, padded.shape[1], dtype=torch.bool)
    mask[:, embed.shape[1] :] = False
    expected = model.tag_logits(image_embeds, embed)
    torch.testing.assert_close(model.tag_logits(image_embeds, padded, mask), expected)
    assert not torch.allclose(model.tag_logits(image_embeds, padded), expected)
