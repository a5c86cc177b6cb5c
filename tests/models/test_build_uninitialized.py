"""Fast construction for loading: same tensors, ties and rebuilt buffers as a normal build."""

from __future__ import annotations

import pytest
import torch

from tag2text_zoo.models import ModelConfig, build_model, build_uninitialized, load_checkpoint
from tag2text_zoo.models.checkpoint import _named_tensors, tied_groups


@pytest.mark.parametrize("fixture", ["tag2text-tiny", "ram-tiny", "ram-plus-tiny"])
def test_uninitialized_build_loads_to_the_same_model(fixture, tag2text_dir):
    model_dir = tag2text_dir.parent / fixture
    cfg = ModelConfig.from_file(model_dir / "config.json")
    normal, fast = build_model(cfg), build_uninitialized(cfg)
    assert tied_groups(fast) == tied_groups(normal)
    for model in (normal, fast):
        load_checkpoint(model, model_dir / cfg.checkpoint_file, write_cache=False)
    expected = _named_tensors(normal)  # parameters and non-persistent buffers, every name
    got = _named_tensors(fast)
    assert got.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(got[name], tensor), name
