"""Where the golden fixtures and reference data live (``../shared`` beside the repository)."""

from __future__ import annotations

import os
from pathlib import Path

SHARED = Path(os.environ.get("TAG2TEXT_ZOO_SHARED", Path(__file__).resolve().parents[2] / "shared"))
FIXTURES = SHARED / "fixtures"
REFERENCE = SHARED / "reference"
