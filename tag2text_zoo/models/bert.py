"""Compact BERT blocks with the reference's (BLIP "med") semantics and official parameter names.

Post-LN layers of self-attention, optional cross-attention and a GELU feed-forward; attention runs
through ``scaled_dot_product_attention``. The caption decoder keeps a key/value cache whose
cross-attention part is stored once per image and shared by that image's beams.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .kv_cache import KVCache

KeyValue = tuple[torch.Tensor, torch.Tensor]


class MultiHeadAttention(nn.Module):
    """Query/key/value projections and SDPA (``...attention.self`` in official names)."""

    def __init__(self, hidden_size: int, num_heads: int, kv_width: int | None = None) -> None:
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden size {hidden_size} is not a multiple of {num_heads} heads")
        self.num_heads = num_heads
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(kv_width or hidden_size, hidden_size)
        self.value = nn.Linear(kv_width or hidden_size, hidden_size)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        # BxLxH -> Bxheadsx Lxd
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def keys_values(self, states: torch.Tensor) -> KeyValue:
        """Projects ``[B, L, W]`` states to per-head keys and values ``[B, heads, L, d]``."""
        return self._split(self.key(states)), self._split(self.value(states))

    def forward(
        self,
        hidden: torch.Tensor,
        kv: KeyValue,
        mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        """Attends ``hidden`` ``[R, L, H]`` to ``kv``.

        ``kv`` may hold fewer rows than ``hidden`` (one per image while ``hidden`` holds that
        image's beams, consecutive): the beams are folded into the query axis, which is exact for
        unmasked attention. Rows that are one row expanded (the tagging head's label queries,
        the same for every image) are projected once.
        """
        rows, length, width = hidden.shape
        group = rows // kv[0].shape[0]
        if group > 1:
            if mask is not None or is_causal:
                raise ValueError("grouped queries are only valid for unmasked attention")
            hidden = hidden.reshape(rows // group, group * length, width)
        projected = hidden[:1] if hidden.stride(0) == 0 else hidden  # expanded: its one row
        q = self._split(self.query(projected).expand(hidden.shape[0], -1, -1))
        out = F.scaled_dot_product_attention(q, kv[0], kv[1], attn_mask=mask, is_causal=is_causal)
        return out.transpose(1, 2).flatten(2).reshape(rows, length, width)


class AddNorm(nn.Module):
    """``LayerNorm(dense(x) + residual)`` (``...output`` in official names)."""

    def __init__(self, in_features: int, hidden_size: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class AttentionBlock(nn.Module):
    """Attention plus its output AddNorm (``attention`` / ``crossattention``)."""

    def __init__(self, hidden_size: int, num_heads: int, eps: float, kv_width: int | None = None):
        super().__init__()
        self.self = MultiHeadAttention(hidden_size, num_heads, kv_width)
        self.output = AddNorm(hidden_size, hidden_size, eps)

    def forward(self, hidden: torch.Tensor, kv: KeyValue, **attn_kwargs) -> torch.Tensor:
        return self.output(self.self(hidden, kv, **attn_kwargs), hidden)


class Intermediate(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, intermediate_size)
        self.act = nn.GELU()  # exact erf GELU, as the reference; a module, so it can be fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class BertLayer(nn.Module):
    """Self-attention (optional), cross-attention (optional), feed-forward; post-LN."""

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        intermediate_size: int,
        eps: float,
        cross_width: int | None,
        self_attention: bool = True,
    ) -> None:
        super().__init__()
        if self_attention:
            self.attention = AttentionBlock(hidden_size, num_heads, eps)
        if cross_width is not None:
            self.crossattention = AttentionBlock(hidden_size, num_heads, eps, cross_width)
        self.intermediate = Intermediate(hidden_size, intermediate_size)
        self.output = AddNorm(intermediate_size, hidden_size, eps)

    def forward(
        self,
        hidden: torch.Tensor,
        self_kv: KeyValue | None = None,
        self_mask: torch.Tensor | None = None,
        is_causal: bool = False,
        cross_kv: KeyValue | None = None,
    ) -> torch.Tensor:
        if hasattr(self, "attention"):
            kv = self_kv if self_kv is not None else self.attention.self.keys_values(hidden)
            hidden = self.attention(hidden, kv, mask=self_mask, is_causal=is_causal)
        if cross_kv is not None:
            hidden = self.crossattention(hidden, cross_kv)
        return self.output(self.intermediate(hidden), hidden)


class BertEmbeddings(nn.Module):
    """Word + absolute position embeddings and LayerNorm (no token types)."""

    def __init__(self, vocab_size: int, hidden_size: int, max_positions: int, eps: float, pad: int):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, hidden_size, padding_idx=pad)
        self.position_embeddings = nn.Embedding(max_positions, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)
        # Rebuilt, not loaded: the official files store it, the loader drops it by name.
        self.register_buffer(
            "position_ids", torch.arange(max_positions).unsqueeze(0), persistent=False
        )

    def init_non_persistent_buffers(self) -> None:
        """Recomputes ``position_ids`` (after construction on the meta device)."""
        self.position_ids.copy_(torch.arange(self.position_ids.shape[1]).unsqueeze(0))

    def forward(
        self, input_ids: torch.Tensor, past_length: int = 0, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``[B, T]`` ids from position ``past_length`` on, or at ``positions`` ``[B, T]``."""
        if positions is None:
            positions = self.position_ids[:, past_length : past_length + input_ids.shape[1]]
        return self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(positions))


