"""``manifest.json``: the zoo's model list, generated from the entries (a test checks they agree).

Regenerate it with
``python -c "from tag2text_zoo.zoo.manifest import write_manifest; write_manifest()"``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SOURCE_NAME = "tag2text-zoo"
MANIFEST = Path(__file__).resolve().parents[1] / "manifest.json"
SUFFIX = "-torch"
_REQUIREMENTS = [
    "torch>=2.4",
    "torchvision>=0.19",
    "timm>=1.0.9",
    "transformers>=4.46",
    "tokenizers>=0.20",
    "huggingface_hub>=0.25",
    "safetensors>=0.4",
    "pillow>=10.0",
]


def zoo_name(name: str) -> str:
    """``"tag2text-swin-14m"`` -> ``"tag2text-swin-14m-torch"``."""
    return name + SUFFIX


def manifest_entry(name: str, fields: dict[str, Any]) -> dict[str, Any]:
    """One model's manifest entry; ``fields`` gives its author, source, license, description,
    size_bytes and tags. Its ``base_filename`` is a file, so FiftyOne downloads it only once."""
    return {
        "base_name": zoo_name(name),
        "base_filename": f"{name}.config.json",
        "author": fields["author"],
        "version": None,
        "url": None,
        "source": fields["source"],
        "license": fields["license"],
        "description": fields["description"],
        "size_bytes": fields["size_bytes"],
        "manager": None,
        "default_deployment_config_dict": None,
        "requirements": {
            "packages": _REQUIREMENTS,
            "cpu": {"support": True},
            "gpu": {"support": True},
        },
        "tags": fields["tags"],
        "date_added": "2026-01-01T00:00:00",
    }


def build_manifest() -> dict[str, Any]:
    """``manifest.json`` as generated from the entries of every kind."""
    from . import KINDS

    models = [manifest_entry(n, kind.manifest_fields(n)) for kind in KINDS for n in kind.ENTRIES]
    return {"name": SOURCE_NAME, "url": None, "models": models}


def write_manifest(path: Path = MANIFEST) -> None:
    path.write_text(json.dumps(build_manifest(), indent=4) + "\n", encoding="utf-8")
