"""Beam search bookkeeping on a scripted decoder whose log-probabilities are known."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tag2text_zoo.engines.beam_search import beam_search
from tag2text_zoo.models.config import GenerationConfig

VOCAB, EOS, BEAMS, PROMPT = 9, 2, 3, [0, 1]


class ScriptedDecoder:
    """Next-token logits depend only on (image, last token): a fixed random table per image."""

    def __init__(self, image_ids: list[int], eos_bias: float, capacity: int | None = None):
        g = torch.Generator().manual_seed(7)
        self.table = torch.randn(10, VOCAB, VOCAB, generator=g) * 2
        self.table[..., EOS] += eos_bias
        self.device = torch.device("cpu")
        self.image_ids = list(image_ids)
        self.capacity = capacity or len(image_ids)
        self.rows: list[int] = []  # the table image of each running row
        self.admitted: list[list[int]] = []
        self.calls: list[int] = []  # rows per step
        self.kept: list[list[int]] = []  # the positions each keep() call kept, in new order

    def admit(self, images: list[int]) -> torch.Tensor:
        assert len(self.rows) // BEAMS + len(images) <= self.capacity
        self.admitted.append(list(images))
        self.rows += [self.image_ids[i] for i in images for _ in range(BEAMS)]
        return torch.stack([self.table[self.image_ids[i], PROMPT[-1]] for i in images])

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        self.calls.append(len(tokens))
        return torch.stack([self.table[img, tok] for img, tok in zip(self.rows, tokens.tolist())])

    def keep(self, rows: list[int], images: list[int]) -> None:
        self.rows = [self.rows[r] for r in rows]
        self.kept.append(list(images))

    def logprob(self, image: int, seq: list[int], prompt_length: int) -> float:
        """Summed log-probabilities of the generated tokens (after the prompt)."""
        total = 0.0
        for prev, tok in zip(seq[prompt_length - 1 : -1], seq[prompt_length:]):
            total += F.log_softmax(self.table[image, prev], -1)[tok].item()
        return total


def _run(images, eos_bias=0.0, capacity=None, **gen):
    cfg = GenerationConfig(num_beams=BEAMS, max_length=12, min_length=6, eos_token_id=EOS, **gen)
    decoder = ScriptedDecoder(images, eos_bias, capacity)
    return beam_search(decoder, PROMPT, len(images), cfg), decoder


def test_batch_results_equal_single_image_runs():
    for bias in (-1.0, 1.5, 3.0):  # from "runs to max_length" to "stops early"
        batched, _ = _run([3, 4, 5, 6], bias)
        for image, result in zip([3, 4, 5, 6], batched):
            (alone,), _ = _run([image], bias)
            assert alone.token_ids == result.token_ids


def test_lengths_and_reported_score():
    results, decoder = _run([1, 2, 3, 4, 5, 6], eos_bias=2.0)
    for image, r in zip([1, 2, 3, 4, 5, 6], results):
        ids = r.token_ids
        assert ids[:2] == [0, 1] and 6 <= len(ids) <= 12
        assert EOS not in ids[2:-1]
        # Score = summed log-probs of the hypothesis (EOS included) / its length without EOS.
        length = len(ids) - 1 if ids[-1] == EOS else len(ids)
        assert abs(r.score - decoder.logprob(image, ids, 2) / length) < 1e-5


def test_min_length_forbids_early_eos():
    results, _ = _run([0, 1, 2], eos_bias=50.0)  # EOS would win at every step
    assert all(len(r.token_ids) == 6 + 1 and r.token_ids[-1] == EOS for r in results)


def test_finished_images_leave_the_batch():
    _, decoder = _run([1, 2, 3, 4, 5, 6], eos_bias=2.0)
    assert decoder.admitted == [[0, 1, 2, 3, 4, 5]]  # each prompt runs once, not per beam
    assert decoder.calls[-1] < decoder.calls[0] == 18  # rows shrink as images finish


def test_waiting_images_take_the_place_of_finished_ones():
    images = [1, 2, 3, 4, 5, 6, 7]
    for bias in (-1.0, 2.0):
        together, _ = _run(images, bias)
        streamed, decoder = _run(images, bias, capacity=2)
        assert [r.token_ids for r in streamed] == [r.token_ids for r in together]
        assert [r.score for r in streamed] == [r.score for r in together]
        assert sum(decoder.admitted, []) == list(range(7)) and len(decoder.admitted) > 3
        assert max(decoder.calls) == 2 * BEAMS


def test_a_finished_image_is_replaced_by_the_last_not_by_shifting_every_one_after_it():
    images = list(range(10))
    together, _ = _run(images, eos_bias=1.0)
    streamed, decoder = _run(images, eos_bias=1.0, capacity=6)
    assert [r.token_ids for r in streamed] == [r.token_ids for r in together]
    moved = 0
    for kept in decoder.kept:
        # A running image keeps its place unless that place is gone: then it fills a gap.
        for place, old in enumerate(kept):
            assert old == place or (old >= len(kept) and place not in kept)
        moved += sum(old != place for place, old in enumerate(kept))
    assert 0 < moved < sum(len(k) for k in decoder.kept)


def test_caption_decoder_keeps_one_cross_state_per_image(tag2text_dir):
    from tag2text_zoo.engines.caption_decoder import CaptionDecoder
    from tag2text_zoo.models import ModelConfig, build_model

    model = build_model(ModelConfig.from_file(tag2text_dir / "config.json")).eval()
    states = torch.randn(2, 40, 32)
    decoder = CaptionDecoder(
        model.text_decoder,
        [30522, 1037],
        capacity=4,
        rows_per_image=3,
        max_length=10,
        cross_length=40,
        hidden_size=32,
        dtype=torch.float32,
    ).start(lambda images: states[images])
    with torch.inference_mode():
        first = decoder.admit([0, 1])
        decoder.step(torch.tensor([5, 6, 7, 8, 9, 10]))
    assert first.shape == (2, model.text_decoder.cls.predictions.decoder.out_features)
    assert decoder.cache.cross_keys.shape[1] == 4  # per image slot, shared by its 3 beams
    assert decoder.cache.lengths == [3] * 6 + [0] * 6
