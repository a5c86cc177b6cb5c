"""The converted safetensors copy (issue #14, case 4): tied to its source by content."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from tag2text_zoo import load_tagger
from tag2text_zoo.models import (
    CheckpointError,
    ModelConfig,
    build_model,
    converted_copy,
    load_checkpoint,
)
from tag2text_zoo.models import checkpoint as checkpoint_module
from tag2text_zoo.models.checkpoint import cache_path_for
from tag2text_zoo.models.converted_copy import copy_metadata, load_converted, sha256_of


@pytest.fixture
def model_dir(tmp_path, tag2text_dir) -> Path:
    """The tiny Tag2Text directory, without any converted copy."""
    folder = tmp_path / "m"
    shutil.copytree(tag2text_dir, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    return folder


def _tiny(model_dir: Path):
    return build_model(ModelConfig.from_file(model_dir / "config.json"))


def _other_weights(pth: Path) -> dict[str, torch.Tensor]:
    """Different weights of the same names, shapes and sharing (a file of the same byte size)."""
    raw = torch.load(pth, weights_only=True)["model"]
    seen = set()  # tied weights share one storage: change it once
    for value in raw.values():
        if value.is_floating_point() and value.untyped_storage().data_ptr() not in seen:
            seen.add(value.untyped_storage().data_ptr())
            value.add_(0.25)
    return raw


def _replace(pth: Path, weights: dict[str, torch.Tensor]) -> None:
    size = pth.stat().st_size
    torch.save({"model": weights}, pth)
    assert pth.stat().st_size == size  # the case the size check alone missed


def _assert_holds(model, weights: dict[str, torch.Tensor]) -> None:
    state = model.state_dict()
    for key in ("fc.W", "tagging_head.encoder.layer.0.intermediate.dense.weight"):
        assert torch.equal(state[key], weights[key]), key


def test_replaced_checkpoint_of_same_size_is_converted_again(model_dir):
    pth = model_dir / "model.pth"
    load_checkpoint(_tiny(model_dir), pth)
    first_copy = copy_metadata(cache_path_for(pth))
    other = _other_weights(pth)
    _replace(pth, other)
    model = _tiny(model_dir)
    load_checkpoint(model, pth)
    _assert_holds(model, other)
    assert copy_metadata(cache_path_for(pth))["source_sha256"] == sha256_of(pth)
    assert first_copy["source_sha256"] != sha256_of(pth)
    # The rebuilt copy now serves the new weights on its own.
    pth.unlink()
    alone = _tiny(model_dir)
    load_checkpoint(alone, pth)
    _assert_holds(alone, other)


def test_replacement_keeping_size_and_mtime_is_still_caught(model_dir):
    pth = model_dir / "model.pth"
    load_checkpoint(_tiny(model_dir), pth)
    before = pth.stat()
    other = _other_weights(pth)
    _replace(pth, other)
    os.utime(pth, ns=(before.st_atime_ns, before.st_mtime_ns))  # as `cp -p` or `touch -r` do
    model = _tiny(model_dir)
    load_checkpoint(model, pth)
    _assert_holds(model, other)


def test_same_content_with_new_times_reuses_the_copy_once_hashed(model_dir, monkeypatch):
    pth = model_dir / "model.pth"
    load_checkpoint(_tiny(model_dir), pth)
    original = torch.load(pth, weights_only=True)["model"]
    shutil.copyfile(pth, model_dir / "again.pth")
    os.replace(model_dir / "again.pth", pth)  # same bytes, new file times

    def no_conversion(*args, **kwargs):
        raise AssertionError("the copy should have been used")

    monkeypatch.setattr(checkpoint_module, "read_checkpoint", no_conversion)
    model = _tiny(model_dir)
    load_checkpoint(model, pth)  # hashes the source: same content
    _assert_holds(model, original)
    assert copy_metadata(cache_path_for(pth))["source_mtime_ns"] == str(pth.stat().st_mtime_ns)
    monkeypatch.setattr(converted_copy, "sha256_of", no_conversion)
    load_checkpoint(_tiny(model_dir), pth)  # re-stamped: size and times match, no hashing


def test_a_lone_copy_that_does_not_fit_is_named(model_dir, tag2text_dir):
    pth = model_dir / "model.pth"
    load_checkpoint(_tiny(model_dir), pth)
    pth.unlink()
    ram = build_model(ModelConfig.from_file(tag2text_dir.parent / "ram-tiny" / "config.json"))
    with pytest.raises(CheckpointError, match=r"model\.safetensors is not a usable converted"):
        load_checkpoint(ram, pth)


def test_load_tagger_gives_the_new_weights_tags(model_dir, tag2text_images):
    pth = model_dir / "model.pth"
    before = load_tagger(model_dir, device="cpu").predict(tag2text_images[:1], caption=False)
    _replace(pth, _other_weights(pth))
    after = load_tagger(model_dir, device="cpu").predict(tag2text_images[:1], caption=False)
    assert after[0].scores != before[0].scores


def test_the_rule_serves_any_conversion(tmp_path):
    """How another converter (e.g. SAM's .pth -> safetensors) uses the same function."""
    source, copy = tmp_path / "sam.pth", tmp_path / "sam.safetensors"
    torch.save({"w": torch.ones(3)}, source)
    conversions = []

    def convert() -> dict[str, torch.Tensor]:
        conversions.append(1)
        return {"renamed.w": torch.load(source, weights_only=True)["w"] * 2}

    def load(path: Path) -> dict[str, torch.Tensor]:
        return load_file(path)

    def save(tensors: dict, path: Path, metadata: dict[str, str]) -> None:
        save_file(tensors, path, metadata=metadata)

    assert load_converted(source, copy, convert, load, save)["renamed.w"].tolist() == [2, 2, 2]
    assert load_converted(source, copy, convert, load, save)["renamed.w"].tolist() == [2, 2, 2]
    assert len(conversions) == 1
    torch.save({"w": torch.zeros(3)}, source)  # same size, other content
    assert load_converted(source, copy, convert, load, save)["renamed.w"].tolist() == [0, 0, 0]
    assert len(conversions) == 2
    copy.write_bytes(b"garbage")  # an unreadable copy is rebuilt, not trusted
    assert load_converted(source, copy, convert, load, save)["renamed.w"].tolist() == [0, 0, 0]
    assert len(conversions) == 3 and load_file(copy)["renamed.w"].tolist() == [0, 0, 0]


def test_a_full_disk_while_writing_the_copy_leaves_no_partial_file(model_dir, monkeypatch):
    def full_disk(model, path, metadata=None):
        Path(path).write_bytes(b"half a cop")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module, "save_model", full_disk)
    model = _tiny(model_dir)
    load_checkpoint(model, model_dir / "model.pth")  # loaded from the .pth all the same
    _assert_holds(model, torch.load(model_dir / "model.pth", weights_only=True)["model"])
    assert sorted(p.name for p in model_dir.iterdir() if "safetensors" in p.name) == []
