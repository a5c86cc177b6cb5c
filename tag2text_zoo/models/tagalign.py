"""TagAlign (arXiv 2312.14149): CLIP-Surgery dense features and the TagAlign projector.

The frozen CLIP is transformers' ``CLIPVisionModel``; :func:`surgery_tokens` runs its own layers,
adding the CLIP-Surgery v-v attention stream on the last blocks. :class:`TagAlignProjector` is the
trainable head (official key names), loaded from a TagAlign checkpoint by
:func:`load_tagalign_projector`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from transformers.models.clip.modeling_clip import CLIPAttention, CLIPVisionModel

SURGERY_BLOCKS = 6  # the reference hard-codes "the last 6 blocks"

# (checkpoint prefix, our prefix): main-branch and dev-branch names of the projector weights.
_KEY_PREFIXES = (
    ("projector.projector.net.", "net."),
    ("projector.clip_proj.", "clip_proj."),
    ("decoder.decoder.net.", "net."),
    ("decoder.image_proj.", "clip_proj."),
)


class ProjectorError(ValueError):
    """A TagAlign checkpoint whose projector weights cannot be used."""


def _heads(attn: CLIPAttention, x: torch.Tensor, proj: nn.Linear) -> torch.Tensor:
    # [B, N, C] -> [B, heads, N, head_dim]
    return proj(x).unflatten(-1, (attn.num_heads, attn.head_dim)).transpose(1, 2)


def _merge(attn: CLIPAttention, x: torch.Tensor) -> torch.Tensor:
    # [B, heads, N, head_dim] -> [B, N, C] through the block's output projection
    return attn.out_proj(x.transpose(1, 2).flatten(2))


def surgery_tokens(vision: CLIPVisionModel, pixel_values: torch.Tensor) -> torch.Tensor:
    """CLIP-Surgery tokens of a batch of crops (the TagAlign image encoder).

    Blocks before the last :data:`SURGERY_BLOCKS` run as usual. In the last ones a second stream
    accumulates v-v attention (``softmax(v vᵀ/√d) v``, from the ordinary stream's LN1 and the
    block's own projections) without MLP. Positions are resized bicubically to the patch grid.

    Arguments:
        vision: a transformers CLIP vision tower.
        pixel_values: Bx3xHxW normalised crops (any H, W; the grid is floor(H/patch) x ...).

    Returns:
        Bx(1+h*w)xC tokens before ``post_layernorm``: CLS from the ordinary stream, then the
        surgery stream's patch tokens in row-major order.
    """
    x = vision.embeddings(pixel_values, interpolate_pos_encoding=True)
    x = vision.pre_layrnorm(x)
    layers = vision.encoder.layers
    first_surgery = len(layers) - SURGERY_BLOCKS
    surgery = x
    for index, layer in enumerate(layers):
        attn = layer.self_attn
        a = layer.layer_norm1(x)
        q, k, v = (_heads(attn, a, p) for p in (attn.q_proj, attn.k_proj, attn.v_proj))
        if index == first_surgery:
            surgery = x
        if index >= first_surgery:
            surgery = surgery + _merge(attn, F.scaled_dot_product_attention(v, v, v))
        x = x + _merge(attn, F.scaled_dot_product_attention(q, k, v))
        x = x + layer.mlp(layer.layer_norm2(x))
    return torch.cat([x[:, :1], surgery[:, 1:]], dim=1)


def patch_grid(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bx(1+h*w)xC tokens -> BxCxhxw patch features (CLS dropped)."""
    return tokens[:, 1:].transpose(1, 2).unflatten(-1, (height, width))


class _Gate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.gate) * x


