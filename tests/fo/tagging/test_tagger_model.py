"""TaggerModel through FiftyOne's DataLoader path on a real embedded database."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import fiftyone as fo
import numpy as np
import pytest

from tag2text_zoo import TaggerModel, TaggerModelConfig, TagResult, to_classifications
from tag2text_zoo.fo.base.tags import check_tags_field


def test_apply_model_batched_with_workers_equals_engine(
    tagger, tag2text_images, tag2text_expected, tag2text_npz, want, make_dataset
):
    ds = make_dataset(tag2text_images)
    model = TaggerModel(tagger)
    ds.apply_model(model, label_field="t2t", batch_size=4, num_workers=2, progress=False)

    assert ds.get_field("t2t_caption") is not None and isinstance(
        ds.get_field("t2t_caption"), fo.StringField
    )
    probs = 1.0 / (1.0 + np.exp(-tag2text_npz["tag_logits"]))
    order = [im["file"].split("/")[-1] for im in tag2text_expected["images"]]
    for sample in ds:
        name = Path(sample.filepath).name
        exp = want[name]
        assert sample.t2t_caption == exp["caption"], name
        labels = [c.label for c in sample.t2t_tags.classifications]
        assert labels == list(dict.fromkeys(t.strip() for t in exp["tags"])), name
        row = probs[order.index(name)]
        by_name: dict[str, float] = {}
        for index, tag in zip(exp["tag_indices"], exp["tags"], strict=True):
            by_name[tag.strip()] = max(by_name.get(tag.strip(), 0.0), float(row[index]))
        got = {c.label: c.confidence for c in sample.t2t_tags.classifications}
        assert got == pytest.approx(by_name, abs=1e-4), name


def test_prompt_field_string_and_classifications_steer_captions(
    tagger, tag2text_images, want, make_dataset
):
    images = tag2text_images[:3]
    hint = [
        "cloud,sky",
        None,
        fo.Classifications(
            classifications=[fo.Classification(label="cloud"), fo.Classification(label="sky")]
        ),
    ]
    text_hint = ["cloud,sky", None, None]
    ds = make_dataset(images, hint=text_hint, hint_cls=[None, None, hint[2]])

    ds.apply_model(TaggerModel(tagger), label_field="s", batch_size=3, prompt_field="hint")
    cfg = TaggerModelConfig(prompt_field="hint_cls")
    ds.apply_model(TaggerModel(tagger, cfg), label_field="c", batch_size=3, num_workers=1)
    captions = {Path(s.filepath).name: (s.s_caption, s.c_caption) for s in ds}
    a, b, c = (p.name for p in images)
    assert captions[a][0] == want[a]["user_caption"] != want[a]["caption"]
    assert captions[b] == (want[b]["caption"], want[b]["caption"])  # no prompt: model tags
    assert captions[c][1] == want[c]["user_caption"] != want[c]["caption"]
    assert captions[c][0] == want[c]["caption"]


def test_unreadable_and_missing_images_skipped_by_sample_id(
    tagger, tag2text_images, want, tmp_path, make_dataset, caplog
):
    good, bad, gone = (tmp_path / p.name for p in tag2text_images[:3])
    shutil.copy(tag2text_images[0], good)
    bad.write_bytes(b"not an image at all")
    ds = make_dataset([good, bad, gone])
    ids = {Path(s.filepath).name: s.id for s in ds}
    model = TaggerModel(tagger)
    with caplog.at_level(logging.WARNING):
        ds.apply_model(model, label_field="t2t", batch_size=3, skip_failures=True)

    failed = {f.sample_id: f.reason for f in model.failures}
    assert set(failed) == {ids[bad.name], ids[gone.name]}
    assert bad.name in failed[ids[bad.name]] and "no such image file" in failed[ids[gone.name]]
    assert ids[bad.name] in caplog.text and ids[gone.name] in caplog.text
    # The readable image of the same batch is still written, exactly.
    assert ds[str(good)].t2t_caption == want[good.name]["caption"]
    assert ds.exists("t2t_tags").count() == 1


def test_wrong_prompt_field_type_refused(tag2text_images, make_dataset):
    ds = make_dataset(tag2text_images[:1], number=[3])
    with pytest.raises(ValueError, match="prompt field 'number' is a IntField"):
        check_tags_field(ds, "number")
    with pytest.raises(ValueError, match="does not exist"):
        check_tags_field(ds, "nope")


def test_apply_model_confidence_thresh_and_classes_filter_stored_tags(
    tagger, tag2text_images, want, make_dataset
):
    """FiftyOne 1.22.1's apply_model sets ``model.config.confidence_thresh`` and
    ``model.config.filter_classes`` for models whose config has them (core/models.py)."""
    name = tag2text_images[0].name
    tags = list(dict.fromkeys(t.strip() for t in want[name]["tags"]))
    ds = make_dataset(tag2text_images[:1])
    model = TaggerModel(tagger)
    ds.apply_model(model, "all", num_workers=0)
    scores = {c.label: c.confidence for c in ds.first().all_tags.classifications}
    threshold = sorted(scores.values())[len(scores) // 2]
    ds.apply_model(model, "strict", confidence_thresh=threshold, num_workers=0)
    ds.apply_model(model, "some", classes=tags[:2], num_workers=0)
    sample = ds.first()
    strict = {c.label for c in sample.strict_tags.classifications}
    assert strict == {t for t, s in scores.items() if s >= threshold} and strict < set(scores)
    assert [c.label for c in sample.some_tags.classifications] == tags[:2]
    assert sample.strict_caption == sample.some_caption == want[name]["caption"]
    assert model.config.confidence_thresh is None and model.config.filter_classes is None


def test_to_classifications_dedups_filters_and_keeps_chinese():
    result = TagResult(["sky", "dog", "sky", "cat"], [0.7, 0.9, 0.8, 0.5], [1, 2, 3, 4])
    result.tags_chinese = ["天空", "狗", "天空2", "猫"]  # as RAM results carry them
    out = to_classifications(result)
    assert [(c.label, c.confidence, c.label_chinese) for c in out.classifications] == [
        ("sky", 0.8, "天空2"),
        ("dog", 0.9, "狗"),
        ("cat", 0.5, "猫"),
    ]
    assert [c.label for c in to_classifications(result, confidence_thresh=0.8).classifications] == [
        "sky",
        "dog",
    ]
    assert [c.label for c in to_classifications(result, classes={"cat"}).classifications] == ["cat"]
