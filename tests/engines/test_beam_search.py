"""Beam search bookkeeping on a scripted decoder whose log-probabilities are known."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tag2text_zoo.engines.beam_search import CachedDecoder, beam_search
from tag2text_zoo.models.config import GenerationConfig

VOCAB, EOS = 9, 2


class ScriptedDecoder:
    """Next-token logits depend only on (image, last token): a fixed random table per image."""

    def __init__(self, image_ids: list[int], eos_bias: float) -> None:
        g = torch.Generator().manual_seed(7)
        self.table = torch.randn(10, VOCAB, VOCAB, generator=g) * 2
        self.table[..., EOS] += eos_bias
        self.device = torch.device("cpu")
        self.rows = list(image_ids)  # the image of each running row
        self.calls: list[int] = []

    def step(self, input_ids: torch.Tensor) -> torch.Tensor:
        self.calls.append(len(input_ids))
        last = input_ids[:, -1]
        return torch.stack([self.table[img, tok] for img, tok in zip(self.rows, last.tolist())])

    def repeat(self, times: int) -> None:
        self.rows = [r for r in self.rows for _ in range(times)]

    def select(self, rows: torch.Tensor, images: torch.Tensor | None) -> None:
        self.rows = [self.rows[r] for r in rows.tolist()]

    def logprob(self, image: int, seq: list[int], prompt_length: int) -> float:
        """Summed log-probabilities of the generated tokens (after the prompt)."""
        total = 0.0
        for prev, tok in zip(seq[prompt_length - 1 : -1], seq[prompt_length:]):
            total += F.log_softmax(self.table[image, prev], -1)[tok].item()
        return total


def _run(images, eos_bias=0.0, **gen):
    cfg = GenerationConfig(num_beams=3, max_length=12, min_length=6, eos_token_id=EOS, **gen)
    decoder = ScriptedDecoder(images, eos_bias)
    return beam_search(decoder, [0, 1], len(images), cfg), decoder


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
    assert decoder.calls[0] == 6  # the prompt runs once per image, not per beam
    assert decoder.calls[-1] < decoder.calls[1] == 18  # rows shrink as images finish


def test_cached_decoder_keeps_one_cross_state_per_image(tag2text_dir):
    from tag2text_zoo.models import ModelConfig, build_model

    model = build_model(ModelConfig.from_file(tag2text_dir / "config.json")).eval()
    states = torch.randn(2, 40, 32)
    decoder = CachedDecoder(model.text_decoder, states)
    with torch.inference_mode():
        decoder.step(torch.tensor([[30522, 1037]] * 2))
        decoder.repeat(3)
        decoder.step(torch.tensor([[5], [6], [7], [8], [9], [10]]))
    assert decoder.cache.cross_kv[0][0].shape[0] == 2  # per image, shared by its 3 beams
    assert decoder.cache.self_kv[0][0].shape[:1] == (6,)
