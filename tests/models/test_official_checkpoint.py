"""Official checkpoint files as transformers models: safe reading, the converted copy and its
stale-copy rule, and clear errors for truncated, mismatched and wrong-family files."""

from __future__ import annotations

import os

import pytest
import torch
from official_files import random_state, save_released, tiny_file
from safetensors import safe_open

import tag2text_zoo.models.official_checkpoint as official_checkpoint
from tag2text_zoo.models import CheckpointError
from tag2text_zoo.models.official_checkpoint import load_official_model

SAM_FAMILIES = ("sam", "sam_hq", "sam2")


@pytest.mark.parametrize(
    ("name", "family", "weight", "key"),
    [
        ("sam", "sam", "image_encoder.pos_embed", "vision_encoder.pos_embed"),
        ("sam-hq", "sam_hq", "mask_decoder.hf_token.weight", "mask_decoder.hq_token.weight"),
        ("sam2", "sam2", "no_mem_embed", "no_memory_embedding"),
        (
            "grounding-dino",
            "grounding-dino",
            "transformer.tgt_embed.weight",
            "model.query_position_embeddings.weight",
        ),
    ],
)
def test_released_format_loads_with_its_weights(tmp_path, name, family, weight, key):
    path = tiny_file(name, tmp_path)
    model = load_official_model(path)
    assert model.config.model_type == family
    assert not model.training
    source = random_state(f"tiny-{name}")[weight]
    torch.testing.assert_close(model.state_dict()[key], source, rtol=0, atol=0)


def test_the_converted_copy_is_used_until_the_source_changes(tmp_path, monkeypatch):
    path = tiny_file("sam", tmp_path, "sam_vit_b_01ec64.pth")
    first = load_official_model(path)
    copy = tmp_path / "sam_vit_b_01ec64.safetensors"
    with safe_open(str(copy), framework="pt") as f:
        assert f.metadata()["family"] == "sam"

    def no_reading(*args, **kwargs):
        raise AssertionError("the source was read although its copy is current")

    with monkeypatch.context() as patch:
        patch.setattr(official_checkpoint, "read_checkpoint", no_reading)
        again = load_official_model(path)
    key = "vision_encoder.pos_embed"
    assert torch.equal(again.state_dict()[key], first.state_dict()[key])

    # Other weights of the same size, with the old modification time: the copy is stale.
    stat = path.stat()
    save_released(random_state("tiny-sam", seed=1), path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    changed = load_official_model(path)
    expected = random_state("tiny-sam", seed=1)["image_encoder.pos_embed"]
    torch.testing.assert_close(changed.state_dict()[key], expected, rtol=0, atol=0)


def test_a_copy_stands_in_for_a_deleted_source(tmp_path):
    path = tiny_file("sam2", tmp_path)
    load_official_model(path)
    path.unlink()
    assert load_official_model(path).config.model_type == "sam2"
    copy = path.with_suffix(".safetensors")
    assert load_official_model(copy).config.model_type == "sam2"


def test_a_copy_made_with_other_layout_fields_is_made_again(tmp_path):
    path = tiny_file("sam2", tmp_path)
    assert load_official_model(path).config.vision_config.backbone_config.image_size == [1024] * 2
    small = load_official_model(path, image_size=64)
    assert small.config.prompt_encoder_config.image_size == 64


def test_an_unwritable_folder_only_costs_the_copy(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(official_checkpoint, "save_file", read_only)
    path = tiny_file("sam", tmp_path)
    assert load_official_model(path).config.model_type == "sam"
    assert not list(tmp_path.glob("*.safetensors")) and not list(tmp_path.glob(".*.tmp"))


def test_truncated_file_is_named(tmp_path):
    path = tiny_file("sam", tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=f"{path}.*truncated or corrupt"):
        load_official_model(path)
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\n")
    with pytest.raises(CheckpointError, match="Git LFS pointer"):
        load_official_model(path)


@pytest.mark.parametrize(
    ("weight", "message"),
    [
        # a weight the sizes are read from, and one only the model needs
        ("prompt_encoder.mask_downscaling.3.weight", "missing weight.*mask_downscaling.3"),
        ("mask_decoder.output_upscaling.0.bias", "missing weights.*upscale_conv1.bias"),
    ],
)
def test_missing_weight_is_named(tmp_path, weight, message):
    state = random_state("tiny-sam")
    del state[weight]
    path = save_released(state, tmp_path / "sam.pth")
    with pytest.raises(CheckpointError, match=message):
        load_official_model(path)


def test_mismatched_shapes_are_listed(tmp_path):
    state = random_state("tiny-sam2")
    state["sam_mask_decoder.output_upscaling.0.bias"] = torch.zeros(5)
    path = save_released(state, tmp_path / "sam2.pt")
    with pytest.raises(
        CheckpointError, match=r"shape mismatches.*upscale_conv1.bias \(file \(5,\)"
    ):
        load_official_model(path)


def test_extra_weights_are_refused_where_the_official_loader_refuses_them(tmp_path, caplog):
    state = random_state("tiny-sam")
    state["mask_decoder.extra.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match="unexpected weights.*mask_decoder.extra"):
        load_official_model(save_released(state, tmp_path / "sam.pth"))
    # GroundingDINO loads with strict=False: its files may carry entries the model does not use.
    state = random_state("tiny-grounding-dino")
    state["transformer.extra.weight"] = torch.zeros(4, 256)
    state["label_enc.weight"] = torch.zeros(2001, 256)  # in the released files; known, not named
    model = load_official_model(save_released(state, tmp_path / "gdino.pth"))
    assert model.config.model_type == "grounding-dino"
    assert "transformer.extra.weight" in caplog.text and "label_enc" not in caplog.text


def test_another_family_than_asked_for_is_named(tmp_path):
    path = tiny_file("grounding-dino", tmp_path, "groundingdino_swint_ogc.pth")
    with pytest.raises(CheckpointError, match="is a Grounding DINO checkpoint; expected SAM or"):
        load_official_model(path, families=SAM_FAMILIES)


def test_tagger_checkpoint_is_not_taken_for_one(tmp_path, tag2text_dir):
    with pytest.raises(CheckpointError, match="not an official .* checkpoint"):
        load_official_model(tag2text_dir / "model.pth", write_copy=False)


def test_code_executing_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": random_state("tiny-sam"), "run": os.system}, path)
    with pytest.raises(CheckpointError, match="safe loading refuses"):
        load_official_model(path)


@pytest.mark.parametrize("kept", ["bbox_embed.", "transformer.decoder.bbox_embed."])
def test_grounding_dino_box_head_under_either_name(tmp_path, kept):
    # One module under two names; the mmdetection converter notes the released files differ here.
    state = random_state("tiny-grounding-dino")
    other = "transformer.decoder.bbox_embed." if kept == "bbox_embed." else "bbox_embed."
    state = {k: v for k, v in state.items() if not k.startswith(other)}
    model = load_official_model(save_released(state, tmp_path / "gdino.pth"))
    weights = model.state_dict()
    expected = state[f"{kept}1.layers.2.weight"]
    torch.testing.assert_close(weights["bbox_embed.1.layers.2.weight"], expected, rtol=0, atol=0)
    decoder = weights["model.decoder.bbox_embed.1.layers.2.weight"]
    torch.testing.assert_close(decoder, expected, rtol=0, atol=0)
