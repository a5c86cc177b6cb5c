"""Model directory files that do not fit their config (issue #14): clear errors, no tracebacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tag2text_zoo import load_tagger
from tag2text_zoo.models import CheckpointError


def _copy(src: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "m"
    shutil.copytree(src, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    return folder


def test_tag_list_of_the_wrong_length_is_named(tmp_path, tag2text_dir):
    folder = _copy(tag2text_dir, tmp_path)
    lines = (folder / "tag_list.txt").read_text().splitlines()
    (folder / "tag_list.txt").write_text("\n".join(lines[:-5]) + "\n")
    with pytest.raises(ValueError, match=r"tag_list\.txt has 3424 lines, config says 3429"):
        load_tagger(folder, device="cpu")


@pytest.mark.parametrize("value", ["1.5", "nan", "high"])
def test_class_threshold_outside_zero_one_is_named(tmp_path, tag2text_dir, value):
    folder = _copy(tag2text_dir.parent / "ram-tiny", tmp_path)
    lines = (folder / "tag_list_threshold.txt").read_text().splitlines()
    lines[6] = value
    (folder / "tag_list_threshold.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"tag_list_threshold\.txt line 7: '{value}' is not a"):
        load_tagger(folder, device="cpu")


def test_checkpoint_of_another_size_lists_the_mismatches(tmp_path, tag2text_dir):
    folder = _copy(tag2text_dir, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["text"]["intermediate_size"] = 96  # a wider model than the file's
    config["tagging_head"]["intermediate_size"] = 96
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as err:
        load_tagger(folder, device="cpu")
    message = str(err.value)
    assert "does not fit this model's config" in message and "shape mismatches" in message
    assert "tag_encoder.encoder.layer.0.intermediate.dense.weight: file (64, 32)" in message
    assert not (folder / "model.safetensors").exists()  # nothing converted from a misfit
