"""FiftyOne App operators for tag2text-zoo; each is a form, one call of the
:mod:`tag2text_zoo` API, and its report.

``fiftyone.yml`` at the repository root names this file as the plugin's entry point.
"""

from __future__ import annotations

from .auto_label import AutoLabel
from .evaluate import EvaluateTags
from .segment import SegmentGrounded
from .segment_dense import SegmentDense
from .tag_images import TagImages
from .tag_open_set import TagOpenSet

OPERATORS = (TagImages, TagOpenSet, SegmentGrounded, SegmentDense, AutoLabel, EvaluateTags)


def register(p) -> None:
    """Called by FiftyOne: registers every operator listed in ``fiftyone.yml``."""
    for operator in OPERATORS:
        p.register(operator)
