"""Tag2Text: Swin image encoder, tagging head, tag encoder and caption decoder, composed."""

from __future__ import annotations

import torch
from timm.models.swin_transformer import SwinTransformer
from torch import nn

from .bert import BertModel, TextDecoder
from .config import ModelConfig
from .swin import build_swin, swin_tokens
from .tagging_head import PerClassLinear, TaggingHead


class Tag2Text(nn.Module):
    """Pure tensor model; stages exposed so that one image encoding serves tags and captions.

    Attribute names follow the official checkpoint (``visual_encoder``, ``tagging_head``,
    ``tag_encoder``, ``text_decoder``, ``label_embed``, ``fc``).
    """

    def __init__(
        self,
        visual_encoder: SwinTransformer,
        tagging_head: TaggingHead,
        tag_encoder: BertModel,
        text_decoder: TextDecoder,
        label_embed: nn.Embedding,
        fc: PerClassLinear,
    ) -> None:
        super().__init__()
        self.visual_encoder = visual_encoder
        self.tagging_head = tagging_head
        self.tag_encoder = tag_encoder
        self.text_decoder = text_decoder
        self.label_embed = label_embed
        self.fc = fc

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[B, 3, S, S]`` normalized images -> ``[B, 1 + N, C]`` image tokens."""
        return swin_tokens(self.visual_encoder, pixel_values)

    def tag_logits(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """``[B, 1 + N, C]`` -> ``[B, num_tags]`` logits (before the sigmoid)."""
        return self.tagging_head(self.label_embed.weight, image_embeds, classify=self.fc)

    def encode_tags(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, image_embeds: torch.Tensor
    ) -> torch.Tensor:
        """Tag-string tokens ``[B, L]`` (first id ``[ENC]``) -> ``[B, L, H]`` tag-encoder states."""
        return self.tag_encoder(input_ids, attention_mask, image_embeds)


def build_bert(cfg: ModelConfig, cross_width: int) -> BertModel:
    """The BERT of ``cfg.text`` whose cross-attention reads ``cross_width``-wide states."""
    t = cfg.text
    assert t is not None
    if t.hidden_act != "gelu":
        raise ValueError(f"unsupported hidden_act {t.hidden_act!r}")
    return BertModel(
        vocab_size=t.vocab_size,
        hidden_size=t.hidden_size,
        num_layers=t.num_hidden_layers,
        num_heads=t.num_attention_heads,
        intermediate_size=t.intermediate_size,
        max_positions=t.max_position_embeddings,
        eps=t.layer_norm_eps,
        pad_token_id=t.pad_token_id,
        cross_width=cross_width,
    )


def build_tag2text(cfg: ModelConfig) -> Tag2Text:
    """Builds a randomly initialised Tag2Text of any size from its config."""
    if cfg.model_type != "tag2text" or cfg.text is None or cfg.tagging_head is None:
        raise ValueError(f"not a Tag2Text config (model_type={cfg.model_type!r})")
    text, head_cfg = cfg.text, cfg.tagging_head
    if head_cfg.hidden_size != text.hidden_size:
        raise ValueError("tagging_head.hidden_size must equal text.hidden_size")
    tag_encoder = build_bert(cfg, text.tag_encoder_cross_attention_width)
    text_decoder = TextDecoder(
        build_bert(cfg, text.text_decoder_cross_attention_width), text.layer_norm_eps
    )
    tagging_head = TaggingHead(head_cfg)
    tagging_head.share_layers_with(
        tag_encoder.layers, tuple(head_cfg.shares_weights_with_tag_encoder_layers)
    )
    return Tag2Text(
        visual_encoder=build_swin(cfg.vision, cfg.image_size),
        tagging_head=tagging_head,
        tag_encoder=tag_encoder,
        text_decoder=text_decoder,
        label_embed=nn.Embedding(cfg.num_tags, text.hidden_size),
        fc=PerClassLinear(cfg.num_tags, text.hidden_size),
    )
