"""``zoo/manifest.json``: the zoo's model list, generated from the entries (a test checks they
agree).

It lives in the repository's top-level ``zoo/`` folder, the remote source FiftyOne downloads (the
only ``manifest.json`` in the repository: FiftyOne registers every one it finds). Regenerate it in
a checkout with
``python -c "from tag2text_zoo.zoo.manifest import write_manifest; write_manifest()"``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SOURCE_NAME = "tag2text-zoo"
SOURCE_URL = "https://github.com/tag2text-zoo/tag2text-zoo"
MANIFEST = Path(__file__).resolve().parents[2] / "zoo" / "manifest.json"
SUFFIX = "-torch"
# The zoo folder only delegates to the installed package, which brings torch, transformers, ...
# FiftyOne checks this before loading (and installs it with install_requirements=True).
_REQUIREMENTS = [f"tag2text-zoo @ git+{SOURCE_URL}"]


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
