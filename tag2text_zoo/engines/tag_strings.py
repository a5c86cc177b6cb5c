"""Comma-separated tag strings as users type them; no torch, no FiftyOne, so the CLI's argument
parsing and the FiftyOne field readers can share it without loading either."""

from __future__ import annotations


def parse_tags(text: str) -> list[str]:
    """``"cloud, sky,,"`` -> ``["cloud", "sky"]``."""
    return [t.strip() for t in text.split(",") if t.strip()]
