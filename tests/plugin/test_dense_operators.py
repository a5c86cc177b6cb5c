"""TagAlign segmentation and open-set tagging from the App, on a real database with tiny models."""

from __future__ import annotations

import fiftyone as fo
import numpy as np
import pytest
import torch
from data_paths import FIXTURES
from tiny_clip import save_aligned_text_encoder

from tag2text_zoo import (
    VOC_SETTINGS,
    VocabularyEncoder,
    load_dense_segmenter,
    load_tagger,
    segment_dense,
)
from tag2text_zoo.engines.vocabulary import DEFAULT_TEMPLATES
from tag2text_zoo.models.checkpoint import read_checkpoint

TINY = FIXTURES / "tagalign-tiny"
IMAGES = [TINY / "images" / f"{stem}.png" for stem in ("square_200x200", "street_500x375")]


def _cls(*labels: str) -> fo.Classifications:
    return fo.Classifications(classifications=[fo.Classification(label=x) for x in labels])


@pytest.mark.parametrize("delegated", [False, True], ids=["immediate", "delegated"])
def test_segment_dense_matches_the_api(run_operator, make_dataset, delegated):
    hints = [_cls("person", "sky"), _cls("car", "road", "person")]
    ds = make_dataset(IMAGES, hint=hints)
    params = {
        "tags_from": "field",
        "prompt_field": "hint",
        "clip": str(TINY / "clip"),
        "projector": str(TINY / "tagalign.pth"),
        "settings": "voc",
        "output_field": "seg",
        "batch_size": 2,
        "device": "cpu",
    }
    result = run_operator("segment_dense", ds, params, delegated=delegated)
    if delegated:
        assert result["summary"] == "- Segmenting with TagAlign: 2 done, 0 skipped, 0 failed"
    seg = load_dense_segmenter(TINY / "clip", TINY / "tagalign.pth", "cpu", settings=VOC_SETTINGS)
    assert segment_dense(ds, seg, "want", prompt_field="hint").done == 2
    targets, want_targets = ds.mask_targets["seg"], ds.mask_targets["want"]
    for sample in ds:
        got = np.vectorize(targets.get)(sample.seg.get_mask())
        np.testing.assert_array_equal(got, np.vectorize(want_targets.get)(sample.want.get_mask()))
    assert set(targets.values()) == {"background", "person", "sky", "car", "road"}


@pytest.fixture(scope="module")
def kettle_encoder(tmp_path_factory):
    """A CLIP text encoder folder under which "kettle" is the class that fires on the RAM
    fixture's first image and "zebra" one that does not."""
    ram = FIXTURES / "ram-tiny"
    probs = torch.sigmoid(torch.from_numpy(np.load(ram / "expected.npz")["tag_logits"][0]))
    on, off = int(probs.argmax()), int(probs.argmin())
    label_embed = read_checkpoint(ram / "model.pth")["model"]["label_embed"]
    texts = [t.format(name) for name in ("kettle", "zebra") for t in DEFAULT_TEMPLATES]
    rows = [on] * len(DEFAULT_TEMPLATES) + [off] * len(DEFAULT_TEMPLATES)
    folder = tmp_path_factory.mktemp("clip-text")
    return save_aligned_text_encoder(folder, texts, label_embed[rows])


def test_tag_with_your_own_words(run_in_app, make_dataset, kettle_encoder, tmp_path):
    first = FIXTURES / "ram-tiny" / "images" / "a1_rgb_640x480.jpg"
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    ds = make_dataset([first, broken])
    params = {
        "model": "ram-swin-large-14m",  # the RAM fixture, installed under the catalogue name
        "vocabulary": "kettle, zebra",
        "text_encoder": str(kettle_encoder),
        "label_field": "mine",
        "device": "cpu",
    }
    messages = run_in_app("tag_open_set", ds, params)
    report = messages[-2]["params"]["results"]
    assert report["summary"] == "- Tagging with ram-swin-large-14m: 1 done, 0 skipped, 1 failed"
    assert ds[str(broken)].id in report["failures"]
    assert [c.label for c in ds[str(first)].mine_tags.classifications] == ["kettle"]
    encoder = VocabularyEncoder.from_pretrained(str(kettle_encoder))
    tagger = load_tagger(FIXTURES / "ram-tiny", device="cpu")
    want = tagger.with_vocabulary(["kettle", "zebra"], encoder=encoder).predict([first])[0]
    assert ds[str(first)].mine_tags.classifications[0].confidence == pytest.approx(want.scores[0])
