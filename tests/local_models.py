"""Tiny models installed where an offline user puts real ones (``$TAG2TEXT_ZOO_LOCAL_MODELS``)."""

from __future__ import annotations

from pathlib import Path

from data_paths import FIXTURES


def install_local_models(local: Path, grounded_dirs: tuple[Path, Path]) -> Path:
    """Tiny models where an offline user puts real ones (``$TAG2TEXT_ZOO_LOCAL_MODELS``):
    Tag2Text and RAM under their catalogue names, Grounding DINO + SAM and CLIP in the zoo's
    layout."""
    local.mkdir(parents=True, exist_ok=True)
    links = {
        "tag2text-swin-14m": FIXTURES / "tag2text-tiny",
        "ram-swin-large-14m": FIXTURES / "ram-tiny",
        "grounded-sam-tiny-vit-base/detector": grounded_dirs[0],
        "grounded-sam-tiny-vit-base/segmenter": grounded_dirs[1],
        "tagalign-clip-vit-b16/clip": FIXTURES / "tagalign-tiny" / "clip",
    }
    for name, target in links.items():
        (local / name).parent.mkdir(parents=True, exist_ok=True)
        (local / name).symlink_to(target, target_is_directory=True)
    return local
