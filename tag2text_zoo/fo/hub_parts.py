"""Zoo models made of Hugging Face hub repositories, one folder per part.

``<source>/<name>/<part>/`` is filled with ``snapshot_download`` (only configs, tokenizer files and
safetensors), or ``$TAG2TEXT_ZOO_LOCAL_MODELS/<name>/`` holding those part folders is linked
instead (offline installs, tests). The marker ``base_filename`` links to the first part's
``config.json`` only once everything is there, so FiftyOne never downloads a model twice.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..assets.download import local_model_dir

logger = logging.getLogger(__name__)

_FILES = ["*.json", "*.safetensors", "*.txt"]


def fetch_hub_parts(name: str, marker: Path, parts: dict[str, str]) -> None:
    """Fills ``<marker's folder>/<name>/<part>`` for each ``part -> hub repo``, then the marker."""
    target = marker.parent / name
    local = local_model_dir(name)
    if local is not None:
        missing = [p for p in parts if not (local / p / "config.json").is_file()]
        if missing:
            raise ValueError(f"{local} lacks {' and '.join(f'{p}/config.json' for p in missing)}")
        if target.is_symlink():
            target.unlink()
        target.symlink_to(local.resolve(), target_is_directory=True)
        logger.info("Using the local model directory %s for %s", local, name)
    else:
        from huggingface_hub import snapshot_download

        for part, repo in parts.items():
            snapshot_download(repo, local_dir=target / part, allow_patterns=_FILES)
    if marker.is_symlink() or marker.exists():
        marker.unlink()
    marker.symlink_to(Path(name) / next(iter(parts)) / "config.json")
