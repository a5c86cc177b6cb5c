"""Fault-test helpers: folders of images whose datasets (named after them) are deleted after."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import fiftyone as fo
import pytest


@pytest.fixture
def image_folder(tmp_path):
    """Makes a uniquely named folder of copies of images (a dataset name of its own), and
    deletes the dataset a command made of it."""
    made = []

    def make(images: list[Path], names: list[str] | None = None) -> Path:
        folder = tmp_path / f"t2t-faults-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        for image, name in zip(images, names or [p.name for p in images], strict=True):
            shutil.copy(image, folder / name)
        made.append(folder.name)
        return folder

    yield make
    for name in made:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)


@pytest.fixture(scope="module")
def cpu_tagger(tag2text_dir):
    """The Tag2Text fixture on the CPU, without EXIF orientation (as its expected results)."""
    from tag2text_zoo import load_tagger

    return load_tagger(tag2text_dir, device="cpu", exif_transpose=False)
