"""The static key/value cache: rows of different lengths, reordering and the fixed-shape step
(the one CUDA graphs capture) all give the logits of recomputing each sequence from scratch."""

from __future__ import annotations

import pytest
import torch

from tag2text_zoo.models import ModelConfig, build_model

SEQUENCES = [[30522, 1037, 3861, 1997, 2000, 2001, 2002, 2003], [30522, 1037, 3861, 2010, 2011]]


@pytest.fixture(scope="module")
def decoder(tag2text_dir):
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_file(tag2text_dir / "config.json")).double().eval()
    return model.text_decoder


def _full(decoder, states, sequence):
    """Logits after ``sequence``, recomputed from scratch for that one image."""
    ids = torch.tensor([sequence])
    return decoder(ids, decoder.new_cache(states[None]))[0]


@pytest.mark.parametrize("static", [False, True])
@torch.inference_mode()
def test_mixed_lengths_reordering_and_static_steps(decoder, static):
    states = torch.randn(2, 40, 32, dtype=torch.float64)
    cache = decoder.new_cache(states, max_length=12)
    # Row 0 starts with 5 tokens, row 1 with 3: from then on they step together.
    decoder.prefill(torch.tensor([SEQUENCES[0][:5]]), cache, [0])
    decoder.prefill(torch.tensor([SEQUENCES[1][:3]]), cache, [1])
    for t in range(2):
        tokens = torch.tensor([SEQUENCES[0][5 + t], SEQUENCES[1][3 + t]])
        if static:
            cache.device_positions(2)
        logits = decoder.step(tokens, cache, static=static)
        cache.advance(2)
        for row in range(2):
            expected = _full(decoder, states[row], SEQUENCES[row][: [6, 4][row] + t])
            torch.testing.assert_close(logits[row], expected, atol=1e-10, rtol=0)
    assert cache.lengths == [7, 5]
    # The rows swap places (as beams of one image may); the cross state moves with its image.
    cache.keep([1, 0], [1, 0])
    logits = decoder.step(torch.tensor([2020, SEQUENCES[0][7]]), cache)
    torch.testing.assert_close(
        logits[0], _full(decoder, states[1], SEQUENCES[1] + [2020]), atol=1e-10, rtol=0
    )
    torch.testing.assert_close(
        logits[1], _full(decoder, states[0], SEQUENCES[0]), atol=1e-10, rtol=0
    )


@pytest.mark.parametrize("rows", [[0, 0], [1, 1]])
@torch.inference_mode()
def test_beams_of_one_image_continue_a_sibling_of_another_length(decoder, rows):
    """Beam reordering copies only the rows that change: the row that keeps its place and the
    one that takes over a sibling's (longer or shorter) sequence both go on exactly."""
    states = torch.randn(1, 40, 32, dtype=torch.float64)
    cache = decoder.new_cache(states, rows_per_image=2, max_length=12)
    decoder.prefill(torch.tensor([SEQUENCES[0][:5]]), cache, [0])
    decoder.prefill(torch.tensor([SEQUENCES[1][:3]]), cache, [1])
    decoder.step(torch.tensor([SEQUENCES[0][5], SEQUENCES[1][3]]), cache)
    cache.advance(2)
    so_far = [SEQUENCES[0][:6], SEQUENCES[1][:4]]
    cache.keep(rows, [0])
    assert cache.lengths == [len(so_far[r]) for r in rows]
    nexts = [2020, 2021]
    logits = decoder.step(torch.tensor(nexts), cache)
    for row, source in enumerate(rows):
        expected = _full(decoder, states[0], so_far[source] + [nexts[row]])
        torch.testing.assert_close(logits[row], expected, atol=1e-10, rtol=0)


@torch.inference_mode()
def test_an_image_moves_into_a_finished_one_s_slot_and_the_others_stay(decoder):
    """The first of three images finishes; the third takes its slot (rows and cross state)
    while the second stays where it is: both go on exactly."""
    states = torch.randn(3, 40, 32, dtype=torch.float64)
    sequences = [SEQUENCES[0][:4], SEQUENCES[1][:3], SEQUENCES[0][:2] + [2030, 2031, 2032]]
    cache = decoder.new_cache(states, max_length=12)
    for row, sequence in enumerate(sequences):
        decoder.prefill(torch.tensor([sequence]), cache, [row])
    cache.keep([2, 1], [2, 1])
    assert cache.lengths == [5, 3, 0]
    nexts = [2040, 2041]
    logits = decoder.step(torch.tensor(nexts), cache)
    for row, image in enumerate([2, 1]):
        expected = _full(decoder, states[image], sequences[image] + [nexts[row]])
        torch.testing.assert_close(logits[row], expected, atol=1e-10, rtol=0)
