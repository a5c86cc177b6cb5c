"""Bad config.json values (issue #14, case 5): the error names the file, the key and the type."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tag2text_zoo import load_tagger
from tag2text_zoo.models.config import ConfigError


def _set(section: str | None, key: str, value) -> Callable[[dict], None]:
    def edit(config: dict) -> None:
        (config[section] if section else config)[key] = value

    return edit


def _drop(section: str, key: str) -> Callable[[dict], None]:
    return lambda config: config[section].pop(key)


CASES = {
    "string image_size": (_set(None, "image_size", "384"), "'image_size' must be an integer"),
    "string embed_dim": (_set("vision", "embed_dim", "16"), "'vision.embed_dim' must be an int"),
    "string threshold": (
        _set("thresholds", "default", "0.68"),
        "'thresholds.default' must be a number, got '0.68'",
    ),
    "missing key": (_drop("vision", "embed_dim"), "missing key 'vision.embed_dim' (an integer)"),
    "extra key": (_set("text", "hiden_size", 32), "unknown keys ['text.hiden_size']"),
    "negative size": (_set(None, "image_size", -384), "'image_size' must be positive, got -384"),
    "negative depth": (_set("vision", "depths", [2, -2, 2, 2]), "'vision.depths' must be positive"),
    "wrong list": (_set("vision", "num_heads", "1,2,4,8"), "must be a list of integers"),
    "boolean size": (_set("text", "hidden_size", True), "'text.hidden_size' must be an integer"),
    "threshold range": (_set("thresholds", "default", 1.5), "must be within [0, 1], got 1.5"),
    "class index": (
        _set("thresholds", "per_class", {"99999": 0.7}),
        "'thresholds.per_class' names classes [99999]; num_tags is 3429",
    ),
    "section type": (_set(None, "vision", "swin"), "'vision' must be an object, got 'swin'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_value_is_named(case, tmp_path, tag2text_dir):
    edit, message = CASES[case]
    folder = tmp_path / "m"
    shutil.copytree(tag2text_dir, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError) as err:
        load_tagger(folder, device="cpu")
    assert str(err.value).startswith(f"{folder / 'config.json'}: ")
    assert message in str(err.value)


def test_unparsable_config_names_the_file(tmp_path, tag2text_dir):
    folder = tmp_path / "m"
    shutil.copytree(tag2text_dir, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    (folder / "config.json").write_text('{"model_type": "tag2text",')
    with pytest.raises(ConfigError, match=f"cannot read model config {folder / 'config.json'}"):
        load_tagger(folder, device="cpu")


def test_every_shipped_config_still_passes(tag2text_dir: Path):
    from tag2text_zoo.assets.catalogue import CATALOGUE
    from tag2text_zoo.models.config import ModelConfig

    for spec in CATALOGUE.values():
        ModelConfig.from_dict(spec.config)
    for name in ("tag2text-tiny", "ram-tiny", "ram-plus-tiny"):
        cfg = ModelConfig.from_file(tag2text_dir.parent / name / "config.json")
        assert cfg.image_size > 0 and all(isinstance(d, int) for d in cfg.vision.depths)
