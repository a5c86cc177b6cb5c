"""RAM and RAM++: Swin image encoder, 512-d projection, label embeddings and a shared classifier.

Both reuse Tag2Text's blocks (timm Swin, the cross-attention-only tagging head, the BERT tag encoder
and caption decoder that official RAM checkpoints carry but tagging never runs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models.swin_transformer import SwinTransformer
from torch import nn

from .bert import BertModel, TextDecoder
from .config import ModelConfig
from .swin import build_swin, swin_tokens
from .tag2text import build_bert
from .tagging_head import TaggingHead


class RAM(nn.Module):
    """RAM (``descriptions_per_class`` None) or RAM++ (several description embeddings per class).

    Attribute names follow the official checkpoints (``visual_encoder``, ``image_proj``,
    ``label_embed``, ``wordvec_proj``, ``tagging_head``, ``fc``, ``reweight_scale``, and for RAM
    ``tag_encoder`` / ``text_decoder``).
    """

    def __init__(
        self,
        visual_encoder: SwinTransformer,
        image_proj: nn.Linear,
        label_embed: nn.Parameter,
        wordvec_proj: nn.Linear,
        tagging_head: TaggingHead,
        fc: nn.Linear,
        *,
        descriptions_per_class: int | None = None,
        tag_encoder: BertModel | None = None,
        text_decoder: TextDecoder | None = None,
    ) -> None:
        super().__init__()
        self.visual_encoder = visual_encoder
        self.image_proj = image_proj
        self.label_embed = label_embed
        self.wordvec_proj = wordvec_proj
        self.tagging_head = tagging_head
        self.fc = fc
        self.descriptions_per_class = descriptions_per_class
        if descriptions_per_class is not None:
            self.reweight_scale = nn.Parameter(torch.tensor(1 / 0.07).log())
        if tag_encoder is not None:
            self.tag_encoder = tag_encoder
        if text_decoder is not None:
            self.text_decoder = text_decoder

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[B, 3, S, S]`` normalized images -> ``[B, 1 + N, 512]`` projected image tokens."""
        return self.image_proj(swin_tokens(self.visual_encoder, pixel_values))

    def default_label_embeddings(self) -> torch.Tensor:
        """The checkpoint's label embeddings: ``[C, 512]`` (RAM) or ``[C, K, 512]`` (RAM++)."""
        if self.descriptions_per_class is None:
            return self.label_embed
        return self.label_embed.unflatten(0, (-1, self.descriptions_per_class))

    def description_weights(
        self,
        image_embeds: torch.Tensor,
        label_embed: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """RAM++: softmax weights ``[B, C, K]`` of each class's K descriptions for each image.

        Args:
            image_embeds: ``[B, 1 + N, 512]`` from :meth:`encode_image`.
            label_embed: ``[C, K, 512]`` description embeddings (used as given, not normalized).
            mask: optional ``[C, K]`` bool, False for padding (classes with fewer descriptions).
        """
        cls = F.normalize(image_embeds[:, 0], dim=-1)
        # One matrix product over the flat [C x K, 512] table, read in place (an einsum here
        # copied the 120M-value table transposed on every call).
        flat = F.linear(cls, label_embed.flatten(0, 1)).unflatten(-1, label_embed.shape[:2])
        scores = self.reweight_scale.exp() * flat
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return scores.softmax(dim=-1)

    def label_queries(
        self,
        image_embeds: torch.Tensor,
        label_embed: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Tagging-head queries: ``[C, H]`` for RAM, ``[B, C, H]`` (image dependent) for RAM++.

        ``label_embed`` (and ``mask``) replace the checkpoint's embeddings, e.g. for an open-set
        vocabulary: ``[C, 512]`` for RAM, ``[C, K, 512]`` for RAM++.
        """
        if label_embed is None:
            label_embed = self.default_label_embeddings()
        if self.descriptions_per_class is not None:
            device = label_embed.device.type
            if torch.is_autocast_enabled(device):  # cast once for both products, not twice
                label_embed = label_embed.to(torch.get_autocast_dtype(device))
            weights = self.description_weights(image_embeds, label_embed, mask)
            label_embed = torch.einsum("bck,ckw->bcw", weights, label_embed)
        return F.relu(self.wordvec_proj(label_embed))

    def tag_logits(
        self,
        image_embeds: torch.Tensor,
        label_embed: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``[B, 1 + N, 512]`` -> ``[B, C]`` logits (before the sigmoid).

        ``label_embed`` and ``mask`` are as in :meth:`label_queries`.
        """
        queries = self.label_queries(image_embeds, label_embed, mask)
        return self.tagging_head(
            queries, image_embeds, classify=lambda hidden, _: self.fc(hidden).squeeze(-1)
        )


def _linear(cfg: ModelConfig, name: str) -> nn.Linear:
    section = getattr(cfg, name)
    if section is None:
        raise ValueError(f"a {cfg.model_type} config needs a '{name}' section")
    return nn.Linear(section.in_features, section.out_features)


def _build(cfg: ModelConfig, plus: bool) -> RAM:
    if cfg.tagging_head is None or cfg.label_embed is None:
        raise ValueError(f"a {cfg.model_type} config needs 'tagging_head' and 'label_embed'")
    fc = _linear(cfg, "fc")
    if fc.out_features != 1:
        raise ValueError("RAM's fc is shared by all classes and has one output")
    rows, width = cfg.label_embed.shape
    per_class = cfg.label_embed.descriptions_per_class
    if rows != cfg.num_tags * (per_class or 1):
        raise ValueError(f"label_embed has {rows} rows; {cfg.num_tags} tags x {per_class or 1}")
    if plus != (per_class is not None):
        raise ValueError("RAM++ needs label_embed.descriptions_per_class; RAM must not set it")
    tagging_head = TaggingHead(cfg.tagging_head)
    tag_encoder = text_decoder = None
    if not plus:
        if cfg.text is None:
            raise ValueError("a RAM config needs a 'text' section (tag encoder and decoder)")
        tag_encoder = build_bert(cfg, cfg.text.tag_encoder_cross_attention_width)
        text_decoder = TextDecoder(
            build_bert(cfg, cfg.text.text_decoder_cross_attention_width), cfg.text.layer_norm_eps
        )
        tagging_head.share_layers_with(
            tag_encoder.layers, tuple(cfg.tagging_head.shares_weights_with_tag_encoder_layers)
        )
    return RAM(
        visual_encoder=build_swin(cfg.vision, cfg.image_size),
        image_proj=_linear(cfg, "image_proj"),
        label_embed=nn.Parameter(torch.zeros(rows, width)),
        wordvec_proj=_linear(cfg, "wordvec_proj"),
        tagging_head=tagging_head,
        fc=fc,
        descriptions_per_class=per_class,
        tag_encoder=tag_encoder,
        text_decoder=text_decoder,
    )


def build_ram(cfg: ModelConfig) -> RAM:
    """Builds a randomly initialised RAM (with its unused tag encoder and decoder)."""
    if cfg.model_type != "ram":
        raise ValueError(f"not a RAM config (model_type={cfg.model_type!r})")
    return _build(cfg, plus=False)


def build_ram_plus(cfg: ModelConfig) -> RAM:
    """Builds a randomly initialised RAM++ from its config."""
    if cfg.model_type != "ram_plus":
        raise ValueError(f"not a RAM++ config (model_type={cfg.model_type!r})")
    return _build(cfg, plus=True)
