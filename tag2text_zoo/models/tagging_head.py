"""The label decoder: label queries cross-attend to image tokens, then a per-class linear score."""

from __future__ import annotations

from collections.abc import Callable

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

    def forward(
        self,
        queries: torch.Tensor,
        image_embeds: torch.Tensor,
        classify: Callable[[torch.Tensor, slice], torch.Tensor] | None = None,
        rows_per_chunk: int = 2048,
    ) -> torch.Tensor:
        """Decodes label queries against image tokens.

        Labels never attend to each other, so the queries go through in chunks of about
        ``rows_per_chunk`` rows (images x labels): each chunk's intermediates stay small enough
        to be reused from the allocator instead of being faulted in afresh for every call, which
        is what made large batches slower per image. The image keys and values are projected
        once for all chunks.

        Args:
            queries: ``[C, H]`` label queries shared by all images, or ``[B, C, H]`` per image.
            image_embeds: ``[B, N, W]`` image tokens.
            classify: maps a chunk's label states ``[B, c, H]`` and the chunk's labels (a slice
                of the C) to per-label outputs; applied chunk by chunk when given.

        Returns:
            ``[B, C, H]`` label states, or ``classify``'s outputs concatenated along labels.
        """
        batch = image_embeds.shape[0]
        layers = self.encoder.layer
        kvs = [layer.crossattention.self.keys_values(image_embeds) for layer in layers]
        step = max(1, rows_per_chunk // batch)
        outputs = []
        for start in range(0, queries.shape[-2], step):
            labels = slice(start, start + step)
            hidden = queries[..., labels, :].expand(batch, -1, -1)
            for layer, kv in zip(layers, kvs):
                hidden = layer(hidden, cross_kv=kv)
            outputs.append(hidden if classify is None else classify(hidden, labels))
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)

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

    def forward(self, hidden: torch.Tensor, classes: slice = slice(None)) -> torch.Tensor:
        """``[B, c, H]`` states of ``classes`` (all by default) -> ``[B, c]`` logits."""
        return torch.einsum("bch,ch->bc", hidden, self.W[0, classes]) + self.b[0, classes]
