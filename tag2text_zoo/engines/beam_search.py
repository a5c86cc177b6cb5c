"""Batched caption generation with the reference's semantics (transformers 4.25.1 rules).

Beam search keeps every image's search independent, as the reference does, but runs all images'
beams in one decoder call per step, reuses one image's cross-attention states for its beams, and
drops finished images from the batch. Sampling (nucleus) is provided too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F

from ..models.bert import DecoderCache, TextDecoder
from ..models.config import GenerationConfig


class IncrementalDecoder(Protocol):
    """A decoder over R running sequences that belong to B images (R / B consecutive rows each)."""

    device: torch.device

    def step(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Appends ``[R, T]`` tokens; returns ``[R, V]`` next-token logits."""
        ...

    def repeat(self, times: int) -> None:
        """Gives each running sequence ``times`` consecutive copies."""
        ...

    def select(self, rows: torch.Tensor, images: torch.Tensor | None) -> None:
        """Keeps ``rows`` (reordered); ``images`` (if given) are the images still running."""
        ...


class CachedDecoder:
    """:class:`IncrementalDecoder` over a :class:`TextDecoder` with a key/value cache."""

    def __init__(self, decoder: TextDecoder, encoder_states: torch.Tensor) -> None:
        self.decoder = decoder
        self.device = encoder_states.device
        self.cache: DecoderCache = decoder.new_cache(encoder_states)

    def step(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.decoder(input_ids, self.cache)

    def repeat(self, times: int) -> None:
        self.cache.repeat_rows(times)

    def select(self, rows: torch.Tensor, images: torch.Tensor | None) -> None:
        if images is None:
            self.cache.select_rows(rows)
        else:
            self.cache.select_images(images, rows)


@dataclass
class _Hypotheses:
    """Finished hypotheses of one image (transformers 4.25.1 ``BeamHypotheses``)."""

    num_beams: int
    length_penalty: float
    beams: list[tuple[float, list[int]]] = field(default_factory=list)
    worst_score: float = 1e9

    def add(self, tokens: list[int], sum_logprobs: float) -> None:
        score = sum_logprobs / (len(tokens) ** self.length_penalty)
        if len(self.beams) < self.num_beams or score > self.worst_score:
            self.beams.append((score, tokens))
            if len(self.beams) > self.num_beams:
                ranked = sorted((s, i) for i, (s, _) in enumerate(self.beams))
                del self.beams[ranked[0][1]]
                self.worst_score = ranked[1][0]
            else:
                self.worst_score = min(score, self.worst_score)

    def is_done(self, best_sum_logprobs: float, cur_len: int, early_stopping: bool) -> bool:
        if len(self.beams) < self.num_beams:
            return False
        if early_stopping:
            return True
        return self.worst_score >= best_sum_logprobs / cur_len**self.length_penalty

    def best(self) -> tuple[float, list[int]]:
        return sorted(self.beams, key=lambda b: b[0])[-1]


@dataclass
class Generated:
    """One image's caption tokens (prompt included, EOS appended if it ended early) and score."""

    token_ids: list[int]
    score: float | None


def _penalize_repeats(scores: torch.Tensor, sequences: torch.Tensor, penalty: float) -> None:
    """transformers' repetition penalty, in place: seen tokens' scores shrink (or grow if < 0)."""
    seen = scores.gather(1, sequences)
    scores.scatter_(1, sequences, torch.where(seen < 0, seen * penalty, seen / penalty))


def beam_search(
    decoder: IncrementalDecoder, prompt_ids: list[int], num_images: int, cfg: GenerationConfig
) -> list[Generated]:
    """Beam search over ``num_images`` independent images sharing ``prompt_ids``.

    The prompt is run once per image (all beams start identical; only beam 0 can expand first),
    then each step runs every unfinished image's beams together.
    """
    nb, eos = cfg.num_beams, cfg.eos_token_id
    prompt = torch.tensor(prompt_ids, dtype=torch.long).expand(num_images, -1)
    logits = decoder.step(prompt.to(decoder.device))
    decoder.repeat(nb)
    logits = logits.repeat_interleave(nb, 0)
    device = logits.device
    sequences = prompt.repeat_interleave(nb, 0).tolist()
    beam_scores = torch.full((num_images, nb), -1e9, device=device)
    beam_scores[:, 0] = 0
    beam_scores = beam_scores.view(-1)
    hyps = [_Hypotheses(nb, cfg.length_penalty) for _ in range(num_images)]
    active = list(range(num_images))
    cur_len = len(prompt_ids)
    while True:
        scores = F.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), -1)
        if cfg.repetition_penalty != 1.0:
            _penalize_repeats(
                scores, torch.tensor(sequences, device=device), cfg.repetition_penalty
            )
        if cur_len < cfg.min_length:
            scores[:, eos] = -float("inf")
        scores = (scores + beam_scores[:, None]).view(len(active), -1)
        top_scores, top_index = scores.topk(2 * nb, dim=1)
        vocab = logits.shape[-1]
        top_scores_l, top_index_l = top_scores.tolist(), top_index.tolist()

        rows, tokens, new_scores, kept = [], [], [], []
        for a, image in enumerate(active):
            picked: list[tuple[int, int, float]] = []
            for rank, (score, flat) in enumerate(zip(top_scores_l[a], top_index_l[a])):
                row, token = a * nb + flat // vocab, flat % vocab
                if token == eos:
                    if rank < nb:
                        hyps[image].add(sequences[row], score)
                else:
                    picked.append((row, token, score))
                if len(picked) == nb:
                    break
            if hyps[image].is_done(max(top_scores_l[a]), cur_len, cfg.early_stopping):
                continue
            kept.append(a)
            for row, token, score in picked:
                rows.append(row)
                tokens.append(token)
                new_scores.append(score)

        sequences = [sequences[r] + [t] for r, t in zip(rows, tokens)]
        cur_len += 1
        if not kept:
            break
        beam_scores = torch.tensor(new_scores, device=device)
        if cur_len >= cfg.max_length:
            for a_new, a in enumerate(kept):
                for b in range(nb):
                    r = a_new * nb + b
                    hyps[active[a]].add(sequences[r], new_scores[r])
            break
        row_index = torch.tensor(rows, device=device)
        dropped = len(kept) < len(active)
        decoder.select(row_index, torch.tensor(kept, device=device) if dropped else None)
        active = [active[a] for a in kept]
        logits = decoder.step(torch.tensor(tokens, device=device)[:, None])

    results = []
    for h in hyps:
        score, ids = h.best()
        results.append(Generated(ids + [eos] if len(ids) < cfg.max_length else ids, score))
    return results


