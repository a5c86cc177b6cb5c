"""Prints pip constraints that pin each direct dependency to its declared lowest version.

Reads ``pyproject.toml`` (``dependencies`` and the ``test`` extra): ``name>=X`` becomes
``name==X``. torch and torchvision are left to the resolver (their old wheels are several GB; the
README says so), as are dependencies declared without a lower bound.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

NOT_PINNED = {"torch", "torchvision"}


def floor_constraints(pyproject: Path) -> list[str]:
    """``name==lowest`` for every direct dependency with a ``>=`` lower bound."""
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["test"]
    pins = []
    for requirement in requirements:
        spec, _, marker = requirement.partition(";")
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*>=\s*([^,\s]+)\s*(?:,.*)?", spec)
        if match and match[1].lower() not in NOT_PINNED:
            pins.append(f"{match[1]}=={match[2]}" + (f"; {marker.strip()}" if marker else ""))
    return pins


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])
    print("\n".join(floor_constraints(root / "pyproject.toml")))
