"""Tiny random Grounding DINO and SAM saved as transformers folders (the users' loading path)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    BertConfig,
    BertTokenizerFast,
    GroundingDinoConfig,
    GroundingDinoForObjectDetection,
    GroundingDinoImageProcessor,
    GroundingDinoProcessor,
    SamConfig,
    SamImageProcessor,
    SamMaskDecoderConfig,
    SamModel,
    SamProcessor,
    SamPromptEncoderConfig,
    SamVisionConfig,
    SwinConfig,
)


def save_tiny_grounding_dino(folder: Path, vocab: Path) -> Path:
    """A ~0.6 M-parameter Grounding DINO (2 feature levels, 20 queries) with the BERT vocab."""
    torch.manual_seed(0)
    backbone = SwinConfig(
        embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=4,
        image_size=64, out_indices=[3, 4],
    )  # fmt: skip
    text = BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32)  # fmt: skip
    config = GroundingDinoConfig(
        backbone_config=backbone, text_config=text, d_model=32, encoder_layers=1,
        decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32, encoder_attention_heads=2,
        decoder_attention_heads=2, num_queries=20, num_feature_levels=2, encoder_n_points=1,
        decoder_n_points=1,
    )  # fmt: skip
    GroundingDinoForObjectDetection(config).save_pretrained(folder)
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96})
    tokenizer = BertTokenizerFast(str(vocab))
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(
        folder
    )
    return folder


def save_tiny_sam(folder: Path) -> Path:
    """A ~17 k-parameter SAM working at 64x64 pixels."""
    torch.manual_seed(0)
    config = SamConfig(
        vision_config=SamVisionConfig(
            hidden_size=16, num_hidden_layers=1, num_attention_heads=2, mlp_dim=32,
            output_channels=16, image_size=64, patch_size=8, global_attn_indexes=[0],
            window_size=0, num_pos_feats=8,
        ),
        prompt_encoder_config=SamPromptEncoderConfig(
            hidden_size=16, image_size=64, patch_size=8, mask_input_channels=4
        ),
        mask_decoder_config=SamMaskDecoderConfig(
            hidden_size=16, num_hidden_layers=1, num_attention_heads=2, mlp_dim=32,
            iou_head_hidden_dim=16,
        ),
    )  # fmt: skip
    SamModel(config).save_pretrained(folder)
    image_processor = SamImageProcessor(
        size={"longest_edge": 64}, pad_size={"height": 64, "width": 64}
    )
    SamProcessor(image_processor=image_processor).save_pretrained(folder)
    return folder
