"""Pixel values of semantic masks: one growing class map per field, stored as its mask_targets.

A class keeps its pixel value in every sample and every later run, whatever each sample's class
list, so masks written earlier stay valid. 0 is background.
"""

from __future__ import annotations

from collections.abc import Mapping

import fiftyone as fo
import numpy as np

BACKGROUND = "background"


class MaskTargets:
    """A class-name <-> pixel-value map that grows as new classes appear (0 = background).

    Args:
        targets: the field's existing ``{value: class}`` map.
    """

    def __init__(self, targets: Mapping[int | str, str] | None = None) -> None:
        self.targets = {0: BACKGROUND, **{int(k): v for k, v in (targets or {}).items()}}
        self.ids = {name: value for value, name in self.targets.items()}

    def id(self, name: str) -> int:
        """The pixel value of ``name``, assigning the next free one to a new class."""
        if name not in self.ids:
            value = max(self.targets) + 1
            self.targets[value] = name
            self.ids[name] = value
        return self.ids[name]

    @property
    def dtype(self) -> type[np.unsignedinteger]:
        """The smallest mask dtype holding every value."""
        return np.uint8 if max(self.targets) < 256 else np.uint16


def record_mask_targets(
    dataset: fo.Dataset, field: str, targets: Mapping[int, str]
) -> dict[int, str]:
    """Adds ``targets`` (pixel value -> class) to ``dataset.mask_targets[field]`` and saves.

    Values already in the dataset keep their meaning, so masks written earlier stay valid.

    Raises:
        ValueError: the dataset already maps a pixel value to a different class.
    """
    merged = {int(k): v for k, v in dataset.mask_targets.get(field, {}).items()}
    for value, name in targets.items():
        if merged.get(value, name) != name:
            raise ValueError(
                f"mask_targets of {field!r} map {value} to {merged[value]!r}, not {name!r}"
            )
        merged[value] = name
    if merged != dataset.mask_targets.get(field):
        dataset.mask_targets = {**dataset.mask_targets, field: merged}
        dataset.save()
    return merged
