"""RAM / RAM++ through the public API: reference strings, thresholds, Chinese names, errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from tag2text_zoo import load_tagger
from tag2text_zoo.assets.model_dir import MissingFilesError, ModelDirectory


@pytest.fixture(scope="module")
def ram_case(ram_family_dir):
    expected = json.loads((ram_family_dir / "expected.json").read_text())
    images = [ram_family_dir / im["file"] for im in expected["images"]]
    # The reference applies no EXIF orientation.
    tagger = load_tagger(ram_family_dir, device="cpu", exif_transpose=False, batch_size=4)
    return tagger, expected, images


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_strings_match_reference(ram_family_dir, dtype):
    expected = json.loads((ram_family_dir / "expected.json").read_text())
    images = [ram_family_dir / im["file"] for im in expected["images"]]
    tagger = load_tagger(ram_family_dir, device="cpu", dtype=dtype, exif_transpose=False)
    chinese_file = ModelDirectory.open(ram_family_dir).tag_list_chinese()
    for result, ref in zip(tagger.predict(images), expected["images"], strict=True):
        assert result.tag_string == ref["tag_string"]
        assert result.tag_indices == ref["tag_indices"]
        assert result.caption is None
        # The reference's Chinese string keeps the file's trailing spaces; our names do not.
        assert " | ".join(chinese_file[i] for i in result.tag_indices) == ref["tag_string_chinese"]
        assert result.tags_chinese == [name.strip() for name in ref["tags_chinese"]]
        assert all(name == name.strip() for name in result.tags_chinese)


def test_batch_equals_single(ram_case):
    tagger, _, images = ram_case
    batched = tagger.predict(images)  # batch_size 4: one full and one partial batch
    for image, result in zip(images, batched, strict=True):
        (single,) = tagger.predict([image])
        assert single.tag_indices == result.tag_indices
        np.testing.assert_allclose(single.scores, result.scores, atol=1e-5)


def test_per_class_thresholds_come_from_the_file(ram_case, ram_family_dir):
    tagger, expected, images = ram_case
    lines = (ram_family_dir / "tag_list_threshold.txt").read_text().splitlines()
    torch.testing.assert_close(
        tagger.thresholds.cpu(), torch.tensor([float(x) for x in lines], dtype=torch.float32)
    )
    blocked = [b for im in expected["images"] for b in im["above_0p65_but_not_above_own_threshold"]]
    assert blocked, "the fixture exercises thresholds above 0.65"


def test_global_and_per_tag_overrides(ram_family_dir):
    expected = json.loads((ram_family_dir / "expected.json").read_text())
    npz = np.load(ram_family_dir / "expected.npz")
    probs = 1 / (1 + np.exp(-npz["tag_logits"]))
    image = ram_family_dir / expected["images"][-1]["file"]
    ref = expected["images"][-1]
    blocked_index, blocked_name, blocked_p = max(
        ref["above_0p65_but_not_above_own_threshold"], key=lambda b: b[2]
    )[:3]
    on_name = ref["tags"][0]

    # One threshold for all classes, just below the best blocked tag's probability.
    threshold = round(blocked_p - 0.01, 3)
    assert np.abs(probs[-1] - threshold).min() > 1e-4  # no class sits on the boundary
    glob = load_tagger(ram_family_dir, device="cpu", exif_transpose=False, threshold=threshold)
    (result,) = glob.predict([image])
    assert result.tag_indices == np.flatnonzero(probs[-1] > threshold).tolist()
    assert blocked_index in result.tag_indices

    per_tag = load_tagger(
        ram_family_dir,
        device="cpu",
        exif_transpose=False,
        tag_thresholds={blocked_name: 0.5, on_name: 1.0},
    )
    (result,) = per_tag.predict([image])
    want = sorted(set(ref["tag_indices"]) - {ref["tag_indices"][0]} | {blocked_index})
    assert result.tag_indices == want


def test_specified_tags_name_tag2text(ram_case):
    tagger, _, images = ram_case
    assert not tagger.can_caption
    with pytest.raises(ValueError, match="Tag2Text"):
        tagger.predict(images[:1], specified_tags=["cloud,sky"])
    # No user tags at all is fine: tags only, no caption.
    assert tagger.predict(images[:1], specified_tags=[None])[0].caption is None


@pytest.mark.parametrize("missing", ["tag_list_threshold.txt", "tag_list_chinese.txt"])
def test_model_directory_requires_ram_lists(tmp_path, ram_family_dir, missing):
    for path in ram_family_dir.iterdir():
        if path.is_file() and path.name != missing:
            os.symlink(path, tmp_path / path.name)
    with pytest.raises(MissingFilesError, match=missing):
        ModelDirectory.open(tmp_path)


def test_bad_threshold_line_names_file_and_line(tmp_path, ram_family_dir):
    for path in ram_family_dir.iterdir():
        if path.is_file() and path.name != "tag_list_threshold.txt":
            os.symlink(path, tmp_path / path.name)
    lines = (ram_family_dir / "tag_list_threshold.txt").read_text().splitlines()
    lines[2] = "high"
    (tmp_path / "tag_list_threshold.txt").write_text("\n".join(lines))
    with pytest.raises(ValueError, match="line 3"):
        ModelDirectory.open(tmp_path).class_thresholds()
