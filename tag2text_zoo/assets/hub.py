"""Hugging Face hub models (Grounding DINO, SAM, CLIP): downloading them, and whether they can be
loaded now (in the local cache or a folder, or downloadable because there is a network)."""

from __future__ import annotations

import functools
import json
import os
import socket
import time
from collections.abc import Collection
from pathlib import Path

from .download import LOCAL_MODELS_ENV

# Only what transformers needs: configs, tokenizer files and safetensors weights.
_FILES = ["*.json", "*.safetensors", "*.txt"]

# About how many bytes a first use of each default hub model downloads (its hub page's files).
DOWNLOAD_BYTES = {
    "IDEA-Research/grounding-dino-tiny": 689_000_000,
    "IDEA-Research/grounding-dino-base": 933_000_000,
    "facebook/sam-vit-base": 375_000_000,
    "facebook/sam-vit-large": 1_250_000_000,
    "facebook/sam-vit-huge": 2_560_000_000,
    "openai/clip-vit-base-patch16": 599_000_000,
}


def download_hub_parts(folder: Path, parts: dict[str, str]) -> None:
    """Links ``folder/<part>`` to each ``part -> hub repo``'s snapshot in the Hugging Face cache.

    The files are downloaded into that cache (offline: what it already holds is used), so a
    model loaded both by hub id and through the zoo is stored once.
    """
    from huggingface_hub import snapshot_download

    folder.mkdir(parents=True, exist_ok=True)
    for part, repo in parts.items():
        snapshot = Path(snapshot_download(repo, allow_patterns=_FILES))
        link = folder / part
        if link.is_symlink():
            link.unlink()
        link.symlink_to(snapshot, target_is_directory=True)


@functools.lru_cache(maxsize=1)
def _reachable(_minute: int) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=2).close()
        return True
    except OSError:
        return False


def online() -> bool:
    """Whether model files could be downloaded now (checked at most once a minute)."""
    return _reachable(int(time.monotonic() // 60))


def hub_model_problem(value: str) -> str | None:
    """Why a transformers model (hub id or folder) cannot be loaded now, or None."""
    path = Path(value).expanduser()
    if path.is_dir():
        return None if (path / "config.json").is_file() else f"{value} has no config.json"
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = isinstance(try_to_load_from_cache(value, "config.json"), str)
    except ValueError:
        return f"{value!r} is neither a folder nor a Hugging Face hub id"
    if cached or online():
        return None
    return f"{value} is not in the Hugging Face cache and there is no network to download it"


def installed_hub_models(model_types: Collection[str]) -> list[str]:
    """Transformers models of the given ``config.json`` ``model_type`` s on this machine.

    Local folders under ``$TAG2TEXT_ZOO_LOCAL_MODELS`` (one or two levels down, as the zoo's
    offline layout ``<entry>/detector``) come first, as paths; then hub ids in the Hugging Face
    cache. Each is a value that the loaders accept.
    """
    found = []
    root = os.environ.get(LOCAL_MODELS_ENV)
    if root:
        configs = [*Path(root).glob("*/config.json"), *Path(root).glob("*/*/config.json")]
        found += [str(c.parent) for c in sorted(configs) if _model_type(c) in model_types]
    from huggingface_hub import constants, try_to_load_from_cache

    cache = Path(constants.HF_HUB_CACHE)
    folders = sorted(cache.glob("models--*")) if cache.is_dir() else []
    for folder in folders:
        repo = folder.name.removeprefix("models--").replace("--", "/")
        config = try_to_load_from_cache(repo, "config.json", cache_dir=cache)
        if isinstance(config, str) and _model_type(Path(config)) in model_types:
            found.append(repo)
    return found


def _model_type(config: Path) -> str | None:
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None
