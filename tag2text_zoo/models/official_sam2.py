"""Official SAM 2 / SAM 2.1 checkpoints (``sam2.1_hiera_large.pt``) as transformers ``Sam2Model``
weights and config (the image model; the video memory weights are left out).

Key map written from sam2 1.1.0 (``modeling/backbones/{hieradet,image_encoder}.py``,
``modeling/sam/*``, ``modeling/sam2_base.py``, ``sam2_image_predictor.py``) and transformers'
``modeling_sam2.py``. Widths and depths come from the weights; what they cannot show (Hiera's
attention heads, global-attention blocks, window sizes, and the image size) comes from the
official configs, recognised by the blocks per stage (:data:`HIERA_LAYOUTS`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from transformers import (
    Sam2Config,
    Sam2HieraDetConfig,
    Sam2MaskDecoderConfig,
    Sam2PromptEncoderConfig,
    Sam2VisionConfig,
)

from .key_rules import count_indexed, rename, split_mlp_layers
from .official_sam import HEAD_RULES, mask_decoder_sizes, with_positional_embedding


@dataclass(frozen=True)
class HieraLayout:
    """What an official Hiera checkpoint's shapes do not show (``configs/sam2.1/*.yaml``)."""

    name: str
    num_heads: int
    global_attention_blocks: tuple[int, ...]
    window_spec: tuple[int, ...] = (8, 4, 14, 7)
    image_size: int = 1024


# Blocks per stage -> the official layout with those stages (SAM 2 and 2.1 share them).
HIERA_LAYOUTS: dict[tuple[int, ...], HieraLayout] = {
    (1, 2, 7, 2): HieraLayout("hiera_tiny", 1, (5, 7, 9)),
    (1, 2, 11, 2): HieraLayout("hiera_small", 1, (7, 10, 13)),
    (2, 3, 16, 3): HieraLayout("hiera_base_plus", 2, (12, 16, 20)),
    (2, 6, 36, 4): HieraLayout("hiera_large", 2, (23, 33, 43), (8, 4, 16, 8)),
}

# SAM2Base weights used only when tracking video; the image model has no place for them.
_VIDEO_ONLY = (
    "memory_attention.",
    "memory_encoder.",
    "mask_downsample.",
    "obj_ptr_proj.",
    "obj_ptr_tpos_proj.",
    "maskmem_tpos_enc",
    "no_mem_pos_enc",
    "no_obj_ptr",
    "no_obj_embed_spatial",
)
_TRUNK = "image_encoder.trunk"
_RULES = [
    (r"^image_encoder\.trunk\.", "vision_encoder.backbone."),
    (
        r"^vision_encoder\.backbone\.patch_embed\.proj\.",
        "vision_encoder.backbone.patch_embed.projection.",
    ),
    (r"^(vision_encoder\.backbone\.blocks\.\d+)\.norm(\d)\.", r"\1.layer_norm\2."),
    (r"^image_encoder\.neck\.convs\.(\d+)\.conv\.", r"vision_encoder.neck.convs.\1."),
    (r"^no_mem_embed$", "no_memory_embedding"),
    (r"^sam_prompt_encoder\.", "prompt_encoder."),
    (r"^sam_mask_decoder\.", "mask_decoder."),
    (r"^(mask_decoder\.transformer\.(?:layers\.\d+\.)?\w+)\.out_proj\.", r"\1.o_proj."),
    *HEAD_RULES,
]
_MLPS = (
    r"(?:vision_encoder\.backbone\.blocks\.\d+\.mlp|mask_decoder\.transformer\.layers\.\d+\.mlp"
    r"|mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head|pred_obj_score_head))"
)
_POSITIONAL = "sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"


def is_sam2(state: Mapping[str, torch.Tensor]) -> bool:
    return (
        f"{_TRUNK}.patch_embed.proj.weight" in state
        and "sam_mask_decoder.iou_token.weight" in state
    )


def _stages(state: Mapping[str, torch.Tensor]) -> list[tuple[int, int]]:
    """(blocks, width) of each Hiera stage: consecutive blocks of one output width."""
    stages: list[list[int]] = []
    for i in range(count_indexed(state, f"{_TRUNK}.blocks")):
        width = state[f"{_TRUNK}.blocks.{i}.mlp.layers.0.weight"].shape[1]
        if stages and stages[-1][1] == width:
            stages[-1][0] += 1
        else:
            stages.append([1, width])
    return [(n, w) for n, w in stages]


