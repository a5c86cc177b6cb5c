"""Stage-by-stage parity of the pure model with the reference (golden fixture tensors)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tag2text_zoo.models import ModelConfig, build_model, load_checkpoint


@pytest.fixture(scope="module", params=["float64", "float32"])
def model_and_tol(request, tag2text_dir):
    model = build_model(ModelConfig.from_file(tag2text_dir / "config.json"))
    load_checkpoint(model, tag2text_dir / "model.pth", write_cache=False)
    if request.param == "float64":
        # Same kernels, exact arithmetic order aside: the README allows ~1e-9 in float64.
        return model.double().eval(), torch.float64, "", 1e-9
    # float32: about 10x the reference's own float32-vs-float64 spread (README tolerances).
    return model.float().eval(), torch.float32, "_f32", 1e-4


@torch.inference_mode()
def test_stages_match_reference(model_and_tol, tag2text_npz):
    model, dtype, suffix, tol = model_and_tol
    npz = tag2text_npz
    pixels = torch.from_numpy(npz["pixel_values"]).to(dtype)
    visual = model.encode_image(pixels)
    np.testing.assert_allclose(visual.numpy(), npz["visual_embeds" + suffix], atol=tol, rtol=0)
    logits = model.tag_logits(visual)
    np.testing.assert_allclose(logits.numpy(), npz["tag_logits" + suffix], atol=tol, rtol=0)
    for prefix in ("", "user_"):
        ids = torch.from_numpy(npz[f"{prefix}tag_encoder_input_ids"])
        mask = torch.from_numpy(npz[f"{prefix}tag_encoder_attention_mask"])
        states = model.encode_tags(ids, mask, visual)
        expected = npz[f"{prefix}tag_encoder_states{suffix}"]
        np.testing.assert_allclose(states.numpy(), expected, atol=tol, rtol=0)
    # First decoding step on the model-tag path (float64 reference only).
    states = model.encode_tags(
        torch.from_numpy(npz["tag_encoder_input_ids"]),
        torch.from_numpy(npz["tag_encoder_attention_mask"]),
        visual,
    )
    prompt = torch.tensor([[30522, 1037, 3861, 1997]]).expand(len(pixels), -1)
    first = model.text_decoder(prompt, model.text_decoder.new_cache(states))
    np.testing.assert_allclose(
        first.double().numpy(),
        npz["decoder_first_step_logits"],
        atol=max(tol, 1e-4 if suffix else tol),
        rtol=0,
    )


@torch.inference_mode()
def test_cached_decoding_equals_full_recompute(model_and_tol, tag2text_npz):
    """The KV cache and per-image cross states give the same logits as recomputing everything."""
    model, dtype, _, tol = model_and_tol
    npz = tag2text_npz
    states = torch.from_numpy(npz["tag_encoder_states"]).to(dtype)[:2]
    seq = torch.tensor([[30522, 1037, 3861, 1997, 2000, 2001, 2002]] * 2)
    cache = model.text_decoder.new_cache(states)
    model.text_decoder(seq[:, :4], cache)
    for t in range(4, seq.shape[1]):
        stepped = model.text_decoder(seq[:, t : t + 1], cache)
    full = model.text_decoder(seq, model.text_decoder.new_cache(states))
    torch.testing.assert_close(stepped, full, atol=tol, rtol=0)
