"""Installing a zoo model into FiftyOne's zoo folder, once.

``<source>/<name>/`` is filled by downloading, or is a link to
``$TAG2TEXT_ZOO_LOCAL_MODELS/<name>/`` (offline installs, tests); the marker file
``<name>.config.json`` (the manifest's ``base_filename``) links into it only once everything is
there, so FiftyOne never downloads a model twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from ..assets.download import local_model_dir
from ..assets.hub import download_hub_parts

logger = logging.getLogger(__name__)


def install(
    name: str,
    marker: Path,
    download: Callable[[Path], None],
    check_local: Callable[[Path], None],
    config: str = "config.json",
) -> None:
    """Fills ``<marker's folder>/<name>`` then links the marker to ``<name>/<config>``.

    Args:
        name: the entry's name (without ``-torch``).
        marker: the manifest's ``base_filename`` path.
        download: fills the given folder.
        check_local: raises if the given local folder is incomplete (before it is linked).
        config: the file, relative to the model folder, that the marker links to.
    """
    target = marker.parent / name
    local = local_model_dir(name)
    if local is not None:
        check_local(local)
        if target.is_symlink():
            target.unlink()
        target.symlink_to(local.resolve(), target_is_directory=True)
        logger.info("Using the local model directory %s for %s", local, name)
    else:
        download(target)
    if marker.is_symlink() or marker.exists():
        marker.unlink()
    marker.symlink_to(Path(name) / config)


def install_hub_parts(name: str, marker: Path, parts: dict[str, str]) -> None:
    """:func:`install` for a model made of hub repositories, one folder per part
    (``part -> repo``); the marker links to the first part's ``config.json``."""

    def check_local(folder: Path) -> None:
        missing = [p for p in parts if not (folder / p / "config.json").is_file()]
        if missing:
            raise ValueError(f"{folder} lacks {' and '.join(f'{p}/config.json' for p in missing)}")

    first = next(iter(parts))
    install(
        name,
        marker,
        lambda target: download_hub_parts(target, parts),
        check_local,
        f"{first}/config.json",
    )