def hiera_layout(state: Mapping[str, torch.Tensor], **changes: object) -> HieraLayout:
    """The official layout with this checkpoint's blocks per stage, with ``changes`` applied.

    Raises:
        ValueError: stages of no official layout and no ``num_heads`` / ``global_attention_blocks``
            given, or an unknown field in ``changes``.
    """
    stages = tuple(n for n, _ in _stages(state))
    layout = HIERA_LAYOUTS.get(stages)
    if layout is None:
        if not {"num_heads", "global_attention_blocks"} <= set(changes):
            known = ", ".join(f"{v.name} {list(k)}" for k, v in HIERA_LAYOUTS.items())
            raise ValueError(
                f"SAM 2 checkpoint with Hiera blocks per stage {list(stages)}, which no official "
                f"model has ({known}); give num_heads and global_attention_blocks (and "
                "window_spec, image_size) to load it"
            )
        layout = HieraLayout("custom", 1, ())
    fields = {f.name for f in dataclasses.fields(HieraLayout)}
    if unknown := set(changes) - fields:
        raise ValueError(
            f"unknown SAM 2 layout field(s) {sorted(unknown)}; known: {sorted(fields)}"
        )
    return dataclasses.replace(layout, **changes)  # type: ignore[arg-type]


def sam2_config(state: Mapping[str, torch.Tensor], **layout_changes: object) -> Sam2Config:
    """The transformers config of an official SAM 2 state dict (see :func:`hiera_layout`)."""
    layout = hiera_layout(state, **layout_changes)
    stages = _stages(state)
    widths = [w for _, w in stages]
    patch = state[f"{_TRUNK}.patch_embed.proj.weight"]  # [C, 3, k, k]
    mlp = state[f"{_TRUNK}.blocks.0.mlp.layers.0.weight"]
    size = layout.image_size
    backbone = Sam2HieraDetConfig(
        hidden_size=widths[0],
        num_attention_heads=layout.num_heads,
        image_size=[size, size],
        patch_kernel_size=list(patch.shape[-2:]),
        patch_stride=[4, 4],
        patch_padding=[patch.shape[-1] // 2] * 2,
        query_stride=[2, 2],
        window_positional_embedding_background_size=list(state[f"{_TRUNK}.pos_embed"].shape[2:]),
        num_query_pool_stages=len(stages) - 1,
        blocks_per_stage=[n for n, _ in stages],
        embed_dim_per_stage=widths,
        num_attention_heads_per_stage=[layout.num_heads * 2**i for i in range(len(stages))],
        window_size_per_stage=list(layout.window_spec),
        global_attention_blocks=list(layout.global_attention_blocks),
        mlp_ratio=mlp.shape[0] / mlp.shape[1],
    )
    necks = count_indexed(state, "image_encoder.neck.convs")
    hidden = state["image_encoder.neck.convs.0.conv.weight"].shape[0]
    vision = Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=[
            state[f"image_encoder.neck.convs.{i}.conv.weight"].shape[1] for i in range(necks)
        ],
        backbone_feature_sizes=[[size // s, size // s] for s in (4, 8, 16)],
        fpn_hidden_size=hidden,
    )
    prompt = Sam2PromptEncoderConfig(
        hidden_size=hidden,
        image_size=size,
        patch_size=16,
        mask_input_channels=state["sam_prompt_encoder.mask_downscaling.3.weight"].shape[0],
    )
    decoder = Sam2MaskDecoderConfig(**mask_decoder_sizes(state, "sam_mask_decoder", "mlp.layers.0"))
    return Sam2Config(
        vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder
    )


def map_sam2_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official SAM 2 keys -> transformers ``Sam2Model`` keys (video-only weights dropped)."""
    image = {k: v for k, v in state.items() if not k.startswith(_VIDEO_ONLY)}
    gaussian = image.pop(_POSITIONAL)
    points = sorted(k for k in image if k.startswith("sam_prompt_encoder.point_embeddings."))
    point_embed = torch.cat([image.pop(k) for k in points])  # 4 x [1, C] -> [4, C]
    mapped = split_mlp_layers(rename(image, _RULES), _MLPS)
    mapped["prompt_encoder.point_embed.weight"] = point_embed
    return with_positional_embedding(mapped, gaussian)