class _ConvBlock(nn.Module):
    """Pre-activation residual block ``x + tanh(g) * conv3x3(GELU(LN(x)))`` (LN per pixel)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=1e-5)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.gate = _Gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x + self.gate(self.conv(F.gelu(y)))


class _ResidualUnit(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = _ConvBlock(channels)
        self.conv2 = _ConvBlock(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv(x))


class _ClipProj(nn.Module):
    """Trainable copy of CLIP's ``ln_post`` + ``proj`` (OpenAI orientation, ``x @ proj``)."""

    def __init__(self, channels: int, embed_dim: int) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(channels, eps=1e-5)
        self.proj = nn.Parameter(torch.zeros(channels, embed_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(x) @ self.proj


class TagAlignProjector(nn.Module):
    """The TagAlign conv projector: BxCxhxw surgery features -> BxExhxw embeddings.

    Arguments:
        channels: CLIP vision width C (768 for ViT-B/16).
        embed_dim: CLIP projection dim E (512 for ViT-B/16).
        units: residual units, each of two conv blocks (2 in TagAlign).
    """

    def __init__(self, channels: int, embed_dim: int, units: int = 2) -> None:
        super().__init__()
        self.net = nn.Sequential(*(_ResidualUnit(channels) for _ in range(units)))
        self.clip_proj = _ClipProj(channels, embed_dim)

    @classmethod
    def from_clip(cls, vision: CLIPVisionModel, visual_projection: nn.Linear) -> TagAlignProjector:
        """A fresh projector (gates 0: identity net) whose head copies CLIP's ln_post and proj."""
        channels, embed_dim = visual_projection.in_features, visual_projection.out_features
        projector = cls(channels, embed_dim)
        with torch.no_grad():
            projector.clip_proj.ln.load_state_dict(vision.post_layernorm.state_dict())
            projector.clip_proj.proj.copy_(visual_projection.weight.t())
        return projector

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.net(features)
        return self.clip_proj(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def clip_branch(
    vision: CLIPVisionModel, visual_projection: nn.Linear, features: torch.Tensor
) -> torch.Tensor:
    """The training-free branch: frozen ``post_layernorm`` + ``visual_projection`` per pixel."""
    x = vision.post_layernorm(features.permute(0, 2, 3, 1))
    return visual_projection(x).permute(0, 3, 1, 2)


def projector_state_dict(checkpoint: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """Picks the projector weights out of a TagAlign checkpoint (or its ``'model'`` entry).

    Main-branch (``projector.*``) and dev-branch (``decoder.*``) names are accepted; every other
    entry (frozen CLIP copies, label embeddings, loss scales, optimizer state) is ignored.
    """
    state = checkpoint.get("model", checkpoint)
    if not isinstance(state, Mapping):
        raise ProjectorError("checkpoint has no 'model' state dict")
    picked: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for prefix, ours in _KEY_PREFIXES:
            if key.startswith(prefix) and isinstance(value, torch.Tensor):
                picked[ours + key[len(prefix) :]] = value
    return picked


def _infer_shape(state: Mapping[str, torch.Tensor]) -> tuple[int, int, int]:
    proj = state.get("clip_proj.proj")
    if proj is None or proj.ndim != 2:
        raise ProjectorError(
            "checkpoint has no projector weights 'projector.clip_proj.proj' "
            "(or dev-branch 'decoder.image_proj.proj')"
        )
    units = {int(k.split(".")[1]) for k in state if k.startswith("net.")}
    return proj.shape[0], proj.shape[1], max(units, default=1) + 1


def load_tagalign_projector(path: str | os.PathLike) -> TagAlignProjector:
    """Builds a :class:`TagAlignProjector` from a TagAlign checkpoint file.

    The file is read with ``torch.load(weights_only=True)``: no pickled code runs. Real TagAlign
    checkpoints pickle an OmegaConf ``config``; re-save them without it (``torch.save({"model":
    ckpt["model"]}, path)``) if loading fails for that reason.

    Raises:
        ProjectorError: the file cannot be read safely, or projector weights are missing
            (named, with their official names) or have the wrong shape.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, ... by cause
        raise ProjectorError(f"cannot read TagAlign checkpoint {path}: {err}") from err
    if not isinstance(checkpoint, Mapping):
        raise ProjectorError(f"{path}: not a TagAlign checkpoint (expected a dict)")
    state = projector_state_dict(checkpoint)
    try:
        channels, embed_dim, units = _infer_shape(state)
    except ProjectorError as err:
        raise ProjectorError(f"{path}: {err}") from None
    projector = TagAlignProjector(channels, embed_dim, units)
    expected = projector.state_dict()
    missing = [k for k in expected if k not in state]
    if missing:
        names = ", ".join(_official_name(k) for k in missing)
        raise ProjectorError(f"{path}: missing projector weights: {names}")
    for key, value in expected.items():
        if state[key].shape != value.shape:
            raise ProjectorError(
                f"{path}: projector weight {_official_name(key)} has shape "
                f"{tuple(state[key].shape)}, expected {tuple(value.shape)}"
            )
    projector.load_state_dict({k: state[k] for k in expected})
    return projector


def _official_name(key: str) -> str:
    prefix = "projector.projector." if key.startswith("net.") else "projector."
    return prefix + key


def tagalign_state_dict(projector: TagAlignProjector) -> dict[str, torch.Tensor]:
    """The projector's weights under main-branch TagAlign names (for saving checkpoints)."""
    return {_official_name(k): v for k, v in projector.state_dict().items()}
