"""Prompts from tags: cleaning, token spans from offsets, chunking past 256 tokens."""

from __future__ import annotations

import pytest
from transformers import BertTokenizerFast

from tag2text_zoo.engines.grounding_prompts import build_prompts, prepare_tags


@pytest.fixture(scope="module")
def tokenizer(reference_dir):
    return BertTokenizerFast(str(reference_dir / "bert-base-uncased-vocab.txt"))


def _span_tokens(tokenizer, chunk):
    ids = tokenizer(chunk.text)["input_ids"]
    return [tokenizer.convert_ids_to_tokens(ids[s:e]) for s, e in chunk.spans]


def test_prepare_tags_dedupes_lowercases_and_drops_attributes():
    tags = ["Dog", "dog ", "Sky", "running", "sky", ""]
    assert prepare_tags(tags) == ["dog", "sky", "running"]
    indices = [10, 10, 20, 3100, 20, 30]
    assert prepare_tags(tags, indices, drop_attribute_tags=True) == ["dog", "sky"]
    # 3011 is an object tag, 3012 and 3428 the first and last attribute/action tags
    assert prepare_tags(["a", "b", "c"], [3011, 3012, 3428], drop_attribute_tags=True) == ["a"]
    with pytest.raises(ValueError, match="index per tag"):
        prepare_tags(tags, None, drop_attribute_tags=True)


def test_spans_with_duplicate_words(tokenizer):
    (chunk,) = build_prompts(["dog", "hot dog", "dog house", "dog"], tokenizer)
    assert chunk.text == "dog, hot dog, dog house, dog."
    # [CLS] dog , hot dog , dog house , dog . [SEP]
    assert chunk.spans == ((1, 2), (3, 5), (6, 8), (9, 10))
    assert _span_tokens(tokenizer, chunk) == [["dog"], ["hot", "dog"], ["dog", "house"], ["dog"]]
    mask = chunk.span_mask()
    assert mask.shape == (4, 256) and mask.sum().item() == 6
    assert mask[1].nonzero().flatten().tolist() == [3, 4]


def test_word_pieces_and_separator(tokenizer):
    (chunk,) = build_prompts(["xylophones", "sky"], tokenizer, separator=". ")
    assert chunk.text == "xylophones. sky."
    pieces = _span_tokens(tokenizer, chunk)
    assert len(pieces[0]) > 1 and "".join(p.lstrip("#") for p in pieces[0]) == "xylophones"
    assert pieces[1] == ["sky"]


def test_chunks_past_256_tokens(tokenizer):
    tags = [f"thing {i}" for i in range(150)]  # 2 tokens + separator each: about 450 tokens
    chunks = build_prompts(tags, tokenizer)
    assert len(chunks) == 2
    assert [t for c in chunks for t in c.tags] == tags
    for chunk in chunks:
        n_tokens = len(tokenizer(chunk.text)["input_ids"])
        assert n_tokens <= 256
        assert chunk.text.endswith(".")
        assert [" ".join(p) for p in _span_tokens(tokenizer, chunk)] == list(chunk.tags)
    # the first chunk is full: one more tag would not have fitted
    more = build_prompts(list(chunks[0].tags) + [chunks[1].tags[0]], tokenizer)
    assert len(more) == 2
    with pytest.raises(ValueError, match="longer than 8"):
        build_prompts(["a b c d e f g h i"], tokenizer, max_tokens=8)


def test_no_tags_no_prompt(tokenizer):
    assert build_prompts([], tokenizer) == []
