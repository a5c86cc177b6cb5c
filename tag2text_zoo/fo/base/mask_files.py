"""Masks and heatmaps written as PNG files next to the database, as ``apply_model(output_dir=)``.

FiftyOne's ``export_mask`` / ``export_map`` write through ``cv2.imwrite``, which returns False
instead of raising when the disk is full, leaving a truncated file that the label then points
to. Here the PNG is encoded in memory and written with Python's file I/O, so a full disk (or a
read-only folder) raises ``OSError``; the arrays are converted as FiftyOne converts them.
"""

from __future__ import annotations

import contextlib
import io
import os
from typing import Any

import fiftyone as fo
import fiftyone.core.utils as fou
import numpy as np
from PIL import Image


class MaskWriter:
    """Writes masks and heatmaps as PNG files under a folder, named after their images, and
    points the labels at them (``mask_path``, ``map_path``)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.names = fou.UniqueFilenameMaker(output_dir=folder, idempotent=False)

    def export(self, labels_by_id: dict[str, Any], filepaths: dict[str, str]) -> None:
        """Writes the arrays of each sample's labels (before the labels are written).

        Raises:
            OSError: a file could not be written (e.g. the disk is full); the files this call
                wrote are removed, and the labels must not be written.
        """
        written: list[str] = []
        try:
            for sample_id, labels in labels_by_id.items():
                for label in labels.values() if isinstance(labels, dict) else [labels]:
                    parts = label.detections if isinstance(label, fo.Detections) else [label]
                    for part in parts:
                        self._export(part, filepaths[sample_id], written)
        except OSError:
            for path in written:
                with contextlib.suppress(OSError):
                    os.remove(path)
            raise

    def _export(self, label: Any, image_path: str, written: list[str]) -> None:
        if isinstance(label, fo.Heatmap) and label.map is not None:
            label.map_path = self._write(_heatmap_image(label), image_path, written)
            label.map = label.range = None
        elif isinstance(label, (fo.Detection, fo.Segmentation)) and label.mask is not None:
            label.mask_path = self._write(_mask_image(label.mask), image_path, written)
            label.mask = None

    def _write(self, image: np.ndarray, image_path: str, written: list[str]) -> str:
        path = self.names.get_output_path(image_path, output_ext=".png")
        png = io.BytesIO()
        Image.fromarray(image).save(png, format="PNG")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        written.append(path)
        with open(path, "wb") as f:
            f.write(png.getbuffer())
        return path


def _mask_image(mask: np.ndarray) -> np.ndarray:
    """A mask as FiftyOne stores it: 8- or 16-bit integers (booleans as 0 / 1)."""
    if mask.dtype in (np.uint8, np.uint16):
        return mask
    return mask.astype(np.uint8 if mask.max() <= 255 else np.uint16)


def _heatmap_image(heatmap: fo.Heatmap) -> np.ndarray:
    """A heatmap as FiftyOne stores it: its ``range`` stretched to 0..255."""
    low, high = heatmap.range or (heatmap.map.min(), heatmap.map.max())
    return (255.0 / (high - low) * (heatmap.map - low)).astype(np.uint8)
