"""Official Grounding DINO checkpoints (``groundingdino_swint_ogc.pth``,
``groundingdino_swinb_cogcoor.pth``) as transformers ``GroundingDinoForObjectDetection`` weights.

Key map written from GroundingDINO (rf-groundingdino 0.3.0: ``models/GroundingDINO/{groundingdino,
transformer,fuse_modules,ms_deform_attn}.py``, ``backbone/swin_transformer.py``) and transformers'
``modeling_grounding_dino.py``; it targets the names of the transformers hub checkpoints, which
every transformers release loads. Widths, depths, the Swin heads and windows come from the weights;
the attention heads of the detector (8) and of BERT (12) are the official configs' values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from transformers import BertConfig, GroundingDinoConfig, SwinConfig

from .key_rules import count_indexed, rename

# GroundingDINO_SwinT_OGC.py / _SwinB_cfg.py: nheads = 8, text_encoder_type = "bert-base-uncased".
ATTENTION_HEADS = 8
TEXT_HEADS = 12
MAX_TEXT_LEN = 256

_SWIN = "model.backbone.conv_encoder.model"
_RULES = [
    # Swin backbone (Microsoft layout: a stage's downsample belongs to that stage in both)
    (r"^backbone\.0\.patch_embed\.proj\.", f"{_SWIN}.embeddings.patch_embeddings.projection."),
    (r"^backbone\.0\.patch_embed\.norm\.", f"{_SWIN}.embeddings.norm."),
    (r"^backbone\.0\.norm(\d)\.", lambda m: f"{_SWIN}.hidden_states_norms.stage{int(m[1]) + 1}."),
    (r"^backbone\.0\.layers\.", f"{_SWIN}.encoder.layers."),
    (r"\.blocks\.(\d+)\.norm1\.", r".blocks.\1.layernorm_before."),
    (r"\.blocks\.(\d+)\.norm2\.", r".blocks.\1.layernorm_after."),
    (r"\.attn\.(relative_position_\w+)$", r".attention.self.\1"),
    (r"\.attn\.qkv\.", ".attention.self.in_proj."),
    (r"\.attn\.proj\.", ".attention.output.dense."),
    (r"\.mlp\.fc1\.", ".intermediate.dense."),
    (r"\.mlp\.fc2\.", ".output.dense."),
    # text
    (r"^bert\.", "model.text_backbone."),
    (r"^feat_map\.", "model.text_projection."),
    (r"\.in_proj_(weight|bias)$", r".in_proj.\1"),
    # encoder: deformable image layers, text layers and fusion layers become one layer each
    (r"^input_proj\.", "model.input_proj_vision."),
    (r"^transformer\.level_embed$", "model.level_embed"),
    (r"^transformer\.tgt_embed\.", "model.query_position_embeddings."),
    (r"^transformer\.enc_output", "model.enc_output"),
    (r"^transformer\.enc_out_bbox_embed\.", "model.encoder_output_bbox_embed."),
    (r"^transformer\.encoder\.layers\.(\d+)\.", r"model.encoder.layers.\1.deformable_layer."),
    (r"(deformable_layer)\.norm1\.", r"\1.self_attn_layer_norm."),
    (r"(deformable_layer)\.norm2\.", r"\1.final_layer_norm."),
    (r"(deformable_layer)\.linear(\d)\.", r"\1.fc\2."),
    (
        r"^transformer\.encoder\.text_layers\.(\d+)\.",
        r"model.encoder.layers.\1.text_enhancer_layer.",
    ),
    (r"(text_enhancer_layer)\.norm1\.", r"\1.layer_norm_before."),
    (r"(text_enhancer_layer)\.norm2\.", r"\1.layer_norm_after."),
    (r"(text_enhancer_layer)\.linear(\d)\.", r"\1.fc\2."),
    (r"^transformer\.encoder\.fusion_layers\.(\d+)\.", r"model.encoder.layers.\1.fusion_layer."),
    (r"(fusion_layer)\.gamma_v$", r"\1.vision_param"),
    (r"(fusion_layer)\.gamma_l$", r"\1.text_param"),
    (r"(fusion_layer\.layer_norm)_v\.", r"\1_vision."),
    (r"(fusion_layer\.layer_norm)_l\.", r"\1_text."),
    (r"(fusion_layer\.attn\.\w*)v_proj\.", r"\1vision_proj."),
    (r"(fusion_layer\.attn\.\w*)l_proj\.", r"\1text_proj."),
    # decoder
    (r"^transformer\.decoder\.layers\.", "model.decoder.layers."),
    (r"(decoder\.layers\.\d+)\.cross_attn\.", r"\1.encoder_attn."),
    (r"(decoder\.layers\.\d+)\.norm1\.", r"\1.encoder_attn_layer_norm."),
    (r"(decoder\.layers\.\d+)\.ca_text\.", r"\1.encoder_attn_text."),
    (r"(decoder\.layers\.\d+)\.catext_norm\.", r"\1.encoder_attn_text_layer_norm."),
    (r"(decoder\.layers\.\d+)\.norm2\.", r"\1.self_attn_layer_norm."),
    (r"(decoder\.layers\.\d+)\.norm3\.", r"\1.final_layer_norm."),
    (r"(decoder\.layers\.\d+)\.linear(\d)\.", r"\1.fc\2."),
    (r"^transformer\.decoder\.norm\.", "model.decoder.layer_norm."),
    (r"^transformer\.decoder\.ref_point_head\.", "model.decoder.reference_points_head."),
    (r"^transformer\.decoder\.bbox_embed\.", "model.decoder.bbox_embed."),
]
# BERT's pooler, which the detector does not use; the buffers BERT versions saved; and the
# label embedding of denoising training (2001 x 256), which the released files carry: the Swin-B
# file's 1108 tensors are the model's 1106 plus it and BERT's position_ids, and both files exceed
# the model's weights by 2.1 MB beyond their archive entries (tests/data/reference/official).
_UNUSED = (
    "bert.pooler.",
    "bert.embeddings.position_ids",
    "bert.embeddings.token_type_ids",
    "label_enc.",
)
# One module under two names (dec_pred_bbox_embed_share); released files may hold only one
# (the mmdetection converter notes Swin-T and Swin-B files differ here).
_BOX_HEADS = ("bbox_embed.", "transformer.decoder.bbox_embed.")


def is_grounding_dino(state: Mapping[str, torch.Tensor]) -> bool:
    return "feat_map.weight" in state and "transformer.level_embed" in state


def _with_both_box_head_names(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = dict(state)
    for have, other in (_BOX_HEADS, _BOX_HEADS[::-1]):
        for key, value in state.items():
            if key.startswith(have):
                out.setdefault(other + key[len(have) :], value)
    return out


def _split_in_proj(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fused ``in_proj`` query/key/value projections (rows q, k, v) -> three projections."""
    out = {}
    for key, value in state.items():
        head, sep, tail = key.rpartition(".in_proj.")
        if not sep:
            out[key] = value
            continue
        for name, part in zip(("query", "key", "value"), value.chunk(3), strict=True):
            out[f"{head}.{name}.{tail}"] = part
    return out