class BertEncoder(nn.Module):
    def __init__(self, layers: list[BertLayer]) -> None:
        super().__init__()
        self.layer = nn.ModuleList(layers)


class BertModel(nn.Module):
    """Embeddings plus layers; the tag encoder, and the body of the caption decoder."""

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        num_layers: int,
        num_heads: int,
        intermediate_size: int,
        max_positions: int,
        eps: float,
        pad_token_id: int,
        cross_width: int,
    ) -> None:
        super().__init__()
        self.embeddings = BertEmbeddings(vocab_size, hidden_size, max_positions, eps, pad_token_id)
        self.encoder = BertEncoder(
            [
                BertLayer(hidden_size, num_heads, intermediate_size, eps, cross_width)
                for _ in range(num_layers)
            ]
        )

    @property
    def layers(self) -> nn.ModuleList:
        return self.encoder.layer

    def cross_keys_values(self, states: torch.Tensor) -> list[KeyValue]:
        """Per-layer cross-attention keys/values of ``states`` ``[B, L, W]``."""
        return [layer.crossattention.self.keys_values(states) for layer in self.layers]

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        encoder_states: torch.Tensor,
    ) -> torch.Tensor:
        """Bidirectional encoding of ``input_ids`` ``[B, L]`` attending to ``encoder_states``.

        Padded key positions (``attention_mask`` 0) are masked; padded query positions still get
        outputs, which the caption decoder reads (as the reference does).
        """
        hidden = self.embeddings(input_ids)
        key_mask = attention_mask.bool()[:, None, None, :]  # Bx1x1xL, True = attend
        for layer in self.layers:
            cross_kv = layer.crossattention.self.keys_values(encoder_states)
            hidden = layer(hidden, self_mask=key_mask, cross_kv=cross_kv)
        return hidden


class PredictionTransform(nn.Module):
    def __init__(self, hidden_size: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(F.gelu(self.dense(x)))


class LMPredictionHead(nn.Module):
    """Transform then the word-embedding matrix (tied) plus a bias (tied to ``decoder.bias``)."""

    def __init__(self, word_embeddings: nn.Embedding, eps: float) -> None:
        super().__init__()
        vocab_size, hidden_size = word_embeddings.weight.shape
        self.transform = PredictionTransform(hidden_size, eps)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        self.decoder.weight = word_embeddings.weight
        self.bias = self.decoder.bias

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(hidden))


class LMHead(nn.Module):
    def __init__(self, word_embeddings: nn.Embedding, eps: float) -> None:
        super().__init__()
        self.predictions = LMPredictionHead(word_embeddings, eps)


