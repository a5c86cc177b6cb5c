"""Open-set tagging: user names embedded by a (tiny, random) CLIP text model drive RAM / RAM++.

The CLIP projection is solved so that each user text lands exactly on a chosen fixture class's
label embedding: the user tag must then score like that class in the reference, and carry the
user's name. A wrong prompt, pooling, normalization or name order breaks the expected tags.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_clip import align as _align
from tiny_clip import char_tokenizer as _tokenizer
from tiny_clip import text_model as _text_model

from tag2text_zoo import load_tagger
from tag2text_zoo.engines.vocabulary import VocabularyEncoder
from tag2text_zoo.models.checkpoint import read_checkpoint


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _fixture(ram_dir):
    npz = np.load(ram_dir / "expected.npz")
    probs = _sigmoid(npz["tag_logits"][0])
    label_embed = read_checkpoint(ram_dir / "model.pth")["model"]["label_embed"]
    on, off = int(probs.argmax()), int(probs.argmin())
    assert probs[on] > 0.55 and probs[off] < 0.45  # clear of the open-set threshold 0.5
    return npz, label_embed, on, off, ram_dir / "images" / "a1_rgb_640x480.jpg"


def test_ram_open_set_vocabulary(tmp_path, tag2text_dir):
    fixtures = tag2text_dir.parent
    npz, label_embed, on, off, image = _fixture(fixtures / "ram-tiny")
    names = ["kettle", "zebra", "violin"]  # "kettle" takes the class that fires
    template = "a photo of a {}."
    tokenizer, model = _tokenizer(), _text_model(hidden=32, seed=0)
    _align(model, tokenizer, [template.format(n) for n in names], label_embed[[on, off, off]])
    encoder = VocabularyEncoder(
        model, tokenizer, name="tiny", templates=(template,), cache_dir=tmp_path
    )
    tagger = load_tagger(fixtures / "ram-tiny", device="cpu", exif_transpose=False)
    (result,) = tagger.with_vocabulary(names, encoder=encoder).predict([image])
    assert result.tags == ["kettle"] and result.tag_indices == [0]
    assert result.tags_chinese is None and result.caption is None
    np.testing.assert_allclose(result.scores, _sigmoid(npz["tag_logits"][0, on]), atol=1e-4)
    # The built-in vocabulary is untouched.
    assert tagger.predict([image])[0].tag_indices != [0]

    # Cached: same object in memory; from disk for a fresh encoder (whose own model differs).
    assert encoder.encode(names) is encoder.encode(names)
    assert len(list(tmp_path.glob("*.safetensors"))) == 1
    fresh = VocabularyEncoder(
        _text_model(hidden=32, seed=1), tokenizer, name="tiny", templates=(template,),
        cache_dir=tmp_path,
    )  # fmt: skip
    torch.testing.assert_close(fresh.encode(names).text_embeds, encoder.encode(names).text_embeds)


def test_ram_plus_open_set_with_descriptions(tag2text_dir):
    fixtures = tag2text_dir.parent
    npz, label_embed, on, off, image = _fixture(fixtures / "ram-plus-tiny")
    per_class = 51
    names = ["okapi", "heron"]  # "heron" takes the class that fires
    descriptions = {n: [f"{n} looks like thing {k}" for k in range(per_class)] for n in names}
    rows = [c * per_class + k for c in (off, on) for k in range(per_class)]
    tokenizer, model = _tokenizer(), _text_model(hidden=128, seed=0)
    texts = [d for n in names for d in descriptions[n]]
    _align(model, tokenizer, texts, label_embed[rows])
    encoder = VocabularyEncoder(model, tokenizer, name="tiny")
    tagger = load_tagger(fixtures / "ram-plus-tiny", device="cpu", exif_transpose=False)
    (result,) = tagger.with_vocabulary(names, descriptions, encoder=encoder).predict([image])
    assert result.tags == ["heron"]
    np.testing.assert_allclose(result.scores, _sigmoid(npz["tag_logits"][0, on]), atol=1e-4)


def test_vocabulary_errors(tag2text_dir):
    encoder = VocabularyEncoder(_text_model(hidden=32, seed=0), _tokenizer(), name="tiny")
    with pytest.raises(ValueError, match="unique"):
        encoder.encode(["cat", "cat"])
    with pytest.raises(ValueError, match="not in the vocabulary"):
        encoder.encode(["cat"], {"dog": ["a dog"]})
    tag2text = load_tagger(tag2text_dir, device="cpu")
    with pytest.raises(ValueError, match="RAM"):
        tag2text.with_vocabulary(["cat"], encoder=encoder)