def _swin_config(state: Mapping[str, torch.Tensor]) -> SwinConfig:
    patch = state["backbone.0.patch_embed.proj.weight"]  # [C, 3, p, p]
    stages = count_indexed(state, "backbone.0.layers")
    depths = [count_indexed(state, f"backbone.0.layers.{i}.blocks") for i in range(stages)]
    # relative_position_bias_table: [(2 * window - 1) ** 2, heads]
    tables = [
        state[f"backbone.0.layers.{i}.blocks.0.attn.relative_position_bias_table"]
        for i in range(stages)
    ]
    window = (math.isqrt(tables[0].shape[0]) + 1) // 2
    fc1 = state["backbone.0.layers.0.blocks.0.mlp.fc1.weight"]
    norms = sorted(int(k.split(".")[2][4:]) for k in state if k.startswith("backbone.0.norm"))
    return SwinConfig(
        embed_dim=patch.shape[0],
        patch_size=patch.shape[-1],
        depths=depths,
        num_heads=[t.shape[1] for t in tables],
        window_size=window,
        mlp_ratio=fc1.shape[0] / fc1.shape[1],
        out_indices=sorted({n + 1 for n in norms}),
    )


def grounding_dino_config(state: Mapping[str, torch.Tensor]) -> GroundingDinoConfig:
    """The transformers config of an official Grounding DINO state dict, from its shapes."""
    words = state["bert.embeddings.word_embeddings.weight"]
    text = BertConfig(
        vocab_size=words.shape[0],
        hidden_size=words.shape[1],
        num_hidden_layers=count_indexed(state, "bert.encoder.layer"),
        num_attention_heads=TEXT_HEADS,
        intermediate_size=state["bert.encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=state["bert.embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=state["bert.embeddings.token_type_embeddings.weight"].shape[0],
    )
    levels = state["transformer.level_embed"].shape[0]
    encoder_offsets = state["transformer.encoder.layers.0.self_attn.sampling_offsets.weight"]
    decoder_offsets = state["transformer.decoder.layers.0.cross_attn.sampling_offsets.weight"]
    decoders = count_indexed(state, "transformer.decoder.layers")
    heads = _with_both_box_head_names(state)
    first = heads["bbox_embed.0.layers.0.weight"]
    shared = first.is_meta or all(
        torch.equal(heads[f"bbox_embed.{i}.layers.0.weight"], first) for i in range(decoders)
    )
    return GroundingDinoConfig(
        backbone_config=_swin_config(state),
        text_config=text,
        d_model=state["feat_map.weight"].shape[0],
        num_queries=state["transformer.tgt_embed.weight"].shape[0],
        num_feature_levels=levels,
        encoder_layers=count_indexed(state, "transformer.encoder.layers"),
        decoder_layers=decoders,
        encoder_ffn_dim=state["transformer.encoder.layers.0.linear1.weight"].shape[0],
        decoder_ffn_dim=state["transformer.decoder.layers.0.linear1.weight"].shape[0],
        encoder_attention_heads=ATTENTION_HEADS,
        decoder_attention_heads=ATTENTION_HEADS,
        # sampling_offsets: [heads * levels * points * 2, d_model]
        encoder_n_points=encoder_offsets.shape[0] // (ATTENTION_HEADS * levels * 2),
        decoder_n_points=decoder_offsets.shape[0] // (ATTENTION_HEADS * levels * 2),
        max_text_len=MAX_TEXT_LEN,
        decoder_bbox_embed_share=shared,
        two_stage=True,
        embedding_init_target=True,
    )


def map_grounding_dino_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official Grounding DINO keys -> transformers hub checkpoint keys."""
    used = {k: v for k, v in state.items() if not k.startswith(_UNUSED)}
    return _split_in_proj(rename(_with_both_box_head_names(used), _RULES))
