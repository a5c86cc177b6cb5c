"""Swin visual encoder: timm's ``SwinTransformer`` with the reference's token layout and keys."""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from timm.models.swin_transformer import SwinTransformer, WindowAttention

from .config import SwinConfig

# The Microsoft layout puts a stage's PatchMerging at its end ("layers.i.downsample"); timm puts
# it at the start of the next stage ("layers.{i+1}.downsample"). Same weights, shifted index.
_OFFICIAL_DOWNSAMPLE = re.compile(r"^(.*\blayers\.)(\d+)(\.downsample\..*)$")


class SharedMaskWindowAttention(WindowAttention):
    """timm's fused window attention, with one shifted-window mask for all images of a batch.

    timm adds the shift mask to the relative-position bias for every window of every image, which
    builds and reads a ``[images x windows, heads, N, N]`` tensor in each shifted block, larger
    than the activations; here the sum is ``[1, windows x heads, N, N]`` and attention broadcasts
    it over the images. Same arithmetic, in the same order (float64 parity tests cover it).
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None or self.training or not self.fused_attn:
            return super().forward(x, mask)
        windows, tokens, _ = x.shape
        num_win = mask.shape[0]
        qkv = self.qkv(x).reshape(windows // num_win, num_win, tokens, 3, self.num_heads, -1)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).flatten(2, 3).unbind(0)  # [B, nW x heads, N, d]
        attn_mask = (self._get_rel_pos_bias() + mask.unsqueeze(1)).flatten(0, 1).unsqueeze(0)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        out = out.unflatten(1, (num_win, self.num_heads)).flatten(0, 1)  # [B x nW, heads, N, d]
        return self.proj(out.transpose(1, 2).reshape(windows, tokens, -1))


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
    # that made attention a third of bfloat16 inference time on the CPU (README, Performance).
    for module in swin.modules():
        if isinstance(module, WindowAttention):
            module.fused_attn = True
            module.__class__ = SharedMaskWindowAttention  # a forward override, no new state
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
