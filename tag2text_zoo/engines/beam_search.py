"""Batched caption generation with the reference's semantics (transformers 4.25.1 rules).

Beam search keeps every image's search independent, as the reference does, but runs the beams of
many images in one decoder call per step: up to the decoder's capacity of images are in flight,
an image that finishes leaves at once and the next waiting image takes its place, so that steps
stay full however the caption lengths differ. Sampling (nucleus) is provided too.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F

from ..models.config import GenerationConfig


class SlotDecoder(Protocol):
    """A decoder over the running images, each with a fixed number of consecutive rows (beams).

    Admitted images run after the running ones; :meth:`keep` drops finished ones, and may move
    running ones into their places.
    """

    device: torch.device
    capacity: int  # most images in flight at once

    def admit(self, images: list[int]) -> torch.Tensor:
        """Starts ``images`` (the caller's indices) after the running ones and runs the prompt.

        Returns:
            ``[len(images), V]`` next-token logits, one row per image (all its rows start equal).
        """
        ...

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Appends one token to every running row (``[R]``); returns ``[R, V]`` logits."""
        ...

    def keep(self, rows: list[int], images: list[int]) -> None:
        """Keeps the running images at positions ``images`` (in that new order) with ``rows`` as
        their rows, in order: ``rows[i]`` is the current row whose sequence new row ``i``
        continues."""
        ...


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


def _padded(sequences: list[list[int]], device: torch.device) -> torch.Tensor:
    """Token lists of different lengths as one tensor, padded with a token already in the row."""
    width = max(map(len, sequences))
    return torch.tensor([seq + seq[:1] * (width - len(seq)) for seq in sequences], device=device)


class _Running:
    """The images in flight, in decoder order, with their beams' sequences, scores and logits."""

    def __init__(self, device: torch.device) -> None:
        self.images: list[int] = []
        self.lengths: list[int] = []  # tokens per sequence (prompt included), per image
        self.sequences: list[list[int]] = []  # one per row (beam)
        self.scores = torch.zeros(0, device=device)
        self.logits: torch.Tensor | None = None

    def add(self, images: list[int], logits: torch.Tensor, prompt: list[int], beams: int) -> None:
        """Images whose prompt gave ``logits`` ``[n, V]``: all beams start equal, only the first
        can expand (the others score -1e9), as in transformers."""
        start = torch.full((len(images), beams), -1e9, device=self.scores.device)
        start[:, 0] = 0
        logits = logits.repeat_interleave(beams, 0)
        self.logits = logits if self.logits is None else torch.cat([self.logits, logits])
        self.scores = torch.cat([self.scores, start.view(-1)])
        self.images += images
        self.lengths += [len(prompt)] * len(images)
        self.sequences += [prompt] * (beams * len(images))


def beam_search(
    decoder: SlotDecoder, prompt_ids: list[int], num_images: int, cfg: GenerationConfig
) -> list[Generated]:
    """Beam search over ``num_images`` independent images sharing ``prompt_ids``.

    Each image's prompt runs once (all its beams start identical); then every step runs the beams
    of all images in flight together, up to ``decoder.capacity`` images, refilled from the
    waiting ones as images finish.
    """
    nb, eos, device = cfg.num_beams, cfg.eos_token_id, decoder.device
    prompt = list(prompt_ids)
    hyps = [_Hypotheses(nb, cfg.length_penalty) for _ in range(num_images)]
    waiting = deque(range(num_images))
    run = _Running(device)

    def admit() -> None:
        new = [
            waiting.popleft() for _ in range(min(len(waiting), decoder.capacity - len(run.images)))
        ]
        if new:
            run.add(new, decoder.admit(new), prompt, nb)

    admit()
    while run.images and run.logits is not None:
        count, logits = len(run.images), run.logits
        scores = F.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), -1)
        if cfg.repetition_penalty != 1.0:
            _penalize_repeats(scores, _padded(run.sequences, device), cfg.repetition_penalty)
        if min(run.lengths) < cfg.min_length:
            short = torch.tensor([n < cfg.min_length for n in run.lengths], device=device)
            scores[short.repeat_interleave(nb), eos] = -float("inf")
        scores = (scores + run.scores[:, None]).view(count, -1)
        top_scores, top_index = scores.topk(2 * nb, dim=1)  # sorted, best first
        tokens = top_index % logits.shape[-1]
        rows = top_index // logits.shape[-1] + nb * torch.arange(count, device=device)[:, None]
        # An image's first nb candidates that are not EOS continue (there are always nb: each
        # beam offers EOS once at most); EOS among its first nb candidates ends a hypothesis.
        go_on = (tokens != eos) & ((tokens != eos).cumsum(1) <= nb)
        ends = tokens == eos
        ends[:, nb:] = False
        table = torch.stack([top_scores, tokens, rows, go_on, ends], -1).double().tolist()

        going_on = {}  # position -> the picks (row, token, score) of its image's beams
        for a, image in enumerate(run.images):
            candidates = table[a]  # (score, token, row, continues, ends) by rank
            for score, _, row, _, end in candidates:
                if end:
                    hyps[image].add(run.sequences[int(row)], score)
            if hyps[image].is_done(candidates[0][0], run.lengths[a], cfg.early_stopping):
                continue
            picks = [(int(row), int(token), score) for score, token, row, on, _ in candidates if on]
            if run.lengths[a] + 1 >= cfg.max_length:
                for row, token, score in picks:
                    hyps[image].add(run.sequences[row] + [token], score)
                continue
            going_on[a] = picks

        kept = _fill_gaps(list(going_on))
        new_rows = [row for a in kept for row, _, _ in going_on[a]]
        new_tokens = [token for a in kept for _, token, _ in going_on[a]]
        new_scores = [score for a in kept for _, _, score in going_on[a]]
        run.sequences = [run.sequences[r] + [t] for r, t in zip(new_rows, new_tokens)]
        run.lengths = [run.lengths[a] + 1 for a in kept]
        run.images = [run.images[a] for a in kept]
        run.scores = torch.tensor(new_scores, device=device)
        decoder.keep(new_rows, kept)
        run.logits = decoder.step(torch.tensor(new_tokens, device=device)) if kept else None
        admit()

    results = []
    for h in hyps:
        score, ids = h.best()
        results.append(Generated(ids + [eos] if len(ids) < cfg.max_length else ids, score))
    return results


