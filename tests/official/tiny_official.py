"""Tiny random models built with the official packages (segment-anything, segment-anything-hq,
sam2, rf-groundingdino) in the layouts of the released files, for the parity tests and for
``make_key_lists.py``. Every size the weights show is small; what they cannot show (attention
heads, global-attention blocks, windows) is the official value, so the loader must find it.
"""

from __future__ import annotations

import contextlib
import importlib
from functools import partial
from pathlib import Path

import torch

IMAGE_SIZE = 64  # pixels; the released models work at 1024 (SAM, SAM 2) or 800 (Grounding DINO)


def randomize(model: torch.nn.Module, std: float, seed: int = 0) -> torch.nn.Module:
    """Adds N(0, std) noise to every weight, so that no zero-initialised weight hides a mistake."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * std)
    return model.eval()


def tiny_sam(hq: bool = False) -> torch.nn.Module:
    """SAM (or HQ-SAM) in the vit_b layout: 12 blocks, global attention in 2, 5, 8, 11."""
    modeling = importlib.import_module(
        "segment_anything_hq.modeling" if hq else "segment_anything.modeling"
    )
    torch.manual_seed(0)
    patch, width = 8, 16
    encoder = modeling.ImageEncoderViT(
        depth=12,
        embed_dim=width,
        img_size=IMAGE_SIZE,
        mlp_ratio=2,
        num_heads=2,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        patch_size=patch,
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=[2, 5, 8, 11],
        window_size=4,
        out_chans=width,
    )
    grid = IMAGE_SIZE // patch
    prompt = modeling.PromptEncoder(
        embed_dim=width,
        image_embedding_size=(grid, grid),
        input_image_size=(IMAGE_SIZE, IMAGE_SIZE),
        mask_in_chans=16,
    )
    transformer = modeling.TwoWayTransformer(depth=2, embedding_dim=width, mlp_dim=32, num_heads=8)
    decoder_args = dict(
        num_multimask_outputs=3,
        transformer=transformer,
        transformer_dim=width,
        iou_head_depth=3,
        iou_head_hidden_dim=16,
    )
    if hq:
        decoder = modeling.MaskDecoderHQ(**decoder_args, vit_dim=width)
    else:
        decoder = modeling.MaskDecoder(**decoder_args)
    return modeling.Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder)


def tiny_sam2() -> torch.nn.Module:
    """SAM 2.1 in the hiera_tiny layout (blocks per stage 1, 2, 7, 2), widths 8 to 64."""
    from sam2.build_sam import build_sam2

    torch.manual_seed(0)
    cells = IMAGE_SIZE // 16
    overrides = [
        f"++model.image_size={IMAGE_SIZE}",
        "++model.image_encoder.trunk.embed_dim=8",
        "++model.image_encoder.neck.backbone_channel_list=[64,32,16,8]",
        "++model.image_encoder.neck.d_model=16",
        "++model.image_encoder.neck.position_encoding.num_pos_feats=16",
        "++model.memory_attention.d_model=16",
        "++model.memory_attention.num_layers=1",
        "++model.memory_attention.layer.d_model=16",
        "++model.memory_attention.layer.dim_feedforward=32",
        "++model.memory_attention.layer.self_attention.embedding_dim=16",
        f"++model.memory_attention.layer.self_attention.feat_sizes=[{cells},{cells}]",
        "++model.memory_attention.layer.cross_attention.embedding_dim=16",
        f"++model.memory_attention.layer.cross_attention.feat_sizes=[{cells},{cells}]",
        "++model.memory_attention.layer.cross_attention.kv_in_dim=8",
        "++model.memory_encoder.out_dim=8",
        "++model.memory_encoder.in_dim=16",
        "++model.memory_encoder.position_encoding.num_pos_feats=8",
        "++model.memory_encoder.mask_downsampler.embed_dim=16",
        "++model.memory_encoder.fuser.layer.dim=16",
        "++model.memory_encoder.fuser.num_layers=1",
    ]
    # build_sam2's defaults are the demos' (dynamic multimask fallback on, as in transformers).
    return build_sam2(
        "configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu", hydra_overrides_extra=overrides
    )


def save_tiny_bert(folder: Path, vocab: Path) -> Path:
    """A 1-layer BERT (12 heads, as bert-base) and the bert-base-uncased tokenizer."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=24, num_hidden_layers=1, num_attention_heads=12, intermediate_size=32
    )
    BertModel(config).save_pretrained(folder)
    BertTokenizerFast(str(vocab)).save_pretrained(folder)
    return folder


@contextlib.contextmanager
def _tiny_swin():
    """Official Swin names only full-size variants; the tiny one passes its sizes through."""
    import groundingdino.models.GroundingDINO.backbone.backbone as backbone

    original = backbone.build_swin_transformer

    def build(name: str, **kwargs):
        sizes = dict(embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=4)
        return original(name, **{**kwargs, **sizes})

    backbone.build_swin_transformer = build
    try:
        yield
    finally:
        backbone.build_swin_transformer = original


def grounding_dino_args(text_encoder: str | Path, config: str = "GroundingDINO_SwinT_OGC.py"):
    """The official config, with the text encoder taken from a local folder."""
    import groundingdino
    from groundingdino.util.slconfig import SLConfig

    args = SLConfig.fromfile(str(Path(groundingdino.__file__).parent / "config" / config))
    args.device = "cpu"
    args.text_encoder_type = str(text_encoder)
    return args


def tiny_grounding_dino(bert_folder: Path) -> torch.nn.Module:
    """Grounding DINO with a tiny Swin and BERT; d_model stays 256 (its text position embedding
    is fixed at 256), feed-forward 32, 1 encoder and 2 decoder layers, 20 queries."""
    from groundingdino.models import build_model

    torch.manual_seed(0)
    args = grounding_dino_args(bert_folder)
    args.dim_feedforward, args.enc_layers, args.dec_layers, args.num_queries = 32, 1, 2, 20
    with _tiny_swin():
        return build_model(args)
