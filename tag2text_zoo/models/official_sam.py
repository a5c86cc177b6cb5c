"""Official SAM and SAM-HQ checkpoints (``sam_vit_h_4b8939.pth``, ``sam_hq_vit_h.pth``) as
transformers ``SamModel`` / ``SamHQModel`` weights and configs.

Key map written from segment-anything 1.0 (``modeling/{image_encoder,prompt_encoder,mask_decoder,
transformer}.py``), segment-anything-hq 0.3 (``mask_decoder_hq.py``) and transformers'
``modeling_sam.py`` / ``modeling_sam_hq.py``. Every size is read from the weights' shapes except
the mask decoder's attention heads, which the official builders fix at 8.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from transformers import SamConfig, SamHQConfig

from .key_rules import count_indexed, rename, sequential, split_mlp_layers

# _build_sam: TwoWayTransformer(..., num_heads=8); not visible in any weight shape.
DECODER_HEADS = 8

_ENCODER = "image_encoder"
# The prompt encoder and mask decoder, which SAM 2 shares (under "sam_" prefixes).
HEAD_RULES = [
    (r"^prompt_encoder\.mask_downscaling\.", "prompt_encoder.mask_embed."),
    *sequential(
        r"prompt_encoder\.mask_embed",
        ["conv1", "layer_norm1", None, "conv2", "layer_norm2", None, "conv3"],
    ),
    (r"^(mask_decoder\.transformer\.layers\.\d+)\.norm(\d)\.", r"\1.layer_norm\2."),
    (
        r"^mask_decoder\.transformer\.norm_final_attn\.",
        "mask_decoder.transformer.layer_norm_final_attn.",
    ),
    (r"^mask_decoder\.output_upscaling\.", "mask_decoder.upscale."),
    *sequential(r"mask_decoder\.upscale", ["conv1", "layer_norm", None, "conv2"]),
    (r"^mask_decoder\.upscale\.(\w+)\.", r"mask_decoder.upscale_\1."),
]
_RULES = [
    (r"^image_encoder\.", "vision_encoder."),
    (r"^vision_encoder\.patch_embed\.proj\.", "vision_encoder.patch_embed.projection."),
    (r"^vision_encoder\.blocks\.(\d+)\.norm(\d)\.", r"vision_encoder.layers.\1.layer_norm\2."),
    (r"^vision_encoder\.blocks\.", "vision_encoder.layers."),
    *sequential(r"vision_encoder\.neck", ["conv1", "layer_norm1", "conv2", "layer_norm2"]),
    (r"^prompt_encoder\.point_embeddings\.", "prompt_encoder.point_embed."),
    *HEAD_RULES,
    # SAM-HQ
    (r"^mask_decoder\.hf_token\.", "mask_decoder.hq_token."),
    (r"^mask_decoder\.hf_mlp\.", "mask_decoder.hq_mask_mlp."),
    *sequential(r"mask_decoder\.compress_vit_feat", ["conv1", "norm", None, "conv2"]),
    *sequential(r"mask_decoder\.embedding_encoder", ["conv1", "norm", None, "conv2"]),
    *sequential(r"mask_decoder\.embedding_maskfeature", ["conv1", "norm", None, "conv2"]),
    (r"^mask_decoder\.compress_vit_feat\.", "mask_decoder.compress_vit_"),
    (r"^mask_decoder\.embedding_encoder\.", "mask_decoder.encoder_"),
    (r"^mask_decoder\.embedding_maskfeature\.", "mask_decoder.mask_"),
]
_MLPS = r"mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head|hq_mask_mlp)"
_POSITIONAL = "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"


def is_sam(state: Mapping[str, torch.Tensor]) -> bool:
    """A SAM-family ViT checkpoint (SAM or SAM-HQ with a ViT encoder)."""
    return f"{_ENCODER}.pos_embed" in state and "mask_decoder.iou_token.weight" in state


def is_sam_hq(state: Mapping[str, torch.Tensor]) -> bool:
    return is_sam(state) and "mask_decoder.hf_token.weight" in state


def mask_decoder_sizes(state: Mapping[str, torch.Tensor], prefix: str, mlp: str) -> dict[str, int]:
    """The mask decoder's config fields from its weights under ``prefix`` (SAM 2's decoder is
    SAM's, named ``sam_mask_decoder``); ``mlp``: the first layer of its transformer's MLPs."""
    layer = f"{prefix}.transformer.layers.0"
    hidden = state[f"{prefix}.iou_token.weight"].shape[1]
    cross = state[f"{layer}.cross_attn_token_to_image.q_proj.weight"]
    return dict(
        hidden_size=hidden,
        mlp_dim=state[f"{layer}.{mlp}.weight"].shape[0],
        num_hidden_layers=count_indexed(state, f"{prefix}.transformer.layers"),
        num_attention_heads=DECODER_HEADS,
        attention_downsample_rate=hidden // cross.shape[0],
        num_multimask_outputs=state[f"{prefix}.mask_tokens.weight"].shape[0] - 1,
        iou_head_depth=count_indexed(state, f"{prefix}.iou_prediction_head.layers"),
        iou_head_hidden_dim=state[f"{prefix}.iou_prediction_head.layers.0.weight"].shape[0],
    )


def sam_config(state: Mapping[str, torch.Tensor]) -> SamConfig | SamHQConfig:
    """The transformers config of an official SAM or SAM-HQ state dict, from its shapes."""
    hq = is_sam_hq(state)
    patch = state[f"{_ENCODER}.patch_embed.proj.weight"]  # [C, 3, p, p]
    grid = state[f"{_ENCODER}.pos_embed"].shape[1]  # [1, H/p, W/p, C]
    hidden, patch_size = patch.shape[0], patch.shape[-1]
    depth = count_indexed(state, f"{_ENCODER}.blocks")
    # rel_pos_h is [2 * size - 1, head_dim]: size is the grid for global blocks, else the window
    rel_sizes = [state[f"{_ENCODER}.blocks.{i}.attn.rel_pos_h"].shape[0] for i in range(depth)]
    global_blocks = [i for i, n in enumerate(rel_sizes) if n == 2 * grid - 1]
    windows = {(n + 1) // 2 for n in rel_sizes if n != 2 * grid - 1}
    if len(windows) > 1:
        raise ValueError(f"SAM checkpoint with several window sizes {sorted(windows)}")
    head_dim = state[f"{_ENCODER}.blocks.0.attn.rel_pos_h"].shape[1]
    prompt_dim = state["prompt_encoder.not_a_point_embed.weight"].shape[1]
    vision = dict(
        hidden_size=hidden,
        output_channels=state[f"{_ENCODER}.neck.0.weight"].shape[0],
        num_hidden_layers=depth,
        num_attention_heads=hidden // head_dim,
        image_size=grid * patch_size,
        patch_size=patch_size,
        mlp_dim=state[f"{_ENCODER}.blocks.0.mlp.lin1.weight"].shape[0],
        window_size=windows.pop() if windows else 14,
        global_attn_indexes=global_blocks,
        num_pos_feats=state[_POSITIONAL].shape[1],
    )
    prompt = dict(
        hidden_size=prompt_dim,
        image_size=grid * patch_size,
        patch_size=patch_size,
        mask_input_channels=state["prompt_encoder.mask_downscaling.3.weight"].shape[0],
    )
    decoder = mask_decoder_sizes(state, "mask_decoder", "mlp.lin1")
    decoder["layer_norm_eps"] = 1e-5  # TwoWayAttentionBlock: nn.LayerNorm's default eps
    if hq:
        decoder["vit_dim"] = state["mask_decoder.compress_vit_feat.0.weight"].shape[0]
    # dicts, which each config turns into its own sub-configs (SAM's or SAM-HQ's)
    return (SamHQConfig if hq else SamConfig)(
        vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder
    )


def with_positional_embedding(
    mapped: dict[str, torch.Tensor], gaussian: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Adds the prompt encoder's random Fourier matrix, which serves the image and the prompts
    and which transformers names twice (SAM, SAM-HQ and SAM 2 alike)."""
    mapped["shared_image_embedding.positional_embedding"] = gaussian
    mapped["prompt_encoder.shared_embedding.positional_embedding"] = gaussian
    return mapped


def map_sam_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official SAM / SAM-HQ keys -> transformers ``SamModel`` / ``SamHQModel`` keys."""
    image = dict(state)
    gaussian = image.pop(_POSITIONAL)
    return with_positional_embedding(split_mlp_layers(rename(image, _RULES), _MLPS), gaussian)
