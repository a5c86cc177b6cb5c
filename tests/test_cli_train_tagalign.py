"""`python -m tag2text_zoo train-tagalign DATASET ...` on a tiny FiftyOne dataset."""

from __future__ import annotations

import fiftyone as fo
import numpy as np
import pytest
import torch
from data_paths import FIXTURES
from PIL import Image

from tag2text_zoo.cli import main
from tag2text_zoo.models.tagalign import load_tagalign_projector

CLIP = FIXTURES / "tagalign-tiny" / "clip"


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(0)
    ds = fo.Dataset()
    for i, tags in enumerate([["cat"], ["dog", "grass"], ["cat", "sofa"], ["grass"]]):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), np.uint8)).save(path)
        labels = fo.Classifications(classifications=[fo.Classification(label=t) for t in tags])
        ds.add_sample(fo.Sample(filepath=str(path), t2t_tags=labels, t2t_caption=" ".join(tags)))
    yield ds
    ds.delete()


def _args(ds, out) -> list[str]:
    return [
        "train-tagalign",
        ds.name,
        "--tags-field",
        "t2t_tags",
        "--caption-field",
        "t2t_caption",
        "--clip",
        str(CLIP),
        "--output",
        str(out),
        "--steps",
        "3",
        "--batch-size",
        "2",
        "--image-size",
        "32",
        "--num-workers",
        "0",
        "--device",
        "cpu",
    ]


def test_trains_from_dataset_fields(dataset, tmp_path, capsys):
    assert main(_args(dataset, tmp_path / "run")) == 0
    assert "4 samples, 4 tags" in capsys.readouterr().out
    checkpoint = torch.load(tmp_path / "run" / "checkpoint_latest.pth", weights_only=True)
    assert checkpoint["step"] == 3
    assert checkpoint["config"]["vocabulary"] == ["cat", "dog", "grass", "sofa"]
    load_tagalign_projector(tmp_path / "run" / "checkpoint_latest.pth")


def test_missing_caption_names_the_sample(dataset, tmp_path, capsys):
    sample = dataset.last()
    sample["t2t_caption"] = None
    sample.save()
    assert main(_args(dataset, tmp_path / "run")) == 2
    assert sample.filepath in capsys.readouterr().err