def _top_k_top_p(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """transformers 4.25's top-k (50 by default) then top-p warpers, keeping at least one token."""
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -float("inf"))
    if top_p < 1.0:
        sorted_logits, sorted_index = logits.sort(dim=-1)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove = cumulative <= (1 - top_p)
        remove[:, -1] = False
        logits = logits.masked_fill(remove.scatter(1, sorted_index, remove), -float("inf"))
    return logits


def sample(
    decoder: IncrementalDecoder,
    prompt_ids: list[int],
    num_images: int,
    cfg: GenerationConfig,
    generator: torch.Generator | None = None,
    top_k: int = 50,
) -> list[Generated]:
    """Nucleus sampling, one sequence per image (the reference's ``sample=True`` settings)."""
    eos = cfg.eos_token_id
    prompt = torch.tensor(prompt_ids, dtype=torch.long).expand(num_images, -1)
    logits = decoder.step(prompt.to(decoder.device))
    device = logits.device
    sequences = prompt.to(device).clone()
    finished = torch.zeros(num_images, dtype=torch.bool, device=device)
    while True:
        scores = logits.to(torch.promote_types(logits.dtype, torch.float32))
        if cfg.sample_repetition_penalty != 1.0:
            _penalize_repeats(scores, sequences, cfg.sample_repetition_penalty)
        if sequences.shape[1] < cfg.min_length:
            scores[:, eos] = -float("inf")
        probs = _top_k_top_p(scores, top_k, cfg.top_p).softmax(dim=-1)
        token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        token = torch.where(finished, torch.full_like(token, cfg.pad_token_id), token)
        sequences = torch.cat([sequences, token[:, None]], dim=1)
        finished |= token == eos
        if bool(finished.all()) or sequences.shape[1] >= cfg.max_length:
            break
        logits = decoder.step(token[:, None])
    return [Generated(seq, None) for seq in _trim_after_eos(sequences.tolist(), eos)]


def _trim_after_eos(sequences: list[list[int]], eos: int) -> list[list[int]]:
    return [seq[: seq.index(eos) + 1] if eos in seq else seq for seq in sequences]
