"""The dataset a command works on: an existing one by name, or one made from a folder of images."""

from __future__ import annotations

from pathlib import Path

import fiftyone as fo


def dataset_for(target: str | Path, name: str | None = None) -> fo.Dataset:
    """An existing dataset by name, or a persistent one made from a directory of images.

    A directory's dataset is named after it (or ``name``) and reused on later runs.

    Raises:
        ValueError: ``target`` is neither a dataset name nor a directory.
    """
    path = Path(target).expanduser()
    if not path.is_dir():
        if fo.dataset_exists(str(target)):
            return fo.load_dataset(str(target))
        raise ValueError(f"{target!r} is neither a dataset nor a directory of images")
    name = name or path.resolve().name
    if fo.dataset_exists(name):
        return fo.load_dataset(name)
    dataset = fo.Dataset.from_dir(
        dataset_dir=str(path), dataset_type=fo.types.ImageDirectory, name=name, progress=False
    )
    dataset.persistent = True
    return dataset
