"""Where the golden fixtures and reference data live: ``tests/data`` in this repository."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
FIXTURES = DATA / "fixtures"
REFERENCE = DATA / "reference"