class TextDecoder(nn.Module):
    """Causal BERT with cross-attention to the tag encoder and a tied LM head."""

    def __init__(self, bert: BertModel, eps: float) -> None:
        super().__init__()
        self.bert = bert
        self.cls = LMHead(bert.embeddings.word_embeddings, eps)

    def new_cache(
        self,
        encoder_states: torch.Tensor,
        rows_per_image: int = 1,
        max_length: int | None = None,
        slots: int | None = None,
    ) -> KVCache:
        """An empty cache for ``slots`` images (default: those of ``encoder_states``
        ``[B, L, H]``, whose cross keys/values fill the first slots), ``rows_per_image`` rows
        each, sequences of up to ``max_length`` tokens (default: the position table's size)."""
        attention = self.bert.layers[0].attention.self
        heads = attention.num_heads
        cache = KVCache(
            layers=len(self.bert.layers),
            slots=encoder_states.shape[0] if slots is None else slots,
            rows_per_slot=rows_per_image,
            heads=heads,
            head_dim=attention.query.out_features // heads,
            max_length=max_length or self.bert.embeddings.position_ids.shape[1],
            cross_length=encoder_states.shape[1],
            dtype=encoder_states.dtype,
            device=encoder_states.device,
        )
        if encoder_states.shape[0]:
            self.set_cross_states(cache, 0, encoder_states)
        return cache

    def set_cross_states(self, cache: KVCache, first_slot: int, states: torch.Tensor) -> None:
        """Puts the cross keys/values of ``states`` ``[n, L, H]`` in slots ``first_slot`` on."""
        kv = self.bert.cross_keys_values(states)
        cache.set_cross(
            first_slot, torch.stack([k for k, _ in kv]), torch.stack([v for _, v in kv])
        )

    def prefill(self, input_ids: torch.Tensor, cache: KVCache, rows: list[int]) -> torch.Tensor:
        """Runs ``input_ids`` ``[n, T]`` (causal) as the first tokens of the empty cache ``rows``.

        Returns:
            ``[n, vocab]`` logits for the token after the last of ``input_ids``.
        """
        if any(cache.lengths[r] for r in rows):
            raise ValueError("multi-token steps are only supported on an empty cache")
        length = input_ids.shape[1]
        index = torch.tensor(rows, device=input_ids.device)
        slots = index // cache.rows_per_slot
        hidden = self.bert.embeddings(input_ids)
        for i, layer in enumerate(self.bert.layers):
            k, v = layer.attention.self.keys_values(hidden)
            cache.keys[i, index, :, :length] = k
            cache.values[i, index, :, :length] = v
            cross_kv = (cache.cross_keys[i, slots], cache.cross_values[i, slots])
            hidden = layer(hidden, self_kv=(k, v), is_causal=length > 1, cross_kv=cross_kv)
        for row in rows:
            cache.lengths[row] = length
        return self.cls.predictions(hidden[:, -1])

    def step(self, tokens: torch.Tensor, cache: KVCache, static: bool = False) -> torch.Tensor:
        """Appends ``tokens`` ``[R]`` to the cache's first R rows; ``[R, vocab]`` next logits.

        Rows may hold sequences of different lengths. The caller advances ``cache.lengths``
        (:meth:`KVCache.advance`). ``static``: read the positions from ``cache.positions`` and
        attend over all ``max_length`` positions under a mask, so that shapes do not change from
        step to step (CUDA graphs); otherwise only over the positions in use.
        """
        rows = tokens.shape[0]
        lengths = cache.lengths[:rows]
        key_length, mask = cache.max_length, None
        if static or min(lengths) != max(lengths):
            positions = cache.positions[:rows] if static else cache.device_positions(rows)
            if not static:
                key_length = max(lengths) + 1
            keys = torch.arange(key_length, device=tokens.device)
            mask = (keys <= positions[:, None])[:, None, None, :]  # Rx1x1xK, True = attend
            write = (torch.arange(rows, device=tokens.device), slice(None), positions)
            hidden = self.bert.embeddings(tokens[:, None], positions=positions[:, None])
        else:  # one length: plain slices and no mask
            key_length = lengths[0] + 1
            write = (slice(0, rows), slice(None), lengths[0])
            hidden = self.bert.embeddings(tokens[:, None], past_length=lengths[0])
        images = rows // cache.rows_per_slot
        for i, layer in enumerate(self.bert.layers):
            k, v = layer.attention.self.keys_values(hidden)
            cache.keys[i][write] = k[:, :, 0]
            cache.values[i][write] = v[:, :, 0]
            self_kv = (cache.keys[i, :rows, :, :key_length], cache.values[i, :rows, :, :key_length])
            cross_kv = (cache.cross_keys[i, :images], cache.cross_values[i, :images])
            hidden = layer(hidden, self_kv=self_kv, self_mask=mask, cross_kv=cross_kv)
        return self.cls.predictions(hidden[:, 0])

    def forward(self, input_ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Appends ``input_ids`` ``[R, T]`` to the cache's first R sequences (several tokens
        only on an empty cache); returns ``[R, vocab]`` logits for the token after the last."""
        rows = input_ids.shape[0]
        if input_ids.shape[1] > 1:
            return self.prefill(input_ids, cache, list(range(rows)))
        logits = self.step(input_ids[:, 0], cache)
        cache.advance(rows)
        return logits
