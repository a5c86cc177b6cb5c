"""Swin visual encoder: timm's ``SwinTransformer`` with the reference's token layout and keys."""

from __future__ import annotations

import re

import torch
from timm.models.swin_transformer import SwinTransformer, WindowAttention

from .config import SwinConfig

# The Microsoft layout puts a stage's PatchMerging at its end ("layers.i.downsample"); timm puts
# it at the start of the next stage ("layers.{i+1}.downsample"). Same weights, shifted index.
_OFFICIAL_DOWNSAMPLE = re.compile(r"^(.*\blayers\.)(\d+)(\.downsample\..*)$")


def build_swin(cfg: SwinConfig, image_size: int) -> SwinTransformer:
    """Builds a headless timm Swin matching ``cfg`` (no absolute position embedding)."""
    if cfg.ape:
        raise ValueError("Swin with an absolute position embedding (ape=true) is not supported")
    if not cfg.patch_norm or cfg.type != "swin":
        raise ValueError(
            f"unsupported vision config: type={cfg.type!r}, patch_norm={cfg.patch_norm}"
        )
    swin = SwinTransformer(
        img_size=image_size,
        patch_size=cfg.patch_size,
        in_chans=cfg.in_chans,
        num_classes=0,
        global_pool="",
        embed_dim=cfg.embed_dim,
        depths=tuple(cfg.depths),
        num_heads=tuple(cfg.num_heads),
        window_size=cfg.window_size,
        mlp_ratio=cfg.mlp_ratio,
        qkv_bias=cfg.qkv_bias,
        drop_path_rate=0.0,
    )
    # timm leaves its fused window attention off as "experimental"; it is the same computation
    # through scaled_dot_product_attention, without the [windows, heads, N, N] score tensors
    # that made attention a third of bfloat16 inference time on the CPU (benchmarks/README.md).
    for module in swin.modules():
        if isinstance(module, WindowAttention):
            module.fused_attn = True
    return swin


def swin_tokens(swin: SwinTransformer, pixel_values: torch.Tensor) -> torch.Tensor:
    """Runs the encoder the reference's way.

    Args:
        swin: the encoder from :func:`build_swin`.
        pixel_values: normalized images, ``[B, 3, S, S]``.

    Returns:
        ``[B, 1 + N, C]``: the mean of the N final-normed tokens, then the tokens (row-major).
    """
    tokens = swin.forward_features(pixel_values).flatten(1, 2)  # BxHxWxC -> BxNxC
    return torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)


def official_to_timm_key(key: str) -> str:
    """``...layers.i.downsample...`` (official) -> ``...layers.{i+1}.downsample...`` (timm)."""
    m = _OFFICIAL_DOWNSAMPLE.match(key)
    return f"{m[1]}{int(m[2]) + 1}{m[3]}" if m else key


def timm_to_official_key(key: str) -> str:
    """Inverse of :func:`official_to_timm_key`."""
    m = _OFFICIAL_DOWNSAMPLE.match(key)
    return f"{m[1]}{int(m[2]) - 1}{m[3]}" if m else key
