"""Official checkpoint loading: key map, full-size key lists, tied copies, bad files, the cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tag2text_zoo.assets.catalogue import CATALOGUE
from tag2text_zoo.models import (
    CheckpointError,
    ModelConfig,
    build_model,
    build_uninitialized,
    export_official_state_dict,
    load_checkpoint,
)
from tag2text_zoo.models.checkpoint import cache_path_for, map_official_state_dict, read_checkpoint


def _tiny(tag2text_dir: Path):
    return build_model(ModelConfig.from_file(tag2text_dir / "config.json"))


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_full_size_keys_and_shapes_equal_official(name, reference_dir):
    key_list = f"{CATALOGUE[name].model_type}_state_dict.json"
    expected = json.loads((reference_dir / key_list).read_text())
    model = build_uninitialized(ModelConfig.from_dict(CATALOGUE[name].config), device="meta")
    exported = {k: list(v.shape) for k, v in export_official_state_dict(model).items()}
    assert exported == expected
    # A checkpoint with exactly the official keys maps onto the model with nothing left over.
    official = {k: torch.empty(s, device="meta") for k, s in expected.items()}
    result = model.load_state_dict(map_official_state_dict({"model": official}), assign=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_tiny_checkpoint_round_trips(tmp_path, tag2text_dir):
    model = _tiny(tag2text_dir)
    load_checkpoint(model, tag2text_dir / "model.pth", write_cache=False)
    raw = torch.load(tag2text_dir / "model.pth", weights_only=True)["model"]
    exported = export_official_state_dict(model)
    assert set(exported) == set(raw)
    assert all(torch.equal(exported[k], raw[k]) for k in raw)


def _copy_fixture(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _save(tmp_path: Path, state: dict, name: str = "model.pth") -> Path:
    path = tmp_path / name
    torch.save({"model": state}, path)
    return path


def test_legacy_vision_multi_prefix_loads(tmp_path, tag2text_dir):
    raw = torch.load(tag2text_dir / "model.pth", weights_only=True)["model"]
    legacy = {k.replace("tagging_head.", "vision_multi.", 1): v for k, v in raw.items()}
    model = _tiny(tag2text_dir)
    load_checkpoint(model, _save(tmp_path, legacy), write_cache=False)
    assert torch.equal(model.fc.W, raw["fc.W"])


def test_tied_copies_must_agree(tmp_path, tag2text_dir):
    raw = torch.load(tag2text_dir / "model.pth", weights_only=True)["model"]
    raw = {k: v.clone() for k, v in raw.items()}
    raw["tagging_head.encoder.layer.0.intermediate.dense.weight"] += 1.0
    with pytest.raises(CheckpointError, match="tied"):
        load_checkpoint(_tiny(tag2text_dir), _save(tmp_path, raw), write_cache=False)


def test_missing_and_unexpected_weights_are_listed(tmp_path, tag2text_dir):
    raw = torch.load(tag2text_dir / "model.pth", weights_only=True)["model"]
    raw = dict(raw)
    del raw["fc.b"]
    raw["image_proj.weight"] = torch.zeros(2, 2)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(_tiny(tag2text_dir), _save(tmp_path, raw), write_cache=False)
    assert "missing weights (1)" in str(err.value) and "fc.b" in str(err.value)
    assert "unexpected weights (1)" in str(err.value) and "image_proj.weight" in str(err.value)


def test_wrong_models_checkpoint_is_refused(tag2text_dir):
    ram = tag2text_dir.parent / "ram-tiny" / "model.pth"
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_checkpoint(_tiny(tag2text_dir), ram, write_cache=False)


def test_truncated_checkpoint(tmp_path, tag2text_dir):
    data = (tag2text_dir / "model.pth").read_bytes()
    path = tmp_path / "model.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(_tiny(tag2text_dir), path, write_cache=False)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"<!DOCTYPE html><html><body>Hugging Face</body></html>", "web page"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 4478705095\n", "LFS"),
        (b"\x00\x01garbage", "not a PyTorch checkpoint"),
    ],
)
def test_non_checkpoint_files(tmp_path, tag2text_dir, content, message):
    path = tmp_path / "model.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(_tiny(tag2text_dir), path, write_cache=False)


class _Opaque:  # an object that weights_only loading refuses
    pass


def test_unsafe_pickle_needs_a_trusted_checksum(tmp_path, tag2text_dir):
    raw = torch.load(tag2text_dir / "model.pth", weights_only=True)["model"]
    path = tmp_path / "model.pth"
    torch.save({"model": raw, "config": _Opaque()}, path)
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        read_checkpoint(path)
    from tag2text_zoo.models.checkpoint import sha256_of

    loaded = read_checkpoint(path, trusted_sha256={sha256_of(path)})
    assert set(loaded["model"]) == set(raw)


def test_safetensors_copy_is_written_and_used(tmp_path, tag2text_dir):
    model_dir = _copy_fixture(tag2text_dir, tmp_path / "m")
    pth = model_dir / "model.pth"
    first = _tiny(tag2text_dir)
    load_checkpoint(first, pth)
    cache = cache_path_for(pth)
    assert cache.is_file() and cache.stat().st_size < pth.stat().st_size
    # The copy alone is enough: without the .pth, the same weights load.
    pth.unlink()
    second = _tiny(tag2text_dir)
    load_checkpoint(second, pth)
    for (k, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), k


def test_stale_or_broken_copy_is_ignored(tmp_path, tag2text_dir):
    model_dir = _copy_fixture(tag2text_dir, tmp_path / "m")
    pth = model_dir / "model.pth"
    cache_path_for(pth).write_bytes(b"not safetensors")
    model = _tiny(tag2text_dir)
    load_checkpoint(model, pth)  # falls back to the .pth and rewrites the copy
    raw = torch.load(pth, weights_only=True)["model"]
    assert torch.equal(model.fc.W, raw["fc.W"])
    from safetensors import safe_open

    with safe_open(str(cache_path_for(pth)), framework="pt") as f:
        assert f.metadata()["source"] == "model.pth"
