"""The label decoder: label queries cross-attend to image tokens, then a per-class linear score."""

from __future__ import annotations

import torch
from torch import nn

from .bert import BertEncoder, BertLayer
from .config import TaggingHeadConfig


class TaggingHead(nn.Module):
    """Cross-attention-only BERT layers over label queries (no self-attention between labels)."""

    def __init__(self, cfg: TaggingHeadConfig) -> None:
        super().__init__()
        if cfg.self_attention:
            raise ValueError("a tagging head with self-attention is not supported")
        if cfg.hidden_act != "gelu":
            raise ValueError(f"unsupported hidden_act {cfg.hidden_act!r}")
        layers = [
            BertLayer(
                cfg.hidden_size,
                cfg.num_attention_heads,
                cfg.intermediate_size,
                cfg.layer_norm_eps,
                cross_width=cfg.cross_attention_width,
                self_attention=False,
            )
            for _ in range(cfg.num_hidden_layers)
        ]
        self.encoder = BertEncoder(layers)

    def forward(self, queries: torch.Tensor, image_embeds: torch.Tensor) -> torch.Tensor:
        """Decodes label queries against image tokens.

        Args:
            queries: ``[C, H]`` label queries shared by all images, or ``[B, C, H]`` per image.
            image_embeds: ``[B, N, W]`` image tokens.

        Returns:
            ``[B, C, H]`` label states.
        """
        hidden = queries.expand(image_embeds.shape[0], -1, -1)
        for layer in self.encoder.layer:
            hidden = layer(hidden, cross_kv=layer.crossattention.self.keys_values(image_embeds))
        return hidden

    def share_layers_with(self, encoder_layers: nn.ModuleList, indices: tuple[int, ...]) -> None:
        """Ties layer ``i`` to ``encoder_layers[i]`` for each index, as the reference does.

        Everything but the head count is shared: the tagging head keeps its own number of heads.
        """
        for i in indices:
            mine, theirs = self.encoder.layer[i], encoder_layers[i]
            for name in ("query", "key", "value"):
                setattr(mine.crossattention.self, name, getattr(theirs.crossattention.self, name))
            mine.crossattention.output = theirs.crossattention.output
            mine.intermediate = theirs.intermediate
            mine.output = theirs.output


class PerClassLinear(nn.Module):
    """A weight vector and bias per class: ``logit[c] = W[c] . h[c] + b[c]`` (Tag2Text's ``fc``)."""

    def __init__(self, num_classes: int, hidden_size: int) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.empty(1, num_classes, hidden_size))
        self.b = nn.Parameter(torch.empty(1, num_classes))
        nn.init.normal_(self.W, std=hidden_size**-0.5)
        nn.init.zeros_(self.b)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[B, C, H]`` -> ``[B, C]``."""
        return (self.W * hidden).sum(-1) + self.b