def _fill_gaps(kept: list[int]) -> list[int]:
    """An order for the running positions ``kept`` (ascending) that moves the fewest: those
    below ``len(kept)`` stay where they are and the last ones fill the places of finished
    images, so that the decoder copies one image's rows per finished image, not every row
    after it."""
    staying = {a for a in kept if a < len(kept)}
    movers = iter(a for a in kept if a >= len(kept))
    return [i if i in staying else next(movers) for i in range(len(kept))]


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
    decoder: SlotDecoder,
    prompt_ids: list[int],
    num_images: int,
    cfg: GenerationConfig,
    generator: torch.Generator | None = None,
    top_k: int = 50,
) -> list[Generated]:
    """Nucleus sampling, one sequence per image (the reference's ``sample=True`` settings).

    All images run together: ``decoder.capacity`` must be at least ``num_images``.
    """
    if decoder.capacity < num_images:
        raise ValueError(f"sampling {num_images} images needs a decoder for that many")
    eos, device = cfg.eos_token_id, decoder.device
    logits = decoder.admit(list(range(num_images)))
    prompt = torch.tensor(prompt_ids, dtype=torch.long, device=device)
    sequences = prompt.expand(num_images, -1).clone()
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
        logits = decoder.step(token)
    return [Generated(seq, None) for seq in _trim_after_eos(sequences.tolist(), eos)]


def _trim_after_eos(sequences: list[list[int]], eos: int) -> list[list[int]]:
    return [seq[: seq.index(eos) + 1] if eos in seq else seq for seq in sequences]
