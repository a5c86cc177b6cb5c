"""FiftyOne test helpers: one CPU tagger matching the reference (no EXIF)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tagger(tag2text_dir):
    from tag2text_zoo import load_tagger

    # The golden fixture was made without EXIF orientation (the reference ignores it).
    return load_tagger(tag2text_dir, device="cpu", exif_transpose=False)
