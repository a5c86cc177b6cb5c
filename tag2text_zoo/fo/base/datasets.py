"""The dataset a command works on (an existing one by name, or one made from a folder of images),
and leaving other sessions' datasets alone when a command exits."""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path

import fiftyone as fo
import fiftyone.utils.data as foud


def dataset_for(target: str | Path, name: str | None = None) -> fo.Dataset:
    """An existing dataset by name, or a persistent one holding the images of a directory.

    A directory's dataset is named after it (or ``name``) and reused on later runs; every run
    adds the directory's images that it does not hold yet, so a run stopped while the dataset
    was being made completes it, and images added to the folder later are picked up.

    Raises:
        ValueError: ``target`` is neither a dataset name nor a directory, or the dataset of that
            name holds images from elsewhere.
    """
    path = Path(target).expanduser()
    if not path.is_dir():
        if fo.dataset_exists(str(target)):
            return fo.load_dataset(str(target))
        raise ValueError(f"{target!r} is neither a dataset nor a directory of images")
    folder = os.path.abspath(path)
    name = name or Path(folder).name
    if fo.dataset_exists(name):
        dataset = fo.load_dataset(name)
        dataset.persistent = True  # a dataset whose creation was stopped may not be yet
    else:
        dataset = fo.Dataset(name, persistent=True)
    held = set(dataset.values("filepath"))
    if any(not p.startswith(folder + os.sep) for p in held):
        raise ValueError(
            f"dataset {name!r} holds images from outside {folder}; name another dataset for "
            "this folder (--dataset, or name=)"
        )
    new = [p for p in sorted(foud.parse_images_dir(folder)) if os.path.abspath(p) not in held]
    if new:
        dataset.add_images(new, progress=False)
    return dataset


def leave_other_sessions_datasets() -> None:
    """Skips FiftyOne's clean-up at exit, which deletes every non-persistent dataset when it
    counts this process as the database's only client: it can miscount a session (a notebook)
    whose client is between two heartbeats, and delete that session's datasets. For commands that
    write persistent datasets only (:func:`dataset_for`), so there is nothing of theirs to clean
    up."""
    database = sys.modules.get("fiftyone.core.odm.database")
    cleanup = getattr(database, "_delete_non_persistent_datasets_if_allowed", None)
    if cleanup is not None:
        atexit.unregister(cleanup)
