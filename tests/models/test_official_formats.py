"""Official SAM / SAM-HQ / SAM 2 / Grounding DINO key maps at full size, against the official
models' key lists (tests/data/reference/official) and the transformers models built on meta."""

from __future__ import annotations

import re

import pytest
import torch
from official_files import key_list, random_state

from tag2text_zoo.assets.official import OFFICIAL_CHECKPOINTS
from tag2text_zoo.models.official_formats import convert, recognise, unwrap
from tag2text_zoo.models.official_sam2 import hiera_layout

# transformers >= 5 renames the Swin weights of the hub checkpoints (our map's target) when it
# loads them (its conversion_mapping "swin" / "SwinBackbone"); the model's own names are these.
_SWIN_V5 = [
    (r"conv_encoder\.model\.(embeddings|encoder)\.", r"conv_encoder.model.swin.\1."),
    (r"attention\.self\.(query|key|value)\.", lambda m: f"attention.{m[1][0]}_proj."),
    (r"attention\.self\.relative_", "attention.relative_position_bias.relative_"),
    (r"attention\.output\.dense\.", "attention.o_proj."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.output\.dense\.", ".mlp.fc2."),
]


def _model_names(mapped: dict[str, torch.Tensor], model_keys: set[str]) -> dict[str, tuple]:
    """``mapped`` under the names the installed transformers gives its model's weights."""
    v5_swin = any(".swin.encoder." in k for k in model_keys)
    out = {}
    for key, value in mapped.items():
        if v5_swin and ".conv_encoder." in key:
            if key.endswith("relative_position_index"):
                continue  # a non-persistent buffer in transformers >= 5
            for pattern, repl in _SWIN_V5:
                key = re.sub(pattern, repl, key)
        out[key] = tuple(value.shape)
    return out


# What the hub configs of the same models say (facebook/sam-vit-*, facebook/sam2.1-hiera-*,
# IDEA-Research/grounding-dino-*): attribute path -> value.
_VISION = "vision_config"
_HIERA = "vision_config.backbone_config"
_EXPECTED = {
    "sam-vit-b": {f"{_VISION}.hidden_size": 768, f"{_VISION}.global_attn_indexes": [2, 5, 8, 11]},
    "sam-vit-l": {f"{_VISION}.num_hidden_layers": 24, f"{_VISION}.num_attention_heads": 16},
    "sam-vit-h": {
        f"{_VISION}.hidden_size": 1280,
        f"{_VISION}.global_attn_indexes": [7, 15, 23, 31],
    },
    "sam-hq-vit-h": {f"{_VISION}.num_hidden_layers": 32, "mask_decoder_config.vit_dim": 1280},
    "sam2.1-hiera-tiny": {f"{_HIERA}.blocks_per_stage": [1, 2, 7, 2]},
    "sam2.1-hiera-small": {f"{_HIERA}.global_attention_blocks": [7, 10, 13]},
    "sam2.1-hiera-base-plus": {f"{_HIERA}.num_attention_heads_per_stage": [2, 4, 8, 16]},
    "sam2.1-hiera-large": {f"{_HIERA}.window_size_per_stage": [8, 4, 16, 8]},
    "groundingdino-swint-ogc": {
        "backbone_config.depths": [2, 2, 6, 2],
        "backbone_config.window_size": 7,
    },
    "groundingdino-swinb-cogcoor": {
        "backbone_config.num_heads": [4, 8, 16, 32],
        "backbone_config.window_size": 12,
    },
}


def _attribute(config, path: str):
    for name in path.split("."):
        config = getattr(config, name)
    return list(config) if isinstance(config, (list, tuple)) else config


@pytest.mark.parametrize("name", sorted(OFFICIAL_CHECKPOINTS))
def test_released_layouts_map_onto_transformers_exactly(name):
    state = {k: torch.empty(s, device="meta") for k, s in key_list(name).items()}
    fmt, config, mapped = convert(state)
    assert fmt.family == OFFICIAL_CHECKPOINTS[name].model_type
    for path, value in _EXPECTED[name].items():
        assert _attribute(config, path) == value, path
    with torch.device("meta"):
        model = fmt.model_class(config)
    expected = {
        k: tuple(v.shape) for k, v in model.state_dict().items() if ".swin.layernorm." not in k
    }
    assert _model_names(mapped, set(expected)) == expected


def test_sam2_video_weights_are_left_out():
    mapped = convert(random_state("tiny-sam2"))[2]
    assert not [
        k for k in mapped if k.startswith(("memory_", "obj_ptr", "maskmem", "mask_downsample"))
    ]
    assert mapped["no_memory_embedding"].shape == (1, 1, 16)  # the image path adds it


def test_fused_projections_split_in_query_key_value_order():
    state = random_state("tiny-grounding-dino")
    mapped = convert(state)[2]
    fused = state["transformer.decoder.layers.0.self_attn.in_proj_weight"]
    parts = [
        mapped[f"model.decoder.layers.0.self_attn.{n}.weight"] for n in ("query", "key", "value")
    ]
    torch.testing.assert_close(torch.cat(parts), fused, rtol=0, atol=0)


def test_unwrap_strips_wrappers_and_the_dataparallel_prefix():
    state = {"a.weight": torch.zeros(1), "b.bias": torch.zeros(2)}
    assert unwrap(state) == state
    wrapped = {"model": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}
    assert unwrap(wrapped).keys() == state.keys()


def test_other_checkpoints_are_not_recognised():
    with pytest.raises(
        ValueError, match="not an official SAM-HQ, SAM, SAM 2 or Grounding DINO.*visual_encoder"
    ):
        recognise({"visual_encoder.patch_embed.proj.weight": torch.zeros(1)})


def test_sam2_stages_of_no_official_model_need_their_layout_named():
    state = {k: v for k, v in random_state("tiny-sam2").items() if ".blocks.11." not in k}
    with pytest.raises(ValueError, match=r"blocks per stage \[1, 2, 7, 1\].*num_heads"):
        hiera_layout(state)
    layout = hiera_layout(state, num_heads=2, global_attention_blocks=(5,), image_size=64)
    assert layout.num_heads == 2 and layout.window_spec == (8, 4, 14, 7)
    with pytest.raises(ValueError, match="unknown SAM 2 layout field.*heads"):
        hiera_layout(random_state("tiny-sam2"), heads=2)
    with pytest.raises(ValueError, match="SAM checkpoints take no layout fields"):
        convert(random_state("tiny-sam"), image_size=64)
