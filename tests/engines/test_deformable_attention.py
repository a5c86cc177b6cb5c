"""The gathered deformable attention against transformers' grid_sample one."""

from __future__ import annotations

import pytest
import torch
from tiny_grounded import tiny_grounding_dino_config
from transformers import GroundingDinoForObjectDetection
from transformers.models.grounding_dino.modeling_grounding_dino import (
    MultiScaleDeformableAttention,
)

from tag2text_zoo.engines.deformable_attention import (
    GatherDeformableAttention,
    use_gather_deformable_attention,
)

SHAPES = [(7, 9), (4, 5), (2, 3)]


def _inputs(batch=2, queries=11, heads=2, head_dim=4, points=3, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    tokens = sum(h * w for h, w in SHAPES)
    levels = len(SHAPES)
    value = torch.randn(batch, tokens, heads, head_dim, generator=generator, dtype=dtype)
    # Locations from -0.3 to 1.3: corners off the map (zero padding) on every side.
    shape = (batch, queries, heads, levels, points, 2)
    locations = torch.rand(shape, generator=generator, dtype=dtype) * 1.6 - 0.3
    logits = torch.randn(batch, queries, heads, levels * points, generator=generator, dtype=dtype)
    weights = logits.softmax(-1).view(batch, queries, heads, levels, points)
    spatial = torch.tensor(SHAPES)
    starts = torch.cat([spatial.new_zeros(1), spatial.prod(1).cumsum(0)[:-1]])
    return value, spatial, SHAPES, starts, locations, weights, 64


def test_matches_grid_sample_in_float64():
    args = _inputs()
    expected = MultiScaleDeformableAttention()(*args)
    out = GatherDeformableAttention()(*args)
    assert out.shape == expected.shape == (2, 11, 8)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


def test_points_on_and_beyond_the_edges_read_zeros_beyond():
    value, spatial, shapes, starts, locations, weights, step = _inputs(seed=1)
    # exactly on the borders, far outside, and the last pixel centre of each level
    locations[0, 0] = 0.0
    locations[0, 1] = 1.0
    locations[0, 2] = 7.5
    locations[0, 3] = -4.0
    args = (value, spatial, shapes, starts, locations, weights, step)
    expected = MultiScaleDeformableAttention()(*args)
    out = GatherDeformableAttention()(*args)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    assert out[0, 2:4].abs().max() == 0  # every corner off the map


def test_non_finite_locations_give_nan_as_grid_sample():
    value, spatial, shapes, starts, locations, weights, step = _inputs(dtype=torch.float32)
    locations[1, 4, 0, 0, 0, 0] = float("nan")
    locations[1, 5, 1, 2, 1, 1] = float("inf")
    locations[1, 6, 0, 1, 0, 0] = -float("inf")
    args = (value, spatial, shapes, starts, locations, weights, step)
    expected = MultiScaleDeformableAttention()(*args)
    out = GatherDeformableAttention()(*args)
    assert torch.equal(out.isnan(), expected.isnan())
    assert out.isnan().any(-1).nonzero().tolist() == [[1, 4], [1, 5], [1, 6]]
    finite = ~expected.isnan()
    torch.testing.assert_close(out[finite], expected[finite], rtol=1e-5, atol=1e-5)


def test_reduced_precision_values_are_sampled_in_float32():
    value, spatial, shapes, starts, locations, weights, step = _inputs(dtype=torch.float32)
    rest = (spatial, shapes, starts, locations, weights, step)
    expected = GatherDeformableAttention()(value.bfloat16().float(), *rest)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as grid_sample: float32 in and out
        reference = MultiScaleDeformableAttention()(value.bfloat16(), *rest)
        out = GatherDeformableAttention()(value.bfloat16(), *rest)
    assert out.dtype == reference.dtype == torch.float32
    torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out, expected.float(), rtol=1e-5, atol=1e-6)
    # without autocast (a bfloat16 model): bfloat16 out, only the output's rounding
    bf16 = (value.bfloat16(), spatial, shapes, starts, locations.bfloat16(), weights.bfloat16())
    out = GatherDeformableAttention()(*bf16, step)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(
        out, MultiScaleDeformableAttention()(*bf16, step), rtol=0.05, atol=0.02
    )


def _tiny_detector() -> GroundingDinoForObjectDetection:
    torch.manual_seed(0)
    config = tiny_grounding_dino_config(levels=4, encoder_layers=2, points=(2, 3))
    return GroundingDinoForObjectDetection(config).eval()


# bfloat16: the encoder's states (a 1-ulp change there can reorder the queries the decoder picks).
@pytest.mark.parametrize(
    "dtype, outputs, tolerance",
    [
        (torch.float32, ("encoder_last_hidden_state_vision", "logits", "pred_boxes"), 1e-4),
        (torch.bfloat16, ("encoder_last_hidden_state_vision",), 5e-2),
    ],
)
def test_detector_outputs_unchanged(dtype, outputs, tolerance):
    detector = _tiny_detector()
    inputs = {
        "pixel_values": torch.randn(2, 3, 96, 72, generator=torch.Generator().manual_seed(1)),
        "input_ids": torch.tensor([[101, 3899, 1012, 4937, 1012, 102]] * 2),
    }
    autocast = torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32)
    with torch.inference_mode(), autocast:
        expected = detector(**inputs)
        assert use_gather_deformable_attention(detector) == 4  # 2 encoder + 2 decoder layers
        out = detector(**inputs)
    assert not any(isinstance(m, MultiScaleDeformableAttention) for m in detector.modules())
    for name in outputs:
        torch.testing.assert_close(out[name], expected[name], rtol=tolerance, atol=tolerance)
