"""Tiny random Grounding DINO and SAM-family models saved as transformers folders (users' path)."""

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
    Sam2Config,
    Sam2HieraDetConfig,
    Sam2MaskDecoderConfig,
    Sam2Model,
    Sam2Processor,
    Sam2PromptEncoderConfig,
    Sam2VisionConfig,
    SamConfig,
    SamHQConfig,
    SamHQMaskDecoderConfig,
    SamHQModel,
    SamHQProcessor,
    SamHQPromptEncoderConfig,
    SamHQVisionConfig,
    SamImageProcessor,
    SamMaskDecoderConfig,
    SamModel,
    SamProcessor,
    SamPromptEncoderConfig,
    SamVisionConfig,
    SwinConfig,
)

try:
    from transformers import Sam2ImageProcessor
except ImportError:  # transformers 4.x has only the fast one
    from transformers import Sam2ImageProcessorFast as Sam2ImageProcessor


def tiny_grounding_dino_config(
    levels: int = 2, encoder_layers: int = 1, points: tuple[int, int] = (1, 1)
) -> GroundingDinoConfig:
    """A ~0.6 M-parameter Grounding DINO: 20 queries, ``levels`` feature levels (2: Swin's last
    two stages; 4: its last three and one made from the last), ``points`` sampled per level by
    the encoder and the decoder."""
    backbone = SwinConfig(
        embed_dim=8,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 1, 1],
        window_size=4,
        image_size=64,
        out_indices=[3, 4] if levels == 2 else [2, 3, 4],
    )
    text = BertConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    return GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        d_model=32,
        encoder_layers=encoder_layers,
        decoder_layers=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_queries=20,
        num_feature_levels=levels,
        encoder_n_points=points[0],
        decoder_n_points=points[1],
    )


def save_tiny_grounding_dino(folder: Path, vocab: Path) -> Path:
    """:func:`tiny_grounding_dino_config`'s model, random weights, with the BERT vocab."""
    torch.manual_seed(0)
    config = tiny_grounding_dino_config()
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
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            mlp_dim=32,
            output_channels=16,
            image_size=64,
            patch_size=8,
            global_attn_indexes=[0],
            window_size=0,
            num_pos_feats=8,
            initializer_range=0.02,  # the default, 1e-10, leaves masks blind to the image
        ),
        prompt_encoder_config=SamPromptEncoderConfig(
            hidden_size=16, image_size=64, patch_size=8, mask_input_channels=4
        ),
        mask_decoder_config=SamMaskDecoderConfig(
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            mlp_dim=32,
            iou_head_hidden_dim=16,
        ),
    )
    SamModel(config).save_pretrained(folder)
    image_processor = SamImageProcessor(
        size={"longest_edge": 64}, pad_size={"height": 64, "width": 64}
    )
    SamProcessor(image_processor=image_processor).save_pretrained(folder)
    return folder


def save_tiny_sam_hq(folder: Path) -> Path:
    """A tiny SAM-HQ (two encoder layers, so its HQ token reads an early feature) at 64x64."""
    torch.manual_seed(0)
    config = SamHQConfig(
        vision_config=SamHQVisionConfig(
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            mlp_dim=32,
            output_channels=16,
            image_size=64,
            patch_size=8,
            global_attn_indexes=[0, 1],
            window_size=0,
            num_pos_feats=8,
            initializer_range=0.02,
        ),
        prompt_encoder_config=SamHQPromptEncoderConfig(
            hidden_size=16, image_size=64, patch_size=8, mask_input_channels=4
        ),
        mask_decoder_config=SamHQMaskDecoderConfig(
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            mlp_dim=32,
            iou_head_hidden_dim=16,
            vit_dim=16,
        ),
    )
    SamHQModel(config).save_pretrained(folder)
    image_processor = SamImageProcessor(
        size={"longest_edge": 64}, pad_size={"height": 64, "width": 64}
    )
    SamHQProcessor(image_processor=image_processor).save_pretrained(folder)
    return folder


def save_tiny_sam2(folder: Path) -> Path:
    """A tiny SAM 2 (4-stage Hiera, 3-level FPN) working on 64x64 squares."""
    torch.manual_seed(0)
    backbone = Sam2HieraDetConfig(
        hidden_size=8,
        image_size=[64, 64],
        blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[8, 16, 32, 64],
        num_attention_heads_per_stage=[1, 1, 1, 1],
        window_size_per_stage=[4, 4, 2, 2],
        global_attention_blocks=[3],
        window_positional_embedding_background_size=[2, 2],
    )
    config = Sam2Config(
        vision_config=Sam2VisionConfig(
            backbone_config=backbone,
            backbone_channel_list=[64, 32, 16, 8],
            backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]],
            fpn_hidden_size=16,
        ),
        prompt_encoder_config=Sam2PromptEncoderConfig(
            hidden_size=16, image_size=64, patch_size=16, mask_input_channels=4
        ),
        mask_decoder_config=Sam2MaskDecoderConfig(
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            mlp_dim=32,
            iou_head_hidden_dim=16,
        ),
    )
    Sam2Model(config).save_pretrained(folder)
    image_processor = Sam2ImageProcessor(
        size={"height": 64, "width": 64}, mask_size={"height": 16, "width": 16}
    )
    Sam2Processor(image_processor=image_processor).save_pretrained(folder)
    return folder
