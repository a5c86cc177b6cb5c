"""TagAlign model parts vs the tagalign-tiny reference: surgery tokens, both branches, loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from data_paths import FIXTURES
from PIL import Image
from transformers import CLIPModel

from tag2text_zoo.engines.dense_windows import normalise, resize_keep_ratio, sliding_windows
from tag2text_zoo.models.tagalign import (
    ProjectorError,
    clip_branch,
    load_tagalign_projector,
    patch_grid,
    surgery_tokens,
    tagalign_state_dict,
)

TINY = FIXTURES / "tagalign-tiny"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def npz():
    return np.load(TINY / "expected.npz")


@pytest.fixture(scope="module")
def clip() -> CLIPModel:
    return CLIPModel.from_pretrained(TINY / "clip").eval()


@pytest.fixture(scope="module")
def square_features(clip, npz):
    rgb = resize_keep_ratio(
        np.asarray(Image.open(TINY / "images/square_200x200.png").convert("RGB"))
    )
    np.testing.assert_array_equal(rgb, npz["square_200x200/resized_rgb"])
    with torch.no_grad():
        return surgery_tokens(clip.vision_model, normalise(rgb)[None])


def test_surgery_tokens_match_reference(square_features, npz):
    expected = npz["debug/square_200x200/main/surgery_tokens"]
    np.testing.assert_allclose(square_features[0].numpy(), expected, atol=2e-5, rtol=0)


@pytest.mark.parametrize("checkpoint", ["tagalign.pth", "tagalign_devkeys.pth"])
def test_projector_branch_matches_reference(checkpoint, square_features, npz):
    projector = load_tagalign_projector(TINY / checkpoint)
    with torch.no_grad():
        out = projector(patch_grid(square_features, 28, 28))[0]
    expected = npz["debug/square_200x200/main/projector_out"]
    np.testing.assert_allclose(out.numpy(), expected, atol=2e-5, rtol=0)


def test_clip_branch_matches_reference(clip, square_features, npz):
    with torch.no_grad():
        out = clip_branch(
            clip.vision_model, clip.visual_projection, patch_grid(square_features, 28, 28)
        )
    expected = npz["debug/square_200x200/main/clip_branch_out"]
    np.testing.assert_allclose(out[0].numpy(), expected, atol=2e-5, rtol=0)


def test_loader_takes_projector_not_frozen_clip_proj():
    state = torch.load(TINY / "tagalign.pth", weights_only=True)["model"]
    loaded = tagalign_state_dict(load_tagalign_projector(TINY / "tagalign.pth"))
    for key, value in loaded.items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    frozen = state["clip_image_encoder.clip_proj.proj"]
    assert not torch.equal(loaded["projector.clip_proj.proj"], frozen)


def _save_without(tmp_path: Path, drop: set[str]) -> Path:
    checkpoint = torch.load(TINY / "tagalign.pth", weights_only=True)
    checkpoint["model"] = {k: v for k, v in checkpoint["model"].items() if k not in drop}
    path = tmp_path / "broken.pth"
    torch.save(checkpoint, path)
    return path


def test_missing_projector_weights_are_named(tmp_path):
    drop = {"projector.projector.net.1.conv2.gate.gate", "projector.clip_proj.ln.bias"}
    with pytest.raises(ProjectorError) as err:
        load_tagalign_projector(_save_without(tmp_path, drop))
    for key in drop:
        assert key in str(err.value)
    assert "net.0" not in str(err.value)


def test_checkpoint_without_projector_is_rejected(tmp_path):
    path = _save_without(tmp_path, {"projector.clip_proj.proj"})
    with pytest.raises(ProjectorError, match="projector.clip_proj.proj"):
        load_tagalign_projector(path)


def test_pickled_code_is_not_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "config": Evil()}, path)
    with pytest.raises(ProjectorError, match="cannot read"):
        load_tagalign_projector(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("hw", "stride", "count"), [((448, 597), 224, 2), ((448, 597), 56, 4), ((427, 2048), 56, 30)]
)
def test_windows_follow_reference(hw, stride, count):
    windows = sliding_windows(*hw, crop=448, stride=stride)
    assert len(windows) == count
    assert windows[-1][1] == hw[0] and windows[-1][3] == hw[1]
    assert all(y2 - y1 == min(448, hw[0]) and x2 - x1 == 448 for y1, y2, x1, x2 in windows)
