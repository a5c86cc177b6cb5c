"""Which hub-format models are on this machine: local folders and the Hugging Face cache."""

from __future__ import annotations

import json

from tag2text_zoo.assets.download import LOCAL_MODELS_ENV
from tag2text_zoo.assets.hub import installed_hub_models


def _config(folder, model_type):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": model_type}))


def test_installed_hub_models_lists_local_folders_then_cached_ids(tmp_path, monkeypatch):
    from huggingface_hub import constants

    local = tmp_path / "local"
    _config(local / "grounded-sam-tiny-vit-base" / "detector", "grounding-dino")
    _config(local / "grounded-sam-tiny-vit-base" / "segmenter", "sam")
    _config(local / "my-sam2", "sam2")
    _config(local / "tag2text-swin-14m", "tag2text")
    cache = tmp_path / "hub"
    for repo, model_type in [("facebook/sam-vit-base", "sam"), ("org/dino", "grounding-dino")]:
        entry = cache / f"models--{repo.replace('/', '--')}"
        _config(entry / "snapshots" / "abc123", model_type)
        (entry / "refs").mkdir()
        (entry / "refs" / "main").write_text("abc123")
    (cache / "models--org--partial").mkdir()  # an interrupted download: no config yet
    monkeypatch.setenv(LOCAL_MODELS_ENV, str(local))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))

    assert installed_hub_models({"sam", "sam_hq", "sam2"}) == [
        str(local / "grounded-sam-tiny-vit-base" / "segmenter"),
        str(local / "my-sam2"),
        "facebook/sam-vit-base",
    ]
    assert installed_hub_models({"grounding-dino"}) == [
        str(local / "grounded-sam-tiny-vit-base" / "detector"),
        "org/dino",
    ]
    monkeypatch.delenv(LOCAL_MODELS_ENV)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "none"))
    assert installed_hub_models({"clip"}) == []
